//! The event model: what a driver hands to the outbox, and the envelope central receives.
//!
//! An [`Event`] is everything about one happening except its `seq`, which only the outbox
//! assigns, inside the transaction that commits it (DESIGN.md §3). [`Envelope`] is the exact
//! JSON object of the external contract, version 1.

use serde::Serialize;
use serde_json::value::RawValue;
use std::fmt;

/// Version of the envelope and topic contract (docs/CONTRACT.md).
pub const CONTRACT_VERSION: u32 = 1;

/// Priority class. Decides send order (alarms first) and eviction order (telemetry first,
/// alarms never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Telemetry = 0,
    Event = 1,
    Alarm = 2,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Alarm, Priority::Event, Priority::Telemetry];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Telemetry => "telemetry",
            Priority::Event => "event",
            Priority::Alarm => "alarm",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        match s {
            "telemetry" => Some(Priority::Telemetry),
            "event" => Some(Priority::Event),
            "alarm" => Some(Priority::Alarm),
            _ => None,
        }
    }

    pub fn from_i64(v: i64) -> Option<Priority> {
        match v {
            0 => Some(Priority::Telemetry),
            1 => Some(Priority::Event),
            2 => Some(Priority::Alarm),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an event's `ts` can be trusted (the envelope's `clock` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockQuality {
    Synced,
    Unsynced,
    /// The device's own time was off by more than its `max_clock_skew_s` from the synchronised
    /// box clock (a flat RTC battery, a GPS week rollover): `ts` is the box's time of arrival
    /// instead, and the device's time stays in `data`.
    DeviceUnreliable,
}

impl ClockQuality {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockQuality::Synced => "synced",
            ClockQuality::Unsynced => "unsynced",
            ClockQuality::DeviceUnreliable => "device_unreliable",
        }
    }
}

/// One happening, before the outbox gives it a `seq`.
#[derive(Debug, Clone)]
pub struct Event {
    /// When it happened, milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    pub clock: ClockQuality,
    /// Device id, used in the telemetry topic; `[A-Za-z0-9_.-]{1,64}`.
    pub device: String,
    /// `[a-z0-9_.]+`, e.g. `position`, `radio.emergency`.
    pub kind: String,
    pub prio: Priority,
    /// Created while the uplink was down (stamped by the outbox's sink when not set by a driver).
    pub historical: bool,
    /// The `data` object, kept verbatim as JSON text.
    pub data: Box<RawValue>,
    /// The topic below `P/` when it is not the one `prio`, `kind` and `device` give: a
    /// command's answer goes to `cmd-result/{request_id}`. None for everything else.
    pub topic: Option<String>,
}

impl Event {
    /// An event from a driver or the daemon; `data` must be a JSON object.
    pub fn new(
        device: &str,
        kind: &str,
        prio: Priority,
        (ts_ms, clock): (i64, ClockQuality),
        historical: bool,
        data: serde_json::Value,
    ) -> Event {
        Event {
            ts_ms,
            clock,
            device: device.to_string(),
            kind: kind.to_string(),
            prio,
            historical,
            data: RawValue::from_string(data.to_string()).expect("serde_json::Value is valid JSON"),
            topic: None,
        }
    }

    /// Topic below `{prefix}/{station}/`: telemetry goes per device and kind, events and
    /// alarms per kind (DESIGN.md §3).
    pub fn topic_suffix(&self) -> String {
        if let Some(topic) = &self.topic {
            return topic.clone();
        }
        match self.prio {
            Priority::Telemetry => format!("telemetry/{}/{}", self.device, self.kind),
            Priority::Event | Priority::Alarm => format!("event/{}", self.kind),
        }
    }

    /// The contract's JSON object for this event with its committed `seq`.
    pub fn to_envelope_json(&self, station: &str, seq: u64) -> Vec<u8> {
        let env = Envelope {
            v: CONTRACT_VERSION,
            station,
            seq,
            ts: format_ts_ms(self.ts_ms),
            clock: self.clock.as_str(),
            device: &self.device,
            kind: &self.kind,
            prio: self.prio.as_str(),
            historical: self.historical,
            data: &self.data,
        };
        serde_json::to_vec(&env).expect("envelope serialises")
    }
}

