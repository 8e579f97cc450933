//! The running devices, by id: started together at start, and changed one by one by a reload
//! (`crate::reload`): a device whose settings did not change keeps running untouched, a removed
//! one is stopped (it hands over what it read, as at shutdown), a changed one is stopped and
//! started again with its new settings, a new one is started.
//!
//! Each device runs under its own cancellation token, a child of the daemon's: the daemon's
//! stop still stops them all at once.

use super::{Device, DeviceContext, DeviceSink, DriverError, Parts};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a device stopped by a reload may take to hand over what it read.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The configured devices as the latest (re)load left them, shared with the drivers that must
/// know what the others own (a `jsonl` input).
#[derive(Clone, Default)]
pub struct SharedDevices(Arc<RwLock<Arc<[Device]>>>);

impl SharedDevices {
    pub fn new(devices: &[Device]) -> SharedDevices {
        SharedDevices(Arc::new(RwLock::new(devices.into())))
    }

    pub fn current(&self) -> Arc<[Device]> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, devices: &[Device]) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = devices.into();
    }
}

impl std::fmt::Debug for SharedDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.current().iter().map(|d| d.id().to_string()))
            .finish()
    }
}

struct Running {
    settings: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// What a reload did to the devices.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct DeviceChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: usize,
    /// Devices that could not start with their new settings (`id: why`); they stay stopped
    /// until the next reload or restart.
    pub failed: Vec<String>,
}

impl DeviceChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.restarted.is_empty()
    }
}

/// The daemon's running devices.
pub struct DeviceSet {
    parts: Parts,
    stop: CancellationToken,
    shared: SharedDevices,
    running: BTreeMap<String, Running>,
}

impl DeviceSet {
    /// Starts every configured device. Listening sockets are bound before this returns, so a
    /// port already in use is reported at start, not later. Must run inside the runtime.
    pub fn start(
        devices: &[Device],
        settings: &BTreeMap<String, String>,
        parts: Parts,
        stop: &CancellationToken,
    ) -> Result<DeviceSet, DriverError> {
        let mut set = DeviceSet {
            shared: SharedDevices::new(devices),
            parts,
            stop: stop.clone(),
            running: BTreeMap::new(),
        };
        for device in devices {
            set.start_one(device, settings)?;
        }
        Ok(set)
    }

    fn start_one(
        &mut self,
        device: &Device,
        settings: &BTreeMap<String, String>,
    ) -> Result<(), DriverError> {
        let parts = &self.parts;
        parts
            .board
            .register(device.id(), device.driver(), device.initial_state());
        let stop = self.stop.child_token();
        let task = device.start(DeviceContext {
            sink: DeviceSink::new(
                device.id(),
                device.driver(),
                parts.sink.clone(),
                parts.board.clone(),
                parts.watchers.clone(),
            ),
            board: parts.board.clone(),
            metrics: parts.metrics.clone(),
            shutdown: stop.clone(),
            devices: self.shared.clone(),
            commands: parts.commands.clone(),
            evidence_index: parts.evidence_index.clone(),
        })?;
        self.running.insert(
            device.id().to_string(),
            Running {
                settings: settings.get(device.id()).cloned().unwrap_or_default(),
                stop,
                task: tokio::spawn(task),
            },
        );
        Ok(())
    }

    /// Stops device `id` and waits (at most [`STOP_DEADLINE`]) for it to hand over.
    async fn stop_one(&mut self, id: &str) {
        let Some(mut r) = self.running.remove(id) else {
            return;
        };
        r.stop.cancel();
        if tokio::time::timeout(STOP_DEADLINE, &mut r.task)
            .await
            .is_err()
        {
            tracing::warn!(event = "daemon.stop_forced", phase = "reload", device = %id, "a device did not stop in time for the reload");
            r.task.abort();
        }
    }

    /// Brings the running devices to `devices`: stops the removed and changed ones first (a
    /// changed one may need its own port back), then starts the changed and new ones.
    pub async fn apply(
        &mut self,
        devices: &[Device],
        settings: &BTreeMap<String, String>,
    ) -> DeviceChanges {
        let mut changes = DeviceChanges::default();
        let wanted: BTreeMap<&str, &Device> = devices.iter().map(|d| (d.id(), d)).collect();
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            match wanted.get(id.as_str()) {
                None => {
                    self.stop_one(&id).await;
                    self.parts.board.unregister(&id);
                    changes.removed.push(id);
                }
                Some(_) if settings.get(&id) != Some(&self.running[&id].settings) => {
                    self.stop_one(&id).await;
                    changes.restarted.push(id);
                }
                Some(_) => changes.unchanged += 1,
            }
        }
        // The list the drivers consult changes before the new ones start.
        self.shared.set(devices);
        for device in devices {
            if self.running.contains_key(device.id()) {
                continue;
            }
            let id = device.id().to_string();
            if !changes.restarted.contains(&id) {
                changes.added.push(id.clone());
            }
            if let Err(e) = self.start_one(device, settings) {
                tracing::error!(event = "device.start_failed", device = %id, error = %e, "a device could not start with its new settings; it stays stopped until the next reload or restart");
                self.parts
                    .board
                    .set_state(&id, "offline", Some(&format!("cannot start: {e}")));
                changes.failed.push(format!("{id}: {e}"));
            }
        }
        changes
    }

    /// Waits until every device has stopped (the daemon's stop token cancels them), at most
    /// `deadline`; then aborts the rest. False when some had to be aborted.
    pub async fn join(&mut self, deadline: Duration) -> bool {
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut self.running)
            .into_values()
            .map(|r| r.task)
            .collect();
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(deadline, all).await.is_err() {
            for a in aborts {
                a.abort();
            }
            return false;
        }
        true
    }

    /// The ids running now.
    pub fn ids(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }
}
