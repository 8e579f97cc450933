//! The `rtsp` driver against a real RTSP camera: GStreamer's RTSP server (Debian's
//! gir1.2-gst-rtsp-server-1.0, driven by tests/lib/rtsp_camera.py) serving a live H.264 test
//! pattern with Digest authentication on a loopback port; central on a real broker.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use std::io::BufRead;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// The GStreamer camera as a child process; killed on drop.
struct Camera {
    child: std::process::Child,
}

impl Camera {
    /// A camera that asks for Digest credentials viewer / s3cret.
    fn start(port: u16) -> Camera {
        Camera::with_args(port, &["viewer", "s3cret"])
    }

    fn with_args(port: u16, auth: &[&str]) -> Camera {
        let mut child = std::process::Command::new("/usr/bin/python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/lib/rtsp_camera.py"
            ))
            .args([&port.to_string(), "640", "360", "25"])
            .args(auth)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 with GStreamer's RTSP server (tests/run.sh installs them)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the GStreamer camera did not start (gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly?)");
        Camera { child }
    }
}

impl Camera {
    /// Sends the camera process a signal (USR1: stall, USR2: flow again).
    fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn of_device<'a>(all: &'a [Msg], device: &str, kind: &str) -> Vec<&'a Msg> {
    all.iter()
        .filter(|m| m.json["device"] == device && m.json["kind"] == kind)
        .collect()
}

#[test]
fn a_camera_is_probed_and_its_health_is_reported_with_reasons() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-camera");
    let port = free_port();
    let camera = Camera::start(port);
    let station = Station::new(broker.port, "");
    let good = station.dir.path().join("cam.pass");
    let bad = station.dir.path().join("bad.pass");
    std::fs::write(&good, "s3cret\n").unwrap();
    std::fs::write(&bad, "guess\n").unwrap();
    for (id, pass) in [("cam-gate", &good), ("cam-wrong", &bad)] {
        station.append_config(&format!(
            "\n[[device]]\nid = \"{id}\"\ndriver = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{port}/cam1\"\nusername = \"viewer\"\npassword_file = \"{}\"\nprobe_s = 1\n",
            pass.display()
        ));
    }
    let daemon = station.start();

    // Up, with what the SPS says.
    assert!(
        central.wait(LONG, |m| !of_device(m, "cam-gate", "camera.feed")
            .is_empty()),
        "log:\n{}",
        daemon.log_text()
    );
    let all = central.all();
    assert_eq!(of_device(&all, "cam-gate", "camera.up").len(), 1);
    let feed = &of_device(&all, "cam-gate", "camera.feed")[0].json["data"];
    assert_eq!(
        (
            feed["codec"].as_str(),
            feed["width"].as_u64(),
            feed["height"].as_u64()
        ),
        (Some("H.264"), Some(640), Some(360)),
        "{feed}"
    );
    assert_eq!(feed["fps"].as_f64(), Some(25.0), "{feed}");
    // The SPS's profile and level as RFC 6381 writes them (x264's ultrafast preset:
    // Constrained Baseline, level 3.0).
    assert_eq!(feed["profile"], "avc1.42C01E", "{feed}");
    let devices = String::from_utf8_lossy(&station.cli(&["devices"]).stdout).to_string();
    assert!(devices.contains("640x360 H.264 25 fps"), "{devices}");

    // The wrong password: down, "authentication failed" — not just "down".
    assert!(
        central.wait(LONG, |m| of_device(m, "cam-wrong", "camera.down")
            .iter()
            .any(|d| d.json["data"]["reason"] == "authentication_failed")),
        "log:\n{}",
        daemon.log_text()
    );
    // The technician sees the same reason on the board.
    let board = || String::from_utf8_lossy(&station.cli(&["devices"]).stdout).to_string();
    assert!(
        wait_until(LONG, || board().contains("authentication failed")),
        "{}",
        board()
    );
    // Probes go on every second without repeating the event.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        of_device(&central.all(), "cam-gate", "camera.feed").len(),
        1,
        "by exception"
    );
    assert_eq!(
        of_device(&central.all(), "cam-wrong", "camera.down").len(),
        1
    );

    // The camera goes away: refused; it comes back: up again.
    drop(camera);
    assert!(
        central.wait(LONG, |m| of_device(m, "cam-gate", "camera.down")
            .iter()
            .any(|d| d.json["data"]["reason"] == "refused")),
        "log:\n{}",
        daemon.log_text()
    );
    let _camera = Camera::start(port);
    assert!(
        central.wait(LONG, |m| of_device(m, "cam-gate", "camera.up").len() >= 2),
        "log:\n{}",
        daemon.log_text()
    );
}

#[test]
fn a_short_play_measures_frames_bitrate_and_keyframe_interval() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-camera-watch");
    let port = free_port();
    let _camera = Camera::with_args(port, &[]);
    let station = Station::new(broker.port, "");
    station.append_config(&format!(
        "\n[[device]]\nid = \"cam-street\"\ndriver = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{port}/cam1\"\nprobe_s = 4\nwatch_s = 3\n"
    ));
    let daemon = station.start();
    assert!(
        central.wait(LONG, |m| !of_device(m, "cam-street", "camera.feed")
            .is_empty()),
        "log:\n{}",
        daemon.log_text()
    );
    let all = central.all();
    let feed = &of_device(&all, "cam-street", "camera.feed")[0].json["data"];
    let fps = feed["measured_fps"].as_f64().unwrap();
    assert!(
        (20.0..=30.0).contains(&fps),
        "25 fps sent, {fps} measured: {feed}"
    );
    assert!(feed["bitrate_kbit_s"].as_u64().unwrap() > 0, "{feed}");
    // x264 with key-int-max = 2 s of frames.
    let gop = feed["keyframe_interval_s"].as_f64().unwrap();
    assert!(
        (1.5..=2.5).contains(&gop),
        "keyframes every {gop} s: {feed}"
    );
}

#[test]
fn a_camera_that_stops_sending_frames_is_stalled_not_up() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-camera-stall");
    let port = free_port();
    let camera = Camera::with_args(port, &[]);
    let station = Station::new(broker.port, "");
    station.append_config(&format!(
        "\n[[device]]\nid = \"cam-yard\"\ndriver = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{port}/cam1\"\nprobe_s = 6\nwatch_s = 4\n"
    ));
    let daemon = station.start();
    assert!(
        central.wait(LONG, |m| !of_device(m, "cam-yard", "camera.up").is_empty()),
        "log:\n{}",
        daemon.log_text()
    );
    // The encoder hangs: RTSP still answers (DESCRIBE, SETUP, PLAY all succeed) but after
    // half a second of frames no RTP comes. A DESCRIBE-only probe would call this camera up;
    // the short PLAY says stalled.
    camera.signal("USR1");
    assert!(
        central.wait(LONG, |m| of_device(m, "cam-yard", "camera.down")
            .iter()
            .any(|d| d.json["data"]["reason"] == "stalled")),
        "log:\n{}",
        daemon.log_text()
    );
    let all = central.all();
    let down = &of_device(&all, "cam-yard", "camera.down")[0].json["data"];
    assert!(
        down["detail"]
            .as_str()
            .unwrap()
            .contains("the session is up"),
        "{down}"
    );
    let board = String::from_utf8_lossy(&station.cli(&["devices"]).stdout).to_string();
    assert!(board.contains("stalled"), "{board}");
    // Frames flow again: up again.
    camera.signal("USR2");
    assert!(
        central.wait(LONG, |m| of_device(m, "cam-yard", "camera.up").len() >= 2),
        "log:\n{}",
        daemon.log_text()
    );
}
