//! The station's one configuration file (`/etc/stationd/stationd.toml`), typed and validated.
//!
//! Three passes, each with errors that name the file, the line and the key:
//! 1. TOML syntax and shape: serde with `deny_unknown_fields`, so a typo is an error, not a
//!    silently ignored key.
//! 2. Values: newtypes with `TryFrom` (station id pattern, broker URLs, listen addresses).
//! 3. Combinations and the machine: unique device ids, TLS files present when a broker is
//!    `mqtts://`, the outbox's directory writable.
//!
//! A station config may name a hardware profile ([`profile`]): the profile's `[storage]` gives
//! `[buffer]` defaults and its `[[device]]` tables the devices; the station config overrides
//! keys of either (a `[[device]]` with a profile device's id changes that device, `enabled =
//! false` removes it) and adds its own devices.
//!
//! `stationd check-config` runs exactly this; `stationd run` runs it and exits 78 on failure.

mod buffer;
mod commands;
mod devices;
mod dispatch;
#[cfg(test)]
mod docs_check;
mod equipment;
mod host;
pub mod keys;
pub mod profile;
mod staffing;
pub mod udev;
mod values;
mod web;

use buffer::{buffer_settings, RawBuffer};
pub use buffer::{Buffer, Durability};
pub use commands::Commands;
pub(crate) use devices::device_from_table;
use devices::merge_devices;
pub use dispatch::Dispatch;
pub use equipment::Equipment;
pub use host::HostConfig;
pub use staffing::{Car, Staffing};
pub use values::{parse_utc_offset, BrokerUrl, ListenAddr, MqttVersion, StationId, TopicPrefix};
pub use web::{on_all_interfaces, Language, MetricsListener, StatusPage};

pub use crate::drivers::Device;
pub use profile::Profile;

use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A configuration problem, located for the administrator: `file:line: key: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    pub station: Station,
    pub uplink: Uplink,
    pub buffer: Buffer,
    pub devices: Vec<Device>,
    /// The hardware profile `[station] profile` names, if any.
    pub profile: Option<Profile>,
    /// Commands from dispatch: whose, and within what limits.
    pub commands: Commands,
    /// The teams and their rotation (`[staffing]`), if configured.
    pub staffing: Option<Staffing>,
    /// The equipment register's classes and rules (`[equipment]`, or its defaults).
    pub equipment: Equipment,
    /// How orders are relayed and arrival judged (`[dispatch]`, or its defaults).
    pub dispatch: Dispatch,
    /// How the box watches itself (`[box]`, or its defaults).
    pub host: HostConfig,
    /// Where Prometheus scrapes `/metrics` (`[metrics]`), if anywhere.
    pub metrics: Option<MetricsListener>,
    /// The technician's status page (`[status_page]`), if served.
    pub status_page: Option<StatusPage>,
    /// Where else profiles were looked up (`--profile-dir`): a reload looks there again.
    pub profile_dirs: Vec<PathBuf>,
    /// Each device's settings as canonical text (a reload restarts only the devices whose
    /// text changed).
    pub device_settings: std::collections::BTreeMap<String, String>,
    /// Each top-level table of the file but the devices (`station`, `uplink`, …) as canonical
    /// text, to tell what a reload changed.
    pub sections: std::collections::BTreeMap<String, String>,
    /// `sha256:` of the file and its profile, as read: what `config.reload` answers and
    /// `stationd status` shows.
    pub hash: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Station {
    pub id: StationId,
    pub name: String,
    /// Hardware profile: a name looked up as NAME.toml (see [`profile::default_search_dirs`])
    /// or a path to a file. Its `[profile] name` is reported in the birth message.
    #[serde(default)]
    pub profile: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    /// Tried in order; after the last one, back off and start again from the first.
    pub brokers: Spanned<Vec<BrokerUrl>>,
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: TopicPrefix,
    /// MQTT keep-alive in seconds.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: u16,
    /// QoS 1 publishes in flight (sent, not yet acknowledged).
    #[serde(default = "default_window")]
    pub window: u16,
    /// CA certificate(s), PEM, to verify `mqtts://` brokers. Required for TLS.
    #[serde(default)]
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Client certificate chain (PEM) for mutual TLS; needs `client_key`.
    #[serde(default)]
    pub client_cert: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub client_key: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the MQTT password (kept out of the config so the config can be world-readable).
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    /// First reconnect delay ceiling, milliseconds; doubles per failed round up to the cap.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Cap of the reconnect delay, milliseconds.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Cap of the backlog's replay on a broker connection, bytes/s of payload and topic (0:
    /// none). Alarms and live rows are never held by it.
    #[serde(default)]
    pub replay_max_bytes_per_s: u64,
    /// The cap when the route to the broker leaves through an interface the hardware profile
    /// names `role = "cellular"` (0: none).
    #[serde(default = "default_replay_cellular")]
    pub replay_max_bytes_per_s_cellular: u64,
    /// A broker's own cap (its URL as in `brokers`), over the two above.
    #[serde(default)]
    pub replay_max_bytes_per_s_by_broker: std::collections::BTreeMap<String, u64>,
    /// MQTT 5 brokers only: how long the broker may keep each class's messages for a
    /// subscriber that is away, seconds (0 or absent: no expiry).
    #[serde(default)]
    pub message_expiry_s: MessageExpiry,
    /// MQTT 5 brokers only: how long the broker keeps this station's session (the command
    /// subscription and the commands queued for it) after the link is lost, seconds.
    #[serde(default = "default_session_expiry")]
    pub session_expiry_s: u32,
    /// `full` (default): each reconnect waits a random delay up to the backoff's ceiling, so a
    /// fleet that lost its broker together does not come back together. `none` waits the
    /// ceiling itself: only for measuring what the jitter buys (the fleet harness).
    #[serde(default)]
    pub reconnect_jitter: Jitter,
}

