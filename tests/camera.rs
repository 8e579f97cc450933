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
        Camera::with_env(port, auth, &[])
    }

    /// A camera whose encoder runs as `env` says (CAMERA_PATTERN, CAMERA_KBIT).
    fn with_env(port: u16, auth: &[&str], env: &[(&str, &str)]) -> Camera {
        let mut child = std::process::Command::new("/usr/bin/python3")
            .envs(env.iter().copied())
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
    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends a camera (`driver = "rtsp"`) at rtsp://127.0.0.1:PORT/cam1 with `extra` keys.
fn add_camera(station: &Station, id: &str, port: u16, extra: &str) {
    station.append_config(&format!(
        "\n[[device]]\nid = \"{id}\"\ndriver = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{port}/cam1\"\n{extra}"
    ));
}

/// A command's answer is `failed` and its reason says `words`.
fn assert_failed_saying(answer: &serde_json::Value, words: &str) {
    assert_eq!(answer["status"], "failed", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(words),
        "the reason should say {words:?}: {answer}"
    );
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
        add_camera(
            &station,
            id,
            port,
            &format!(
                "username = \"viewer\"\npassword_file = \"{}\"\nprobe_s = 1\n",
                pass.display()
            ),
        );
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
    add_camera(&station, "cam-street", port, "probe_s = 4\nwatch_s = 3\n");
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
    add_camera(&station, "cam-yard", port, "probe_s = 6\nwatch_s = 4\n");
    let daemon = station.start();
    assert!(
        central.wait(LONG, |m| !of_device(m, "cam-yard", "camera.up").is_empty()),
        "log:\n{}",
        daemon.log_text()
    );
    // The encoder hangs: RTSP still answers (DESCRIBE, SETUP, PLAY all succeed) but after
    // half a second of frames no RTP comes. A DESCRIBE-only probe would call this camera up;
    // the short PLAY says stalled.
    camera.signal(nix::sys::signal::Signal::SIGUSR1);
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
    camera.signal(nix::sys::signal::Signal::SIGUSR2);
    assert!(
        central.wait(LONG, |m| of_device(m, "cam-yard", "camera.up").len() >= 2),
        "log:\n{}",
        daemon.log_text()
    );
}

/// A camera's HTTP side: Debian's lighttpd on a free loopback port serving `/ISAPI/…` behind
/// Digest authentication and the same files at `/cgi-bin/…` behind Basic (viewer / s3cret,
/// realm "camera"), like cameras' snapshot URLs.
struct SnapshotServer {
    port: u16,
    _dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SnapshotServer {
    /// Serves `files` (name → bytes) under /ISAPI/.
    fn start(files: &[(&str, Vec<u8>)]) -> SnapshotServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        for sub in ["www/ISAPI", "www/cgi-bin"] {
            let www = dir.path().join(sub);
            std::fs::create_dir_all(&www).unwrap();
            for (name, bytes) in files {
                std::fs::write(www.join(name), bytes).unwrap();
            }
        }
        // htdigest: user:realm:MD5(user:realm:password), computed by coreutils' md5sum.
        let ha1 = std::process::Command::new("sh")
            .args([
                "-c",
                "printf 'viewer:camera:s3cret' | md5sum | cut -d' ' -f1",
            ])
            .output()
            .unwrap();
        let ha1 = String::from_utf8(ha1.stdout).unwrap();
        std::fs::write(
            dir.path().join("htdigest"),
            format!("viewer:camera:{}\n", ha1.trim()),
        )
        .unwrap();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("lighttpd.conf"),
            format!(
                "server.document-root = \"{d}/www\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\nserver.errorlog = \"{d}/error.log\"\nserver.modules = (\"mod_auth\", \"mod_authn_file\")\nauth.backend = \"htdigest\"\nauth.backend.htdigest.userfile = \"{d}/htdigest\"\nauth.require = ( \"/ISAPI/\" => ( \"method\" => \"digest\", \"realm\" => \"camera\", \"require\" => \"valid-user\" ), \"/cgi-bin/\" => ( \"method\" => \"basic\", \"realm\" => \"camera\", \"require\" => \"valid-user\" ) )\nmimetype.assign = (\".jpg\" => \"image/jpeg\", \".html\" => \"text/html\")\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new("/usr/sbin/lighttpd")
            .args(["-D", "-f"])
            .arg(dir.path().join("lighttpd.conf"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("lighttpd (apt-get install lighttpd; tests/run.sh installs it)");
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "lighttpd did not start: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        SnapshotServer {
            port,
            _dir: dir,
            child,
        }
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/ISAPI/{name}", self.port)
    }

    fn basic_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/{name}", self.port)
    }
}

impl Drop for SnapshotServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_snapshot_is_fetched_with_digest_auth_and_uploaded_to_central() {
    let jpeg_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/camera/snapshot-320x180.jpg"
    );
    let jpeg = std::fs::read(jpeg_path).unwrap();
    // An independent hash: coreutils, not the daemon's code.
    let out = std::process::Command::new("sha256sum")
        .arg(jpeg_path)
        .output()
        .unwrap();
    let jpeg_sha = String::from_utf8_lossy(&out.stdout)[..64].to_string();
    // A "JPEG" bigger than the configured bound, and an error page where a picture should be.
    let mut huge = jpeg.clone();
    huge.resize(200 * 1024, 0);
    let camera_http = SnapshotServer::start(&[
        ("picture.jpg", jpeg.clone()),
        ("huge.jpg", huge),
        ("busy.html", b"<html>encoder busy</html>".to_vec()),
    ]);
    let nginx = Nginx::start();
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-snapshot");
    let station = common::dispatch::station(&broker, "");
    let good = station.dir.path().join("cam.pass");
    let bad = station.dir.path().join("bad.pass");
    std::fs::write(&good, "s3cret\n").unwrap();
    std::fs::write(&bad, "guess\n").unwrap();
    // The RTSP side of these cameras is not there (probes fail); snapshots do not need it.
    let rtsp = free_port();
    for (id, pass, url) in [
        ("cam-gate", &good, camera_http.url("picture.jpg")),
        ("cam-basic", &good, camera_http.basic_url("picture.jpg")),
        ("cam-wrong", &bad, camera_http.url("picture.jpg")),
        ("cam-huge", &good, camera_http.url("huge.jpg")),
        ("cam-busy", &good, camera_http.url("busy.html")),
    ] {
        let keys = format!(
            "username = \"viewer\"\npassword_file = \"{}\"\nsnapshot_url = \"{url}\"\nsnapshot_max_kb = 64\nprobe_s = 60\n",
            pass.display()
        );
        add_camera(&station, id, rtsp, &keys);
    }
    let daemon = station.start();
    wait_online(&central, &daemon);
    let answer = |id: &str| common::dispatch::answer(&central, id, LONG, &daemon);
    let snapshot = |id: &str, camera: &str, to: &str| {
        common::dispatch::send(
            broker.port,
            "camera.snapshot",
            id,
            serde_json::json!({"camera": camera, "url": nginx.url(&format!("upload/{to}"))}),
        );
        answer(id)
    };

    let before = std::time::SystemTime::now();
    let a = snapshot("s-1", "cam-gate", "gate.jpg");
    assert_eq!(a["status"], "done", "{a}");
    let r = &a["result"];
    // What central received is the camera's picture, byte for byte, and the answer proves it.
    let stored = std::fs::read(nginx.stored("gate.jpg")).unwrap();
    assert_eq!(stored, jpeg, "the uploaded bytes are the camera's");
    assert_eq!(r["bytes"], jpeg.len(), "{a}");
    assert_eq!(r["sha256"], jpeg_sha, "{a}");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(320), Some(180)),
        "{a}"
    );
    let captured = r["captured_at"].as_str().unwrap();
    let captured_ms = stationd_proto::event::parse_ts_ms(captured).unwrap();
    let before_ms = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (before_ms - 1000..before_ms + 30_000).contains(&captured_ms),
        "captured at {captured}"
    );

    // A camera that asks for Basic: the same picture.
    let a = snapshot("s-6", "cam-basic", "basic.jpg");
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(std::fs::read(nginx.stored("basic.jpg")).unwrap(), jpeg);

    // Wrong password: "authentication failed", nothing uploaded.
    let a = snapshot("s-2", "cam-wrong", "wrong.jpg");
    assert_failed_saying(&a, "authentication failed");
    assert!(!nginx.stored("wrong.jpg").exists());
    // Larger than snapshot_max_kb: refused, not read whole.
    let a = snapshot("s-3", "cam-huge", "huge.jpg");
    assert_failed_saying(&a, "snapshot_max_kb");
    // An HTML page is not a picture.
    let a = snapshot("s-4", "cam-busy", "busy.jpg");
    assert_failed_saying(&a, "not a JPEG");
    assert!(!nginx.stored("busy.jpg").exists());
    // A camera the station does not have.
    let a = snapshot("s-5", "cam-nowhere", "x.jpg");
    assert_ne!(a["status"], "done", "{a}");
    assert!(
        a["reason"].as_str().unwrap().contains("cam-gate"),
        "names the cameras: {a}"
    );
}

