//! The uplink or the power fails: nothing committed is lost, `seq` has no unexplained gap.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// A subscriber with a persistent session on a broker that is then stopped: the broker keeps
/// queueing for it across restarts, as central's consumers do.
fn central_with_session(broker: &mut Broker, id: &str) -> Subscriber {
    let s = Subscriber::connect(broker.port, id);
    s.disconnect();
    broker.stop();
    // Reconnects when the broker is started again (same id, persistent session).
    std::thread::sleep(Duration::from_millis(50));
    Subscriber::connect_later(broker.port, id)
}

#[test]
fn broker_down_at_start_then_up_delivers_everything_once_alarms_first_historical() {
    let mut broker = Broker::started();
    let central = central_with_session(&mut broker, "central-outage");
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    let mut lines = Vec::new();
    for n in 0..300u64 {
        let prio = if n % 50 == 7 {
            "alarm"
        } else if n % 3 == 0 {
            "event"
        } else {
            "telemetry"
        };
        lines.push(line("sample", prio, n));
    }
    send_lines(station.ingest_port, &lines);
    assert!(
        wait_until(LONG, || station.outbox_rows() == 300),
        "not committed: {}",
        station.outbox_stats()
    );
    broker.start();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json.get("seq").is_some())
            .count()
            >= 300),
        "log:\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(300)); // anything extra would be a duplicate
    let env = central.envelopes();
    assert_eq!(env.len(), 300, "delivered once each");
    let seqs: Vec<u64> = env.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs.iter().copied().collect::<HashSet<_>>().len(), 300);
    assert!(
        env.iter().all(|e| e["historical"] == true),
        "created while the uplink was down"
    );
    // Alarms first, then everything else in seq order.
    let alarms: Vec<u64> = env
        .iter()
        .filter(|e| e["prio"] == "alarm")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(alarms.len(), 6);
    assert_eq!(&seqs[..6], &alarms[..], "alarms must arrive first");
    assert!(seqs[..6].windows(2).all(|w| w[0] < w[1]));
    assert!(
        seqs[6..].windows(2).all(|w| w[0] < w[1]),
        "the rest in seq order"
    );
    assert!(wait_until(Duration::from_secs(10), || station
        .outbox_rows()
        == 0));
}

/// A producer that writes lines as fast as the daemon takes them, reconnecting when the
/// daemon goes away, until stopped. Returns how many lines it wrote.
fn producer(
    port: u16,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            while !stop.load(Ordering::SeqCst) {
                let prio = if n.is_multiple_of(100) {
                    "alarm"
                } else {
                    "telemetry"
                };
                if s.write_all(line("load", prio, n).as_bytes()).is_err() {
                    break;
                }
                n += 1;
                written.fetch_add(1, Ordering::SeqCst);
                if n.is_multiple_of(20) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    })
}

/// The seqs the `outbox.evicted` reports among `env` name as dropped.
fn evicted_seqs(env: &[Value]) -> HashSet<u64> {
    let mut explained = HashSet::new();
    for r in env.iter().filter(|e| e["kind"] == "outbox.evicted") {
        for range in r["data"]["ranges"].as_array().unwrap() {
            let (a, b) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
            explained.extend(a..=b);
        }
    }
    explained
}

/// Every seq up to `top` arrived or is named by an `outbox.evicted` report.
fn assert_every_gap_named(got: &[u64], top: u64, explained: &HashSet<u64>) {
    let unexplained: Vec<u64> = missing_seqs(got, top)
        .into_iter()
        .filter(|s| !explained.contains(s))
        .collect();
    assert!(
        unexplained.is_empty(),
        "gaps not named by outbox.evicted: {:?}",
        &unexplained[..unexplained.len().min(20)]
    );
}

fn highest_committed(station: &Station) -> u64 {
    station.outbox_stats()["next_seq"].as_u64().unwrap() - 1
}

/// Stops the producer and waits until everything it wrote on a live connection is committed
/// (the daemon never died); returns how many lines it wrote.
fn stop_producer(
    p: std::thread::JoinHandle<()>,
    stop: &AtomicBool,
    written: &AtomicU64,
    station: &Station,
) -> u64 {
    stop.store(true, Ordering::SeqCst);
    p.join().unwrap();
    let sent = written.load(Ordering::SeqCst);
    assert!(
        sent > 1000,
        "the load was too light to mean anything: {sent}"
    );
    assert!(
        wait_until(LONG, || highest_committed(station) >= sent),
        "committed {} of {sent}",
        highest_committed(station)
    );
    sent
}

