//! A UPS through Network UPS Tools: the box asks `upsd` (NUT's server, local or on the station's
//! network) for its UPS's variables with the NUT network protocol's `LIST VAR`, read-only and
//! without a login. The parser is pure; the query is one short TCP exchange per reading.
//! (Protocol: networkupstools.org, "Network protocol information": `LIST VAR <ups>` answers
//! `BEGIN LIST VAR <ups>`, `VAR <ups> <name> "<value>"` lines, `END LIST VAR <ups>`, or
//! `ERR <CODE>`.)

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Longest answer taken (a UPS has a few dozen variables).
const MAX_LINES: usize = 1000;
const TIMEOUT: Duration = Duration::from_secs(3);

/// `upsname@host:port` as `upsc` writes it (host defaults to localhost, port to 3493).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsAddr {
    pub ups: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for UpsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.ups, self.host, self.port)
    }
}

impl UpsAddr {
    pub fn parse(s: &str) -> Result<UpsAddr, String> {
        let (ups, rest) = s.split_once('@').unwrap_or((s, "localhost"));
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| format!("{s:?}: the port {p:?} is not a number"))?,
            ),
            None => (rest, 3493),
        };
        let ok = |v: &str| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !ok(ups) || !ok(host) {
            return Err(format!(
                "{s:?}: expected UPSNAME@HOST[:PORT] as upsc takes it, e.g. ups@127.0.0.1:3493"
            ));
        }
        Ok(UpsAddr {
            ups: ups.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

/// What the UPS says.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Power {
    pub source: String,
    /// `ups.status` flags: `OL` on line, `OB` on battery, `LB` low battery, `CHRG`, …
    pub status: Vec<String>,
    pub on_battery: bool,
    pub low_battery: bool,
    pub battery_charge_pct: Option<f64>,
    pub battery_runtime_s: Option<f64>,
    pub input_voltage: Option<f64>,
}

/// The variables of a `LIST VAR` answer (every line), or the server's error.
pub fn parse_list_var(ups: &str, lines: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    let prefix = format!("VAR {ups} ");
    for line in lines {
        if let Some(err) = line.strip_prefix("ERR ") {
            return Err(format!("upsd says {err}"));
        }
        if let Some(rest) = line.strip_prefix(&prefix) {
            if let Some((name, value)) = rest.split_once(' ') {
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                vars.insert(
                    name.to_string(),
                    value.replace("\\\"", "\"").replace("\\\\", "\\"),
                );
            }
        }
    }
    Ok(vars)
}

/// The figures the box judges, from the variables.
pub fn power_of(source: &UpsAddr, vars: &BTreeMap<String, String>) -> Power {
    let status: Vec<String> = vars
        .get("ups.status")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let num = |k: &str| vars.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    Power {
        source: source.to_string(),
        on_battery: status.iter().any(|s| s == "OB"),
        low_battery: status.iter().any(|s| s == "LB"),
        status,
        battery_charge_pct: num("battery.charge"),
        battery_runtime_s: num("battery.runtime"),
        input_voltage: num("input.voltage"),
    }
}

/// Asks `upsd` at `addr` for its UPS's variables.
pub async fn query(addr: &UpsAddr) -> Result<Power, String> {
    tokio::time::timeout(TIMEOUT, async {
        let stream = tokio::net::TcpStream::connect((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| format!("cannot reach upsd at {}:{}: {e}", addr.host, addr.port))?;
        let (read, mut write) = stream.into_split();
        write
            .write_all(format!("LIST VAR {}\n", addr.ups).as_bytes())
            .await
            .map_err(|e| format!("upsd: {e}"))?;
        let mut lines = BufReader::new(read).lines();
        let mut got = Vec::new();
        while let Some(line) = lines.next_line().await.map_err(|e| format!("upsd: {e}"))? {
            let end = line.starts_with("END LIST VAR") || line.starts_with("ERR ");
            got.push(line);
            if end || got.len() >= MAX_LINES {
                break;
            }
        }
        let _ = write.write_all(b"LOGOUT\n").await;
        let vars = parse_list_var(&addr.ups, &got)?;
        if vars.is_empty() {
            return Err(format!("upsd listed no variables for {}", addr.ups));
        }
        Ok(power_of(addr, &vars))
    })
    .await
    .map_err(|_| {
        format!(
            "upsd at {}:{} did not answer within 3 s",
            addr.host, addr.port
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_upsc_takes_them() {
        assert_eq!(
            UpsAddr::parse("ups@127.0.0.1:3494").unwrap(),
            UpsAddr {
                ups: "ups".into(),
                host: "127.0.0.1".into(),
                port: 3494
            }
        );
        assert_eq!(UpsAddr::parse("eaton").unwrap().host, "localhost");
        assert_eq!(UpsAddr::parse("eaton@nas").unwrap().port, 3493);
        assert!(UpsAddr::parse("a b@host").is_err());
        assert!(UpsAddr::parse("ups@host:x").is_err());
    }

    /// An answer as upsd 2.8 writes it for a dummy-ups on battery.
    #[test]
    fn a_list_var_answer() {
        let lines: Vec<String> = [
            "BEGIN LIST VAR ups",
            "VAR ups battery.charge \"42\"",
            "VAR ups battery.runtime \"780\"",
            "VAR ups device.mfr \"Dummy \\\"Co\\\"\"",
            "VAR ups input.voltage \"0.0\"",
            "VAR ups ups.status \"OB DISCHRG\"",
            "END LIST VAR ups",
        ]
        .map(String::from)
        .to_vec();
        let vars = parse_list_var("ups", &lines).unwrap();
        assert_eq!(vars["device.mfr"], "Dummy \"Co\"");
        let p = power_of(&UpsAddr::parse("ups").unwrap(), &vars);
        assert!(p.on_battery && !p.low_battery);
        assert_eq!(
            (p.battery_charge_pct, p.battery_runtime_s),
            (Some(42.0), Some(780.0))
        );
        assert_eq!(
            parse_list_var("ups", &["ERR UNKNOWN-UPS".to_string()]),
            Err("upsd says UNKNOWN-UPS".into())
        );
    }
}
