//! The uplink: owns the MQTT session with central dispatch and drains the outbox into it.
//!
//! - Brokers are tried in the configured order; when all fail, the next round waits a
//!   full-jitter exponential delay (`backoff.rs`). A lost session starts again from the first.
//! - Each connection gets a fresh rumqttc client and event loop. The event loop is polled in
//!   its own task that only forwards notifications (CONVENTIONS: never publish from inside the
//!   poll loop); this task publishes. Because every connection is new (`clean_session`), the
//!   uplink, not rumqttc, decides what is resent: after a reconnect it reads the outbox from
//!   the start again, and whatever is still there (never acknowledged) goes out again.
//! - A window of QoS 1 publishes is kept in flight, fed from a read-ahead of about one window
//!   read from the outbox in one go. rumqttc reports the packet id of each
//!   publish in the order they were queued, so a FIFO maps packet ids back to seqs; a PUBACK
//!   turns its seq into an ack for the outbox writer, which deletes the row.
//! - Send order per refill: alarms, then live rows and the historical backlog sharing the
//!   window half and half, so a large backlog never starves live data.
//! - On connect a retained birth goes to `P/status`; the last will (retained) says offline;
//!   a clean shutdown publishes offline itself before disconnecting.

mod explain;
mod options;
mod state;
pub mod tls;

pub use options::{UplinkError, UplinkOptions};
pub use state::plan_fetch;
use state::{PendingRead, SessionState};

use crate::config::BrokerUrl;
use crate::metrics;
use crate::outbox::{LinkState, Reader, WriterControl};
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// How long a connection attempt may take before the next broker is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A session that lasted this long resets the backoff.
const STABLE_SESSION: Duration = Duration::from_secs(30);

/// What the poll task reports.
enum Note {
    ConnAck,
    /// A publish was handed to the network with this packet id.
    Sent(u16),
    PubAck(u16),
    Error(String),
}

