//! What the uplink is configured with, from `[uplink]`: brokers, TLS, credentials, backoff,
//! the status topic and the birth / last-will / offline payloads (docs/CONTRACT.md, "Status").

use super::tls;
use crate::backoff::Backoff;
use crate::config::{BrokerUrl, Config, MessageExpiry};
use crate::event::Priority;
use rumqttc::v5::mqttbytes::v5::{LastWill as LastWill5, PublishProperties};
use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use std::sync::Arc;
use std::time::Duration;

/// Largest MQTT packet either way (a jsonl line is at most 64 KiB, its envelope a bit more).
const MAX_PACKET: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct UplinkOptions {
    pub brokers: Vec<BrokerUrl>,
    /// `{topic_prefix}/{station}`.
    pub topic_root: String,
    pub station: String,
    pub client_id: String,
    pub keep_alive: Duration,
    pub window: u16,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub credentials: Option<(String, String)>,
    pub backoff: Backoff,
    pub version: String,
    pub boot_id: String,
    pub profile: Option<String>,
    /// The backlog replay's caps (`[uplink] replay_max_bytes_per_s…`).
    pub replay: ReplayCaps,
    /// MQTT 5 brokers: each class's message expiry, and the session's expiry (seconds).
    pub message_expiry: MessageExpiry,
    pub session_expiry_s: u32,
    /// Whether reconnect delays are drawn at random under the ceiling (`[uplink]
    /// reconnect_jitter`, on unless measuring without it).
    pub jitter: bool,
}

/// The backlog replay's bandwidth caps, bytes/s; 0 is none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayCaps {
    pub default: u64,
    pub cellular: u64,
    pub by_broker: Vec<(BrokerUrl, u64)>,
    /// The hardware profile's cellular interfaces (`[[network]] role = "cellular"`).
    pub cellular_interfaces: Vec<String>,
}

