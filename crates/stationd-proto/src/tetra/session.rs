//! The conversation with one base radio over its PEI, without I/O: the init sequence, the
//! periodic polls, one AT command in flight with a timeout and a queue behind it, unsolicited
//! result codes taken between commands, SDS sends with their outcome, and a radio that stops
//! answering detected and initialised again. Lines come in as [`Line`]s (from
//! [`super::pei::PeiDecoder`]), time as monotonic milliseconds; bytes to write and what
//! happened go out as [`Output`]s.
//!
//! The init sequence follows SvxLink's `initPei` and tetra-pei (PROTOCOLS notes): echo off,
//! TMO, the PEI service profiles for text, status and LIP, SDS-TL routed to the PEI.

use super::pei::Line;
use std::collections::VecDeque;

/// The commands that bring a radio to a known state, in order.
pub const INIT: &[&str] = &[
    "ATE0",
    "AT+CTOM=0",
    "AT+CTSP=1,3,130",
    "AT+CTSP=1,2,20",
    "AT+CTSP=1,3,10",
    "AT+CTSDS=12,0,0,0,1",
];
/// What is asked at every poll: signal, talkgroup, own identity, battery.
pub const POLL: &[&str] = &["AT+CSQ?", "AT+CTGS?", "AT+CNUMF?", "AT+CBC?"];
/// How long a command may wait for its final `OK` / `ERROR`.
pub const COMMAND_TIMEOUT_MS: u64 = 5_000;
/// Commands in a row without an answer after which the radio is taken as hung.
pub const MAX_TIMEOUTS: u32 = 3;
/// The most user data bits an SDS-TL message carries (EN 300 392-2: 2047; a radio may take
/// fewer, which it says by refusing the send).
pub const MAX_SDS_BITS: usize = 2047;
/// Commands waiting behind the one in flight, at most; more are refused at once.
pub const MAX_QUEUE: usize = 64;

/// What the session wants done, or wants known.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Bytes for the serial port.
    Write(Vec<u8>),
    /// The init sequence went through: the radio is ready.
    Ready,
    /// The radio stopped answering (or refused the init): it is being initialised again.
    NotAnswering,
    /// A command failed: which, and the radio's error code if it gave one.
    CommandFailed { command: String, code: Option<u16> },
    /// A line that is not the answer to a command: an unsolicited report, or a query's result
    /// (`+CSQ`, `+CTGS`…) for the driver to turn into events.
    Report(Line),
    /// The poll's last query was answered (or failed): the driver has the round's results.
    Polled,
    /// An SDS queued with [`RadioSession::send_sds`] came out.
    Sent { tag: u64, outcome: SendOutcome },
}

/// How an SDS send came out at the radio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The radio took it (`+CMGS` then `OK`), with the reference it gave, if any.
    Accepted { reference: Option<u16> },
    /// The radio answered `+CMGS` with a failure status (5 and above).
    Refused { status: u16 },
    /// `ERROR` / `+CME ERROR: n`.
    Error { code: Option<u16> },
    /// No final answer within [`COMMAND_TIMEOUT_MS`].
    NoAnswer,
    /// Never sent: the radio stopped answering and was initialised again, or the queue was full.
    NotSent(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Sending `INIT[i]`.
    Init(usize),
    Ready,
}

/// Why a command is on the wire: what its final answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Init,
    Poll { last: bool },
    Plain,
    Sds { tag: u64 },
}

#[derive(Debug)]
struct Queued {
    command: String,
    /// Written after the command line (an SDS's hex PDU and Ctrl-Z).
    body: Option<Vec<u8>>,
    job: Job,
}

#[derive(Debug)]
struct InFlight {
    queued: Queued,
    until: u64,
    /// A `+CMGS` seen for the SDS in flight: (status, reference).
    cmgs: Option<(Option<u16>, Option<u16>)>,
}

