//! What the radio's lines mean for central, without I/O: a PEI [`Line`] in, the events it
//! makes out — `radio.text`, `radio.status`, `radio.emergency`, a handheld's `position`,
//! `radio.call` per talk burst, `radio.signal` by exception after each poll — plus the
//! delivery reports of messages the station sent and the SDSs it could not read. The ISSIs
//! are named through `[device.radios]`: a listed radio's events carry its id, officer,
//! callsign and car; an unlisted one is `issi-<ISSI>`.

use super::config::RadioEntry;
use crate::event::Priority;
use serde_json::{json, Map, Value};
use stationd_proto::tetra::lip::{self, ShortReport};
use stationd_proto::tetra::pei::Line;
use stationd_proto::tetra::sds::Sds;
use std::collections::{BTreeMap, HashMap};

/// The pre-coded status "emergency" (EN 300 392-2 §14.8.34).
pub const EMERGENCY_STATUS: u16 = 0;
/// A battery change that is news (percentage points).
const BATTERY_STEP: u8 = 5;
/// Calls followed at once, at most (a call that never ends is forgotten).
const MAX_CALLS: usize = 64;

/// What a line means.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// An event about `device`.
    Event {
        device: String,
        kind: &'static str,
        prio: Priority,
        data: Value,
    },
    /// A delivery report (SDS-REPORT or SDS-ACK) for message `reference`.
    Delivery {
        reference: u8,
        status: u8,
        from: Option<String>,
    },
    /// The base radio's board detail changed (`-73 dBm · TG 1001 · ISSI 2001`).
    Detail(String),
    /// An SDS that was not understood: why (counted and logged, never sent on).
    Unreadable(String),
}

/// The radio's own state from the polls.
#[derive(Debug, Clone, Default, PartialEq)]
struct Signal {
    dbm: Option<i32>,
    ber: Option<u8>,
    battery_pct: Option<u8>,
    talkgroup: Option<String>,
    issi: Option<String>,
}

#[derive(Debug, Default)]
struct Call {
    calling: Option<String>,
    called: Option<String>,
    priority: Option<u8>,
    /// Who holds the floor now, and since when (ms).
    talker: Option<(String, u64)>,
}

/// The translator for one base radio.
pub struct Reporter {
    base: String,
    radios: BTreeMap<String, RadioEntry>,
    emergency_statuses: Vec<u16>,
    signal_step_db: i32,
    now: Signal,
    published: Option<Signal>,
    calls: HashMap<u16, Call>,
}

impl Reporter {
    pub fn new(
        base: &str,
        radios: BTreeMap<String, RadioEntry>,
        emergency_statuses: Vec<u16>,
        signal_step_db: u32,
    ) -> Reporter {
        Reporter {
            base: base.to_string(),
            radios,
            emergency_statuses,
            signal_step_db: signal_step_db.max(1) as i32,
            now: Signal::default(),
            published: None,
            calls: HashMap::new(),
        }
    }

    /// The radio was lost or initialised again: the next poll is news, calls are over.
    pub fn reset(&mut self) {
        self.published = None;
        self.now = Signal::default();
        self.calls.clear();
    }

    /// The radio's ISSI, once a poll told it.
    pub fn own_issi(&self) -> Option<&str> {
        self.now.issi.as_deref()
    }

    /// Who carries `address`: the device id and the `[device.radios]` fields, as event data.
    fn who(&self, address: &str) -> (String, Map<String, Value>) {
        let mut data = Map::new();
        let Some(issi) = stationd_proto::tetra::issi(address) else {
            data.insert("address".into(), address.into());
            return (self.base.clone(), data);
        };
        let entry = self.radios.get(&issi);
        let device = entry
            .and_then(|e| e.id.clone())
            .unwrap_or_else(|| format!("issi-{issi}"));
        data.insert("issi".into(), issi.into());
        if let Some(e) = entry {
            for (key, value) in [
                ("officer", &e.officer),
                ("callsign", &e.callsign),
                ("car", &e.car),
            ] {
                if let Some(v) = value {
                    data.insert(key.into(), v.clone().into());
                }
            }
        }
        data.insert("via".into(), self.base.clone().into());
        (device, data)
    }

