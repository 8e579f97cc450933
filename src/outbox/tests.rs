//! Outbox tests: concrete cases, then a model test (proptest) that checks the store against a
//! plain in-memory model through random appends, acks, evictions and reopenings.

use super::fs::{CommitFault, FaultyFs};
use super::*;
use crate::event::{ClockQuality, Event, Priority};
use proptest::prelude::*;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

fn ev(prio: Priority, historical: bool, pad: usize) -> Event {
    Event {
        ts_ms: 1_795_940_102_120,
        clock: ClockQuality::Synced,
        device: "dev0".into(),
        kind: "sample".into(),
        prio,
        historical,
        data: RawValue::from_string(format!(r#"{{"pad":"{}"}}"#, "x".repeat(pad))).unwrap(),
        topic: None,
    }
}

fn opts(dir: &std::path::Path, max_bytes: u64) -> OutboxOptions {
    OutboxOptions {
        path: dir.join("outbox.db"),
        station: "st-1".into(),
        max_bytes,
        durability: crate::config::Durability::PowerCut,
    }
}

fn all_rows(reader: &Reader) -> BTreeMap<u64, (Lane, OutRow)> {
    let mut out = BTreeMap::new();
    for lane in Lane::ALL {
        for r in reader.fetch(lane, 0, usize::MAX >> 1).unwrap() {
            out.insert(r.seq, (lane, r));
        }
    }
    out
}

#[test]
fn a_durable_receipt_resolves_once_the_event_is_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_store(&opts(dir.path(), 1 << 30)).unwrap();
    let path = store.path().to_path_buf();
    let (writer, sink, control) = WriterThread::start(
        store,
        64,
        std::sync::Arc::new(tokio::sync::Notify::new()),
        std::sync::Arc::new(LinkState::default()),
        std::sync::Arc::new(crate::metrics::Metrics::default()),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sink.send(ev(Priority::Telemetry, false, 10)).await.unwrap();
        let receipt = sink
            .send_durable(ev(Priority::Event, false, 10))
            .await
            .unwrap();
        receipt.wait().await.unwrap();
        // Resolved: both rows (the receipt vouches for what was queued before) are committed,
        // as another reader of the file sees them.
        let rows = all_rows(&Reader::open(&path).unwrap());
        assert_eq!(rows.keys().copied().collect::<Vec<_>>(), [1, 2]);
    });
    drop((sink, control));
    writer.join();
}

#[test]
fn seq_is_assigned_in_order_and_continues_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    let (mut store, rec) = open_store(&o).unwrap();
    assert!(rec.is_none());
    let out = store
        .commit(
            &[
                ev(Priority::Event, false, 1),
                ev(Priority::Telemetry, false, 1),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(out.seqs, [1, 2]);
    store.commit(&[], &[1]).unwrap();
    drop(store);
    let (mut store, _) = open_store(&o).unwrap();
    // Seq 2 is the highest row, but 1 was issued and deleted: next is 3, never a reuse.
    assert_eq!(
        store
            .commit(&[ev(Priority::Event, false, 1)], &[])
            .unwrap()
            .seqs,
        [3]
    );
    let rows = all_rows(&Reader::open(&o.path).unwrap());
    assert_eq!(rows.keys().copied().collect::<Vec<_>>(), [2, 3]);
    let payload: serde_json::Value = serde_json::from_slice(&rows[&3].1.payload).unwrap();
    assert_eq!(payload["seq"], 3);
    assert_eq!(payload["station"], "st-1");
}

#[test]
fn seq_survives_losing_every_row_and_the_meta_counter_is_authoritative() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    let (mut store, _) = open_store(&o).unwrap();
    let seqs = store
        .commit(&vec![ev(Priority::Event, false, 1); 10], &[])
        .unwrap()
        .seqs;
    store.commit(&[], &seqs).unwrap();
    drop(store);
    let (mut store, _) = open_store(&o).unwrap();
    assert_eq!(
        store
            .commit(&[ev(Priority::Alarm, false, 1)], &[])
            .unwrap()
            .seqs,
        [11]
    );
}

