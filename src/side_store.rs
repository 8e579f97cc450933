//! The daemon's small SQLite stores beside the outbox — `commands.db`, `evidence.db`,
//! `staffing.db`, `equipment.db`, `dispatch.db` — opened one way (WAL, `synchronous=FULL`: a change survives a
//! power cut once its call returns; a 10 s busy timeout for the technician's readers), and
//! reached from async code without stalling the runtime's one thread on an fsync.

use rusqlite::{Connection, Params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The files kept in the outbox's directory; the outbox may not take one of these names.
pub const NAMES: [&str; 5] = [
    "commands.db",
    "evidence.db",
    "staffing.db",
    "equipment.db",
    "dispatch.db",
];

/// `name` in the outbox's directory.
pub fn path(outbox: &Path, name: &str) -> PathBuf {
    outbox.parent().unwrap_or(Path::new(".")).join(name)
}

/// Opens (creating) the store at `path` and applies `schema` (`CREATE TABLE IF NOT EXISTS …`).
pub fn open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// A side store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source} (check that the outbox's directory is writable by the daemon)")]
pub struct StoreError {
    what: &'static str,
    path: PathBuf,
    source: rusqlite::Error,
}

/// An open side store: its connection, and errors that name it.
pub struct Db {
    pub conn: Connection,
    path: PathBuf,
    /// `staffing store`, `equipment store`: how errors name it.
    what: &'static str,
}

impl Db {
    /// Opens `path` (see [`open`]) with `schema` and a (key, state, since) table for each of
    /// `since_tables`; errors say `what` it is.
    pub fn open(
        path: &Path,
        what: &'static str,
        schema: &str,
        since_tables: &[&str],
    ) -> Result<Db, StoreError> {
        let tables: String = since_tables.iter().map(|t| since_table(t)).collect();
        let conn = open(path, &format!("{schema}\n{tables}")).map_err(|source| StoreError {
            what,
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Db {
            conn,
            path: path.to_path_buf(),
            what,
        })
    }

    /// `source` as this store's error.
    pub fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            what: self.what,
            path: self.path.clone(),
            source,
        }
    }

    /// Executes one statement; the rows it changed.
    pub fn exec(&self, sql: &str, params: impl Params) -> Result<usize, StoreError> {
        self.conn.execute(sql, params).map_err(|e| self.err(e))
    }

    /// Stores (key, state, since) rows in `table` (columns `key`, `state`, `since_ms`).
    pub fn put_since(&self, table: &str, rows: &[(String, String, i64)]) -> Result<(), StoreError> {
        let sql =
            format!("INSERT OR REPLACE INTO {table} (key, state, since_ms) VALUES (?1, ?2, ?3)");
        rows.iter()
            .try_for_each(|(k, s, t)| self.exec(&sql, rusqlite::params![k, s, t]).map(drop))
    }

    /// The (key, state, since) rows of `table`.
    pub fn load_since(&self, table: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let r = (|| {
            let mut q = self
                .conn
                .prepare(&format!("SELECT key, state, since_ms FROM {table}"))?;
            let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })();
        r.map_err(|e| self.err(e))
    }
}

/// The schema of a (key, state, since) table.
fn since_table(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, state TEXT NOT NULL, since_ms INTEGER NOT NULL);"
    )
}

/// A store shared by a service's async methods: each call runs on the blocking pool.
pub struct Shared<S>(Arc<Mutex<S>>);

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<S: Send + 'static> Shared<S> {
    pub fn new(store: S) -> Shared<S> {
        Shared(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` on the store off the runtime's thread (an fsync must not stall the drivers).
    pub async fn run<T: Send + 'static, E: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&store)))
            .await
            .expect("a store task panicked")
    }
}

fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Since when each key (a crew, an item) has been in its state: kept across restarts so a
/// republished snapshot says the same "since".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Since(std::collections::BTreeMap<String, (String, i64)>);

impl Since {
    pub fn from_rows(rows: Vec<(String, String, i64)>) -> Since {
        Since(rows.into_iter().map(|(k, s, t)| (k, (s, t))).collect())
    }

    /// `key`'s since for `state` at `now_ms`: the held one while the state holds, else now
    /// (and the new row to store).
    pub fn of(
        &mut self,
        key: &str,
        state: &str,
        now_ms: i64,
    ) -> (i64, Option<(String, String, i64)>) {
        match self.0.get(key) {
            Some((s, since)) if s == state => (*since, None),
            _ => {
                self.0.insert(key.to_string(), (state.to_string(), now_ms));
                (now_ms, Some((key.to_string(), state.to_string(), now_ms)))
            }
        }
    }

    /// The state last held for `key`.
    pub fn state(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|(s, _)| s.as_str())
    }

    /// `key`'s held (state, since).
    pub fn get(&self, key: &str) -> Option<&(String, i64)> {
        self.0.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_holds_while_the_state_does() {
        let mut s = Since::from_rows(vec![("car-03".into(), "ready".into(), 5)]);
        assert_eq!(s.of("car-03", "ready", 9), (5, None));
        assert_eq!(
            s.of("car-03", "on_call", 10),
            (10, Some(("car-03".into(), "on_call".into(), 10)))
        );
        assert_eq!(s.of("car-03", "on_call", 11).0, 10);
        assert_eq!(s.state("car-03"), Some("on_call"));
        assert_eq!(s.of("car-04", "ready", 12).0, 12);
    }
}
