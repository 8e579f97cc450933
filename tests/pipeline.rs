//! End-to-end: the stationd binary, a real mosquitto, a real subscriber, real sockets.

mod common;

use common::*;
use std::io::Write;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn normal_flow_delivers_contract_envelopes_and_a_retained_birth() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-normal");
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    assert!(
        central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")),
        "no birth; log:\n{}",
        daemon.log_text()
    );

    let mut lines: Vec<String> = (0..60).map(|n| line("position", "telemetry", n)).collect();
    lines.push("{\"kind\":\"door.open\",\"prio\":\"alarm\",\"device\":\"door-1\",\"ts\":\"2026-11-29T08:15:02.120Z\",\"data\":{\"gate\":2}}\n".into());
    lines.push("{\"kind\":\"shift.start\"}\n".into());
    send_lines(station.ingest_port, &lines);
    // The same input over the Unix socket.
    let mut unix = std::os::unix::net::UnixStream::connect(station.socket()).unwrap();
    unix.write_all(line("temperature", "telemetry", 99).as_bytes())
        .unwrap();
    drop(unix);

    assert!(
        central.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json.get("seq").is_some())
            .count()
            >= 63),
        "log:\n{}",
        daemon.log_text()
    );
    let all = central.all();
    let env: Vec<_> = central.envelopes();
    assert_eq!(env.len(), 63, "each message exactly once");
    let mut seqs = central.seqs();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=63).collect::<Vec<u64>>(),
        "seq starts at 1 and has no gap"
    );
    for e in &env {
        assert_eq!(e["v"], 1);
        assert_eq!(e["station"], "test-st01");
        assert_eq!(e["historical"], false, "sent live: {e}");
        assert!(e["clock"] == "synced" || e["clock"] == "unsynced");
        assert!(
            e["ts"].as_str().unwrap().ends_with('Z') && e["ts"].as_str().unwrap().len() == 24,
            "{e}"
        );
        for key in ["seq", "ts", "device", "kind", "prio", "data"] {
            assert!(e.get(key).is_some(), "missing {key} in {e}");
        }
    }
    let alarm = all.iter().find(|m| m.json["kind"] == "door.open").unwrap();
    assert_eq!(alarm.topic, "stations/test-st01/event/door.open");
    assert_eq!(alarm.json["device"], "door-1");
    assert_eq!(alarm.json["ts"], "2026-11-29T08:15:02.120Z");
    assert_eq!(alarm.json["data"]["gate"], 2);
    let pos = all.iter().find(|m| m.json["kind"] == "position").unwrap();
    assert_eq!(pos.topic, "stations/test-st01/telemetry/ingest0/position");
    assert!(!pos.retain);
    let shift = all
        .iter()
        .find(|m| m.json["kind"] == "shift.start")
        .unwrap();
    assert_eq!(
        (shift.json["prio"].as_str(), shift.json["device"].as_str()),
        (Some("event"), Some("ingest0"))
    );
    assert!(
        all.iter()
            .any(|m| m.topic == "stations/test-st01/telemetry/ingest1/temperature"),
        "unix socket input"
    );

    // Positions from one connection arrive in the order they were sent.
    let ns: Vec<u64> = env
        .iter()
        .filter(|e| e["kind"] == "position")
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, (0..60).collect::<Vec<_>>());

    // The birth is retained: a late subscriber sees it.
    let late = Subscriber::connect(broker.port, "central-late");
    assert!(late.wait(Duration::from_secs(5), |m| m
        .iter()
        .any(|m| m.retain && m.json["state"] == "online")));
    let birth = late.status().into_iter().find(|m| m.retain).unwrap();
    assert_eq!(birth.topic, "stations/test-st01/status");
    assert!(birth.json["boot_id"]
        .as_str()
        .is_some_and(|b| !b.is_empty()));
    assert_eq!(birth.json["version"], env!("CARGO_PKG_VERSION"));

    // Acknowledged rows are deleted from the outbox.
    assert!(
        wait_until(Duration::from_secs(5), || station.outbox_rows() == 0),
        "outbox not drained: {}",
        station.outbox_stats()
    );
}