#[test]
fn lanes_split_alarms_live_and_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    let (mut store, _) = open_store(&o).unwrap();
    store
        .commit(
            &[
                ev(Priority::Telemetry, true, 1),
                ev(Priority::Alarm, true, 1),
                ev(Priority::Event, false, 1),
            ],
            &[],
        )
        .unwrap();
    let rows = all_rows(&Reader::open(&o.path).unwrap());
    let lanes: Vec<Lane> = rows.values().map(|(l, _)| *l).collect();
    assert_eq!(lanes, [Lane::Backlog, Lane::Alarm, Lane::Live]);
    let plan =
        crate::uplink::plan_fetch(&Reader::open(&o.path).unwrap(), [0; 3], 10, true).unwrap();
    let order: Vec<u64> = plan.iter().map(|(_, r)| r.seq).collect();
    assert_eq!(order, [2, 3, 1], "alarms first, then live, then backlog");
    // While a video push holds the replay: alarms and live rows only.
    let plan =
        crate::uplink::plan_fetch(&Reader::open(&o.path).unwrap(), [0; 3], 10, false).unwrap();
    let order: Vec<u64> = plan.iter().map(|(_, r)| r.seq).collect();
    assert_eq!(order, [2, 3], "the backlog waits");
}

#[test]
fn live_rows_are_not_starved_by_a_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    let (mut store, _) = open_store(&o).unwrap();
    store
        .commit(&vec![ev(Priority::Telemetry, true, 1); 1000], &[])
        .unwrap();
    store
        .commit(&vec![ev(Priority::Telemetry, false, 1); 10], &[])
        .unwrap();
    let plan = crate::uplink::plan_fetch(&Reader::open(&o.path).unwrap(), [0; 3], 8, true).unwrap();
    let live = plan.iter().filter(|(l, _)| *l == Lane::Live).count();
    assert_eq!(live, 4, "half of the window goes to live rows");
    assert_eq!(plan.len(), 8);
}

