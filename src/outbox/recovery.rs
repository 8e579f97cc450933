//! Start-up integrity check, and recovery from a damaged outbox file.
//!
//! A file that fails `PRAGMA quick_check` (or is not a database at all) is moved aside, never
//! deleted: `outbox.db` becomes `outbox.db.corrupt-<unix time>` with its `-wal` and `-shm`
//! beside it, so that an engineer can still look at it. A fresh file is created whose `seq`
//! continues past anything the old one could have issued: the seq reservation side file says
//! so (see `store.rs`), and without it the highest readable seq plus one reservation block.
//! Whatever rows can still be read from the old file are copied, with their seqs, into the new
//! one; unreadable stretches are skipped. The caller then commits an `outbox.recovered` alarm.
//!
//! A file that is missing while the reservation file says seqs were issued was lost (a
//! filesystem repair, a technician "starting fresh"): it is recovered the same way, with
//! nothing to move aside, so numbering still never goes back.

use super::fs::Filesystem;
use super::store::{SalvagedRow, Store};
use super::{Lane, OutboxError};
use crate::config::Durability;
use crate::event::Priority;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long salvage may take before the daemon gives up on the rest of the old file.
const SALVAGE_BUDGET: Duration = Duration::from_secs(30);

/// What recovery did, for the alarm and the log.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Where the damaged file went; None when there was no file (it was lost).
    pub moved_to: Option<PathBuf>,
    pub reason: String,
    pub rows_recovered: u64,
    pub highest_recovered_seq: Option<u64>,
    pub resumed_at_seq: u64,
}

/// Ok when the file is healthy, or absent on a first start; Err(reason) when it must be
/// recovered.
pub fn check(path: &Path) -> Result<(), String> {
    if !path.exists() {
        return match super::reservation::read_reservation(path) {
            Some(reserved) => Err(format!(
                "the database file is missing, but seqs below {reserved} were issued from it: it was lost or deleted"
            )),
            None => Ok(()),
        };
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("cannot open: {e}"))?;
    let result: rusqlite::Result<Vec<String>> = (|| {
        let mut stmt = conn.prepare("PRAGMA quick_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    })();
    match result {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(()),
        Ok(lines) => Err(format!(
            "integrity check failed: {}",
            lines.into_iter().take(3).collect::<Vec<_>>().join("; ")
        )),
        Err(e) => Err(format!("integrity check failed: {e}")),
    }
}

/// Moves the damaged file aside, creates a fresh store and salvages what it can.
pub fn recover(
    path: &Path,
    station: &str,
    max_bytes: u64,
    durability: Durability,
    reason: String,
    fs: Arc<dyn Filesystem>,
) -> Result<(Store, Recovery), OutboxError> {
    let stamp = crate::clock::unix_ms().max(0) / 1000;
    let moved_to = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let existed = path.exists();
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        let to = PathBuf::from(format!("{}{suffix}", moved_to.display()));
        if from.exists() {
            std::fs::rename(&from, &to).map_err(|e| OutboxError::MoveAside {
                from,
                to,
                source: e,
            })?;
        }
    }
    let reserved = super::reservation::read_reservation(path);
    let (rows, old_next) = salvage(&moved_to);
    let highest = rows.iter().map(|r| r.seq).max();
    let readable_floor = old_next
        .unwrap_or(0)
        .max(highest.map(|h| h + 1).unwrap_or(1));
    let floor = match reserved {
        Some(r) => r.max(readable_floor),
        None => readable_floor + super::reservation::RESERVATION_BLOCK,
    };
    let mut store = Store::open(path, station, max_bytes, durability, floor, fs)?;
    for chunk in rows.chunks(1000) {
        store.insert_salvaged(chunk)?;
    }
    let recovery = Recovery {
        moved_to: existed.then_some(moved_to),
        reason,
        rows_recovered: rows.len() as u64,
        highest_recovered_seq: highest,
        resumed_at_seq: store.next_seq(),
    };
    Ok((store, recovery))
}

/// Reads every row it can from a damaged file, skipping unreadable stretches.
fn salvage(path: &Path) -> (Vec<SalvagedRow>, Option<u64>) {
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return (Vec::new(), None);
    };
    let old_next = conn
        .query_row("SELECT value FROM meta WHERE key = 'next_seq'", [], |r| {
            r.get::<_, i64>(0)
        })
        .ok()
        .map(|v| v.max(0) as u64);
    let started = Instant::now();
    let mut out = Vec::new();
    let mut after: i64 = 0;
    let mut skip: i64 = 1;
    while started.elapsed() < SALVAGE_BUDGET {
        match read_page(&conn, after) {
            Ok(rows) if rows.is_empty() => break,
            Ok(rows) => {
                after = rows.last().map(|r| r.seq as i64).unwrap_or(after);
                out.extend(rows);
                skip = 1;
            }
            Err(_) => {
                // A damaged b-tree page: jump forward, further each time, until reads work.
                after = after.saturating_add(skip);
                skip = skip.saturating_mul(2);
                if skip > 1 << 40 {
                    break;
                }
            }
        }
    }
    (out, old_next)
}

fn read_page(conn: &Connection, after: i64) -> rusqlite::Result<Vec<SalvagedRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, lane, prio, created_ms, topic, payload FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT 256",
    )?;
    let rows = stmt.query_map([after], |r| {
        Ok(SalvagedRow {
            seq: r.get::<_, i64>(0)? as u64,
            lane: Lane::from_i64(r.get(1)?).unwrap_or(Lane::Backlog),
            prio: Priority::from_i64(r.get(2)?).unwrap_or(Priority::Event),
            created_ms: r.get(3)?,
            topic: r.get(4)?,
            payload: r.get(5)?,
        })
    })?;
    rows.collect()
}
