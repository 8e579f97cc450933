//! Commands from dispatch, end to end: signed messages published on a real mosquitto, the
//! real daemon, answers read back from the broker as central reads them.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::dispatch::*;
use common::*;
use serde_json::{json, Value};
use stationd::command::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
const STATION: &str = "test-st01";

fn cmd_topic(name: &str) -> String {
    format!("stations/{STATION}/cmd/{name}")
}

/// The answers central received for `request_id`, in order (the envelope's data).
fn answers(central: &Subscriber, request_id: &str) -> Vec<Value> {
    let topic = format!("stations/{STATION}/cmd-result/{request_id}");
    central
        .all()
        .into_iter()
        .filter(|m| m.topic == topic)
        .map(|m| {
            assert_eq!(m.json["kind"], "cmd.result", "{}", m.json);
            assert!(
                m.json["seq"].as_u64().is_some(),
                "answers go through the outbox"
            );
            m.json["data"].clone()
        })
        .collect()
}

fn wait_answers(central: &Subscriber, request_id: &str, n: usize) -> Vec<Value> {
    assert!(
        wait_until(LONG, || answers(central, request_id).len() >= n),
        "no answer {n} for {request_id}: {:?}",
        answers(central, request_id)
    );
    answers(central, request_id)
}

fn online(central: &Subscriber, n: usize) {
    assert!(central.wait(LONG, |m| m
        .iter()
        .filter(|m| m.json["state"] == "online")
        .count()
        >= n));
}

fn counters(s: &Station) -> Value {
    let out = s.cli(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["counters"].clone()
}

#[test]
fn a_signed_ping_runs_once_and_a_repeat_gets_the_same_answer_also_after_a_restart() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central");
    let s = station(&broker, "");
    let daemon = s.start();
    online(&central, 1);
    let ping = command("ping", "r-1", json!({}), Some("dispatch-test.key"), STATION);
    publish(broker.port, vec![(cmd_topic("ping"), ping.clone())]);
    let first = wait_answers(&central, "r-1", 1).remove(0);
    assert_eq!(first["status"], "done", "{first}");
    assert_eq!(first["command"], "ping");
    assert_eq!(
        first["clock"]
            .as_str()
            .map(|c| c == "synced" || c == "unsynced"),
        Some(true)
    );
    for key in ["boot_id", "uptime_s", "version", "backlog_rows", "clock"] {
        assert!(!first["result"][key].is_null(), "result.{key}: {first}");
    }
    assert!(first["started_ts"].is_string() && first["finished_ts"].is_string());

    // The same request_id again: the same answer, not a second run.
    publish(broker.port, vec![(cmd_topic("ping"), ping.clone())]);
    let again = wait_answers(&central, "r-1", 2);
    assert_eq!(again[1], first, "answered from the kept answer");
    assert_eq!(counters(&s)["cmd.executed"], 1);

    // After a restart: still the kept answer, with the first run's boot_id.
    daemon.terminate();
    let _daemon = s.start();
    online(&central, 2);
    publish(broker.port, vec![(cmd_topic("ping"), ping)]);
    let after = wait_answers(&central, "r-1", 3);
    assert_eq!(after[2], first, "not run again after a restart");
    assert_eq!(
        counters(&s).get("cmd.executed"),
        None,
        "this run executed nothing"
    );
}

#[test]
fn forged_altered_expired_and_unsigned_commands_are_refused_with_the_reason() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central");
    let s = station(&broker, "");
    let _daemon = s.start();
    online(&central, 1);
    let mut tampered: Value = serde_json::from_slice(&command(
        "rebirth",
        "tampered",
        json!({"x": 1}),
        Some("dispatch-test.key"),
        STATION,
    ))
    .unwrap();
    tampered["args"]["x"] = json!(2);
    publish(
        broker.port,
        vec![
            (
                cmd_topic("ping"),
                command("ping", "stranger", json!({}), Some("other.key"), STATION),
            ),
            (
                cmd_topic("ping"),
                command(
                    "ping",
                    "elsewhere",
                    json!({}),
                    Some("dispatch-test.key"),
                    "test-st02",
                ),
            ),
            (cmd_topic("rebirth"), serde_json::to_vec(&tampered).unwrap()),
            // Signed for `ping`, published as `rebirth`: the name is signed too.
            (
                cmd_topic("rebirth"),
                command(
                    "ping",
                    "renamed",
                    json!({}),
                    Some("dispatch-test.key"),
                    STATION,
                ),
            ),
            (
                cmd_topic("ping"),
                command("ping", "unsigned", json!({}), None, STATION),
            ),
            (
                cmd_topic("launch"),
                command(
                    "launch",
                    "unknown",
                    json!({}),
                    Some("dispatch-test.key"),
                    STATION,
                ),
            ),
        ],
    );
    let expect = [
        ("stranger", "refused", "bad signature"),
        ("elsewhere", "refused", "bad signature"),
        ("tampered", "refused", "bad signature"),
        ("renamed", "refused", "bad signature"),
        ("unsigned", "refused", "unsigned"),
        ("unknown", "unknown_command", "ping, rebirth"),
    ];
    for (id, status, reason) in expect {
        let a = wait_answers(&central, id, 1).remove(0);
        assert_eq!(a["status"], status, "{id}: {a}");
        assert!(
            a["reason"].as_str().unwrap_or_default().contains(reason),
            "{id}: {a}"
        );
        assert!(a["started_ts"].is_null(), "{id} did not run: {a}");
    }
    let c = counters(&s);
    assert_eq!(c.get("cmd.executed"), None, "nothing ran: {c}");
    assert_eq!(c["cmd.unauthenticated"], 5, "{c}");
}

