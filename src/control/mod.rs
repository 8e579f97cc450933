//! The control socket: how the technician's commands (`stationd status`, `devices`, `outbox`)
//! ask the running daemon what it is doing, without reading its files or needing root.
//!
//! A Unix stream socket in the runtime directory (`/run/stationd/control.sock`, created by the
//! unit's `RuntimeDirectory=` with mode 0750, the socket itself 0660): members of the
//! `stationd` group may ask, nobody else can reach it. One request per connection: the client
//! writes one JSON line `{"v":1,"cmd":"status"}`, the daemon answers one JSON line
//! `{"ok":true,"reply":{…}}` or `{"ok":false,"error":"…"}` and closes. The replies are the
//! types below; `--json` prints them as they are, so scripts get the same fields.
//!
//! The device views are read-only: commands that change devices come from central dispatch,
//! signed, or from the configuration file (`stationd reload` reads it again). The station's own records are the exception — who is on duty (`stationd duty`), the
//! roster (`stationd roster import`), crews and rotation exceptions — kept by the station's
//! staff on the box; each such request is logged and recorded with the caller's user name
//! (from the socket's peer credentials), and central sees it as a `staffing.changed` event.

pub mod client;
pub mod server;

use crate::board::DeviceState;
use crate::outbox::OutboxStats;
use crate::uplink::UplinkStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Protocol version in requests; the daemon refuses others with a clear error.
pub const PROTOCOL_VERSION: u32 = 1;

/// Where the socket is: `$STATIOND_CONTROL_SOCKET`, else `$RUNTIME_DIRECTORY/control.sock`
/// (set by systemd from `RuntimeDirectory=`), else `/run/stationd/control.sock`.
pub fn default_socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("STATIOND_CONTROL_SOCKET") {
        return PathBuf::from(p);
    }
    if let Ok(dirs) = std::env::var("RUNTIME_DIRECTORY") {
        if let Some(first) = dirs.split(':').find(|d| !d.is_empty()) {
            return PathBuf::from(first).join("control.sock");
        }
    }
    PathBuf::from("/run/stationd/control.sock")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    pub cmd: Command,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Status,
    Devices,
    Outbox,
    /// `stationd staffing`: the document central gets, with names and the whole roster.
    Staffing,
    /// `stationd duty on|off PERSON`.
    Duty {
        person: String,
        present: bool,
        #[serde(default)]
        note: Option<String>,
    },
    /// `stationd roster import FILE` (the file read and checked by the CLI, again here).
    RosterImport {
        people: Vec<crate::staffing::roster::Person>,
    },
    /// `stationd crew set CAR [PERSON…]`.
    CrewSet {
        car: String,
        members: Vec<String>,
    },
    /// `stationd override add PERSON KIND …`.
    OverrideAdd {
        person: String,
        kind: String,
        #[serde(default)]
        team: Option<String>,
        from_ms: i64,
        until_ms: i64,
        #[serde(default)]
        note: String,
    },
    /// `stationd override remove ID`.
    OverrideRemove {
        id: i64,
    },
    /// `stationd dispatch`: open incidents, the latest cleared ones, the figures.
    Dispatch,
    /// `stationd reload`: read the configuration again and apply it.
    Reload,
    /// `stationd equipment`: the whole register.
    Equipment,
    /// `stationd equipment import FILE`.
    EquipmentImport {
        items: Vec<crate::equipment::register::Item>,
    },
    /// `stationd equipment checkout|checkin|fault|mark ITEM …`.
    EquipmentMark {
        item: String,
        state: String,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        note: String,
        #[serde(default)]
        next_maintenance: Option<String>,
    },
}

/// `stationd status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReply {
    pub station: String,
    pub station_name: String,
    pub version: String,
    pub profile: Option<String>,
    pub pid: u32,
    pub started_ms: i64,
    pub uptime_s: u64,
    pub uplink: UplinkStatus,
    pub outbox: OutboxStats,
    /// Devices per state (`online`, `offline`, …).
    pub devices: BTreeMap<String, usize>,
    /// Station-wide counters (docs/INSTRUMENTATION.md).
    pub counters: BTreeMap<String, u64>,
    /// The clock's sync state as the daemon reads it: the source of every envelope's `clock`.
    #[serde(default)]
    pub clock: ClockReport,
    /// The configuration running (hash, when loaded), changes waiting for a restart, and the
    /// last reload (None from a daemon too old to say).
    #[serde(default)]
    pub config: Option<crate::reload::ConfigReport>,
    /// The box's own health (`P/state/box`), once read.
    #[serde(default, rename = "box")]
    pub host: Option<serde_json::Value>,
}

/// The daemon's view of the box's clock (`stationd status`, `stationd check`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClockReport {
    /// `synced`, `unsynced` or `unreadable` (empty from a daemon too old to say).
    pub state: String,
    /// Why it is unreadable (`Operation not permitted (os error 1)`).
    pub error: Option<String>,
}

impl ClockReport {
    pub fn from_state(state: crate::clock::SyncState) -> ClockReport {
        ClockReport {
            state: state.as_str().to_string(),
            error: match state {
                crate::clock::SyncState::Unreadable(errno) => {
                    Some(std::io::Error::from_raw_os_error(errno).to_string())
                }
                _ => None,
            },
        }
    }
}

/// One row of `stationd devices`: the device board's entry and the device's counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRow {
    pub id: String,
    #[serde(flatten)]
    pub board: DeviceState,
    /// This device's counters (`nmea.sentences`, …).
    pub counters: BTreeMap<String, u64>,
}

/// `stationd devices`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevicesReply {
    pub now_ms: i64,
    pub devices: Vec<DeviceRow>,
}

/// `stationd outbox`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxReply {
    pub now_ms: i64,
    pub path: PathBuf,
    pub stats: OutboxStats,
}