#[test]
fn broker_restarted_repeatedly_under_load_loses_nothing() {
    let mut broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-restarts");
    let station = Station::new(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let p = producer(station.ingest_port, stop.clone(), written.clone());
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        broker.stop();
        std::thread::sleep(Duration::from_millis(300));
        broker.start();
    }
    std::thread::sleep(Duration::from_millis(400));
    stop_producer(p, &stop, &written, &station);
    let top = highest_committed(&station);
    assert!(
        central.wait(LONG, |m| {
            let seqs: Vec<u64> = m.iter().filter_map(|m| m.json["seq"].as_u64()).collect();
            missing_seqs(&seqs, top).is_empty()
        }),
        "missing at central: {:?}; log:\n{}",
        &missing_seqs(&central.seqs(), top)[..missing_seqs(&central.seqs(), top).len().min(20)],
        daemon.log_text()
    );
    let env = central.envelopes();
    assert!(
        env.iter().any(|e| e["historical"] == true),
        "some were buffered during the outages"
    );
    assert!(env.iter().any(|e| e["historical"] == false));
    let restarts = daemon.log_text().matches("uplink.connected").count();
    assert!(
        restarts >= 5,
        "reconnected after every restart ({restarts})"
    );
}

#[test]
fn sigkill_repeatedly_under_load_leaves_no_seq_gap() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-kill");
    let station = Station::new(broker.port, "");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let p = producer(station.ingest_port, stop.clone(), written.clone());
    for _ in 0..5 {
        let daemon = station.start();
        std::thread::sleep(Duration::from_millis(400));
        daemon.kill9();
    }
    let daemon = station.start();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    p.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let top = highest_committed(&station);
    assert!(
        top > 1000,
        "too little was committed to mean anything: {top}"
    );
    assert!(
        central.wait(LONG, |m| {
            let seqs: Vec<u64> = m.iter().filter_map(|m| m.json["seq"].as_u64()).collect();
            missing_seqs(&seqs, top).is_empty()
        }),
        "committed seqs missing at central: {:?}; log:\n{}",
        &missing_seqs(&central.seqs(), top)[..missing_seqs(&central.seqs(), top).len().min(20)],
        daemon.log_text()
    );
    // Duplicates are allowed only for what was in flight at a kill: a small number per kill.
    let seqs = central.seqs();
    let dups = seqs.len() - seqs.iter().collect::<HashSet<_>>().len();
    eprintln!("{dups} duplicates after 5 kills");
    assert!(
        dups <= 5 * 512,
        "{dups} duplicates for 5 kills with a 256-message window"
    );
}