enum SessionEnd {
    Shutdown,
    ConnectFailed(String),
    Lost { after: Duration, reason: String },
}

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
            ..self.clone()
        }
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
    metrics: Arc<metrics::Metrics>,
    /// Notified when the uplink connects or loses its broker (systemd's STATUS= follows it).
    status_changed: Arc<Notify>,
    heartbeat: Arc<crate::systemd::Heartbeat>,
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
        Uplink {
            metrics,
            opts,
            reader: Arc::new(Mutex::new(reader)),
            control,
            new_data,
            link,
            shutdown,
            status: Default::default(),
            status_changed: Default::default(),
            heartbeat: Default::default(),
        }
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
        // Rounds through the broker list that failed in a row; full jitter between them.
        let mut rounds = crate::backoff::Retry::new(self.opts.backoff, true);
        loop {
            let mut lost_stable = false;
            for broker in self.opts.brokers.clone() {
                let stopping = self.shutdown.is_cancelled();
                if stopping {
                    return;
                }
                self.heartbeat
                    .beat(CONNECT_TIMEOUT + Duration::from_secs(5));
                match self.session(&broker).await {
                    SessionEnd::Shutdown => return,
                    SessionEnd::ConnectFailed(reason) => {
                        tracing::warn!(event = "uplink.connect_failed", broker = %broker, error = %reason, "cannot connect to the broker");
                        self.set_error(reason);
                    }
                    SessionEnd::Lost { after, reason } => {
                        tracing::warn!(event = "uplink.disconnected", broker = %broker, error = %reason, after_s = after.as_secs(), "lost the broker; buffering in the outbox");
                        self.set_error(reason);
                        lost_stable = after >= STABLE_SESSION;
                        break;
                    }
                }
            }
            if lost_stable {
                rounds.reset();
            }
            let delay = rounds.next_delay();
            self.heartbeat.beat(delay + Duration::from_secs(5));
            tracing::debug!(
                delay_ms = delay.as_millis() as u64,
                attempt = rounds.attempts(),
                "reconnect backoff"
            );
            let shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    fn set_error(&self, e: String) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let now = crate::clock::mono_ms();
        if st.connected_to.is_some() || st.since_mono.is_none() {
            st.since_mono = Some(now);
        }
        st.connected_to = None;
        st.last_error = Some(e);
        st.last_error_mono = Some(now);
        st.in_flight = 0;
        drop(st);
        self.status_changed.notify_one();
    }

    async fn session(&mut self, broker: &BrokerUrl) -> SessionEnd {
        let (client, mut eventloop) = AsyncClient::new(
            self.opts.mqtt_options(broker),
            2 * self.opts.window as usize + 16,
        );
        // Nagle stays on (rumqttc default): under a backlog it coalesces publishes into fewer
        // segments, which measured 10-20 % faster draining; an alarm waits at most one RTT.
        let mut net = eventloop.network_options();
        net.set_tcp_nodelay(false);
        net.set_connection_timeout(CONNECT_TIMEOUT.as_secs());
        eventloop.set_network_options(net);
        let (ntx, mut nrx) = mpsc::channel::<Note>(4 * self.opts.window as usize + 64);
        // The poll task: forwards notifications, never publishes. Its channel holds every note a
        // full window can produce (sent + acked per publish), so it never blocks the event loop.
        let poller = tokio::spawn(async move {
            loop {
                let note = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Note::ConnAck,
                    Ok(Event::Incoming(Packet::PubAck(ack))) => Note::PubAck(ack.pkid),
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Note::Sent(pkid),
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = ntx.send(Note::Error(explain::explain(&e))).await;
                        return;
                    }
                };
                if ntx.send(note).await.is_err() {
                    return;
                }
            }
        });
        let _abort_poller = AbortOnDrop(poller);

        let shutdown = self.shutdown.clone();
        let connected = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, nrx.recv()) => r,
            _ = shutdown.cancelled() => return SessionEnd::Shutdown,
        };
        match connected {
            Ok(Some(Note::ConnAck)) => {}
            Ok(Some(Note::Error(e))) => return SessionEnd::ConnectFailed(e),
            Ok(_) => return SessionEnd::ConnectFailed("unexpected packet before CONNACK".into()),
            Err(_) => {
                return SessionEnd::ConnectFailed(format!(
                    "no CONNACK within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            }
        }
        let since = Instant::now();
        self.link.set_up(true);
        tracing::info!(event = "uplink.connected", broker = %broker, "connected to central");
        {
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            st.connected_to = Some(broker.to_string());
            st.since_mono = Some(crate::clock::mono_ms());
        }
        self.status_changed.notify_one();
        let mut s = SessionState::default();
        let end = self.drive(&client, &mut nrx, &mut s, broker).await;
        self.link.set_up(false);
        // Everything acknowledged so far is deleted before anything is fetched again, so a
        // reconnect resends only what really was not acknowledged.
        let _ = self.control.ack(std::mem::take(&mut s.pending_acks)).await;
        let _ = self.control.flush().await;
        match end {
            Ok(()) => {
                let _ = client.disconnect().await;
                // Let the poll task write DISCONNECT before it is aborted.
                let _ = tokio::time::timeout(Duration::from_millis(500), async {
                    while nrx.recv().await.is_some() {}
                })
                .await;
                SessionEnd::Shutdown
            }
            Err(reason) => SessionEnd::Lost {
                after: since.elapsed(),
                reason,
            },
        }
    }

    /// The connected loop. Ok(()) after a clean shutdown, Err(reason) when the session is lost.
    async fn drive(
        &mut self,
        client: &AsyncClient,
        nrx: &mut mpsc::Receiver<Note>,
        s: &mut SessionState,
        broker: &BrokerUrl,
    ) -> Result<(), String> {
        let published = self.metrics.counter("uplink.published", "");
        let acked = self.metrics.counter("uplink.acked", "");
        publish(
            client,
            s,
            self.opts.status_topic(),
            true,
            self.opts.status_payload("online", None, Some(broker)),
            None,
        )
        .await?;
        let window = self.opts.window as usize;
        let mut maybe_more = true;
        let mut reading: Option<PendingRead> = None;
        let mut renotified = false;
        let shutdown = self.shutdown.clone();
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        loop {
            self.heartbeat.beat(Duration::from_secs(5));
            // Publish from the read-ahead while the window has room: an ack is answered with
            // the next publish at once, with no outbox read in between. (Pausing until many
            // acks are back lets Nagle's algorithm on the broker and delayed ACKs here stall
            // the link for 40 ms at a time.)
            // Up to one more window waits in rumqttc's request queue, so that each PUBACK
            // lets rumqttc send the next publish at once, without a round trip through this
            // task; rumqttc itself keeps `window` in flight.
            let stopping = shutdown.is_cancelled();
            while s.in_window() < 2 * window && !stopping {
                let Some(row) = s.ready.pop_front() else {
                    break;
                };
                let topic = format!("{}/{}", self.opts.topic_root, row.topic);
                publish(client, s, topic, false, row.payload, Some(row.seq)).await?;
                metrics::inc(&published);
            }
            // Read ahead a whole window at a time, in the background, so publishing never
            // waits for the disk: one outbox read per window, not per ack.
            if maybe_more && !stopping && reading.is_none() && s.ready.len() < window {
                reading = Some(self.start_fetch(s.cursors, window));
                renotified = false;
            }
            tokio::select! {
                biased;
                note = nrx.recv() => {
                    let mut note = note;
                    // Take every note already queued, then hand their acks to the writer in one
                    // go: acks reach the disk within one group commit, which bounds the
                    // duplicates a crash can cause to about one window.
                    loop {
                        match note {
                            Some(Note::Sent(pkid)) => s.sent(pkid),
                            Some(Note::PubAck(pkid)) => if s.acked(pkid) { metrics::inc(&acked); },
                            Some(Note::ConnAck) => {}
                            Some(Note::Error(e)) => return Err(e),
                            None => return Err("MQTT event loop ended".into()),
                        }
                        match nrx.try_recv() {
                            Ok(n) => note = Some(n),
                            Err(_) => break,
                        }
                    }
                    if !s.pending_acks.is_empty() {
                        self.control.ack(std::mem::take(&mut s.pending_acks)).await.map_err(|e| e.to_string())?;
                    }
                }
                read = async { reading.as_mut().expect("guarded").await }, if reading.is_some() => {
                    reading = None;
                    let rows = read
                        .map_err(|e| format!("outbox read task failed: {e}"))?
                        .map_err(|e| format!("cannot read the outbox: {e}"))?;
                    // A commit notified while the read ran may not be in it: read again.
                    maybe_more = rows.len() >= window || renotified;
                    for (lane, row) in rows {
                        s.cursors[lane as usize] = row.seq;
                        s.ready.push_back(row);
                    }
                    self.status.lock().unwrap_or_else(|p| p.into_inner()).in_flight = s.in_window();
                }
                _ = self.new_data.notified() => {
                    maybe_more = true;
                    renotified = true;
                }
                _ = beat.tick() => {}
                _ = shutdown.cancelled() => {
                    return self.goodbye(client, nrx, s).await;
                }
            }
        }
    }

    /// Clean shutdown: wait (briefly) for what is in flight, then say offline.
    async fn goodbye(
        &mut self,
        client: &AsyncClient,
        nrx: &mut mpsc::Receiver<Note>,
        s: &mut SessionState,
    ) -> Result<(), String> {
        wait_for_acks(nrx, s, Duration::from_millis(1500)).await?;
        let _ = self.control.ack(std::mem::take(&mut s.pending_acks)).await;
        let payload = self.opts.status_payload("offline", Some("shutdown"), None);
        publish(client, s, self.opts.status_topic(), true, payload, None).await?;
        wait_for_acks(nrx, s, Duration::from_millis(1000)).await?;
        tracing::info!(
            event = "uplink.offline_published",
            "told central this station is going offline"
        );
        Ok(())
    }

    /// Starts reading the next rows to send, in send order: alarms, then live and backlog
    /// sharing the window.
    fn start_fetch(&self, cursors: [u64; 3], limit: usize) -> PendingRead {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let reader = reader.lock().unwrap_or_else(|p| p.into_inner());
            plan_fetch(&reader, cursors, limit)
        })
    }
}

/// Processes notes until nothing is in flight or `limit` has passed; Err if the session ends.
async fn wait_for_acks(
    nrx: &mut mpsc::Receiver<Note>,
    s: &mut SessionState,
    limit: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    while s.in_window() > 0 {
        match tokio::time::timeout_at(deadline, nrx.recv()).await {
            Ok(Some(Note::Sent(p))) => s.sent(p),
            Ok(Some(Note::PubAck(p))) => {
                s.acked(p);
            }
            Ok(Some(Note::ConnAck)) => {}
            Ok(Some(Note::Error(e))) => return Err(e),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(())
}

async fn publish(
    client: &AsyncClient,
    s: &mut SessionState,
    topic: String,
    retain: bool,
    payload: Vec<u8>,
    seq: Option<u64>,
) -> Result<(), String> {
    s.queued.push_back(seq);
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload)
        .await
        .map_err(|e| format!("MQTT client closed: {e}"))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
