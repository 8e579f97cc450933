//! `evidence.db`: the chained entries (append-only: a file that changes gets a new entry, the
//! old one stays) and, outside the chain, each file's current state (present or missing, its
//! size and mtime for the next scan, upload state) and which recorders are docked.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use stationd_proto::footage::chain::{self, Entry};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("evidence index {path}: {source}")]
pub struct IndexError {
    path: PathBuf,
    source: rusqlite::Error,
}

/// A file's current state, per dock and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub dock: String,
    pub path: String,
    /// The latest entry of this path.
    pub entry_id: i64,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: String,
    pub recorder: String,
    pub officer: String,
    pub missing: bool,
    pub uploaded: bool,
    /// The recording's start (Unix ms), when the name or the file said.
    pub start_ms: Option<i64>,
}

/// What a new entry says (the id, hashes and time are the index's to give).
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub dock: String,
    pub recorder: String,
    pub officer: String,
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: String,
    pub media_type: String,
    pub start_ms: Option<i64>,
    pub reason: &'static str,
}

/// An entry as stored: its dock, the entry, its content hash and its chain hash.
pub type StoredEntry = (String, Entry, [u8; 32], [u8; 32]);

/// Not yet uploaded, and present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub files: u64,
    pub bytes: u64,
    /// When the oldest of them was indexed (Unix ms).
    pub oldest_indexed_ms: Option<i64>,
}

pub struct EvidenceIndex {
    conn: Connection,
    path: PathBuf,
}