#[derive(Debug)]
pub struct RadioSession {
    phase: Phase,
    queue: VecDeque<Queued>,
    in_flight: Option<InFlight>,
    timeouts: u32,
    poll_every_ms: u64,
    next_poll: u64,
}

impl RadioSession {
    /// A session that starts initialising at `now`, and polls every `poll_every_ms` once ready.
    pub fn new(now: u64, poll_every_ms: u64) -> (RadioSession, Vec<Output>) {
        let mut s = RadioSession {
            phase: Phase::Init(0),
            queue: VecDeque::new(),
            in_flight: None,
            timeouts: 0,
            poll_every_ms: poll_every_ms.max(1_000),
            next_poll: u64::MAX,
        };
        let mut out = Vec::new();
        s.send(init_step(0), now, &mut out);
        (s, out)
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Queues a command; it goes out when nothing else is in flight and the radio is ready.
    pub fn command(&mut self, command: &str, now: u64) -> Vec<Output> {
        self.enqueue(
            Queued {
                command: command.to_string(),
                body: None,
                job: Job::Plain,
            },
            now,
        )
    }

    /// Queues an SDS to `dest` (an ISSI or a group's GSSI) with user data `pdu` (AI service
    /// 12, SDS-TL): `AT+CMGS=<dest>,<bits>`, the PDU in hex, Ctrl-Z. Its outcome comes back
    /// as [`Output::Sent`] with `tag`.
    pub fn send_sds(&mut self, tag: u64, dest: &str, pdu: &[u8], now: u64) -> Vec<Output> {
        let bits = pdu.len() * 8;
        if bits > MAX_SDS_BITS || pdu.is_empty() || dest.is_empty() {
            return vec![Output::Sent {
                tag,
                outcome: SendOutcome::NotSent("the message is empty or longer than an SDS"),
            }];
        }
        let mut body: Vec<u8> = pdu
            .iter()
            .flat_map(|b| format!("{b:02X}").into_bytes())
            .collect();
        body.push(0x1A);
        self.enqueue(
            Queued {
                command: format!("AT+CMGS={dest},{bits}"),
                body: Some(body),
                job: Job::Sds { tag },
            },
            now,
        )
    }

    fn enqueue(&mut self, queued: Queued, now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.queue.len() >= MAX_QUEUE {
            refuse(queued, "the radio's command queue is full", &mut out);
            return out;
        }
        self.queue.push_back(queued);
        self.next(now, &mut out);
        out
    }

    /// When the session wants [`tick`](Self::tick) called at the latest: the timeout of the
    /// command on the wire, or else the next poll. (A poll falling due while a command is in
    /// flight waits for its answer; counting it here would have the driver wake in a loop.)
    pub fn deadline(&self) -> u64 {
        match &self.in_flight {
            Some(f) => f.until,
            None => self.next_poll,
        }
    }

    pub fn on_line(&mut self, line: Line, now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        match line {
            Line::Ok | Line::Error(_) if self.in_flight.is_some() => {
                let flight = self.in_flight.take().expect("checked");
                self.timeouts = 0;
                self.finished(flight, &line, now, &mut out);
                if !matches!(self.phase, Phase::Ready) {
                    return out;
                }
            }
            Line::SdsSent { status, reference }
                if matches!(
                    self.in_flight,
                    Some(InFlight {
                        queued: Queued {
                            job: Job::Sds { .. },
                            ..
                        },
                        ..
                    })
                ) =>
            {
                if let Some(f) = self.in_flight.as_mut() {
                    f.cmgs = Some((status, reference));
                }
            }
            // Our own echo (before ATE0 took effect) and stray finals are not news.
            Line::Echo(_) | Line::Ok | Line::Error(_) => {}
            other => out.push(Output::Report(other)),
        }
        self.next(now, &mut out);
        out
    }

    /// The command in flight got its final answer (`OK` or an error).
    fn finished(&mut self, flight: InFlight, line: &Line, now: u64, out: &mut Vec<Output>) {
        let code = match line {
            Line::Error(code) => Some(*code),
            _ => None,
        };
        let InFlight { queued, cmgs, .. } = flight;
        match queued.job {
            Job::Sds { tag } => {
                let outcome = match (code, cmgs) {
                    (Some(code), _) => SendOutcome::Error { code },
                    (None, Some((Some(status), _))) if status >= 5 => {
                        SendOutcome::Refused { status }
                    }
                    (None, Some((_, reference))) => SendOutcome::Accepted { reference },
                    (None, None) => SendOutcome::Accepted { reference: None },
                };
                out.push(Output::Sent { tag, outcome });
                return;
            }
            _ => {
                if let Some(code) = code {
                    out.push(Output::CommandFailed {
                        command: queued.command.clone(),
                        code,
                    });
                }
            }
        }
        match (queued.job, &self.phase) {
            (Job::Init, Phase::Init(i)) => {
                // An init step the radio refuses is reported and skipped: radios differ in
                // the profiles they support.
                let i = *i;
                if i + 1 < INIT.len() {
                    self.phase = Phase::Init(i + 1);
                    self.send(init_step(i + 1), now, out);
                } else {
                    self.phase = Phase::Ready;
                    self.next_poll = now;
                    out.push(Output::Ready);
                }
            }
            (Job::Poll { last: true }, _) => out.push(Output::Polled),
            _ => {}
        }
    }

    pub fn tick(&mut self, now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.in_flight.as_ref().is_some_and(|f| now >= f.until) {
            let flight = self.in_flight.take().expect("checked");
            self.timeouts += 1;
            match flight.queued.job {
                Job::Sds { tag } => out.push(Output::Sent {
                    tag,
                    outcome: SendOutcome::NoAnswer,
                }),
                job => {
                    out.push(Output::CommandFailed {
                        command: flight.queued.command,
                        code: None,
                    });
                    if job == (Job::Poll { last: true }) {
                        out.push(Output::Polled);
                    }
                }
            }
            if self.timeouts >= MAX_TIMEOUTS {
                self.timeouts = 0;
                for queued in std::mem::take(&mut self.queue) {
                    refuse(
                        queued,
                        "the radio stopped answering and is being initialised again",
                        &mut out,
                    );
                }
                self.phase = Phase::Init(0);
                self.next_poll = u64::MAX;
                out.push(Output::NotAnswering);
                self.send(init_step(0), now, &mut out);
                return out;
            }
            if let Phase::Init(i) = self.phase {
                // An init step without an answer is skipped like a refused one.
                if i + 1 < INIT.len() {
                    self.phase = Phase::Init(i + 1);
                    self.send(init_step(i + 1), now, &mut out);
                    return out;
                }
                self.phase = Phase::Ready;
                self.next_poll = now;
                out.push(Output::Ready);
            }
        }
        self.next(now, &mut out);
        out
    }

    /// Starts the next command: the queue, or the poll when it is due.
    fn next(&mut self, now: u64, out: &mut Vec<Output>) {
        if self.in_flight.is_some() || self.phase != Phase::Ready {
            return;
        }
        if now >= self.next_poll {
            self.queue
                .extend(POLL.iter().enumerate().map(|(i, c)| Queued {
                    command: c.to_string(),
                    body: None,
                    job: Job::Poll {
                        last: i + 1 == POLL.len(),
                    },
                }));
            self.next_poll = now + self.poll_every_ms;
        }
        if let Some(queued) = self.queue.pop_front() {
            self.send(queued, now, out);
        }
    }

    fn send(&mut self, queued: Queued, now: u64, out: &mut Vec<Output>) {
        let mut bytes = queued.command.clone().into_bytes();
        bytes.extend(b"\r\n");
        if let Some(body) = &queued.body {
            bytes.extend(body);
        }
        out.push(Output::Write(bytes));
        self.in_flight = Some(InFlight {
            queued,
            until: now + COMMAND_TIMEOUT_MS,
            cmgs: None,
        });
    }
}

fn init_step(i: usize) -> Queued {
    Queued {
        command: INIT[i].to_string(),
        body: None,
        job: Job::Init,
    }
}

/// A command that will not be sent: an SDS says so to its sender; others are dropped.
fn refuse(queued: Queued, why: &'static str, out: &mut Vec<Output>) {
    if let Job::Sds { tag } = queued.job {
        out.push(Output::Sent {
            tag,
            outcome: SendOutcome::NotSent(why),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Write(b) => Some(String::from_utf8_lossy(b).trim_end().to_string()),
                _ => None,
            })
            .collect()
    }

    /// Answers OK to every command until ready; returns the session at `now`.
    fn ready(now: u64) -> RadioSession {
        let (mut s, out) = RadioSession::new(now, 30_000);
        assert_eq!(writes(&out), ["ATE0"]);
        let mut sent = vec!["ATE0".to_string()];
        while !s.is_ready() {
            let out = s.on_line(Line::Ok, now);
            sent.extend(writes(&out));
        }
        assert_eq!(&sent[..INIT.len()], INIT);
        s
    }

    #[test]
    fn init_runs_in_order_one_command_at_a_time_then_polls() {
        let mut s = ready(0);
        // Ready: the first poll goes out at once, one command at a time.
        let out = s.tick(0);
        assert!(
            writes(&out).is_empty(),
            "the poll's first command went out with Ready"
        );
        let mut polled = Vec::new();
        for _ in 0..POLL.len() {
            let out = s.on_line(Line::Ok, 10);
            polled.extend(writes(&out));
        }
        assert_eq!(polled.len(), POLL.len() - 1);
        assert!(
            writes(&s.tick(29_999)).is_empty(),
            "not before the interval"
        );
        assert_eq!(writes(&s.tick(30_000)), [POLL[0]]);
    }

    #[test]
    fn unsolicited_reports_between_commands_and_echo_are_told_apart() {
        let (mut s, _) = RadioSession::new(0, 30_000);
        let out = s.on_line(Line::Echo("ATE0".into()), 1);
        assert!(out.is_empty(), "the echo is not the answer");
        let report = Line::Talkgroup("1001".into());
        assert_eq!(s.on_line(report.clone(), 2), [Output::Report(report)]);
        // The OK still answers ATE0: the next init step follows.
        assert_eq!(writes(&s.on_line(Line::Ok, 3)), [INIT[1]]);
    }

    #[test]
    fn a_refused_init_step_is_reported_and_skipped() {
        let (mut s, _) = RadioSession::new(0, 30_000);
        s.on_line(Line::Ok, 1);
        let out = s.on_line(Line::Error(Some(4)), 2);
        assert_eq!(
            out[0],
            Output::CommandFailed {
                command: INIT[1].into(),
                code: Some(4)
            }
        );
        assert_eq!(writes(&out), [INIT[2]]);
    }

    #[test]
    fn queued_commands_wait_their_turn_and_a_hung_radio_is_initialised_again() {
        let mut s = ready(0);
        let _ = s.tick(0); // the poll's first command is in flight
        assert!(
            writes(&s.command("AT+CMGS=1001,104", 1)).is_empty(),
            "behind the poll"
        );
        // Three commands in a row without an answer: the radio is taken as hung.
        let mut now = 1;
        let mut hung = false;
        for _ in 0..MAX_TIMEOUTS {
            now = s.deadline();
            let out = s.tick(now);
            hung |= out.contains(&Output::NotAnswering);
        }
        assert!(hung);
        assert!(!s.is_ready());
        assert_eq!(
            s.deadline(),
            now + COMMAND_TIMEOUT_MS,
            "ATE0 again, with its timeout"
        );
    }

    #[test]
    fn an_sds_goes_out_as_cmgs_hex_and_ctrl_z_and_its_outcome_is_told() {
        let mut s = ready(0);
        // Let the first poll round finish; its last answer says Polled.
        let mut polled = false;
        for _ in 0..POLL.len() {
            polled |= s.on_line(Line::Ok, 1).contains(&Output::Polled);
        }
        assert!(polled);
        let out = s.send_sds(7, "1001", &[0x82, 0x04, 0x01, 0x01, b'h', b'i'], 2);
        assert_eq!(
            out,
            [Output::Write(
                b"AT+CMGS=1001,48\r\n820401016869\x1a".to_vec()
            )]
        );
        assert!(s
            .on_line(
                Line::SdsSent {
                    status: Some(4),
                    reference: Some(65)
                },
                3
            )
            .is_empty());
        assert_eq!(
            s.on_line(Line::Ok, 4),
            [Output::Sent {
                tag: 7,
                outcome: SendOutcome::Accepted {
                    reference: Some(65)
                }
            }]
        );
        // Refused by status, refused by error, never answered.
        s.send_sds(8, "1001", b"x", 5);
        s.on_line(
            Line::SdsSent {
                status: Some(5),
                reference: None,
            },
            6,
        );
        assert!(s.on_line(Line::Ok, 7).contains(&Output::Sent {
            tag: 8,
            outcome: SendOutcome::Refused { status: 5 }
        }));
        s.send_sds(9, "1001", b"x", 8);
        assert!(s.on_line(Line::Error(Some(35)), 9).contains(&Output::Sent {
            tag: 9,
            outcome: SendOutcome::Error { code: Some(35) }
        }));
        s.send_sds(10, "1001", b"x", 10);
        assert!(s.tick(10 + COMMAND_TIMEOUT_MS).contains(&Output::Sent {
            tag: 10,
            outcome: SendOutcome::NoAnswer
        }));
        // Too long for an SDS: refused before anything is written.
        assert!(matches!(
            s.send_sds(11, "1001", &[0u8; 256], 11)[..],
            [Output::Sent {
                tag: 11,
                outcome: SendOutcome::NotSent(_)
            }]
        ));
    }

    #[test]
    fn sends_queued_behind_a_hung_radio_are_told_they_were_not_sent() {
        let mut s = ready(0);
        s.send_sds(1, "1001", b"x", 1);
        s.send_sds(2, "1002", b"y", 1);
        let mut out = Vec::new();
        for _ in 0..MAX_TIMEOUTS {
            let now = s.deadline();
            out.extend(s.tick(now));
        }
        assert!(out.contains(&Output::NotAnswering));
        let not_sent = out
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Output::Sent {
                        outcome: SendOutcome::NotSent(_) | SendOutcome::NoAnswer,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(not_sent, 2, "{out:?}");
    }

    #[test]
    fn an_init_step_that_times_out_is_skipped_not_waited_on_forever() {
        let (mut s, _) = RadioSession::new(0, 30_000);
        let out = s.tick(COMMAND_TIMEOUT_MS);
        assert_eq!(writes(&out), [INIT[1]]);
    }

    #[test]
    fn a_poll_due_while_a_command_is_in_flight_does_not_make_the_deadline_pass() {
        // Found by the fuzzer: the deadline was the poll's, already past, while an SDS waited
        // for its answer; the driver would have woken in a loop until the answer came.
        let mut s = ready(0);
        for _ in 0..POLL.len() {
            s.on_line(Line::Ok, 0);
        }
        s.send_sds(1, "1001", b"x", 29_000);
        assert!(s.tick(30_000).is_empty(), "the poll is due but waits");
        assert_eq!(s.deadline(), 29_000 + COMMAND_TIMEOUT_MS);
        // The answer comes: the poll goes out at once.
        let out = s.on_line(Line::Ok, 31_000);
        assert_eq!(writes(&out), [POLL[0]]);
    }
}
