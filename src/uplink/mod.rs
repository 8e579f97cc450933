//! The uplink: owns the MQTT session with central dispatch and drains the outbox into it.
//!
//! The decisions are a state machine without I/O (`machine.rs`: which broker, how long to
//! wait, what to publish, when to read ahead, how to say goodbye); this module is the thin
//! loop that feeds it what happened and carries out what it asks. The rules it implements:
//!
//! - Brokers are tried in the configured order; when all fail, the next round waits a
//!   full-jitter exponential delay (`backoff.rs`). A lost session starts again from the first.
//! - Each connection gets a fresh rumqttc client and event loop (`connection.rs`), in the
//!   MQTT version the broker's URL names: 3.1.1 (`mqtt://`) or 5 (`mqtt5://`), the same notes
//!   either way. The event loop is polled in its own task that only forwards notifications
//!   (CONVENTIONS: never publish from inside the poll loop); this task publishes. Because
//!   every connection is new, the uplink, not rumqttc, decides what is resent: after a
//!   reconnect it reads the outbox from the start again, and whatever is still there (never
//!   acknowledged) goes out again. A message an MQTT 5 broker refuses (a PUBACK with a failure
//!   reason) is such a row: the session ends and it goes out again on the next one.
//! - A window of QoS 1 publishes is kept in flight, fed from a read-ahead of about one window
//!   read from the outbox in one go. rumqttc reports the packet id of each
//!   publish in the order they were queued, so a FIFO maps packet ids back to seqs; a PUBACK
//!   turns its seq into an ack for the outbox writer, which deletes the row.
//! - Send order per refill: alarms, then live rows and the historical backlog sharing the
//!   window half and half, so a large backlog never starves live data; while a video push
//!   holds the [`ReplayGate`], no backlog at all.
//! - On connect a retained birth goes to `P/status`; the last will (retained) says offline;
//!   a clean shutdown publishes offline itself before disconnecting.
//! - With a command core attached, every connection subscribes to `P/cmd/+` in a persistent
//!   session; the poll task hands each command message to the core with a way to acknowledge
//!   it, which the core calls once what the command caused is safe (manual acks).

mod budget;
mod connection;
mod error;
mod gate;
mod machine;
mod options;
mod reasons;
mod route;
mod state;
pub mod tls;

pub use error::LinkError;
pub use gate::{ReplayGate, ReplayHold};
pub use machine::{Action, Machine, Note};
pub use options::{ReplayCaps, UplinkError, UplinkOptions};
pub use route::interface_towards;
pub use state::plan_fetch;
use state::PendingRead;

use crate::commands::Incoming;
use crate::metrics;
use crate::outbox::{LinkState, Reader, WriterControl};
use connection::{CommandRoute, Connection, Received};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// How long the watchdog gives the uplink beyond what it is waiting for.
const BEAT_SLACK: Duration = Duration::from_secs(5);

/// Where the uplink stands, for the technician's views.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UplinkStatus {
    pub connected_to: Option<String>,
    /// Unix ms of the last connection (while connected) or of the last loss.
    pub since_ms: Option<i64>,
    /// The last connection failure or loss, kept after a reconnect for the technician.
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub in_flight: usize,
    /// The same two instants on the monotonic clock, as the uplink records them; the `_ms`
    /// fields are filled from them when shown ([`UplinkStatus::as_of_now`]).
    #[serde(skip)]
    pub since_mono: Option<u64>,
    #[serde(skip)]
    pub last_error_mono: Option<u64>,
    /// Seconds without a broker since the daemon started, as of now (monotonic; filled by
    /// [`UplinkStatus::as_of_now`]).
    #[serde(default)]
    pub offline_s: u64,
    /// The offline periods that ended (ms), and when the current one began (monotonic ms).
    #[serde(skip)]
    pub offline_closed_ms: u64,
    #[serde(skip)]
    pub offline_from_mono: Option<u64>,
}

