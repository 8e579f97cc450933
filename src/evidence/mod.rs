//! The evidence index: what footage the station holds, who recorded it, and proof that neither
//! the files nor the index changed since they were indexed. `evidence.db` beside the outbox
//! (SQLite, WAL, fsynced) holds the hash-chained entries ([`store`]); [`verify`] re-hashes the
//! files and walks the chain (`stationd evidence verify`). The dock driver fills it.

pub mod store;
pub mod verify;

pub use store::{EvidenceIndex, FileRow, IndexError};

use std::path::{Path, PathBuf};

/// `evidence.db` in the outbox's directory.
pub fn index_path(outbox: &Path) -> PathBuf {
    outbox
        .parent()
        .unwrap_or(Path::new("."))
        .join("evidence.db")
}
