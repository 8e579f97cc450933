//! The evidence index: what footage the station holds, who recorded it, and proof that neither
//! the files nor the index changed since they were indexed. `evidence.db` beside the outbox
//! (SQLite, WAL, fsynced) holds the hash-chained entries ([`store`]); [`verify`] re-hashes the
//! files and walks the chain (`stationd evidence verify`). The dock driver fills it.

pub mod store;
pub mod verify;

pub use store::{EvidenceIndex, FileRow, IndexError};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `evidence.db` in the outbox's directory.
pub fn index_path(outbox: &Path) -> PathBuf {
    crate::side_store::path(outbox, "evidence.db")
}

/// The station's docks as the commands and the retained state see them: each dock's root and
/// index, and the chain's head. One per daemon (a service of the command registry), filled by
/// the dock drivers as they start.
#[derive(Default)]
pub struct Docks {
    docks: Mutex<BTreeMap<String, DockHandle>>,
    head: Mutex<Option<(i64, [u8; 32])>>,
}

/// One dock: where its files are, its index connection, how its footage is uploaded.
#[derive(Clone)]
pub struct DockHandle {
    pub root: PathBuf,
    pub index: Arc<Mutex<EvidenceIndex>>,
    pub upload: crate::drivers::dock::UploadSettings,
}

impl Docks {
    pub fn add(&self, dock: &str, handle: DockHandle) {
        lock(&self.docks).insert(dock.to_string(), handle);
    }

    pub fn get(&self, dock: &str) -> Option<DockHandle> {
        lock(&self.docks).get(dock).cloned()
    }

    pub fn all(&self) -> Vec<(String, DockHandle)> {
        lock(&self.docks)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn set_head(&self, id: i64, chain: [u8; 32]) {
        let mut h = lock(&self.head);
        if h.is_none_or(|(old, _)| id >= old) {
            *h = Some((id, chain));
        }
    }

    pub fn head(&self) -> Option<(i64, [u8; 32])> {
        *lock(&self.head)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
