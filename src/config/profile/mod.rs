//! Hardware profiles (`hw-profiles/*.toml`, installed in `/usr/share/stationd/hw-profiles`).
//!
//! A profile describes one box model and what is attached to it: serial ports and their line
//! settings, USB serial adapters that udev names `/dev/stationd/NAME`, network interfaces, the
//! hardware watchdog, storage defaults for the outbox, and the devices with their drivers. It
//! exists apart from the station config because the same box model is installed in dozens of
//! stations: whoever qualified the box writes its profile once, and each station's config only
//! names the profile and says what differs there (broker, car list, a port that is not used).
//!
//! How a profile and a station config combine is in [`super::Config::parse`]; this module reads
//! and checks a profile on its own, so that an error in a profile is reported at the profile's
//! file and line, not at the station config that happens to use it.

mod serial;

use serial::is_short_name;
pub(super) use serial::resolve_port;
pub use serial::{SerialPort, UsbMatch};

use super::{line_of, ConfigError, Durability};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where `[station] profile = "NAME"` is looked up, in this order, after any directory given
/// on the command line (`--profile-dir`): beside the config, then the administrator's own, then
/// the packaged ones.
pub fn default_search_dirs(config_path: &Path) -> Vec<PathBuf> {
    let beside = config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("hw-profiles");
    vec![
        beside,
        PathBuf::from("/etc/stationd/hw-profiles"),
        PathBuf::from("/usr/share/stationd/hw-profiles"),
    ]
}

/// The directory udev rules put stable serial names in (`/dev/stationd/radio0`).
pub const UDEV_DIR: &str = "/dev/stationd";

/// A checked hardware profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub source: PathBuf,
    pub name: String,
    pub description: String,
    pub arch: Arch,
    pub watchdog: Option<Watchdog>,
    pub storage: Storage,
    pub network: Vec<Network>,
    pub serial: Vec<SerialPort>,
    /// `[[device]]` tables as written (resolved against this profile's ports when combined).
    pub(super) devices: Vec<ProfileDevice>,
}

#[derive(Debug, Clone)]
pub(super) struct ProfileDevice {
    pub id: String,
    pub table: toml::Table,
    pub line: usize,
}

/// The CPU a box has; `any` for the simulated box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    X86_64,
    Aarch64,
    Armv7,
    Any,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Armv7 => "armv7",
            Arch::Any => "any",
        }
    }

    /// Whether this build runs on such a box.
    pub fn matches_this_build(self) -> bool {
        match self {
            Arch::Any => true,
            Arch::X86_64 => cfg!(target_arch = "x86_64"),
            Arch::Aarch64 => cfg!(target_arch = "aarch64"),
            Arch::Armv7 => cfg!(target_arch = "arm"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    description: String,
    arch: Arch,
}

/// The box's hardware watchdog. systemd pets it (`RuntimeWatchdogSec=`, docs/OPERATIONS.md);
/// the profile records it so check-config can say whether it is there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watchdog {
    pub device: PathBuf,
    /// Kernel module that drives it (informational: `iTCO_wdt`, `imx2_wdt`, …).
    #[serde(default)]
    pub module: Option<String>,
    /// What `RuntimeWatchdogSec=` should be set to on this box.
    pub timeout_s: u32,
}

/// Storage of the box and the outbox defaults that suit it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// `ssd`, `emmc`, `sd`, `tmpfs`: informational, and the reason for the defaults below.
    #[serde(default)]
    pub medium: Option<String>,
    /// Default `[buffer] path`.
    #[serde(default)]
    pub buffer_path: Option<PathBuf>,
    /// Default `[buffer] max_bytes`.
    #[serde(default)]
    pub buffer_max_bytes: Option<u64>,
    /// Default `[buffer] durability`.
    #[serde(default)]
    pub durability: Option<Durability>,
}

/// A network interface of the box and what it is for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub interface: String,
    /// `uplink` (to central), `devices` (cameras, docks, terminals), `management`, `cellular`.
    pub role: NetworkRole,
    #[serde(default)]
    pub description: Option<String>,
}

/// What a network interface is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkRole {
    /// To central dispatch.
    Uplink,
    /// Cameras, body-cam docks, terminals.
    Devices,
    Management,
    /// A 4G module (often the backup uplink).
    Cellular,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    profile: Header,
    #[serde(default)]
    watchdog: Option<Watchdog>,
    #[serde(default)]
    storage: Storage,
    #[serde(default)]
    network: Vec<Spanned<Network>>,
    #[serde(default)]
    serial: Vec<Spanned<SerialPort>>,
    #[serde(default)]
    device: Vec<Spanned<toml::Table>>,
}

