//! The typed values of the configuration: each rejects what it cannot be at parse time
//! (CONVENTIONS: newtypes with `TryFrom`), so serde reports the bad value at its line.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[a-z0-9-]{1,64}`, unique in the city; part of every topic.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct StationId(String);

impl StationId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StationId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(StationId(s))
        } else {
            Err(format!(
                "station id {s:?} must be 1-64 characters of a-z, 0-9 and '-'"
            ))
        }
    }
}

/// A topic prefix: non-empty MQTT topic levels without wildcards or a leading/trailing '/'.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TopicPrefix(String);

impl TopicPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TopicPrefix {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty()
            || s.starts_with('/')
            || s.ends_with('/')
            || s.contains(['+', '#', '\0'])
            || s.contains("//")
        {
            Err(format!(
                "topic_prefix {s:?} must be MQTT topic levels without wildcards, e.g. \"stations\""
            ))
        } else {
            Ok(TopicPrefix(s))
        }
    }
}

/// `mqtt://host[:port]` or `mqtts://host[:port]` (1883 / 8883 by default); `mqtt5://` and
/// `mqtts5://` speak MQTT 5 to that broker instead of 3.1.1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub protocol: MqttVersion,
}

/// The MQTT protocol version spoken to one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    /// MQTT 3.1.1, the default: every broker speaks it.
    #[default]
    V311,
    /// MQTT 5: message expiry, user properties, session expiry, reason codes.
    V5,
}

impl MqttVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            MqttVersion::V311 => "3.1.1",
            MqttVersion::V5 => "5",
        }
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.tls, self.protocol) {
            (false, MqttVersion::V311) => "mqtt",
            (true, MqttVersion::V311) => "mqtts",
            (false, MqttVersion::V5) => "mqtt5",
            (true, MqttVersion::V5) => "mqtts5",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl TryFrom<String> for BrokerUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        // A hand-written parser: the url crate would pull IDNA/ICU tables into a 4 MB binary
        // for two schemes whose grammar is host[:port].
        let bad = |why: &str| {
            format!("broker URL {s:?}: {why} (expected mqtt://host:port or mqtts://host:port; mqtt5:// or mqtts5:// for MQTT 5)")
        };
        let (tls, protocol, rest) = if let Some(r) = s.strip_prefix("mqtt://") {
            (false, MqttVersion::V311, r)
        } else if let Some(r) = s.strip_prefix("mqtts://") {
            (true, MqttVersion::V311, r)
        } else if let Some(r) = s.strip_prefix("mqtt5://") {
            (false, MqttVersion::V5, r)
        } else if let Some(r) = s.strip_prefix("mqtts5://") {
            (true, MqttVersion::V5, r)
        } else {
            return Err(bad("unknown scheme"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("paths, queries and user info are not supported"));
        }
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
            (h, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("missing host"));
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad("port must be 1-65535")),
            },
        };
        Ok(BrokerUrl {
            tls,
            host: host.to_string(),
            port,
            protocol,
        })
    }
}

/// Where a listening driver accepts connections.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Some(a) = s.strip_prefix("tcp://") {
            a.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| {
                format!("listen {s:?}: expected tcp://IP:PORT, e.g. tcp://127.0.0.1:7070")
            })
        } else if let Some(p) = s.strip_prefix("unix://") {
            if p.starts_with('/') {
                Ok(ListenAddr::Unix(PathBuf::from(p)))
            } else {
                Err(format!("listen {s:?}: a unix socket path must be absolute"))
            }
        } else {
            Err(format!(
                "listen {s:?}: expected tcp://IP:PORT or unix:///absolute/path"
            ))
        }
    }
}

/// `+08:00` / `-05:00` → minutes east of UTC; `None` if it is not such an offset.
pub fn parse_utc_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h.abs() <= 14 && (0..60).contains(&m) && h >= 0).then_some(sign * (h * 60 + m))
}
