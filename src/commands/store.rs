//! The answers kept to answer a repeated `request_id` again without running the command a
//! second time, also after a restart: `commands.db` beside the outbox (SQLite, WAL, fsynced).
//!
//! A command is recorded as running before it runs and its answer stored when it ends, so a
//! crash in between leaves "running": after a restart such a command is not run again but
//! answered `failed` (at most once, never twice). Bounded by age and count.

use crate::command::Answer;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("command answers {path}: {source}")]
pub struct StoreError {
    path: PathBuf,
    source: rusqlite::Error,
}

/// What is recorded for a `request_id`.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Started and not finished (by this process, or by one that stopped).
    Running,
    Answered(Answer),
}

pub struct AnswerStore {
    conn: Connection,
    path: PathBuf,
}

impl AnswerStore {
    pub fn open(path: &Path) -> Result<AnswerStore, StoreError> {
        let map = |source| StoreError {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::side_store::open(
            path,
            "CREATE TABLE IF NOT EXISTS answer (
                 request_id TEXT PRIMARY KEY,
                 received_ms INTEGER NOT NULL,
                 answer TEXT
             );
             CREATE INDEX IF NOT EXISTS answer_received ON answer(received_ms);",
        )
        .map_err(map)?;
        Ok(AnswerStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn map(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source,
        }
    }

    pub fn lookup(&self, request_id: &str) -> Result<Option<Recorded>, StoreError> {
        let row: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT answer FROM answer WHERE request_id = ?1",
                [request_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.map(e))?;
        Ok(row.map(
            |answer| match answer.and_then(|a| serde_json::from_str(&a).ok()) {
                Some(a) => Recorded::Answered(a),
                None => Recorded::Running,
            },
        ))
    }

    /// Records that the command is about to run (committed before it runs).
    pub fn begin(&self, request_id: &str, now_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO answer(request_id, received_ms, answer) VALUES (?1, ?2, NULL)",
                params![request_id, now_ms],
            )
            .map(drop)
            .map_err(|e| self.map(e))
    }

    /// Stores the answer (also for commands refused or expired after authentication).
    pub fn answer(&self, answer: &Answer, now_ms: i64) -> Result<(), StoreError> {
        let text = serde_json::to_string(answer).expect("an answer serialises");
        self.conn
            .execute(
                "INSERT INTO answer(request_id, received_ms, answer) VALUES (?1, ?2, ?3)
                 ON CONFLICT(request_id) DO UPDATE SET answer = excluded.answer",
                params![answer.request_id, now_ms, text],
            )
            .map(drop)
            .map_err(|e| self.map(e))
    }

    /// Drops answers older than `keep_days` and all but the newest `keep`.
    pub fn prune(&self, now_ms: i64, keep_days: u32, keep: u32) -> Result<usize, StoreError> {
        let oldest = now_ms - i64::from(keep_days) * 86_400_000;
        let aged = self
            .conn
            .execute("DELETE FROM answer WHERE received_ms < ?1", [oldest])
            .map_err(|e| self.map(e))?;
        let over = self
            .conn
            .execute(
                "DELETE FROM answer WHERE request_id IN (
                     SELECT request_id FROM answer ORDER BY received_ms DESC LIMIT -1 OFFSET ?1)",
                [i64::from(keep)],
            )
            .map_err(|e| self.map(e))?;
        Ok(aged + over)
    }

    /// Answers (and runs) kept.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM answer", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.map(e))
    }
}

/// `commands.db` in the outbox's directory.
pub fn store_path(outbox: &Path) -> PathBuf {
    crate::side_store::path(outbox, "commands.db")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Status;

    fn answer(id: &str) -> Answer {
        Answer {
            request_id: id.into(),
            command: "ping".into(),
            status: Status::Done,
            reason: None,
            result: Some(serde_json::json!({"n": 1})),
            started_ts: Some("2026-12-01T08:00:00.000Z".into()),
            finished_ts: "2026-12-01T08:00:00.001Z".into(),
            clock: "synced".into(),
        }
    }

    #[test]
    fn an_answer_survives_reopening_and_a_begun_command_stays_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commands.db");
        let s = AnswerStore::open(&path).unwrap();
        assert_eq!(s.lookup("a").unwrap(), None);
        s.begin("a", 1).unwrap();
        s.begin("b", 2).unwrap();
        s.answer(&answer("a"), 3).unwrap();
        drop(s);
        let s = AnswerStore::open(&path).unwrap();
        assert_eq!(
            s.lookup("a").unwrap(),
            Some(Recorded::Answered(answer("a")))
        );
        assert_eq!(
            s.lookup("b").unwrap(),
            Some(Recorded::Running),
            "a crash mid-run"
        );
    }

    #[test]
    fn pruning_keeps_the_newest_within_the_age() {
        let dir = tempfile::tempdir().unwrap();
        let s = AnswerStore::open(&dir.path().join("commands.db")).unwrap();
        let day = 86_400_000;
        for i in 0..10 {
            s.answer(&answer(&format!("r{i}")), i * day).unwrap();
        }
        // Keep 7 days back from day 9 (days 2..=9: 8 answers), then at most 5.
        assert_eq!(s.prune(9 * day, 7, 5).unwrap(), 5);
        assert_eq!(s.count().unwrap(), 5);
        assert!(s.lookup("r9").unwrap().is_some());
        assert!(s.lookup("r4").unwrap().is_none());
        assert!(s.lookup("r5").unwrap().is_some());
    }
}
