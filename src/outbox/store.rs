//! The writer's side of the outbox file: open (counters loaded), commit (seqs, acks, eviction
//! to the quota or the disk budget), relief on a full disk, salvage after recovery. The
//! schema, the seq reservation, eviction, the disk budget and the reader have their own
//! modules.
//!
//! Synchronous code only. It runs on the writer thread (`writer.rs`) or, for reads, under
//! `spawn_blocking`; never on the async workers.

use super::disk::DiskBudget;
use super::evict::{evict, record_eviction, to_ranges, Eviction, EvictionReason, EVICT_TO_PERCENT};
use super::fs::Filesystem;
use super::reservation::{
    read_reservation, reservation_path, write_reservation, RESERVATION_BLOCK,
};
use super::schema::{meta_get, migrate, open_connection};
use super::{Lane, OutboxError};
use crate::config::Durability;
use crate::event::{Event, Priority};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes counted per row on top of payload and topic (key, lane, prio, time, index entry).
pub const ROW_OVERHEAD: u64 = 40;

/// The result of one committed transaction.
#[derive(Debug, Clone, Default)]
pub struct CommitOutcome {
    /// Seqs given to the batch's events, in order.
    pub seqs: Vec<u64>,
    pub acked: u64,
    pub eviction: Option<Eviction>,
    /// The quota is exceeded and only alarms are left to keep.
    pub over_quota_with_alarms_only: bool,
}

/// One event prepared for insertion (kept separate so recovery can insert salvaged rows).
pub(super) struct NewRow<'a> {
    pub(super) lane: Lane,
    pub(super) prio: Priority,
    pub(super) created_ms: i64,
    pub(super) topic: &'a str,
    pub(super) payload: &'a [u8],
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    station: String,
    max_bytes: u64,
    next_seq: u64,
    reserved_until: u64,
    bytes: u64,
    /// Rows in the file (the backlog), kept in step with every commit.
    rows: u64,
    /// The filesystem's say in how much it may hold, and the ballast.
    disk: DiskBudget,
    /// Where the reservation, the ballast and the free-space measurement go (`fs.rs`).
    fs: Arc<dyn Filesystem>,
}

