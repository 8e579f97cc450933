//! `stationd check`: the running station's health as named checks — is the daemon there, is
//! the uplink up, is the outbox keeping up, are the configured devices alive, is the clock set
//! — each `ok`, `warning` or `FAILED`, with `--json` and exit 1 when something failed, so a
//! technician or a monitoring script gets one answer.

use super::{format_duration, report, Check, Outcome};
use crate::clock::SyncState;
use crate::control::client::request;
use crate::control::ClockReport;
use crate::control::{Command, DevicesReply, StatusReply};
use std::path::Path;

/// The uplink may be down this long before it is a failure (reconnecting is a warning).
const UPLINK_DOWN_FAILS_AFTER_S: i64 = 300;
/// Rows older than this waiting in the outbox are a warning (central sees them late).
const BACKLOG_WARNS_AFTER_S: i64 = 60;

pub fn check(socket: &Path, json: bool) -> u8 {
    let replies = request::<StatusReply>(socket, Command::Status)
        .and_then(|s| request::<DevicesReply>(socket, Command::Devices).map(|d| (s, d)));
    let (status, devices) = match replies {
        Ok(r) => r,
        Err(e) => {
            report(
                &[Check::new("daemon", Outcome::Failed, e.to_string())],
                json,
            );
            return e.exit_code();
        }
    };
    let checks = judge(&status, &devices, crate::clock::kernel_sync_state());
    report(&checks, json)
}

/// The checks, from the daemon's replies. The clock is judged as the daemon reads it (that is
/// what the envelopes say); `local` (this shell's reading) only explains a disagreement, or
/// stands in for a daemon too old to report it.
pub fn judge(s: &StatusReply, d: &DevicesReply, local: SyncState) -> Vec<Check> {
    let now = d.now_ms;
    let ago = |t: i64| format_duration(((now - t).max(0) / 1000) as u64);
    let mut checks = vec![Check::new(
        "daemon",
        Outcome::Ok,
        format!(
            "stationd {} running for {}, station {}",
            s.version,
            format_duration(s.uptime_s),
            s.station
        ),
    )];

    let u = &s.uplink;
    checks.push(match (&u.connected_to, u.since_ms) {
        (Some(b), _) => Check::new("uplink", Outcome::Ok, format!("connected to {b}")),
        (None, since) => {
            let down_s = since.map_or(0, |t| (now - t) / 1000);
            let outcome = if down_s >= UPLINK_DOWN_FAILS_AFTER_S {
                Outcome::Failed
            } else {
                Outcome::Warning
            };
            Check::new(
                "uplink",
                outcome,
                format!(
                    "down for {}: {}",
                    since.map_or_else(|| "?".into(), ago),
                    u.last_error.as_deref().unwrap_or("connecting")
                ),
            )
        }
    });

    let o = &s.outbox;
    let oldest = [&o.alarm, &o.event, &o.telemetry]
        .iter()
        .filter_map(|c| c.oldest_ms)
        .min();
    let counter = |name: &str| s.counters.get(name).copied().unwrap_or(0);
    checks.push(match oldest {
        Some(t) if (now - t) / 1000 >= BACKLOG_WARNS_AFTER_S => Check::new(
            "backlog",
            Outcome::Warning,
            format!(
                "{} row(s) waiting, the oldest for {} ({} alarm(s))",
                o.rows(),
                ago(t),
                o.alarm.rows
            ),
        ),
        _ => Check::new(
            "backlog",
            Outcome::Ok,
            format!("{} row(s) waiting", o.rows()),
        ),
    });
    checks.push(if counter("outbox.commit_failures") > 0 {
        Check::new(
            "outbox",
            Outcome::Warning,
            format!(
                "{} commit(s) failed since start (journalctl -u stationd EVENT=outbox.commit_failed)",
                counter("outbox.commit_failures")
            ),
        )
    } else {
        Check::new("outbox", Outcome::Ok, "every commit went through")
    });
    checks.push(match (counter("outbox.disk_limited"), counter("outbox.evicted_rows")) {
        (1, n) => Check::new(
            "disk",
            Outcome::Warning,
            format!("the filesystem has less room than buffer.max_bytes: old telemetry is evicted ({n} row(s) since start); free space or lower the quota"),
        ),
        (_, 0) => Check::new("disk", Outcome::Ok, "within the quota, nothing evicted since start"),
        (_, n) => Check::new(
            "disk",
            Outcome::Warning,
            format!("{n} row(s) evicted since start to stay within buffer.max_bytes (central was told which)"),
        ),
    });

    // Configured devices only: cars come and go with their terminals.
    for dev in d.devices.iter().filter(|x| x.board.via.is_none()) {
        let b = &dev.board;
        let seen = b.last_seen_ms.map_or_else(
            || "never heard".to_string(),
            |t| format!("last heard {} ago", ago(t)),
        );
        let (outcome, what) = match b.state.as_str() {
            "online" | "listening" => (Outcome::Ok, b.state.clone()),
            "no_fix" => (Outcome::Warning, "talking, but no GNSS fix".into()),
            "waiting" => (Outcome::Warning, "nothing heard since start".into()),
            other => (
                Outcome::Failed,
                format!(
                    "{other}{}",
                    b.detail
                        .as_ref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            ),
        };
        checks.push(Check::new(
            "device",
            outcome,
            format!("{} ({}) {what}; {seen}", dev.id, b.driver),
        ));
    }

    checks.push(clock_check(&s.clock, local));
    if let Some(c) = &s.config {
        checks.push(config_check(c));
    }
    if let Some(h) = &s.host {
        checks.extend(box_checks(h));
    }
    checks
}

/// The box's own health, as the daemon read and judged it (`P/state/box`): each condition
/// that holds is a warning (power lost or a low battery: failed), else one line of figures.
fn box_checks(h: &serde_json::Value) -> Vec<Check> {
    let conditions = h["conditions"].as_array().cloned().unwrap_or_default();
    if !conditions.is_empty() {
        return conditions
            .iter()
            .map(|c| {
                let kind = c["kind"].as_str().unwrap_or("?");
                let outcome = if matches!(kind, "box.on_battery" | "box.battery_low") {
                    Outcome::Failed
                } else {
                    Outcome::Warning
                };
                Check::new(
                    "box",
                    outcome,
                    c["detail"].as_str().unwrap_or(kind).to_string(),
                )
            })
            .collect();
    }
    let volumes: Vec<String> = h["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            format!(
                "{} {}% full",
                v["path"].as_str().unwrap_or("?"),
                v["used_pct"]
            )
        })
        .collect();
    let temperature = h["temperatures"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .filter_map(|t| t["celsius"].as_f64())
                .reduce(f64::max)
        })
        .map_or("no temperature sensor".to_string(), |c| {
            format!("hottest {c} °C")
        });
    let power = match &h["power"] {
        serde_json::Value::Null => "no UPS configured".to_string(),
        p => format!(
            "UPS {} {}",
            p["source"].as_str().unwrap_or("?"),
            p["status"]
                .as_array()
                .map(|s| s
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        ),
    };
    vec![Check::new(
        "box",
        Outcome::Ok,
        format!(
            "load {} on {} CPU(s), memory {}% used, {}, {temperature}, {power}",
            h["load"]["load5"],
            h["load"]["cpus"],
            h["memory"]["used_pct"],
            volumes.join(", ")
        ),
    )]
}

