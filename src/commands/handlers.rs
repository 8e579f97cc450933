//! What commands can do: a `Handler` per command name, and the registry the command core looks
//! names up in. The core checks, deduplicates and answers; a handler only does its work.
//! Drivers add their commands here as they gain capabilities (a radio's text, a camera's
//! snapshot, the roster, dispatch) without touching the core.

use crate::board::Board;
use crate::metrics::Metrics;
use serde_json::{Map, Value};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Notify;

/// How a command that ran came out.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `status: "done"` with this `result`.
    Done(Value),
    /// `status: "failed"`: why, and details if any.
    Failed {
        reason: String,
        result: Option<Value>,
    },
    /// `status: "refused"`: the arguments are wrong; nothing was done.
    BadArgs(String),
}

/// What handlers may use: the running daemon's parts.
pub struct CommandContext {
    pub boot_id: String,
    pub version: String,
    /// When the daemon started (monotonic).
    pub started: std::time::Instant,
    pub metrics: Arc<Metrics>,
    pub board: Arc<Board>,
    /// Asks the uplink to publish the retained birth (and the state snapshots) again.
    pub rebirth: Arc<Notify>,
    /// Asks the uplink to publish the retained state snapshots now.
    pub state_request: Arc<Notify>,
    /// The retained snapshots the uplink publishes (`rebirth` names them in its answer).
    pub snapshots: Option<Arc<crate::state::Snapshots>>,
}

pub type Running<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

pub trait Handler: Send + Sync {
    /// The command's name, the last level of `P/cmd/{name}`.
    fn name(&self) -> &'static str;
    fn run<'a>(&'a self, args: &'a Map<String, Value>, ctx: &'a CommandContext) -> Running<'a>;
}

/// The commands this station takes, by name, and the services their handlers share with the
/// drivers that carry them out (e.g. the JT/T 808 driver's live terminal connections by car).
#[derive(Default, Clone)]
pub struct Registry {
    handlers: Vec<Arc<dyn Handler>>,
    services: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Registry {
    /// The core's own commands: `ping`, `rebirth`, `state.devices`.
    pub fn builtin() -> Registry {
        let mut r = Registry::default();
        r.add(Arc::new(Ping));
        r.add(Arc::new(Rebirth));
        r.add(Arc::new(StateDevices));
        r
    }

    /// The one `T` of this daemon, made on first use: several devices of one driver (two
    /// JT/T 808 listeners) and that driver's command handler share it.
    pub fn service<T: Default + Send + Sync + 'static>(&mut self) -> Arc<T> {
        let any = self
            .services
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        any.downcast::<T>().expect("keyed by its own TypeId")
    }

    /// Adds `handler` unless a handler of that name is there (every device of a driver offers
    /// the driver's commands; the first one registers them).
    pub fn add_once(&mut self, handler: Arc<dyn Handler>) {
        if self.get(handler.name()).is_none() {
            self.handlers.push(handler);
        }
    }

    pub fn add(&mut self, handler: Arc<dyn Handler>) {
        assert!(
            self.get(handler.name()).is_none(),
            "two handlers for command {}",
            handler.name()
        );
        self.handlers.push(handler);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.iter().find(|h| h.name() == name).cloned()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|h| h.name()).collect()
    }
}

/// `ping`: is the station there, and how is it.
struct Ping;

impl Handler for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }
    fn run<'a>(&'a self, _args: &'a Map<String, Value>, ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            Outcome::Done(serde_json::json!({
                "boot_id": ctx.boot_id,
                "uptime_s": ctx.started.elapsed().as_secs(),
                "version": ctx.version,
                "backlog_rows": ctx.metrics.value("outbox.rows", ""),
                "clock": crate::clock::sync_state().quality().as_str(),
            }))
        })
    }
}

/// `config.reload`: read the station's configuration file again and apply it (as SIGHUP and
/// `stationd reload` do); the answer carries the configuration's hash, what changed, and
/// what waits for a restart. An invalid file changes nothing and the command fails with why.
pub struct ConfigReload(pub crate::reload::Reloader);

impl Handler for ConfigReload {
    fn name(&self) -> &'static str {
        "config.reload"
    }
    fn run<'a>(&'a self, _args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            match self.0.reload("central").await {
                Ok(outcome) if outcome.applied => {
                    Outcome::Done(serde_json::to_value(&outcome).expect("the outcome serialises"))
                }
                Ok(outcome) => Outcome::Failed {
                    reason: format!(
                        "the configuration was not reloaded: {}",
                        outcome.error.as_deref().unwrap_or("rejected")
                    ),
                    result: serde_json::to_value(&outcome).ok(),
                },
                Err(why) => Outcome::Failed {
                    reason: why,
                    result: None,
                },
            }
        })
    }
}

/// `rebirth`: publish the retained birth (`P/status`) and every `P/state/*` again.
struct Rebirth;

impl Handler for Rebirth {
    fn name(&self) -> &'static str {
        "rebirth"
    }
    fn run<'a>(&'a self, _args: &'a Map<String, Value>, ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            ctx.rebirth.notify_one();
            let mut republished = vec!["status".to_string()];
            if let Some(snapshots) = &ctx.snapshots {
                republished.extend(snapshots.names().iter().map(|n| format!("state/{n}")));
            }
            Outcome::Done(serde_json::json!({ "republished": republished }))
        })
    }
}

/// `state.devices`: publish the retained `P/state/devices` now.
struct StateDevices;

impl Handler for StateDevices {
    fn name(&self) -> &'static str {
        "state.devices"
    }
    fn run<'a>(&'a self, _args: &'a Map<String, Value>, ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            ctx.state_request.notify_one();
            Outcome::Done(serde_json::json!({
                "published": "state/devices",
                "devices": ctx.board.snapshot().len(),
            }))
        })
    }
}

/// `args.{key}` as a non-empty string, trimmed.
pub fn text_arg(args: &Map<String, Value>, key: &str) -> Option<String> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A JSON object literal as a command's `args` (tests of the handlers' argument checks).
#[cfg(test)]
pub fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("args must be an object, not {other}"),
    }
}