    pub fn line(&mut self, line: Line, now_ms: u64) -> Vec<Out> {
        match line {
            Line::Signal { dbm, ber } => {
                self.now.dbm = dbm;
                self.now.ber = ber;
                vec![]
            }
            Line::Battery { charge } => {
                self.now.battery_pct = Some(charge.min(100));
                vec![]
            }
            Line::Talkgroup(g) => {
                self.now.talkgroup = Some(stationd_proto::tetra::issi(&g).unwrap_or(g));
                vec![]
            }
            Line::OwnIdentity(id) => {
                self.now.issi = Some(stationd_proto::tetra::issi(&id).unwrap_or(id));
                vec![]
            }
            Line::Sds {
                ai_service,
                calling,
                called,
                sds,
                ..
            } => self.sds(ai_service, calling, &called, sds),
            Line::IncomingCall {
                instance,
                calling,
                called,
                priority,
            } => {
                if self.calls.len() >= MAX_CALLS {
                    self.calls.clear();
                }
                self.calls.insert(
                    instance,
                    Call {
                        calling,
                        called: called.map(|c| stationd_proto::tetra::issi(&c).unwrap_or(c)),
                        priority,
                        ..Call::default()
                    },
                );
                vec![]
            }
            Line::TransmitGrant {
                instance,
                grant,
                talker,
            } => {
                // 0 granted (to us), 3 granted to another: someone holds the floor now.
                if grant != 0 && grant != 3 {
                    return vec![];
                }
                let out = self.burst_ended(instance, now_ms, "ceased");
                let call = self.calls.entry(instance).or_default();
                let talker = talker.or_else(|| call.calling.clone());
                if let Some(t) = talker {
                    call.talker = Some((t, now_ms));
                }
                out
            }
            Line::TransmitCeased { instance } => self.burst_ended(instance, now_ms, "ceased"),
            Line::CallReleased { instance, .. } => {
                let out = self.burst_ended(instance, now_ms, "released");
                self.calls.remove(&instance);
                out
            }
            // Stray answers and vendor lines: nothing for central.
            _ => vec![],
        }
    }

    /// The talk burst in call `instance` (if one is running) ended: `radio.call` for its
    /// talker.
    fn burst_ended(&mut self, instance: u16, now_ms: u64, how: &str) -> Vec<Out> {
        let Some(call) = self.calls.get_mut(&instance) else {
            return vec![];
        };
        let Some((talker, since)) = call.talker.take() else {
            return vec![];
        };
        let called = call.called.clone();
        let priority = call.priority;
        let (device, mut data) = self.who(&talker);
        data.insert("call".into(), instance.into());
        data.insert(
            "talk_s".into(),
            json!((now_ms.saturating_sub(since) as f64 / 1000.0 * 10.0).round() / 10.0),
        );
        data.insert("ended".into(), how.into());
        if let Some(c) = called {
            data.insert("called".into(), c.into());
        }
        if let Some(p) = priority {
            data.insert("priority".into(), p.into());
        }
        vec![Out::Event {
            device,
            kind: "radio.call",
            prio: Priority::Telemetry,
            data: Value::Object(data),
        }]
    }

    fn sds(&mut self, ai_service: u8, calling: Option<String>, called: &str, sds: Sds) -> Vec<Out> {
        let from = calling.clone().unwrap_or_default();
        let (device, mut data) = self.who(&from);
        let to = stationd_proto::tetra::issi(called).unwrap_or_else(|| called.to_string());
        match sds {
            Sds::Status(value) => {
                data.insert("status".into(), value.into());
                data.insert("status_hex".into(), format!("{value:04X}").into());
                data.insert("to".into(), to.into());
                let emergency =
                    value == EMERGENCY_STATUS || self.emergency_statuses.contains(&value);
                if emergency {
                    data.insert("source".into(), "status".into());
                }
                vec![Out::Event {
                    device,
                    kind: if emergency {
                        "radio.emergency"
                    } else {
                        "radio.status"
                    },
                    prio: if emergency {
                        Priority::Alarm
                    } else {
                        Priority::Event
                    },
                    data: Value::Object(data),
                }]
            }
            Sds::Text {
                protocol,
                reference,
                coding,
                text,
            } => {
                data.insert("to".into(), to.into());
                data.insert("text".into(), text.into());
                data.insert(
                    "coding".into(),
                    match coding {
                        0 => "gsm7",
                        1 => "latin1",
                        _ => "ucs2",
                    }
                    .into(),
                );
                data.insert("protocol".into(), protocol.into());
                if let Some(r) = reference {
                    data.insert("reference".into(), r.into());
                }
                vec![Out::Event {
                    device,
                    kind: "radio.text",
                    prio: Priority::Event,
                    data: Value::Object(data),
                }]
            }
            Sds::Location(report) => {
                let position = position_data(&report, data);
                let mut out = vec![];
                if report.is_emergency() {
                    let mut alarm = position.clone();
                    alarm.insert("source".into(), "location".into());
                    out.push(Out::Event {
                        device: device.clone(),
                        kind: "radio.emergency",
                        prio: Priority::Alarm,
                        data: Value::Object(alarm),
                    });
                }
                out.push(Out::Event {
                    device,
                    kind: "position",
                    prio: Priority::Telemetry,
                    data: Value::Object(position),
                });
                out
            }
            Sds::Report { reference, status } | Sds::Ack { reference, status } => {
                vec![Out::Delivery {
                    reference,
                    status,
                    from: calling,
                }]
            }
            Sds::Other { protocol } => vec![Out::Unreadable(format!(
                "SDS protocol 0x{protocol:02X} from {from} (AI service {ai_service}) is not decoded"
            ))],
            Sds::Malformed(why) => vec![Out::Unreadable(format!(
                "SDS from {from} (AI service {ai_service}): {why}"
            ))],
        }
    }

