//! The box's own figures, read from the kernel: load (`/proc/loadavg`), memory
//! (`/proc/meminfo`), the configured volumes (statvfs), temperatures (thermal zones and hwmon
//! sensors in `/sys/class`), uptime (`/proc/uptime`). The parsers are pure (text in, figures
//! out); the readers take the filesystem root, so a test can hand them a captured sysfs tree
//! where the machine has no sensor. What is absent is said, not guessed.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// CPU load: the kernel's 1/5/15-minute averages, and the CPUs to judge them by.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Load {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub cpus: usize,
}

/// Memory, from `MemTotal` and `MemAvailable` (what can be had without swapping).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_pct: f64,
}

/// One configured volume.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Volume {
    pub path: PathBuf,
    pub total_bytes: u64,
    /// What an unprivileged process may still write (statvfs `f_bavail`).
    pub available_bytes: u64,
    pub used_pct: f64,
    /// Why it could not be read (then the figures are 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One temperature sensor.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Temperature {
    /// `thermal_zone0 (x86_pkg_temp)`, `hwmon1 coretemp temp2 (Core 0)`.
    pub sensor: String,
    pub celsius: f64,
}

/// `/proc/loadavg`: "0.52 0.58 0.59 2/348 12345".
pub fn parse_loadavg(text: &str) -> Option<(f64, f64, f64)> {
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// `/proc/meminfo`: the `MemTotal` and `MemAvailable` lines (kB).
pub fn parse_meminfo(text: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim_start_matches(':')
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    let total = field("MemTotal")?;
    let available = field("MemAvailable")?;
    Some(Memory {
        total_bytes: total,
        available_bytes: available,
        used_pct: pct(total.saturating_sub(available), total),
    })
}

/// `/proc/uptime`: seconds since boot.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// Reads under `root` (`/` on a box).
pub struct Reader {
    pub root: PathBuf,
}

impl Reader {
    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn text(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.path(p)).ok()
    }

    pub fn load(&self) -> Option<Load> {
        let (load1, load5, load15) = parse_loadavg(&self.text("/proc/loadavg")?)?;
        Some(Load {
            load1,
            load5,
            load15,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    pub fn memory(&self) -> Option<Memory> {
        parse_meminfo(&self.text("/proc/meminfo")?)
    }

    pub fn uptime_s(&self) -> Option<f64> {
        parse_uptime(&self.text("/proc/uptime")?)
    }

    /// Every thermal zone and hwmon temperature input, in °C.
    pub fn temperatures(&self) -> Vec<Temperature> {
        let mut out = Vec::new();
        let read_milli = |p: &Path| -> Option<f64> {
            let v: f64 = std::fs::read_to_string(p).ok()?.trim().parse().ok()?;
            Some((v / 100.0).round() / 10.0)
        };
        let name_of = |p: &Path| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        for zone in sorted_dir(&self.path("/sys/class/thermal"), "thermal_zone") {
            if let Some(c) = read_milli(&zone.join("temp")) {
                let kind = name_of(&zone.join("type"));
                out.push(Temperature {
                    sensor: format!("{} ({kind})", file_name(&zone)),
                    celsius: c,
                });
            }
        }
        for hwmon in sorted_dir(&self.path("/sys/class/hwmon"), "hwmon") {
            let chip = name_of(&hwmon.join("name"));
            let mut inputs: Vec<PathBuf> = std::fs::read_dir(&hwmon)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = file_name(p);
                    n.starts_with("temp") && n.ends_with("_input")
                })
                .collect();
            inputs.sort();
            for input in inputs {
                let Some(c) = read_milli(&input) else {
                    continue;
                };
                let n = file_name(&input);
                let base = n.trim_end_matches("_input");
                let label = name_of(&hwmon.join(format!("{base}_label")));
                let label = if label.is_empty() {
                    String::new()
                } else {
                    format!(" ({label})")
                };
                out.push(Temperature {
                    sensor: format!("{} {chip} {base}{label}", file_name(&hwmon)),
                    celsius: c,
                });
            }
        }
        out
    }

    /// The volume holding `path` (statvfs of the path itself, not of `root`).
    #[allow(clippy::unnecessary_cast)] // c_ulong and fsblkcnt_t are 32-bit on armv7
    pub fn volume(&self, path: &Path) -> Volume {
        match nix::sys::statvfs::statvfs(path) {
            Ok(s) => {
                let frag = s.fragment_size() as u64;
                let total = s.blocks() as u64 * frag;
                let available = s.blocks_available() as u64 * frag;
                let free = s.blocks_free() as u64 * frag;
                Volume {
                    path: path.to_path_buf(),
                    total_bytes: total,
                    available_bytes: available,
                    // As df shows it: used of (used + available to users).
                    used_pct: pct(
                        total.saturating_sub(free),
                        total.saturating_sub(free) + available,
                    ),
                    error: None,
                }
            }
            Err(e) => Volume {
                path: path.to_path_buf(),
                total_bytes: 0,
                available_bytes: 0,
                used_pct: 0.0,
                error: Some(e.desc().to_string()),
            },
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The entries of `dir` whose names start with `prefix`, in natural order (zone2 before zone10).
fn sorted_dir(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(prefix)?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_as_the_kernel_writes_them() {
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 2/348 12345\n"),
            Some((0.52, 0.58, 0.59))
        );
        assert_eq!(parse_loadavg("garbage"), None);
        let mem = parse_meminfo("MemTotal:        2030100 kB\nMemFree:          120000 kB\nMemAvailable:     507525 kB\n").unwrap();
        assert_eq!(mem.total_bytes, 2_030_100 * 1024);
        assert_eq!(mem.used_pct, 75.0);
        assert_eq!(
            parse_meminfo("MemTotal: 1 kB\n"),
            None,
            "an old kernel without MemAvailable"
        );
        assert_eq!(parse_uptime("35421.17 68123.45\n"), Some(35421.17));
    }

    #[test]
    fn this_machine_reads() {
        let r = Reader { root: "/".into() };
        let load = r.load().expect("/proc/loadavg");
        assert!(load.cpus >= 1 && load.load1 >= 0.0);
        assert!(r.memory().unwrap().total_bytes > 1 << 20);
        assert!(r.uptime_s().unwrap() > 0.0);
        let v = r.volume(Path::new("/"));
        assert!(v.total_bytes > 0 && v.error.is_none(), "{v:?}");
        let missing = r.volume(Path::new("/no/such/volume"));
        assert_eq!(missing.error.as_deref(), Some("No such file or directory"));
    }

    /// A captured sysfs of an ARM gateway (an i.MX8 SoC zone, an NCT7802 hwmon chip).
    #[test]
    fn thermal_zones_and_hwmon_sensors() {
        let dir = tempfile::tempdir().unwrap();
        let put = |p: &str, v: &str| {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        put("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n");
        put("sys/class/thermal/thermal_zone0/temp", "47250\n");
        put("sys/class/thermal/thermal_zone10/type", "gpu-thermal\n");
        put("sys/class/thermal/thermal_zone10/temp", "45000\n");
        put("sys/class/thermal/thermal_zone2/type", "soc\n");
        put("sys/class/thermal/thermal_zone2/temp", "bad\n");
        put("sys/class/hwmon/hwmon1/name", "nct7802\n");
        put("sys/class/hwmon/hwmon1/temp1_input", "38125\n");
        put("sys/class/hwmon/hwmon1/temp1_label", "board\n");
        put("sys/class/hwmon/hwmon1/temp2_input", "61000\n");
        let r = Reader {
            root: dir.path().to_path_buf(),
        };
        let t = r.temperatures();
        let got: Vec<(&str, f64)> = t.iter().map(|t| (t.sensor.as_str(), t.celsius)).collect();
        assert_eq!(
            got,
            [
                ("thermal_zone0 (cpu-thermal)", 47.3),
                ("thermal_zone10 (gpu-thermal)", 45.0),
                ("hwmon1 nct7802 temp1 (board)", 38.1),
                ("hwmon1 nct7802 temp2", 61.0),
            ]
        );
        let empty = Reader {
            root: dir.path().join("nothing"),
        };
        assert!(empty.temperatures().is_empty());
    }
}