#[test]
fn quota_evicts_oldest_telemetry_then_events_never_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 20);
    let (mut store, _) = open_store(&o).unwrap();
    // ~1.2 KB rows: 300 alarms, then 600 events, then telemetry until well over 1 MiB.
    store
        .commit(&vec![ev(Priority::Alarm, true, 1000); 300], &[])
        .unwrap();
    store
        .commit(&vec![ev(Priority::Event, true, 1000); 300], &[])
        .unwrap();
    let mut evictions = Vec::new();
    for _ in 0..10 {
        let out = store
            .commit(&vec![ev(Priority::Telemetry, true, 1000); 100], &[])
            .unwrap();
        evictions.extend(out.eviction);
    }
    assert!(store.bytes() <= 1 << 20);
    assert!(!evictions.is_empty());
    let first = &evictions[0];
    assert_eq!(first.events, 0, "telemetry goes first");
    assert_eq!(first.ranges[0].0, 601, "the oldest telemetry goes first");
    let rows = all_rows(&Reader::open(&o.path).unwrap());
    let alarms = rows.values().filter(|(l, _)| *l == Lane::Alarm).count();
    assert_eq!(
        alarms,
        300 + evictions.len(),
        "every alarm kept, plus one outbox.evicted per round"
    );
    let report: serde_json::Value = serde_json::from_slice(
        &rows
            .values()
            .rev()
            .find(|(l, _)| *l == Lane::Alarm)
            .unwrap()
            .1
            .payload,
    )
    .unwrap();
    assert_eq!(report["kind"], "outbox.evicted");
    assert_eq!(report["prio"], "alarm");
    assert!(report["data"]["ranges"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    // Keep filling with alarms only: nothing is evicted any more, alarms are kept over quota.
    for _ in 0..10 {
        store
            .commit(&vec![ev(Priority::Alarm, true, 1000); 100], &[])
            .unwrap();
    }
    let stats = Reader::open(&o.path).unwrap().stats().unwrap();
    assert_eq!(stats.telemetry.rows, 0);
    assert_eq!(stats.event.rows, 0);
    assert!(stats.alarm.rows >= 1300);
}

#[test]
fn a_full_disk_gives_up_the_ballast_and_evicts_telemetry_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    let (mut store, _) = open_store(&o).unwrap();
    let ballast = disk::ballast_path(&o.path);
    assert_eq!(
        std::fs::metadata(&ballast).unwrap().len(),
        disk::ballast_size(1 << 30),
        "the ballast is held from the start"
    );
    let mut batch = vec![ev(Priority::Alarm, false, 500)];
    batch.extend((0..99).map(|_| ev(Priority::Telemetry, false, 500)));
    store.commit(&batch, &[]).unwrap();

    let eviction = store.relieve_disk_full(20_000).unwrap().unwrap();
    assert!(!ballast.exists(), "the ballast's space was given back");
    assert_eq!(eviction.events, 0);
    assert!(
        eviction.bytes >= 20_000 && eviction.telemetry > 0,
        "{eviction:?}"
    );
    assert_eq!(
        eviction.ranges[0].0, 2,
        "oldest telemetry first (seq 1 is the alarm)"
    );
    // The report is the next seq, an alarm saying why, and the counts match the file.
    let rows = all_rows(&Reader::open(&o.path).unwrap());
    let (lane, report) = rows.get(&101).expect("the outbox.evicted report");
    assert_eq!(*lane, Lane::Alarm);
    let v: serde_json::Value = serde_json::from_slice(&report.payload).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["data"]["reason"].as_str()),
        (Some("outbox.evicted"), Some("disk_full"))
    );
    assert!(rows.contains_key(&1), "alarms are never evicted");
    let stats = Reader::open(&o.path).unwrap().stats().unwrap();
    assert_eq!(stats.rows(), store.rows());
    assert_eq!(stats.bytes, store.bytes());
    assert_eq!(store.next_seq(), 102);
    // With only alarms left there is nothing to give.
    let rest: Vec<u64> = rows
        .keys()
        .copied()
        .filter(|s| *s != 1 && *s != 101)
        .collect();
    store.commit(&[], &rest).unwrap();
    assert!(store.relieve_disk_full(1 << 20).unwrap().is_none());
}

