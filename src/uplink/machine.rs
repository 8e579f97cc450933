//! The uplink's decisions, without I/O: which broker to try and when, how long to wait after a
//! failed round, what to publish, when to read ahead from the outbox, when to hand acks to the
//! writer, and how to say goodbye at shutdown.
//!
//! The I/O loop in `mod.rs` tells it what happened ([`Note`], with the monotonic time in ms)
//! and carries out what it asks ([`Machine::poll_action`]), the way rumqttc keeps `state.rs`
//! apart from `eventloop.rs`. Time and randomness come in as parameters, so every decision is
//! tested below without a broker, a runtime or a clock: a test moves time by passing a larger
//! number.
//!
//! Phases: connecting to broker *i* (with a deadline for the CONNACK) → connected (a session:
//! the in-flight window of `state.rs`) → after a failure, the next broker at once, or after a
//! whole failed round (or a lost session) a full-jitter wait, then broker 0 again. Shutdown
//! while connected drains what is in flight (≤ 1.5 s), says offline (≤ 1 s) and disconnects;
//! in any other phase it stops at once.

use super::budget::{row_bytes, Budget};
use super::error::LinkError;
use super::state::SessionState;
use crate::backoff::{Backoff, Retry};
use crate::config::BrokerUrl;
use crate::outbox::{Lane, OutRow};
use std::collections::VecDeque;
use std::time::Duration;

/// How long a connection attempt may take before the next broker is tried.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// A session that lasted this long resets the backoff.
pub const STABLE_SESSION_MS: u64 = 30_000;
/// The retained state snapshots follow changes at most this often.
pub const STATE_INTERVAL_MS: u64 = 5_000;
/// At shutdown: how long to wait for in-flight PUBACKs, then for the offline status's.
const DRAIN_MS: u64 = 1_500;
const OFFLINE_MS: u64 = 1_000;

/// What happened, as the I/O loop saw it.
#[derive(Debug)]
pub enum Note {
    /// The broker accepted the connection.
    ConnAck,
    /// rumqttc handed a publish to the network with this packet id (in queue order).
    Sent(u16),
    PubAck(u16),
    /// An MQTT 5 broker answered the publish with this packet id with a failure reason code
    /// (`why`): it did not take the message. An outbox row refused stays in the outbox and
    /// the session ends with `why` (retried after the backoff, as after a lost link); a status
    /// or state message is let go (the next birth or snapshot publishes it again).
    Refused {
        pkid: u16,
        why: LinkError,
    },
    /// The read-ahead asked for by [`Action::Fetch`] with this id came back.
    Rows {
        fetch: u64,
        rows: Vec<(Lane, OutRow)>,
    },
    /// The writer committed something new.
    NewData,
    /// Publish the retained birth again (the `rebirth` command), and the state snapshots.
    Rebirth,
    /// Something the retained state snapshots show has changed (published at most every
    /// [`STATE_INTERVAL_MS`]).
    StateChanged,
    /// Publish the state snapshots now (the `state.devices` command).
    StateRequested,
    /// The attempt failed or the session ended.
    Lost(LinkError),
    Shutdown,
    /// Only time passed (a deadline may have been reached).
    Tick,
}

/// What the I/O loop must do, in this order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Open a fresh client (clean session) to this broker.
    Connect(BrokerUrl),
    /// The CONNACK came: the link is up (status, STATUS=, `historical` stops).
    Connected(BrokerUrl),
    /// Publish the retained birth / offline status on `P/status`.
    SayOnline(BrokerUrl),
    SayOffline,
    /// Publish the retained state snapshots (`P/state/devices`).
    PublishState,
    /// Publish this outbox row (QoS 1).
    Publish(OutRow),
    /// Read up to `limit` rows after these per-lane cursors, in the background; answer with
    /// [`Note::Rows`] under the same `fetch` id.
    Fetch {
        fetch: u64,
        cursors: [u64; 3],
        limit: usize,
        /// Whether to read the backlog lane too (not while a window of it waits for the
        /// replay cap).
        backlog: bool,
    },
    /// These seqs were acknowledged by the broker: the writer deletes them.
    Ack(Vec<u64>),
    /// The attempt or session failed: drop the connection. `connected_for` is how long the
    /// session lasted, None when it never connected.
    Failed {
        broker: BrokerUrl,
        error: LinkError,
        connected_for: Option<Duration>,
    },
    /// A whole round failed (or a session was lost): nothing happens for this long.
    Wait(Duration),
    /// Clean end of a session at shutdown: link down, acks flushed, DISCONNECT sent.
    Disconnect,
    /// The uplink is done.
    Stop,
}

