//! The `jt808` driver: the station box as the platform for the patrol cars' JT/T 808
//! terminals, over TCP.
//!
//! [`Session`] is the pure protocol state of one connection (registration, authentication,
//! replies, events); [`serve`] is the I/O: a listener with a connection limit, one task per
//! terminal, an idle timeout, and disconnection of a terminal that keeps sending garbage.
//!
//! - Registration (0x0100) is answered with 0x8100 and a fresh authentication code; a
//!   terminal not listed in `terminals` is refused (result 4) unless `allow_unknown`, and is
//!   reported (`jt808.unknown_terminal`) either way.
//! - Authentication (0x0102) must present the code issued by this daemon; until then other
//!   messages are answered "fail" (terminals then register again, which they do after every
//!   reset anyway).
//! - Every message that needs it gets a 0x8001 general response; unknown messages get
//!   "unsupported". A reply is written only once the events its message produced are
//!   committed to the outbox ([`answer`]): a terminal deletes the stored reports the platform
//!   acknowledged, so an early acknowledgement would lose them in a power cut.
//! - Locations (0x0200) become `position` telemetry for the car, by exception
//!   ([`ReportFilter`]) — except while an alarm bit is set: those always pass. A newly set
//!   alarm bit becomes an alarm-priority event (`vehicle.emergency` for bit 0,
//!   `vehicle.alarm` otherwise) with the car's position. Batches of stored locations (0x0704)
//!   become positions with their own time and `historical: true`.

use super::gps::{ReportFilter, ReportPolicy};
use crate::codec::jt808::{
    self, decode_body, encode, general_response, register_response, result, Edition, Frame,
    FrameDecoder, Location, Message, Reassembled, Reassembler, ALARM_BITS,
};
use crate::codec::nmea::Fix;
use crate::config::{Jt808Device, ListenAddr, TerminalEntry};
use crate::event::{ClockQuality, Event, Priority};
use crate::metrics::{self, Counter};
use crate::outbox::{Committed, EventSink};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// Bad frames tolerated on one connection before the terminal is disconnected.
const MAX_BAD_FRAMES: u32 = 20;