/// Central's media server: GStreamer's RTSP server in RECORD mode (tests/lib/
/// rtsp_record_server.py) writing what it receives to an MPEG-TS file, Digest user publisher /
/// pub-pass.
struct MediaServer {
    port: u16,
    out: std::path::PathBuf,
    child: std::process::Child,
}

impl MediaServer {
    fn start(dir: &std::path::Path) -> MediaServer {
        MediaServer::start_with(dir, None)
    }

    /// With `tls` (certificate and key PEM files), it serves rtsps://.
    fn start_with(dir: &std::path::Path, tls: Option<(&str, &str)>) -> MediaServer {
        let port = free_port();
        let out = dir.join("received.ts");
        let mut cmd = std::process::Command::new("/usr/bin/python3");
        if let Some((cert, key)) = tls {
            cmd.env("RTSPS_CERT", cert).env("RTSPS_KEY", key);
        }
        let mut child = cmd
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/lib/rtsp_record_server.py"
            ))
            .args([
                &port.to_string(),
                out.to_str().unwrap(),
                "publisher",
                "pub-pass",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 with GStreamer's RTSP server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the media server did not start");
        MediaServer { port, out, child }
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/live/cam", self.port)
    }

    /// What a viewer decodes from the recording (tests/lib/media_probe.py: GStreamer's
    /// tsdemux, h264parse and openh264dec).
    fn probe(&self) -> serde_json::Value {
        let out = std::process::Command::new("/usr/bin/python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/lib/media_probe.py"
            ))
            .arg(&self.out)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("media_probe: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn video_is_pushed_to_central_without_transcoding_and_stops_when_told() {
    let port = free_port();
    let _camera = Camera::start(port);
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-push");
    let station = common::dispatch::station(&broker, "max_video_pushes = 1\n");
    let media = MediaServer::start(station.dir.path());
    let pass = station.dir.path().join("cam.pass");
    std::fs::write(&pass, "s3cret\n").unwrap();
    add_camera(
        &station,
        "cam-gate",
        port,
        &format!(
            "username = \"viewer\"\npassword_file = \"{}\"\nprobe_s = 60\n",
            pass.display()
        ),
    );
    let daemon = station.start();
    wait_online(&central, &daemon);
    let answer = |id: &str| common::dispatch::answer(&central, id, LONG, &daemon);
    let push = |id: &str, args: serde_json::Value| {
        common::dispatch::send(broker.port, "video.push", id, args);
    };

    // Six seconds of the gate camera, to central's server with its Digest credentials.
    let started = std::time::Instant::now();
    push(
        "v-1",
        serde_json::json!({"camera": "cam-gate", "url": media.url(), "duration_s": 6,
            "username": "publisher", "password": "pub-pass"}),
    );
    // Generous: the first media a fresh GStreamer constructs may take a while.
    let a = common::dispatch::answer(&central, "v-1", Duration::from_secs(150), &daemon);
    assert_eq!(a["status"], "done", "{a}");
    let r = &a["result"];
    assert_eq!(r["ended"], "duration", "{a}");
    assert_eq!(r["codec"], "h264", "{a}");
    assert!(started.elapsed() >= Duration::from_secs(6), "{a}");
    let frames = r["frames"].as_u64().unwrap();
    // 25 fps for 6 s, less the wait for the first keyframe (at most one 2 s GOP).
    assert!((90..=160).contains(&frames), "{frames} frames relayed: {a}");
    assert_eq!(r["dropped_frames"], 0, "{a}");
    assert!(r["bytes"].as_u64().unwrap() > 10_000, "{a}");

    // What central's server wrote decodes as the camera's H.264 at the camera's size, and
    // lasts about what was asked.
    assert!(
        wait_until(Duration::from_secs(10), || media.probe()["frames"]
            .as_u64()
            .unwrap_or(0)
            >= 80),
        "{}",
        media.probe()
    );
    let got = media.probe();
    assert_eq!(got["codec"], "video/x-h264", "{got}");
    assert_eq!(
        (got["width"].as_u64(), got["height"].as_u64()),
        (Some(640), Some(360)),
        "{got}"
    );
    let secs = got["duration_s"].as_f64().unwrap();
    assert!((3.5..=6.5).contains(&secs), "{secs} s recorded: {got}");
    let decoded = got["frames"].as_u64().unwrap();
    assert!(
        decoded + 5 >= frames && decoded <= frames + 5,
        "{decoded} frames decoded at central, {frames} relayed"
    );

    // A long push, stopped early by video.stop; a second push meanwhile is refused (limit 1).
    push(
        "v-2",
        serde_json::json!({"camera": "cam-gate", "url": media.url(), "duration_s": 600,
            "username": "publisher", "password": "pub-pass"}),
    );
    std::thread::sleep(Duration::from_secs(3));
    push(
        "v-3",
        serde_json::json!({"camera": "cam-gate", "url": media.url(), "duration_s": 5,
            "username": "publisher", "password": "pub-pass"}),
    );
    let busy = answer("v-3");
    assert_failed_saying(&busy, "max_video_pushes");
    let stopped_at = std::time::Instant::now();
    common::dispatch::send(
        broker.port,
        "video.stop",
        "v-stop",
        serde_json::json!({"camera": "cam-gate"}),
    );
    assert_eq!(answer("v-stop")["result"]["stopped"], 1);
    let a = answer("v-2");
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(a["result"]["ended"], "stopped", "{a}");
    assert!(stopped_at.elapsed() < Duration::from_secs(10), "{a}");
    assert!(a["result"]["frames"].as_u64().unwrap() > 0, "{a}");
    // While pushes ran, the backlog's replay was held; it resumed after.
    let log = daemon.log_text();
    assert!(log.contains("outbox.replay_held") && log.contains("outbox.replay_resumed"));

    // The wrong password for central's server: failed, saying so.
    push(
        "v-4",
        serde_json::json!({"camera": "cam-gate", "url": media.url(), "duration_s": 5,
            "username": "publisher", "password": "wrong"}),
    );
    let a = answer("v-4");
    assert_failed_saying(&a, "authentication failed");
}

#[test]
fn while_video_is_pushed_the_backlog_waits_and_live_data_flows() {
    let port = free_port();
    let _camera = Camera::with_args(port, &[]);
    let mut broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-push-replay");
    let station = common::dispatch::station(&broker, "");
    let media = MediaServer::start(station.dir.path());
    add_camera(&station, "cam-gate", port, "probe_s = 60\n");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    common::dispatch::send(
        broker.port,
        "video.push",
        "v-long",
        serde_json::json!({"camera": "cam-gate", "url": media.url(), "duration_s": 300,
            "username": "publisher", "password": "pub-pass"}),
    );
    assert!(
        wait_until(LONG, || daemon.log_text().contains("outbox.replay_held")),
        "log:\n{}",
        daemon.log_text()
    );

    // The uplink drops while the push runs (the media server is elsewhere): a backlog builds.
    broker.stop();
    let backlog: Vec<String> = (0..100).map(|n| line("backlog", "telemetry", n)).collect();
    send_lines(station.ingest_port, &backlog);
    assert!(
        wait_until(LONG, || station.outbox_rows() >= 100),
        "{}",
        station.outbox_stats()
    );
    broker.start();
    let online = |m: &[Msg]| m.iter().filter(|m| m.json["state"] == "online").count();
    let before = online(&central.all());
    assert!(
        central.wait(LONG, |m| online(m) > before),
        "the station did not come back; log:\n{}",
        daemon.log_text()
    );
    // Live data made now goes out at once; the backlog waits for the video.
    send_lines(station.ingest_port, &[line("live", "telemetry", 1)]);
    let kind_count = |kind: &str| {
        central
            .all()
            .iter()
            .filter(|m| m.json["kind"] == kind)
            .count()
    };
    assert!(
        wait_until(LONG, || kind_count("live") == 1),
        "live data held back; log:\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        kind_count("backlog"),
        0,
        "the backlog was replayed while the video ran"
    );

    // The push ends: the backlog follows, whole.
    common::dispatch::send(
        broker.port,
        "video.stop",
        "v-stop",
        serde_json::json!({"camera": "cam-gate"}),
    );
    let a = common::dispatch::answer(&central, "v-long", LONG, &daemon);
    assert_eq!(a["result"]["ended"], "stopped", "{a}");
    assert!(
        wait_until(LONG, || kind_count("backlog") == 100),
        "{} of 100 after the push; log:\n{}",
        kind_count("backlog"),
        daemon.log_text()
    );
    assert!(central
        .all()
        .iter()
        .filter(|m| m.json["kind"] == "backlog")
        .all(|m| m.json["historical"] == true));
}

#[test]
fn video_is_pushed_over_rtsps_trusting_the_configured_ca_only() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    // Central's CA and its media server's certificate for 127.0.0.1.
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test central CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let pki = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = pki.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (ca_file, cert_file, key_file) = (
        write("ca.pem", ca.pem()),
        write("server.pem", cert.pem()),
        write("server.key", key.serialize_pem()),
    );

    let port = free_port();
    let _camera = Camera::with_args(port, &[]);
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-rtsps");
    let station = common::dispatch::station(&broker, "");
    let media = MediaServer::start_with(station.dir.path(), Some((&cert_file, &key_file)));
    // The same camera twice: one trusting central's CA, one with only the public roots.
    for (id, ca) in [
        ("cam-gate", format!("upload_ca_file = \"{ca_file}\"\n")),
        ("cam-plain", String::new()),
    ] {
        add_camera(&station, id, port, &format!("probe_s = 60\n{ca}"));
    }
    let daemon = station.start();
    wait_online(&central, &daemon);
    let url = format!(
        "rtsps://publisher:pub-pass@127.0.0.1:{}/live/cam",
        media.port
    );
    common::dispatch::send(
        broker.port,
        "video.push",
        "s-1",
        serde_json::json!({"camera": "cam-gate", "url": url, "duration_s": 4}),
    );
    let a = common::dispatch::answer(&central, "s-1", Duration::from_secs(150), &daemon);
    assert_eq!(a["status"], "done", "{a}");
    // The answer names the URL without the credentials that came in it.
    assert_eq!(
        a["result"]["url"],
        format!("rtsps://127.0.0.1:{}/live/cam", media.port),
        "{a}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || media.probe()["frames"]
            .as_u64()
            .unwrap_or(0)
            >= 40),
        "{}",
        media.probe()
    );
    assert_eq!(media.probe()["width"], 640);

    // Without central's CA the server's certificate is not trusted: failed, saying TLS.
    common::dispatch::send(
        broker.port,
        "video.push",
        "s-2",
        serde_json::json!({"camera": "cam-plain", "url": url, "duration_s": 4}),
    );
    let a = common::dispatch::answer(&central, "s-2", LONG, &daemon);
    assert_failed_saying(&a, "TLS");
}

