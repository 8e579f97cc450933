//! `staffing.db` beside the outbox (SQLite, WAL, fsynced): the roster, the latest presence
//! signal per person and source, the crews, the overrides, and since when each crew has been in
//! its readiness — everything `P/state/staffing` is computed from, so a restarted daemon
//! republishes the same picture (and the same "since") it had.

use super::model::{CrewEntry, Override, OverrideKind};
use super::roster::Person;
use crate::side_store::Db;
use rusqlite::params;
use stationd_proto::staffing::presence::{Signal, Source};
use std::path::{Path, PathBuf};

pub use crate::side_store::StoreError;

/// `staffing.db` in the outbox's directory.
pub fn store_path(outbox: &Path) -> PathBuf {
    crate::side_store::path(outbox, "staffing.db")
}

/// Everything kept, as loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub roster: Vec<Person>,
    pub signals: Vec<Signal>,
    pub crews: Vec<CrewEntry>,
    pub overrides: Vec<Override>,
    /// car → (readiness name, since ms).
    pub readiness: Vec<(String, String, i64)>,
}

pub struct StaffingStore {
    db: Db,
}

impl StaffingStore {
    pub fn open(path: &Path) -> Result<StaffingStore, StoreError> {
        let db = Db::open(
            path,
            "staffing store",
            "CREATE TABLE IF NOT EXISTS person (
                 id TEXT PRIMARY KEY,
                 ord INTEGER NOT NULL,
                 name TEXT NOT NULL,
                 role TEXT NOT NULL,
                 team TEXT,
                 card TEXT
             );
             CREATE TABLE IF NOT EXISTS signal (
                 person TEXT NOT NULL,
                 source TEXT NOT NULL,
                 present INTEGER NOT NULL,
                 at_ms INTEGER NOT NULL,
                 detail TEXT NOT NULL,
                 PRIMARY KEY (person, source)
             );
             CREATE TABLE IF NOT EXISTS crew (
                 car TEXT PRIMARY KEY,
                 members TEXT NOT NULL,
                 formed_by TEXT NOT NULL,
                 since_ms INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS override (
                 id INTEGER PRIMARY KEY,
                 person TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 team TEXT,
                 from_ms INTEGER NOT NULL,
                 until_ms INTEGER NOT NULL,
                 note TEXT NOT NULL,
                 by TEXT NOT NULL
             );",
            &["readiness"],
        )?;
        Ok(StaffingStore { db })
    }

    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut out = self.load_inner().map_err(|e| self.db.err(e))?;
        out.readiness = self.db.load_since("readiness")?;
        Ok(out)
    }

    fn load_inner(&self) -> rusqlite::Result<Loaded> {
        let mut out = Loaded::default();
        let mut q = self
            .db
            .conn
            .prepare("SELECT id, name, role, team, card FROM person ORDER BY ord")?;
        for row in q.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })? {
            let (id, name, role, team, card) = row?;
            let Ok(role) = super::roster::parse_role(&role) else {
                continue;
            };
            out.roster.push(Person {
                id,
                name,
                role,
                team,
                card,
            });
        }
        let mut q = self
            .db
            .conn
            .prepare("SELECT person, source, present, at_ms, detail FROM signal")?;
        for row in q.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })? {
            let (person, source, present, at_ms, detail) = row?;
            if let Some(source) = source_from_name(&source) {
                out.signals.push(Signal {
                    person,
                    present,
                    source,
                    at_ms,
                    detail,
                });
            }
        }
        let mut q = self
            .db
            .conn
            .prepare("SELECT car, members, formed_by, since_ms FROM crew")?;
        for row in q.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })? {
            let (car, members, formed_by, since_ms) = row?;
            out.crews.push(CrewEntry {
                car,
                members: serde_json::from_str(&members).unwrap_or_default(),
                formed_by,
                since_ms,
            });
        }
        let mut q = self.db.conn.prepare(
            "SELECT id, person, kind, team, from_ms, until_ms, note, by FROM override ORDER BY id",
        )?;
        for row in q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })? {
            let (id, person, kind, team, from_ms, until_ms, note, by) = row?;
            let Some(kind) = OverrideKind::from_name(&kind) else {
                continue;
            };
            out.overrides.push(Override {
                id,
                person,
                kind,
                team,
                from_ms,
                until_ms,
                note,
                by,
            });
        }
        Ok(out)
    }

    /// Replaces the whole roster.
    pub fn set_roster(&mut self, people: &[Person]) -> Result<(), StoreError> {
        let r = (|| {
            let tx = self.db.conn.transaction()?;
            tx.execute("DELETE FROM person", [])?;
            {
                let mut ins = tx.prepare(
                    "INSERT INTO person (id, ord, name, role, team, card) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (i, p) in people.iter().enumerate() {
                    ins.execute(params![
                        p.id,
                        i as i64,
                        p.name,
                        super::roster::role_name(p.role),
                        p.team,
                        p.card
                    ])?;
                }
            }
            tx.commit()
        })();
        r.map_err(|e| self.db.err(e))
    }

    pub fn put_signal(&self, s: &Signal) -> Result<(), StoreError> {
        self.db.conn
            .execute(
                "INSERT INTO signal (person, source, present, at_ms, detail) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (person, source) DO UPDATE SET present = excluded.present,
                     at_ms = excluded.at_ms, detail = excluded.detail
                 WHERE excluded.at_ms >= signal.at_ms",
                params![s.person, source_name(s.source), s.present, s.at_ms, s.detail],
            )
            .map(drop)
            .map_err(|e| self.db.err(e))
    }

    pub fn put_crew(&self, c: &CrewEntry) -> Result<(), StoreError> {
        let members = serde_json::to_string(&c.members).expect("strings serialise");
        self.db.conn
            .execute(
                "INSERT OR REPLACE INTO crew (car, members, formed_by, since_ms) VALUES (?1, ?2, ?3, ?4)",
                params![c.car, members, c.formed_by, c.since_ms],
            )
            .map(drop)
            .map_err(|e| self.db.err(e))
    }

    /// Stores an override; its id.
    pub fn add_override(&self, o: &Override) -> Result<i64, StoreError> {
        self.db.conn
            .execute(
                "INSERT INTO override (person, kind, team, from_ms, until_ms, note, by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![o.person, o.kind.name(), o.team, o.from_ms, o.until_ms, o.note, o.by],
            )
            .map_err(|e| self.db.err(e))?;
        Ok(self.db.conn.last_insert_rowid())
    }

    /// Removes override `id`; whether it was there.
    pub fn remove_override(&self, id: i64) -> Result<bool, StoreError> {
        self.db
            .conn
            .execute("DELETE FROM override WHERE id = ?1", [id])
            .map(|n| n > 0)
            .map_err(|e| self.db.err(e))
    }

    /// Forgets overrides that ended before `before_ms`.
    pub fn prune_overrides(&self, before_ms: i64) -> Result<(), StoreError> {
        self.db
            .conn
            .execute("DELETE FROM override WHERE until_ms < ?1", [before_ms])
            .map(drop)
            .map_err(|e| self.db.err(e))
    }

    /// Since when each key has been in its state (see [`crate::side_store::Since`]).
    pub fn put_since(&self, rows: &[(String, String, i64)]) -> Result<(), StoreError> {
        self.db.put_since("readiness", rows)
    }
}

