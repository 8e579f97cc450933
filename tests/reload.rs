//! Reloading the configuration of a running daemon (SIGHUP, `stationd reload`, central's
//! signed `config.reload`), checked from outside: a producer keeps one connection to an input
//! and sends without pause while the configuration changes three times (a device added, a
//! device changed, the broker changed and a device removed). Nothing it sent is lost, the seq
//! central sees stays contiguous across both brokers, its connection is never cut (the input
//! was not restarted), and each change touches only what changed. An invalid file changes
//! nothing and says why; a change read at start only waits for the restart, and says so.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// The station's file: `brokers`, the three jsonl inputs' ports (None: not configured), and
/// `ingest1`'s connection limit.
struct Layout {
    broker: u16,
    ingest2: Option<u16>,
    ingest1_max: u32,
    extra: String,
}

fn write_config(station: &Station, l: &Layout) {
    let ingest2 = l.ingest2.map_or(String::new(), |port| {
        format!("\n[[device]]\nid = \"ingest2\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:{port}\"\n")
    });
    let text = format!(
        r#"[station]
id = "test-st01"
name = "测试驻巡站"

[uplink]
brokers = ["mqtt://127.0.0.1:{broker}"]
reconnect_min_ms = 50
reconnect_max_ms = 400

[buffer]
path = "{db}"

[[device]]
id = "ingest0"
driver = "jsonl"
listen = "tcp://127.0.0.1:{ingest0}"

[[device]]
id = "ingest1"
driver = "jsonl"
listen = "unix://{sock}"
max_connections = {max}
{ingest2}
[commands]
public_key_file = "{key}"
{extra}"#,
        broker = l.broker,
        db = station.db().display(),
        ingest0 = station.ingest_port,
        sock = station.socket().display(),
        max = l.ingest1_max,
        key = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/keys/dispatch-test.pub")
            .display(),
        extra = l.extra,
    );
    std::fs::write(&station.config, text).unwrap();
}

