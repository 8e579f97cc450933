//! The seq reservation side file (`outbox.db.seq-reserved`): "no seq at or above N has been
//! issued", written atomically before any seq in a new block is used, so that recovery from a
//! lost database resumes above anything ever issued (decision 0001).

use super::fs::Filesystem;
use std::path::{Path, PathBuf};

/// Seqs are reserved in blocks in the side file, so the file is rewritten once per block.
pub const RESERVATION_BLOCK: u64 = 1_000_000;

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
pub(super) fn write_reservation(fs: &dyn Filesystem, db: &Path, value: u64) -> std::io::Result<()> {
    fs.replace_durably(&reservation_path(db), format!("{value}\n").as_bytes())
}