/// `[uplink] reconnect_jitter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    #[default]
    Full,
    None,
}

/// `[uplink.message_expiry_s]`: the MQTT 5 message expiry interval per class, seconds; 0 is
/// none. Only what the outbox sends carries it: the retained status and state never expire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageExpiry {
    #[serde(default)]
    pub telemetry: u32,
    #[serde(default)]
    pub event: u32,
    #[serde(default)]
    pub alarm: u32,
}

impl MessageExpiry {
    /// The interval for a message of class `prio` (None: it does not expire).
    pub fn of(&self, prio: crate::event::Priority) -> Option<u32> {
        let s = match prio {
            crate::event::Priority::Telemetry => self.telemetry,
            crate::event::Priority::Event => self.event,
            crate::event::Priority::Alarm => self.alarm,
        };
        (s > 0).then_some(s)
    }
}

impl Uplink {
    /// One line for check-config: the brokers with their protocol, and the MQTT 5 settings.
    pub fn describe(&self) -> String {
        let brokers: Vec<String> = self
            .brokers
            .get_ref()
            .iter()
            .map(|b| format!("{b} (MQTT {})", b.protocol.as_str()))
            .collect();
        let e = &self.message_expiry_s;
        let expiry = |s: u32| {
            if s == 0 {
                "none".to_string()
            } else {
                format!("{s} s")
            }
        };
        format!(
            "{}; MQTT 5 message expiry telemetry {}, event {}, alarm {}; session expiry {} s",
            brokers.join(", "),
            expiry(e.telemetry),
            expiry(e.event),
            expiry(e.alarm),
            self.session_expiry_s
        )
    }

    /// Whether any broker speaks MQTT 5 (the MQTT 5 settings apply only to those).
    pub fn any_mqtt5(&self) -> bool {
        self.brokers
            .get_ref()
            .iter()
            .any(|b| b.protocol == MqttVersion::V5)
    }
}

