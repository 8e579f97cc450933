//! The pure protocol state of one JT/T 808 terminal connection: registration,
//! authentication, replies and the events its messages become (the daemon's `jt808` driver
//! documents the behaviour). No sockets, no tasks, no logging, no randomness: frames and the
//! time in, [`Action`]s out — what to log or count is an [`Action::Notice`], and the
//! authentication codes come from [`SessionConfig::auth_code`].

use crate::codec::jt808::{
    self, decode_body, encode, general_response, register_response, result, DriverCard, Edition,
    Frame, Location, Message, Reassembled, Reassembler, ALARM_BITS,
};
use crate::codec::nmea::Fix;
use crate::event::{ClockQuality, Event, Priority};
use crate::gps::{ReportFilter, ReportPolicy};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Terminal phone numbers compare without leading zeros (2013 sends 12 digits, 2019 20).
pub fn normalize_phone(p: &str) -> String {
    let t = p.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

/// A terminal the station knows: the car it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownTerminal {
    pub car: String,
    pub plate: Option<String>,
}

impl KnownTerminal {
    pub fn car(&self) -> &str {
        &self.car
    }
    pub fn plate(&self) -> Option<&str> {
        self.plate.as_deref()
    }
}

/// What the sessions of one listener are configured with.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The listener's device id (`fleet`).
    pub device: String,
    /// Terminal phone number (as configured) → the car.
    pub terminals: BTreeMap<String, KnownTerminal>,
    /// Whether terminals not listed may register (as `jt808-{phone}`).
    pub allow_unknown: bool,
    pub policy: ReportPolicy,
    /// Terminal times further than this from a synchronised box clock are not believed.
    pub max_clock_skew_ms: i64,
    /// A fresh authentication code (the daemon: random; tests: anything unguessable enough).
    pub auth_code: fn() -> String,
}

/// What all connections of one `jt808` device share.
pub struct Shared {
    device: String,
    known: BTreeMap<String, KnownTerminal>,
    allow_unknown: bool,
    policy: ReportPolicy,
    max_clock_skew_ms: i64,
    auth_code: fn() -> String,
    /// Authentication codes issued since start, by normalised phone.
    codes: Mutex<HashMap<String, String>>,
}

impl Shared {
    /// The listener's device id (`fleet`).
    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn new(c: SessionConfig) -> Shared {
        Shared {
            known: c
                .terminals
                .into_iter()
                .map(|(p, t)| (normalize_phone(&p), t))
                .collect(),
            device: c.device,
            allow_unknown: c.allow_unknown,
            policy: c.policy,
            max_clock_skew_ms: c.max_clock_skew_ms,
            auth_code: c.auth_code,
            codes: Mutex::new(HashMap::new()),
        }
    }
}

/// What a session wants done.
#[derive(Debug)]
pub enum Action {
    Reply(Vec<u8>),
    Event(Event),
    Close(&'static str),
    /// Something for the daemon's log and counters.
    Notice(Notice),
    /// The terminal's general response (0x0001) to the platform's message `msg_id` sent with
    /// `serial` (e.g. a text message, [`Session::text`]); `result` 0 success, 1 failure,
    /// 2 bad message, 3 unsupported.
    TerminalAnswer {
        serial: u16,
        msg_id: u16,
        result: u8,
    },
}

/// What the daemon should log or count; the session itself neither logs nor counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A verified frame whose body could not be decoded (answered "bad message").
    MessageRejected {
        device: String,
        phone: String,
        error: String,
    },
    /// The terminal's own time was off by more than `max_clock_skew_ms` from the synchronised
    /// box clock and was replaced; `first` on the first time for this connection.
    DeviceTimeRejected {
        car: String,
        device_time_ms: Option<i64>,
        stored: bool,
        first: bool,
    },
}

/// The protocol state of one terminal connection.
pub struct Session {
    shared: Arc<Shared>,
    phone: Option<String>,
    car: Option<String>,
    plate: Option<String>,
    authenticated: bool,
    edition: Edition,
    out_serial: u16,
    parts: Reassembler,
    filter: ReportFilter,
    alarm_word: u32,
    /// Whether this connection already logged that the terminal's clock is off.
    clock_warned: bool,
    /// The certificate of the driver's card in the reader (a removal names no card).
    card_in: Option<String>,
}