/// The configuration running: a rejected last reload, or changes waiting for a restart, are
/// warnings (the file on disk is not what runs).
fn config_check(c: &crate::reload::ConfigReport) -> Check {
    let hash = super::views::short_hash(&c.hash);
    if let Some(last) = c.last_reload.as_ref().filter(|l| l["applied"] == false) {
        return Check::new(
            "config",
            Outcome::Warning,
            format!(
                "the last reload was rejected, {hash} runs: {}",
                last["error"].as_str().unwrap_or("?")
            ),
        );
    }
    if !c.pending_restart.is_empty() {
        return Check::new(
            "config",
            Outcome::Warning,
            format!(
                "{hash} runs; changed in the file, applied at the next restart: {}",
                c.pending_restart.join(", ")
            ),
        );
    }
    Check::new("config", Outcome::Ok, format!("{hash} ({})", c.path))
}

fn clock_check(daemon: &ClockReport, local: SyncState) -> Check {
    let state = if daemon.state.is_empty() {
        local.as_str()
    } else {
        daemon.state.as_str()
    };
    match state {
        "synced" => Check::new("clock", Outcome::Ok, "synchronised"),
        "unreadable" => Check::new(
            "clock",
            Outcome::Failed,
            format!(
                "the daemon cannot read the clock's sync state ({}){}: every event says clock \
                 \"unsynced\"; its unit must allow adjtimex (docs/OPERATIONS.md, \"The clock\")",
                daemon.error.as_deref().unwrap_or("adjtimex failed"),
                if local == SyncState::Synced {
                    ", although the box's clock is synchronised"
                } else {
                    ""
                }
            ),
        ),
        _ => Check::new(
            "clock",
            Outcome::Warning,
            "not synchronised (timedatectl; events carry clock: unsynced until it is)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::DeviceState;
    use crate::control::DeviceRow;
    use crate::outbox::{ClassStats, OutboxStats};
    use crate::uplink::UplinkStatus;
    use std::collections::BTreeMap;

    const NOW: i64 = 1_800_000_000_000;

    fn status(
        uplink: UplinkStatus,
        oldest_ms: Option<i64>,
        counters: &[(&str, u64)],
    ) -> StatusReply {
        StatusReply {
            station: "st".into(),
            station_name: "n".into(),
            version: "0".into(),
            profile: None,
            pid: 1,
            started_ms: NOW - 3_600_000,
            uptime_s: 3600,
            uplink,
            outbox: OutboxStats {
                telemetry: ClassStats {
                    rows: 5,
                    oldest_ms,
                    bytes: 500,
                },
                ..Default::default()
            },
            devices: BTreeMap::new(),
            counters: counters.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            clock: ClockReport::default(),
            config: None,
            host: None,
        }
    }

    fn devices(rows: &[(&str, &str, Option<&str>)]) -> DevicesReply {
        DevicesReply {
            now_ms: NOW,
            devices: rows
                .iter()
                .map(|(id, state, via)| DeviceRow {
                    id: id.to_string(),
                    board: DeviceState {
                        driver: "nmea".into(),
                        via: via.map(str::to_string),
                        state: state.to_string(),
                        detail: None,
                        last_seen_ms: Some(NOW - 2000),
                        since_ms: NOW - 60_000,
                    },
                    counters: BTreeMap::new(),
                })
                .collect(),
        }
    }

    fn outcome(checks: &[Check], name: &str) -> Vec<Outcome> {
        checks
            .iter()
            .filter(|c| c.check == name)
            .map(|c| c.outcome)
            .collect()
    }

    #[test]
    fn thresholds() {
        let down = |secs: i64| UplinkStatus {
            since_ms: Some(NOW - secs * 1000),
            last_error: Some("connection refused".into()),
            ..Default::default()
        };
        let d = devices(&[
            ("gps0", "no_fix", None),
            ("car-1", "offline", Some("fleet")),
        ]);

        let c = judge(
            &status(down(30), Some(NOW - 5_000), &[]),
            &d,
            SyncState::Synced,
        );
        assert_eq!(outcome(&c, "uplink"), [Outcome::Warning], "reconnecting");
        assert_eq!(outcome(&c, "backlog"), [Outcome::Ok]);
        assert_eq!(
            outcome(&c, "device"),
            [Outcome::Warning],
            "no fix; the car is not checked"
        );
        assert_eq!(outcome(&c, "clock"), [Outcome::Ok]);

        let c = judge(
            &status(
                down(600),
                Some(NOW - 600_000),
                &[("outbox.disk_limited", 1), ("outbox.evicted_rows", 7)],
            ),
            &devices(&[("gps0", "offline", None)]),
            SyncState::Unsynced,
        );
        assert_eq!(
            outcome(&c, "uplink"),
            [Outcome::Failed],
            "down for 10 minutes"
        );
        assert_eq!(outcome(&c, "backlog"), [Outcome::Warning]);
        assert_eq!(outcome(&c, "disk"), [Outcome::Warning]);
        assert_eq!(outcome(&c, "device"), [Outcome::Failed]);
        assert_eq!(outcome(&c, "clock"), [Outcome::Warning]);
        assert!(c.iter().any(|x| x.detail.contains("7 row(s) since start")));
    }

    #[test]
    fn the_clock_is_judged_as_the_daemon_reads_it() {
        let d = devices(&[]);
        let mut s = status(UplinkStatus::default(), None, &[]);
        s.clock = ClockReport::from_state(SyncState::Unreadable(libc::EPERM));
        let c = judge(&s, &d, SyncState::Synced);
        assert_eq!(outcome(&c, "clock"), [Outcome::Failed]);
        let detail = &c.iter().find(|x| x.check == "clock").unwrap().detail;
        assert!(detail.contains("Operation not permitted"), "{detail}");
        assert!(
            detail.contains("although the box's clock is synchronised"),
            "{detail}"
        );

        s.clock = ClockReport::from_state(SyncState::Synced);
        let c = judge(&s, &d, SyncState::Unsynced);
        assert_eq!(
            outcome(&c, "clock"),
            [Outcome::Ok],
            "the daemon's view wins"
        );

        s.clock = ClockReport::default();
        let c = judge(&s, &d, SyncState::Unsynced);
        assert_eq!(
            outcome(&c, "clock"),
            [Outcome::Warning],
            "an old daemon: this shell's view"
        );
    }
}
