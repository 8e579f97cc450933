//! The backlog's replay under a bandwidth cap, in the real daemon: the link to the broker is
//! judged by the kernel's route (here loopback, which this test's hardware profile calls the
//! box's cellular interface), the cellular cap applies, the replay takes as long as the cap
//! says, and a live line sent during it arrives before the backlog is through. Nothing is lost.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);
const CAP: u64 = 20_000;

#[test]
fn a_cellular_route_caps_the_replay_and_live_lines_pass_the_backlog() {
    let mut broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-cap");
    let station = Station::new(broker.port, "");
    let profile = station.dir.path().join("cellular-lo.toml");
    std::fs::write(
        &profile,
        "[profile]\nname = \"cellular-test\"\ndescription = \"loopback standing in for the 4G module\"\narch = \"any\"\n\n[[network]]\ninterface = \"lo\"\nrole = \"cellular\"\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&station.config)
        .unwrap()
        .replace(
            "name = \"测试驻巡站\"\n",
            &format!(
                "name = \"测试驻巡站\"\nprofile = \"{}\"\n",
                profile.display()
            ),
        )
        .replace(
            "reconnect_max_ms = 400\n",
            &format!("reconnect_max_ms = 400\nreplay_max_bytes_per_s_cellular = {CAP}\n"),
        );
    std::fs::write(&station.config, text).unwrap();
    let daemon = station.start();
    wait_online(&central, &daemon);
    assert!(
        wait_until(LONG, || daemon.log_text().contains("uplink.replay_cap")),
        "log:\n{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(log.contains("leaves through lo, cellular"), "{log}");

    // A backlog of about 100 kB while the broker is away.
    broker.stop();
    assert!(wait_until(LONG, || {
        let s: serde_json::Value =
            serde_json::from_str(&station.cli_ok(&["status", "--json"])).unwrap();
        s["uplink"]["connected_to"].is_null()
    }));
    let pad = "x".repeat(150);
    let lines: Vec<String> = (0..400)
        .map(|n| format!("{{\"kind\":\"backlog.row\",\"prio\":\"telemetry\",\"data\":{{\"n\":{n},\"pad\":\"{pad}\"}}}}\n"))
        .collect();
    send_lines(station.ingest_port, &lines);
    assert!(wait_until(LONG, || station.outbox_rows() >= 400));

    broker.start();
    let back = Instant::now();
    assert!(wait_until(LONG, || central
        .envelopes()
        .iter()
        .any(|e| e["kind"] == "backlog.row" && e["historical"] == true)));
    send_lines(station.ingest_port, &[line("live.now", "event", 1)]);
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json["kind"] == "backlog.row")
            .count()
            >= 400),
        "the backlog never arrived; log:\n{}",
        daemon.log_text()
    );
    let took = back.elapsed();
    let order: Vec<String> = central
        .envelopes()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    let live = order
        .iter()
        .position(|k| k == "live.now")
        .expect("the live line arrived");
    let last_backlog = order.iter().rposition(|k| k == "backlog.row").unwrap();
    assert!(
        live < last_backlog,
        "the live line waited for the backlog: {live} vs {last_backlog}"
    );
    // The cap held: the replay took at least what the backlog's bytes (payload and topic below
    // the station's root, as the cap counts them) take at the cap, less the one second a
    // bucket may hold.
    let backlog_bytes: u64 = central
        .all()
        .iter()
        .filter(|m| m.json["kind"] == "backlog.row")
        .map(|m| (m.json.to_string().len() + m.topic.len() - "stations/test-st01/".len()) as u64)
        .sum();
    let floor = Duration::from_secs_f64(backlog_bytes as f64 / CAP as f64 - 1.5);
    eprintln!("{backlog_bytes} bytes of backlog replayed in {took:?} at a cap of {CAP} B/s");
    assert!(
        took >= floor,
        "replayed in {took:?}, faster than the cap allows ({floor:?})"
    );
    let seqs = central.seqs();
    assert_eq!(
        missing_seqs(&seqs, *seqs.iter().max().unwrap()),
        Vec::<u64>::new()
    );
    drop(daemon);
}
