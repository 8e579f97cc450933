//! The `dock` driver end to end on a real filesystem: a temporary directory stands in for the
//! dock's volume; files are written into it as a collection station would (slowly, many at
//! once, large, renamed, changed, deleted); central on a real broker receives the index's
//! events; `stationd evidence verify` checks the files and the chain.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// A station with dock `dock0` on `<dir>/footage` (created), complete after 1 s.
fn dock_station(broker: &Broker, extra: &str) -> (Station, PathBuf) {
    let station = Station::new(broker.port, "");
    let root = station.dir.path().join("footage");
    std::fs::create_dir_all(&root).unwrap();
    station.append_config(&format!(
        "\n[[device]]\nid = \"dock0\"\ndriver = \"dock\"\nroot = \"{}\"\nsettle_s = 1\nstorage_s = 1\n{extra}\n[device.recorders]\n\"DSJ-A1-0001\" = {{ officer = \"P-0417\" }}\n",
        root.display()
    ));
    (station, root)
}

fn of_kind(central: &Subscriber, kind: &str) -> Vec<serde_json::Value> {
    central
        .all()
        .into_iter()
        .filter(|m| m.json["kind"] == kind)
        .map(|m| m.json)
        .collect()
}

/// Waits until central has `n` events of `kind` (the daemon's log in the failure).
fn wait_for(central: &Subscriber, daemon: &Daemon, kind: &str, n: usize) {
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json["kind"] == kind)
            .count()
            >= n),
        "fewer than {n} {kind}; log:\n{}",
        daemon.log_text()
    );
}

