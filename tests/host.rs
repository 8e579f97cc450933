//! The box's own health as central and the technician see it, from real parts: a real tmpfs
//! volume filled past its threshold and emptied again, and a real NUT server (upsd with the
//! dummy-ups driver, on a loopback port) whose UPS goes on battery, runs low and comes back.
//! Each condition raises its `box.*` alarm once and a `box.cleared` event when it ends;
//! `P/state/box` and `stationd check` say the same.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(40);

/// Network UPS Tools' server and its dummy driver, reading the UPS's variables from a file.
struct Nut {
    dir: tempfile::TempDir,
    port: u16,
    children: Vec<Child>,
}

impl Nut {
    fn start() -> Nut {
        for bin in ["/lib/nut/upsd", "/lib/nut/dummy-ups"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: apt-get install nut-server (tests/run.sh installs it)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path();
        std::fs::write(
            d.join("ups.conf"),
            format!(
                "[ups]\n  driver = dummy-ups\n  port = {}\n  desc = \"test UPS\"\n",
                d.join("ups.dev").display()
            ),
        )
        .unwrap();
        std::fs::write(d.join("upsd.conf"), format!("LISTEN 127.0.0.1 {port}\n")).unwrap();
        std::fs::write(d.join("upsd.users"), "").unwrap();
        let mut nut = Nut {
            dir,
            port,
            children: Vec::new(),
        };
        nut.set("OL", 100);
        let d = nut.dir.path().to_path_buf();
        let spawn = |bin: &str, args: &[&str]| {
            let log =
                std::fs::File::create(d.join(format!("{}.log", args[0].trim_start_matches('-'))))
                    .unwrap();
            Command::new(bin)
                .args(args)
                .env("NUT_CONFPATH", &d)
                .env("NUT_STATEPATH", &d)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap()
        };
        nut.children.push(spawn(
            "/lib/nut/dummy-ups",
            &["-a", "ups", "-u", "root", "-D"],
        ));
        std::thread::sleep(Duration::from_millis(500));
        nut.children
            .push(spawn("/lib/nut/upsd", &["-u", "root", "-D"]));
        assert!(
            wait_until(LONG, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "upsd did not listen"
        );
        nut
    }

    /// What the UPS says from now on (dummy-ups reads the file again when it changes).
    fn set(&self, status: &str, charge: u32) {
        let runtime = charge * 36;
        std::fs::write(
            self.dir.path().join("ups.dev"),
            format!("battery.charge: {charge}\nbattery.runtime: {runtime}\nups.status: {status}\ninput.voltage: 230.0\n"),
        )
        .unwrap();
    }

    fn logs(&self) -> String {
        ["a.log", "u.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Nut {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A 2 MiB tmpfs, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount() -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vol");
        std::fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mounting a tmpfs needs root (the test command runs as root)"
        );
        Tmpfs { path, _dir: dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn alarms(central: &Subscriber, kind: &str) -> Vec<Value> {
    central
        .envelopes()
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn cleared(central: &Subscriber, condition: &str) -> usize {
    alarms(central, "box.cleared")
        .iter()
        .filter(|e| e["data"]["condition"] == condition)
        .count()
}

#[test]
fn a_full_volume_and_a_ups_on_battery_raise_alarms_once_and_clear_them() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-box");
    let nut = Nut::start();
    let vol = Tmpfs::mount();
    let station = Station::new(broker.port, "");
    station.watch_box(&format!(
        "interval_s = 5\nvolumes = [\"{}\"]\ndisk_warn_pct = 50\nups = \"ups@127.0.0.1:{}\"\n",
        vol.path.display(),
        nut.port
    ));
    let daemon = station.start();
    wait_online(&central, &daemon);
    let subject = vol.path.display().to_string();

    // P/state/box and box.reading, nothing wrong (once upsd has its driver: until then the
    // UPS is unknown, and said so).
    let topic = "stations/test-st01/state/box";
    fresh_on(&central, &daemon, topic);
    assert!(
        wait_until(LONG, || latest_on(&central, topic)
            .is_some_and(|s| s["power"]["status"] == serde_json::json!(["OL"]))),
        "{:#}\n{}",
        latest_on(&central, topic).unwrap_or_default(),
        nut.logs()
    );
    let state = latest_on(&central, topic).unwrap();
    assert_eq!(state["volumes"][0]["path"], subject.as_str());
    assert!(
        state["volumes"][0]["used_pct"].as_f64().unwrap() < 50.0,
        "{state:#}"
    );
    assert_eq!(state["power"]["battery_charge_pct"], 100.0);
    assert!(state["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(state["conditions"], serde_json::json!([]));
    assert_eq!(state["uplink"]["interface"], "lo");
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["kind"] == "box.reading")));

    // The volume fills past 50 %: one alarm, naming it.
    std::fs::write(vol.path.join("fill"), vec![0u8; 1_500_000]).unwrap();
    let alarm = wait_event(&central, &daemon, "box.disk_low", "the tmpfs full", |d| {
        d["subject"] == subject.as_str()
    });
    assert!(alarm["value"].as_f64().unwrap() >= 70.0, "{alarm}");
    let e = &alarms(&central, "box.disk_low")[0];
    assert_eq!(
        (e["prio"].as_str(), e["device"].as_str()),
        (Some("alarm"), Some("box"))
    );

    // The UPS goes on battery, then runs low: alarms; stationd check fails.
    nut.set("OB DISCHRG", 60);
    wait_event(&central, &daemon, "box.on_battery", "on battery", |d| {
        d["value"] == 60.0
    });
    nut.set("OB DISCHRG LB", 20);
    wait_event(&central, &daemon, "box.battery_low", "low battery", |d| {
        d["value"] == 20.0
    });
    let check = station.cli(&["check"]);
    let text = String::from_utf8_lossy(&check.stdout).to_string();
    assert_eq!(check.status.code(), Some(1), "{text}");
    assert!(
        text.contains("on battery") && text.contains("full"),
        "{text}"
    );

    // Power back, the file gone: each condition cleared once.
    nut.set("OL CHRG", 25);
    std::fs::remove_file(vol.path.join("fill")).unwrap();
    assert!(
        wait_until(LONG, || cleared(&central, "box.disk_low") == 1
            && cleared(&central, "box.on_battery") == 1
            && cleared(&central, "box.battery_low") == 1),
        "cleared: {:#?}\nlog:\n{}",
        alarms(&central, "box.cleared"),
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_secs(6));
    for kind in ["box.disk_low", "box.on_battery", "box.battery_low"] {
        assert_eq!(
            alarms(&central, kind).len(),
            1,
            "{kind} raised once, not every reading"
        );
    }
    let status: Value = serde_json::from_str(&station.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(status["box"]["conditions"], serde_json::json!([]));

    // The UPS's server goes away: said, not guessed.
    let mut nut = nut;
    nut.stop();
    wait_event(&central, &daemon, "box.power_unknown", "upsd gone", |d| {
        d["detail"]
            .as_str()
            .is_some_and(|t| t.contains("cannot reach upsd"))
    });
    drop(daemon);
}
