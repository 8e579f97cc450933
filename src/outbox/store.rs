//! The outbox's SQLite file: schema, migrations, commits, eviction, reads.
//!
//! Synchronous code only. It runs on the writer thread (`writer.rs`) or, for reads, under
//! `spawn_blocking`; never on the async workers.

use super::{ClassStats, Lane, OutboxError, OutboxStats};
use crate::config::Durability;
use crate::event::{Event, Priority};
use rusqlite::{params, Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// The schema this build writes. A file with a newer `user_version` is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// Seqs are reserved in blocks in the side file, so the file is rewritten once per block.
pub const RESERVATION_BLOCK: u64 = 1_000_000;

/// Bytes counted per row on top of payload and topic (key, lane, prio, time, index entry).
pub const ROW_OVERHEAD: u64 = 40;

/// Eviction frees down to this share of the quota, so that it runs in rounds, not per event.
const EVICT_TO_PERCENT: u64 = 90;

/// Rows evicted per statement while freeing space.
const EVICT_CHUNK: i64 = 2048;

/// Disk space left for the WAL when the filesystem, not the quota, limits the outbox; also the
/// size the WAL file is cut back to after a checkpoint.
const WAL_ALLOWANCE: u64 = 16 << 20;

/// How often a missing ballast file is tried again once the disk has room.
const BALLAST_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Below this the ballast is not worth having (a small disk that is nearly full).
const MIN_BALLAST: u64 = 64 << 10;

/// The ballast beside the outbox: space held back so that, when the disk fills up all the
/// same, deleting it leaves room for the transaction that evicts old telemetry (a DELETE needs
/// WAL space too). 1/64 of the quota, between 1 and 16 MiB, at most 1/8 of the free space.
pub fn ballast_size(max_bytes: u64) -> u64 {
    (max_bytes / 64).clamp(1 << 20, 16 << 20)
}

pub fn ballast_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".ballast");
    PathBuf::from(s)
}

/// Bytes an unprivileged writer may still use on the filesystem of `db`.
// fsblkcnt_t and c_ulong are 32 bits on armv7: the casts are not redundant there.
#[allow(clippy::unnecessary_cast)]
fn free_bytes(db: &Path) -> Option<u64> {
    let dir = db.parent().unwrap_or(Path::new("/"));
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// Why rows were evicted, as `outbox.evicted` tells central.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionReason {
    /// Over `buffer.max_bytes`.
    #[default]
    Quota,
    /// The filesystem has less room than the quota.
    DiskFull,
}

impl EvictionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionReason::Quota => "quota",
            EvictionReason::DiskFull => "disk_full",
        }
    }
}

const SCHEMA_V1: &str = "
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY,
    lane       INTEGER NOT NULL,
    prio       INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL
);
CREATE INDEX outbox_lane_seq ON outbox(lane, seq);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta(key, value) VALUES ('next_seq', 1), ('evicted_rows', 0), ('eviction_rounds', 0);
";

/// A row ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRow {
    pub seq: u64,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// What one eviction round dropped; becomes the `outbox.evicted` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eviction {
    /// Inclusive seq ranges, ascending.
    pub ranges: Vec<(u64, u64)>,
    pub telemetry: u64,
    pub events: u64,
    pub bytes: u64,
    /// Set when the round is recorded.
    pub reason: EvictionReason,
}

impl Eviction {
    pub fn rows(&self) -> u64 {
        self.telemetry + self.events
    }
}

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
struct NewRow<'a> {
    lane: Lane,
    prio: Priority,
    created_ms: i64,
    topic: &'a str,
    payload: &'a [u8],
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
    /// What the filesystem allows the outbox (see `limit`), and when it was last measured.
    disk_cap: u64,
    disk_checked: Option<std::time::Instant>,
    /// Whether the ballast file is in place, and when it was last tried.
    ballast_present: bool,
    ballast_tried: Option<std::time::Instant>,
}

pub fn open_connection(path: &Path, durability: Durability) -> Result<Connection, OutboxError> {
    let conn = Connection::open(path).map_err(|e| OutboxError::open(path, e))?;
    configure(&conn, durability).map_err(|e| OutboxError::open(path, e))?;
    Ok(conn)
}

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidQuery);
    }
    let sync = match durability {
        Durability::PowerCut => "FULL",
        Durability::ProcessCrash => "NORMAL",
    };
    // journal_size_limit: after a checkpoint the WAL file is cut back to this size instead of
    // keeping the size of its largest transaction on disk for good.
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-2048; PRAGMA journal_size_limit={WAL_ALLOWANCE};"
    ))?;
    Ok(())
}

/// Creates the schema in an empty file, or checks the version of an existing one.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OutboxError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| OutboxError::open(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(OutboxError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    // version 0: a new file. All migrations run in one transaction.
    let tx = conn.transaction().map_err(|e| OutboxError::open(path, e))?;
    tx.execute_batch(SCHEMA_V1)
        .map_err(|e| OutboxError::open(path, e))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(|e| OutboxError::open(path, e))?;
    tx.commit().map_err(|e| OutboxError::open(path, e))?;
    Ok(())
}

fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
        r.get::<_, i64>(0)
    })
    .map(|v| v.max(0) as u64)
}

/// Path of the seq reservation side file: "no seq at or above N has been issued".
pub fn reservation_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".seq-reserved");
    PathBuf::from(p)
}

pub fn read_reservation(db: &Path) -> Option<u64> {
    std::fs::read_to_string(reservation_path(db))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Writes the reservation atomically: temp file, fsync, rename, fsync the directory.
fn write_reservation(db: &Path, value: u64) -> std::io::Result<()> {
    use std::io::Write;
    let path = reservation_path(db);
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{value}")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
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
            disk_cap: u64::MAX,
            disk_checked: None,
            ballast_present: false,
            ballast_tried: None,
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
            write_reservation(&self.path, value).map_err(|e| OutboxError::Reservation {
                path: reservation_path(&self.path),
                source: e,
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
        let (limit, reason) = self.limit();
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
        self.disk_cap < self.max_bytes
    }

    /// The bytes the outbox may hold now, and why: the configured quota, or less when the
    /// filesystem has less room. The outbox may use half of what is free plus what its own
    /// files take, less 16 MiB for the WAL (the rest is for page slack and everything else on
    /// the disk), so a
    /// quota larger than the disk, or a disk filled by something else, evicts old telemetry
    /// instead of stopping input. Measured at most once a second.
    fn limit(&mut self) -> (u64, EvictionReason) {
        if self
            .disk_checked
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
        {
            self.disk_checked = Some(std::time::Instant::now());
            if let Some(free) = free_bytes(&self.path) {
                let own: u64 = [self.path.clone(), wal_path(&self.path)]
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum();
                self.disk_cap = (free + own).saturating_sub(WAL_ALLOWANCE) / 2;
            }
        }
        if self.disk_cap < self.max_bytes {
            (self.disk_cap, EvictionReason::DiskFull)
        } else {
            (self.max_bytes, EvictionReason::Quota)
        }
    }

    /// The disk is full all the same (something else filled it faster than it was measured):
    /// delete the ballast, so the next transactions have room, evict the oldest telemetry,
    /// then events, worth `need` bytes with an `outbox.evicted` alarm (`reason: disk_full`) in
    /// the same transaction, and shrink the WAL. Alarms are never evicted. None when nothing
    /// could be evicted. The filesystem is measured again at the next commit, and the ballast
    /// comes back when there is room.
    pub fn relieve_disk_full(&mut self, need: u64) -> Result<Option<Eviction>, OutboxError> {
        self.disk_checked = None;
        let _ = std::fs::remove_file(ballast_path(&self.path));
        self.ballast_present = false;
        self.ballast_tried = Some(std::time::Instant::now());
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
        tx.commit().map_err(map)?;
        self.next_seq = seq + 1;
        self.bytes = (self.bytes + added).saturating_sub(eviction.bytes);
        self.rows = (self.rows + 1).saturating_sub(eviction.rows());
        self.checkpoint();
        Ok(Some(eviction))
    }

    /// Puts the ballast file back when it is missing and the disk has room for it (at most an
    /// eighth of what is free); tried at most every 30 s. Called after successful commits.
    pub fn ensure_ballast(&mut self) {
        if self.ballast_present
            || self
                .ballast_tried
                .is_some_and(|t| t.elapsed() < BALLAST_RETRY)
        {
            return;
        }
        self.ballast_tried = Some(std::time::Instant::now());
        let path = ballast_path(&self.path);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() >= MIN_BALLAST) {
            self.ballast_present = true;
            return;
        }
        let free = free_bytes(&self.path).unwrap_or(0);
        let size = ballast_size(self.max_bytes).min(free / 8);
        if size < MIN_BALLAST {
            return;
        }
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&path)?;
            // Real blocks, not a sparse file: the space must really be held.
            let chunk = vec![0u8; 1 << 16];
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                f.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            f.sync_all()
        })();
        match written {
            Ok(()) => self.ballast_present = true,
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
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

fn insert_row(
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

/// Deletes the oldest telemetry, then the oldest events, until `need` bytes are freed.
/// Alarms are never evicted.
fn evict(tx: &rusqlite::Transaction<'_>, need: u64) -> rusqlite::Result<Eviction> {
    let mut ev = Eviction::default();
    let mut seqs = Vec::new();
    for prio in [Priority::Telemetry, Priority::Event] {
        while ev.bytes < need {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, length(payload) + length(topic) FROM outbox WHERE prio = ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows: Vec<(i64, i64)> = stmt
                .query_map(params![prio as i64, EVICT_CHUNK], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            if rows.is_empty() {
                break;
            }
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
            for (seq, size) in rows {
                if ev.bytes >= need {
                    break;
                }
                del.execute([seq])?;
                ev.bytes += size as u64 + ROW_OVERHEAD;
                seqs.push(seq as u64);
                match prio {
                    Priority::Telemetry => ev.telemetry += 1,
                    _ => ev.events += 1,
                }
            }
        }
    }
    seqs.sort_unstable();
    ev.ranges = to_ranges(&seqs);
    Ok(ev)
}

/// Inserts the `outbox.evicted` alarm for `eviction` at `seq` and counts the round in `meta`;
/// returns the bytes the alarm row adds.
fn record_eviction(
    tx: &rusqlite::Transaction<'_>,
    station: &str,
    seq: u64,
    eviction: &Eviction,
) -> rusqlite::Result<u64> {
    let report = eviction_event(eviction);
    let payload = report.to_envelope_json(station, seq);
    let topic = report.topic_suffix();
    let mut ins = tx.prepare_cached(
        "INSERT INTO outbox(seq, lane, prio, created_ms, topic, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let added = insert_row(
        &mut ins,
        seq,
        &NewRow {
            lane: Lane::of(&report),
            prio: report.prio,
            created_ms: report.ts_ms,
            topic: &topic,
            payload: &payload,
        },
    )?;
    tx.execute(
        "UPDATE meta SET value = value + ?1 WHERE key = 'evicted_rows'",
        [eviction.rows() as i64],
    )?;
    tx.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'eviction_rounds'",
        [],
    )?;
    Ok(added)
}

/// Sorted seqs to inclusive ranges: [1,2,3,7] -> [(1,3),(7,7)].
pub fn to_ranges(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in sorted {
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == s => *hi = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// The contract's `outbox.evicted` event. It is an alarm so that it is itself never evicted:
/// it is the only explanation a consumer gets for a gap in `seq`.
pub fn eviction_event(e: &Eviction) -> Event {
    super::own_event(
        "outbox",
        "outbox.evicted",
        Priority::Alarm,
        serde_json::json!({
            "reason": e.reason.as_str(),
            "rows": e.rows(),
            "telemetry": e.telemetry,
            "events": e.events,
            "bytes": e.bytes,
            "ranges": e.ranges.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>(),
        }),
    )
}

/// A read-only view of the outbox for the uplink and the technician's `outbox` command.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Opens without creating: the writer owns creation and migration.
    pub fn open(path: &Path) -> Result<Reader, OutboxError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| OutboxError::open(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| OutboxError::open(path, e))?;
        conn.execute_batch("PRAGMA query_only=1; PRAGMA cache_size=-1024;")
            .map_err(|e| OutboxError::open(path, e))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| OutboxError::open(path, e))?;
        if version != SCHEMA_VERSION {
            return Err(OutboxError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Reader { conn })
    }

    /// Up to `limit` rows of `lane` with seq above `after`, in seq order.
    pub fn fetch(&self, lane: Lane, after: u64, limit: usize) -> rusqlite::Result<Vec<OutRow>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, topic, payload FROM outbox WHERE lane = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
        let rows = stmt.query_map(params![lane as i64, after as i64, limit as i64], |r| {
            Ok(OutRow {
                seq: r.get::<_, i64>(0)? as u64,
                topic: r.get(1)?,
                payload: r.get(2)?,
            })
        })?;
        rows.collect()
    }

    /// True when no row is waiting (cheap: reads one index entry).
    pub fn is_empty(&self) -> rusqlite::Result<bool> {
        let row: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) FROM outbox", [], |r| r.get(0))?;
        Ok(row.is_none())
    }

    /// Depth, age and size per class, and the eviction counters.
    pub fn stats(&self) -> rusqlite::Result<OutboxStats> {
        let mut stats = OutboxStats {
            next_seq: meta_get(&self.conn, "next_seq")?,
            evicted_rows: meta_get(&self.conn, "evicted_rows")?,
            eviction_rounds: meta_get(&self.conn, "eviction_rounds")?,
            ..Default::default()
        };
        let mut stmt = self.conn.prepare(
            "SELECT prio, count(*), min(created_ms), sum(length(payload) + length(topic)) + count(*) * ?1
             FROM outbox GROUP BY prio",
        )?;
        let rows = stmt.query_map([ROW_OVERHEAD as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
        for row in rows {
            let (prio, count, oldest, bytes) = row?;
            let Some(prio) = Priority::from_i64(prio) else {
                continue;
            };
            let c = ClassStats {
                rows: count as u64,
                oldest_ms: oldest,
                bytes: bytes.unwrap_or(0) as u64,
            };
            stats.bytes += c.bytes;
            match prio {
                Priority::Alarm => stats.alarm = c,
                Priority::Event => stats.event = c,
                Priority::Telemetry => stats.telemetry = c,
            }
        }
        Ok(stats)
    }
}
