//! Drivers: one folder per kind of attached device, and the registry that lists them.
//!
//! Each driver folder holds its config (`config.rs`: the `[[device]]` table as a serde struct
//! with its defaults, checks and `check-config` line), its pure protocol state where it has one
//! (`session.rs`), and its I/O task (`mod.rs`), which owns the port or socket and hands
//! [`crate::event::Event`]s to its [`DeviceSink`]. Drivers know events, not SQLite or MQTT.
//!
//! **Adding a driver** is a new folder plus one line in [`DRIVERS`]: the folder defines a
//! config type implementing [`DeviceConfig`] (whose `start` binds what must be bound and
//! returns the device's task) and a `pub const DRIVER: Driver`. Configuration, `check-config`,
//! the device board, the hardware profiles' port resolution and the daemon's start-up all go
//! through the registry; nothing else needs to name the driver.

/// Report by exception and the GNSS tracker, shared by the position drivers (pure: in the
/// protocol crate).
pub use stationd_proto::gps;
pub mod dock;
pub mod jsonl;
pub mod jt808;
pub mod nmea;
pub mod rtsp;
pub mod serial;
pub mod set;
pub mod tetra;

use crate::board::Board;
use crate::event::Event;
use crate::metrics::Metrics;
use crate::outbox::{Committed, EventSink, SinkClosed};
pub use set::{DeviceChanges, DeviceSet, SharedDevices};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A driver this build knows: what `driver = "NAME"` in a `[[device]]` table selects.
pub struct Driver {
    pub name: &'static str,
    /// Reads a serial port, so a hardware profile's `port = "NAME"` resolves to its line
    /// settings ([`serial::SerialLine`]).
    pub serial: bool,
    /// Types and checks one `[[device]]` table of this driver.
    pub parse: fn(toml::Table) -> Result<Device, String>,
    /// The keys its `[[device]]` table takes besides `id` and `driver` (docs/CONFIG.md is
    /// checked against them).
    pub keys: fn() -> Vec<&'static str>,
}

/// Every driver of this build. A new driver: its folder, and one line here.
pub const DRIVERS: &[Driver] = &[
    jsonl::DRIVER,
    nmea::DRIVER,
    jt808::DRIVER,
    tetra::DRIVER,
    dock::DRIVER,
    rtsp::DRIVER,
];

/// The driver named `name`.
pub fn driver(name: &str) -> Option<&'static Driver> {
    DRIVERS.iter().find(|d| d.name == name)
}

/// One configured device, typed by its driver.
pub type Device = Arc<dyn DeviceConfig>;

/// What every driver's config type tells the rest of the daemon.
pub trait DeviceConfig: std::fmt::Debug + Send + Sync + 'static {
    fn id(&self) -> &str;
    /// The driver's name (`jsonl`, `nmea`, …).
    fn driver(&self) -> &'static str;
    /// One line for `check-config`: what it is and where it is attached.
    fn describe(&self) -> String;
    /// Its state on the device board before anything is heard: `listening` for servers,
    /// `waiting` for ports.
    fn initial_state(&self) -> &'static str;
    /// Whether events about device `id` are this device's to emit: its own id, and for a
    /// listener the devices behind it (the cars behind a JT/T 808 listener). A local input
    /// may not speak for them (docs/CONTRACT.md, "Reserved names").
    fn owns(&self, id: &str) -> bool {
        self.id() == id
    }
    /// Other devices' ids this one asks to speak for (a `jsonl` input's `devices`); the
    /// configuration refuses any that another device [`owns`](Self::owns).
    fn speaks_for(&self) -> &[String] {
        &[]
    }
    /// Binds what must be bound at start (a port in use is reported now, not later) and
    /// returns the device's task, which runs until `ctx.shutdown`.
    fn start(&self, ctx: DeviceContext) -> Result<DeviceTask, DriverError>;
    /// For code that needs the concrete config (tests, the benchmark).
    fn as_any(&self) -> &dyn Any;
}

