//! The outbox's own writes to the filesystem, behind one seam: the seq reservation file, the
//! ballast, the free-space measurement, and the moment before a transaction commits.
//!
//! The station runs on [`RealFs`]. The model test runs on [`FaultyFs`], which can report a
//! nearly full disk, fail the next commit with ENOSPC exactly as SQLite reports it, or stop
//! the process's work between the seq reservation and the commit (a power cut there), so the
//! promises about full disks and lost files are checked through random sequences, not only in
//! the few cases a real full filesystem can be arranged for (tests/resilience.rs does those).

use std::io;
use std::path::Path;
#[cfg(test)]
use std::sync::Mutex;

pub trait Filesystem: Send + Sync + std::fmt::Debug {
    /// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
    fn free_bytes(&self, dir: &Path) -> Option<u64>;

    /// Replaces `path` with `contents` atomically and durably: temp file, fsync, rename,
    /// fsync the directory.
    fn replace_durably(&self, path: &Path, contents: &[u8]) -> io::Result<()>;

    /// Creates `path` holding `size` bytes in real blocks (not a sparse file: the space must
    /// really be held), synced.
    fn allocate(&self, path: &Path, size: u64) -> io::Result<()>;

    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Called when a transaction has done all its work and is about to commit: the last
    /// moment it can fail. The real filesystem has nothing to add (SQLite reports its own
    /// errors from the commit); a test fails here.
    fn before_commit(&self) -> Result<(), rusqlite::Error> {
        Ok(())
    }
}

/// The filesystem the station runs on.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Filesystem for RealFs {
    // fsblkcnt_t and c_ulong are 32 bits on armv7: the casts are not redundant there.
    #[allow(clippy::unnecessary_cast)]
    fn free_bytes(&self, dir: &Path) -> Option<u64> {
        let s = nix::sys::statvfs::statvfs(dir).ok()?;
        Some(s.blocks_available() as u64 * s.fragment_size() as u64)
    }

    fn replace_durably(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(contents)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn allocate(&self, path: &Path, size: u64) -> io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(path)?;
        let chunk = vec![0u8; 1 << 16];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        f.sync_all()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

/// What [`FaultyFs`] does to the next commit.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitFault {
    /// ENOSPC, as SQLite reports it (`SQLITE_FULL`, "database or disk is full").
    DiskFull,
    /// The power goes: the commit never happens. The caller must drop the store without
    /// touching it again (as the process would be gone) and reopen.
    PowerCut,
}

/// The real filesystem with faults a test switches on.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct FaultyFs {
    /// What `free_bytes` reports instead of the truth.
    free: Mutex<Option<u64>>,
    next_commit: Mutex<Option<CommitFault>>,
    /// The reservation file's next write fails with ENOSPC.
    fail_reservation: Mutex<bool>,
}

#[cfg(test)]
impl FaultyFs {
    /// From now on the filesystem reports `free` bytes free (None: the truth).
    pub fn set_free(&self, free: Option<u64>) {
        *lock(&self.free) = free;
    }

    /// The next commit fails this way; the ones after it work.
    pub fn fail_next_commit(&self, fault: CommitFault) {
        *lock(&self.next_commit) = Some(fault);
    }

    pub fn fail_next_reservation(&self) {
        *lock(&self.fail_reservation) = true;
    }
}

#[cfg(test)]
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
fn enospc() -> io::Error {
    io::Error::from_raw_os_error(nix::libc::ENOSPC)
}

#[cfg(test)]
impl Filesystem for FaultyFs {
    fn free_bytes(&self, dir: &Path) -> Option<u64> {
        lock(&self.free).or_else(|| RealFs.free_bytes(dir))
    }

    fn replace_durably(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        if std::mem::take(&mut *lock(&self.fail_reservation)) {
            return Err(enospc());
        }
        RealFs.replace_durably(path, contents)
    }

    fn allocate(&self, path: &Path, size: u64) -> io::Result<()> {
        let free = *lock(&self.free);
        if free.is_some_and(|f| f < size) {
            return Err(enospc());
        }
        RealFs.allocate(path, size)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        RealFs.remove(path)
    }

    fn before_commit(&self) -> Result<(), rusqlite::Error> {
        let code = match lock(&self.next_commit).take() {
            None => return Ok(()),
            Some(CommitFault::DiskFull) => rusqlite::ffi::SQLITE_FULL,
            Some(CommitFault::PowerCut) => rusqlite::ffi::SQLITE_IOERR,
        };
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }
}
