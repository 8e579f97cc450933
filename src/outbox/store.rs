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
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-2048;"
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
        };
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
        if bytes > self.max_bytes {
            let target = self.max_bytes / 100 * EVICT_TO_PERCENT;
            let eviction = evict(&tx, bytes - target).map_err(map)?;
            bytes = bytes.saturating_sub(eviction.bytes);
            if eviction.rows() > 0 {
                let seq = next_seq;
                next_seq += 1;
                let report = eviction_event(&eviction);
                let payload = report.to_envelope_json(&self.station, seq);
                let topic = report.topic_suffix();
                let mut ins = tx
                    .prepare_cached(
                        "INSERT INTO outbox(seq, lane, prio, created_ms, topic, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(map)?;
                bytes += insert_row(
                    &mut ins,
                    seq,
                    &NewRow {
                        lane: Lane::of(&report),
                        prio: report.prio,
                        created_ms: report.ts_ms,
                        topic: &topic,
                        payload: &payload,
                    },
                )
                .map_err(map)?;
                drop(ins);
                tx.execute(
                    "UPDATE meta SET value = value + ?1 WHERE key = 'evicted_rows'",
                    [eviction.rows() as i64],
                )
                .map_err(map)?;
                tx.execute(
                    "UPDATE meta SET value = value + 1 WHERE key = 'eviction_rounds'",
                    [],
                )
                .map_err(map)?;
                outcome.eviction = Some(eviction);
            }
            outcome.over_quota_with_alarms_only = bytes > self.max_bytes;
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
    Event::internal(
        "outbox",
        "outbox.evicted",
        Priority::Alarm,
        serde_json::json!({
            "reason": "quota",
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