impl UplinkStatus {
    /// A copy with `since_ms` / `last_error_ms` as wall-clock times as of now: the durations a
    /// technician reads (down for 3 s) are monotonic ones, whatever steps the wall clock took.
    pub fn as_of_now(&self) -> UplinkStatus {
        let (wall, mono) = (crate::clock::unix_ms(), crate::clock::mono_ms());
        let at = |m: u64| crate::clock::wall_of_mono(m, wall, mono);
        UplinkStatus {
            since_ms: self.since_mono.map(at),
            last_error_ms: self.last_error_mono.map(at),
            offline_s: self.offline_ms(mono) / 1000,
            ..self.clone()
        }
    }

    /// Milliseconds without a broker since the daemon started, as of `now_mono`.
    pub fn offline_ms(&self, now_mono: u64) -> u64 {
        self.offline_closed_ms
            + self
                .offline_from_mono
                .map_or(0, |from| now_mono.saturating_sub(from))
    }
}

pub struct Uplink {
    opts: UplinkOptions,
    reader: Arc<Mutex<Reader>>,
    control: WriterControl,
    new_data: Arc<Notify>,
    link: Arc<LinkState>,
    shutdown: CancellationToken,
    status: Arc<Mutex<UplinkStatus>>,
    /// Notified when the uplink connects or loses its broker (systemd's STATUS= follows it).
    status_changed: Arc<Notify>,
    heartbeat: Arc<crate::systemd::Heartbeat>,
    published: metrics::Counter,
    acked: metrics::Counter,
    dropped_busy: metrics::Counter,
    connects: metrics::Counter,
    disconnects: metrics::Counter,
    connect_failures: metrics::Counter,
    /// `uplink.publish_refused`: messages an MQTT 5 broker refused (they stay in the outbox).
    publish_refused: metrics::Counter,
    /// Where command messages go (None: no command core, nothing subscribed).
    commands: Option<mpsc::Sender<Incoming>>,
    /// Acknowledgements of command messages, from the core: (connection, message). Unbounded
    /// because a lost acknowledgement would hold one of the broker's in-flight slots for the
    /// rest of the session; it holds at most one entry per message received, and the I/O loop
    /// drains it on every turn.
    command_acks: mpsc::UnboundedSender<(u64, Received)>,
    command_acks_rx: Option<mpsc::UnboundedReceiver<(u64, Received)>>,
    /// Asks for the retained birth again.
    rebirth: Arc<Notify>,
    /// The retained state snapshots (None: not published), and a way to ask for them now.
    state: Option<Arc<crate::state::Snapshots>>,
    state_request: Arc<Notify>,
    /// Held while something more urgent needs the link (a video push): no backlog is read.
    replay: Arc<ReplayGate>,
    /// New settings from a reload.
    reconfigure: Arc<Reconfigure>,
}

impl Uplink {
    pub fn new(
        opts: UplinkOptions,
        reader: Reader,
        control: WriterControl,
        new_data: Arc<Notify>,
        link: Arc<LinkState>,
        shutdown: CancellationToken,
        metrics: Arc<metrics::Metrics>,
    ) -> Uplink {
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        Uplink {
            commands: None,
            command_acks: acks_tx,
            command_acks_rx: Some(acks_rx),
            rebirth: Default::default(),
            state: None,
            state_request: Default::default(),
            replay: Default::default(),
            reconfigure: Default::default(),
            dropped_busy: metrics.counter("cmd.dropped_busy", ""),
            published: metrics.counter("uplink.published", ""),
            acked: metrics.counter("uplink.acked", ""),
            connects: metrics.counter("uplink.connects", ""),
            disconnects: metrics.counter("uplink.disconnects", ""),
            connect_failures: metrics.counter("uplink.connect_failures", ""),
            publish_refused: metrics.counter("uplink.publish_refused", ""),
            opts,
            reader: Arc::new(Mutex::new(reader)),
            control,
            new_data,
            link,
            shutdown,
            // Offline from the start until the first connection.
            status: Arc::new(Mutex::new(UplinkStatus {
                offline_from_mono: Some(crate::clock::mono_ms()),
                ..Default::default()
            })),
            status_changed: Default::default(),
            heartbeat: Default::default(),
        }
    }