/// Terminal phone numbers compare without leading zeros (2013 sends 12 digits, 2019 20).
pub fn normalize_phone(p: &str) -> String {
    let t = p.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

/// What all connections of one `jt808` device share.
pub struct Shared {
    device: String,
    known: BTreeMap<String, TerminalEntry>,
    allow_unknown: bool,
    policy: ReportPolicy,
    /// `max_clock_skew_s` in ms: terminal times further off are not believed.
    max_clock_skew_ms: i64,
    /// Authentication codes issued since start, by normalised phone.
    codes: Mutex<HashMap<String, String>>,
}

impl Shared {
    pub fn new(d: &Jt808Device) -> Shared {
        Shared {
            device: d.id.clone(),
            known: d
                .terminals
                .iter()
                .map(|(p, t)| (normalize_phone(p), t.clone()))
                .collect(),
            allow_unknown: d.allow_unknown,
            policy: ReportPolicy::from_config(
                d.min_distance_m,
                d.min_course_deg,
                d.min_interval_s,
                d.max_interval_s,
            ),
            max_clock_skew_ms: (d.max_clock_skew_s as i64).saturating_mul(1000),
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
        }
    }

    /// The car id once the terminal is known (for logs and the offline event).
    pub fn car(&self) -> Option<&str> {
        self.car.as_deref()
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated
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
                tracing::warn!(event = "jt808.message_rejected", device_id = %self.device(), driver = "jt808", phone = %header.phone, error = %e, "malformed message");
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
                let code = format!("{:016x}", fastrand::u64(..));
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
            Message::TerminalResponse { .. } => {}
            Message::Other(_) => out.push(self.ack(&header, result::UNSUPPORTED)),
        }
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
        let (ts, rejected) =
            crate::clock::device_stamp(l.time_ms, now, self.shared.max_clock_skew_ms, stored);
        if rejected {
            metrics::inc(&metrics::counter("clock.device_time_rejected", &car));
            if !std::mem::replace(&mut self.clock_warned, true) {
                tracing::warn!(
                    event = "clock.device_time_rejected",
                    device_id = %car,
                    driver = "jt808",
                    listener = %self.shared.device,
                    device_time = %l.time_ms.map(crate::event::format_ts_ms).unwrap_or_default(),
                    stored,
                    "the terminal's clock is off by more than max_clock_skew_s from the synchronised box clock (flat RTC battery?): its reports carry the box's time and clock \"device_unreliable\" (its own time stays in gnss_time)"
                );
            }
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

struct Counters {
    frames: Counter,
    bad_frames: Counter,
    refused: Counter,
    garbage_disconnects: Counter,
}

pub async fn bind(d: &Jt808Device) -> Result<TcpListener, super::DriverError> {
    let ListenAddr::Tcp(addr) = &d.listen else {
        unreachable!("checked by config")
    };
    TcpListener::bind(addr)
        .await
        .map_err(|source| super::DriverError::Listen {
            device: d.id.clone(),
            addr: d.listen.to_string(),
            source,
        })
}

/// Accepts terminals until shutdown.
pub async fn serve(
    d: Jt808Device,
    listener: TcpListener,
    sink: EventSink,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared::new(&d));
    let counters = Arc::new(Counters {
        frames: metrics::counter("jt808.frames", &d.id),
        bad_frames: metrics::counter("jt808.frames_rejected", &d.id),
        refused: metrics::counter("jt808.connections_refused", &d.id),
        garbage_disconnects: metrics::counter("jt808.garbage_disconnects", &d.id),
    });
    let slots = Arc::new(Semaphore::new(d.max_connections));
    let idle = Duration::from_secs(d.idle_timeout_s);
    let started = Instant::now();
    let mut conns = JoinSet::new();
    tracing::info!(event = "device.listening", device_id = %d.id, driver = "jt808", listen = %d.listen, "accepting vehicle terminals");
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            r = listener.accept() => r,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::inc(&counters.refused);
            tracing::warn!(event = "jt808.connection_refused", device_id = %d.id, driver = "jt808", peer = %peer, limit = d.max_connections, "too many terminals connected");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (shared, sink, counters, shutdown) = (
            shared.clone(),
            sink.clone(),
            counters.clone(),
            shutdown.clone(),
        );
        conns.spawn(async move {
            connection(
                stream,
                peer.to_string(),
                shared,
                sink,
                counters,
                idle,
                started,
                shutdown,
            )
            .await;
            drop(permit);
        });
    }
    while conns.join_next().await.is_some() {}
}

/// Replies waiting to be written to one terminal, at most.
const REPLY_QUEUE: usize = 1024;
/// How long a closing connection waits for the commits its last replies are held for.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A reply to the terminal, held until the events queued before it are committed.
struct Reply {
    after: Option<Committed>,
    bytes: Vec<u8>,
}

/// Writes the replies in order, each once the events before it are on disk: a terminal deletes
/// the stored reports the platform acknowledges, so a 0x8001 sent before the commit would lose
/// them in a power cut. Err says why it stopped writing.
async fn answer(
    mut stream: tokio::net::tcp::OwnedWriteHalf,
    mut replies: mpsc::Receiver<Reply>,
) -> Result<(), &'static str> {
    while let Some(reply) = replies.recv().await {
        if let Some(committed) = reply.after {
            committed
                .wait()
                .await
                .map_err(|_| "the outbox could not commit")?;
        }
        stream
            .write_all(&reply.bytes)
            .await
            .map_err(|_| "connection error")?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: tokio::net::TcpStream,
    peer: String,
    shared: Arc<Shared>,
    sink: EventSink,
    counters: Arc<Counters>,
    idle: Duration,
    started: Instant,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut session = Session::new(shared.clone());
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 4096];
    let mut bad: u32 = 0;
    let mut actions = Vec::new();
    let (mut input, output) = stream.into_split();
    let (replies, queued) = mpsc::channel::<Reply>(REPLY_QUEUE);
    let mut answering = tokio::spawn(answer(output, queued));
    let reason = loop {
        let n = tokio::select! {
            r = tokio::time::timeout(idle, input.read(&mut buf)) => match r {
                Err(_) => break "idle timeout",
                Ok(Ok(0)) => break "closed by the terminal",
                Ok(Err(_)) => break "connection error",
                Ok(Ok(n)) => n,
            },
            r = &mut answering => break r.ok().and_then(Result::err).unwrap_or("connection error"),
            _ = shutdown.wait_for(|s| *s) => break "shutdown",
        };
        let now = crate::clock::now();
        let mono = started.elapsed().as_millis() as u64;
        crate::health::seen(&shared.device);
        if let Some(car) = session.car() {
            crate::health::seen(car);
        }
        decoder.push(&buf[..n], |f| match f {
            Ok(frame) => {
                metrics::inc(&counters.frames);
                actions.extend(session.on_frame(frame, now, mono));
            }
            Err(e) => {
                metrics::inc(&counters.bad_frames);
                bad += 1;
                if bad <= 3 {
                    // Records about a car carry its id, so `journalctl DEVICE_ID=car-03` finds them.
                    let device_id = session.car().unwrap_or(&shared.device);
                    tracing::warn!(event = "jt808.frame_rejected", device_id = %device_id, driver = "jt808", listener = %shared.device, peer = %peer, error = %e, "skipped a bad frame");
                }
            }
        });
        let mut close = None;
        // The event right before a reply is sent with a receipt, and the reply waits for it
        // (commits are in queue order: that receipt covers every earlier event too).
        let mut receipt = None;
        let mut actions_left = actions.drain(..).peekable();
        while let Some(a) = actions_left.next() {
            match a {
                Action::Reply(bytes) => {
                    let reply = Reply {
                        after: receipt.take(),
                        bytes,
                    };
                    if replies.send(reply).await.is_err() {
                        close = Some("connection error");
                    }
                }
                Action::Event(ev) => {
                    crate::health::observe(&shared.device, "jt808", &ev);
                    log_car_event(&ev, &shared.device, &peer);
                    if matches!(actions_left.peek(), Some(Action::Reply(_))) {
                        match sink.send_durable(ev).await {
                            Ok(r) => receipt = Some(r),
                            Err(_) => return,
                        }
                    } else if sink.send(ev).await.is_err() {
                        return;
                    }
                }
                Action::Close(why) => close = Some(why),
            }
        }
        drop(actions_left);
        if let Some(why) = close {
            break why;
        }
        if bad > MAX_BAD_FRAMES {
            metrics::inc(&counters.garbage_disconnects);
            break "too many bad frames";
        }
    };
    // Replies still queued go out as their events commit (a refused registration's answer,
    // the last acknowledgements); then the connection closes.
    drop(replies);
    if !answering.is_finished() {
        let _ = tokio::time::timeout(CLOSE_GRACE, &mut answering).await;
        answering.abort();
    }
    tracing::info!(event = "jt808.disconnected", device_id = %session.car().unwrap_or(&shared.device), driver = "jt808", listener = %shared.device, peer = %peer, reason, "terminal connection closed");
    if session.authenticated() {
        let ev = Event::new(
            session.car().unwrap_or(&shared.device),
            "device.offline",
            Priority::Event,
            crate::clock::now(),
            false,
            json!({"driver": "jt808", "reason": reason}),
        );
        crate::health::observe(&shared.device, "jt808", &ev);
        let _ = sink.send(ev).await;
    }
}