impl EvidenceIndex {
    pub fn open(path: &Path) -> Result<EvidenceIndex, IndexError> {
        let map = |source| IndexError {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::side_store::open(
            path,
            "CREATE TABLE IF NOT EXISTS entry (
                 id INTEGER PRIMARY KEY,
                 dock TEXT NOT NULL,
                 recorder TEXT NOT NULL,
                 officer TEXT NOT NULL,
                 path TEXT NOT NULL,
                 size INTEGER NOT NULL,
                 sha256 TEXT NOT NULL,
                 media_type TEXT NOT NULL,
                 start_ms INTEGER,
                 indexed_ms INTEGER NOT NULL,
                 reason TEXT NOT NULL,
                 content_hash BLOB NOT NULL,
                 chain_hash BLOB NOT NULL
             );
             CREATE TABLE IF NOT EXISTS file (
                 dock TEXT NOT NULL,
                 path TEXT NOT NULL,
                 entry_id INTEGER NOT NULL,
                 size INTEGER NOT NULL,
                 mtime_ns INTEGER NOT NULL,
                 missing INTEGER NOT NULL DEFAULT 0,
                 uploaded_ms INTEGER,
                 PRIMARY KEY (dock, path)
             );
             CREATE TABLE IF NOT EXISTS recorder (
                 dock TEXT NOT NULL,
                 recorder TEXT NOT NULL,
                 docked INTEGER NOT NULL,
                 since_ms INTEGER NOT NULL,
                 PRIMARY KEY (dock, recorder)
             );",
        )
        .map_err(map)?;
        Ok(EvidenceIndex {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn map(&self, source: rusqlite::Error) -> IndexError {
        IndexError {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends an entry to the chain and makes it the path's current one.
    pub fn append(
        &mut self,
        new: &NewEntry,
        indexed_ms: i64,
    ) -> Result<(Entry, [u8; 32]), IndexError> {
        let mut v = self.append_many(std::slice::from_ref(new), indexed_ms)?;
        Ok(v.remove(0))
    }

    /// Appends entries in order, in one transaction (one fsync for a batch of files) that
    /// holds the write lock from reading the last link to writing the new ones.
    pub fn append_many(
        &mut self,
        news: &[NewEntry],
        indexed_ms: i64,
    ) -> Result<Vec<(Entry, [u8; 32])>, IndexError> {
        let path = self.path.clone();
        let map = |source| IndexError {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map)?;
        let last: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT id, chain_hash FROM entry ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map)?;
        let (mut id, mut previous) = match last {
            Some((id, h)) => (id, to32(&h)),
            None => (0, chain::GENESIS),
        };
        let mut out = Vec::with_capacity(news.len());
        for new in news {
            id += 1;
            let entry = Entry {
                id,
                recorder: new.recorder.clone(),
                officer: new.officer.clone(),
                path: format!("{}/{}", new.dock, new.path),
                size: new.size,
                sha256: new.sha256.clone(),
                media_type: new.media_type.clone(),
                start_ms: new.start_ms,
                indexed_ms,
                reason: new.reason.to_string(),
            };
            let content = chain::content_hash(&entry);
            let link = chain::link(&previous, &content);
            tx.execute(
                "INSERT INTO entry (id, dock, recorder, officer, path, size, sha256, media_type, start_ms, indexed_ms, reason, content_hash, chain_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![id, new.dock, entry.recorder, entry.officer, new.path, entry.size as i64, entry.sha256, entry.media_type, entry.start_ms, indexed_ms, entry.reason, &content[..], &link[..]],
            )
            .map_err(map)?;
            tx.execute(
                "INSERT INTO file (dock, path, entry_id, size, mtime_ns, missing, uploaded_ms) VALUES (?1, ?2, ?3, ?4, ?5, 0, NULL)
                 ON CONFLICT (dock, path) DO UPDATE SET entry_id = ?3, size = ?4, mtime_ns = ?5, missing = 0, uploaded_ms = NULL",
                params![new.dock, new.path, id, new.size as i64, new.mtime_ns],
            )
            .map_err(map)?;
            previous = link;
            out.push((entry, link));
        }
        tx.commit().map_err(map)?;
        Ok(out)
    }

    /// The current state of `path` on `dock`.
    pub fn file(&self, dock: &str, path: &str) -> Result<Option<FileRow>, IndexError> {
        Ok(self.files_where(dock, Some(path))?.into_iter().next())
    }

    /// Every file of `dock` the index knows.
    pub fn files(&self, dock: &str) -> Result<Vec<FileRow>, IndexError> {
        self.files_where(dock, None)
    }

    fn files_where(&self, dock: &str, path: Option<&str>) -> Result<Vec<FileRow>, IndexError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT f.dock, f.path, f.entry_id, f.size, f.mtime_ns, e.sha256, e.recorder, e.officer, f.missing, f.uploaded_ms IS NOT NULL, e.start_ms
                 FROM file f JOIN entry e ON e.id = f.entry_id
                 WHERE f.dock = ?1 AND (?2 IS NULL OR f.path = ?2)",
            )
            .map_err(|e| self.map(e))?;
        let rows = stmt
            .query_map(params![dock, path], |r| {
                Ok(FileRow {
                    dock: r.get(0)?,
                    path: r.get(1)?,
                    entry_id: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                    mtime_ns: r.get(4)?,
                    sha256: r.get(5)?,
                    recorder: r.get(6)?,
                    officer: r.get(7)?,
                    missing: r.get(8)?,
                    uploaded: r.get(9)?,
                    start_ms: r.get(10)?,
                })
            })
            .map_err(|e| self.map(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.map(e))
    }

    /// The file's size and mtime changed but not its content (touched, or copied again).
    pub fn touch(
        &self,
        dock: &str,
        path: &str,
        size: u64,
        mtime_ns: i64,
    ) -> Result<(), IndexError> {
        self.conn
            .execute(
                "UPDATE file SET size = ?3, mtime_ns = ?4, missing = 0 WHERE dock = ?1 AND path = ?2",
                params![dock, path, size as i64, mtime_ns],
            )
            .map(|_| ())
            .map_err(|e| self.map(e))
    }

    pub fn set_missing(&self, dock: &str, path: &str, missing: bool) -> Result<(), IndexError> {
        self.conn
            .execute(
                "UPDATE file SET missing = ?3 WHERE dock = ?1 AND path = ?2",
                params![dock, path, missing],
            )
            .map(|_| ())
            .map_err(|e| self.map(e))
    }

    pub fn set_uploaded(&self, dock: &str, path: &str, at_ms: i64) -> Result<(), IndexError> {
        self.conn
            .execute(
                "UPDATE file SET uploaded_ms = ?3 WHERE dock = ?1 AND path = ?2",
                params![dock, path, at_ms],
            )
            .map(|_| ())
            .map_err(|e| self.map(e))
    }

    /// Records whether `recorder` is docked; true when that is a change.
    pub fn set_docked(
        &self,
        dock: &str,
        recorder: &str,
        docked: bool,
        at_ms: i64,
    ) -> Result<bool, IndexError> {
        let was: Option<bool> = self
            .conn
            .query_row(
                "SELECT docked FROM recorder WHERE dock = ?1 AND recorder = ?2",
                params![dock, recorder],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.map(e))?;
        if was == Some(docked) {
            return Ok(false);
        }
        self.conn
            .execute(
                "INSERT INTO recorder (dock, recorder, docked, since_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dock, recorder) DO UPDATE SET docked = ?3, since_ms = ?4",
                params![dock, recorder, docked, at_ms],
            )
            .map_err(|e| self.map(e))?;
        Ok(true)
    }

    /// The recorders of `dock` recorded as docked.
    pub fn docked(&self, dock: &str) -> Result<Vec<String>, IndexError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT recorder FROM recorder WHERE dock = ?1 AND docked = 1")
            .map_err(|e| self.map(e))?;
        let rows = stmt
            .query_map(params![dock], |r| r.get(0))
            .map_err(|e| self.map(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.map(e))
    }

    /// Present files of `dock` not uploaded yet.
    pub fn pending(&self, dock: &str) -> Result<Pending, IndexError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(f.size), 0), MIN(e.indexed_ms)
                 FROM file f JOIN entry e ON e.id = f.entry_id
                 WHERE f.dock = ?1 AND f.missing = 0 AND f.uploaded_ms IS NULL",
                params![dock],
                |r| {
                    Ok(Pending {
                        files: r.get::<_, i64>(0)? as u64,
                        bytes: r.get::<_, i64>(1)? as u64,
                        oldest_indexed_ms: r.get(2)?,
                    })
                },
            )
            .map_err(|e| self.map(e))
    }