/// The wire envelope of telemetry and event messages (contract v1). Field order is the
/// documented one.
#[derive(Serialize)]
pub struct Envelope<'a> {
    pub v: u32,
    pub station: &'a str,
    pub seq: u64,
    pub ts: String,
    pub clock: &'a str,
    pub device: &'a str,
    pub kind: &'a str,
    pub prio: &'a str,
    pub historical: bool,
    pub data: &'a RawValue,
}

/// Unix milliseconds of an RFC 3339 time (any offset), or None.
pub fn parse_ts_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// RFC 3339 UTC with milliseconds: `2026-11-29T08:15:02.120Z`.
pub fn format_ts_ms(ts_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ts_ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// `kind` pattern of the contract: `[a-z0-9_.]+` (at most 128 bytes, so topics stay sane).
pub fn is_valid_kind(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Kind namespaces the daemon emits itself (docs/CONTRACT.md, "Reserved names"): a local
/// input cannot send them, so central can trust that `outbox.evicted` (the only proof of an
/// allowed seq gap), `device.online` or `vehicle.emergency` came from the daemon. Drivers that
/// come later add their namespace here.
pub const RESERVED_KIND_PREFIXES: &[&str] = &[
    // emitted today
    "outbox.",
    "device.",
    "vehicle.",
    "gps.",
    "nmea.",
    "jt808.",
    // the daemon's own parts
    "uplink.",
    "clock.",
    "daemon.",
    "cmd.",
    "config.",
    "box.",
    // the drivers and state the next issues add (radios, body-cam docks, cameras, the
    // equipment register, staffing, dispatch): reserved now so no integration comes to rely
    // on sending them
    "radio.",
    "dock.",
    "recorder.",
    "footage.",
    "evidence.",
    "camera.",
    "equipment.",
    "staffing.",
    "dispatch.",
];

/// Whether `kind` lies in a namespace the daemon keeps for itself.
pub fn is_reserved_kind(kind: &str) -> bool {
    RESERVED_KIND_PREFIXES.iter().any(|p| kind.starts_with(p))
}

/// Device ids appear in MQTT topics, so they may not contain `/`, `+`, `#` or spaces.
pub fn is_valid_device_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(prio: Priority) -> Event {
        Event {
            ts_ms: 1_795_940_102_120,
            clock: ClockQuality::Synced,
            device: "car-03".into(),
            kind: "position".into(),
            prio,
            historical: true,
            data: RawValue::from_string(r#"{"lat":36.6}"#.into()).unwrap(),
            topic: None,
        }
    }

    #[test]
    fn envelope_has_every_contract_field_in_order() {
        let json = String::from_utf8(ev(Priority::Telemetry).to_envelope_json("jn-szq-wd01", 1042))
            .unwrap();
        assert_eq!(
            json,
            r#"{"v":1,"station":"jn-szq-wd01","seq":1042,"ts":"2026-11-29T08:15:02.120Z","clock":"synced","device":"car-03","kind":"position","prio":"telemetry","historical":true,"data":{"lat":36.6}}"#
        );
    }

    #[test]
    fn telemetry_goes_per_device_events_per_kind() {
        assert_eq!(
            ev(Priority::Telemetry).topic_suffix(),
            "telemetry/car-03/position"
        );
        assert_eq!(ev(Priority::Alarm).topic_suffix(), "event/position");
    }

    #[test]
    fn kind_and_device_patterns() {
        assert!(is_valid_kind("radio.emergency"));
        assert!(!is_valid_kind("Radio"));
        assert!(!is_valid_kind(""));
        assert!(!is_valid_kind("a/b"));
        assert!(is_valid_device_id("car-03"));
        assert!(!is_valid_device_id("car/03"));
        assert!(!is_valid_device_id("#"));
    }
}