#[test]
fn quota_during_a_long_outage_evicts_telemetry_keeps_alarms_and_reports_the_gaps() {
    let mut broker = Broker::started();
    let central = central_with_session(&mut broker, "central-quota");
    let station = Station::new(broker.port, "max_bytes = 1048576");
    let daemon = station.start();
    let pad = "p".repeat(900);
    let mut lines = Vec::new();
    for n in 0..3000u64 {
        let prio = if n % 100 == 0 {
            "alarm"
        } else if n % 10 == 0 {
            "event"
        } else {
            "telemetry"
        };
        lines.push(format!("{{\"kind\":\"sample\",\"prio\":\"{prio}\",\"data\":{{\"n\":{n},\"pad\":\"{pad}\"}}}}\n"));
    }
    send_lines(station.ingest_port, &lines);
    assert!(
        wait_until(LONG, || highest_committed(&station) >= 3000),
        "{}",
        station.outbox_stats()
    );
    let stats = station.outbox_stats();
    assert!(stats["evicted_rows"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["bytes"].as_u64().unwrap() <= 1 << 20);
    broker.start();
    let top = highest_committed(&station);
    assert!(
        central.wait(
            LONG,
            |m| m.iter().filter(|m| m.json.get("seq").is_some()).count() as u64
                == top - stats["evicted_rows"].as_u64().unwrap()
        ),
        "log:\n{}",
        daemon.log_text()
    );
    let env = central.envelopes();
    let alarms = env
        .iter()
        .filter(|e| e["prio"] == "alarm" && e["kind"] == "sample")
        .count();
    assert_eq!(alarms, 30, "every alarm kept");
    let reports: Vec<&Value> = env
        .iter()
        .filter(|e| e["kind"] == "outbox.evicted")
        .collect();
    assert!(!reports.is_empty());
    let mut evicted_telemetry = 0;
    for r in &reports {
        assert_eq!(r["prio"], "alarm");
        evicted_telemetry += r["data"]["telemetry"].as_u64().unwrap();
    }
    assert!(evicted_telemetry > 0);
    let got: Vec<u64> = env.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_every_gap_named(&got, top, &evicted_seqs(&env));
    // Telemetry went first: the oldest telemetry is gone, the newest is there.
    let kept_telemetry: Vec<u64> = env
        .iter()
        .filter(|e| e["prio"] == "telemetry")
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect();
    assert!(
        !kept_telemetry.contains(&1),
        "oldest telemetry evicted first"
    );
    assert!(kept_telemetry.contains(&2999), "newest telemetry kept");
}

#[test]
fn corrupt_database_at_start_is_moved_aside_recovered_and_reported() {
    let mut broker = Broker::started();
    let central = central_with_session(&mut broker, "central-corrupt");
    let station = Station::new(broker.port, "");
    // Buffer 2000 events while central is unreachable, stop cleanly.
    let daemon = station.start();
    send_lines(
        station.ingest_port,
        &(0..2000)
            .map(|n| {
                format!(
                    "{{\"kind\":\"s\",\"prio\":\"event\",\"data\":{{\"n\":{n},\"pad\":\"{}\"}}}}\n",
                    "q".repeat(300)
                )
            })
            .collect::<Vec<_>>(),
    );
    assert!(wait_until(LONG, || station.outbox_rows() == 2000));
    assert_eq!(daemon.terminate().0, Some(0));
    // A bad flash block: scribble over pages in the middle of the file.
    let mut bytes = std::fs::read(station.db()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 4 * 4096].fill(0x5A);
    std::fs::write(station.db(), &bytes).unwrap();

    broker.start();
    let daemon = station.start();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .any(|m| m.json["kind"] == "outbox.recovered")),
        "log:\n{}",
        daemon.log_text()
    );
    let moved: Vec<_> = std::fs::read_dir(station.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("outbox.db.corrupt-"))
        .collect();
    assert!(!moved.is_empty(), "the damaged file is kept");
    let rec = central
        .all()
        .into_iter()
        .find(|m| m.json["kind"] == "outbox.recovered")
        .unwrap()
        .json;
    assert_eq!(rec["prio"], "alarm");
    let recovered = rec["data"]["rows_recovered"].as_u64().unwrap();
    assert!(recovered > 1000 && recovered < 2000, "{rec}");
    assert!(rec["seq"].as_u64().unwrap() > 2000, "no seq reuse: {rec}");
    // The salvaged rows are delivered, and new input continues above everything old.
    assert!(
        central.wait(LONG, |m| m.iter().filter(|m| m.json["kind"] == "s").count()
            as u64
            == recovered)
    );
    send_lines(station.ingest_port, &[line("after", "event", 1)]);
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["kind"] == "after")));
    let after = central
        .all()
        .into_iter()
        .find(|m| m.json["kind"] == "after")
        .unwrap()
        .json;
    assert!(after["seq"].as_u64().unwrap() > rec["seq"].as_u64().unwrap());
    assert!(daemon.log_text().contains("outbox.recovered"));
}

#[test]
fn full_disk_holds_inputs_back_and_loses_nothing_once_space_returns() {
    let mut broker = Broker::started();
    let central = central_with_session(&mut broker, "central-disk-full");
    let station = Station::new(broker.port, "");
    // ~3 MB of room: the outbox and its WAL can no longer grow after a few thousand events.
    let daemon = station.start_with_file_size_limit(3 << 20);
    let pad = "f".repeat(800);
    let lines: Vec<String> = (0..8000u64)
        .map(|n| {
            format!(
                "{{\"kind\":\"d\",\"prio\":\"event\",\"data\":{{\"n\":{n},\"pad\":\"{pad}\"}}}}\n"
            )
        })
        .collect();
    let port = station.ingest_port;
    let producer = std::thread::spawn(move || send_lines(port, &lines));
    assert!(
        wait_until(LONG, || daemon.log_text().contains("outbox.commit_failed")),
        "log:\n{}",
        daemon.log_text()
    );
    assert!(
        !producer.is_finished() || highest_committed(&station) < 8000,
        "inputs are held back while the disk is full"
    );
    std::thread::sleep(Duration::from_millis(500));
    daemon.lift_file_size_limit();
    producer.join().unwrap();
    assert!(
        wait_until(LONG, || highest_committed(&station) >= 8000),
        "{}",
        station.outbox_stats()
    );
    broker.start();
    assert!(
        central.wait(LONG, |m| m.iter().filter(|m| m.json["kind"] == "d").count()
            >= 8000),
        "log:\n{}",
        daemon.log_text()
    );
    let ns: HashSet<u64> = central
        .envelopes()
        .iter()
        .filter(|e| e["kind"] == "d")
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns.len(), 8000, "every line that was sent arrived");
    let seqs = central.seqs();
    assert!(missing_seqs(&seqs, highest_committed(&station)).is_empty());
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallFs(std::path::PathBuf);

