//! `equipment.db` beside the outbox (SQLite, WAL, fsynced): the register, what people last said
//! of each item, what each recorder last did at the dock, and since when each item has been in
//! its state — so a restarted daemon republishes the same register.

use super::model::{Docking, Manual, State};
use super::register::Item;
use crate::side_store::Db;
use rusqlite::params;
use std::path::{Path, PathBuf};

pub use crate::side_store::StoreError;

/// `equipment.db` in the outbox's directory.
pub fn store_path(outbox: &Path) -> PathBuf {
    crate::side_store::path(outbox, "equipment.db")
}

/// Everything kept, as loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub items: Vec<Item>,
    pub manual: Vec<(String, Manual)>,
    /// By device id.
    pub docking: Vec<(String, Docking)>,
    /// item → (state, since).
    pub judged: Vec<(String, String, i64)>,
}

pub struct EquipmentStore {
    db: Db,
}

impl EquipmentStore {
    pub fn open(path: &Path) -> Result<EquipmentStore, StoreError> {
        let db = Db::open(
            path,
            "equipment store",
            "CREATE TABLE IF NOT EXISTS item (
                 id TEXT PRIMARY KEY,
                 ord INTEGER NOT NULL,
                 body TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS manual (
                 item TEXT PRIMARY KEY,
                 state TEXT NOT NULL,
                 assigned_to TEXT,
                 note TEXT NOT NULL,
                 by TEXT NOT NULL,
                 at_ms INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS docking (
                 device TEXT PRIMARY KEY,
                 docked INTEGER NOT NULL,
                 dock TEXT NOT NULL,
                 officer TEXT,
                 at_ms INTEGER NOT NULL
             );",
            &["judged"],
        )?;
        Ok(EquipmentStore { db })
    }

    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut out = self.load_inner().map_err(|e| self.db.err(e))?;
        out.judged = self.db.load_since("judged")?;
        Ok(out)
    }

    fn load_inner(&self) -> rusqlite::Result<Loaded> {
        let mut out = Loaded::default();
        let mut q = self.db.conn.prepare("SELECT body FROM item ORDER BY ord")?;
        for body in q.query_map([], |r| r.get::<_, String>(0))? {
            if let Ok(item) = serde_json::from_str(&body?) {
                out.items.push(item);
            }
        }
        let mut q = self
            .db
            .conn
            .prepare("SELECT item, state, assigned_to, note, by, at_ms FROM manual")?;
        for row in q.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })? {
            let (item, state, assigned_to, note, by, at_ms) = row?;
            if let Some(state) = State::from_name(&state) {
                out.manual.push((
                    item,
                    Manual {
                        state,
                        assigned_to,
                        note,
                        by,
                        at_ms,
                    },
                ));
            }
        }
        let mut q = self
            .db
            .conn
            .prepare("SELECT device, docked, dock, officer, at_ms FROM docking")?;
        for row in q.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Docking {
                    docked: r.get(1)?,
                    dock: r.get(2)?,
                    officer: r.get(3)?,
                    at_ms: r.get(4)?,
                },
            ))
        })? {
            out.docking.push(row?);
        }
        Ok(out)
    }

    /// Replaces the register.
    pub fn set_items(&mut self, items: &[Item]) -> Result<(), StoreError> {
        let r = (|| {
            let tx = self.db.conn.transaction()?;
            tx.execute("DELETE FROM item", [])?;
            {
                let mut ins = tx.prepare("INSERT INTO item (id, ord, body) VALUES (?1, ?2, ?3)")?;
                for (i, item) in items.iter().enumerate() {
                    let body = serde_json::to_string(item).expect("an item serialises");
                    ins.execute(params![item.id, i as i64, body])?;
                }
            }
            tx.commit()
        })();
        r.map_err(|e| self.db.err(e))
    }

    pub fn put_manual(&self, item: &str, m: &Manual) -> Result<(), StoreError> {
        self.db.conn
            .execute(
                "INSERT OR REPLACE INTO manual (item, state, assigned_to, note, by, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![item, m.state.name(), m.assigned_to, m.note, m.by, m.at_ms],
            )
            .map(drop)
            .map_err(|e| self.db.err(e))
    }

    pub fn put_docking(&self, device: &str, d: &Docking) -> Result<(), StoreError> {
        self.db.conn
            .execute(
                "INSERT OR REPLACE INTO docking (device, docked, dock, officer, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![device, d.docked, d.dock, d.officer, d.at_ms],
            )
            .map(drop)
            .map_err(|e| self.db.err(e))
    }

    /// Since when each key has been in its state (see [`crate::side_store::Since`]).
    pub fn put_since(&self, rows: &[(String, String, i64)]) -> Result<(), StoreError> {
        self.db.put_since("judged", rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_stored_comes_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("equipment.db");
        let mut s = EquipmentStore::open(&path).unwrap();
        let items = vec![Item {
            id: "RAD-07".into(),
            class: "radios".into(),
            name: "Handheld".into(),
            serial: Some("SN7".into()),
            device: Some("hh-1001".into()),
            car: Some("car-03".into()),
            next_maintenance: Some("2027-03-31".into()),
        }];
        s.set_items(&items).unwrap();
        let m = Manual {
            state: State::CheckedOut,
            assigned_to: Some("P-0417".into()),
            note: "night shift".into(),
            by: "cli:alice".into(),
            at_ms: 5,
        };
        s.put_manual("RAD-07", &m).unwrap();
        let d = Docking {
            docked: true,
            dock: "dock0".into(),
            officer: None,
            at_ms: 6,
        };
        s.put_docking("DSJ-A1-0001", &d).unwrap();
        s.put_since(&[("RAD-07".into(), "checked_out".into(), 5)])
            .unwrap();
        drop(s);
        let l = EquipmentStore::open(&path).unwrap().load().unwrap();
        assert_eq!(l.items, items);
        assert_eq!(l.manual, [("RAD-07".to_string(), m)]);
        assert_eq!(l.docking, [("DSJ-A1-0001".to_string(), d)]);
        assert_eq!(l.judged, [("RAD-07".into(), "checked_out".into(), 5)]);
    }
}
