//! `dispatch.db` beside the outbox (SQLite, WAL, fsynced): every incident with its crews, so a
//! restarted daemon still knows which crews are on call, goes on judging their arrival and
//! keeps the figures. Incidents cleared longer ago than `[dispatch] keep_days` are dropped.

use super::model::Incident;
use crate::side_store::Db;
use rusqlite::params;
use std::path::{Path, PathBuf};

pub use crate::side_store::StoreError;

/// `dispatch.db` in the outbox's directory.
pub fn store_path(outbox: &Path) -> PathBuf {
    crate::side_store::path(outbox, "dispatch.db")
}

pub struct DispatchStore {
    db: Db,
}

impl DispatchStore {
    pub fn open(path: &Path) -> Result<DispatchStore, StoreError> {
        let db = Db::open(
            path,
            "dispatch store",
            "CREATE TABLE IF NOT EXISTS incident (
                 id TEXT PRIMARY KEY,
                 opened_ms INTEGER NOT NULL,
                 cleared_ms INTEGER,
                 body TEXT NOT NULL
             );",
            &[],
        )?;
        Ok(DispatchStore { db })
    }

    /// Every incident kept, oldest first. A row that no longer reads (a newer daemon's, a
    /// damaged one) is skipped and counted in the second value.
    pub fn load(&self) -> Result<(Vec<Incident>, usize), StoreError> {
        let r = (|| {
            let mut q = self
                .db
                .conn
                .prepare("SELECT body FROM incident ORDER BY opened_ms, id")?;
            let bodies = q
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let mut skipped = 0;
            let incidents = bodies
                .iter()
                .filter_map(|b| {
                    let i = serde_json::from_str(b).ok();
                    skipped += usize::from(i.is_none());
                    i
                })
                .collect();
            Ok((incidents, skipped))
        })();
        r.map_err(|e| self.db.err(e))
    }

    pub fn put(&self, incident: &Incident) -> Result<(), StoreError> {
        let body = serde_json::to_string(incident).expect("an incident serialises");
        self.db
            .exec(
                "INSERT OR REPLACE INTO incident (id, opened_ms, cleared_ms, body) VALUES (?1, ?2, ?3, ?4)",
                params![
                    incident.id,
                    incident.opened_ms,
                    incident.cleared.as_ref().map(|c| c.at_ms),
                    body
                ],
            )
            .map(drop)
    }

    /// Drops incidents cleared before `before_ms`; how many.
    pub fn prune(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.db.exec(
            "DELETE FROM incident WHERE cleared_ms IS NOT NULL AND cleared_ms < ?1",
            params![before_ms],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_survive_a_reopen_and_old_cleared_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dispatch.db");
        let mut i: Incident = serde_json::from_value(serde_json::json!({
            "id": "J-1", "priority": 1, "type": "dispute", "summary": "", "lat": 36.6,
            "lon": 117.0, "address": "", "opened_ms": 1000, "crews": [], "cleared": null
        }))
        .unwrap();
        let s = DispatchStore::open(&path).unwrap();
        s.put(&i).unwrap();
        i.id = "J-2".into();
        i.cleared = Some(super::super::model::Cleared {
            at_ms: 5000,
            outcome: "closed".into(),
            closed_by: None,
            by: "central".into(),
        });
        s.put(&i).unwrap();
        s.db.exec(
            "INSERT INTO incident (id, opened_ms, body) VALUES ('bad', 3, '{')",
            [],
        )
        .unwrap();
        drop(s);
        let s = DispatchStore::open(&path).unwrap();
        let (all, skipped) = s.load().unwrap();
        assert_eq!((all.len(), skipped), (2, 1));
        assert_eq!(s.prune(6000).unwrap(), 1);
        let (all, _) = s.load().unwrap();
        assert_eq!(all[0].id, "J-1");
    }
}
