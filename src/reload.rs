//! Reloading the configuration while the daemon runs (SIGHUP, `stationd reload`, the unit's
//! `ExecReload=`, central's signed `config.reload`), without losing what is buffered or in
//! flight and without touching what did not change.
//!
//! The file and its profile are read and validated exactly as at start. An invalid one changes
//! nothing: the running configuration stays, and the reason goes to the log, to the caller,
//! to `stationd status` and to central as a `config.rejected` event. A valid one is applied:
//! - devices: the ones whose settings changed are restarted, removed ones stopped, new ones
//!   started; the others keep running untouched (`crate::drivers::DeviceSet`);
//! - the uplink (`[uplink]`, or the profile's name in the birth): the session in flight is
//!   finished, the broker told `offline` (`reconfigured`), and the uplink connects with the new
//!   settings; the outbox replays what the old broker had not acknowledged;
//! - everything else (`[station] id` and `name`, `[buffer]`, `[commands]`, `[staffing]`,
//!   `[equipment]`, `[dispatch]`, `[metrics]`, `[status_page]`) is read at start only: a change
//!   there is listed as `pending_restart` until the next restart, not applied halfway.
//!
//! Central hears of each outcome (`config.reloaded`, `config.rejected`) with the configuration's
//! hash, so it knows which one a station runs.

use crate::config::Config;
use crate::drivers::DeviceChanges;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How long a caller waits for a reload's outcome.
pub const RELOAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(80);

/// The sections a reload does not apply (read once at start), compared as written; `[buffer]`
/// and `[station]` are compared by what they give (below).
const AT_START_ONLY: [&str; 6] = [
    "commands",
    "staffing",
    "equipment",
    "dispatch",
    "metrics",
    "status_page",
];

/// What a reload did, as the caller, `stationd status` and central see it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReloadOutcome {
    /// Applied, or rejected (the running configuration unchanged).
    pub applied: bool,
    /// Who asked: `SIGHUP`, `cli:NAME`, `central:REQUEST_ID`.
    pub by: String,
    /// Unix ms.
    pub at_ms: i64,
    /// The configuration running now (the new one when applied).
    pub hash: String,
    /// The one that ran before, when applied.
    pub previous_hash: Option<String>,
    /// Why it was rejected (file, line, key and what is wrong).
    pub error: Option<String>,
    pub devices: DeviceChanges,
    /// `reconnecting` (new uplink settings) or `unchanged`.
    pub uplink: &'static str,
    /// Sections that changed but are read at start only: they apply at the next restart.
    pub pending_restart: Vec<String>,
}

/// A request to reload, answered once the reload is done or rejected.
pub struct ReloadRequest {
    pub by: String,
    pub reply: oneshot::Sender<ReloadOutcome>,
}

/// Asks the running daemon to reload (the control socket and the `config.reload` command hold
/// one); the daemon's main loop does it.
#[derive(Clone)]
pub struct Reloader(mpsc::Sender<ReloadRequest>);

impl Reloader {
    pub fn new() -> (Reloader, mpsc::Receiver<ReloadRequest>) {
        let (tx, rx) = mpsc::channel(4);
        (Reloader(tx), rx)
    }

    /// Reloads; the outcome, or why the daemon could not be asked.
    pub async fn reload(&self, by: &str) -> Result<ReloadOutcome, String> {
        let (reply, outcome) = oneshot::channel();
        self.0
            .send(ReloadRequest {
                by: by.to_string(),
                reply,
            })
            .await
            .map_err(|_| "this daemon does not reload (it is stopping, or it runs embedded without its main loop)".to_string())?;
        match tokio::time::timeout(RELOAD_DEADLINE, outcome).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err("the daemon stopped before the reload finished".to_string()),
            Err(_) => Err(format!(
                "no outcome within {} s: the daemon's main loop did not take the reload",
                RELOAD_DEADLINE.as_secs()
            )),
        }
    }
}