pub fn source_name(s: Source) -> &'static str {
    match s {
        Source::Recorder => "recorder",
        Source::Radio => "radio",
        Source::Terminal => "terminal",
        Source::Cli => "cli",
        Source::SignIn => "sign_in",
        Source::Central => "central",
    }
}

fn source_from_name(s: &str) -> Option<Source> {
    [
        Source::Recorder,
        Source::Radio,
        Source::Terminal,
        Source::Cli,
        Source::SignIn,
        Source::Central,
    ]
    .into_iter()
    .find(|x| source_name(*x) == s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stationd_proto::staffing::crew::Role;

    #[test]
    fn what_is_stored_comes_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staffing.db");
        let mut s = StaffingStore::open(&path).unwrap();
        let people = vec![
            Person {
                id: "P-2".into(),
                name: "B".into(),
                role: Role::Officer,
                team: Some("1".into()),
                card: Some("C2".into()),
            },
            Person {
                id: "A-1".into(),
                name: "A".into(),
                role: Role::Auxiliary,
                team: None,
                card: None,
            },
        ];
        s.set_roster(&people).unwrap();
        let sig = |present, at_ms| Signal {
            person: "P-2".into(),
            present,
            source: Source::Radio,
            at_ms,
            detail: "radio".into(),
        };
        s.put_signal(&sig(true, 2_000)).unwrap();
        s.put_signal(&sig(false, 1_000)).unwrap();
        s.put_crew(&CrewEntry {
            car: "car-01".into(),
            members: vec!["P-2".into(), "A-1".into()],
            formed_by: "cli".into(),
            since_ms: 5,
        })
        .unwrap();
        let id = s
            .add_override(&Override {
                id: 0,
                person: "A-1".into(),
                kind: OverrideKind::Sick,
                team: None,
                from_ms: 0,
                until_ms: 10,
                note: "flu".into(),
                by: "cli".into(),
            })
            .unwrap();
        s.put_since(&[("car-01".into(), "ready".into(), 7)])
            .unwrap();
        drop(s);
        let loaded = StaffingStore::open(&path).unwrap().load().unwrap();
        assert_eq!(loaded.roster, people, "in the file's order");
        assert_eq!(
            loaded.signals,
            [sig(true, 2_000)],
            "an older signal never replaces a newer one"
        );
        assert_eq!(loaded.crews[0].members, ["P-2", "A-1"]);
        assert_eq!(loaded.overrides[0].id, id);
        assert_eq!(loaded.readiness, [("car-01".into(), "ready".into(), 7)]);
        let s = StaffingStore::open(&path).unwrap();
        assert!(s.remove_override(id).unwrap());
        assert!(!s.remove_override(id).unwrap());
    }
}
