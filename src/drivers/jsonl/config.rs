//! `driver = "jsonl"`: JSON lines from other local systems over TCP or a Unix socket
//! (docs/CONFIG.md, docs/CONTRACT.md "The jsonl input").

use crate::config::ListenAddr;
use crate::drivers::{CheckedConfig, DeviceConfig, DeviceContext, DeviceTask, DriverError};
use serde::Deserialize;
use std::any::Any;

/// A `jsonl` input's `[[device]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlDevice {
    pub id: String,
    pub driver: String,
    pub listen: ListenAddr,
    /// Simultaneous connections accepted; further ones are refused and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The device ids this input may speak for besides its own (`["radio-01", "roster"]`).
    /// Default: any id no other configured device owns.
    #[serde(default)]
    pub devices: Option<Vec<String>>,
    /// The kinds this input may send: exact (`door.open`) or a namespace (`door.*`). Default:
    /// any kind outside the daemon's reserved namespaces.
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
}

fn default_max_connections() -> usize {
    64
}

/// Whether `kind` matches a `kinds` pattern: `door.open` exactly, `door.*` any `door.` kind.
pub fn kind_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => kind == pattern,
    }
}

impl CheckedConfig for JsonlDevice {
    fn check(&self) -> Result<(), String> {
        for pattern in self.kinds.iter().flatten() {
            let namespace = pattern.strip_suffix(".*");
            let body = namespace.unwrap_or(pattern);
            if !crate::event::is_valid_kind(body) || body.ends_with('.') {
                return Err(format!(
                    "kinds: {pattern:?} is neither a kind ([a-z0-9_.]+) nor a namespace such as \"door.*\""
                ));
            }
            // A pattern that reaches into the daemon's own names can never be honoured.
            let reserved = crate::event::RESERVED_KIND_PREFIXES
                .iter()
                .find(|r| match namespace {
                    Some(ns) => {
                        r.starts_with(&format!("{ns}.")) || format!("{ns}.").starts_with(*r)
                    }
                    None => pattern.starts_with(*r),
                });
            if let Some(r) = reserved {
                return Err(format!(
                    "kinds: {pattern:?} is reserved: the daemon alone emits {r}* (docs/CONTRACT.md, \"Reserved names\")"
                ));
            }
        }
        for id in self.devices.iter().flatten() {
            if !crate::event::is_valid_device_id(id) {
                return Err(format!(
                    "devices: {id:?} is not a device id (1-64 characters of [A-Za-z0-9_.-])"
                ));
            }
        }
        Ok(())
    }
}

impl DeviceConfig for JsonlDevice {
    fn id(&self) -> &str {
        &self.id
    }
    fn driver(&self) -> &'static str {
        "jsonl"
    }
    fn describe(&self) -> String {
        format!("{} jsonl {}", self.id, self.listen)
    }
    fn initial_state(&self) -> &'static str {
        "listening"
    }
    fn speaks_for(&self) -> &[String] {
        self.devices.as_deref().unwrap_or_default()
    }
    fn start(&self, ctx: DeviceContext) -> Result<DeviceTask, DriverError> {
        let listener = super::bind(self)?;
        let policy = super::InputPolicy::new(self, ctx.devices.clone());
        Ok(Box::pin(super::serve(self.clone(), policy, listener, ctx)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