#[derive(Debug)]
enum Stopping {
    /// Waiting for in-flight PUBACKs.
    Draining { until: u64 },
    /// The offline status is out; waiting for its PUBACK.
    SayingOffline { until: u64 },
}

#[derive(Debug)]
enum Phase {
    Connecting {
        broker: usize,
        deadline: u64,
    },
    Connected {
        broker: usize,
        since: u64,
        /// (boxed: by far the largest phase)
        session: Box<SessionState>,
        stopping: Option<Stopping>,
    },
    Waiting {
        until: u64,
    },
    Stopped,
}

/// A source of randomness for the backoff's jitter: returns a value in `0..=n`.
pub type Random = Box<dyn FnMut(u64) -> u64 + Send>;

pub struct Machine {
    brokers: Vec<BrokerUrl>,
    /// QoS 1 publishes in flight; one more window may wait in rumqttc's queue.
    window: usize,
    rounds: Retry,
    random: Random,
    phase: Phase,
    /// Actions decided by a note, handed out before anything derived from the session.
    queue: VecDeque<Action>,
    /// Read-aheads asked for so far: their ids.
    fetches: u64,
    /// Whether this uplink publishes retained state snapshots.
    state: bool,
    /// When they were last published in this session, and when they are due again.
    state_sent: Option<u64>,
    state_due: Option<u64>,
    /// The backlog replay's bandwidth cap on this connection (None: uncapped).
    replay_budget: Option<Budget>,
    /// The latest time a note came with (what `poll_action` decides at).
    now: u64,
}

impl Machine {
    /// Starts connecting to the first broker at `now`.
    pub fn new(
        brokers: Vec<BrokerUrl>,
        window: usize,
        backoff: Backoff,
        random: Random,
        now: u64,
    ) -> Machine {
        assert!(
            !brokers.is_empty(),
            "the config requires at least one broker"
        );
        let mut m = Machine {
            brokers,
            window: window.max(1),
            rounds: Retry::new(backoff, true),
            random,
            phase: Phase::Stopped,
            queue: VecDeque::new(),
            fetches: 0,
            state: false,
            state_sent: None,
            state_due: None,
            replay_budget: None,
            now,
        };
        m.connect(0, now);
        m
    }