#[test]
fn sigterm_publishes_offline_commits_and_exits_zero() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-term");
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    send_lines(
        station.ingest_port,
        &(0..20)
            .map(|n| line("tick", "event", n))
            .collect::<Vec<_>>(),
    );
    assert!(central.wait(LONG, |m| m
        .iter()
        .filter(|m| m.json.get("seq").is_some())
        .count()
        == 20));
    let log = daemon.log.clone();
    let (code, took) = daemon.terminate();
    assert_eq!(
        code,
        Some(0),
        "log:\n{}",
        std::fs::read_to_string(log).unwrap()
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(central.wait(Duration::from_secs(5), |m| m
        .iter()
        .any(|m| m.json["state"] == "offline" && m.json["reason"] == "shutdown")));
    let late = Subscriber::connect(broker.port, "central-term-late");
    assert!(
        late.wait(Duration::from_secs(5), |m| m
            .iter()
            .any(|m| m.retain && m.json["state"] == "offline")),
        "offline must be retained"
    );
}

#[test]
fn garbage_and_oversized_lines_are_skipped_and_the_connection_stays_open() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-garbage");
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));

    let mut s = std::net::TcpStream::connect(("127.0.0.1", station.ingest_port)).unwrap();
    s.write_all(line("good", "event", 1).as_bytes()).unwrap();
    s.write_all(b"\x00\xff\xfe garbage \x1b[31m\n").unwrap();
    s.write_all(b"{\"kind\":\"x\",\"data\":\n").unwrap();
    s.write_all(b"{\"kind\":\"Not Valid\"}\n").unwrap();
    // 200 KiB without a newline, then the newline: discarded, not buffered.
    let big = vec![b'a'; 200 * 1024];
    s.write_all(&big).unwrap();
    s.write_all(b"\n").unwrap();
    s.write_all(line("good", "event", 2).as_bytes()).unwrap();
    s.flush().unwrap();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json["kind"] == "good")
            .count()
            == 2),
        "log:\n{}",
        daemon.log_text()
    );
    // Same connection still works.
    s.write_all(line("good", "event", 3).as_bytes()).unwrap();
    assert!(central.wait(LONG, |m| m
        .iter()
        .filter(|m| m.json["kind"] == "good")
        .count()
        == 3));
    let ns: Vec<u64> = central
        .envelopes()
        .iter()
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [1, 2, 3]);
    let log = daemon.log_text();
    assert_eq!(
        log.matches("jsonl.line_rejected").count(),
        4,
        "each bad line logged once:\n{log}"
    );
    assert!(log.contains("exceeds the 65536-byte limit"), "{log}");
}

#[test]
fn config_errors_exit_78_and_check_config_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[station]\nid = \"Bad Id\"\nname = \"x\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1\"]\n[buffer]\npath = \"/tmp/x.db\"\n").unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(78));
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .arg("check-config")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&check.stderr);
    assert!(msg.starts_with(&format!("{}:2", cfg.display())), "{msg}");
    assert!(msg.contains("a-z, 0-9 and '-'"), "{msg}");

    let station = Station::new(1883, "");
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .arg("check-config")
        .arg("--config")
        .arg(&station.config)
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn brokers_are_tried_in_order_and_a_dead_first_one_is_skipped() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-order");
    let dead = free_port();
    let station = Station::with_uplink(
        &format!(
            "brokers = [\"mqtt://127.0.0.1:{dead}\", \"mqtt://127.0.0.1:{}\"]",
            broker.port
        ),
        "",
    );
    let daemon = station.start();
    assert!(
        central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")),
        "log:\n{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    let failed = log
        .find(&format!("127.0.0.1:{dead}"))
        .expect("the first broker was tried");
    let connected = log
        .find("uplink.connected")
        .expect("then the second one connected");
    assert!(failed < connected, "{log}");
}

#[test]
fn a_killed_daemon_leaves_the_retained_last_will_offline() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-will");
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    daemon.kill9();
    assert!(central.wait(LONG, |m| m.iter().any(
        |m| m.json["state"] == "offline" && m.json["reason"] == "connection lost"
    )));
    let late = Subscriber::connect(broker.port, "central-will-late");
    assert!(late.wait(Duration::from_secs(5), |m| m
        .iter()
        .any(|m| m.retain && m.json["state"] == "offline")));
}