/// The configuration as `stationd status` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, PartialEq)]
pub struct ConfigReport {
    pub path: String,
    pub hash: String,
    /// Unix ms when the running configuration was loaded.
    pub loaded_ms: i64,
    pub pending_restart: Vec<String>,
    /// The last reload, applied or rejected.
    pub last_reload: Option<serde_json::Value>,
}

/// The daemon's configuration state, shared with the views.
pub type SharedConfigReport = Arc<Mutex<ConfigReport>>;

/// Which sections read at start only differ between the configuration the daemon started
/// with and `new`.
pub fn pending_restart(started: &Config, new: &Config) -> Vec<String> {
    let mut pending: Vec<String> = AT_START_ONLY
        .iter()
        .filter(|s| started.sections.get(**s) != new.sections.get(**s))
        .map(|s| s.to_string())
        .collect();
    // [buffer] as the profile's [storage] fills it in.
    if started.buffer != new.buffer {
        pending.push("buffer".into());
    }
    // [station]: its profile is applied (the devices, the birth); its id and name are not.
    if started.station.id.as_str() != new.station.id.as_str() {
        pending.push("station.id".into());
    }
    if started.station.name != new.station.name {
        pending.push("station.name".into());
    }
    pending.sort();
    pending
}

/// Whether the uplink must reconnect: its section changed, or the birth's profile name.
pub fn uplink_changed(applied: &Config, new: &Config) -> bool {
    applied.sections.get("uplink") != new.sections.get("uplink")
        || applied.profile.as_ref().map(|p| &p.name) != new.profile.as_ref().map(|p| &p.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra: &str, brokers: &str) -> Config {
        let text = format!(
            "[station]\nid = \"st-1\"\nname = \"n\"\n[uplink]\nbrokers = [{brokers}]\n[buffer]\npath = \"/tmp/stationd-reload-test.db\"\n{extra}"
        );
        Config::parse(Path::new("/etc/stationd/stationd.toml"), &text).unwrap()
    }

    const A: &str = "\"mqtt://127.0.0.1:1883\"";
    const B: &str = "\"mqtt://127.0.0.1:1884\"";

    #[test]
    fn what_applies_and_what_waits_for_a_restart() {
        let started = config("", A);
        assert!(pending_restart(&started, &config("", A)).is_empty());
        assert!(!uplink_changed(&started, &config("", A)));
        assert!(uplink_changed(&started, &config("", B)));
        assert!(pending_restart(&started, &config("", B)).is_empty());
        let dispatch = config("[dispatch]\nack_within_s = 30\n", A);
        assert_eq!(pending_restart(&started, &dispatch), ["dispatch"]);
        let renamed = Config::parse(
            Path::new("/etc/stationd/stationd.toml"),
            &format!("[station]\nid = \"st-2\"\nname = \"m\"\n[uplink]\nbrokers = [{A}]\n[buffer]\npath = \"/tmp/stationd-reload-test.db\"\nmax_bytes = 2000000\n"),
        )
        .unwrap();
        assert_eq!(
            pending_restart(&started, &renamed),
            ["buffer", "station.id", "station.name"]
        );
    }

    #[test]
    fn the_hash_follows_the_text_and_device_settings_are_canonical() {
        let dev =
            "[[device]]\nid = \"in0\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:7070\"\n";
        let a = config(dev, A);
        let b = config(dev, A);
        assert_eq!(a.hash, b.hash);
        assert!(a.hash.starts_with("sha256:") && a.hash.len() == 7 + 64);
        assert_ne!(a.hash, config(dev, B).hash);
        // The same settings in another order are the same device.
        let reordered = config(
            "[[device]]\nlisten = \"tcp://127.0.0.1:7070\"\ndriver = \"jsonl\"\nid = \"in0\"\n",
            A,
        );
        assert_eq!(a.device_settings, reordered.device_settings);
        let changed = config(&format!("{dev}max_connections = 8\n"), A);
        assert_ne!(a.device_settings["in0"], changed.device_settings["in0"]);
    }
}