/// A device's running task.
pub type DeviceTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a device's task is handed.
pub struct DeviceContext {
    pub sink: DeviceSink,
    /// The daemon's device board (the sink updates it with every event; a driver also marks
    /// bytes heard and port states).
    pub board: Arc<Board>,
    /// The daemon's counters.
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    /// Every configured device, as the latest (re)load left them (a `jsonl` input must know
    /// what the others own).
    pub devices: SharedDevices,
    /// The commands from dispatch, being assembled at start: a driver adds the commands its
    /// devices can carry out (and shares services with them), in `start`.
    pub commands: Arc<std::sync::Mutex<crate::commands::handlers::Registry>>,
    /// The evidence index's file (`evidence.db` beside the outbox), for the drivers that
    /// index footage.
    pub evidence_index: std::path::PathBuf,
}

/// Something that reads the drivers' events on their way into the outbox (staffing reads
/// presence from them). It must not block: it takes what it needs and hands it on.
pub trait EventWatcher: Send + Sync {
    /// `ev` as sent through a device of `driver` (so a watcher believes a kind only from the
    /// driver that makes it).
    fn watch(&self, driver: &'static str, ev: &Event);
}

/// The daemon's event watchers.
pub type Watchers = Arc<[Arc<dyn EventWatcher>]>;

/// A device's way into the outbox. Every event also updates the device board (the row of the
/// device it is about, `via` this one) and is shown to the watchers, so the technician's view,
/// staffing and central's view never disagree and no driver has to remember to do it.
#[derive(Clone)]
pub struct DeviceSink {
    source: Arc<str>,
    driver: &'static str,
    sink: EventSink,
    board: Arc<Board>,
    watchers: Watchers,
}

impl DeviceSink {
    pub fn new(
        source: &str,
        driver: &'static str,
        sink: EventSink,
        board: Arc<Board>,
        watchers: Watchers,
    ) -> DeviceSink {
        DeviceSink {
            source: source.into(),
            driver,
            sink,
            board,
            watchers,
        }
    }

    fn observe(&self, ev: &Event) {
        self.board.observe(&self.source, self.driver, ev);
        for w in self.watchers.iter() {
            w.watch(self.driver, ev);
        }
    }

    /// Queues an event (see [`EventSink::send`]).
    pub async fn send(&self, ev: Event) -> Result<(), SinkClosed> {
        self.observe(&ev);
        self.sink.send(ev).await
    }

    /// Queues an event and returns its commit receipt (see [`EventSink::send_durable`]).
    pub async fn send_durable(&self, ev: Event) -> Result<Committed, SinkClosed> {
        self.observe(&ev);
        self.sink.send_durable(ev).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("device {device}: cannot listen on {addr}: {source}")]
    Listen {
        device: String,
        addr: String,
        source: std::io::Error,
    },
}

/// A `[[device]]` table of one driver: typed by serde (`deny_unknown_fields` on the type),
/// then checked for what serde cannot see.
pub trait CheckedConfig: serde::de::DeserializeOwned {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The registry's `parse` for a driver whose whole table is its config type.
pub fn parse_device<T: CheckedConfig + DeviceConfig>(table: toml::Table) -> Result<Device, String> {
    Ok(Arc::new(parse_table::<T>(table)?))
}

/// Types `table` as `T` and checks it; the error is serde's message or the check's.
pub fn parse_table<T: CheckedConfig>(table: toml::Table) -> Result<T, String> {
    let device: T = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
    device.check()?;
    Ok(device)
}

/// A TCP listener bound now (synchronously, so `start` can report a port in use), for the
/// runtime this is called in.
pub fn bind_tcp(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// The daemon's parts every device is started with.
pub struct Parts {
    pub sink: EventSink,
    pub board: Arc<Board>,
    pub metrics: Arc<Metrics>,
    /// The commands being assembled (see [`DeviceContext::commands`]).
    pub commands: Arc<std::sync::Mutex<crate::commands::handlers::Registry>>,
    pub evidence_index: std::path::PathBuf,
    pub watchers: Watchers,
}
