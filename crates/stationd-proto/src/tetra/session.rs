//! The conversation with one base radio over its PEI, without I/O: the init sequence, the
//! periodic polls, one AT command in flight with a timeout and a queue behind it, unsolicited
//! result codes taken between commands, and a radio that stops answering detected and
//! initialised again. Lines come in as [`Line`]s (from [`super::pei::PeiDecoder`]), time as
//! monotonic milliseconds; bytes to write and what happened go out as [`Output`]s.
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Sending `INIT[i]`.
    Init(usize),
    Ready,
}

#[derive(Debug)]
pub struct RadioSession {
    phase: Phase,
    queue: VecDeque<String>,
    /// The command on the wire and when it times out.
    in_flight: Option<(String, u64)>,
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
        s.send(INIT[0].to_string(), now, &mut out);
        (s, out)
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Queues a command (e.g. an SDS to send); it goes out when nothing else is in flight.
    pub fn command(&mut self, command: &str, now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        self.queue.push_back(command.to_string());
        self.next(now, &mut out);
        out
    }

    /// When the session wants [`tick`](Self::tick) called at the latest.
    pub fn deadline(&self) -> u64 {
        let timeout = self.in_flight.as_ref().map_or(u64::MAX, |(_, t)| *t);
        timeout.min(self.next_poll)
    }

    pub fn on_line(&mut self, line: Line, now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        match line {
            Line::Ok | Line::Error(_) if self.in_flight.is_some() => {
                let (command, _) = self.in_flight.take().expect("checked");
                self.timeouts = 0;
                if let Line::Error(code) = line {
                    out.push(Output::CommandFailed {
                        command: command.clone(),
                        code,
                    });
                }
                if let Phase::Init(i) = self.phase {
                    // An init step the radio refuses is reported and skipped: radios differ
                    // in the profiles they support.
                    if i + 1 < INIT.len() {
                        self.phase = Phase::Init(i + 1);
                        self.send(INIT[i + 1].to_string(), now, &mut out);
                        return out;
                    }
                    self.phase = Phase::Ready;
                    self.next_poll = now;
                    out.push(Output::Ready);
                }
            }
            // Our own echo (before ATE0 took effect) and stray finals are not news.
            Line::Echo(_) | Line::Ok | Line::Error(_) => {}
            other => out.push(Output::Report(other)),
        }
        self.next(now, &mut out);
        out
    }

    pub fn tick(&mut self, now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some((command, until)) = &self.in_flight {
            if now >= *until {
                let command = command.clone();
                self.in_flight = None;
                self.timeouts += 1;
                out.push(Output::CommandFailed {
                    command,
                    code: None,
                });
                if self.timeouts >= MAX_TIMEOUTS {
                    self.timeouts = 0;
                    self.queue.clear();
                    self.phase = Phase::Init(0);
                    self.next_poll = u64::MAX;
                    out.push(Output::NotAnswering);
                    self.send(INIT[0].to_string(), now, &mut out);
                    return out;
                }
            }
        }
        self.next(now, &mut out);
        out
    }

    /// Starts the next command: the init step, the queue, or the poll when it is due.
    fn next(&mut self, now: u64, out: &mut Vec<Output>) {
        if self.in_flight.is_some() || self.phase != Phase::Ready {
            return;
        }
        if now >= self.next_poll {
            self.queue.extend(POLL.iter().map(|c| c.to_string()));
            self.next_poll = now + self.poll_every_ms;
        }
        if let Some(command) = self.queue.pop_front() {
            self.send(command, now, out);
        }
    }

    fn send(&mut self, command: String, now: u64, out: &mut Vec<Output>) {
        let mut bytes = command.clone().into_bytes();
        bytes.extend(b"\r\n");
        out.push(Output::Write(bytes));
        self.in_flight = Some((command, now + COMMAND_TIMEOUT_MS));
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
}