#[test]
fn newer_schema_is_refused_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    drop(open_store(&o).unwrap());
    let conn = rusqlite::Connection::open(&o.path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match open_store(&o) {
        Err(OutboxError::NewerSchema { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
    assert!(o.path.exists(), "the file stays where it is");
}

#[test]
fn garbage_file_is_moved_aside_and_seq_continues_past_the_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    let (mut store, _) = open_store(&o).unwrap();
    store
        .commit(&vec![ev(Priority::Event, false, 1); 5], &[])
        .unwrap();
    drop(store);
    std::fs::write(
        &o.path,
        b"this is not an SQLite database, it was overwritten by a bad flash block",
    )
    .unwrap();
    let (mut store, rec) = open_store(&o).unwrap();
    let rec = rec.expect("recovery must happen");
    assert!(
        rec.moved_to.as_ref().unwrap().exists(),
        "the damaged file is kept for inspection"
    );
    assert!(rec.resumed_at_seq > 5);
    let next = store
        .commit(&[ev(Priority::Event, false, 1)], &[])
        .unwrap()
        .seqs[0];
    assert!(next > 6, "no seq reuse after recovery, got {next}");
    let rows = all_rows(&Reader::open(&o.path).unwrap());
    let alarm: serde_json::Value =
        serde_json::from_slice(&rows.values().next().unwrap().1.payload).unwrap();
    assert_eq!(alarm["kind"], "outbox.recovered");
    assert_eq!(alarm["prio"], "alarm");
}

#[test]
fn damaged_pages_are_skipped_and_readable_rows_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    let (mut store, _) = open_store(&o).unwrap();
    for _ in 0..20 {
        store
            .commit(&vec![ev(Priority::Event, false, 400); 100], &[])
            .unwrap();
    }
    store.checkpoint();
    drop(store);
    // Scribble over a few pages in the middle of the file.
    let mut bytes = std::fs::read(&o.path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 3 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&o.path, &bytes).unwrap();
    let (_store, rec) = open_store(&o).unwrap();
    let rec = rec.expect("corruption must be detected");
    assert!(
        rec.rows_recovered > 1000,
        "most rows survive: {}",
        rec.rows_recovered
    );
    assert!(rec.rows_recovered < 2000);
    assert!(rec.resumed_at_seq > 2000);
    let rows = all_rows(&Reader::open(&o.path).unwrap());
    assert_eq!(rows.len() as u64, rec.rows_recovered + 1);
}

#[test]
fn a_reservation_that_cannot_be_written_fails_the_commit_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    // A reservation that the next batch outgrows, so the commit must write a new one.
    drop(open_store(&o).unwrap());
    std::fs::write(reservation::reservation_path(&o.path), "5\n").unwrap();
    let fs = Arc::new(FaultyFs::default());
    let (mut store, _) = open_store_on(&o, fs.clone()).unwrap();
    fs.fail_next_reservation();
    let batch = vec![ev(Priority::Event, false, 1); 10];
    match store.commit(&batch, &[]) {
        Err(e @ OutboxError::Reservation { .. }) => {
            assert!(e.to_string().contains("seq-reserved"), "{e}")
        }
        other => panic!("the commit must fail: {other:?}"),
    }
    assert_eq!(store.next_seq(), 1);
    assert!(all_rows(&Reader::open(&o.path).unwrap()).is_empty());
    assert_eq!(
        store.commit(&batch, &[]).unwrap().seqs,
        (1..=10).collect::<Vec<_>>()
    );
    assert!(reservation::read_reservation(&o.path).unwrap() > 10);
}

#[test]
fn a_lost_database_file_resumes_above_every_seq_it_issued_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), 1 << 30);
    let (mut store, _) = open_store(&o).unwrap();
    store
        .commit(&vec![ev(Priority::Event, false, 1); 7], &[])
        .unwrap();
    drop(store);
    lose_database(&o.path);
    let (mut store, rec) = open_store(&o).unwrap();
    let rec = rec.expect("a missing file with seqs reserved is a loss, not a first start");
    assert_eq!(rec.moved_to, None);
    assert!(rec.reason.contains("missing"), "{}", rec.reason);
    assert!(rec.resumed_at_seq > 7);
    let next = store
        .commit(&[ev(Priority::Event, false, 1)], &[])
        .unwrap()
        .seqs[0];
    assert!(next > rec.resumed_at_seq);
    let rows = all_rows(&Reader::open(&o.path).unwrap());
    let alarm: serde_json::Value =
        serde_json::from_slice(&rows[&rec.resumed_at_seq].1.payload).unwrap();
    assert_eq!(alarm["kind"], "outbox.recovered");
    assert_eq!(alarm["data"]["moved_to"], serde_json::Value::Null);
}

fn lose_database(db: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, bool)>),
    AckSome(Vec<prop::sample::Index>),
    Reopen,
    /// The disk is full at the commit (ENOSPC from SQLite): the writer's policy evicts to
    /// make room and commits again.
    AppendOnFullDisk(Vec<(u8, bool)>),
    /// The power goes after the seq reservation is written and before the commit.
    PowerCutBeforeCommit(Vec<(u8, bool)>),
    /// From now on the filesystem reports this much free space (None: the truth).
    FreeSpace(Option<u64>),
    /// The database file and its WAL are lost; the reservation file stays.
    LoseDatabase,
}