    /// Also publish the retained state snapshots: on every connection, after a change (at most
    /// every [`STATE_INTERVAL_MS`]), and when asked.
    pub fn with_state(mut self) -> Machine {
        self.state = true;
        self
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected { .. })
    }

    /// Publishes queued to rumqttc or awaiting PUBACK.
    pub fn in_window(&self) -> usize {
        match &self.phase {
            Phase::Connected { session, .. } => session.in_window(),
            _ => 0,
        }
    }

    /// Failed rounds in a row so far.
    pub fn attempts(&self) -> u32 {
        self.rounds.attempts()
    }

    /// When the machine wants a [`Note::Tick`] at the latest, even if nothing happens.
    pub fn deadline(&self) -> Option<u64> {
        match &self.phase {
            Phase::Connecting { deadline, .. } => Some(*deadline),
            Phase::Waiting { until } => Some(*until),
            Phase::Connected {
                stopping: Some(Stopping::Draining { until } | Stopping::SayingOffline { until }),
                ..
            } => Some(*until),
            Phase::Connected {
                stopping: None,
                session,
                ..
            } => {
                // Backlog rows waiting for the replay cap: wake when it allows the next.
                let replay = self
                    .replay_budget
                    .as_ref()
                    .filter(|_| session.backlog_ready > 0)
                    .and_then(Budget::reopens_at);
                match (self.state_due, replay) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Phase::Stopped => None,
        }
    }

    /// Caps the backlog's replay on the connection just made at `bytes_per_s` (None: no cap).
    /// The I/O loop calls it on [`Action::Connected`], once it knows the link.
    pub fn set_replay_cap(&mut self, bytes_per_s: Option<u64>, now: u64) {
        self.replay_budget = bytes_per_s.map(|rate| Budget::new(rate, now));
    }

    pub fn on(&mut self, note: Note, now: u64) {
        self.now = self.now.max(now);
        match note {
            Note::ConnAck => {
                if let Phase::Connecting { broker, .. } = self.phase {
                    let url = self.brokers[broker].clone();
                    let mut session = SessionState::default();
                    // The retained birth goes out before any row.
                    session.queued.push_back(None);
                    self.phase = Phase::Connected {
                        broker,
                        since: now,
                        session: Box::new(session),
                        stopping: None,
                    };
                    self.queue.push_back(Action::Connected(url.clone()));
                    self.queue.push_back(Action::SayOnline(url));
                    self.state_sent = None;
                    self.state_due = None;
                    self.publish_state(now);
                }
            }
            Note::Sent(pkid) => {
                if let Some(s) = self.session() {
                    s.sent(pkid);
                }
            }
            Note::PubAck(pkid) => {
                if let Some(s) = self.session() {
                    s.acked(pkid);
                }
            }
            Note::Refused { pkid, why } => {
                if let Some(Some(seq)) = self.session().map(|s| s.refused(pkid)) {
                    let error = why.reworded(|text| {
                        format!("the broker refused seq {seq}, which stays in the outbox: {text}")
                    });
                    self.fail(error, now);
                }
            }
            Note::Rows { fetch, rows } => {
                let window = self.window;
                // Rows read for a session that has ended since are not this one's: it reads
                // the outbox from the start with its own cursors.
                if let Some(s) = self.session().filter(|s| s.reading == Some(fetch)) {
                    s.reading = None;
                    // A commit notified while the read ran may not be in it: read again.
                    s.maybe_more = rows.len() >= window || s.renotified;
                    for (lane, row) in rows {
                        s.cursors[lane as usize] = row.seq;
                        if lane == Lane::Backlog {
                            s.backlog_ready += 1;
                        }
                        s.ready.push_back((lane, row));
                    }
                }
            }
            Note::NewData => {
                if let Some(s) = self.session() {
                    s.maybe_more = true;
                    s.renotified = true;
                }
            }
            Note::Rebirth => {
                if let Phase::Connected {
                    broker,
                    session,
                    stopping: None,
                    ..
                } = &mut self.phase
                {
                    session.queued.push_back(None);
                    self.queue
                        .push_back(Action::SayOnline(self.brokers[*broker].clone()));
                    self.publish_state(now);
                }
            }
            Note::StateRequested => {
                if self.accepting() {
                    self.publish_state(now);
                }
            }
            Note::StateChanged => {
                if self.accepting() && self.state_due.is_none() {
                    let next = self.state_sent.map_or(now, |sent| sent + STATE_INTERVAL_MS);
                    self.state_due = Some(next.max(now));
                }
            }
            Note::Lost(error) => self.fail(error, now),
            Note::Shutdown => self.shutdown(now),
            Note::Tick => {}
        }
        self.advance(now);
    }

    /// The next thing to do, or None until the next note.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.queue.pop_front() {
            return Some(a);
        }
        let window = self.window;
        let Phase::Connected {
            session, stopping, ..
        } = &mut self.phase
        else {
            return None;
        };
        // Acks first: they reach the disk within one group commit, which bounds the
        // duplicates a crash can cause to about one window.
        if !session.pending_acks.is_empty() {
            return Some(Action::Ack(std::mem::take(&mut session.pending_acks)));
        }
        if stopping.is_some() {
            return None;
        }
        // Publish from the read-ahead while there is room: `window` in flight in rumqttc and
        // up to one more window in its request queue, so each PUBACK frees the next publish
        // without a round trip through the I/O loop.
        // Backlog rows only while the replay cap allows; alarms and live rows pass them.
        if session.in_window() < 2 * window {
            let now = self.now;
            let replay_open = self.replay_budget.as_mut().is_none_or(|b| b.open(now));
            let next = if replay_open {
                (!session.ready.is_empty()).then_some(0)
            } else {
                session
                    .ready
                    .iter()
                    .position(|(lane, _)| *lane != Lane::Backlog)
            };
            if let Some((lane, row)) = next.and_then(|i| session.ready.remove(i)) {
                if lane == Lane::Backlog {
                    session.backlog_ready -= 1;
                    if let Some(b) = self.replay_budget.as_mut() {
                        b.spend(row_bytes(&row));
                    }
                }
                session.queued.push_back(Some(row.seq));
                return Some(Action::Publish(row));
            }
        }
        // Read ahead a whole window at a time, so publishing never waits for the disk; while
        // a window of backlog waits for the cap, read only alarms and live rows.
        let waiting_now = session.ready.len() - session.backlog_ready;
        // Backlog left unread by a read-ahead that skipped it is read once what waits of it
        // has gone down to half a window (not on every turn: no empty reads while it waits).
        let backlog_due = session.backlog_pending && session.backlog_ready < window / 2;
        if (session.maybe_more || backlog_due)
            && session.reading.is_none()
            && waiting_now < window
            && session.ready.len() < 2 * window
        {
            let backlog = session.backlog_ready < window;
            session.backlog_pending = !backlog;
            self.fetches += 1;
            session.reading = Some(self.fetches);
            session.renotified = false;
            return Some(Action::Fetch {
                fetch: self.fetches,
                cursors: session.cursors,
                limit: window,
                backlog,
            });
        }
        None
    }

    /// Connected and not saying goodbye.
    fn accepting(&self) -> bool {
        matches!(self.phase, Phase::Connected { stopping: None, .. })
    }

    /// Queues the state snapshots (when this uplink publishes them).
    fn publish_state(&mut self, now: u64) {
        if !self.state {
            return;
        }
        if let Some(session) = self.session() {
            session.queued.push_back(None);
            self.queue.push_back(Action::PublishState);
            self.state_sent = Some(now);
            self.state_due = None;
        }
    }

    fn session(&mut self) -> Option<&mut SessionState> {
        match &mut self.phase {
            Phase::Connected { session, .. } => Some(session),
            _ => None,
        }
    }

    fn connect(&mut self, broker: usize, now: u64) {
        self.phase = Phase::Connecting {
            broker,
            deadline: now + CONNECT_TIMEOUT_MS,
        };
        self.queue
            .push_back(Action::Connect(self.brokers[broker].clone()));
    }

    fn wait(&mut self, now: u64) {
        let delay = self.rounds.next_delay_with(&mut self.random);
        self.phase = Phase::Waiting {
            until: now + delay.as_millis() as u64,
        };
        self.queue.push_back(Action::Wait(delay));
    }

    fn fail(&mut self, error: LinkError, now: u64) {
        match std::mem::replace(&mut self.phase, Phase::Stopped) {
            Phase::Connecting { broker, .. } => {
                self.queue.push_back(Action::Failed {
                    broker: self.brokers[broker].clone(),
                    error,
                    connected_for: None,
                });
                if broker + 1 < self.brokers.len() {
                    self.connect(broker + 1, now);
                } else {
                    self.wait(now);
                }
            }
            Phase::Connected {
                broker,
                since,
                mut session,
                stopping,
            } => {
                // What was acknowledged is deleted before anything is read again, so the
                // next session resends only what really was not acknowledged.
                if !session.pending_acks.is_empty() {
                    self.queue
                        .push_back(Action::Ack(std::mem::take(&mut session.pending_acks)));
                }
                let lasted = now.saturating_sub(since);
                self.queue.push_back(Action::Failed {
                    broker: self.brokers[broker].clone(),
                    error,
                    connected_for: Some(Duration::from_millis(lasted)),
                });
                if stopping.is_some() {
                    self.queue.push_back(Action::Stop);
                    return;
                }
                if lasted >= STABLE_SESSION_MS {
                    self.rounds.reset();
                }
                // A lost session waits before trying again, from the first broker.
                self.wait(now);
            }
            // A late report from a connection already given up.
            other => self.phase = other,
        }
    }

    fn shutdown(&mut self, now: u64) {
        match &mut self.phase {
            Phase::Connected { stopping, .. } => {
                if stopping.is_none() {
                    *stopping = Some(Stopping::Draining {
                        until: now + DRAIN_MS,
                    });
                }
            }
            Phase::Stopped => {}
            // Not connected: nothing to drain and nobody to tell.
            _ => {
                self.phase = Phase::Stopped;
                self.queue.push_back(Action::Stop);
            }
        }
    }

    /// Moves on when a deadline has passed or a wait is over.
    fn advance(&mut self, now: u64) {
        if self.accepting() && self.state_due.is_some_and(|due| now >= due) {
            self.publish_state(now);
        }
        match &mut self.phase {
            Phase::Connecting { deadline, .. } if now >= *deadline => {
                self.fail(LinkError::NoConnAck(CONNECT_TIMEOUT_MS / 1000), now);
            }
            Phase::Waiting { until } if now >= *until => self.connect(0, now),
            Phase::Connected {
                session,
                stopping: Some(stopping),
                ..
            } => match stopping {
                Stopping::Draining { until } if session.in_window() == 0 || now >= *until => {
                    if !session.pending_acks.is_empty() {
                        let acks = std::mem::take(&mut session.pending_acks);
                        self.queue.push_back(Action::Ack(acks));
                    }
                    session.queued.push_back(None);
                    self.queue.push_back(Action::SayOffline);
                    *stopping = Stopping::SayingOffline {
                        until: now + OFFLINE_MS,
                    };
                }
                Stopping::SayingOffline { until } if session.in_window() == 0 || now >= *until => {
                    if !session.pending_acks.is_empty() {
                        let acks = std::mem::take(&mut session.pending_acks);
                        self.queue.push_back(Action::Ack(acks));
                    }
                    self.queue.push_back(Action::Disconnect);
                    self.queue.push_back(Action::Stop);
                    self.phase = Phase::Stopped;
                }
                _ => {}
            },
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