impl SmallFs {
    fn mount(path: std::path::PathBuf, bytes: u64) -> Option<SmallFs> {
        std::fs::create_dir_all(&path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs(path))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_filesystem_evicts_old_telemetry_so_new_alarms_still_get_in() {
    // A disk smaller than the quota: the outbox on a 64 MiB tmpfs, a 1 GiB quota.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("full-filesystem test NOT run: needs root to mount a small tmpfs");
        return;
    }
    let mut broker = Broker::started();
    let central = central_with_session(&mut broker, "central-enospc");
    let station = Station::new(broker.port, "max_bytes = 1073741824");
    let Some(fs) = SmallFs::mount(station.dir.path().join("fs"), 64 << 20) else {
        eprintln!("full-filesystem test NOT run: cannot mount a tmpfs here");
        return;
    };
    let db = fs.0.join("outbox.db");
    let config = std::fs::read_to_string(&station.config).unwrap().replace(
        &station.db().display().to_string(),
        &db.display().to_string(),
    );
    std::fs::write(&station.config, config).unwrap();
    let daemon = station.start();

    // ~100 MB of telemetry into 64 MiB, then 30 alarms: input must keep flowing.
    let pad = "t".repeat(900);
    let telemetry: Vec<String> = (0..90_000u64)
        .map(|n| format!("{{\"kind\":\"meter\",\"prio\":\"telemetry\",\"data\":{{\"n\":{n},\"pad\":\"{pad}\"}}}}\n"))
        .collect();
    let port = station.ingest_port;
    let producer = std::thread::spawn(move || send_lines(port, &telemetry));
    assert!(
        wait_until(LONG, || producer.is_finished()),
        "input was held back on the full disk; log:\n{}",
        daemon.log_text()
    );
    producer.join().unwrap();
    let alarms: Vec<String> = (0..30u64)
        .map(|n| {
            format!("{{\"kind\":\"door.forced\",\"prio\":\"alarm\",\"data\":{{\"n\":{n}}}}}\n")
        })
        .collect();
    send_lines(station.ingest_port, &alarms);
    assert!(
        wait_until(LONG, || highest_committed(&station) >= 90_030),
        "log:\n{}",
        daemon.log_text()
    );
    assert!(daemon.log_text().contains("reason=\"disk_full\""));

    // Then something else fills the disk to the last byte: the outbox measures again, evicts
    // more of its own old telemetry, and input goes on.
    let evictions_before = daemon.log_text().matches("reason=\"disk_full\"").count();
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(fs.0.join("filler")).unwrap();
        let block = vec![0u8; 1 << 20];
        while filler.write_all(&block).is_ok() {}
        let _ = filler.write_all(&block[..4096]);
        let _ = filler.sync_all();
    }
    let more: Vec<String> = (90_000..110_000u64)
        .map(|n| format!("{{\"kind\":\"meter\",\"prio\":\"telemetry\",\"data\":{{\"n\":{n},\"pad\":\"{pad}\"}}}}\n"))
        .chain((30..40u64).map(|n| format!("{{\"kind\":\"door.forced\",\"prio\":\"alarm\",\"data\":{{\"n\":{n}}}}}\n")))
        .collect();
    send_lines(station.ingest_port, &more);
    assert!(
        wait_until(LONG, || highest_committed(&station) >= 110_040),
        "input stopped on the filled disk; log:\n{}",
        daemon.log_text()
    );
    // Either path may have made the room: the measured cap, or (when the filler won the race)
    // the ballast given up on ENOSPC. Input went on, and central is told.
    assert!(
        daemon.log_text().matches("reason=\"disk_full\"").count() > evictions_before,
        "{}",
        daemon.log_text()
    );

