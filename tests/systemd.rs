//! The daemon under a (simulated) systemd: the notify protocol over a real datagram socket.

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