    /// Hands command messages from `P/cmd/+` to this channel (the command core) and
    /// subscribes on every connection.
    pub fn with_commands(mut self, commands: mpsc::Sender<Incoming>) -> Uplink {
        self.commands = Some(commands);
        self
    }

    /// Publishes the retained state snapshots (`P/state/devices`) on every connection, after
    /// a change of the device board (at most every 5 s), and when asked.
    pub fn with_state(mut self, snapshots: Arc<crate::state::Snapshots>) -> Uplink {
        self.state = Some(snapshots);
        self
    }

    /// Holds the backlog's replay while `gate` is held (live video first); wakes the uplink
    /// when it opens.
    pub fn with_replay_gate(mut self, gate: Arc<ReplayGate>) -> Uplink {
        gate.wake_with(self.new_data.clone());
        self.replay = gate;
        self
    }

    /// Notified, the uplink publishes its state snapshots now (the `state.devices` command).
    pub fn state_request(&self) -> Arc<Notify> {
        self.state_request.clone()
    }

    /// Notified, the uplink publishes its retained birth again (the `rebirth` command).
    pub fn rebirth(&self) -> Arc<Notify> {
        self.rebirth.clone()
    }

    /// Kept by the watchdog: the uplink beats at least every few seconds while it works.
    pub fn heartbeat(&self) -> Arc<crate::systemd::Heartbeat> {
        self.heartbeat.clone()
    }

    pub fn status(&self) -> Arc<Mutex<UplinkStatus>> {
        self.status.clone()
    }

    /// Notified on every connect, loss and failed attempt: the status has changed.
    pub fn status_changed(&self) -> Arc<Notify> {
        self.status_changed.clone()
    }

    /// Runs until shutdown is signalled; then drains what is in flight and says offline.
    pub async fn run(mut self) {
        let mut command_acks = self.command_acks_rx.take().expect("run is called once");
        loop {
            match self.session(&mut command_acks).await {
                Ended::Shutdown => return,
                Ended::Reconfigure => {
                    if let Some(opts) = self.reconfigure.take() {
                        let brokers: Vec<String> =
                            opts.brokers.iter().map(|b| b.to_string()).collect();
                        tracing::info!(event = "uplink.reconfigured", brokers = %brokers.join(", "), "the uplink's settings changed (reload): connecting with the new ones");
                        self.opts = opts;
                    }
                    {
                        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
                        let now = crate::clock::mono_ms();
                        st.connected_to = None;
                        st.since_mono = Some(now);
                        st.in_flight = 0;
                        st.offline_from_mono.get_or_insert(now);
                    }
                    self.status_changed.notify_one();
                }
            }
        }
    }

    /// Handles new settings from a reload: the uplink finishes what is in flight, tells the
    /// broker it goes (`offline`, reason `reconfigured`), and connects with them.
    pub fn reconfigurer(&self) -> Arc<Reconfigure> {
        self.reconfigure.clone()
    }