#[test]
fn on_a_synchronised_clock_expired_and_far_future_commands_are_not_run() {
    let Some(_synced) = KernelClockSynced::set() else {
        eprintln!("SKIPPED on_a_synchronised_clock_expired_and_far_future_commands_are_not_run: needs root to set the kernel's clock-sync flag");
        return;
    };
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central");
    let s = station(&broker, "max_expiry_s = 3600\n");
    let _daemon = s.start();
    online(&central, 1);
    let now = stationd::clock::unix_ms();
    let signed = |id: &str, issued: i64, expires: i64| {
        let mut c = Command::new("ping", id, issued, expires, Default::default());
        c.sign(STATION, &key("dispatch-test.key"));
        (cmd_topic("ping"), c.to_payload())
    };
    publish(
        broker.port,
        vec![
            signed("late", now - 7_200_000, now - 3_600_000),
            signed("far", now, now + 7_200_000),
            signed("backwards", now, now - 1),
            signed("in-time", now, now + 60_000),
        ],
    );
    for (id, status, reason) in [
        ("late", "expired", "expired at"),
        ("far", "refused", "max_expiry_s"),
        ("backwards", "refused", "not after issued_at"),
    ] {
        let a = wait_answers(&central, id, 1).remove(0);
        assert_eq!(
            (a["status"].as_str(), a["clock"].as_str()),
            (Some(status), Some("synced")),
            "{id}: {a}"
        );
        assert!(
            a["reason"].as_str().unwrap_or_default().contains(reason),
            "{id}: {a}"
        );
    }
    assert_eq!(wait_answers(&central, "in-time", 1)[0]["status"], "done");
    assert_eq!(counters(&s)["cmd.executed"], 1);
}

#[test]
fn garbage_is_counted_and_the_subscription_stays_up() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central");
    let s = station(&broker, "");
    let daemon = s.start();
    online(&central, 1);
    let mut big = br#"{"request_id":"big","pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 70_000));
    big.extend(br#""}"#);
    publish(
        broker.port,
        vec![
            (cmd_topic("ping"), b"not json at all".to_vec()),
            (cmd_topic("ping"), vec![0xff, 0x00, 0xc3, 0x28, 0x7b]),
            (cmd_topic("ping"), big),
            (cmd_topic("ping"), br#"{"request_id":"no-times"}"#.to_vec()),
            (
                cmd_topic("ping"),
                command(
                    "ping",
                    "after",
                    json!({}),
                    Some("dispatch-test.key"),
                    STATION,
                ),
            ),
        ],
    );
    let a = wait_answers(&central, "after", 1).remove(0);
    assert_eq!(
        a["status"], "done",
        "the subscription survived the garbage: {a}"
    );
    let refused = wait_answers(&central, "no-times", 1).remove(0);
    assert_eq!(refused["status"], "refused");
    assert!(
        answers(&central, "big").is_empty(),
        "over 64 KiB is not read"
    );
    assert_eq!(counters(&s)["cmd.malformed"], 4);
    assert!(daemon.log_text().contains("cmd.malformed"));
}

#[test]
fn a_command_sent_while_the_station_is_away_runs_when_it_comes_back() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central");
    let s = station(&broker, "");
    let daemon = s.start();
    online(&central, 1);
    daemon.terminate();
    // The broker keeps the station's session (subscription and queued QoS 1 messages).
    publish(
        broker.port,
        vec![(
            cmd_topic("ping"),
            command(
                "ping",
                "while-away",
                json!({}),
                Some("dispatch-test.key"),
                STATION,
            ),
        )],
    );
    let _daemon = s.start();
    let a = wait_answers(&central, "while-away", 1).remove(0);
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(counters(&s)["cmd.executed"], 1);
}