fn sha256_of(path: &Path) -> String {
    // An independent hash: coreutils, not the daemon's code.
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn verify(station: &Station) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .args(["evidence", "verify", "--config"])
        .arg(&station.config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn footage_is_indexed_once_complete_and_changes_to_it_raise_alarms() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dock");
    let (station, root) = dock_station(&broker, "");
    let daemon = station.start();

    // A recorder docks: its directory appears.
    let rec = root.join("DSJ-A1-0001");
    std::fs::create_dir(&rec).unwrap();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .any(|m| m.json["kind"] == "recorder.docked")),
        "log:\n{}",
        daemon.log_text()
    );
    let docked = &of_kind(&central, "recorder.docked")[0];
    assert_eq!(
        (
            docked["device"].as_str(),
            docked["data"]["officer"].as_str()
        ),
        (Some("DSJ-A1-0001"), Some("P-0417"))
    );

    // A file written slowly (a pause longer than settle_s would count as complete: 300 ms
    // pieces for 3 s) is not indexed while it is written, and is once it is closed.
    let path = rec.join("DSJ-A1-0001_P-0417_20261201081502.MP4");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..10u8 {
        f.write_all(&[i; 100_000]).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        of_kind(&central, "footage.indexed").is_empty(),
        "indexed while still being written"
    );
    drop(f);
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .any(|m| m.json["kind"] == "footage.indexed")),
        "log:\n{}",
        daemon.log_text()
    );
    let ev = &of_kind(&central, "footage.indexed")[0];
    let d = &ev["data"];
    assert_eq!(ev["device"], "DSJ-A1-0001");
    assert_eq!(d["sha256"].as_str().unwrap(), sha256_of(&path));
    assert_eq!(
        (
            d["size"].as_u64(),
            d["officer"].as_str(),
            d["media_type"].as_str()
        ),
        (Some(1_000_000), Some("P-0417"), Some("video/mp4"))
    );
    assert_eq!(
        d["start"], "2026-12-01T00:15:02.000Z",
        "08:15:02 Beijing time"
    );
    assert_eq!(d["entry"], 1);

    // A name that does not fit the pattern: indexed, recorder from its directory, counted.
    std::fs::write(rec.join("clip 7.avi"), b"not a standard name").unwrap();
    assert!(central.wait(LONG, |m| m
        .iter()
        .filter(|m| m.json["kind"] == "footage.indexed")
        .count()
        >= 2));
    let odd = &of_kind(&central, "footage.indexed")[1];
    assert_eq!(
        (
            odd["data"]["recorder"].as_str(),
            odd["data"]["officer"].as_str()
        ),
        (Some("DSJ-A1-0001"), Some("P-0417"))
    );
    assert!(daemon.log_text().contains("dock.name_unparsed"));

    // An MP4 whose name says nothing: the start comes from its own header (mvhd, in a moov
    // box after 200 kB of media data, as a recorder writes it).
    let mp4_box = |kind: &[u8; 4], payload: &[u8]| {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend(kind);
        b.extend(payload);
        b
    };
    let created = 1_796_084_102u32 + 2_082_844_800; // 2026-12-01T00:15:02Z, from 1904
    let mut mvhd = vec![0u8, 0, 0, 0];
    mvhd.extend(created.to_be_bytes());
    mvhd.extend([0u8; 92]);
    let mut file = mp4_box(b"ftyp", b"isom\0\0\0\0isom");
    file.extend(mp4_box(b"mdat", &vec![7u8; 200_000]));
    file.extend(mp4_box(b"moov", &mp4_box(b"mvhd", &mvhd)));
    std::fs::write(rec.join("VID_0001.MP4"), &file).unwrap();
    wait_for(&central, &daemon, "footage.indexed", 3);
    let mp4 = of_kind(&central, "footage.indexed")
        .into_iter()
        .find(|e| e["data"]["path"] == "DSJ-A1-0001/VID_0001.MP4")
        .unwrap();
    assert_eq!(mp4["data"]["start"], "2026-12-01T00:15:02.000Z", "{mp4}");

    // Its content changes: alarm, with both hashes; the old entry stays in the chain.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"tampered")
        .unwrap();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .any(|m| m.json["kind"] == "footage.altered")),
        "log:\n{}",
        daemon.log_text()
    );
    let altered = &of_kind(&central, "footage.altered")[0];
    assert_eq!(altered["prio"], "alarm");
    assert_eq!(altered["data"]["previous_sha256"], d["sha256"]);
    assert_eq!(
        altered["data"]["sha256"].as_str().unwrap(),
        sha256_of(&path)
    );

    // Renamed away and deleted before upload: missing (alarm) for each indexed path.
    std::fs::rename(rec.join("clip 7.avi"), root.join("moved.avi")).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .filter(|m| m.json["kind"] == "footage.missing")
            .count()
            >= 2),
        "log:\n{}",
        daemon.log_text()
    );
    // The moved file is indexed at its new place (a flat file: recorder unknown).
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["kind"]
        == "footage.indexed"
        && m.json["data"]["path"] == "moved.avi")));

    // The recorder leaves (its files archived elsewhere first): undocked.
    std::fs::rename(
        rec.join("VID_0001.MP4"),
        station.dir.path().join("VID_0001.MP4"),
    )
    .unwrap();
    std::fs::remove_dir(&rec).unwrap();
    assert!(central.wait(LONG, |m| m
        .iter()
        .any(|m| m.json["kind"] == "recorder.undocked")));
    // Central holds the chain's head, retained: the newest entry's link.
    let newest = of_kind(&central, "footage.indexed")
        .into_iter()
        .chain(of_kind(&central, "footage.altered"))
        .max_by_key(|e| e["data"]["entry"].as_u64())
        .unwrap();
    assert!(
        central.wait(LONG, |m| m
            .iter()
            .any(|m| m.topic == "stations/test-st01/state/evidence"
                && m.json["head"]["entry"] == newest["data"]["entry"]
                && m.json["head"]["chain"] == newest["data"]["chain"])),
        "no P/state/evidence with head {}",
        newest["data"]
    );
    // Storage telemetry of the footage volume.
    let storage = of_kind(&central, "dock.storage");
    assert!(!storage.is_empty());
    assert!(storage[0]["data"]["free_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn thousands_of_files_at_once_and_files_added_while_stopped_are_each_indexed_once() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dock-many");
    let (station, root) = dock_station(&broker, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["kind"] == "dock.storage")));
    // More changes at once than the kernel's inotify queue holds (16,384 events by default;
    // three per file): the daemon is stopped (SIGSTOP) while the dock writes, so the kernel
    // queue overflows for real, then it goes on.
    const N: usize = 6_000;
    let rec = root.join("DSJ-B2-0002");
    std::fs::create_dir(&rec).unwrap();
    assert!(wait_until(LONG, || daemon
        .log_text()
        .contains("recorder docked")));
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGSTOP).unwrap();
    for i in 0..N {
        let (h, m, sec) = (8 + i / 3600, i / 60 % 60, i % 60);
        std::fs::write(
            rec.join(format!(
                "DSJ-B2-0002_P-0522_20261201{h:02}{m:02}{sec:02}.jpg"
            )),
            i.to_string(),
        )
        .unwrap();
    }
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGCONT).unwrap();
    let indexed = |c: &Subscriber| -> std::collections::BTreeMap<String, usize> {
        let mut paths = std::collections::BTreeMap::new();
        for e in of_kind(c, "footage.indexed") {
            *paths
                .entry(e["data"]["path"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        paths
    };
    assert!(
        wait_until(Duration::from_secs(240), || indexed(&central).len() >= N),
        "{} of {N} indexed; log:\n{}",
        indexed(&central).len(),
        daemon.log_tail(20)
    );
    let log = daemon.log_text();
    assert!(
        log.contains("dock.watch_overflow"),
        "the kernel's queue overflowed and a rescan found the rest:\n{log}"
    );

    // A directory moved in whole (inotify reports the directory, not its files).
    let outside = station.dir.path().join("incoming/DSJ-C3-0003");
    std::fs::create_dir_all(&outside).unwrap();
    for i in 0..20 {
        let name = format!("DSJ-C3-0003_P-0600_202612010900{i:02}.mp4");
        std::fs::write(outside.join(name), format!("c{i}")).unwrap();
    }
    std::fs::rename(&outside, root.join("DSJ-C3-0003")).unwrap();
    assert!(
        wait_until(LONG, || indexed(&central).len() >= N + 20),
        "log:\n{}",
        daemon.log_text()
    );
    assert!(of_kind(&central, "recorder.docked")
        .iter()
        .any(|e| e["device"] == "DSJ-C3-0003"));
    let (_, _) = daemon.terminate();

    // Stopped: ten more files arrive. After the restart exactly those are indexed.
    for i in 0..10 {
        std::fs::write(rec.join(format!("late-{i}.jpg")), format!("late {i}")).unwrap();
    }
    let daemon = station.start();
    assert!(
        wait_until(LONG, || indexed(&central).len() >= N + 30),
        "log:\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    let paths = indexed(&central);
    assert_eq!(paths.len(), N + 30);
    let twice: Vec<_> = paths.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "indexed twice: {twice:?}");
    let (code, out) = verify(&station);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{} entries", N + 30)), "{out}");
}

#[test]
fn a_large_file_is_hashed_in_flat_memory() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dock-large");
    // A threshold no volume meets: the free-space alarm is raised too.
    let (station, root) = dock_station(&broker, "min_free_pct = 100");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m
        .iter()
        .any(|m| m.json["kind"] == "dock.storage_low" && m.json["prio"] == "alarm")));
    let path = root.join("DSJ-A1-0001_P-0417_20261201120000.mp4");
    // 1 GiB, sparse (the test disk need not hold it), with some data at both ends.
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"head").unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let rss_before = daemon.rss_kb();
    assert!(
        central.wait(Duration::from_secs(120), |m| m
            .iter()
            .any(|m| m.json["kind"] == "footage.indexed")),
        "log:\n{}",
        daemon.log_text()
    );
    let ev = &of_kind(&central, "footage.indexed")[0];
    assert_eq!(ev["data"]["size"], 1u64 << 30);
    assert_eq!(ev["data"]["sha256"].as_str().unwrap(), sha256_of(&path));
    let peak = daemon.peak_rss_kb();
    assert!(peak < rss_before + 32 * 1024, "peak RSS {peak} kB (before hashing {rss_before} kB): hashing must not read the file into memory");
}

