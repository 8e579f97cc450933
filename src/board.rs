//! The device board: what the technician sees in `stationd devices` — each device's driver,
//! state, when it was last heard, and (through [`crate::metrics`]) its counters.
//!
//! Drivers already tell central about state changes with events (`device.online`,
//! `device.offline`, `gps.fix_lost`, …); the board is fed from the same events at the point a
//! driver hands them to the outbox (its `DeviceSink` calls [`Board::observe`]), so the technician's view and central's can
//! never disagree. Drivers also call [`Board::seen`] when bytes arrive, because a parked car or a
//! receiver without a fix may send nothing to central for a minute while it is alive.
//!
//! Devices that only appear in events — cars behind a JT/T 808 listener, devices named in JSON
//! lines — get rows of their own with `via` naming the configured device they came through;
//! those rows are bounded ([`MAX_SEEN_DEVICES`]), the least recently heard dropped first.

use crate::event::Event;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Rows for devices that are not configured but seen in events, at most.
pub const MAX_SEEN_DEVICES: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceState {
    pub driver: String,
    /// The configured device this one is reached through (a car behind `fleet`), if any.
    pub via: Option<String>,
    /// `listening`, `online`, `no_fix`, `offline`, `waiting` (configured, nothing heard yet).
    pub state: String,
    /// Why it is in that state (`port closed`, `silent`), when known.
    pub detail: Option<String>,
    /// Unix ms when it last sent anything.
    pub last_seen_ms: Option<i64>,
    /// Unix ms of the last state change.
    pub since_ms: i64,
}

/// A row as the board keeps it: times on the monotonic clock, turned into wall-clock times
/// only when shown ([`Board::snapshot`]), so the ages a technician reads ("last seen 3s ago") and
/// `stationd check` judges stay right when NTP steps the wall clock.
#[derive(Debug, Clone)]
struct Row {
    driver: String,
    via: Option<String>,
    state: String,
    detail: Option<String>,
    last_seen_mono: Option<u64>,
    since_mono: u64,
}

/// One daemon's device board (owned by the running daemon, handed to its drivers).
#[derive(Debug, Default)]
pub struct Board {
    rows: Mutex<BTreeMap<String, Row>>,
    /// Notified when a device appears or its state changes (not when it is merely heard):
    /// the retained `P/state/devices` follows it.
    changed: tokio::sync::Notify,
}

