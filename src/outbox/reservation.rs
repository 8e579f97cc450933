//! The seq reservation side file (`outbox.db.seq-reserved`): "no seq at or above N has been
//! issued", written atomically before any seq in a new block is used, so that recovery from a
//! lost database resumes above anything ever issued (decision 0001).

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
pub(super) fn write_reservation(db: &Path, value: u64) -> std::io::Result<()> {
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