impl Store {
    /// Opens a file that passed the integrity check (or a new one) and loads the counters.
    /// `seq_floor` raises `next_seq` (used after recovery from a corrupt file).
    pub fn open(
        path: &Path,
        station: &str,
        max_bytes: u64,
        durability: Durability,
        seq_floor: u64,
        fs: Arc<dyn Filesystem>,
    ) -> Result<Store, OutboxError> {
        let mut conn = open_connection(path, durability)?;
        migrate(&mut conn, path)?;
        let map = |e| OutboxError::open(path, e);
        let meta_next = meta_get(&conn, "next_seq").map_err(map)?;
        let max_seq: Option<i64> = conn
            .query_row("SELECT max(seq) FROM outbox", [], |r| r.get(0))
            .map_err(map)?;
        let (bytes, rows): (i64, i64) = conn
            .query_row(
                "SELECT coalesce(sum(length(payload) + length(topic)), 0) + count(*) * ?1, count(*) FROM outbox",
                [ROW_OVERHEAD as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(map)?;
        let next_seq = meta_next
            .max(max_seq.map(|s| s as u64 + 1).unwrap_or(1))
            .max(seq_floor)
            .max(1);
        let reserved = read_reservation(path).unwrap_or(0);
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            station: station.to_string(),
            max_bytes,
            next_seq,
            reserved_until: reserved,
            bytes: bytes.max(0) as u64,
            rows: rows.max(0) as u64,
            disk: DiskBudget::new(),
            fs,
        };
        store.ensure_ballast();
        store.reserve(0)?;
        if next_seq != meta_next {
            store
                .conn
                .execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'next_seq'",
                    [next_seq as i64],
                )
                .map_err(map)?;
        }
        Ok(store)
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Rows waiting to be sent.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure seqs up to `next_seq + count` are covered by the side file before use.
    fn reserve(&mut self, count: u64) -> Result<(), OutboxError> {
        let need = self.next_seq + count + 1;
        if need > self.reserved_until {
            let value = need.max(self.next_seq + RESERVATION_BLOCK);
            write_reservation(&*self.fs, &self.path, value).map_err(|e| {
                OutboxError::Reservation {
                    path: reservation_path(&self.path),
                    source: e,
                }
            })?;
            self.reserved_until = value;
        }
        Ok(())
    }

    /// One transaction: delete acknowledged rows, insert the events with fresh seqs, evict to
    /// the quota, and record an `outbox.evicted` alarm for what was dropped. On error nothing
    /// changed, in the file or in memory, and the same batch may be retried.
    pub fn commit(&mut self, events: &[Event], acks: &[u64]) -> Result<CommitOutcome, OutboxError> {
        // +1: room for an eviction report.
        self.reserve(events.len() as u64 + 1)?;
        let path = self.path.clone();
        let map = |e| OutboxError::commit(&path, e);
        let mut next_seq = self.next_seq;
        let mut bytes = self.bytes;
        let mut outcome = CommitOutcome::default();
        let (limit, reason) = self.disk.limit(&*self.fs, &self.path, self.max_bytes);
        let tx = self.conn.transaction().map_err(map)?;
        {
            // Acks come mostly in runs of consecutive seqs (a draining backlog): each run is
            // measured and deleted with two range statements instead of one per row. Only
            // seqs that were acknowledged are in a run, so nothing else can be deleted.
            let mut sorted = acks.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            let mut measure = tx
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(length(payload) + length(topic)), 0) FROM outbox WHERE seq BETWEEN ?1 AND ?2",
                )
                .map_err(map)?;
            let mut del = tx
                .prepare_cached("DELETE FROM outbox WHERE seq BETWEEN ?1 AND ?2")
                .map_err(map)?;
            for (lo, hi) in to_ranges(&sorted) {
                let (count, size): (i64, i64) = measure
                    .query_row([lo as i64, hi as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(map)?;
                if count > 0 {
                    del.execute([lo as i64, hi as i64]).map_err(map)?;
                    bytes = bytes.saturating_sub(size as u64 + count as u64 * ROW_OVERHEAD);
                    outcome.acked += count as u64;
                }
            }
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO outbox(seq, lane, prio, created_ms, topic, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(map)?;
            for ev in events {
                let seq = next_seq;
                next_seq += 1;
                let topic = ev.topic_suffix();
                let payload = ev.to_envelope_json(&self.station, seq);
                bytes += insert_row(
                    &mut ins,
                    seq,
                    &NewRow {
                        lane: Lane::of(ev),
                        prio: ev.prio,
                        created_ms: ev.ts_ms,
                        topic: &topic,
                        payload: &payload,
                    },
                )
                .map_err(map)?;
                outcome.seqs.push(seq);
            }
        }
        if bytes > limit {
            let target = limit / 100 * EVICT_TO_PERCENT;
            let mut eviction = evict(&tx, bytes - target).map_err(map)?;
            eviction.reason = reason;
            bytes = bytes.saturating_sub(eviction.bytes);
            if eviction.rows() > 0 {
                let seq = next_seq;
                next_seq += 1;
                bytes += record_eviction(&tx, &self.station, seq, &eviction).map_err(map)?;
                outcome.eviction = Some(eviction);
            }
            outcome.over_quota_with_alarms_only = bytes > limit;
        }
        if next_seq != self.next_seq {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'next_seq'",
                [next_seq as i64],
            )
            .map_err(map)?;
        }
        self.fs.before_commit().map_err(map)?;
        tx.commit().map_err(map)?;
        let evicted = outcome.eviction.as_ref().map_or(0, Eviction::rows);
        // Every seq handed out here is a new row: the events and the eviction report.
        self.rows =
            (self.rows + (next_seq - self.next_seq)).saturating_sub(outcome.acked + evicted);
        self.next_seq = next_seq;
        self.bytes = bytes;
        Ok(outcome)
    }

    /// Whether the filesystem, not the quota, limits the outbox (as last measured).
    pub fn disk_constrained(&self) -> bool {
        self.disk.constrained(self.max_bytes)
    }

    /// Puts the ballast file back when it is missing and the disk has room for it (at most an
    /// eighth of what is free); tried at most every 30 s. Called after successful commits.
    pub fn ensure_ballast(&mut self) {
        self.disk
            .ensure_ballast(&*self.fs, &self.path, self.max_bytes);
    }

    /// The disk is full all the same (something else filled it faster than it was measured):
    /// delete the ballast, so the next transactions have room, evict the oldest telemetry,
    /// then events, worth `need` bytes with an `outbox.evicted` alarm (`reason: disk_full`) in
    /// the same transaction, and shrink the WAL. Alarms are never evicted. None when nothing
    /// could be evicted. The filesystem is measured again at the next commit, and the ballast
    /// comes back when there is room.
    pub fn relieve_disk_full(&mut self, need: u64) -> Result<Option<Eviction>, OutboxError> {
        self.disk.give_up_ballast(&*self.fs, &self.path);
        // What the WAL holds goes into the file first, which gives the WAL's space back.
        self.checkpoint();
        self.reserve(1)?;
        let path = self.path.clone();
        let map = |e| OutboxError::commit(&path, e);
        let tx = self.conn.transaction().map_err(map)?;
        let mut eviction = evict(&tx, need).map_err(map)?;
        eviction.reason = EvictionReason::DiskFull;
        if eviction.rows() == 0 {
            return Ok(None); // dropping tx rolls back
        }
        let seq = self.next_seq;
        let added = record_eviction(&tx, &self.station, seq, &eviction).map_err(map)?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'next_seq'",
            [seq as i64 + 1],
        )
        .map_err(map)?;
        self.fs.before_commit().map_err(map)?;
        tx.commit().map_err(map)?;
        self.next_seq = seq + 1;
        self.bytes = (self.bytes + added).saturating_sub(eviction.bytes);
        self.rows = (self.rows + 1).saturating_sub(eviction.rows());
        self.checkpoint();
        Ok(Some(eviction))
    }