fn items() -> impl Strategy<Value = Vec<(u8, bool)>> {
    prop::collection::vec((0u8..3, any::<bool>()), 1..40)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => items().prop_map(Op::Append),
        6 => prop::collection::vec(any::<prop::sample::Index>(), 1..10).prop_map(Op::AckSome),
        2 => Just(Op::Reopen),
        2 => items().prop_map(Op::AppendOnFullDisk),
        2 => items().prop_map(Op::PowerCutBeforeCommit),
        // Around what leaves the outbox less room than its quota: 16 MiB for the WAL, then
        // half of the rest is the outbox's (decision 0007).
        2 => prop_oneof![Just(None), (14u64 << 20..18 << 20).prop_map(Some)].prop_map(Op::FreeSpace),
        1 => Just(Op::LoseDatabase),
    ]
}

fn events_of(items: &[(u8, bool)]) -> Vec<Event> {
    items
        .iter()
        .map(|&(p, h)| ev(Priority::from_i64(p as i64).unwrap(), h, 1300))
        .collect()
}

/// Checks an eviction against the model and applies it: every evicted seq was stored and not
/// an alarm, oldest first within a class, telemetry before events; the report is the next seq.
fn apply_eviction(
    model: &mut BTreeMap<u64, Priority>,
    next_seq: &mut u64,
    evicted: &Eviction,
) -> Result<(), TestCaseError> {
    let mut dropped = Vec::new();
    for (a, b) in &evicted.ranges {
        for s in *a..=*b {
            let p = model.remove(&s);
            prop_assert!(p.is_some(), "evicted seq {} was not stored", s);
            prop_assert_ne!(p, Some(Priority::Alarm), "an alarm was evicted");
            dropped.push((s, p.unwrap()));
        }
    }
    prop_assert_eq!(dropped.len() as u64, evicted.rows());
    for (s, p) in &dropped {
        let older_kept = model.iter().any(|(k, q)| k < s && q == p);
        prop_assert!(
            !older_kept,
            "seq {} evicted while an older {:?} was kept",
            s,
            p
        );
        if *p == Priority::Event {
            prop_assert!(
                !model.values().any(|q| *q == Priority::Telemetry),
                "event evicted while telemetry was kept"
            );
        }
    }
    model.insert(*next_seq, Priority::Alarm); // the outbox.evicted report
    *next_seq += 1;
    Ok(())
}