#[test]
fn a_flood_of_commands_is_rate_limited_and_telemetry_still_flows() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central");
    let s = station(&broker, "max_per_minute = 20\n");
    let daemon = s.start();
    online(&central, 1);
    let key = key("dispatch-test.key");
    let now = stationd::clock::unix_ms();
    let flood: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| {
            let mut c = Command::new(
                "ping",
                &format!("f-{i}"),
                now,
                now + 600_000,
                Default::default(),
            );
            c.sign(STATION, &key);
            (cmd_topic("ping"), c.to_payload())
        })
        .collect();
    let port = broker.port;
    let flooding = std::thread::spawn(move || publish(port, flood));
    let lines: Vec<String> = (0..200).map(|n| line("tick", "telemetry", n)).collect();
    send_lines(s.ingest_port, &lines);
    flooding.join().unwrap();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json["kind"] == "tick")
            .count()
            >= 200),
        "telemetry was starved by the flood"
    );
    // Every message is taken (acknowledged to the broker): the 20 the limit allows run and
    // are answered; the rest are counted and dropped without costing the outbox anything, by
    // the rate limit or, when a burst outruns the core's queue, by the uplink.
    let taken = |c: &Value| {
        c["cmd.received"].as_u64().unwrap_or(0) + c["cmd.dropped_busy"].as_u64().unwrap_or(0)
    };
    assert!(
        wait_until(LONG, || {
            let c = counters(&s);
            taken(&c) == 10_000 && c["cmd.answered"].as_u64() == Some(20)
        }),
        "counters {}; log: {}",
        counters(&s),
        daemon
            .log_text()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let c = counters(&s);
    assert_eq!(c["cmd.executed"], 20, "{c}");
    assert_eq!(
        c["cmd.rate_limited"].as_u64().unwrap_or(0) + c["cmd.dropped_busy"].as_u64().unwrap_or(0),
        9_980,
        "{c}"
    );
    assert!(central.wait(LONG, |m| m
        .iter()
        .filter(|m| m.topic.contains("/cmd-result/f-") && m.json["data"]["status"] == "done")
        .count()
        == 20));
    assert!(daemon.log_text().contains("cmd.rate_limited"));
    assert!(missing_seqs(&central.seqs(), *central.seqs().iter().max().unwrap()).is_empty());
}

#[test]
fn the_device_board_is_retained_for_central_and_follows_changes_and_requests() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central");
    let s = station(&broker, "");
    let _daemon = s.start();
    let state_topic = format!("stations/{STATION}/state/devices");
    let snapshots = |c: &Subscriber| -> Vec<Value> {
        c.all()
            .into_iter()
            .filter(|m| m.topic == state_topic)
            .map(|m| m.json)
            .collect()
    };
    assert!(
        wait_until(LONG, || !snapshots(&central).is_empty()),
        "a snapshot on connect"
    );
    let first = snapshots(&central).remove(0);
    assert_eq!(first["station"], STATION);
    assert_eq!(first["devices"]["ingest0"]["state"], "listening", "{first}");
    assert_eq!(first["devices"]["ingest0"]["driver"], "jsonl");
    assert!(first["devices"]["ingest0"]["since"].is_string());

    // A device seen for the first time changes the board: a new snapshot follows.
    send_lines(
        s.ingest_port,
        &[r#"{"kind":"door.open","device":"door-1","data":{}}"#.to_string() + "\n"],
    );
    assert!(
        wait_until(LONG, || snapshots(&central)
            .iter()
            .any(|v| v["devices"]["door-1"]["via"] == "ingest0")),
        "{:?}",
        snapshots(&central)
    );
    let last = snapshots(&central).pop().unwrap();
    assert!(
        last["devices"]["ingest0"]["counters"]["jsonl.lines_accepted"].as_u64() >= Some(1),
        "{last}"
    );

    // Asked for: at once, and answered.
    let before = snapshots(&central).len();
    publish(
        broker.port,
        vec![(
            cmd_topic("state.devices"),
            command(
                "state.devices",
                "sd-1",
                json!({}),
                Some("dispatch-test.key"),
                STATION,
            ),
        )],
    );
    let a = wait_answers(&central, "sd-1", 1).remove(0);
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(a["result"]["devices"], 3);
    assert!(wait_until(LONG, || snapshots(&central).len() > before));

    // rebirth: the birth again, and the snapshot.
    let births = central
        .status()
        .iter()
        .filter(|m| m.json["state"] == "online")
        .count();
    publish(
        broker.port,
        vec![(
            cmd_topic("rebirth"),
            command(
                "rebirth",
                "rb-1",
                json!({}),
                Some("dispatch-test.key"),
                STATION,
            ),
        )],
    );
    let rb = &wait_answers(&central, "rb-1", 1)[0];
    assert_eq!(rb["status"], "done");
    // No dock here: the birth and the device board, nothing else.
    assert_eq!(
        rb["result"]["republished"],
        json!(["status", "state/devices"]),
        "{rb}"
    );
    assert!(central.wait(LONG, |m| m
        .iter()
        .filter(|m| m.json["state"] == "online")
        .count()
        > births));

    // Retained: a consumer that subscribes later gets the board at once.
    let late = Subscriber::connect(broker.port, "late-viewer");
    assert!(wait_until(LONG, || snapshots(&late)
        .iter()
        .any(|v| v["devices"]["door-1"].is_object())));
    assert!(late
        .all()
        .iter()
        .any(|m| m.topic == state_topic && m.retain));
}