    /// A poll round finished: `radio.signal` if anything is news (the first round after the
    /// radio came up, a talkgroup or identity change, the level moving `signal_step_db` or
    /// the battery 5 points), and the board's detail line.
    pub fn polled(&mut self) -> Vec<Out> {
        let news = match &self.published {
            None => true,
            Some(p) => {
                p.talkgroup != self.now.talkgroup
                    || p.issi != self.now.issi
                    || match (p.dbm, self.now.dbm) {
                        (Some(a), Some(b)) => (a - b).abs() >= self.signal_step_db,
                        (a, b) => a != b,
                    }
                    || match (p.battery_pct, self.now.battery_pct) {
                        (Some(a), Some(b)) => a.abs_diff(b) >= BATTERY_STEP,
                        (a, b) => a != b,
                    }
            }
        };
        let mut out = vec![Out::Detail(self.detail())];
        if news {
            self.published = Some(self.now.clone());
            let s = &self.now;
            out.push(Out::Event {
                device: self.base.clone(),
                kind: "radio.signal",
                prio: Priority::Telemetry,
                data: json!({
                    "dbm": s.dbm, "ber": s.ber, "battery_pct": s.battery_pct,
                    "talkgroup": s.talkgroup, "issi": s.issi,
                }),
            });
        }
        out
    }

    /// `-73 dBm · TG 1001 · ISSI 2001 · battery 80 %`.
    fn detail(&self) -> String {
        let s = &self.now;
        let mut parts = vec![match s.dbm {
            Some(d) => format!("{d} dBm"),
            None => "signal unknown".into(),
        }];
        if let Some(tg) = &s.talkgroup {
            parts.push(format!("TG {tg}"));
        }
        if let Some(issi) = &s.issi {
            parts.push(format!("ISSI {issi}"));
        }
        if let Some(b) = s.battery_pct {
            parts.push(format!("battery {b} %"));
        }
        parts.join(" · ")
    }
}

