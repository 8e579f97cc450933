//! The thresholds the box's figures are judged by, pure: which conditions hold in a reading,
//! with hysteresis so a value at the line does not raise and clear an alarm every interval.
//! The service raises a `box.*` alarm when a condition starts and a `box.cleared` event when
//! it ends; `stationd check` shows the same conditions.

use super::Reading;
use serde::Serialize;

/// The thresholds (`[box]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub disk_warn_pct: f64,
    pub memory_warn_pct: f64,
    /// The 5-minute load per CPU.
    pub load_warn_per_cpu: f64,
    pub temperature_warn_c: f64,
    pub battery_low_pct: f64,
}

/// A condition that holds: its alarm kind, what it is about, and in words.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Condition {
    /// `box.disk_low`, `box.memory_high`, `box.load_high`, `box.temperature_high`,
    /// `box.on_battery`, `box.battery_low`, `box.power_unknown`.
    pub kind: String,
    /// The volume, the sensor, the UPS; "" for the box as a whole.
    pub subject: String,
    pub value: f64,
    pub threshold: f64,
    pub detail: String,
}

impl Condition {
    pub fn key(&self) -> (String, String) {
        (self.kind.clone(), self.subject.clone())
    }
}

/// Margins under a threshold a value must fall below to clear a condition that holds.
const DISK_MARGIN_PCT: f64 = 2.0;
const MEMORY_MARGIN_PCT: f64 = 5.0;
const LOAD_MARGIN: f64 = 0.8;
const TEMPERATURE_MARGIN_C: f64 = 3.0;
const BATTERY_MARGIN_PCT: f64 = 10.0;

/// The conditions that hold in `r`, given those that held before (`holding`: kind, subject).
pub fn judge(r: &Reading, t: &Thresholds, holding: &[(String, String)]) -> Vec<Condition> {
    let held = |kind: &str, subject: &str| holding.iter().any(|(k, s)| k == kind && s == subject);
    let mut out = Vec::new();
    let mut check = |kind: &str,
                     subject: &str,
                     value: f64,
                     threshold: f64,
                     clear_below: f64,
                     detail: String| {
        let on = value >= threshold || (held(kind, subject) && value > clear_below);
        if on {
            out.push(Condition {
                kind: kind.to_string(),
                subject: subject.to_string(),
                value,
                threshold,
                detail,
            });
        }
    };
    for v in r.volumes.iter().filter(|v| v.error.is_none()) {
        let subject = v.path.display().to_string();
        check(
            "box.disk_low",
            &subject,
            v.used_pct,
            t.disk_warn_pct,
            t.disk_warn_pct - DISK_MARGIN_PCT,
            format!(
                "{subject} is {}% full ({} MB left; warn at {}%)",
                v.used_pct,
                v.available_bytes / 1_000_000,
                t.disk_warn_pct
            ),
        );
    }
    if let Some(m) = &r.memory {
        check(
            "box.memory_high",
            "",
            m.used_pct,
            t.memory_warn_pct,
            t.memory_warn_pct - MEMORY_MARGIN_PCT,
            format!(
                "memory {}% used ({} MB available; warn at {}%)",
                m.used_pct,
                m.available_bytes / 1_000_000,
                t.memory_warn_pct
            ),
        );
    }
    if let Some(l) = &r.load {
        let per_cpu = (l.load5 / l.cpus.max(1) as f64 * 100.0).round() / 100.0;
        check(
            "box.load_high",
            "",
            per_cpu,
            t.load_warn_per_cpu,
            t.load_warn_per_cpu * LOAD_MARGIN,
            format!(
                "5-minute load {} on {} CPU(s) ({per_cpu} per CPU; warn at {})",
                l.load5, l.cpus, t.load_warn_per_cpu
            ),
        );
    }
    for s in &r.temperatures {
        check(
            "box.temperature_high",
            &s.sensor,
            s.celsius,
            t.temperature_warn_c,
            t.temperature_warn_c - TEMPERATURE_MARGIN_C,
            format!(
                "{} at {} °C (warn at {} °C)",
                s.sensor, s.celsius, t.temperature_warn_c
            ),
        );
    }
    if let Some(p) = &r.power {
        match &p.reading {
            Ok(power) => {
                if power.on_battery {
                    out.push(Condition {
                        kind: "box.on_battery".into(),
                        subject: p.source.clone(),
                        value: power.battery_charge_pct.unwrap_or(f64::NAN),
                        threshold: 0.0,
                        detail: format!(
                            "on battery ({}), {} charged, about {} min left",
                            power.status.join(" "),
                            power
                                .battery_charge_pct
                                .map_or("?".into(), |c| format!("{c}%")),
                            power
                                .battery_runtime_s
                                .map_or("?".into(), |s| format!("{:.0}", s / 60.0))
                        ),
                    });
                }
                let charge = power.battery_charge_pct.unwrap_or(100.0);
                let low = power.low_battery
                    || (power.on_battery
                        && (charge <= t.battery_low_pct
                            || (held("box.battery_low", &p.source)
                                && charge < t.battery_low_pct + BATTERY_MARGIN_PCT)));
                if low {
                    out.push(Condition {
                        kind: "box.battery_low".into(),
                        subject: p.source.clone(),
                        value: charge,
                        threshold: t.battery_low_pct,
                        detail: format!(
                            "battery low ({}, {charge}%): the box will lose power",
                            power.status.join(" ")
                        ),
                    });
                }
            }
            Err(why) => out.push(Condition {
                kind: "box.power_unknown".into(),
                subject: p.source.clone(),
                value: f64::NAN,
                threshold: 0.0,
                detail: format!("the UPS cannot be read: {why}"),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::readings::{Load, Memory, Volume};
    use super::*;

    fn t() -> Thresholds {
        Thresholds {
            disk_warn_pct: 90.0,
            memory_warn_pct: 90.0,
            load_warn_per_cpu: 2.0,
            temperature_warn_c: 80.0,
            battery_low_pct: 30.0,
        }
    }

    fn reading(disk: f64, load5: f64) -> Reading {
        Reading {
            volumes: vec![Volume {
                path: "/var/lib/stationd".into(),
                total_bytes: 1_000_000_000,
                available_bytes: 50_000_000,
                used_pct: disk,
                error: None,
            }],
            memory: Some(Memory {
                total_bytes: 1 << 30,
                available_bytes: 1 << 29,
                used_pct: 50.0,
            }),
            load: Some(Load {
                load1: load5,
                load5,
                load15: load5,
                cpus: 2,
            }),
            ..Reading::default()
        }
    }

    fn kinds(c: &[Condition]) -> Vec<&str> {
        c.iter().map(|c| c.kind.as_str()).collect()
    }

    #[test]
    fn a_value_at_the_line_does_not_flap() {
        assert!(judge(&reading(89.0, 1.0), &t(), &[]).is_empty());
        let raised = judge(&reading(91.0, 1.0), &t(), &[]);
        assert_eq!(kinds(&raised), ["box.disk_low"]);
        assert!(
            raised[0].detail.contains("/var/lib/stationd is 91% full"),
            "{raised:?}"
        );
        let holding = vec![raised[0].key()];
        // Back under the line but within the margin: still held.
        assert_eq!(
            kinds(&judge(&reading(89.0, 1.0), &t(), &holding)),
            ["box.disk_low"]
        );
        assert!(judge(&reading(87.9, 1.0), &t(), &holding).is_empty());
        // 5-minute load 4.2 on 2 CPUs: 2.1 per CPU.
        assert_eq!(
            kinds(&judge(&reading(50.0, 4.2), &t(), &[])),
            ["box.load_high"]
        );
    }
}