#[test]
fn evidence_verify_finds_an_edited_file_a_deleted_entry_and_an_edited_entry() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dock-verify");
    let (station, root) = dock_station(&broker, "");
    let daemon = station.start();
    for i in 1..=3 {
        std::fs::write(
            root.join(format!("DSJ-A1-0001_P-0417_2026120108150{i}.MP4")),
            format!("video {i}"),
        )
        .unwrap();
    }
    wait_for(&central, &daemon, "footage.indexed", 3);
    let _ = daemon.terminate();
    let (code, out) = verify(&station);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("3 entries in the chain, 3 files hashed again"),
        "{out}"
    );

    // A file edited behind the index's back (same size, so only the hash can tell).
    let file = root.join("DSJ-A1-0001_P-0417_20261201081502.MP4");
    std::fs::write(&file, "video X").unwrap();
    let (code, out) = verify(&station);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("DSJ-A1-0001_P-0417_20261201081502.MP4: content changed"),
        "{out}"
    );
    std::fs::write(&file, "video 2").unwrap();
    assert_eq!(verify(&station).0, 0);

    let db = station.dir.path().join("evidence.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    // An entry edited: its officer changed.
    conn.execute("UPDATE entry SET officer = 'P-9999' WHERE id = 1", [])
        .unwrap();
    let (code, out) = verify(&station);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 1 was edited"), "{out}");
    conn.execute("UPDATE entry SET officer = 'P-0417' WHERE id = 1", [])
        .unwrap();
    assert_eq!(verify(&station).0, 0);
    // An entry deleted (its file's row too, so only the chain can tell).
    conn.execute("DELETE FROM entry WHERE id = 2", []).unwrap();
    conn.execute("DELETE FROM file WHERE entry_id = 2", [])
        .unwrap();
    let (code, out) = verify(&station);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 2 is missing"), "{out}");
    assert!(out.contains("entry 3 does not follow"), "{out}");
}