fn default_topic_prefix() -> TopicPrefix {
    TopicPrefix::try_from("stations".to_string()).expect("the default prefix is valid")
}
fn default_keep_alive() -> u16 {
    30
}
fn default_window() -> u16 {
    256
}
fn default_reconnect_min_ms() -> u64 {
    500
}
fn default_reconnect_max_ms() -> u64 {
    60_000
}
/// 32 kB/s (256 kbit/s): a cellular uplink's worst hour, with room left for live data.
fn default_replay_cellular() -> u64 {
    32_000
}
/// A day: a station down longer than that finds its command subscription gone and makes it
/// again; the commands queued meanwhile have expired long before (they live minutes).
fn default_session_expiry() -> u32 {
    86_400
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    station: Station,
    uplink: Uplink,
    #[serde(default)]
    buffer: Option<Spanned<RawBuffer>>,
    /// Changes to the profile's serial ports (this box's adapter serial numbers, a baud rate).
    #[serde(default)]
    serial: Vec<Spanned<profile::SerialPort>>,
    #[serde(default)]
    device: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    commands: commands::RawCommands,
    #[serde(default)]
    staffing: Option<Spanned<staffing::RawStaffing>>,
    #[serde(default)]
    equipment: Option<Spanned<equipment::RawEquipment>>,
    #[serde(default)]
    dispatch: Option<Spanned<dispatch::RawDispatch>>,
    #[serde(default, rename = "box")]
    host: Option<Spanned<host::RawBox>>,
    #[serde(default)]
    metrics: Option<Spanned<web::RawMetrics>>,
    #[serde(default)]
    status_page: Option<Spanned<web::RawStatusPage>>,
}