/// A TCP relay to `upstream` on a free loopback port that stops reading from its client while
/// the flag is set (a stalled uplink: the sender's buffers fill, nothing is lost on the wire).
fn pausing_relay(upstream: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    let paused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port = free_port();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let flag = paused.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let pipe =
                |mut from: std::net::TcpStream,
                 mut to: std::net::TcpStream,
                 flag: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>| {
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            while flag
                                .as_ref()
                                .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
                            {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
            pipe(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                Some(flag.clone()),
            );
            pipe(server, client, None);
        }
    });
    (port, paused)
}

#[test]
fn a_push_whose_uplink_stalls_stays_bounded_and_drops_whole_frames() {
    // A busy scene at 8 Mbit/s: the uplink's buffers fill within seconds when it stalls.
    let port = free_port();
    let _camera = Camera::with_env(
        port,
        &[],
        &[("CAMERA_PATTERN", "snow"), ("CAMERA_KBIT", "8000")],
    );
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-push-stall");
    let station = common::dispatch::station(&broker, "");
    let media = MediaServer::start(station.dir.path());
    add_camera(&station, "cam-street", port, "probe_s = 60\n");
    let daemon = station.start();
    wait_online(&central, &daemon);
    let (relay, paused) = pausing_relay(media.port);
    common::dispatch::send(
        broker.port,
        "video.push",
        "st-1",
        serde_json::json!({"camera": "cam-street",
            "url": format!("rtsp://127.0.0.1:{relay}/live/cam"), "duration_s": 30,
            "username": "publisher", "password": "pub-pass"}),
    );
    assert!(
        wait_until(LONG, || media.probe()["frames"].as_u64().unwrap_or(0) > 0),
        "nothing reached the media server: {:?}",
        common::dispatch::answers(&central, "st-1")
    );
    // The uplink stalls for 9 s (the relay in front of the media server stops reading), then
    // goes on.
    paused.store(true, std::sync::atomic::Ordering::SeqCst);
    let rss_before = daemon.rss_kb();
    std::thread::sleep(Duration::from_secs(9));
    let rss_stalled = daemon.rss_kb();
    paused.store(false, std::sync::atomic::Ordering::SeqCst);
    let a = common::dispatch::answer(&central, "st-1", Duration::from_secs(90), &daemon);
    let r = &a["result"];
    // The queue filled and whole frames were dropped up to a keyframe, counted.
    assert!(
        r["dropped_frames"].as_u64().unwrap() > 0 && r["dropped_packets"].as_u64().unwrap() > 0,
        "the queue never filled: {a}"
    );
    assert!(r["frames"].as_u64().unwrap() > 25, "{a}");
    // GStreamer's RECORD server ends the session when the stream resumes after such a gap
    // (its jitterbuffer resets); a server that keeps it gets the rest from a keyframe. Either
    // way the answer says how it ended.
    match r["ended"].as_str().unwrap() {
        "duration" => assert_eq!(a["status"], "done", "{a}"),
        "server_closed" => {
            assert_failed_saying(&a, "media server");
        }
        other => panic!("ended {other}: {a}"),
    }
    // Bounded: the queue, not the stall's length, sets what is held.
    assert!(
        rss_stalled < rss_before + 16 * 1024,
        "RSS {rss_before} kB before the stall, {rss_stalled} kB after 9 s of it"
    );
    // What reached central decodes.
    std::thread::sleep(Duration::from_secs(2));
    let got = media.probe();
    assert!(got["frames"].as_u64().unwrap_or(0) > 25, "{got}");
    assert!(got.get("error").is_none(), "{got}");
}
