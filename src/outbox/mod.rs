//! The outbox: the single durable queue between the station's inputs and central dispatch.
//!
//! # Invariants
//! - An event is *accepted* once the transaction that inserts it has committed. That same
//!   transaction assigns its `seq` from `meta.next_seq`, so a crash can leave neither a gap nor
//!   a reused seq: either the row and the counter are both on disk, or neither is.
//! - `seq` never goes backwards, across restarts, power cuts and recovery from a corrupt file.
//!   Before a seq is issued it is covered by the *reservation side file*
//!   (`outbox.db.seq-reserved`, "no seq at or above N was issued"), written atomically once
//!   per million seqs; recovery resumes above it.
//! - A row is deleted only (a) when its PUBACK has arrived (`Acks`), or (b) by eviction, which
//!   in the same transaction inserts an `outbox.evicted` alarm naming the dropped seq ranges.
//!   Alarms are never evicted. Nothing else deletes rows.
//! - The byte quota (`buffer.max_bytes`) counts payload + topic + a fixed per-row overhead of
//!   every stored row. When a commit takes the total above the quota, the oldest telemetry,
//!   then the oldest events are evicted down to 90 % of it.
//!
//! # On disk
//! One SQLite file in WAL mode (`journal_mode=WAL`), schema version in `PRAGMA user_version`
//! (a newer version is refused, migrations run in one transaction):
//! `outbox(seq INTEGER PRIMARY KEY, lane, prio, created_ms, topic, payload)` with an index on
//! `(lane, seq)`, and `meta(key, value)` holding `next_seq` and the eviction counters. `payload`
//! is the final JSON envelope (it contains the seq); `topic` is the part below
//! `{prefix}/{station}/`. `lane` is the send order: 0 alarms, 1 live, 2 backlog (created while
//! the uplink was down, `historical: true`).
//!
//! # Writes
//! Only the writer thread writes (`writer.rs`). It takes whatever commands are queued (events,
//! acks, flush requests), up to a batch limit, and commits them in one transaction: group
//! commit. Under load the queue fills while the previous fsync runs, so batches grow by
//! themselves and an idle daemon commits a single event at once. `synchronous=FULL` (default,
//! `durability = "power-cut"`) makes each commit survive a power cut; `process-crash` relaxes it
//! to `synchronous=NORMAL`, which survives a crash of the process only.
//!
//! # Recovery
//! At start `PRAGMA quick_check` runs; a failing file is moved aside and salvaged (see
//! `recovery.rs`), and an `outbox.recovered` alarm is committed first thing.

mod commit_retry;
mod disk;
mod evict;
pub mod fs;
mod reader;
mod recovery;
mod reservation;
mod schema;
mod store;
mod writer;

pub use evict::{to_ranges, Eviction};
pub use fs::{Filesystem, RealFs};
pub use reader::{OutRow, Reader};
pub use recovery::Recovery;
pub use schema::SCHEMA_VERSION;
pub use store::{Store, ROW_OVERHEAD};
pub use writer::{Committed, EventSink, LinkState, SinkClosed, WriterControl, WriterThread};

use crate::config::Durability;
use crate::event::{Event, Priority};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An event the outbox emits itself (`outbox.evicted`, `outbox.recovered`), stamped now.
fn own_event(device: &str, kind: &str, prio: Priority, data: serde_json::Value) -> Event {
    Event::new(device, kind, prio, crate::clock::now(), false, data)
}

/// Send order. Stored per row; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Alarm = 0,
    Live = 1,
    Backlog = 2,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Alarm, Lane::Live, Lane::Backlog];

    pub fn of(ev: &Event) -> Lane {
        if ev.prio == Priority::Alarm {
            Lane::Alarm
        } else if ev.historical {
            Lane::Backlog
        } else {
            Lane::Live
        }
    }

    pub fn from_i64(v: i64) -> Option<Lane> {
        match v {
            0 => Some(Lane::Alarm),
            1 => Some(Lane::Live),
            2 => Some(Lane::Backlog),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot open the outbox {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot commit to the outbox {path}: {source}")]
    Commit {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the outbox {path} has schema version {found}, newer than this stationd ({supported}); install the newer stationd again or move the file aside")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot move the damaged outbox {from} aside to {to}: {source}")]
    MoveAside {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the seq reservation file {path}: {source}")]
    Reservation {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl OutboxError {
    fn open(path: &Path, source: rusqlite::Error) -> OutboxError {
        OutboxError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
    fn commit(path: &Path, source: rusqlite::Error) -> OutboxError {
        OutboxError::Commit {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Worth retrying: a busy or full disk may clear; a schema or permission problem will not.
    pub fn is_transient(&self) -> bool {
        match self {
            OutboxError::Commit { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy)
                    | Some(rusqlite::ErrorCode::DatabaseLocked)
                    | Some(rusqlite::ErrorCode::DiskFull)
                    | Some(rusqlite::ErrorCode::SystemIoFailure)
            ),
            OutboxError::Reservation { .. } => true,
            _ => false,
        }
    }

    pub fn is_disk_full(&self) -> bool {
        match self {
            OutboxError::Commit { source, .. } => {
                source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            }
            OutboxError::Reservation { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }
}

/// Per-class figures for `stationd outbox`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassStats {
    pub rows: u64,
    /// `ts` of the oldest row (ms since the epoch).
    pub oldest_ms: Option<i64>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxStats {
    pub alarm: ClassStats,
    pub event: ClassStats,
    pub telemetry: ClassStats,
    pub bytes: u64,
    pub next_seq: u64,
    pub evicted_rows: u64,
    pub eviction_rounds: u64,
}

impl OutboxStats {
    pub fn rows(&self) -> u64 {
        self.alarm.rows + self.event.rows + self.telemetry.rows
    }
}

/// Options for opening the outbox.
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    pub path: PathBuf,
    pub station: String,
    pub max_bytes: u64,
    pub durability: Durability,
}

/// Opens (checking, migrating or recovering) the file. The recovery alarm, if any, is already
/// committed when this returns.
pub fn open_store(opts: &OutboxOptions) -> Result<(Store, Option<Recovery>), OutboxError> {
    open_store_on(opts, Arc::new(fs::RealFs))
}

/// [`open_store`] writing through `fs` (tests inject faults there).
pub fn open_store_on(
    opts: &OutboxOptions,
    fs: Arc<dyn Filesystem>,
) -> Result<(Store, Option<Recovery>), OutboxError> {
    match recovery::check(&opts.path) {
        Ok(()) => Ok((
            Store::open(
                &opts.path,
                &opts.station,
                opts.max_bytes,
                opts.durability,
                1,
                fs,
            )?,
            None,
        )),
        Err(reason) => {
            let (mut store, rec) = recovery::recover(
                &opts.path,
                &opts.station,
                opts.max_bytes,
                opts.durability,
                reason,
                fs,
            )?;
            let alarm = own_event(
                "outbox",
                "outbox.recovered",
                Priority::Alarm,
                serde_json::json!({
                    "reason": rec.reason,
                    "moved_to": rec.moved_to.as_ref().map(|p| p.display().to_string()),
                    "rows_recovered": rec.rows_recovered,
                    "highest_recovered_seq": rec.highest_recovered_seq,
                    "resumed_at_seq": rec.resumed_at_seq,
                }),
            );
            store.commit(&[alarm], &[])?;
            Ok((store, Some(rec)))
        }
    }
}

#[cfg(test)]
mod tests;