/// The journal's view of a car: its registration, health and alarms, under its own device id
/// (positions are not logged: they go to central only).
fn log_car_event(ev: &Event, listener: &str, peer: &str) {
    match ev.kind.as_str() {
        "position" => {}
        "vehicle.emergency" | "vehicle.alarm" => {
            tracing::warn!(event = ev.kind.as_str(), device_id = %ev.device, driver = "jt808", listener = %listener, peer = %peer, data = %ev.data.get(), "alarm from the car's terminal (sent to central)")
        }
        _ => {
            tracing::info!(event = ev.kind.as_str(), device_id = %ev.device, driver = "jt808", listener = %listener, peer = %peer, data = %ev.data.get(), "terminal event (sent to central)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jt808::{encode, FrameDecoder};

    /// A session for terminal 013912345678 (car-03), already authenticated, with a strict
    /// report policy: at most one position a minute unless the car moves 50 m.
    fn session() -> Session {
        let text = "[station]\nid = \"t\"\nname = \"t\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1\"]\n[buffer]\npath = \"/tmp/x.db\"\n\
                    [[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:1\"\nmin_interval_s = 60\n\
                    [device.terminals]\n\"013912345678\" = \"car-03\"\n";
        let cfg = crate::config::Config::parse(std::path::Path::new("t.toml"), text).unwrap();
        let crate::config::Device::Jt808(d) = &cfg.devices[0] else {
            unreachable!()
        };
        let mut s = Session::new(Arc::new(Shared::new(d)));
        let mut body = vec![0, 37, 1, 0];
        body.extend(b"MAKER");
        body.extend([0u8; 20]);
        body.extend(b"T000001");
        body.extend([1, b'A']);
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

    fn report(alarm: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(alarm.to_be_bytes());
        b.extend(2u32.to_be_bytes());
        b.extend(36_661_300u32.to_be_bytes());
        b.extend(117_020_500u32.to_be_bytes());
        b.extend([0, 45, 0, 0, 0, 90, 0x26, 0x11, 0x29, 0x16, 0x16, 0x00]);
        b
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
        let rejected = || crate::metrics::value("clock.device_time_rejected", "car-03");
        let before = rejected();
        // The terminal's RTC says 2026-11-29; the box, synchronised, says 6 years later.
        let box_now = REPORT_MS + 6 * 365 * DAY;
        let live = events(feed_at(
            &mut s,
            0x0200,
            &report(1),
            (box_now, ClockQuality::Synced),
            1_000,
        ));
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
        assert_eq!(rejected() - before, 1, "one report, one rejected time");

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