    /// Inserts a row salvaged from a corrupt file, keeping its seq (recovery only).
    pub(super) fn insert_salvaged(&mut self, rows: &[SalvagedRow]) -> Result<(), OutboxError> {
        let path = self.path.clone();
        let map = |e| OutboxError::commit(&path, e);
        let tx = self.conn.transaction().map_err(map)?;
        let mut added = 0;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO outbox(seq, lane, prio, created_ms, topic, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(map)?;
            for r in rows {
                added += insert_row(
                    &mut ins,
                    r.seq,
                    &NewRow {
                        lane: r.lane,
                        prio: r.prio,
                        created_ms: r.created_ms,
                        topic: &r.topic,
                        payload: &r.payload,
                    },
                )
                .map_err(map)?;
            }
        }
        let rows: i64 = tx
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .map_err(map)?;
        tx.commit().map_err(map)?;
        self.bytes += added;
        self.rows = rows.max(0) as u64;
        Ok(())
    }

    /// Measures the filesystem at every commit instead of once a second (the model test,
    /// whose faults change the free space between two commits).
    #[cfg(test)]
    pub(super) fn measure_disk_every_commit(&mut self) {
        self.disk.measure_every = std::time::Duration::ZERO;
    }

    /// Runs a WAL checkpoint (at shutdown, so the next start opens a compact file).
    pub fn checkpoint(&self) {
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }
}

/// A row read back from a damaged file.
#[derive(Debug, Clone)]
pub struct SalvagedRow {
    pub seq: u64,
    pub lane: Lane,
    pub prio: Priority,
    pub created_ms: i64,
    pub topic: String,
    pub payload: Vec<u8>,
}

pub(super) fn insert_row(
    ins: &mut rusqlite::CachedStatement<'_>,
    seq: u64,
    row: &NewRow<'_>,
) -> rusqlite::Result<u64> {
    let n = ins.execute(params![
        seq as i64,
        row.lane as i64,
        row.prio as i64,
        row.created_ms,
        row.topic,
        row.payload
    ])?;
    Ok(if n == 1 {
        row.topic.len() as u64 + row.payload.len() as u64 + ROW_OVERHEAD
    } else {
        0
    })
}