    broker.start();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json["kind"] == "door.forced")
            .count()
            == 40),
        "every alarm arrives; log:\n{}",
        daemon.log_text()
    );
    let env = central.envelopes();
    let reports: Vec<&Value> = env
        .iter()
        .filter(|e| e["kind"] == "outbox.evicted")
        .collect();
    assert!(!reports.is_empty());
    for r in &reports {
        assert_eq!(r["data"]["reason"], "disk_full", "{r}");
        assert_eq!(r["data"]["events"], 0, "telemetry goes first: {r}");
    }
    // Wait for the rest of the backlog: every seq up to the highest committed is delivered
    // or named by a report. The evictions go on while the backlog drains (deleting acked rows
    // takes WAL space on the full disk), so the reports are read again on every look, and
    // the highest seq once the station has nothing left to send.
    let settled = wait_until(LONG, || {
        let top = highest_committed(&station);
        let env = central.envelopes();
        let explained = evicted_seqs(&env);
        station.outbox_rows() == 0
            && missing_seqs(&central.seqs(), top)
                .iter()
                .all(|s| explained.contains(s))
    });
    let top = highest_committed(&station);
    assert!(
        settled,
        "gaps not named, up to seq {top}: {:?}; log:\n{}",
        missing_seqs(&central.seqs(), top)
            .into_iter()
            .filter(|s| !evicted_seqs(&central.envelopes()).contains(s))
            .take(20)
            .collect::<Vec<_>>(),
        daemon.log_text()
    );
    assert_every_gap_named(&central.seqs(), top, &evicted_seqs(&central.envelopes()));
    drop(daemon);
}

#[test]
fn the_first_broker_lost_mid_session_fails_over_to_the_second_and_is_used_again_later() {
    // Central runs two brokers (in a city, one cluster; here two mosquittos, each with its
    // own consumer). The station is connected to the first and sending when it goes away.
    let (mut first, mut second) = (Broker::started(), Broker::started());
    let central_first = Subscriber::connect(first.port, "central-first");
    let central_second = Subscriber::connect(second.port, "central-second");
    let station = Station::with_uplink(
        &format!("brokers = [\"{}\", \"{}\"]", first.url(), second.url()),
        "",
    );
    let daemon = station.start();
    assert!(central_first.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let p = producer(station.ingest_port, stop.clone(), written.clone());
    let online = |m: &[Msg]| m.iter().any(|m| m.json["state"] == "online");

    // 1. Mid-session the first broker goes away: the daemon goes on with the second.
    std::thread::sleep(Duration::from_millis(500));
    first.stop();
    assert!(
        central_second.wait(LONG, online),
        "no failover to the second broker; log:\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));

    // 2. The first comes back: the daemon stays where it is (no flapping back while the
    // second works); the first broker's consumer gets only what it had queued.
    first.start();
    std::thread::sleep(Duration::from_secs(2));
    let births = |s: &Subscriber| {
        s.status()
            .iter()
            .filter(|m| m.json["state"] == "online")
            .count()
    };
    assert_eq!(births(&central_first), 1, "still on the second broker");
    let on_second = central_second.seqs().len();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        central_second.seqs().len() > on_second,
        "the second broker still gets the data"
    );

    // 3. The second goes away too: the list is tried from the top, so the first takes over.
    second.stop();
    assert!(
        central_first.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json["state"] == "online")
            .count()
            >= 2),
        "no failover back to the first broker; log:\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    stop_producer(p, &stop, &written, &station);
    second.start(); // its consumer collects what the broker had queued for it

    // Every seq reached central, across both brokers, none missing.
    let top = highest_committed(&station);
    let union = || {
        let mut s = central_first.seqs();
        s.extend(central_second.seqs());
        s
    };
    assert!(
        wait_until(LONG, || missing_seqs(&union(), top).is_empty()),
        "missing across both brokers: {:?}; log:\n{}",
        &missing_seqs(&union(), top)[..missing_seqs(&union(), top).len().min(20)],
        daemon.log_text()
    );
    let (a, b) = (central_first.seqs(), central_second.seqs());
    assert!(
        a.len() > 100 && b.len() > 100,
        "both brokers carried a real share: {} and {}",
        a.len(),
        b.len()
    );
    assert!(
        central_first
            .seqs()
            .iter()
            .any(|s| *s > *b.iter().max().unwrap_or(&0)),
        "after the second went away the first carried on"
    );
}