/// A LIP report as `position` data: the contract's position fields, plus what LIP adds.
fn position_data(r: &ShortReport, mut data: Map<String, Value>) -> Map<String, Value> {
    let round7 = |v: f64| (v * 1e7).round() / 1e7;
    data.insert("lat".into(), json!(round7(r.lat)));
    data.insert("lon".into(), json!(round7(r.lon)));
    data.insert(
        "speed_kmh".into(),
        json!(r.speed_kmh.map(|v| (v * 10.0).round() / 10.0)),
    );
    data.insert("course_deg".into(), json!(r.heading_deg));
    data.insert("error_m".into(), json!(r.position_error_m));
    data.insert("reason".into(), json!(r.reason.map(lip::reason_name)));
    data.insert(
        "age".into(),
        match r.time_elapsed {
            0 => "<5s",
            1 => "<5min",
            2 => "<30min",
            _ => "unknown",
        }
        .into(),
    );
    data.insert("source".into(), "lip".into());
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use stationd_proto::sim::tetra as sim;
    use stationd_proto::tetra::pei::PeiDecoder;

    fn reporter() -> Reporter {
        let mut radios = BTreeMap::new();
        radios.insert(
            "1001".to_string(),
            RadioEntry {
                id: Some("hh-1001".into()),
                officer: Some("P-0417".into()),
                callsign: Some("Ji-03".into()),
                car: None,
            },
        );
        Reporter::new("radio0", radios, vec![0x8005], 6)
    }

    fn feed(r: &mut Reporter, wire: &[u8], now: u64) -> Vec<Out> {
        let mut lines = Vec::new();
        PeiDecoder::new().push(wire, |l| lines.push(l));
        lines.into_iter().flat_map(|l| r.line(l, now)).collect()
    }

    fn kinds(out: &[Out]) -> Vec<(&str, &str)> {
        out.iter()
            .filter_map(|o| match o {
                Out::Event { device, kind, .. } => Some((device.as_str(), *kind)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn statuses_emergencies_and_texts_name_who_sent_them() {
        let mut r = reporter();
        let out = feed(&mut r, &sim::status("1001", "2001", 0), 0);
        assert_eq!(kinds(&out), [("hh-1001", "radio.emergency")]);
        let Out::Event { data, prio, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(*prio, Priority::Alarm);
        assert_eq!(
            (data["officer"].as_str(), data["callsign"].as_str()),
            (Some("P-0417"), Some("Ji-03"))
        );
        // A configured emergency value, an ordinary status, an unknown ISSI in a full TSI.
        assert_eq!(
            kinds(&feed(&mut r, &sim::status("1001", "2001", 0x8005), 0)),
            [("hh-1001", "radio.emergency")]
        );
        assert_eq!(
            kinds(&feed(
                &mut r,
                &sim::status("09011638300000077", "2001", 0x8002),
                0
            )),
            [("issi-77", "radio.status")]
        );
        let out = feed(&mut r, &sim::text_ucs2("1001", "2001", 5, "已到达"), 0);
        let Out::Event {
            kind: "radio.text",
            data,
            ..
        } = &out[0]
        else {
            panic!("{out:?}")
        };
        assert_eq!(
            (data["text"].as_str(), data["coding"].as_str()),
            (Some("已到达"), Some("ucs2"))
        );
    }

    #[test]
    fn a_location_report_is_a_position_and_an_emergency_one_an_alarm_too() {
        let mut r = reporter();
        let out = feed(
            &mut r,
            &sim::location("1001", "2001", -33.8568, -70.5, Some(60.0), 180.0, 2),
            0,
        );
        assert_eq!(
            kinds(&out),
            [("hh-1001", "radio.emergency"), ("hh-1001", "position")]
        );
        let Out::Event { data, .. } = &out[1] else {
            unreachable!()
        };
        assert!((data["lat"].as_f64().unwrap() + 33.8568).abs() < 1e-4);
        assert!(data["lon"].as_f64().unwrap() < -70.0);
        assert_eq!(data["reason"], "emergency");
        let out = feed(
            &mut r,
            &sim::location("1001", "2001", 36.66, 117.02, None, 0.0, 3),
            0,
        );
        assert_eq!(kinds(&out), [("hh-1001", "position")]);
    }

    #[test]
    fn a_talk_burst_is_one_radio_call_with_its_length() {
        let mut r = reporter();
        let (start, end) = sim::group_call(1, "1001", "9001");
        assert!(feed(&mut r, &start, 1_000).is_empty());
        let out = feed(&mut r, &end, 4_500);
        assert_eq!(kinds(&out), [("hh-1001", "radio.call")]);
        let Out::Event { data, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(data["talk_s"], 3.5);
    }

    #[test]
    fn the_signal_is_sent_by_exception() {
        let mut r = reporter();
        let poll = |r: &mut Reporter, rssi: u8| {
            feed(
                r,
                format!("+CSQ: {rssi},99\r\n+CTGS: 1,9001\r\n+CNUMF: 0,2001\r\n").as_bytes(),
                0,
            );
            r.polled()
        };
        let first = poll(&mut r, 20);
        assert_eq!(kinds(&first), [("radio0", "radio.signal")]);
        assert!(first.contains(&Out::Detail("-73 dBm · TG 9001 · ISSI 2001".into())));
        assert!(kinds(&poll(&mut r, 21)).is_empty(), "2 dB is not news");
        assert_eq!(kinds(&poll(&mut r, 23)).len(), 1, "6 dB is");
        r.reset();
        assert_eq!(
            kinds(&poll(&mut r, 23)).len(),
            1,
            "after a reset the first poll is news"
        );
    }
}