impl Session {
    pub fn new(shared: Arc<Shared>) -> Session {
        let filter = ReportFilter::new(shared.policy);
        Session {
            shared,
            phone: None,
            car: None,
            plate: None,
            authenticated: false,
            edition: Edition::V2013,
            out_serial: 0,
            parts: Reassembler::default(),
            filter,
            alarm_word: 0,
            clock_warned: false,
            card_in: None,
        }
    }

    /// The car id once the terminal is known (for logs and the offline event).
    pub fn car(&self) -> Option<&str> {
        self.car.as_deref()
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// A text message (0x8300) for the terminal: its serial (the terminal's 0x0001 answer names
    /// it, [`Action::TerminalAnswer`]) and the frame to write. None until the terminal has
    /// authenticated: a message to an unknown terminal would go to nobody's car.
    /// `flags`: bit 0 emergency, bit 2 show on the terminal, bit 3 read aloud (TTS).
    pub fn text(&mut self, flags: u8, text: &str) -> Option<(u16, Vec<u8>)> {
        if !self.authenticated {
            return None;
        }
        let body = jt808::text_message(self.edition, flags, text);
        match self.reply(0x8300, body) {
            Action::Reply(bytes) => Some((self.out_serial, bytes)),
            _ => unreachable!("reply() makes a Reply"),
        }
    }

    fn reply(&mut self, msg_id: u16, body: Vec<u8>) -> Action {
        self.out_serial = self.out_serial.wrapping_add(1);
        Action::Reply(encode(
            msg_id,
            self.edition,
            self.phone.as_deref().unwrap_or("0"),
            self.out_serial,
            &body,
        ))
    }

    fn ack(&mut self, f: &jt808::Header, code: u8) -> Action {
        self.reply(0x8001, general_response(f.serial, f.msg_id, code))
    }

    /// The device id used for the terminal's events: its car, or the station-wide device.
    fn device(&self) -> String {
        self.car
            .clone()
            .unwrap_or_else(|| self.shared.device.clone())
    }

    /// Handles one verified frame. `now` is wall time and its quality, `mono_ms` monotonic.
    pub fn on_frame(
        &mut self,
        frame: Frame,
        now: (i64, ClockQuality),
        mono_ms: u64,
    ) -> Vec<Action> {
        let header = frame.header.clone();
        self.edition = header.edition;
        if self.phone.is_none() {
            self.phone = Some(header.phone.clone());
        }
        let mut out = Vec::new();
        let body = match self.parts.push(frame) {
            Reassembled::Whole(b) => b,
            Reassembled::Pending => {
                out.push(self.ack(&header, result::OK));
                return out;
            }
            Reassembled::Dropped(_) => {
                out.push(self.ack(&header, result::BAD_MESSAGE));
                return out;
            }
        };
        let message = match decode_body(&header, &body) {
            Ok(m) => m,
            Err(e) => {
                out.push(Action::Notice(Notice::MessageRejected {
                    device: self.device(),
                    phone: header.phone.clone(),
                    error: e.to_string(),
                }));
                out.push(self.ack(&header, result::BAD_MESSAGE));
                return out;
            }
        };
        let phone = normalize_phone(&header.phone);
        match message {
            Message::Register(r) => {
                let entry = self.shared.known.get(&phone).cloned();
                let plate = entry
                    .as_ref()
                    .and_then(|e| e.plate().map(str::to_string))
                    .or(Some(r.plate.clone()).filter(|p| !p.is_empty()));
                if entry.is_none() {
                    out.push(Action::Event(Event::new(
                        &self.shared.device,
                        "jt808.unknown_terminal",
                        Priority::Event,
                        now,
                        false,
                        json!({"phone": header.phone, "plate": r.plate, "maker": r.maker, "model": r.model, "terminal_id": r.terminal_id, "admitted": self.shared.allow_unknown}),
                    )));
                    if !self.shared.allow_unknown {
                        out.push(self.reply(0x8100, register_response(header.serial, 4, "")));
                        out.push(Action::Close("unknown terminal"));
                        return out;
                    }
                }
                let car = entry
                    .map(|e| e.car().to_string())
                    .unwrap_or_else(|| format!("jt808-{phone}"));
                let code = (self.shared.auth_code)();
                self.shared
                    .codes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(phone, code.clone());
                out.push(Action::Event(Event::new(
                    &car,
                    "jt808.registered",
                    Priority::Event,
                    now,
                    false,
                    json!({"phone": header.phone, "plate": plate, "maker": r.maker, "model": r.model, "terminal_id": r.terminal_id, "edition": edition_name(header.edition)}),
                )));
                self.car = Some(car);
                self.plate = plate;
                out.push(self.reply(0x8100, register_response(header.serial, 0, &code)));
            }
            Message::Authenticate { code } => {
                let issued = self
                    .shared
                    .codes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&phone)
                    .cloned();
                if issued.as_deref() == Some(code.as_str()) {
                    let entry = self.shared.known.get(&phone);
                    let car = entry
                        .map(|e| e.car().to_string())
                        .unwrap_or_else(|| format!("jt808-{phone}"));
                    if self.plate.is_none() {
                        self.plate = entry.and_then(|e| e.plate().map(str::to_string));
                    }
                    self.car = Some(car.clone());
                    self.authenticated = true;
                    out.push(Action::Event(Event::new(
                        &car,
                        "device.online",
                        Priority::Event,
                        now,
                        false,
                        json!({"driver": "jt808", "phone": header.phone, "plate": self.plate}),
                    )));
                    out.push(self.ack(&header, result::OK));
                } else {
                    out.push(self.ack(&header, result::FAIL));
                }
            }
            Message::Heartbeat => out.push(self.ack(&header, result::OK)),
            Message::Deregister => {
                self.shared
                    .codes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&phone);
                out.push(self.ack(&header, result::OK));
                if self.authenticated {
                    out.push(Action::Event(Event::new(
                        &self.device(),
                        "device.offline",
                        Priority::Event,
                        now,
                        false,
                        json!({"driver": "jt808", "reason": "deregistered"}),
                    )));
                    self.authenticated = false;
                }
                out.push(Action::Close("deregistered"));
            }
            Message::Location(l) => {
                if !self.authenticated {
                    out.push(self.ack(&header, result::FAIL));
                    return out;
                }
                out.extend(self.location(&l, now, mono_ms, false));
                out.push(self.ack(&header, result::OK));
            }
            Message::BatchLocation { items, .. } => {
                if !self.authenticated {
                    out.push(self.ack(&header, result::FAIL));
                    return out;
                }
                for l in &items {
                    out.extend(self.location(l, now, mono_ms, true));
                }
                out.push(self.ack(&header, result::OK));
            }
            Message::TerminalResponse {
                serial,
                msg_id,
                result,
            } => out.push(Action::TerminalAnswer {
                serial,
                msg_id,
                result,
            }),
            Message::DriverCard(card) => {
                if !self.authenticated {
                    out.push(self.ack(&header, result::FAIL));
                    return out;
                }
                out.extend(self.driver_card(&card, now));
                out.push(self.ack(&header, result::OK));
            }
            Message::EventReport { event_id } => {
                if !self.authenticated {
                    out.push(self.ack(&header, result::FAIL));
                    return out;
                }
                out.push(Action::Event(Event::new(
                    &self.device(),
                    "jt808.event_report",
                    Priority::Event,
                    now,
                    false,
                    json!({ "event_id": event_id }),
                )));
                out.push(self.ack(&header, result::OK));
            }
            Message::Other(_) => out.push(self.ack(&header, result::UNSUPPORTED)),
        }
        out
    }

    /// `jt808.driver_card`: a driver's IC card in or out of the car's reader. The name on the
    /// card stays on the box (the roster maps the certificate to a person); a removal names
    /// the card that was in.
    fn driver_card(&mut self, card: &DriverCard, now: (i64, ClockQuality)) -> Vec<Action> {
        let car = self.device();
        let (ts, rejected) = crate::device_clock::device_stamp(
            card.time_ms,
            now,
            self.shared.max_clock_skew_ms,
            false,
        );
        let mut out = Vec::new();
        if rejected {
            out.push(Action::Notice(Notice::DeviceTimeRejected {
                car: car.clone(),
                device_time_ms: card.time_ms,
                stored: false,
                first: !std::mem::replace(&mut self.clock_warned, true),
            }));
        }
        let certificate = if card.inserted {
            let read = (!card.certificate.is_empty()).then(|| card.certificate.clone());
            self.card_in = read.clone();
            read
        } else {
            self.card_in.take()
        };
        let mut data = json!({
            "inserted": card.inserted,
            "read": card.read_result_name(),
            "certificate": certificate,
        });
        if let Some(v) = &card.valid_until {
            data["valid_until"] = json!(v);
        }
        out.push(Action::Event(Event::new(
            &car,
            "jt808.driver_card",
            Priority::Event,
            ts,
            false,
            data,
        )));
        out
    }

    /// Events for one location: new alarms (always), and the position (by exception, or
    /// always while an alarm is set, or always when `stored`).
    fn location(
        &mut self,
        l: &Location,
        now: (i64, ClockQuality),
        mono_ms: u64,
        stored: bool,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let car = self.device();
        let (ts, rejected) = crate::device_clock::device_stamp(
            l.time_ms,
            now,
            self.shared.max_clock_skew_ms,
            stored,
        );
        if rejected {
            out.push(Action::Notice(Notice::DeviceTimeRejected {
                car: car.clone(),
                device_time_ms: l.time_ms,
                stored,
                first: !std::mem::replace(&mut self.clock_warned, true),
            }));
        }
        let data = self.position_json(l);
        let new_alarms = if stored {
            l.alarm
        } else {
            l.alarm & !self.alarm_word
        };
        if !stored {
            self.alarm_word = l.alarm;
        }
        if new_alarms & 1 != 0 {
            out.push(Action::Event(Event::new(
                &car,
                "vehicle.emergency",
                Priority::Alarm,
                ts,
                stored,
                data.clone(),
            )));
        }
        if new_alarms & !1 != 0 {
            let names: Vec<&str> = (1..32)
                .filter(|b| new_alarms & (1 << b) != 0)
                .map(|b| ALARM_BITS[b])
                .collect();
            let mut d = data.clone();
            d["alarms"] = json!(names);
            out.push(Action::Event(Event::new(
                &car,
                "vehicle.alarm",
                Priority::Alarm,
                ts,
                stored,
                d,
            )));
        }
        if l.positioned() {
            let fix = Fix {
                utc_ms: l.time_ms,
                lat: l.lat,
                lon: l.lon,
                altitude_m: Some(l.altitude_m as f64),
                speed_kmh: Some(l.speed_kmh),
                course_deg: Some(l.direction_deg as f64),
                quality: 1,
                fix_type: None,
                satellites: l.satellites,
                hdop: None,
            };
            if stored || self.filter.offer(mono_ms, &fix, l.alarm != 0) {
                out.push(Action::Event(Event::new(
                    &car,
                    "position",
                    Priority::Telemetry,
                    ts,
                    stored,
                    data,
                )));
            }
        }
        out
    }

    fn position_json(&self, l: &Location) -> serde_json::Value {
        json!({
            "lat": (l.lat * 1e7).round() / 1e7,
            "lon": (l.lon * 1e7).round() / 1e7,
            "alt_m": l.altitude_m,
            "speed_kmh": l.speed_kmh,
            "course_deg": l.direction_deg,
            "valid": l.positioned(),
            "gnss_time": l.time_ms.map(crate::event::format_ts_ms),
            "satellites": l.satellites,
            "signal_csq": l.signal,
            "mileage_km": l.mileage_km,
            "fuel_l": l.fuel_l,
            "alarm_bits": l.alarm,
            "status_bits": l.status,
            "plate": self.plate,
            "terminal": self.phone,
        })
    }
}