    /// One machine's life: until shutdown, or until new settings ask for a new one.
    async fn session(
        &mut self,
        command_acks: &mut mpsc::UnboundedReceiver<(u64, Received)>,
    ) -> Ended {
        let mut machine = Machine::new(
            self.opts.brokers.clone(),
            self.opts.window as usize,
            self.opts.backoff,
            if self.opts.jitter {
                Box::new(|n| fastrand::u64(0..=n))
            } else {
                Box::new(|n| n)
            },
            crate::clock::mono_ms(),
        );
        if self.state.is_some() {
            machine = machine.with_state();
        }
        let state = self.state.clone();
        let mut io = Io::default();
        let shutdown = self.shutdown.clone();
        let mut shutdown_seen = false;
        let reconfigure = self.reconfigure.clone();
        let mut reconfiguring = false;
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        loop {
            while let Some(action) = machine.poll_action() {
                if action == Action::Stop {
                    return if shutdown_seen {
                        Ended::Shutdown
                    } else {
                        Ended::Reconfigure
                    };
                }
                if let Action::Connected(broker) = &action {
                    let cap = self.replay_cap(broker).await;
                    machine.set_replay_cap(cap, crate::clock::mono_ms());
                }
                if action == Action::SayOffline {
                    let reason = if shutdown_seen {
                        "shutdown"
                    } else {
                        "reconfigured"
                    };
                    let payload = self.opts.status_payload("offline", Some(reason), None);
                    if let Some(note) = io
                        .publish(self.opts.status_topic(), true, payload, None)
                        .await
                    {
                        machine.on(note, crate::clock::mono_ms());
                    }
                    continue;
                }
                if let Some(note) = self.carry_out(action, &mut io).await {
                    machine.on(note, crate::clock::mono_ms());
                }
            }
            if machine.is_connected() {
                self.heartbeat.beat(BEAT_SLACK);
            }
            let deadline = machine
                .deadline()
                .map(|at| Duration::from_millis(at.saturating_sub(crate::clock::mono_ms())));
            let note = tokio::select! {
                biased;
                note = next_note(&mut io.conn) => note,
                Some((connection, message)) = command_acks.recv() => {
                    // A message of an earlier connection is not acknowledged here: the broker
                    // sends it again in the resumed session, and the core answers it again.
                    if let (true, Some(conn)) = (connection == io.generation, &io.conn) {
                        conn.ack(&message).await;
                    }
                    continue;
                }
                _ = self.rebirth.notified() => Note::Rebirth,
                _ = self.state_request.notified() => Note::StateRequested,
                _ = async { state.as_ref().expect("guarded").board.changed().await }, if state.is_some() => Note::StateChanged,
                read = async { io.reading.as_mut().expect("guarded").await }, if io.reading.is_some() => {
                    io.reading = None;
                    match read {
                        Ok(Ok((fetch, rows))) => Note::Rows { fetch, rows },
                        Ok(Err(e)) => Note::Lost(LinkError::Local(format!("cannot read the outbox: {e}"))),
                        Err(e) => Note::Lost(LinkError::Local(format!("outbox read task failed: {e}"))),
                    }
                }
                _ = self.new_data.notified() => Note::NewData,
                _ = tokio::time::sleep(deadline.unwrap_or_default()), if deadline.is_some() => Note::Tick,
                _ = beat.tick() => Note::Tick,
                _ = shutdown.cancelled(), if !shutdown_seen => {
                    shutdown_seen = true;
                    Note::Shutdown
                }
                // New settings: the session ends as at shutdown (in flight first), then a new one.
                _ = reconfigure.notify.notified(), if !shutdown_seen && !reconfiguring => {
                    reconfiguring = true;
                    Note::Shutdown
                }
            };
            let lost = matches!(note, Note::Lost(_));
            machine.on(note, crate::clock::mono_ms());
            // Take every note already queued before acting, so the acks of one batch reach
            // the writer in one go.
            if !lost {
                while let Some(note) = io.try_next_note() {
                    let lost = matches!(note, Note::Lost(_));
                    machine.on(note, crate::clock::mono_ms());
                    if lost {
                        break;
                    }
                }
            }
            if machine.is_connected() {
                self.status
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .in_flight = machine.in_window();
            }
        }
    }

