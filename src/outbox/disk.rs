//! The disk budget: what the filesystem lets the outbox hold (half of what is free plus its
//! own files, less the WAL's allowance, measured at most once a second) and the ballast file
//! held back for the moment the disk fills all the same (decision 0007).

use super::evict::EvictionReason;
use super::fs::Filesystem;
use std::path::{Path, PathBuf};

/// Disk space left for the WAL when the filesystem, not the quota, limits the outbox; also the
/// size the WAL file is cut back to after a checkpoint.
pub(super) const WAL_ALLOWANCE: u64 = 16 << 20;

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
fn free_bytes(fs: &dyn Filesystem, db: &Path) -> Option<u64> {
    fs.free_bytes(db.parent().unwrap_or(Path::new("/")))
}

fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// The filesystem's say in how much the outbox may hold, and the ballast's state.
#[derive(Debug)]
pub(super) struct DiskBudget {
    /// What the filesystem allows the outbox (see `limit`), and when it was last measured.
    cap: u64,
    checked: Option<std::time::Instant>,
    /// How often the filesystem is measured (a second; tests measure at every commit).
    pub(super) measure_every: std::time::Duration,
    /// Whether the ballast file is in place, and when it was last tried.
    ballast_present: bool,
    ballast_tried: Option<std::time::Instant>,
}

impl DiskBudget {
    pub(super) fn new() -> DiskBudget {
        DiskBudget {
            cap: u64::MAX,
            checked: None,
            measure_every: std::time::Duration::from_secs(1),
            ballast_present: false,
            ballast_tried: None,
        }
    }

    /// Whether the filesystem, not the quota, limits the outbox now.
    pub(super) fn constrained(&self, max_bytes: u64) -> bool {
        self.cap < max_bytes
    }

    /// The bytes the outbox may hold now, and why: the configured quota, or less when the
    /// filesystem has less room. The outbox may use half of what is free plus what its own
    /// files take, less 16 MiB for the WAL (the rest is for page slack and everything else on
    /// the disk), so a
    /// quota larger than the disk, or a disk filled by something else, evicts old telemetry
    /// instead of stopping input. Measured at most once a second.
    pub(super) fn limit(
        &mut self,
        fs: &dyn Filesystem,
        db: &Path,
        max_bytes: u64,
    ) -> (u64, EvictionReason) {
        if self
            .checked
            .is_none_or(|t| t.elapsed() >= self.measure_every)
        {
            self.checked = Some(std::time::Instant::now());
            if let Some(free) = free_bytes(fs, db) {
                let own: u64 = [db.to_path_buf(), wal_path(db)]
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum();
                self.cap = (free + own).saturating_sub(WAL_ALLOWANCE) / 2;
            }
        }
        if self.cap < max_bytes {
            (self.cap, EvictionReason::DiskFull)
        } else {
            (max_bytes, EvictionReason::Quota)
        }
    }

    /// The disk is full all the same: delete the ballast so the next transactions have room,
    /// and measure the filesystem again at the next commit.
    pub(super) fn give_up_ballast(&mut self, fs: &dyn Filesystem, db: &Path) {
        self.checked = None;
        let _ = fs.remove(&ballast_path(db));
        self.ballast_present = false;
        self.ballast_tried = Some(std::time::Instant::now());
    }

    /// Puts the ballast file back when it is missing and the disk has room for it (at most an
    /// eighth of what is free); tried at most every 30 s. Called after successful commits.
    pub(super) fn ensure_ballast(&mut self, fs: &dyn Filesystem, db: &Path, max_bytes: u64) {
        if self.ballast_present
            || self
                .ballast_tried
                .is_some_and(|t| t.elapsed() < BALLAST_RETRY)
        {
            return;
        }
        self.ballast_tried = Some(std::time::Instant::now());
        let path = ballast_path(db);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() >= MIN_BALLAST) {
            self.ballast_present = true;
            return;
        }
        let free = free_bytes(fs, db).unwrap_or(0);
        let size = ballast_size(max_bytes).min(free / 8);
        if size < MIN_BALLAST {
            return;
        }
        match fs.allocate(&path, size) {
            Ok(()) => self.ballast_present = true,
            Err(_) => {
                let _ = fs.remove(&path);
            }
        }
    }
}