impl Board {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Row>) -> R) -> R {
        let mut b = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut b)
    }

    /// Resolves after the next change of a device's state (or at once if one happened since
    /// the last call).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// Something else central's retained state shows changed (the evidence chain's head):
    /// the state snapshots are published again (at most every 5 s).
    pub fn state_changed(&self) {
        self.changed.notify_one();
    }

    /// A configured device, at start: `listening` for servers, `waiting` for ports.
    pub fn register(&self, id: &str, driver: &str, state: &str) {
        let now = crate::clock::mono_ms();
        self.with(|b| {
            b.insert(
                id.to_string(),
                Row {
                    driver: driver.to_string(),
                    via: None,
                    state: state.to_string(),
                    detail: None,
                    last_seen_mono: None,
                    since_mono: now,
                },
            );
        });
        self.changed.notify_one();
    }

    /// A device taken out of the configuration (a reload), with the devices seen through it.
    pub fn unregister(&self, id: &str) {
        self.with(|b| b.retain(|k, row| k != id && row.via.as_deref() != Some(id)));
        self.changed.notify_one();
    }

    /// Bytes arrived from `id` (a configured device, or a car behind one).
    pub fn seen(&self, id: &str) {
        let now = crate::clock::mono_ms();
        self.with(|b| {
            if let Some(d) = b.get_mut(id) {
                d.last_seen_mono = Some(now);
            }
        });
    }

    /// Sets a state directly (a driver's own view, e.g. a port that cannot be opened).
    pub fn set_state(&self, id: &str, state: &str, detail: Option<&str>) {
        let now = crate::clock::mono_ms();
        let changed = self.with(|b| match b.get_mut(id) {
            Some(d) if d.state != state || d.detail.as_deref() != detail => {
                d.state = state.to_string();
                d.detail = detail.map(str::to_string);
                d.since_mono = now;
                true
            }
            _ => false,
        });
        if changed {
            self.changed.notify_one();
        }
    }

    /// An event `source` (a configured device of `driver`) hands to the outbox: marks the
    /// device the event is about as heard and applies health events to its state.
    pub fn observe(&self, source: &str, driver: &str, ev: &Event) {
        let now = crate::clock::mono_ms();
        let state = match ev.kind.as_str() {
            "device.online" | "gps.fix_acquired" => Some("online"),
            "device.offline" => Some("offline"),
            "gps.fix_lost" => Some("no_fix"),
            _ => None,
        };
        // Only health events are parsed (for their `reason`); the rest pass untouched.
        let detail = state.and_then(|_| {
            let data: serde_json::Value = serde_json::from_str(ev.data.get()).ok()?;
            data.get("reason")?.as_str().map(str::to_string)
        });
        let changed = self.with(|b| {
            let mut changed = false;
            if !b.contains_key(&ev.device) {
                changed = true;
                if b.values().filter(|d| d.via.is_some()).count() >= MAX_SEEN_DEVICES {
                    let oldest = b
                        .iter()
                        .filter(|(_, d)| d.via.is_some())
                        .min_by_key(|(_, d)| d.last_seen_mono)
                        .map(|(k, _)| k.clone());
                    if let Some(k) = oldest {
                        b.remove(&k);
                    }
                }
                b.insert(
                    ev.device.clone(),
                    Row {
                        driver: driver.to_string(),
                        via: Some(source.to_string()),
                        state: "online".into(),
                        detail: None,
                        last_seen_mono: None,
                        since_mono: now,
                    },
                );
            }
            let d = b.get_mut(&ev.device).expect("inserted above");
            if let Some(s) = state {
                if d.state != s || d.detail != detail {
                    d.state = s.to_string();
                    d.detail = if s == "online" { None } else { detail };
                    d.since_mono = now;
                    changed = true;
                }
            }
            // A device that went offline was not heard just now; anything else was.
            if state != Some("offline") {
                d.last_seen_mono = Some(now);
            }
            if ev.device != source {
                if let Some(s) = b.get_mut(source) {
                    s.last_seen_mono = Some(now);
                }
            }
            changed
        });
        if changed {
            self.changed.notify_one();
        }
    }

    /// Every device, sorted by id, with its times as wall-clock times as of now.
    pub fn snapshot(&self) -> Vec<(String, DeviceState)> {
        let (wall, mono) = (crate::clock::unix_ms(), crate::clock::mono_ms());
        let at = |m: u64| crate::clock::wall_of_mono(m, wall, mono);
        self.with(|b| {
            b.iter()
                .map(|(k, r)| {
                    let state = DeviceState {
                        driver: r.driver.clone(),
                        via: r.via.clone(),
                        state: r.state.clone(),
                        detail: r.detail.clone(),
                        last_seen_ms: r.last_seen_mono.map(at),
                        since_ms: at(r.since_mono),
                    };
                    (k.clone(), state)
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ClockQuality, Priority};
    use serde_json::json;

    fn ev(device: &str, kind: &str, data: serde_json::Value) -> Event {
        Event::new(
            device,
            kind,
            Priority::Event,
            (crate::clock::unix_ms(), ClockQuality::Synced),
            false,
            data,
        )
    }

    fn get(b: &Board, id: &str) -> DeviceState {
        b.snapshot()
            .into_iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no row {id}"))
    }

    #[test]
    fn health_events_set_the_state_and_cars_get_rows_via_their_listener() {
        let b = Board::default();
        b.register("t-gps", "nmea", "waiting");
        assert_eq!(get(&b, "t-gps").state, "waiting");
        assert_eq!(get(&b, "t-gps").last_seen_ms, None);
        b.observe("t-gps", "nmea", &ev("t-gps", "device.online", json!({})));
        assert_eq!(get(&b, "t-gps").state, "online");
        assert!(get(&b, "t-gps").last_seen_ms.is_some());
        b.observe("t-gps", "nmea", &ev("t-gps", "gps.fix_lost", json!({})));
        assert_eq!(get(&b, "t-gps").state, "no_fix");
        b.observe(
            "t-gps",
            "nmea",
            &ev("t-gps", "device.offline", json!({"reason": "port closed"})),
        );
        let g = get(&b, "t-gps");
        assert_eq!(
            (g.state.as_str(), g.detail.as_deref()),
            ("offline", Some("port closed"))
        );

        b.register("t-fleet", "jt808", "listening");
        b.observe("t-fleet", "jt808", &ev("t-car-07", "position", json!({})));
        let car = get(&b, "t-car-07");
        assert_eq!(car.via.as_deref(), Some("t-fleet"));
        assert_eq!(
            (car.driver.as_str(), car.state.as_str()),
            ("jt808", "online")
        );
        assert!(get(&b, "t-fleet").last_seen_ms.is_some());
        assert_eq!(get(&b, "t-fleet").state, "listening");
    }
}
