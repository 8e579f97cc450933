//! The station's current picture as retained snapshots on `P/state/{name}`: what central sees
//! when it subscribes, without waiting for the next change: `devices` (the device board:
//! each device's state, since when, when last heard, its counters), `evidence` (the footage
//! chain's head, where a dock is) and `staffing` (teams, people present, crews' readiness, where
//! the station has a rotation, a roster or crews) and `equipment` (the register's counts and
//! the items not in service, where it holds items) and `dispatch` (open incidents and the
//! response figures, where the station has cars) and `box` (the box's own health: load,
//! memory, volumes, temperatures, uplink interface, power). The uplink publishes them on every connection, after a
//! change (at most every 5 s) and when asked (`state.devices`, `rebirth`).

use crate::board::Board;
use crate::metrics::Metrics;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub struct Snapshots {
    pub station: String,
    pub board: Arc<Board>,
    pub metrics: Arc<Metrics>,
    /// The body-cam docks, when the station has any (`P/state/evidence`).
    pub docks: Option<Arc<crate::evidence::Docks>>,
    /// The station's staffing (`P/state/staffing` when in use).
    pub staffing: Option<Arc<crate::staffing::Staffing>>,
    /// The equipment register (`P/state/equipment` when it holds items).
    pub equipment: Option<Arc<crate::equipment::Equipment>>,
    /// The dispatch relay (`P/state/dispatch` where the station has cars or incidents).
    pub dispatch: Option<Arc<crate::dispatch::Dispatch>>,
    /// The box's own health (`P/state/box`, once it has a reading).
    pub host: Option<Arc<crate::host::Host>>,
}

impl Snapshots {
    /// Every snapshot this station publishes: (name, payload).
    pub fn all(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = vec![("devices", self.devices())];
        if let Some(e) = self.evidence() {
            out.push(("evidence", e));
        }
        if let Some(s) = self.staffing.as_ref().filter(|s| s.in_use()) {
            out.push(("staffing", crate::staffing::payload::state(s)));
        }
        if let Some(e) = self.equipment.as_ref().filter(|e| e.in_use()) {
            out.push(("equipment", crate::equipment::payload::state(e)));
        }
        if let Some(d) = self.dispatch.as_ref().filter(|d| d.in_use()) {
            out.push((
                "dispatch",
                serde_json::to_vec(&d.document()).expect("a JSON value serialises"),
            ));
        }
        if let Some(doc) = self.host.as_ref().and_then(|h| h.document()) {
            out.push((
                "box",
                serde_json::to_vec(&doc).expect("a JSON value serialises"),
            ));
        }
        out
    }

    /// The names of the snapshots `all` publishes now (`devices`, `evidence` where a dock is).
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = vec!["devices"];
        if self.docks.as_ref().is_some_and(|d| !d.all().is_empty()) {
            out.push("evidence");
        }
        if self.staffing.as_ref().is_some_and(|s| s.in_use()) {
            out.push("staffing");
        }
        if self.equipment.as_ref().is_some_and(|e| e.in_use()) {
            out.push("equipment");
        }
        if self.dispatch.as_ref().is_some_and(|d| d.in_use()) {
            out.push("dispatch");
        }
        if self.host.as_ref().is_some_and(|h| h.has_reading()) {
            out.push("box");
        }
        out
    }

    /// `P/state/evidence`: the evidence chain's head, the witness central keeps (a later head
    /// must extend it; the box cannot rewrite what came before without central seeing it).
    pub fn evidence(&self) -> Option<Vec<u8>> {
        let docks = self.docks.as_ref()?;
        let names: Vec<String> = docks.all().into_iter().map(|(d, _)| d).collect();
        if names.is_empty() {
            return None;
        }
        let (entry, chain) = docks
            .head()
            .unwrap_or((0, stationd_proto::footage::chain::GENESIS));
        let (now, clock) = crate::clock::now();
        Some(
            serde_json::to_vec(&json!({
                "v": crate::event::CONTRACT_VERSION,
                "station": self.station,
                "ts": crate::event::format_ts_ms(now),
                "clock": clock.as_str(),
                "head": {"entry": entry, "chain": stationd_proto::footage::hex(&chain)},
                "docks": names,
            }))
            .expect("a JSON value serialises"),
        )
    }

    /// `P/state/devices`.
    pub fn devices(&self) -> Vec<u8> {
        let mut counters: std::collections::BTreeMap<String, Map<String, Value>> =
            Default::default();
        for ((name, device), v) in self.metrics.snapshot() {
            if !device.is_empty() {
                counters.entry(device).or_default().insert(name, v.into());
            }
        }
        let ts = |ms: i64| crate::event::format_ts_ms(ms);
        let devices: Map<String, Value> = self
            .board
            .snapshot()
            .into_iter()
            .map(|(id, d)| {
                let row = json!({
                    "driver": d.driver,
                    "via": d.via,
                    "state": d.state,
                    "detail": d.detail,
                    "since": ts(d.since_ms),
                    "last_seen": d.last_seen_ms.map(ts),
                    "counters": counters.remove(&id).unwrap_or_default(),
                });
                (id, row)
            })
            .collect();
        let (now, clock) = crate::clock::now();
        serde_json::to_vec(&json!({
            "v": crate::event::CONTRACT_VERSION,
            "station": self.station,
            "ts": ts(now),
            "clock": clock.as_str(),
            "devices": devices,
        }))
        .expect("a JSON value serialises")
    }
}