    /// The chain's head: the last entry's id and chain hash (0 and the genesis when empty).
    pub fn head(&self) -> Result<(i64, [u8; 32]), IndexError> {
        let last: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT id, chain_hash FROM entry ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.map(e))?;
        Ok(last.map_or((0, chain::GENESIS), |(id, h)| (id, to32(&h))))
    }

    /// Every entry in id order, with its dock, stored content hash and chain hash.
    pub fn entries(&self) -> Result<Vec<StoredEntry>, IndexError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, dock, recorder, officer, path, size, sha256, media_type, start_ms, indexed_ms, reason, content_hash, chain_hash
                 FROM entry ORDER BY id",
            )
            .map_err(|e| self.map(e))?;
        let rows = stmt
            .query_map([], |r| {
                let dock: String = r.get(1)?;
                let path: String = r.get(4)?;
                Ok((
                    dock.clone(),
                    Entry {
                        id: r.get(0)?,
                        recorder: r.get(2)?,
                        officer: r.get(3)?,
                        path: format!("{dock}/{path}"),
                        size: r.get::<_, i64>(5)? as u64,
                        sha256: r.get(6)?,
                        media_type: r.get(7)?,
                        start_ms: r.get(8)?,
                        indexed_ms: r.get(9)?,
                        reason: r.get(10)?,
                    },
                    to32(&r.get::<_, Vec<u8>>(11)?),
                    to32(&r.get::<_, Vec<u8>>(12)?),
                ))
            })
            .map_err(|e| self.map(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.map(e))
    }

    /// For tests of `evidence verify`: the raw connection (to edit or delete a row as an
    /// attacker with file access would).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// A stored 32-byte hash (a wrong length reads as zeros, which then fails verification).
fn to32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().unwrap_or([0; 32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(path: &str, sha: &str) -> NewEntry {
        NewEntry {
            dock: "dock0".into(),
            recorder: "DSJ-A1-0001".into(),
            officer: "P-0417".into(),
            path: path.into(),
            size: 10,
            mtime_ns: 1,
            sha256: sha.into(),
            media_type: "video/mp4".into(),
            start_ms: None,
            reason: "new",
        }
    }

    #[test]
    fn entries_chain_a_path_keeps_its_history_and_state_lives_beside_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = EvidenceIndex::open(&dir.path().join("evidence.db")).unwrap();
        let (a, _) = idx.append(&new("r1/a.mp4", "aa"), 1).unwrap();
        let (b, head) = idx.append(&new("r1/b.mp4", "bb"), 2).unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(idx.head().unwrap(), (2, head));
        let mut altered = new("r1/a.mp4", "cc");
        altered.reason = "altered";
        idx.append(&altered, 3).unwrap();
        let f = idx.file("dock0", "r1/a.mp4").unwrap().unwrap();
        assert_eq!((f.entry_id, f.sha256.as_str()), (3, "cc"));
        assert_eq!(idx.entries().unwrap().len(), 3, "the old entry stays");
        idx.set_uploaded("dock0", "r1/b.mp4", 5).unwrap();
        idx.set_missing("dock0", "r1/a.mp4", true).unwrap();
        assert_eq!(idx.pending("dock0").unwrap().files, 0);
        // Upload and presence are not chained: the chain still verifies.
        let entries = idx.entries().unwrap();
        let (breaks, h) = chain::verify(entries.iter().map(|(_, e, c, l)| (e, *c, *l)));
        assert!(breaks.is_empty());
        assert_eq!(h, idx.head().unwrap().1);
        assert!(idx.set_docked("dock0", "DSJ-A1-0001", true, 1).unwrap());
        assert!(
            !idx.set_docked("dock0", "DSJ-A1-0001", true, 2).unwrap(),
            "no change"
        );
        assert_eq!(idx.docked("dock0").unwrap(), ["DSJ-A1-0001"]);
    }
}
