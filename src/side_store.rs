//! The daemon's small SQLite stores beside the outbox — `commands.db`, `evidence.db`,
//! `staffing.db`, `equipment.db` — opened one way (WAL, `synchronous=FULL`: a change survives a
//! power cut once its call returns; a 10 s busy timeout for the technician's readers), and
//! reached from async code without stalling the runtime's one thread on an fsync.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The files kept in the outbox's directory; the outbox may not take one of these names.
pub const NAMES: [&str; 4] = ["commands.db", "evidence.db", "staffing.db", "equipment.db"];

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
