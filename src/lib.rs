//! stationd: the patrol-station daemon.
//!
//! The library holds every part of the daemon so that integration tests, benchmarks and fuzz
//! targets drive the same code the binary runs. See `docs/ARCHITECTURE.md` for the flow:
//! drivers (codec + I/O task) produce [`event::Event`]s, the [`outbox`] commits them durably and
//! assigns `seq`, the [`uplink`] publishes them to the central MQTT broker and deletes rows on
//! PUBACK.

pub mod backoff;
pub mod board;
pub mod cli;
pub mod clock;
pub mod commands;
/// The codecs live in the protocol crate (no I/O); re-exported under their old path.
pub use stationd_proto::codec;
pub mod config;
pub mod control;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod dispatch;
pub mod drivers;
pub mod equipment;
pub mod evidence;
pub mod host;
/// Commands from dispatch, without I/O: parsing, the canonical form, signatures.
pub use stationd_proto::command;
pub use stationd_proto::event;
/// What devices send (for simulators: the demo, the tests, the benchmark).
pub use stationd_proto::sim;
/// TETRA PEI, SDS and LIP without I/O (the `tetra` driver's protocol).
pub use stationd_proto::tetra;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod recent_alarms;
pub mod records;
pub mod reload;
pub mod side_store;
pub mod staffing;
pub mod state;
pub mod systemd;
pub mod uplink;
pub mod upload;
pub mod web;

/// Exit codes from sysexits.h that administrators and systemd see.
pub mod exit_code {
    /// The configuration is invalid (EX_CONFIG). The unit sets `RestartPreventExitStatus=78`.
    pub const CONFIG: i32 = 78;
    /// A required file or directory could not be opened or created (EX_CANTCREAT).
    pub const CANT_CREATE: i32 = 73;
    /// Internal software error (EX_SOFTWARE).
    pub const SOFTWARE: i32 = 70;
}
