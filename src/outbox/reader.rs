//! The read side of the outbox: what the uplink publishes (per lane, in seq order) and what
//! the technician's `outbox` command shows. Read-only connections; the writer owns the file.

use super::schema::{meta_get, SCHEMA_VERSION};
use super::store::ROW_OVERHEAD;
use super::{ClassStats, Lane, OutboxError, OutboxStats};
use crate::event::Priority;
use rusqlite::{params, Connection, OpenFlags};
use std::path::Path;

/// A row ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRow {
    pub seq: u64,
    /// The class: an MQTT 5 broker gets it as a user property, and its message expiry.
    pub prio: Priority,
    pub topic: String,
    pub payload: Vec<u8>,
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
            .prepare_cached("SELECT seq, prio, topic, payload FROM outbox WHERE lane = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
        let rows = stmt.query_map(params![lane as i64, after as i64, limit as i64], |r| {
            Ok(OutRow {
                seq: r.get::<_, i64>(0)? as u64,
                // A value this version never writes is sent as an event: still delivered.
                prio: Priority::from_i64(r.get(1)?).unwrap_or(Priority::Event),
                topic: r.get(2)?,
                payload: r.get(3)?,
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
