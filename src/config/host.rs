//! `[box]`: how the station box watches itself (docs/CONFIG.md, "[box]"): how often, which
//! volumes, the thresholds that raise `box.*` alarms, and the UPS to ask. Optional: the
//! defaults watch the outbox's volume and `/`.

use crate::host::judge::Thresholds;
use crate::host::nut::UpsAddr;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBox {
    #[serde(default = "default_enabled")]
    enabled: bool,
    #[serde(default = "default_interval_s")]
    interval_s: u64,
    #[serde(default = "default_report_every_s")]
    report_every_s: u64,
    #[serde(default)]
    volumes: Option<Vec<PathBuf>>,
    #[serde(default = "default_disk_warn_pct")]
    disk_warn_pct: f64,
    #[serde(default = "default_memory_warn_pct")]
    memory_warn_pct: f64,
    #[serde(default = "default_load_warn_per_cpu")]
    load_warn_per_cpu: f64,
    #[serde(default = "default_temperature_warn_c")]
    temperature_warn_c: f64,
    #[serde(default = "default_battery_low_pct")]
    battery_low_pct: f64,
    #[serde(default)]
    ups: Option<String>,
}

fn default_enabled() -> bool {
    true
}
fn default_interval_s() -> u64 {
    30
}
fn default_report_every_s() -> u64 {
    900
}
fn default_disk_warn_pct() -> f64 {
    90.0
}
fn default_memory_warn_pct() -> f64 {
    90.0
}
fn default_load_warn_per_cpu() -> f64 {
    2.0
}
fn default_temperature_warn_c() -> f64 {
    80.0
}
fn default_battery_low_pct() -> f64 {
    30.0
}

impl Default for RawBox {
    fn default() -> RawBox {
        toml::from_str("").expect("every key has a default")
    }
}

/// `[box]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Off: no readings, no `P/state/box`, no `box.*` (a box watched by other tooling).
    pub enabled: bool,
    pub interval_s: u64,
    pub report_every_s: u64,
    pub volumes: Vec<PathBuf>,
    pub thresholds: Thresholds,
    pub ups: Option<UpsAddr>,
    /// Where `/proc` and `/sys` are (`/`; a test's captured tree).
    pub root: PathBuf,
}

impl RawBox {
    /// Checked; `outbox` is the outbox file, whose volume is watched by default.
    pub(super) fn check(self, outbox: &Path) -> Result<HostConfig, String> {
        if !(5..=3600).contains(&self.interval_s) {
            return Err("interval_s must be 5 to 3600".into());
        }
        if self.report_every_s < self.interval_s {
            return Err("report_every_s must be at least interval_s".into());
        }
        for (key, v) in [
            ("disk_warn_pct", self.disk_warn_pct),
            ("memory_warn_pct", self.memory_warn_pct),
            ("battery_low_pct", self.battery_low_pct),
        ] {
            if !(1.0..=100.0).contains(&v) {
                return Err(format!("{key} must be 1 to 100"));
            }
        }
        if self.load_warn_per_cpu <= 0.0 || self.temperature_warn_c <= 0.0 {
            return Err("load_warn_per_cpu and temperature_warn_c must be positive".into());
        }
        let volumes = match self.volumes {
            Some(v) => {
                if let Some(rel) = v.iter().find(|p| !p.is_absolute()) {
                    return Err(format!(
                        "volumes: {} is not an absolute path",
                        rel.display()
                    ));
                }
                v
            }
            None => {
                let mut v = vec![outbox
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("/"))
                    .to_path_buf()];
                if v[0] != Path::new("/") {
                    v.push("/".into());
                }
                v
            }
        };
        let ups = self.ups.as_deref().map(UpsAddr::parse).transpose()?;
        Ok(HostConfig {
            enabled: self.enabled,
            interval_s: self.interval_s,
            report_every_s: self.report_every_s,
            volumes,
            thresholds: Thresholds {
                disk_warn_pct: self.disk_warn_pct,
                memory_warn_pct: self.memory_warn_pct,
                load_warn_per_cpu: self.load_warn_per_cpu,
                temperature_warn_c: self.temperature_warn_c,
                battery_low_pct: self.battery_low_pct,
            },
            ups,
            root: "/".into(),
        })
    }
}

impl HostConfig {
    pub fn describe(&self) -> String {
        if !self.enabled {
            return "not watched ([box] enabled = false)".into();
        }
        let volumes: Vec<String> = self
            .volumes
            .iter()
            .map(|v| v.display().to_string())
            .collect();
        format!(
            "every {} s: load, memory, {} (alarm at {}% full), temperatures (alarm at {} °C), {}",
            self.interval_s,
            volumes.join(", "),
            self.thresholds.disk_warn_pct,
            self.thresholds.temperature_warn_c,
            self.ups
                .as_ref()
                .map_or("no UPS ([box] ups)".to_string(), |u| format!("UPS {u}"))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_watch_the_outbox_volume_and_root() {
        let c = RawBox::default()
            .check(Path::new("/var/lib/stationd/outbox.db"))
            .unwrap();
        assert_eq!(
            c.volumes,
            [PathBuf::from("/var/lib/stationd"), PathBuf::from("/")]
        );
        assert_eq!((c.interval_s, c.ups), (30, None));
        let with: RawBox =
            toml::from_str("ups = \"eaton@10.0.0.5\"\nvolumes = [\"/data\"]").unwrap();
        let c = with.check(Path::new("/x/outbox.db")).unwrap();
        assert_eq!(c.ups.unwrap().to_string(), "eaton@10.0.0.5:3493");
        assert_eq!(c.volumes, [PathBuf::from("/data")]);
        let bad: RawBox = toml::from_str("volumes = [\"data\"]").unwrap();
        assert!(bad.check(Path::new("/x")).unwrap_err().contains("absolute"));
        let bad: RawBox = toml::from_str("interval_s = 1").unwrap();
        assert!(bad.check(Path::new("/x")).is_err());
    }
}