    /// The backlog replay's cap on a connection to `broker`, as the link it goes over asks.
    async fn replay_cap(&self, broker: &crate::config::BrokerUrl) -> Option<u64> {
        let (host, port) = (broker.host.clone(), broker.port);
        let interface = tokio::task::spawn_blocking(move || route::interface_towards(&host, port))
            .await
            .ok()
            .flatten();
        let (cap, why) = self.opts.replay.for_link(broker, interface.as_deref());
        match cap {
            Some(n) => {
                tracing::info!(event = "uplink.replay_cap", bytes_per_s = n, reason = %why, "the backlog's replay is capped at {n} bytes/s ({why}); alarms and live data are not")
            }
            None => {
                tracing::debug!(event = "uplink.replay_cap", reason = %why, "the backlog's replay is not capped ({why})")
            }
        }
        cap
    }

    /// Does what the state machine asked; a failure comes back as the note it causes.
    async fn carry_out(&self, action: Action, io: &mut Io) -> Option<Note> {
        match action {
            Action::Connect(broker) => {
                self.heartbeat
                    .beat(Duration::from_millis(machine::CONNECT_TIMEOUT_MS) + BEAT_SLACK);
                io.reading = None;
                io.generation += 1;
                let route = self.commands.clone().map(|tx| CommandRoute {
                    prefix: format!("{}/cmd/", self.opts.topic_root),
                    tx,
                    acks: self.command_acks.clone(),
                    connection: io.generation,
                    dropped: self.dropped_busy.clone(),
                });
                io.conn = Some(Connection::open(
                    &self.opts,
                    &broker,
                    route,
                    self.publish_refused.clone(),
                ));
            }
            Action::Connected(broker) => {
                self.link.set_up(true);
                if self.commands.is_some() {
                    if let Some(conn) = &io.conn {
                        let topic = format!("{}/cmd/+", self.opts.topic_root);
                        if let Err(e) = conn.subscribe(topic).await {
                            return Some(Note::Lost(e));
                        }
                    }
                }
                tracing::info!(event = "uplink.connected", broker = %broker, "connected to central");
                {
                    let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
                    let now = crate::clock::mono_ms();
                    st.connected_to = Some(broker.to_string());
                    st.since_mono = Some(now);
                    if let Some(from) = st.offline_from_mono.take() {
                        st.offline_closed_ms += now.saturating_sub(from);
                    }
                }
                metrics::inc(&self.connects);
                self.status_changed.notify_one();
            }
            Action::SayOnline(broker) => {
                let payload = self.opts.status_payload("online", None, Some(&broker));
                return io
                    .publish(self.opts.status_topic(), true, payload, None)
                    .await;
            }
            Action::PublishState => {
                if let Some(state) = &self.state {
                    for (name, payload) in state.all() {
                        let topic = format!("{}/state/{name}", self.opts.topic_root);
                        if let Some(lost) = io.publish(topic, true, payload, None).await {
                            return Some(lost);
                        }
                    }
                }
            }
            // (said in `session`, which knows why the session ends)
            Action::SayOffline => {}
            Action::Publish(row) => {
                let topic = format!("{}/{}", self.opts.topic_root, row.topic);
                metrics::inc(&self.published);
                return io
                    .publish(topic, false, row.payload, Some((row.seq, row.prio)))
                    .await;
            }
            Action::Fetch {
                fetch,
                cursors,
                limit,
                backlog,
            } => {
                let reader = self.reader.clone();
                let backlog = backlog && !self.replay.held();
                io.reading = Some(tokio::task::spawn_blocking(move || {
                    let reader = reader.lock().unwrap_or_else(|p| p.into_inner());
                    plan_fetch(&reader, cursors, limit, backlog).map(|rows| (fetch, rows))
                }));
            }
            Action::Ack(seqs) => {
                self.acked
                    .fetch_add(seqs.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = self.control.ack(seqs).await {
                    return Some(Note::Lost(LinkError::Local(e.to_string())));
                }
            }
            Action::Failed {
                broker,
                error,
                connected_for,
            } => {
                io.conn = None;
                io.reading = None;
                let fix = if error.is_transient() {
                    ""
                } else {
                    " (retrying will not help until the configuration here or at central is fixed)"
                };
                match connected_for {
                    Some(after) => {
                        self.link.set_up(false);
                        let _ = self.control.flush().await;
                        tracing::warn!(event = "uplink.disconnected", broker = %broker, error = %error, after_s = after.as_secs(), "lost the broker; buffering in the outbox{fix}");
                    }
                    None if error.is_transient() => {
                        tracing::warn!(event = "uplink.connect_failed", broker = %broker, error = %error, "cannot connect to the broker");
                    }
                    None => {
                        tracing::error!(event = "uplink.connect_failed", broker = %broker, error = %error, "cannot connect to the broker{fix}");
                    }
                }
                self.set_error(error.to_string());
            }
            Action::Wait(delay) => {
                self.heartbeat.beat(delay + BEAT_SLACK);
                tracing::debug!(delay_ms = delay.as_millis() as u64, "reconnect backoff");
            }
            Action::Disconnect => {
                self.link.set_up(false);
                let _ = self.control.flush().await;
                tracing::info!(
                    event = "uplink.offline_published",
                    "told central this station is going offline"
                );
                if let Some(conn) = io.conn.take() {
                    conn.disconnect().await;
                }
            }
            Action::Stop => {}
        }
        None
    }

    fn set_error(&self, e: String) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let now = crate::clock::mono_ms();
        if st.connected_to.is_some() || st.since_mono.is_none() {
            st.since_mono = Some(now);
        }
        metrics::inc(if st.connected_to.is_some() {
            &self.disconnects
        } else {
            &self.connect_failures
        });
        if st.offline_from_mono.is_none() {
            st.offline_from_mono = Some(now);
        }
        st.connected_to = None;
        st.last_error = Some(e);
        st.last_error_mono = Some(now);
        st.in_flight = 0;
        drop(st);
        self.status_changed.notify_one();
    }
}

