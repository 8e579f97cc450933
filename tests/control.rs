//! The technician's views over the control socket, against a running daemon: `stationd
//! status`, `devices`, `outbox`, and what they say when the daemon is not there or the user may
//! not ask.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn device<'a>(devices: &'a Value, id: &str) -> &'a Value {
    devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("no device {id} in {devices}"))
}

#[test]
fn status_devices_and_outbox_show_the_running_daemon() {
    let mut broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-control");
    let station = Station::new(broker.port, "");
    // A GNSS receiver whose port is not there: the technician must see why it is offline.
    let missing = station.dir.path().join("ttyGNSS");
    station.append_config(&format!(
        "\n[[device]]\nid = \"gps9\"\ndriver = \"nmea\"\npath = \"{}\"\n",
        missing.display()
    ));
    let daemon = station.start();
    assert!(central.wait(Duration::from_secs(10), |m| m
        .iter()
        .any(|m| m.topic.ends_with("/status") && m.json["state"] == "online")));

    // The socket is group-restricted.
    let mode = std::fs::metadata(station.control_socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    // So is the local systems' ingest socket: group members may write events.
    let mode = std::fs::metadata(station.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);

    let status = json(&station.cli(&["status", "--json"]));
    assert_eq!(status["station"], "test-st01");
    assert_eq!(status["pid"], daemon.pid().as_raw());
    assert_eq!(
        status["uplink"]["connected_to"],
        format!("mqtt://127.0.0.1:{}", broker.port)
    );
    assert_eq!(status["outbox"]["telemetry"]["rows"], 0);

    // Lines from a key locker through ingest0.
    let lines: Vec<String> = (0..5)
        .map(|n| {
            format!(
                "{{\"kind\":\"locker.slot\",\"device\":\"locker-1\",\"data\":{{\"slot\":{n}}}}}\n"
            )
        })
        .collect();
    send_lines(station.ingest_port, &lines);
    assert!(central.wait(Duration::from_secs(10), |m| m
        .iter()
        .filter(|m| m.json["kind"] == "locker.slot")
        .count()
        == 5));
    let devices = json(&station.cli(&["devices", "--json"]));
    let ingest = device(&devices, "ingest0");
    assert_eq!(ingest["driver"], "jsonl");
    assert_eq!(ingest["state"], "listening");
    assert_eq!(ingest["counters"]["jsonl.lines_accepted"], 5);
    assert!(ingest["last_seen_ms"].as_i64().unwrap() > 0);
    let dock = device(&devices, "locker-1");
    assert_eq!(
        (&dock["via"], &dock["state"]),
        (&Value::from("ingest0"), &Value::from("online"))
    );
    let gps = device(&devices, "gps9");
    assert_eq!(gps["state"], "offline");
    assert!(
        gps["detail"].as_str().unwrap().contains("cannot open"),
        "{gps}"
    );
    assert!(gps["last_seen_ms"].is_null());

    // `stationd check`: named checks, exit 1 because a configured device is down.
    let out = station.cli(&["check", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = |check: &str, starts: &str| -> String {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == check && c["detail"].as_str().unwrap().starts_with(starts))
            .unwrap_or_else(|| panic!("no {check} check {starts:?} in {checks}"))["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outcome("daemon", "stationd"), "ok");
    assert_eq!(outcome("uplink", "connected to"), "ok");
    assert_eq!(
        outcome("device", "gps9 (nmea) offline: cannot open"),
        "failed"
    );
    assert_eq!(outcome("device", "ingest0 (jsonl) listening"), "ok");
    assert!(
        !checks.to_string().contains("locker-1"),
        "devices seen through a listener are not checked"
    );

    // The human table has a row per device, devices seen through a listener under it.
    let table = String::from_utf8(station.cli(&["devices"]).stdout).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    let at = |id: &str| {
        rows.iter()
            .position(|l| l.split_whitespace().next() == Some(id))
    };
    assert!(at("ingest0").unwrap() < at("locker-1").unwrap(), "{table}");
    assert!(
        rows[at("locker-1").unwrap()].starts_with("  locker-1"),
        "{table}"
    );
    assert!(rows[at("gps9").unwrap()].contains("offline"), "{table}");

    // The broker goes away: the backlog grows and status says why.
    broker.stop();
    let lines: Vec<String> = (0..20).map(|n| line("meter", "telemetry", n)).collect();
    send_lines(station.ingest_port, &lines);
    let backlog = wait_until(Duration::from_secs(10), || {
        let s = json(&station.cli(&["status", "--json"]));
        s["uplink"]["connected_to"].is_null()
            && s["uplink"]["last_error"].is_string()
            && s["outbox"]["telemetry"]["rows"].as_u64() == Some(20)
    });
    assert!(backlog, "{}", json(&station.cli(&["status", "--json"])));
    // The last error names the cause, not only rumqttc's internals.
    let last_error = json(&station.cli(&["status", "--json"]))["uplink"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        last_error.starts_with("connection refused: nothing listens")
            || last_error.starts_with("the connection was cut"),
        "{last_error}"
    );
    let text = String::from_utf8(station.cli(&["check"]).stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("warning  uplink     down for")),
        "a short outage is a warning: {text}"
    );
    let text = String::from_utf8(station.cli(&["status"]).stdout).unwrap();
    assert!(text.contains("uplink      DOWN"), "{text}");
    assert!(text.contains("backlog     20 row(s)"), "{text}");
    let outbox = json(&station.cli(&["outbox", "--json"]));
    assert_eq!(outbox["telemetry"]["rows"], 20);
    assert_eq!(
        outbox,
        station.outbox_stats(),
        "the daemon and the file agree"
    );

    // A stopped daemon removes its socket; the views then say it is not running.
    daemon.terminate();
    assert!(!station.control_socket().exists());
    let out = station.cli(&["status"]);
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stationd is not running"));
    let out = station.cli(&["check"]);
    assert_eq!(out.status.code(), Some(69));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("FAILED   daemon     stationd is not running"),
        "{text}"
    );
}

#[test]
fn the_views_say_when_the_daemon_is_not_there_or_the_user_may_not_ask() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |socket: &std::path::Path, as_nobody: bool| {
        let mut cmd = std::process::Command::new(if as_nobody {
            dir.path().join("stationd")
        } else {
            std::path::PathBuf::from(env!("CARGO_BIN_EXE_stationd"))
        });
        cmd.args(["devices", "--socket"]).arg(socket);
        if as_nobody && nix::unistd::geteuid().is_root() {
            use std::os::unix::process::CommandExt;
            // (std drops the supplementary groups too when root sets a uid)
            cmd.uid(65534).gid(65534);
        }
        cmd.output().unwrap()
    };

    let out = run(&dir.path().join("absent.sock"), false);
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not running") && err.contains("systemctl status stationd"),
        "{err}"
    );

    // A socket file left by a daemon that died.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = run(&stale, false);
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing answers"));

    // A socket the user is not allowed to use (as the daemon leaves it: 0660, another group).
    let guarded = dir.path().join("control.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&guarded).unwrap();
    // Root may open anything: as root the client runs as nobody (not in the socket's group),
    // from a copy nobody may execute; otherwise the socket is closed to its own owner too.
    let mode = if nix::unistd::geteuid().is_root() {
        0o660
    } else {
        0o000
    };
    std::fs::set_permissions(&guarded, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_stationd"), dir.path().join("stationd")).unwrap();
    let out = run(&guarded, true);
    assert_eq!(
        out.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission denied") && err.contains("usermod -aG stationd"),
        "{err}"
    );
}

#[test]
fn garbage_on_the_control_socket_gets_an_error_and_the_daemon_answers_on() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let broker = Broker::started();
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    let ask = |bytes: &[u8]| -> String {
        let mut s = UnixStream::connect(station.control_socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The daemon stops reading after 1 MiB and answers: a longer write may be cut off.
        let _ = s.write_all(bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    };
    for (bad, why) in [
        (b"\x00\xff garbage\n".to_vec(), "bad request"),
        (
            b"{\"v\":1,\"cmd\":\"reboot\"}\n".to_vec(),
            "unknown variant",
        ),
        (
            b"{\"v\":9,\"cmd\":\"status\"}\n".to_vec(),
            "version 9 is not supported",
        ),
        (vec![b'x'; 1_100_000], "longer than 1048576 bytes"),
    ] {
        let reply: Value = serde_json::from_str(&ask(&bad)).unwrap();
        assert_eq!(reply["ok"], false, "{reply}");
        assert!(reply["error"].as_str().unwrap().contains(why), "{reply}");
    }
    // A client that connects and says nothing does not block the others.
    let _silent = UnixStream::connect(station.control_socket()).unwrap();
    let status = json(&station.cli(&["status", "--json"]));
    assert_eq!(status["counters"]["control.requests_rejected"], 4);
    assert!(daemon.log_text().contains("control.request_rejected"));
}

#[test]
fn a_second_daemon_leaves_the_first_ones_socket_alone_and_runs_on() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-two-daemons");
    let first = Station::new(broker.port, "");
    let first_daemon = first.start();
    let second = Station::new(broker.port, "");
    let socket = first.control_socket();
    let second_daemon =
        second.start_with_env(&[("STATIOND_CONTROL_SOCKET", socket.to_str().unwrap())]);
    assert!(wait_until(Duration::from_secs(5), || second_daemon
        .log_text()
        .contains("control.unavailable")));
    assert!(second_daemon
        .log_text()
        .contains("another stationd answers"));
    // The socket still belongs to the first daemon; the second one does its job regardless.
    let status = json(&first.cli(&["status", "--json"]));
    assert_eq!(status["pid"], first_daemon.pid().as_raw());
    send_lines(second.ingest_port, &[line("meter", "telemetry", 7)]);
    assert!(central.wait(Duration::from_secs(10), |m| m
        .iter()
        .any(|m| m.json["kind"] == "meter" && m.json["data"]["n"] == 7)));
}