#[test]
fn footage_is_uploaded_on_request_byte_identical_rate_capped_and_retried_after_a_cut() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dock-upload");
    let nginx = Nginx::start();
    let station = common::dispatch::station(&broker, "");
    let root = station.dir.path().join("footage");
    std::fs::create_dir_all(&root).unwrap();
    station.append_config(&format!(
        "\n[[device]]\nid = \"dock0\"\ndriver = \"dock\"\nroot = \"{}\"\nsettle_s = 1\nupload_kbit_s = 4000\n",
        root.display()
    ));
    let daemon = station.start();
    // 1.5 MB of varied bytes, and a small file.
    let big = root.join("DSJ-A1-0001_P-0417_20261201081502.MP4");
    let bytes: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    std::fs::write(
        root.join("DSJ-A1-0001_P-0417_20261201090000.jpg"),
        b"a still",
    )
    .unwrap();
    wait_for(&central, &daemon, "footage.indexed", 2);
    let sha = sha256_of(&big);
    let answer = |id: &str| -> serde_json::Value {
        common::dispatch::answer(&central, id, Duration::from_secs(90), &daemon)
    };

    // By hash, to nginx: byte-identical, at no more than the cap (4000 kbit/s = 500 kB/s).
    let started = std::time::Instant::now();
    common::dispatch::send(
        broker.port,
        "footage.upload",
        "u-1",
        serde_json::json!({"sha256": sha, "url": nginx.url("upload/u1.mp4")}),
    );
    let a = answer("u-1");
    let elapsed = started.elapsed();
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(
        std::fs::read(nginx.stored("u1.mp4")).unwrap(),
        bytes,
        "the server got other bytes"
    );
    let r = &a["result"];
    assert_eq!(
        (
            r["bytes"].as_u64(),
            r["sha256"].as_str(),
            r["attempts"].as_u64()
        ),
        (Some(1_500_000), Some(sha.as_str()), Some(1)),
        "{a}"
    );
    let rate = r["rate_kbit_s"].as_u64().unwrap();
    assert!(
        (2000..=4400).contains(&rate),
        "measured {rate} kbit/s against a 4000 kbit/s cap: {a}"
    );
    assert!(
        elapsed >= Duration::from_millis(2500),
        "1.5 MB at 500 kB/s took only {elapsed:?}"
    );

    // Through a link that drops after 300 kB: retried from the start, still identical.
    let relay = cutting_relay(nginx.port, 1, 300_000);
    common::dispatch::send(
        broker.port,
        "footage.upload",
        "u-2",
        serde_json::json!({"path": "DSJ-A1-0001_P-0417_20261201081502.MP4", "url": format!("http://127.0.0.1:{relay}/upload/u2.mp4")}),
    );
    let a = answer("u-2");
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(a["result"]["attempts"], 2, "{a}");
    assert_eq!(std::fs::read(nginx.stored("u2.mp4")).unwrap(), bytes);
    assert!(daemon.log_text().contains("footage.upload_retry"));

    // Refused by the server: failed with the reason, not retried.
    common::dispatch::send(
        broker.port,
        "footage.upload",
        "u-3",
        serde_json::json!({"path": "DSJ-A1-0001_P-0417_20261201090000.jpg", "url": nginx.url("forbidden/x.jpg")}),
    );
    let a = answer("u-3");
    assert_eq!(a["status"], "failed", "{a}");
    assert!(a["reason"].as_str().unwrap().contains("HTTP 403"), "{a}");
    assert_eq!(a["result"]["attempts"], 1, "{a}");
    // A rebirth names the evidence snapshot too, where a dock is.
    common::dispatch::send(broker.port, "rebirth", "rb-dock", serde_json::json!({}));
    assert_eq!(
        answer("rb-dock")["result"]["republished"],
        serde_json::json!(["status", "state/devices", "state/evidence"])
    );
    // An unknown file, bad arguments.
    common::dispatch::send(
        broker.port,
        "footage.upload",
        "u-4",
        serde_json::json!({"sha256": "00", "url": nginx.url("upload/x")}),
    );
    assert!(answer("u-4")["reason"]
        .as_str()
        .unwrap()
        .contains("no indexed file"));
    common::dispatch::send(
        broker.port,
        "footage.upload",
        "u-5",
        serde_json::json!({"sha256": sha}),
    );
    assert_eq!(answer("u-5")["status"], "refused");

    // What the station holds, by officer: the uploaded one says so.
    common::dispatch::send(
        broker.port,
        "footage.list",
        "l-1",
        serde_json::json!({"officer": "P-0417", "from": "2026-12-01T00:00:00Z", "limit": 1}),
    );
    let a = answer("l-1");
    assert_eq!(a["status"], "done", "{a}");
    let r = &a["result"];
    assert_eq!(
        (r["matched"].as_u64(), r["truncated"].as_bool()),
        (Some(2), Some(true)),
        "{a}"
    );
    assert_eq!(r["files"][0]["sha256"], sha.as_str(), "earliest first: {a}");
    assert_eq!(r["files"][0]["uploaded"], true, "{a}");
}