fn edition_name(e: Edition) -> &'static str {
    match e {
        Edition::V2013 => "2013",
        Edition::V2019(_) => "2019",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jt808::{encode, FrameDecoder};

    /// A session for terminal 013912345678 (car-03), already authenticated, with a strict
    /// report policy: at most one position a minute unless the car moves 50 m.
    fn session() -> Session {
        let config = SessionConfig {
            device: "fleet".into(),
            terminals: [(
                "013912345678".to_string(),
                KnownTerminal {
                    car: "car-03".into(),
                    plate: None,
                },
            )]
            .into(),
            allow_unknown: false,
            policy: ReportPolicy::from_config(50.0, 30.0, 60, 60),
            max_clock_skew_ms: 86_400_000,
            auth_code: || "0123456789abcdef".into(),
        };
        let mut s = Session::new(Arc::new(Shared::new(config)));
        let body = crate::sim::jt808::Registration::default().body(Edition::V2013);
        let mut code = None;
        for a in feed(&mut s, 0x0100, &body, 0) {
            if let Action::Reply(r) = a {
                FrameDecoder::new().push(&r, |f| code = Some(f.unwrap().body[3..].to_vec()));
            }
        }
        feed(&mut s, 0x0102, &code.unwrap(), 0);
        assert!(s.authenticated());
        s
    }

    /// When [`report`] says it was taken: 2026-11-29T08:16:00Z.
    const REPORT_MS: i64 = 1_795_940_160_000;

    fn feed(s: &mut Session, msg_id: u16, body: &[u8], mono_ms: u64) -> Vec<Action> {
        feed_at(
            s,
            msg_id,
            body,
            (REPORT_MS + 2_000, ClockQuality::Synced),
            mono_ms,
        )
    }

    /// Feeds one message received at `now` (the box's time and clock state).
    fn feed_at(
        s: &mut Session,
        msg_id: u16,
        body: &[u8],
        now: (i64, ClockQuality),
        mono_ms: u64,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        FrameDecoder::new().push(
            &encode(msg_id, Edition::V2013, "013912345678", 1, body),
            |f| out.extend(s.on_frame(f.unwrap(), now, mono_ms)),
        );
        out
    }

    fn events(actions: Vec<Action>) -> Vec<Event> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    /// A parked car's report at [`REPORT_MS`], with the `alarm` word.
    fn report(alarm: u32) -> Vec<u8> {
        crate::sim::jt808::Location {
            alarm,
            lat: 36.6613,
            lon: 117.0205,
            time_bcd: [0x26, 0x11, 0x29, 0x16, 0x16, 0x00],
            ..Default::default()
        }
        .body()
    }

    #[test]
    fn an_event_the_driver_pressed_is_an_event_of_the_car_and_is_acknowledged() {
        let mut s = session();
        let out = feed(&mut s, 0x0301, &crate::sim::jt808::event_report(1), 0);
        let acks: Vec<u8> = out
            .iter()
            .filter_map(|a| match a {
                Action::Reply(b) => Some(b[b.len() - 1]),
                _ => None,
            })
            .collect();
        let evs = events(out);
        assert_eq!(
            (
                evs[0].device.as_str(),
                evs[0].kind.as_str(),
                evs[0].data.get()
            ),
            ("car-03", "jt808.event_report", r#"{"event_id":1}"#)
        );
        assert_eq!(acks.len(), 1);
        // An empty body is a bad message, not an event.
        let out = feed(&mut s, 0x0301, &[], 0);
        assert!(events(out).is_empty());
    }

    #[test]
    fn a_driver_card_in_and_out_names_the_certificate_both_times_and_never_the_name() {
        let mut s = session();
        let at = REPORT_MS;
        let inserted = events(feed(
            &mut s,
            0x0702,
            &crate::sim::jt808::driver_card(Some("440301198001"), "张三", at),
            0,
        ));
        assert_eq!(inserted.len(), 1);
        assert_eq!(
            (inserted[0].device.as_str(), inserted[0].kind.as_str()),
            ("car-03", "jt808.driver_card")
        );
        assert_eq!(inserted[0].ts_ms, at, "the card's own time");
        let data: serde_json::Value = serde_json::from_str(inserted[0].data.get()).unwrap();
        assert_eq!(data["inserted"], true);
        assert_eq!(data["certificate"], "440301198001");
        assert_eq!(data["read"], "ok");
        assert!(
            !inserted[0].data.get().contains("张三"),
            "names stay on the box"
        );
        let removed = events(feed(
            &mut s,
            0x0702,
            &crate::sim::jt808::driver_card(None, "", at + 60_000),
            0,
        ));
        let data: serde_json::Value = serde_json::from_str(removed[0].data.get()).unwrap();
        assert_eq!(data["inserted"], false);
        assert_eq!(data["certificate"], "440301198001", "the card that was in");
        assert_eq!(data["read"], "removed");
    }

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some(e.kind.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_parked_car_is_reported_once_but_every_report_passes_while_an_alarm_is_set() {
        let mut s = session();
        assert_eq!(
            kinds(&feed(&mut s, 0x0200, &report(0), 1_000)),
            ["position"]
        );
        assert!(
            kinds(&feed(&mut s, 0x0200, &report(0), 2_000)).is_empty(),
            "same place, 1 s later"
        );
        assert_eq!(
            kinds(&feed(&mut s, 0x0200, &report(1), 3_000)),
            ["vehicle.emergency", "position"]
        );
        assert_eq!(
            kinds(&feed(&mut s, 0x0200, &report(1), 4_000)),
            ["position"],
            "no second emergency event, but the position"
        );
        assert!(
            kinds(&feed(&mut s, 0x0200, &report(0), 5_000)).is_empty(),
            "alarm cleared: back to the policy"
        );
    }

    #[test]
    fn a_terminal_clock_years_off_gives_way_to_the_synchronised_box_clock() {
        const DAY: i64 = 86_400_000;
        let mut s = session();
        // The terminal's RTC says 2026-11-29; the box, synchronised, says 6 years later.
        let box_now = REPORT_MS + 6 * 365 * DAY;
        let actions = feed_at(
            &mut s,
            0x0200,
            &report(1),
            (box_now, ClockQuality::Synced),
            1_000,
        );
        let notices: Vec<&Notice> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Notice(n) => Some(n),
                _ => None,
            })
            .collect();
        assert_eq!(
            notices,
            [&Notice::DeviceTimeRejected {
                car: "car-03".into(),
                device_time_ms: Some(REPORT_MS),
                stored: false,
                first: true
            }],
            "one report, one rejected time, for the daemon to log and count"
        );
        let live = events(actions);
        assert_eq!(live.len(), 2, "emergency and position");
        for e in &live {
            assert_eq!(
                (e.ts_ms, e.clock),
                (box_now, ClockQuality::DeviceUnreliable),
                "{}",
                e.kind
            );
            let data: serde_json::Value = serde_json::from_str(e.data.get()).unwrap();
            assert_eq!(
                data["gnss_time"], "2026-11-29T08:16:00.000Z",
                "the terminal's own time is kept"
            );
        }

        // Without a synchronised box clock there is nothing to judge by: the terminal's time.
        let e = events(feed_at(
            &mut s,
            0x0200,
            &report(1),
            (box_now, ClockQuality::Unsynced),
            61_000,
        ));
        assert_eq!((e[0].ts_ms, e[0].clock), (REPORT_MS, ClockQuality::Synced));

        // Back-fill (0x0704) may be days old, but not from the future.
        let mut batch = vec![0, 1, 1];
        batch.extend((report(0).len() as u16).to_be_bytes());
        batch.extend(report(0));
        let old = events(feed_at(
            &mut s,
            0x0704,
            &batch,
            (REPORT_MS + 3 * DAY, ClockQuality::Synced),
            62_000,
        ));
        assert_eq!(
            (old[0].ts_ms, old[0].clock),
            (REPORT_MS, ClockQuality::Synced)
        );
        let ahead = events(feed_at(
            &mut s,
            0x0704,
            &batch,
            (REPORT_MS - 2 * DAY, ClockQuality::Synced),
            63_000,
        ));
        assert_eq!(
            (ahead[0].ts_ms, ahead[0].clock),
            (REPORT_MS - 2 * DAY, ClockQuality::DeviceUnreliable)
        );
    }
}
