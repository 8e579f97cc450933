//! The station's current picture as retained snapshots on `P/state/{name}`: what central sees
//! when it subscribes, without waiting for the next change. Today `devices` (the device board:
//! each device's state, since when, when last heard, its counters); the equipment register and
//! staffing join it in later versions. The uplink publishes them on every connection, after a
//! change (at most every 5 s) and when asked (`state.devices`, `rebirth`).

use crate::board::Board;
use crate::metrics::Metrics;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub struct Snapshots {
    pub station: String,
    pub board: Arc<Board>,
    pub metrics: Arc<Metrics>,
}

impl Snapshots {
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