impl Config {
    /// Reads and validates `path`, looking profiles up in the default places.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &[])
    }

    /// Reads and validates `path`; profiles are looked up in `profile_dirs` first.
    pub fn load_with(path: &Path, profile_dirs: &[PathBuf]) -> Result<Config, ConfigError> {
        let text = read_text(path, "the configuration file")?;
        let mut cfg = Config::parse_with(path, &text, profile_dirs)?;
        cfg.profile_dirs = profile_dirs.to_vec();
        Ok(cfg)
    }

    /// Reads the same file again, with the same profile directories (a reload).
    pub fn reload(&self) -> Result<Config, ConfigError> {
        Config::load_with(&self.source, &self.profile_dirs)
    }

    /// Validates `text` as if read from `path` (used in messages and to find profiles named
    /// relative to it; all other paths in the file are taken as written).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(path, text, &[])
    }

    pub fn parse_with(
        path: &Path,
        text: &str,
        profile_dirs: &[PathBuf],
    ) -> Result<Config, ConfigError> {
        let err = |span: Option<Range<usize>>, key: Option<&str>, message: String| ConfigError {
            file: path.to_path_buf(),
            line: span.map(|s| line_of(text, s.start)),
            key: key.map(str::to_string),
            message,
        };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| err(e.span(), None, e.message().trim().to_string()))?;

        let mut profile = match &raw.station.profile {
            None => None,
            Some(name) => {
                let mut dirs = profile_dirs.to_vec();
                dirs.extend(profile::default_search_dirs(path));
                let file = Profile::find(name.get_ref(), path, &dirs)
                    .map_err(|why| err(Some(name.span()), Some("station.profile"), why))?;
                Some(Profile::load(&file)?)
            }
        };
        for change in raw.serial {
            let span = change.span();
            let change = change.into_inner();
            let key = format!("serial {:?}", change.name);
            let Some(p) = profile.as_mut() else {
                return Err(err(
                    Some(span),
                    Some(&key),
                    "[[serial]] changes a port of the hardware profile, and [station] names no profile; give the device a `path` instead".into(),
                ));
            };
            p.apply_serial_change(change)
                .map_err(|why| err(Some(span), Some(&key), why))?;
        }

        let (devices, device_settings) = merge_devices(path, text, profile.as_ref(), raw.device)?;

        let storage = profile.as_ref().map(|p| &p.storage);
        let buffer = buffer_settings(raw.buffer, storage, &err)?;

        let up = &raw.uplink;
        if up.brokers.get_ref().is_empty() {
            return Err(err(
                Some(up.brokers.span()),
                Some("uplink.brokers"),
                "at least one broker is needed".into(),
            ));
        }
        if up.window == 0 {
            return Err(err(
                None,
                Some("uplink.window"),
                "must be at least 1".into(),
            ));
        }
        if up.reconnect_min_ms == 0 || up.reconnect_min_ms > up.reconnect_max_ms {
            return Err(err(
                None,
                Some("uplink.reconnect_min_ms"),
                "must be at least 1 and not above reconnect_max_ms".into(),
            ));
        }
        for url in up.replay_max_bytes_per_s_by_broker.keys() {
            let known =
                BrokerUrl::try_from(url.clone()).is_ok_and(|b| up.brokers.get_ref().contains(&b));
            if !known {
                return Err(err(
                    Some(up.brokers.span()),
                    Some("uplink.replay_max_bytes_per_s_by_broker"),
                    format!("{url:?} is not one of `brokers`"),
                ));
            }
        }
        let any_tls = up.brokers.get_ref().iter().any(|b| b.tls);
        if any_tls && up.ca_file.is_none() {
            return Err(err(
                Some(up.brokers.span()),
                Some("uplink.ca_file"),
                "an mqtts:// broker needs `ca_file` (the PEM CA that signed the broker's certificate)".into(),
            ));
        }
        if up.client_cert.is_some() != up.client_key.is_some() {
            return Err(err(
                None,
                Some("uplink.client_cert"),
                "client_cert and client_key go together".into(),
            ));
        }
        for (key, file) in [
            ("uplink.ca_file", &up.ca_file),
            ("uplink.client_cert", &up.client_cert),
            ("uplink.client_key", &up.client_key),
            ("uplink.password_file", &up.password_file),
        ] {
            if let Some(f) = file {
                if let Err(e) = std::fs::File::open(f.get_ref()) {
                    return Err(err(
                        Some(f.span()),
                        Some(key),
                        format!("cannot read {}: {e}", f.get_ref().display()),
                    ));
                }
            }
        }
        let commands = Commands::check(raw.commands)
            .map_err(|(span, key, message)| err(span, Some(key), message))?;
        let staffing = match raw.staffing {
            None => None,
            Some(s) => {
                let span = s.span();
                Some(
                    s.into_inner()
                        .check()
                        .map_err(|message| err(Some(span), Some("staffing"), message))?,
                )
            }
        };
        let equipment = match raw.equipment {
            None => Equipment::default(),
            Some(e) => {
                let span = e.span();
                e.into_inner()
                    .check()
                    .map_err(|message| err(Some(span), Some("equipment"), message))?
            }
        };
        let dispatch = match raw.dispatch {
            None => Dispatch::default(),
            Some(d) => {
                let span = d.span();
                d.into_inner()
                    .check()
                    .map_err(|message| err(Some(span), Some("dispatch"), message))?
            }
        };
        let host = match raw.host {
            None => host::RawBox::default()
                .check(&buffer.path)
                .map_err(|message| err(None, Some("box"), message))?,
            Some(h) => {
                let span = h.span();
                h.into_inner()
                    .check(&buffer.path)
                    .map_err(|message| err(Some(span), Some("box"), message))?
            }
        };
        let metrics = match raw.metrics {
            None => None,
            Some(m) => {
                let span = m.span();
                Some(
                    m.into_inner()
                        .check()
                        .map_err(|(key, message)| err(Some(span), Some(key), message))?,
                )
            }
        };
        let status_page = match raw.status_page {
            None => None,
            Some(p) => {
                let span = p.span();
                Some(
                    p.into_inner()
                        .check()
                        .map_err(|(key, message)| err(Some(span), Some(key), message))?,
                )
            }
        };
        let sections = text
            .parse::<toml::Table>()
            .map(|t| {
                t.into_iter()
                    .filter(|(k, _)| k != "device" && k != "serial")
                    .map(|(k, v)| (k, v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let hash = config_hash(text, profile.as_ref());
        Ok(Config {
            source: path.to_path_buf(),
            station: raw.station,
            uplink: raw.uplink,
            buffer,
            devices,
            profile,
            commands,
            staffing,
            equipment,
            dispatch,
            host,
            metrics,
            status_page,
            profile_dirs: Vec::new(),
            device_settings,
            sections,
            hash,
        })
    }

    /// `{topic_prefix}/{station.id}`, the root of every topic.
    pub fn topic_root(&self) -> String {
        format!(
            "{}/{}",
            self.uplink.topic_prefix.as_str(),
            self.station.id.as_str()
        )
    }
}

/// `sha256:HEX` of the config's text and its profile file's bytes (the profile as read now).
fn config_hash(text: &str, profile: Option<&Profile>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(text.as_bytes());
    if let Some(p) = profile {
        h.update(b"\0profile\0");
        h.update(std::fs::read(&p.source).unwrap_or_default());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A file's text, or an error naming it as `what`.
fn read_text(path: &Path, what: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: None,
        message: format!("cannot read {what}: {e}"),
    })
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(dir: &Path) -> String {
        format!(
            r#"
[station]
id = "jn-szq-wd01"
name = "万达驻巡站"

[uplink]
brokers = ["mqtt://127.0.0.1:1883", "mqtt://[::1]"]

[buffer]
path = "{}/outbox.db"

[[device]]
id = "ingest0"
driver = "jsonl"
listen = "tcp://127.0.0.1:7070"
"#,
            dir.display()
        )
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/stationd/stationd.toml"), text)
    }

    #[test]
    fn the_contract_example_parses_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse(&base(dir.path())).unwrap();
        assert_eq!(c.station.id.as_str(), "jn-szq-wd01");
        assert_eq!(c.topic_root(), "stations/jn-szq-wd01");
        assert_eq!(
            c.uplink.brokers.get_ref()[1],
            BrokerUrl {
                tls: false,
                host: "::1".into(),
                port: 1883,
                protocol: MqttVersion::V311,
            }
        );
        assert_eq!(c.buffer.max_bytes, 1 << 30);
        assert_eq!(c.buffer.durability, Durability::PowerCut);
        assert_eq!(c.devices.len(), 1);
    }

    #[test]
    fn unknown_key_is_reported_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = base(dir.path()).replace("[buffer]", "[buffer]\nmax_byte = 5");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(
            e.to_string().starts_with("/etc/stationd/stationd.toml:10"),
            "{e}"
        );
        assert!(e.message.contains("max_byte"), "{e}");
    }

    #[test]
    fn an_outbox_named_like_the_daemons_other_stores_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in crate::side_store::NAMES {
            let e = parse(&base(dir.path()).replace("outbox.db", name)).unwrap_err();
            assert_eq!(e.line, Some(10), "{e}");
            assert!(
                e.message
                    .starts_with(&format!("{name} is the name of a file the daemon keeps")),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_station_id_names_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let e = parse(&base(dir.path()).replace("jn-szq-wd01", "JN_01")).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("a-z, 0-9 and '-'"), "{e}");
    }

    #[test]
    fn device_errors_name_the_device_and_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let e = parse(&base(dir.path()).replace("listen =", "lisen =")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("device \"ingest0\""));
        assert!(e.message.contains("lisen"), "{e}");
        assert!(e.line.is_some());
        let e = parse(&base(dir.path()).replace("driver = \"jsonl\"", "driver = \"modbus\""))
            .unwrap_err();
        assert!(e.message.contains("unknown driver \"modbus\""), "{e}");
        let dup = format!("{}\n[[device]]\nid = \"ingest0\"\ndriver = \"jsonl\"\nlisten = \"unix:///run/x.sock\"\n", base(dir.path()));
        assert!(parse(&dup).unwrap_err().message.contains("used twice"));
    }

    #[test]
    fn mqtt5_keys_and_the_jitter_switch() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse(&base(dir.path())).unwrap();
        assert_eq!(c.uplink.reconnect_jitter, Jitter::Full);
        assert_eq!(c.uplink.session_expiry_s, 86_400);
        assert_eq!(
            c.uplink
                .message_expiry_s
                .of(crate::event::Priority::Telemetry),
            None
        );
        let text = base(dir.path()).replace(
            "[uplink]",
            "[uplink]\nreconnect_jitter = \"none\"\nmessage_expiry_s = { telemetry = 600 }",
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.uplink.reconnect_jitter, Jitter::None);
        assert_eq!(
            c.uplink
                .message_expiry_s
                .of(crate::event::Priority::Telemetry),
            Some(600)
        );
        assert_eq!(
            c.uplink.message_expiry_s.of(crate::event::Priority::Alarm),
            None
        );
        let bad = base(dir.path()).replace("[uplink]", "[uplink]\nmessage_expiry_s = { evnt = 5 }");
        assert!(parse(&bad).unwrap_err().message.contains("evnt"));
    }

    #[test]
    fn broker_urls() {
        let ok = |s: &str| BrokerUrl::try_from(s.to_string()).unwrap();
        assert_eq!(
            ok("mqtts://central.example"),
            BrokerUrl {
                tls: true,
                host: "central.example".into(),
                port: 8883,
                protocol: MqttVersion::V311,
            }
        );
        assert_eq!(
            ok("mqtt://10.0.0.1:1884/"),
            BrokerUrl {
                tls: false,
                host: "10.0.0.1".into(),
                port: 1884,
                protocol: MqttVersion::V311,
            }
        );
        let v5 = ok("mqtts5://central.example");
        assert_eq!(
            (v5.tls, v5.port, v5.protocol),
            (true, 8883, MqttVersion::V5)
        );
        assert_eq!(v5.to_string(), "mqtts5://central.example:8883");
        let v5 = ok("mqtt5://[::1]:1884");
        assert_eq!(
            (v5.tls, v5.port, v5.protocol),
            (false, 1884, MqttVersion::V5)
        );
        assert_eq!(ok(&v5.to_string()), v5, "Display round-trips");
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://u@h",
            "mqtt://[::1",
        ] {
            assert!(BrokerUrl::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_needs_a_ca_and_the_buffer_dir_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let e = parse(&base(dir.path()).replace("mqtt://127.0.0.1:1883", "mqtts://127.0.0.1"))
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("uplink.ca_file"));
        let e = parse(&base(Path::new("/nonexistent/dir"))).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("buffer.path"));
        assert!(e.message.contains("does not exist"), "{e}");
        assert_eq!(e.line, Some(10));
    }

    /// A profile file in `dir/hw-profiles/box.toml` and a station config using it.
    fn with_profile(
        dir: &Path,
        profile: &str,
        station_devices: &str,
    ) -> Result<Config, ConfigError> {
        std::fs::create_dir_all(dir.join("hw-profiles")).unwrap();
        std::fs::write(dir.join("hw-profiles/box.toml"), profile).unwrap();
        let text = format!(
            "[station]\nid = \"s1\"\nname = \"n\"\nprofile = \"box\"\n\n[uplink]\nbrokers = [\"mqtt://127.0.0.1\"]\n{station_devices}"
        );
        let path = dir.join("stationd.toml");
        std::fs::write(&path, &text).unwrap();
        Config::load(&path)
    }

    fn box_profile(dir: &Path) -> String {
        format!(
            r#"[profile]
name = "box"
description = "test box"
arch = "any"

[storage]
buffer_path = "{}/outbox.db"
buffer_max_bytes = 2097152

[[serial]]
name = "com1"
path = "/dev/ttyS0"
baud = 4800
parity = "even"

[[device]]
id = "gps0"
driver = "nmea"
port = "com1"

[[device]]
id = "ingest0"
driver = "jsonl"
listen = "tcp://127.0.0.1:7070"
"#,
            dir.display()
        )
    }

    fn nmea(c: &Config, id: &str) -> crate::drivers::nmea::NmeaDevice {
        c.devices
            .iter()
            .filter(|d| d.id() == id)
            .find_map(|d| {
                d.as_any()
                    .downcast_ref::<crate::drivers::nmea::NmeaDevice>()
            })
            .unwrap_or_else(|| panic!("no nmea device {id}"))
            .clone()
    }

    #[test]
    fn a_profile_gives_devices_ports_and_buffer_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = with_profile(dir.path(), &box_profile(dir.path()), "").unwrap();
        assert_eq!(c.profile.as_ref().unwrap().name, "box");
        assert_eq!(c.buffer.path, dir.path().join("outbox.db"));
        assert_eq!(c.buffer.max_bytes, 2097152);
        let ids: Vec<&str> = c.devices.iter().map(|d| d.id()).collect();
        assert_eq!(ids, ["gps0", "ingest0"]);
        let gps = nmea(&c, "gps0");
        assert_eq!(gps.line.path, Path::new("/dev/ttyS0"));
        assert_eq!((gps.line.baud, gps.line.parity.as_str()), (4800, "even"));
    }

    #[test]
    fn the_station_config_overrides_disables_and_adds() {
        let dir = tempfile::tempdir().unwrap();
        let station = r#"
[buffer]
max_bytes = 3145728

[[device]]
id = "gps0"
baud = 9600
min_distance_m = 10

[[device]]
id = "ingest0"
enabled = false

[[device]]
id = "gps1"
driver = "nmea"
path = "/dev/ttyUSB0"
"#;
        let c = with_profile(dir.path(), &box_profile(dir.path()), station).unwrap();
        assert_eq!(c.buffer.max_bytes, 3145728);
        assert_eq!(
            c.buffer.path,
            dir.path().join("outbox.db"),
            "kept from the profile"
        );
        let ids: Vec<&str> = c.devices.iter().map(|d| d.id()).collect();
        assert_eq!(ids, ["gps0", "gps1"]);
        let gps = nmea(&c, "gps0");
        assert_eq!((gps.line.baud, gps.line.parity.as_str()), (9600, "even"));
        assert_eq!(gps.min_distance_m, 10.0);
        assert_eq!(gps.line.path, Path::new("/dev/ttyS0"));
    }

    #[test]
    fn profile_errors_point_at_the_profile_and_override_errors_at_the_station() {
        let dir = tempfile::tempdir().unwrap();
        let bad = box_profile(dir.path()).replace("port = \"com1\"", "port = \"com9\"");
        let e = with_profile(dir.path(), &bad, "").unwrap_err();
        assert_eq!(e.file, dir.path().join("hw-profiles/box.toml"), "{e}");
        assert_eq!(e.line, Some(16), "{e}");
        assert!(
            e.message.contains("com9") && e.message.contains("it has: com1"),
            "{e}"
        );

        let e = with_profile(
            dir.path(),
            &box_profile(dir.path()),
            "\n[[device]]\nid = \"gps0\"\nbaud = 0\n",
        )
        .unwrap_err();
        assert_eq!(e.file, dir.path().join("stationd.toml"), "{e}");
        assert_eq!(e.line, Some(9), "the overriding [[device]] table: {e}");
        assert!(e.message.contains("baud must be positive"), "{e}");
        assert!(
            e.message.contains("box.toml:16"),
            "names the device it overrides: {e}"
        );

        let e = with_profile(
            dir.path(),
            &box_profile(dir.path()),
            "\n[[device]]\nid = \"gps0\"\ndriver = \"jsonl\"\n",
        )
        .unwrap_err();
        assert!(e.message.contains("another driver"), "{e}");

        let e = with_profile(
            dir.path(),
            &box_profile(dir.path()).replace("arch = \"any\"", "arch = \"sparc\""),
            "",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.file.ends_with("box.toml")),
            (Some(4), true),
            "{e}"
        );
    }

    #[test]
    fn the_station_config_changes_a_profile_port_and_devices_follow() {
        let dir = tempfile::tempdir().unwrap();
        let station = "\n[[serial]]\nname = \"com1\"\nbaud = 19200\n";
        let c = with_profile(dir.path(), &box_profile(dir.path()), station).unwrap();
        let gps = nmea(&c, "gps0");
        assert_eq!((gps.line.baud, gps.line.parity.as_str()), (19200, "even"));

        // A port moved from the board to a USB adapter with this box's serial number.
        let station = "\n[[serial]]\nname = \"com1\"\nusb = { vendor = \"0403\", product = \"6001\", serial = \"A10KZ3QX\" }\n";
        let c = with_profile(dir.path(), &box_profile(dir.path()), station).unwrap();
        assert_eq!(nmea(&c, "gps0").line.path, Path::new("/dev/stationd/com1"));
        let port = c.profile.as_ref().unwrap().port("com1").unwrap();
        assert_eq!(
            port.usb.as_ref().unwrap().serial.as_deref(),
            Some("A10KZ3QX")
        );
        assert_eq!(port.path, None);

        let e = with_profile(
            dir.path(),
            &box_profile(dir.path()),
            "\n[[serial]]\nname = \"com7\"\nbaud = 9600\n",
        )
        .unwrap_err();
        assert_eq!(e.file, dir.path().join("stationd.toml"));
        assert_eq!(e.line, Some(9), "{e}");
        assert!(
            e.message.contains("no serial port \"com7\" (it has: com1)"),
            "{e}"
        );
        let e = parse(&format!(
            "{}\n[[serial]]\nname = \"com1\"\nbaud = 9600\n",
            base(dir.path())
        ))
        .unwrap_err();
        assert!(e.message.contains("names no profile"), "{e}");
    }

    #[test]
    fn buffer_errors_without_a_path_and_with_a_bad_profile_path() {
        let dir = tempfile::tempdir().unwrap();
        let no_path = base(dir.path()).replace(
            &format!("path = \"{}/outbox.db\"", dir.path().display()),
            "max_bytes = 2097152",
        );
        let e = parse(&no_path).unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("buffer.path"), Some(9)),
            "{e}"
        );
        assert!(
            e.message.contains("buffer_path in the hardware profile"),
            "{e}"
        );
        // A profile path that cannot be used: reported for buffer.path, no station line.
        let bad = box_profile(dir.path()).replace(
            &format!("buffer_path = \"{}/outbox.db\"", dir.path().display()),
            "buffer_path = \"/nonexistent/outbox.db\"",
        );
        let e = with_profile(dir.path(), &bad, "").unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("buffer.path"), None),
            "{e}"
        );
        assert!(e.message.contains("does not exist"), "{e}");
    }

    #[test]
    fn a_missing_profile_lists_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("hw-profiles")).unwrap();
        std::fs::write(dir.path().join("hw-profiles/other.toml"), "").unwrap();
        let text = "[station]\nid = \"s1\"\nname = \"n\"\nprofile = \"nope\"\n[uplink]\nbrokers = [\"mqtt://h\"]\n";
        let e = Config::parse(&dir.path().join("stationd.toml"), text).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(
            e.message.contains("not found") && e.message.contains("other"),
            "{e}"
        );
        // A port without a profile says what to do instead.
        let text = format!(
            "{}\n[[device]]\nid = \"g\"\ndriver = \"nmea\"\nport = \"com1\"\n",
            base(dir.path())
        );
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("use `path` instead"), "{e}");
    }

    #[test]
    fn the_shipped_profiles_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in ["aarch64-gateway", "armv7-box", "generic-x86-4com", "sim"] {
            let p = Profile::load(&dir.join(format!("hw-profiles/{name}.toml")))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.name, name);
            assert!(p.device_count() > 0 && !p.serial.is_empty(), "{name}");
        }
    }

    #[test]
    fn listen_addresses() {
        assert!(matches!(
            ListenAddr::try_from("unix:///run/stationd/ingest.sock".to_string()),
            Ok(ListenAddr::Unix(_))
        ));
        assert!(ListenAddr::try_from("tcp://localhost:7070".to_string()).is_err());
        assert!(ListenAddr::try_from("unix://relative".to_string()).is_err());
    }
}