/// `stationd reload --json`: (exit code, outcome).
fn reload(station: &Station) -> (i32, Value) {
    let out = station.cli(&["reload", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "reload printed no JSON ({e}): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// A local system sending `load.tick` lines over one connection, without pause, until stopped.
struct Producer {
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Producer {
    fn start(port: u16) -> Producer {
        let (sent, stop, broken) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let thread = {
            let (sent, stop, broken) = (sent.clone(), stop.clone(), broken.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let batch: String = (n..n + 5)
                        .map(|i| line("load.tick", "telemetry", i))
                        .collect();
                    if conn.write_all(batch.as_bytes()).is_err() {
                        broken.store(true, Ordering::Relaxed);
                        return;
                    }
                    n += 5;
                    sent.store(n, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = conn.flush();
            })
        };
        Producer {
            sent,
            stop,
            broken,
            thread: Some(thread),
        }
    }

    /// Fails the test if the producer's connection was cut (its input restarted).
    fn still_connected(&self) {
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !self.broken.load(Ordering::Relaxed),
            "the producer's connection was cut: its input was restarted"
        );
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops; how many lines were sent.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        assert!(
            !self.broken.load(Ordering::Relaxed),
            "the producer's connection was cut: its input was restarted"
        );
        self.sent()
    }
}

/// The `load.tick` numbers central received on either broker.
fn ticks(centrals: &[&Subscriber]) -> BTreeSet<u64> {
    centrals
        .iter()
        .flat_map(|c| c.envelopes())
        .filter(|e| e["kind"] == "load.tick")
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn three_reloads_under_load_lose_nothing_and_touch_only_what_changed() {
    let broker_a = Broker::started();
    let broker_b = Broker::started();
    let central_a = Subscriber::connect(broker_a.port, "central-a");
    let central_b = Subscriber::connect(broker_b.port, "central-b");
    let station = Station::new(broker_a.port, "");
    let mut layout = Layout {
        broker: broker_a.port,
        ingest2: None,
        ingest1_max: 64,
        extra: String::new(),
    };
    write_config(&station, &layout);
    let daemon = station.start();
    wait_online(&central_a, &daemon);
    let producer = Producer::start(station.ingest_port);
    assert!(wait_until(LONG, || ticks(&[&central_a]).len() > 100));

    // 1. A device added: only it starts.
    let ingest2 = free_port();
    layout.ingest2 = Some(ingest2);
    write_config(&station, &layout);
    let (code, out) = reload(&station);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(ids(&out["devices"]["added"]), ["ingest2"]);
    assert!(
        ids(&out["devices"]["restarted"]).is_empty() && ids(&out["devices"]["removed"]).is_empty()
    );
    assert_eq!(
        (out["devices"]["unchanged"].as_u64(), out["uplink"].as_str()),
        (Some(2), Some("unchanged"))
    );
    producer.still_connected();
    send_lines(ingest2, &[line("door.open", "event", 1)]);
    assert!(central_a.wait(LONG, |m| m
        .iter()
        .any(|m| m.json["device"] == "ingest2" && m.json["kind"] == "door.open")));
    let first_hash = out["hash"].as_str().unwrap().to_string();

    // 2. A device's settings changed: only it restarts.
    layout.ingest1_max = 8;
    write_config(&station, &layout);
    let (code, out) = reload(&station);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(ids(&out["devices"]["restarted"]), ["ingest1"]);
    assert!(ids(&out["devices"]["added"]).is_empty());
    assert_eq!(out["devices"]["unchanged"].as_u64(), Some(2));
    assert_eq!(out["previous_hash"], json!(first_hash));
    producer.still_connected();
    let mut unix = std::os::unix::net::UnixStream::connect(station.socket()).unwrap();
    unix.write_all(line("door.open", "event", 2).as_bytes())
        .unwrap();
    drop(unix);

    // 3. Another broker, and a device removed, by SIGHUP while the producer sends.
    let before_switch = producer.sent();
    layout.broker = broker_b.port;
    layout.ingest2 = None;
    write_config(&station, &layout);
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    producer.still_connected();
    assert!(
        central_b
            .wait(LONG, |m| m.iter().any(|m| m.json["kind"] == "load.tick"
                && m.json["data"]["n"].as_u64() > Some(before_switch))),
        "the station never went on at the new broker; log:\n{}",
        daemon.log_text()
    );
    assert!(
        wait_until(LONG, || TcpStream::connect(("127.0.0.1", ingest2)).is_err()),
        "the removed input still listens"
    );
    let devices: Value = serde_json::from_str(&station.cli_ok(&["devices", "--json"])).unwrap();
    let listed: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&"ingest2"), "{listed:?}");
    // The old broker was told why the station left.
    let offline = central_a
        .status()
        .into_iter()
        .rev()
        .find(|m| m.json["state"] == "offline")
        .expect("offline on the old broker");
    assert_eq!(offline.json["reason"], "reconfigured");

    std::thread::sleep(Duration::from_millis(500));
    let sent = producer.finish();
    assert!(sent > 300, "the producer sent {sent}");
    assert!(
        wait_until(LONG, || ticks(&[&central_a, &central_b]).len() as u64
            == sent),
        "lost: {} of {sent} lines never reached central; log:\n{}",
        sent - ticks(&[&central_a, &central_b]).len() as u64,
        daemon.log_text()
    );
    // One seq, contiguous across both brokers (replays of what the old broker had not
    // acknowledged are duplicates, not gaps).
    let mut seqs: Vec<u64> = central_a.seqs();
    seqs.extend(central_b.seqs());
    let max = *seqs.iter().max().unwrap();
    assert_eq!(missing_seqs(&seqs, max), Vec::<u64>::new());
    eprintln!(
        "{sent} lines through three reloads: seq 1..={max} contiguous across both brokers, {} duplicate(s) replayed to the new broker",
        seqs.len() as u64 - max
    );
    // Each reload was reported to central with its hash.
    let reloaded: Vec<Value> = [&central_a, &central_b]
        .iter()
        .flat_map(|c| c.envelopes())
        .filter(|e| e["kind"] == "config.reloaded")
        .map(|e| e["data"].clone())
        .collect();
    let by: BTreeSet<&str> = reloaded.iter().filter_map(|d| d["by"].as_str()).collect();
    assert!(
        by.contains("SIGHUP") && by.iter().any(|b| b.starts_with("cli:")),
        "{by:?}"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("config.reloaded") && log.contains("uplink.reconfigured"),
        "{log}"
    );
    drop(daemon);
}

#[test]
fn an_invalid_file_changes_nothing_and_a_start_only_change_waits_for_the_restart() {
    use common::dispatch::{answer, send};
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-reload");
    let station = Station::new(broker.port, "");
    let mut layout = Layout {
        broker: broker.port,
        ingest2: None,
        ingest1_max: 64,
        extra: String::new(),
    };
    write_config(&station, &layout);
    let daemon = station.start();
    wait_online(&central, &daemon);
    let good = std::fs::read_to_string(&station.config).unwrap();

    // A typo: rejected with the file, line and key; the running configuration stays.
    std::fs::write(
        &station.config,
        good.replace("max_connections = 64", "max_connection = 64"),
    )
    .unwrap();
    let out = station.cli(&["reload"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("NOT reloaded") && text.contains("max_connection"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}:", station.config.display())),
        "names the file: {text}"
    );
    let rejected = wait_event(&central, &daemon, "config.rejected", "the typo", |d| {
        d["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_connection"))
    });
    assert_eq!(rejected["applied"], false);
    let status: Value = serde_json::from_str(&station.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(status["config"]["last_reload"]["applied"], false);
    let check = station.cli(&["check"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("last reload was rejected"));
    // Still working.
    send_lines(station.ingest_port, &[line("door.open", "event", 1)]);
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["kind"] == "door.open")));

    // Read at start only: accepted, listed as waiting for the restart, not applied.
    layout.extra = "[dispatch]\nack_within_s = 30\n".into();
    write_config(&station, &layout);
    let (code, out) = reload(&station);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(ids(&out["pending_restart"]), ["dispatch"]);
    assert_eq!(out["devices"]["unchanged"].as_u64(), Some(2));
    let check = String::from_utf8_lossy(&station.cli(&["check"]).stdout).to_string();
    assert!(
        check.contains("applied at the next restart: dispatch"),
        "{check}"
    );

    // Central's signed config.reload: the answer carries the file's hash.
    layout.ingest1_max = 16;
    write_config(&station, &layout);
    let text = std::fs::read(&station.config).unwrap();
    let expected = {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(&text);
        format!(
            "sha256:{}",
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    send(broker.port, "config.reload", "reload-1", json!({}));
    let a = answer(&central, "reload-1", LONG, &daemon);
    assert_eq!(a["status"], "done", "{a:#}");
    assert_eq!(a["result"]["hash"], json!(expected));
    assert_eq!(ids(&a["result"]["devices"]["restarted"]), ["ingest1"]);
    assert_eq!(a["result"]["by"], "central");
    let status: Value = serde_json::from_str(&station.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(status["config"]["hash"], json!(expected));
    drop(daemon);
}
