//! The outbox file's schema: how a connection is configured (WAL, durability), the tables,
//! and migrations (versioned in `PRAGMA user_version`, run in one transaction; a newer
//! version is refused).

use super::disk::WAL_ALLOWANCE;
use super::OutboxError;
use crate::config::Durability;
use rusqlite::Connection;
use std::path::Path;

/// The schema this build writes. A file with a newer `user_version` is refused.
pub const SCHEMA_VERSION: i64 = 1;

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

pub(super) fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
        r.get::<_, i64>(0)
    })
    .map(|v| v.max(0) as u64)
}