#[test]
fn a_dock_waits_for_its_root_and_an_index_that_will_not_open_and_then_works() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dock-absent");
    let (station, root) = dock_station(&broker, "rescan_s = 1");
    std::fs::remove_dir(&root).unwrap();
    // evidence.db cannot be opened: a directory stands where the file goes.
    let db = station.dir.path().join("evidence.db");
    std::fs::create_dir(&db).unwrap();
    let daemon = station.start();
    assert!(wait_until(LONG, || daemon
        .log_text()
        .contains("dock.index_unavailable")));
    let devices = || String::from_utf8_lossy(&station.cli(&["devices"]).stdout).to_string();
    assert!(
        wait_until(LONG, || devices().contains("evidence index")),
        "{}",
        devices()
    );
    // The administrator fixes it: the index opens, the dock waits for its volume.
    std::fs::remove_dir(&db).unwrap();
    assert!(
        wait_until(LONG, || daemon.log_text().contains("dock.index_opened")),
        "log:\n{}",
        daemon.log_text()
    );
    assert!(wait_until(LONG, || daemon
        .log_text()
        .contains("dock.root_unreadable")));
    // The volume is mounted: files on it are indexed.
    std::fs::create_dir_all(root.join("DSJ-A1-0001")).unwrap();
    std::fs::write(
        root.join("DSJ-A1-0001/DSJ-A1-0001_P-0417_20261201081502.MP4"),
        b"late volume",
    )
    .unwrap();
    wait_for(&central, &daemon, "footage.indexed", 1);
    assert!(
        wait_until(LONG, || devices().contains("1 recorder(s) docked")),
        "{}",
        devices()
    );
}