impl ReplayCaps {
    /// The cap on a connection to `broker` whose route leaves through `interface`, and why.
    pub fn for_link(&self, broker: &BrokerUrl, interface: Option<&str>) -> (Option<u64>, String) {
        let cap = |n: u64| (n > 0).then_some(n);
        if let Some((_, n)) = self.by_broker.iter().find(|(b, _)| b == broker) {
            return (
                cap(*n),
                format!("replay_max_bytes_per_s_by_broker for {broker}"),
            );
        }
        match interface {
            Some(i) if self.cellular_interfaces.iter().any(|c| c == i) => (
                cap(self.cellular),
                format!(
                    "the route to {broker} leaves through {i}, cellular in the hardware profile"
                ),
            ),
            Some(i) => (
                cap(self.default),
                format!("the route to {broker} leaves through {i}"),
            ),
            None => (
                cap(self.default),
                format!("the route to {broker} is not known here"),
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot read the MQTT password file {path}: {source}")]
    Password {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl UplinkOptions {
    pub fn from_config(cfg: &Config, boot_id: &str) -> Result<UplinkOptions, UplinkError> {
        let up = &cfg.uplink;
        let tls = match &up.ca_file {
            Some(ca) => Some(tls::client_config(
                ca.get_ref(),
                up.client_cert
                    .as_ref()
                    .zip(up.client_key.as_ref())
                    .map(|(c, k)| (c.get_ref().as_path(), k.get_ref().as_path())),
            )?),
            None => None,
        };
        let credentials = match (&up.username, &up.password_file) {
            (Some(u), Some(p)) => {
                let pw =
                    std::fs::read_to_string(p.get_ref()).map_err(|e| UplinkError::Password {
                        path: p.get_ref().clone(),
                        source: e,
                    })?;
                Some((u.clone(), pw.trim_end_matches(['\n', '\r']).to_string()))
            }
            (Some(u), None) => Some((u.clone(), String::new())),
            _ => None,
        };
        Ok(UplinkOptions {
            brokers: up.brokers.get_ref().clone(),
            topic_root: cfg.topic_root(),
            station: cfg.station.id.as_str().to_string(),
            client_id: format!("stationd-{}", cfg.station.id.as_str()),
            keep_alive: Duration::from_secs(up.keep_alive_secs.max(5) as u64),
            window: up.window,
            tls,
            credentials,
            backoff: Backoff {
                min_ms: up.reconnect_min_ms,
                max_ms: up.reconnect_max_ms,
            },
            version: env!("CARGO_PKG_VERSION").to_string(),
            boot_id: boot_id.to_string(),
            profile: cfg.profile.as_ref().map(|p| p.name.clone()),
            replay: ReplayCaps {
                default: up.replay_max_bytes_per_s,
                cellular: up.replay_max_bytes_per_s_cellular,
                by_broker: up
                    .replay_max_bytes_per_s_by_broker
                    .iter()
                    .filter_map(|(url, n)| BrokerUrl::try_from(url.clone()).ok().map(|b| (b, *n)))
                    .collect(),
                cellular_interfaces: cfg
                    .profile
                    .iter()
                    .flat_map(|p| &p.network)
                    .filter(|n| n.role == crate::config::profile::NetworkRole::Cellular)
                    .map(|n| n.interface.clone())
                    .collect(),
            },
            message_expiry: up.message_expiry_s,
            session_expiry_s: up.session_expiry_s,
            jitter: up.reconnect_jitter == crate::config::Jitter::Full,
        })
    }

    pub(super) fn status_topic(&self) -> String {
        format!("{}/status", self.topic_root)
    }

    pub(super) fn status_payload(
        &self,
        state: &str,
        reason: Option<&str>,
        broker: Option<&BrokerUrl>,
    ) -> Vec<u8> {
        let (ts_ms, clock) = crate::clock::now();
        let mut v = serde_json::json!({
            "v": crate::event::CONTRACT_VERSION,
            "station": self.station,
            "state": state,
            "version": self.version,
            "boot_id": self.boot_id,
            "profile": self.profile,
        });
        if state == "online" || matches!(reason, Some("shutdown" | "reconfigured")) {
            v["ts"] = crate::event::format_ts_ms(ts_ms).into();
            v["clock"] = clock.as_str().into();
        }
        if let Some(r) = reason {
            v["reason"] = r.into();
        }
        if let Some(b) = broker {
            v["broker"] = b.to_string().into();
        }
        serde_json::to_vec(&v).expect("status serialises")
    }

    pub(super) fn mqtt_options(&self, broker: &BrokerUrl) -> MqttOptions {
        let mut o = MqttOptions::new(self.client_id.clone(), broker.host.clone(), broker.port);
        o.set_keep_alive(self.keep_alive)
            // A persistent session: the broker keeps the subscription to `P/cmd/+` and queues
            // commands (QoS 1) while the link is down (decision 0010). What the station
            // publishes is still resent by the uplink from the outbox, not by rumqttc: each
            // connection has a fresh client with nothing in flight.
            .set_clean_session(false)
            // A command is acknowledged only once what it caused is safe (commands.rs).
            .set_manual_acks(true)
            .set_inflight(self.window)
            .set_request_channel_capacity(2 * self.window as usize + 16)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_last_will(LastWill::new(
                self.status_topic(),
                self.status_payload("offline", Some("connection lost"), None),
                QoS::AtLeastOnce,
                true,
            ));
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(t) = self.transport(broker) {
            o.set_transport(t);
        }
        o
    }

    /// The same session in MQTT 5 (`mqtt5://`, `mqtts5://`): persistent for
    /// `session_expiry_s` after the link goes, at most `window` publishes in flight (fewer when
    /// the broker's receive maximum says so).
    pub(super) fn mqtt5_options(&self, broker: &BrokerUrl) -> rumqttc::v5::MqttOptions {
        let mut o =
            rumqttc::v5::MqttOptions::new(self.client_id.clone(), broker.host.clone(), broker.port);
        o.set_keep_alive(self.keep_alive)
            // MQTT 5 splits 3.1.1's clean session in two: resume the session (clean start
            // off), and keep it for a while after the link goes (session expiry; 0 would end
            // it at once, and with it the command subscription).
            .set_clean_start(false)
            .set_session_expiry_interval(Some(self.session_expiry_s))
            .set_manual_acks(true)
            .set_outgoing_inflight_upper_limit(self.window)
            .set_request_channel_capacity(2 * self.window as usize + 16)
            .set_max_packet_size(Some(MAX_PACKET as u32))
            .set_connection_timeout(super::machine::CONNECT_TIMEOUT_MS / 1000)
            .set_last_will(LastWill5::new(
                self.status_topic(),
                self.status_payload("offline", Some("connection lost"), None),
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                true,
                None,
            ));
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(t) = self.transport(broker) {
            o.set_transport(t);
        }
        o
    }

    /// TLS for an `mqtts://` or `mqtts5://` broker.
    fn transport(&self, broker: &BrokerUrl) -> Option<Transport> {
        let cfg = self.tls.as_ref().filter(|_| broker.tls)?;
        Some(Transport::tls_with_config(TlsConfiguration::Rustls(
            cfg.clone(),
        )))
    }

    /// What an MQTT 5 publish carries besides topic and payload: the payload is UTF-8 (JSON);
    /// an outbox row's `seq` and `prio` as user properties, so a broker's rules or a bridge
    /// can route without parsing the JSON, and its class's message expiry. The retained
    /// status and state (no row) never expire.
    pub(super) fn publish_properties(&self, row: Option<(u64, Priority)>) -> PublishProperties {
        PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: row.and_then(|(_, prio)| self.message_expiry.of(prio)),
            user_properties: row
                .map(|(seq, prio)| {
                    vec![
                        ("seq".to_string(), seq.to_string()),
                        ("prio".to_string(), prio.as_str().to_string()),
                    ]
                })
                .unwrap_or_default(),
            ..Default::default()
        }
    }
}