impl Profile {
    /// Finds the profile a station config names: a path (`./x.toml`, `/abs/x.toml`, anything
    /// with a `/` or ending in `.toml`, relative to the config's directory) or a name looked up
    /// as `NAME.toml` in `dirs`.
    pub fn find(name: &str, config_path: &Path, dirs: &[PathBuf]) -> Result<PathBuf, String> {
        if name.contains('/') || name.ends_with(".toml") {
            let p = Path::new(name);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                config_path.parent().unwrap_or(Path::new(".")).join(p)
            };
            return if p.is_file() {
                Ok(p)
            } else {
                Err(format!("hardware profile file {} not found", p.display()))
            };
        }
        if !is_short_name(name) {
            return Err(format!(
                "profile {name:?} is neither a profile name (a-z, 0-9, '-', '_') nor a path to a .toml file"
            ));
        }
        for dir in dirs {
            let p = dir.join(format!("{name}.toml"));
            if p.is_file() {
                return Ok(p);
            }
        }
        let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let mut known: Vec<String> = dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.strip_suffix(".toml").map(str::to_string)
            })
            .collect();
        known.sort();
        known.dedup();
        Err(format!(
            "hardware profile {name:?} not found (looked for {name}.toml in {}); known profiles: {}",
            looked.join(", "),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    }

    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Profile, ConfigError> {
        let text = super::read_text(path, "the hardware profile")?;
        Profile::parse(path, &text)
    }

    /// Checks `text` as the profile at `path`: shape, values, and every device on its own.
    pub fn parse(path: &Path, text: &str) -> Result<Profile, ConfigError> {
        let err = |line: Option<usize>, key: Option<String>, message: String| ConfigError {
            file: path.to_path_buf(),
            line,
            key,
            message,
        };
        let raw: RawProfile = toml::from_str(text).map_err(|e| {
            err(
                e.span().map(|s| line_of(text, s.start)),
                None,
                e.message().trim().to_string(),
            )
        })?;
        if !is_short_name(&raw.profile.name) {
            return Err(err(
                None,
                Some("profile.name".into()),
                "must be 1-32 characters of a-z, 0-9, '-' and '_'".into(),
            ));
        }
        if let Some(w) = &raw.watchdog {
            if !w.device.is_absolute() || w.timeout_s == 0 {
                return Err(err(
                    None,
                    Some("watchdog".into()),
                    "device must be an absolute path (e.g. /dev/watchdog0) and timeout_s positive"
                        .into(),
                ));
            }
        }
        if let Some(p) = &raw.storage.buffer_path {
            if !p.is_absolute() {
                return Err(err(
                    None,
                    Some("storage.buffer_path".into()),
                    format!("{} must be absolute", p.display()),
                ));
            }
        }
        let mut network = Vec::new();
        for n in raw.network {
            let line = line_of(text, n.span().start);
            let n = n.into_inner();
            let valid_name = !n.interface.is_empty()
                && n.interface.len() <= 15
                && !n.interface.contains(['/', ' ', ':']);
            if !valid_name {
                return Err(err(
                    Some(line),
                    Some("network.interface".into()),
                    format!(
                        "{:?} is not an interface name (at most 15 characters, no '/', ':' or spaces)",
                        n.interface
                    ),
                ));
            }
            network.push(n);
        }
        let mut serial = Vec::new();
        let mut names = HashSet::new();
        for s in raw.serial {
            let line = line_of(text, s.span().start);
            let s = s.into_inner();
            let key = Some(format!("serial {:?}", s.name));
            s.check().map_err(|e| err(Some(line), key.clone(), e))?;
            if !names.insert(s.name.clone()) {
                return Err(err(Some(line), key, "serial port name used twice".into()));
            }
            serial.push(s);
        }
        let mut profile = Profile {
            source: path.to_path_buf(),
            name: raw.profile.name,
            description: raw.profile.description,
            arch: raw.profile.arch,
            watchdog: raw.watchdog,
            storage: raw.storage,
            network,
            serial,
            devices: Vec::new(),
        };
        let mut ids = HashSet::new();
        let mut ports_used = HashSet::new();
        for table in raw.device {
            let line = line_of(text, table.span().start);
            let table = table.into_inner();
            let id = super::devices::table_id(&table);
            let key = Some(format!("device {id:?}"));
            if table.contains_key("enabled") {
                return Err(err(
                    Some(line),
                    key,
                    "`enabled` belongs in the station config (to switch a profile device off)"
                        .into(),
                ));
            }
            // Each device must stand on its own, so the profile is valid for every station.
            let resolved = profile
                .resolve_port(table.clone())
                .map_err(|e| err(Some(line), key.clone(), e))?;
            super::device_from_table(resolved).map_err(|e| err(Some(line), key.clone(), e))?;
            if !ids.insert(id.clone()) {
                return Err(err(Some(line), key, "device id used twice".into()));
            }
            if let Some(port) = table.get("port").and_then(|v| v.as_str()) {
                if !ports_used.insert(port.to_string()) {
                    return Err(err(
                        Some(line),
                        key,
                        format!("serial port {port:?} is already used by another device"),
                    ));
                }
            }
            profile.devices.push(ProfileDevice { id, table, line });
        }
        Ok(profile)
    }

    /// Replaces `port = "NAME"` in a device table by the port's `path` and line settings; keys
    /// the table sets itself win.
    pub(super) fn resolve_port(&self, table: toml::Table) -> Result<toml::Table, String> {
        resolve_port(Some(self), table)
    }

    /// Applies a station's `[[serial]]` table to the port of that name: the keys it gives
    /// replace the profile's; `path` and `usb` replace each other.
    pub(super) fn apply_serial_change(&mut self, c: SerialPort) -> Result<(), String> {
        let known: Vec<String> = self.serial.iter().map(|p| p.name.clone()).collect();
        let Some(port) = self.serial.iter_mut().find(|p| p.name == c.name) else {
            return Err(format!(
                "profile {} has no serial port {:?} (it has: {}); [[serial]] in the station config changes a profile's port, it does not add one",
                self.name,
                c.name,
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ));
        };
        if c.path.is_some() && c.usb.is_some() {
            return Err("give either `path` or `usb`, not both".into());
        }
        if let Some(p) = c.path {
            port.path = Some(p);
            port.usb = None;
        }
        if let Some(u) = c.usb {
            port.usb = Some(u);
            port.path = None;
        }
        port.description = c.description.or(port.description.take());
        port.baud = c.baud.or(port.baud);
        port.data_bits = c.data_bits.or(port.data_bits);
        port.parity = c.parity.or(port.parity.take());
        port.stop_bits = c.stop_bits.or(port.stop_bits);
        port.flow_control = c.flow_control.or(port.flow_control.take());
        port.check()
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    pub fn port(&self, name: &str) -> Option<&SerialPort> {
        self.serial.iter().find(|p| p.name == name)
    }

    /// Facts about this machine worth telling whoever runs check-config on the box: a missing
    /// serial port, watchdog or network interface, or a profile for another CPU. None of them
    /// is an error: the config may be checked on another machine, and USB devices come and go.
    pub fn machine_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.arch.matches_this_build() {
            // Checked on another machine: what this one has says nothing about the box.
            notes.push(format!(
                "profile {} is for {} boxes; this stationd is built for {} (ports, interfaces and watchdog not looked for)",
                self.name,
                self.arch.as_str(),
                std::env::consts::ARCH
            ));
            return notes;
        }
        if let Some(w) = &self.watchdog {
            if !w.device.exists() {
                notes.push(format!(
                    "watchdog {} is not present on this machine (module {})",
                    w.device.display(),
                    w.module.as_deref().unwrap_or("?")
                ));
            }
        }
        for n in &self.network {
            if !Path::new("/sys/class/net").join(&n.interface).exists() {
                notes.push(format!(
                    "network interface {} ({}) is not present on this machine",
                    n.interface,
                    format!("{:?}", n.role).to_lowercase()
                ));
            }
        }
        for s in &self.serial {
            let p = s.device_path();
            if !p.exists() {
                let hint = if s.usb.is_some() {
                    " (plug the adapter in; the udev rules name it, see `stationd udev-rules`)"
                } else {
                    ""
                };
                notes.push(format!(
                    "serial port {} ({}) is not present on this machine{hint}",
                    s.name,
                    p.display()
                ));
            }
        }
        notes
    }
}