/// Checks a successful commit of `events` against the model and applies it.
fn apply_commit(
    model: &mut BTreeMap<u64, Priority>,
    next_seq: &mut u64,
    events: &[Event],
    out: &store::CommitOutcome,
    free: Option<u64>,
) -> Result<(), TestCaseError> {
    let expect: Vec<u64> = (*next_seq..*next_seq + events.len() as u64).collect();
    prop_assert_eq!(&out.seqs, &expect);
    for (seq, e) in out.seqs.iter().zip(events) {
        model.insert(*seq, e.prio);
    }
    *next_seq += events.len() as u64;
    if let Some(evicted) = &out.eviction {
        if evicted.reason == evict::EvictionReason::DiskFull {
            prop_assert!(free.is_some(), "disk_full eviction on a disk with room");
        }
        apply_eviction(model, next_seq, evicted)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The store behaves like a map seq -> priority with a counter that never goes back,
    /// through full disks, power cuts before a commit and a lost database file.
    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        // Small quota: ~1.4 KB rows, so eviction happens often.
        let o = opts(dir.path(), 1 << 20);
        let fs = Arc::new(FaultyFs::default());
        let open = |fs: &Arc<FaultyFs>| {
            let (mut store, rec) = open_store_on(&o, fs.clone()).unwrap();
            store.measure_disk_every_commit();
            (store, rec)
        };
        let (mut store, _) = open(&fs);
        let mut model: BTreeMap<u64, Priority> = BTreeMap::new();
        let mut next_seq = 1u64;
        let mut free: Option<u64> = None;
        for op in ops {
            match op {
                Op::Append(items) => {
                    let events = events_of(&items);
                    let out = store.commit(&events, &[]).unwrap();
                    apply_commit(&mut model, &mut next_seq, &events, &out, free)?;
                    prop_assert!(store.bytes() <= o.max_bytes || model.values().all(|p| *p == Priority::Alarm));
                }
                Op::AppendOnFullDisk(items) => {
                    let events = events_of(&items);
                    fs.fail_next_commit(CommitFault::DiskFull);
                    let mut retry = commit_retry::CommitRetry::new();
                    let out = loop {
                        match store.commit(&events, &[]) {
                            Ok(out) => break out,
                            Err(e) => {
                                prop_assert!(e.is_disk_full(), "{}", e);
                                // Nothing of the failed transaction is in the file.
                                let rows = all_rows(&Reader::open(&o.path).unwrap());
                                prop_assert_eq!(rows.keys().copied().collect::<Vec<_>>(), model.keys().copied().collect::<Vec<_>>());
                                let mut relieved = None;
                                let step = retry.failed(true, false, || {
                                    relieved = store.relieve_disk_full(64 << 10).unwrap();
                                    relieved.is_some()
                                });
                                if let Some(ev) = &relieved {
                                    prop_assert_eq!(ev.reason, evict::EvictionReason::DiskFull);
                                    apply_eviction(&mut model, &mut next_seq, ev)?;
                                }
                                // Only alarms stored: nothing to evict, the writer would wait
                                // for the disk; here the fault is gone, so try again.
                                prop_assert!(step == commit_retry::NextStep::Again || relieved.is_none());
                            }
                        }
                    };
                    apply_commit(&mut model, &mut next_seq, &events, &out, free)?;
                }
                Op::PowerCutBeforeCommit(items) => {
                    fs.fail_next_commit(CommitFault::PowerCut);
                    prop_assert!(store.commit(&events_of(&items), &[]).is_err());
                    // The process is gone: the store is dropped without another word.
                    drop(store);
                    store = open(&fs).0;
                    prop_assert!(store.next_seq() >= next_seq, "seq went back after a power cut");
                    next_seq = store.next_seq();
                }
                Op::FreeSpace(bytes) => {
                    free = bytes;
                    fs.set_free(bytes);
                }
                Op::AckSome(idx) => {
                    if model.is_empty() { continue; }
                    let keys: Vec<u64> = model.keys().copied().collect();
                    let acks: Vec<u64> = idx.iter().map(|i| keys[i.index(keys.len())]).collect();
                    let out = store.commit(&[], &acks).unwrap();
                    for a in acks { model.remove(&a); }
                    if let Some(evicted) = &out.eviction {
                        // The filesystem shrank since the last commit.
                        apply_eviction(&mut model, &mut next_seq, evicted)?;
                    }
                }
                Op::Reopen => {
                    drop(store);
                    store = open(&fs).0;
                    prop_assert!(store.next_seq() >= next_seq);
                    next_seq = store.next_seq();
                }
                Op::LoseDatabase => {
                    drop(store);
                    lose_database(&o.path);
                    let (reopened, rec) = open(&fs);
                    store = reopened;
                    let rec = rec.expect("a lost file is recovered");
                    prop_assert!(rec.resumed_at_seq >= next_seq, "seq {} reused after the file was lost", rec.resumed_at_seq);
                    model.clear();
                    model.insert(rec.resumed_at_seq, Priority::Alarm); // outbox.recovered
                    next_seq = store.next_seq();
                }
            }
            let rows = all_rows(&Reader::open(&o.path).unwrap());
            prop_assert_eq!(rows.keys().copied().collect::<Vec<_>>(), model.keys().copied().collect::<Vec<_>>());
            let stats = Reader::open(&o.path).unwrap().stats().unwrap();
            prop_assert_eq!(stats.bytes, store.bytes(), "in-memory byte count drifted from the file");
            prop_assert_eq!(stats.rows(), store.rows(), "in-memory row count drifted from the file");
        }
    }
}
