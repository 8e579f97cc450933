//! The `tetra` driver: the station's TETRA base radio on its PEI serial port (ETSI EN 300
//! 392-5). Its config is [`config`]; what lines mean for central is [`reports`]; dispatch's
//! `radio.text` command is [`text`]; this is the I/O.
//!
//! Bytes from the port go through the sans-I/O PEI decoder and radio session of the protocol
//! crate (`tetra::pei`, `tetra::session`): the session says what to write (the init sequence,
//! the polls, an SDS to send) and what the radio reported; [`reports::Reporter`] turns the
//! reports into events. A port that goes away (a USB radio unplugged) is reopened with backoff
//! and the radio initialised again; a radio that stops answering is initialised again on the
//! same port. The device board shows each state: `waiting`, `initialising`, `online` (with
//! signal, talkgroup and ISSI), `offline` (why).

mod config;
pub mod reports;
pub mod text;

pub use config::{RadioEntry, TetraDevice};

use super::serial;
use super::{DeviceContext, DeviceSink, Driver};
use crate::event::{Event, Priority};
use crate::metrics::{self, Counter};
use reports::{Out, Reporter};
use serde_json::json;
use stationd_proto::tetra::pei::PeiDecoder;
use stationd_proto::tetra::sds;
use stationd_proto::tetra::session::{Output, RadioSession, SendOutcome};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use text::{Accepted, RadioLinks, SendRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The registry's entry (`driver = "tetra"`).
pub const DRIVER: Driver = Driver {
    name: "tetra",
    serial: true,
    parse: serial::parse::<TetraDevice>,
    keys: serial::keys::<TetraDevice>,
};

/// Unreadable SDSs logged in full per port session before logging thins out.
const LOG_FIRST_UNREADABLE: u64 = 10;
/// Delivery reports waited for at once, at most (older waits are dropped first).
const MAX_AWAITING: usize = 128;

/// The device's counters.
struct Counters {
    lines: Counter,
    lines_oversized: Counter,
    sds_received: Counter,
    sds_unreadable: Counter,
    commands_failed: Counter,
    not_answering: Counter,
    texts_sent: Counter,
    texts_failed: Counter,
    emergencies: Counter,
}

impl Counters {
    fn new(metrics: &crate::metrics::Metrics, id: &str) -> Counters {
        Counters {
            lines: metrics.counter("tetra.lines", id),
            lines_oversized: metrics.counter("tetra.lines_oversized", id),
            sds_received: metrics.counter("tetra.sds_received", id),
            sds_unreadable: metrics.counter("tetra.sds_unreadable", id),
            commands_failed: metrics.counter("tetra.commands_failed", id),
            not_answering: metrics.counter("tetra.not_answering", id),
            texts_sent: metrics.counter("radio.texts_sent", id),
            texts_failed: metrics.counter("radio.texts_failed", id),
            emergencies: metrics.counter("radio.emergencies", id),
        }
    }
}

/// A message given to the session, waiting for the radio to take it.
struct Pending {
    reference: u8,
    coding: &'static str,
    accepted: oneshot::Sender<Result<Accepted, String>>,
    delivered: Option<oneshot::Sender<u8>>,
}

/// What the driver keeps across port sessions: messages in flight and delivery reports
/// waited for (a report can come after the port was reopened).
struct Sends {
    pending: HashMap<u64, Pending>,
    /// SDS-TL reference → where its delivery status goes.
    awaiting: HashMap<u8, oneshot::Sender<u8>>,
    next_tag: u64,
    next_reference: u8,
}

impl Sends {
    fn new() -> Sends {
        Sends {
            pending: HashMap::new(),
            awaiting: HashMap::new(),
            next_tag: 0,
            // Different references after a restart, so a late report for a message of the
            // previous run is unlikely to match a new one.
            next_reference: fastrand::u8(..),
        }
    }

    /// Tags a request and builds its SDS-TL PDU.
    fn take(&mut self, request: SendRequest) -> (u64, Vec<u8>) {
        self.awaiting.retain(|_, tx| !tx.is_closed());
        let tag = self.next_tag;
        self.next_tag += 1;
        let reference = self.next_reference;
        self.next_reference = self.next_reference.wrapping_add(1);
        let pdu = sds::tl_text(reference, request.report, &request.text);
        let coding = if pdu.get(3) == Some(&26) {
            "ucs2"
        } else {
            "latin1"
        };
        self.pending.insert(
            tag,
            Pending {
                reference,
                coding,
                accepted: request.accepted,
                delivered: request.delivered,
            },
        );
        (tag, pdu)
    }

    fn outcome(&mut self, tag: u64, outcome: SendOutcome, counters: &Counters) {
        let Some(p) = self.pending.remove(&tag) else {
            return;
        };
        let result = match outcome {
            SendOutcome::Accepted { reference } => {
                metrics::inc(&counters.texts_sent);
                if let Some(tx) = p.delivered {
                    if self.awaiting.len() >= MAX_AWAITING {
                        self.awaiting.retain(|_, tx| !tx.is_closed());
                    }
                    self.awaiting.insert(p.reference, tx);
                }
                Ok(Accepted {
                    reference: p.reference,
                    radio_reference: reference,
                    coding: p.coding,
                })
            }
            SendOutcome::Refused { status } => Err(format!(
                "the radio refused the message (+CMGS status {status})"
            )),
            SendOutcome::Error { code: Some(c) } => {
                Err(format!("the radio refused the message (+CME ERROR: {c})"))
            }
            SendOutcome::Error { code: None } => {
                Err("the radio refused the message (ERROR)".to_string())
            }
            SendOutcome::NoAnswer => Err(format!(
                "the radio did not answer AT+CMGS within {} s",
                stationd_proto::tetra::session::COMMAND_TIMEOUT_MS / 1000
            )),
            SendOutcome::NotSent(why) => Err(format!("not sent: {why}")),
        };
        if result.is_err() {
            metrics::inc(&counters.texts_failed);
        }
        let _ = p.accepted.send(result);
    }

    /// The port went away: what the radio had not taken yet is failed.
    fn port_lost(&mut self, why: &str, counters: &Counters) {
        for (_, p) in self.pending.drain() {
            metrics::inc(&counters.texts_failed);
            let _ = p
                .accepted
                .send(Err(format!("not sent: the radio's port went away ({why})")));
        }
    }
}

/// Runs until shutdown: open, initialise, poll, report, send; reopen with backoff when the
/// port goes away.
async fn run(d: TetraDevice, ctx: DeviceContext, links: Arc<RadioLinks>) {
    let DeviceContext {
        sink,
        shutdown,
        board,
        metrics,
        ..
    } = ctx;
    let counters = Counters::new(&metrics, &d.id);
    let (tx, mut requests) = mpsc::channel::<SendRequest>(16);
    links.attach(&d.id, tx, &d.radios);
    let mut reporter = Reporter::new(
        &d.id,
        d.radios.clone(),
        d.emergency_statuses.clone(),
        d.signal_step_db,
    );
    let mut sends = Sends::new();
    let started = Instant::now();
    let now_ms = move || started.elapsed().as_millis() as u64;
    let mut reopen = serial::reopener();
    let mut open_error_logged = false;
    loop {
        match serial::open(&d.line) {
            Ok(port) => {
                tracing::info!(event = "device.port_opened", device_id = %d.id, driver = "tetra", path = %d.line.path.display(), baud = d.line.baud, "serial port open; initialising the radio");
                open_error_logged = false;
                reopen.reset();
                let mut link = Link {
                    d: &d,
                    sink: &sink,
                    board: &board,
                    counters: &counters,
                    reporter: &mut reporter,
                    sends: &mut sends,
                    online: false,
                    failing: HashSet::new(),
                    unreadable: 0,
                };
                let lost = match link.serve(port, &mut requests, &shutdown, &now_ms).await {
                    Ended::Shutdown => return,
                    Ended::SinkClosed => return,
                    Ended::Lost(why) => why,
                };
                tracing::warn!(event = "device.port_lost", device_id = %d.id, driver = "tetra", path = %d.line.path.display(), error = %lost, "the radio's serial port went away; will reopen");
                let was_online = link.online;
                reporter.reset();
                sends.port_lost(&lost, &counters);
                if was_online {
                    let ev = health(
                        &d.id,
                        "device.offline",
                        json!({"driver": "tetra", "reason": "port closed"}),
                    );
                    if sink.send(ev).await.is_err() {
                        return;
                    }
                }
                board.set_state(&d.id, "offline", Some(&format!("port closed: {lost}")));
            }
            Err(e) => {
                board.set_state(
                    &d.id,
                    "offline",
                    Some(&format!("cannot open {}: {e}", d.line.path.display())),
                );
                if !open_error_logged {
                    tracing::warn!(event = "device.open_failed", device_id = %d.id, driver = "tetra", path = %d.line.path.display(), error = %e, "cannot open the radio's serial port; retrying (check the cable, the path and the dialout group)");
                    open_error_logged = true;
                }
            }
        }
        // Waiting to reopen: a text asked for now fails at once rather than waiting.
        let sleep = tokio::time::sleep(reopen.next_delay());
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                Some(r) = requests.recv() => {
                    metrics::inc(&counters.texts_failed);
                    let _ = r.accepted.send(Err(format!(
                        "not sent: the radio's port {} is not open", d.line.path.display()
                    )));
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

enum Ended {
    Shutdown,
    SinkClosed,
    Lost(String),
}

/// One open port: the session, and what it reports.
struct Link<'a> {
    d: &'a TetraDevice,
    sink: &'a DeviceSink,
    board: &'a crate::board::Board,
    counters: &'a Counters,
    reporter: &'a mut Reporter,
    sends: &'a mut Sends,
    /// The init sequence went through since the port opened (and the radio still answers).
    online: bool,
    /// Commands seen failing on this port (logged once each: a mains radio fails `AT+CBC?`
    /// at every poll).
    failing: HashSet<String>,
    unreadable: u64,
}

/// What woke the loop.
enum Step {
    Read(std::io::Result<usize>),
    Tick,
    Request(SendRequest),
    Shutdown,
}

impl Link<'_> {
    async fn serve(
        &mut self,
        mut port: tokio_serial::SerialStream,
        requests: &mut mpsc::Receiver<SendRequest>,
        shutdown: &tokio_util::sync::CancellationToken,
        now_ms: &impl Fn() -> u64,
    ) -> Ended {
        let id = &self.d.id;
        self.board
            .set_state(id, "initialising", Some("sending the init sequence"));
        let (mut session, outputs) =
            RadioSession::new(now_ms(), self.d.poll_s.saturating_mul(1000));
        let mut decoder = PeiDecoder::new();
        let mut buf = [0u8; 1024];
        let mut outputs = outputs;
        loop {
            if let Some(end) = self
                .handle(&mut port, std::mem::take(&mut outputs), now_ms)
                .await
            {
                return end;
            }
            let wait = session.deadline().saturating_sub(now_ms()).min(3_600_000);
            let step = tokio::select! {
                r = port.read(&mut buf) => Step::Read(r),
                _ = tokio::time::sleep(Duration::from_millis(wait)) => Step::Tick,
                Some(r) = requests.recv() => Step::Request(r),
                _ = shutdown.cancelled() => Step::Shutdown,
            };
            let now = now_ms();
            match step {
                Step::Shutdown => return Ended::Shutdown,
                Step::Read(Ok(0)) => return Ended::Lost("end of file".into()),
                Step::Read(Err(e)) => return Ended::Lost(e.to_string()),
                Step::Read(Ok(n)) => {
                    self.board.seen(id);
                    let before = decoder.oversized;
                    decoder.push(&buf[..n], |line| {
                        metrics::inc(&self.counters.lines);
                        outputs.extend(session.on_line(line, now));
                    });
                    if decoder.oversized > before {
                        metrics::inc(&self.counters.lines_oversized);
                        tracing::warn!(event = "tetra.line_oversized", device_id = %id, driver = "tetra", max_bytes = stationd_proto::tetra::pei::MAX_LINE, "dropped an over-long line from the radio (garbage on the serial line?)");
                    }
                }
                Step::Tick => outputs.extend(session.tick(now)),
                Step::Request(r) => {
                    let to = r.to.clone();
                    let (tag, pdu) = self.sends.take(r);
                    outputs.extend(session.send_sds(tag, &to, &pdu, now));
                }
            }
        }
    }

    /// Carries out what the session asked for. Some(end) when the port or the outbox is gone.
    async fn handle(
        &mut self,
        port: &mut tokio_serial::SerialStream,
        outputs: Vec<Output>,
        now_ms: &impl Fn() -> u64,
    ) -> Option<Ended> {
        let id = self.d.id.clone();
        {
            for output in outputs {
                match output {
                    Output::Write(bytes) => {
                        if let Err(e) = port.write_all(&bytes).await {
                            return Some(Ended::Lost(e.to_string()));
                        }
                    }
                    Output::Ready => {
                        tracing::info!(event = "tetra.ready", device_id = %id, driver = "tetra", "the radio is initialised");
                        self.online = true;
                        self.reporter.reset();
                        let ev = health(&id, "device.online", json!({"driver": "tetra"}));
                        if self.sink.send(ev).await.is_err() {
                            return Some(Ended::SinkClosed);
                        }
                    }
                    Output::NotAnswering => {
                        metrics::inc(&self.counters.not_answering);
                        tracing::warn!(event = "tetra.not_answering", device_id = %id, driver = "tetra", "the radio stopped answering; initialising it again (is it switched on and in PEI mode?)");
                        self.reporter.reset();
                        if std::mem::take(&mut self.online) {
                            let ev = health(
                                &id,
                                "device.offline",
                                json!({"driver": "tetra", "reason": "not answering"}),
                            );
                            if self.sink.send(ev).await.is_err() {
                                return Some(Ended::SinkClosed);
                            }
                        }
                        self.board.set_state(
                            &id,
                            "initialising",
                            Some("not answering; sending the init sequence again"),
                        );
                    }
                    Output::CommandFailed { command, code } => {
                        metrics::inc(&self.counters.commands_failed);
                        if self.failing.insert(command.clone()) {
                            tracing::warn!(event = "tetra.command_failed", device_id = %id, driver = "tetra", command = %command, code = ?code, "the radio refused or did not answer a command (logged once per command while the port is open)");
                        }
                    }
                    Output::Polled => {
                        let outs = self.reporter.polled();
                        if let Some(end) = self.emit(outs).await {
                            return Some(end);
                        }
                    }
                    Output::Report(line) => {
                        if matches!(line, stationd_proto::tetra::pei::Line::Sds { .. }) {
                            metrics::inc(&self.counters.sds_received);
                        }
                        let outs = self.reporter.line(line, now_ms());
                        if let Some(end) = self.emit(outs).await {
                            return Some(end);
                        }
                    }
                    Output::Sent { tag, outcome } => {
                        self.sends.outcome(tag, outcome, self.counters);
                    }
                }
            }
        }
        None
    }

    async fn emit(&mut self, outs: Vec<Out>) -> Option<Ended> {
        let id = &self.d.id;
        for out in outs {
            match out {
                Out::Event {
                    device,
                    kind,
                    prio,
                    data,
                } => {
                    if kind == "radio.emergency" {
                        metrics::inc(&self.counters.emergencies);
                        tracing::warn!(event = "radio.emergency", device_id = %device, driver = "tetra", via = %id, data = %data, "EMERGENCY from a radio");
                    }
                    let ev = Event::new(&device, kind, prio, crate::clock::now(), false, data);
                    if self.sink.send(ev).await.is_err() {
                        return Some(Ended::SinkClosed);
                    }
                }
                Out::Delivery {
                    reference,
                    status,
                    from,
                } => match sds::delivered(status) {
                    // Stored by the network, delivery pending: wait for the final report.
                    None => {
                        tracing::info!(event = "radio.text_stored", device_id = %id, driver = "tetra", reference, status, "a message is stored by the network, not delivered yet")
                    }
                    Some(_) => match self.sends.awaiting.remove(&reference) {
                        Some(tx) => {
                            let _ = tx.send(status);
                        }
                        None => {
                            tracing::debug!(event = "radio.report_unmatched", device_id = %id, driver = "tetra", reference, status, from = ?from, "a delivery report for no message waiting for one")
                        }
                    },
                },
                Out::Detail(detail) => self.board.set_state(id, "online", Some(&detail)),
                Out::Unreadable(why) => {
                    metrics::inc(&self.counters.sds_unreadable);
                    self.unreadable += 1;
                    if self.unreadable <= LOG_FIRST_UNREADABLE
                        || self.unreadable.is_multiple_of(1000)
                    {
                        tracing::warn!(event = "tetra.sds_unreadable", device_id = %id, driver = "tetra", reason = %why, "skipped an SDS the station cannot read");
                    }
                }
            }
        }
        None
    }
}

fn health(device: &str, kind: &str, data: serde_json::Value) -> Event {
    Event::new(
        device,
        kind,
        Priority::Event,
        crate::clock::now(),
        false,
        data,
    )
}
