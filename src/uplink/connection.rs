//! One connection to a broker, in the MQTT version its URL names (`mqtt://` 3.1.1,
//! `mqtt5://` 5): a fresh rumqttc client, and the task polling its event loop, which only
//! forwards what happens as notes (it never publishes) and hands command messages to the
//! command core.
//!
//! The two versions differ only here: the state machine sees the same notes from both. MQTT 5
//! adds what a 3.1.1 broker cannot say: a PUBACK refusing a message becomes
//! [`Note::Refused`] (the row stays in the outbox), and every refusal and every DISCONNECT
//! from the broker is told in words (`reasons.rs`).

use super::machine::{self, Note};
use super::options::UplinkOptions;
use super::reasons;
use super::LinkError;
use crate::commands::Incoming;
use crate::config::{BrokerUrl, MqttVersion};
use crate::event::Priority;
use crate::metrics;
use rumqttc::v5::mqttbytes::v5 as packet5;
use rumqttc::{Event, Outgoing, Packet, QoS};
use std::time::Duration;
use tokio::sync::mpsc;

/// A command message as it came, kept to acknowledge it on its connection once what it
/// caused is safe.
#[derive(Debug, Clone)]
pub enum Received {
    V311(rumqttc::Publish),
    V5(packet5::Publish),
}

impl Received {
    fn topic(&self) -> &str {
        match self {
            Received::V311(p) => &p.topic,
            Received::V5(p) => std::str::from_utf8(&p.topic).unwrap_or(""),
        }
    }

    fn payload(&self) -> &[u8] {
        match self {
            Received::V311(p) => &p.payload,
            Received::V5(p) => &p.payload,
        }
    }
}