#[test]
fn many_connections_at_once_all_delivered_in_order_per_connection() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-many");
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let port = station.ingest_port;
    let senders: Vec<_> = (0..40u64)
        .map(|c| {
            std::thread::spawn(move || {
                let lines: Vec<String> = (0..50u64)
                    .map(|n| format!("{{\"kind\":\"c\",\"prio\":\"telemetry\",\"device\":\"dev-{c}\",\"data\":{{\"n\":{n}}}}}\n"))
                    .collect();
                send_lines(port, &lines);
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    assert!(
        central.wait(LONG, |m| m.iter().filter(|m| m.json["kind"] == "c").count()
            == 2000),
        "log:\n{}",
        daemon.log_text()
    );
    let env = central.envelopes();
    for c in 0..40 {
        let ns: Vec<u64> = env
            .iter()
            .filter(|e| e["device"] == format!("dev-{c}"))
            .map(|e| e["data"]["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, (0..50).collect::<Vec<_>>(), "connection {c}");
    }
}

#[test]
fn a_local_input_cannot_forge_the_daemons_records_or_speak_for_other_devices() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-forgery");
    let station = Station::new(broker.port, "");
    // ingest1 (the Unix socket, the last device so far) may speak only for the roster, only
    // duty.* kinds; a JT/T 808 listener owns car-03.
    station.append_config(
        "devices = [\"roster\"]\nkinds = [\"duty.*\"]\n\n[[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:0\"\n[device.terminals]\n\"013912345678\" = \"car-03\"\n",
    );
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));

    let forged = [
        r#"{"kind":"outbox.evicted","prio":"alarm","data":{"ranges":[[1,99]]}}"#,
        r#"{"kind":"outbox.recovered","prio":"alarm"}"#,
        r#"{"kind":"vehicle.emergency","prio":"alarm","device":"car-03"}"#,
        r#"{"kind":"device.online","device":"gps7"}"#,
        r#"{"kind":"door.open","device":"car-03"}"#,
        r#"{"kind":"door.open","device":"ingest1"}"#,
    ];
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", station.ingest_port)).unwrap();
    for l in forged {
        tcp.write_all(format!("{l}\n").as_bytes()).unwrap();
    }
    tcp.write_all(line("door.open", "event", 1).as_bytes())
        .unwrap();
    let mut unix = std::os::unix::net::UnixStream::connect(station.socket()).unwrap();
    for l in [
        r#"{"kind":"door.open","device":"roster"}"#,
        r#"{"kind":"duty.change","device":"someone-else"}"#,
        r#"{"kind":"duty.change","device":"roster","data":{"n":2}}"#,
    ] {
        unix.write_all(format!("{l}\n").as_bytes()).unwrap();
    }
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .any(|m| m.json["kind"] == "duty.change" && m.json["data"]["n"] == 2)),
        "the allowed line after the refused ones (same connection): log:\n{}",
        daemon.log_text()
    );
    // The good line on the TCP connection came after six refused ones on it.
    tcp.write_all(line("door.open", "event", 3).as_bytes())
        .unwrap();
    assert!(central.wait(LONG, |m| m
        .iter()
        .any(|m| m.json["kind"] == "door.open" && m.json["data"]["n"] == 3)));
    let seen: Vec<(String, String)> = central
        .envelopes()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["device"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("door.open".to_string(), "ingest0".to_string()),
            ("duty.change".to_string(), "roster".to_string()),
            ("door.open".to_string(), "ingest0".to_string())
        ],
        "only the allowed lines reach central"
    );
    let out = station.cli(&["devices", "--json"]);
    let devices: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let forbidden = |id: &str| {
        devices["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .map(|d| d["counters"]["jsonl.lines_forbidden"].clone())
    };
    assert_eq!(forbidden("ingest0"), Some(6.into()));
    assert_eq!(forbidden("ingest1"), Some(2.into()));
    let log = daemon.log_text();
    assert_eq!(log.matches("jsonl.line_forbidden").count(), 8, "{log}");
    assert!(
        log.contains("kind \\\"outbox.evicted\\\" is reserved")
            || log.contains("kind \"outbox.evicted\" is reserved"),
        "{log}"
    );
    assert!(
        log.contains("belongs to device \\\"fleet\\\" (jt808)")
            || log.contains("belongs to device \"fleet\" (jt808)"),
        "{log}"
    );
}

#[test]
fn sighup_reloads_and_is_survived_not_a_silent_death() {
    // `systemctl kill -s HUP` (or a logrotate habit) must not stop the station: it reloads an
    // unchanged file (nothing restarts) and runs on.
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-hup");
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(
        wait_until(LONG, || daemon.log_text().contains("config.reloaded")),
        "log:\n{}",
        daemon.log_text()
    );
    send_lines(station.ingest_port, &[line("after.hup", "event", 1)]);
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["kind"] == "after.hup")));
    let reloaded = central
        .envelopes()
        .into_iter()
        .find(|e| e["kind"] == "config.reloaded")
        .expect("config.reloaded");
    assert_eq!(reloaded["data"]["devices"]["unchanged"], 2);
    assert!(reloaded["data"]["devices"]["restarted"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(
        !central.all().iter().any(|m| m.json["state"] == "offline"),
        "no offline: it never stopped"
    );
    let (code, _) = daemon.terminate();
    assert_eq!(code, Some(0), "a clean stop afterwards");
}
