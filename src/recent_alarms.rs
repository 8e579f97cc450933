//! The last alarms this daemon queued, kept in memory for the technician's status page
//! (`crate::web::page`): central has every alarm, but the person standing in the station
//! needs to see what just went wrong without a broker or a log viewer.
//!
//! The outbox's [`EventSink`](crate::outbox::EventSink) records each alarm it is handed,
//! whichever driver or part of the daemon sent it. Bounded: the newest [`KEPT`] are kept, and
//! an alarm's `data` is kept only while it is short.

use crate::event::Event;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;

/// How many alarms are kept.
pub const KEPT: usize = 20;
/// Longest `data` kept with an alarm (bytes of JSON); a longer one is left out.
const MAX_DATA: usize = 2048;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecentAlarm {
    pub ts_ms: i64,
    pub device: String,
    pub kind: String,
    pub historical: bool,
    /// The alarm's `data` (None when longer than 2 KiB).
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Default)]
pub struct RecentAlarms(Mutex<VecDeque<RecentAlarm>>);

impl RecentAlarms {
    /// Keeps `ev` if it is an alarm.
    pub fn record(&self, ev: &Event) {
        if ev.prio != crate::event::Priority::Alarm {
            return;
        }
        let data = ev.data.get();
        let alarm = RecentAlarm {
            ts_ms: ev.ts_ms,
            device: ev.device.clone(),
            kind: ev.kind.clone(),
            historical: ev.historical,
            data: (data.len() <= MAX_DATA)
                .then(|| serde_json::from_str(data).ok())
                .flatten(),
        };
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(alarm);
    }

    /// The kept alarms, newest first.
    pub fn newest_first(&self) -> Vec<RecentAlarm> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Priority;

    fn event(kind: &str, prio: Priority, data: serde_json::Value) -> Event {
        Event::new(
            "radio0",
            kind,
            prio,
            (1_000, crate::event::ClockQuality::Synced),
            false,
            data,
        )
    }

    #[test]
    fn keeps_only_alarms_newest_first_and_at_most_kept() {
        let r = RecentAlarms::default();
        r.record(&event(
            "position",
            Priority::Telemetry,
            serde_json::json!({}),
        ));
        for i in 0..KEPT + 5 {
            r.record(&event(
                "radio.emergency",
                Priority::Alarm,
                serde_json::json!({ "n": i }),
            ));
        }
        let kept = r.newest_first();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].data, Some(serde_json::json!({ "n": KEPT + 4 })));
        assert_eq!(kept[KEPT - 1].data, Some(serde_json::json!({ "n": 5 })));
        assert!(kept.iter().all(|a| a.kind == "radio.emergency"));
    }

    #[test]
    fn long_data_is_left_out_not_the_alarm() {
        let r = RecentAlarms::default();
        let long = "x".repeat(MAX_DATA);
        r.record(&event(
            "dock.fault",
            Priority::Alarm,
            serde_json::json!({ "detail": long }),
        ));
        let kept = r.newest_first();
        assert_eq!((kept.len(), kept[0].data.is_none()), (1, true));
    }
}
