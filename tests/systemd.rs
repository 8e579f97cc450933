//! The daemon under a (simulated) systemd: the notify protocol over a real datagram socket.
//! (The real systemd, as PID 1 in a booted container, is tests/boot.sh.)
#![allow(clippy::disallowed_methods)] // the test compares the daemon's wall clock with its own

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

#[test]
fn ready_status_watchdog_and_stopping_reach_systemd() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-systemd");
    let station = Station::new(broker.port, "");
    let sock_path = station.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let daemon = station.start_with_env(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "1000000"),
    ]);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if got.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3
            && got.iter().any(|m| m.contains("STATUS=connected to"))
        {
            break;
        }
    }
    assert!(got[0].contains("READY=1"), "READY=1 first: {got:?}");
    assert!(
        got.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3,
        "pinged while healthy: {got:?}"
    );
    assert!(
        got.iter()
            .any(|m| m.contains("STATUS=connected to mqtt://127.0.0.1")),
        "{got:?}"
    );
    assert!(central.wait(Duration::from_secs(10), |m| m
        .iter()
        .any(|m| m.json["state"] == "online")));
    let (code, _) = daemon.terminate();
    assert_eq!(code, Some(0));
    let mut tail = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        tail.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if tail.iter().any(|m| m.contains("STOPPING=1")) {
            break;
        }
    }
    assert!(tail.iter().any(|m| m.contains("STOPPING=1")), "{tail:?}");
}

#[test]
fn an_uplink_outage_is_not_a_wedge_so_the_watchdog_keeps_being_pinged() {
    // Without a broker the uplink keeps its heartbeat (it is backing off, not wedged): the
    // watchdog must still be pinged, so an outage does not restart the daemon.
    let station = Station::new(free_port(), "");
    let sock_path = station.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _daemon = station.start_with_env(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "1000000"),
    ]);
    // 12 events wait in the outbox: the status line gives the backlog depth.
    let lines: Vec<String> = (0..12).map(|n| line("meter", "telemetry", n)).collect();
    send_lines(station.ingest_port, &lines);
    let mut buf = [0u8; 4096];
    let (mut pings, mut down_status) = (0, false);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) && (pings < 4 || !down_status) {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]);
            pings += m.contains("WATCHDOG=1") as u32;
            down_status |=
                m.contains("STATUS=uplink down, buffering in the outbox: backlog 12 rows");
        }
    }
    assert!(pings >= 4, "an outage is not a wedge: {pings} pings");
    assert!(
        down_status,
        "the status line says the uplink is down and how much waits"
    );
}

/// libfaketime (Debian's `libfaketime`), which shifts what a process reads from the wall clock
/// while the test changes a file; tests/run.sh installs it.
fn faketime_library() -> std::path::PathBuf {
    let candidates = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"));
    candidates
        .into_iter()
        .find(|p| p.exists())
        .expect("libfaketime is not installed (apt-get install libfaketime): it steps the daemon's wall clock in this test")
}

/// Collects notify messages for `span`; returns (WATCHDOG=1 count, longest gap between pings).
fn pings_during(sock: &UnixDatagram, span: Duration) -> (u32, Duration) {
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    let (mut pings, mut last, mut gap) = (0, start, Duration::ZERO);
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while start.elapsed() < span {
        if let Ok(n) = sock.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
                pings += 1;
                gap = gap.max(last.elapsed());
                last = Instant::now();
            }
        }
    }
    (pings, gap.max(last.elapsed()))
}

#[test]
fn the_watchdog_holds_when_ntp_steps_the_wall_clock_by_hours() {
    // A box without a battery-backed clock boots at an old time and NTP steps it by hours. The
    // daemon is in the middle of a connection attempt to a broker that accepts TCP but never
    // answers (10 s to give up), the kind of wait where a wall-clock deadline breaks: stepped
    // forward, the uplink's promise looks broken and the pings stop until the attempt ends;
    // systemd would kill a healthy daemon.
    let silent_broker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let station = Station::new(silent_broker.local_addr().unwrap().port(), "");
    let offset = station.dir.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let sock_path = station.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let lib = faketime_library();
    let _daemon = station.start_with_env(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "1000000"),
        ("LD_PRELOAD", lib.to_str().unwrap()),
        ("FAKETIME_TIMESTAMP_FILE", offset.to_str().unwrap()),
        ("FAKETIME_NO_CACHE", "1"),
        ("DONT_FAKE_MONOTONIC", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]);
    let (pings, _) = pings_during(&sock, Duration::from_secs(2));
    assert!(pings >= 2, "pinged before the step: {pings}");
    send_lines(station.ingest_port, &[line("door.open", "event", 1)]);
    assert!(wait_until(Duration::from_secs(5), || {
        let out = station.cli(&["devices", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["devices"].as_array().is_some_and(|d| {
            d.iter()
                .any(|d| d["id"] == "ingest0" && d["last_seen_ms"].is_i64())
        })
    }));
    // The daemon's wall clock as it reports it, minus the test's.
    let skew_h = || {
        let out = station.cli(&["devices", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        (v["now_ms"].as_i64().unwrap() - now) as f64 / 3_600_000.0
    };
    for (step, want_h) in [("+5h", 5.0), ("-5h", -5.0)] {
        std::fs::write(&offset, format!("{step}\n")).unwrap();
        let skew = skew_h();
        assert!(
            (skew - want_h).abs() < 0.01,
            "the daemon's wall clock was stepped {step}: it reads {skew:.3} h off"
        );
        // Pinged every 0.5 s (half of WATCHDOG_USEC); systemd would act after 1 s of silence.
        let (pings, gap) = pings_during(&sock, Duration::from_secs(4));
        assert!(
            pings >= 6 && gap < Duration::from_millis(900),
            "after a {step} step of the wall clock: {pings} pings in 4 s, longest gap {gap:?}"
        );
        // The technician's view measures on the monotonic clock too: the uplink has been down
        // for seconds (a warning), not for five hours (a failure), and ingest0 was heard
        // seconds ago.
        let out = station.cli(&["check", "--json"]);
        let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let uplink = checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "uplink")
            .unwrap()
            .clone();
        assert_eq!(
            uplink["outcome"], "warning",
            "after a {step} step: {uplink}"
        );
        let out = station.cli(&["devices", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ingest = v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == "ingest0")
            .unwrap()
            .clone();
        let age_s =
            (v["now_ms"].as_i64().unwrap() - ingest["last_seen_ms"].as_i64().unwrap()) / 1000;
        assert!(
            (0..30).contains(&age_s),
            "after a {step} step ingest0 was last seen {age_s} s ago"
        );
    }
}