/// The rumqttc client of either version.
enum Client {
    V311(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// One connection: the client, the notes its poll task forwards, and how MQTT 5 publishes
/// are dressed.
pub(super) struct Connection {
    client: Client,
    pub(super) notes: mpsc::Receiver<Note>,
    opts: UplinkOptions,
    _poller: AbortOnDrop,
}

/// `uplink.publish_refused`: messages an MQTT 5 broker refused with a reason code.
pub(super) type RefusedCounter = metrics::Counter;

impl Connection {
    pub(super) fn open(
        opts: &UplinkOptions,
        broker: &BrokerUrl,
        commands: Option<CommandRoute>,
        refused: RefusedCounter,
    ) -> Connection {
        let window = opts.window as usize;
        // Its channel holds every note a full window can produce (sent + acked per publish),
        // so it never blocks the event loop.
        let (ntx, notes) = mpsc::channel::<Note>(4 * window + 64);
        let (client, poller) = match broker.protocol {
            MqttVersion::V311 => {
                let (client, mut eventloop) =
                    rumqttc::AsyncClient::new(opts.mqtt_options(broker), 2 * window + 16);
                // Nagle stays on (rumqttc default): under a backlog it coalesces publishes
                // into fewer segments, which measured 10-20 % faster draining; an alarm waits
                // at most one RTT.
                let mut net = eventloop.network_options();
                net.set_tcp_nodelay(false);
                net.set_connection_timeout(machine::CONNECT_TIMEOUT_MS / 1000);
                eventloop.set_network_options(net);
                let poller = tokio::spawn(poll_v311(eventloop, ntx, commands));
                (Client::V311(client), poller)
            }
            MqttVersion::V5 => {
                let (client, eventloop) =
                    rumqttc::v5::AsyncClient::new(opts.mqtt5_options(broker), 2 * window + 16);
                let poller = tokio::spawn(poll_v5(eventloop, ntx, commands, refused));
                (Client::V5(client), poller)
            }
        };
        Connection {
            client,
            notes,
            opts: opts.clone(),
            _poller: AbortOnDrop(poller),
        }
    }

    /// Queues a QoS 1 publish; `row` is the outbox row's seq and class (None: the status or a
    /// state snapshot). An error means the client has closed.
    pub(super) async fn publish(
        &self,
        topic: String,
        retain: bool,
        payload: Vec<u8>,
        row: Option<(u64, Priority)>,
    ) -> Result<(), LinkError> {
        let sent = match &self.client {
            Client::V311(c) => c
                .publish(topic, QoS::AtLeastOnce, retain, payload)
                .await
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .publish_with_properties(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    retain,
                    payload,
                    self.opts.publish_properties(row),
                )
                .await
                .map_err(|e| e.to_string()),
        };
        sent.map_err(|e| LinkError::Network(format!("MQTT client closed: {e}")))
    }

    /// Subscribes to the command topic with QoS 1.
    pub(super) async fn subscribe(&self, topic: String) -> Result<(), LinkError> {
        let done = match &self.client {
            Client::V311(c) => c
                .subscribe(topic, QoS::AtLeastOnce)
                .await
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .subscribe(topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .await
                .map_err(|e| e.to_string()),
        };
        done.map_err(|e| LinkError::Network(format!("MQTT client closed: {e}")))
    }

    /// Acknowledges a command message that came on this connection.
    pub(super) async fn ack(&self, message: &Received) {
        match (&self.client, message) {
            (Client::V311(c), Received::V311(p)) => {
                let _ = c.ack(p).await;
            }
            (Client::V5(c), Received::V5(p)) => {
                let _ = c.ack(p).await;
            }
            // (a message of the other version cannot have come on this connection)
            _ => {}
        }
    }

    /// Sends DISCONNECT and gives the poll task a moment to write it.
    pub(super) async fn disconnect(mut self) {
        let _ = match &self.client {
            Client::V311(c) => c.disconnect().await.map_err(|e| e.to_string()),
            Client::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while self.notes.recv().await.is_some() {}
        })
        .await;
    }
}

/// The 3.1.1 event loop: CONNACK, packet ids as publishes go out, PUBACKs, commands.
async fn poll_v311(
    mut eventloop: rumqttc::EventLoop,
    notes: mpsc::Sender<Note>,
    commands: Option<CommandRoute>,
) {
    loop {
        let note = match eventloop.poll().await {
            Ok(event) => match note_v311(event, &commands) {
                Some(note) => note,
                None => continue,
            },
            Err(e) => {
                // What the last read brought before the error (acks, mostly) still counts.
                let read: Vec<Event> = eventloop.state.events.drain(..).collect();
                for note in read.into_iter().filter_map(|ev| note_v311(ev, &commands)) {
                    let _ = notes.send(note).await;
                }
                let _ = notes.send(Note::Lost(LinkError::from_connection(&e))).await;
                return;
            }
        };
        if notes.send(note).await.is_err() {
            return;
        }
    }
}

fn note_v311(event: Event, commands: &Option<CommandRoute>) -> Option<Note> {
    match event {
        Event::Incoming(Packet::ConnAck(_)) => Some(Note::ConnAck),
        Event::Incoming(Packet::PubAck(ack)) => Some(Note::PubAck(ack.pkid)),
        Event::Outgoing(Outgoing::Publish(pkid)) => Some(Note::Sent(pkid)),
        Event::Incoming(Packet::Publish(publish)) => {
            if let Some(route) = commands {
                route.deliver(Received::V311(publish));
            }
            None
        }
        Event::Incoming(Packet::SubAck(ack)) => {
            if ack
                .return_codes
                .iter()
                .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
            {
                subscription_refused("the broker refused it (0x80)");
            }
            None
        }
        _ => None,
    }
}

/// The MQTT 5 event loop: as 3.1.1, and the reason codes of PUBACK, SUBACK and DISCONNECT.
async fn poll_v5(
    mut eventloop: rumqttc::v5::EventLoop,
    notes: mpsc::Sender<Note>,
    commands: Option<CommandRoute>,
    refused: RefusedCounter,
) {
    loop {
        let note = match eventloop.poll().await {
            Ok(event) => match note_v5(event, &commands, &refused) {
                Some(note) => note,
                None => continue,
            },
            Err(e) => {
                // What the last read brought before the error still counts: a broker that
                // refuses a message and drops the connection at once (mosquitto 2.0.11 does,
                // with max_inflight_messages set) has said why in that read.
                let read: Vec<rumqttc::v5::Event> = eventloop.state.events.drain(..).collect();
                for note in read
                    .into_iter()
                    .filter_map(|ev| note_v5(ev, &commands, &refused))
                {
                    let _ = notes.send(note).await;
                }
                let _ = notes.send(Note::Lost(reasons::connection_error(&e))).await;
                return;
            }
        };
        if notes.send(note).await.is_err() {
            return;
        }
    }
}

fn note_v5(
    event: rumqttc::v5::Event,
    commands: &Option<CommandRoute>,
    refused: &RefusedCounter,
) -> Option<Note> {
    use packet5::Packet as Packet5;
    use rumqttc::v5::Event as Event5;
    match event {
        Event5::Incoming(Packet5::ConnAck(ack)) => {
            let props = ack.properties.as_ref();
            tracing::debug!(
                event = "uplink.mqtt5_session",
                session_present = ack.session_present,
                receive_max = ?props.and_then(|p| p.receive_max),
                session_expiry_s = ?props.and_then(|p| p.session_expiry_interval),
                "MQTT 5 session"
            );
            Some(Note::ConnAck)
        }
        Event5::Incoming(Packet5::PubAck(ack)) => {
            let said = ack
                .properties
                .as_ref()
                .and_then(|p| p.reason_string.as_deref());
            match reasons::puback(ack.reason, said) {
                None => Some(Note::PubAck(ack.pkid)),
                Some(why) => {
                    metrics::inc(refused);
                    tracing::warn!(event = "uplink.publish_refused", reason = %why, "the broker refused a message: {why}");
                    Some(Note::Refused {
                        pkid: ack.pkid,
                        why,
                    })
                }
            }
        }
        Event5::Outgoing(Outgoing::Publish(pkid)) => Some(Note::Sent(pkid)),
        Event5::Incoming(Packet5::Publish(publish)) => {
            if let Some(route) = commands {
                route.deliver(Received::V5(publish));
            }
            None
        }
        Event5::Incoming(Packet5::SubAck(ack)) => {
            for why in ack.return_codes.iter().filter_map(reasons::suback) {
                subscription_refused(&why);
            }
            None
        }
        _ => None,
    }
}

fn subscription_refused(why: &str) {
    tracing::error!(event = "uplink.subscribe_refused", reason = %why, "the broker refused the command subscription: {why}; commands from central will not reach this station");
}

/// Where a connection's poll task sends command messages.
pub(super) struct CommandRoute {
    /// `{topic_root}/cmd/`.
    pub(super) prefix: String,
    pub(super) tx: mpsc::Sender<Incoming>,
    pub(super) acks: mpsc::UnboundedSender<(u64, Received)>,
    pub(super) connection: u64,
    /// `cmd.dropped_busy`.
    pub(super) dropped: metrics::Counter,
}

impl CommandRoute {
    /// Hands a message to the command core without waiting: the poll task also carries the
    /// PUBACKs of the station's own telemetry, and waiting for a busy core stalled them
    /// (measured: telemetry down 95 % while commands ran at full speed). When the core's queue
    /// is full the message is acknowledged and dropped, counted (`cmd.dropped_busy`): load is
    /// shed here as the rate limit sheds it in the core.
    fn deliver(&self, message: Received) {
        let name = message
            .topic()
            .strip_prefix(self.prefix.as_str())
            .filter(|name| !name.contains('/'))
            .map(str::to_string);
        let payload = message.payload().to_vec();
        let ack: crate::commands::Ack = {
            let (acks, connection) = (self.acks.clone(), self.connection);
            Box::new(move || {
                let _ = acks.send((connection, message));
            })
        };
        let Some(name) = name else {
            // Not a command topic (nothing else is subscribed): let it go.
            ack();
            return;
        };
        let incoming = Incoming { name, payload, ack };
        match self.tx.try_send(incoming) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(incoming)) => {
                let dropped = self
                    .dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                if dropped == 1 || dropped.is_multiple_of(1000) {
                    tracing::warn!(event = "cmd.dropped_busy", command = %incoming.name, dropped, "the command core is behind: commands are dropped without an answer");
                }
                (incoming.ack)();
            }
            // The core has stopped (shutdown): not acknowledged, the broker sends it again.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