/// Why a session ended.
enum Ended {
    Shutdown,
    Reconfigure,
}

/// New uplink settings from a reload, waiting for the uplink to take them.
#[derive(Default)]
pub struct Reconfigure {
    next: Mutex<Option<UplinkOptions>>,
    notify: Notify,
}

impl Reconfigure {
    /// Asks the uplink to reconnect with `opts` (the latest asked wins).
    pub fn apply(&self, opts: UplinkOptions) {
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = Some(opts);
        self.notify.notify_one();
    }

    fn take(&self) -> Option<UplinkOptions> {
        self.next.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What the I/O loop holds between actions: the connection, and the read-ahead running.
#[derive(Default)]
struct Io {
    conn: Option<Connection>,
    reading: Option<PendingRead>,
    /// Counts connections, so a command's acknowledgement goes to the connection it came on.
    generation: u64,
}

/// The next note from the connection; pending forever without one.
async fn next_note(conn: &mut Option<Connection>) -> Note {
    match conn {
        Some(conn) => conn
            .notes
            .recv()
            .await
            .unwrap_or_else(|| Note::Lost(LinkError::Network("MQTT event loop ended".into()))),
        None => std::future::pending().await,
    }
}

impl Io {
    fn try_next_note(&mut self) -> Option<Note> {
        self.conn.as_mut()?.notes.try_recv().ok()
    }

    /// Publishes on the connection (`row`: the outbox row's seq and class); a closed client
    /// comes back as the note it causes.
    async fn publish(
        &mut self,
        topic: String,
        retain: bool,
        payload: Vec<u8>,
        row: Option<(u64, crate::event::Priority)>,
    ) -> Option<Note> {
        let conn = self.conn.as_ref()?;
        conn.publish(topic, retain, payload, row)
            .await
            .err()
            .map(Note::Lost)
    }
}

#[cfg(all(test, feature = "demo"))]
mod tests;
