//! A profile's serial ports: on the board (`path`) or USB adapters matched by udev (`usb`,
//! named `/dev/stationd/NAME`), and how a device's `port = "NAME"` becomes that port's line
//! settings under the device's own keys.

use super::{Profile, UDEV_DIR};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A serial port: on the board (`path = "/dev/ttyS0"`) or a USB adapter matched by udev
/// (`usb = {…}`, named `/dev/stationd/NAME`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialPort {
    pub name: String,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub usb: Option<UsbMatch>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub baud: Option<u32>,
    #[serde(default)]
    pub data_bits: Option<u8>,
    #[serde(default)]
    pub parity: Option<String>,
    #[serde(default)]
    pub stop_bits: Option<u8>,
    #[serde(default)]
    pub flow_control: Option<String>,
}

impl SerialPort {
    /// The device node drivers open.
    pub fn device_path(&self) -> PathBuf {
        match (&self.path, &self.usb) {
            (Some(p), _) => p.clone(),
            (None, _) => Path::new(UDEV_DIR).join(&self.name),
        }
    }

    /// The keys a device using this port inherits: `path` and the line settings given.
    pub(super) fn device_keys(&self) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert(
            "path".into(),
            self.device_path().display().to_string().into(),
        );
        if let Some(b) = self.baud {
            t.insert("baud".into(), i64::from(b).into());
        }
        if let Some(b) = self.data_bits {
            t.insert("data_bits".into(), i64::from(b).into());
        }
        if let Some(p) = &self.parity {
            t.insert("parity".into(), p.clone().into());
        }
        if let Some(s) = self.stop_bits {
            t.insert("stop_bits".into(), i64::from(s).into());
        }
        if let Some(f) = &self.flow_control {
            t.insert("flow_control".into(), f.clone().into());
        }
        t
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if !is_short_name(&self.name) {
            return Err(format!(
                "serial port name {:?} must be 1-32 characters of a-z, 0-9, '-' and '_'",
                self.name
            ));
        }
        match (&self.path, &self.usb) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "serial port {:?}: give either `path` (a port on the board) or `usb` (an adapter udev names {UDEV_DIR}/{}), not both",
                    self.name, self.name
                ))
            }
            (None, None) => {
                return Err(format!(
                    "serial port {:?}: needs `path` (e.g. \"/dev/ttyS0\") or `usb = {{ vendor = \"0403\", product = \"6001\" }}`",
                    self.name
                ))
            }
            (Some(p), None) if !p.is_absolute() => {
                return Err(format!(
                    "serial port {:?}: path {} must be absolute",
                    self.name,
                    p.display()
                ))
            }
            _ => {}
        }
        if let Some(u) = &self.usb {
            u.check()
                .map_err(|e| format!("serial port {:?}: {e}", self.name))?;
        }
        Ok(())
    }
}

/// How udev recognises a USB serial adapter: vendor and product id (4 hex digits, as `lsusb`
/// prints them), optionally its serial number and, for adapters with several ports, the USB
/// interface number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbMatch {
    pub vendor: String,
    pub product: String,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub interface: Option<u8>,
}

impl UsbMatch {
    pub(super) fn check(&self) -> Result<(), String> {
        let hex4 = |s: &str| s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex4(&self.vendor) || !hex4(&self.product) {
            return Err(format!(
                "usb vendor {:?} and product {:?} must be 4 hex digits, as lsusb prints them (e.g. 0403:6001)",
                self.vendor, self.product
            ));
        }
        if let Some(s) = &self.serial {
            // It goes into a udev rule between quotes: keep it to what adapters actually use.
            if s.is_empty()
                || s.len() > 64
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return Err(format!(
                    "usb serial {s:?} must be 1-64 characters of A-Z, a-z, 0-9 and -_.: (see `udevadm info /dev/ttyUSB0 | grep ID_SERIAL_SHORT`)"
                ));
            }
        }
        Ok(())
    }
}

/// Profile and port names: 1-32 characters of a-z, 0-9, '-' and '_'.
pub(super) fn is_short_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `port = "NAME"` → the port's keys under the table's own; an error names the ports there are.
pub(in crate::config) fn resolve_port(
    profile: Option<&Profile>,
    mut table: toml::Table,
) -> Result<toml::Table, String> {
    let Some(port) = table.remove("port") else {
        return Ok(table);
    };
    let Some(name) = port.as_str() else {
        return Err("port must be the name of a serial port of the hardware profile".into());
    };
    let driver = table.get("driver").and_then(|d| d.as_str()).unwrap_or("");
    if !crate::drivers::driver(driver).is_some_and(|d| d.serial) {
        let serial: Vec<&str> = crate::drivers::DRIVERS
            .iter()
            .filter(|d| d.serial)
            .map(|d| d.name)
            .collect();
        return Err(format!(
            "driver {driver:?} does not use a serial port; `port` is for {}",
            serial.join(", ")
        ));
    }
    let Some(profile) = profile else {
        return Err(format!(
            "port {name:?} names a serial port of the hardware profile, but [station] names no profile; use `path` instead"
        ));
    };
    let Some(p) = profile.port(name) else {
        let known: Vec<&str> = profile.serial.iter().map(|p| p.name.as_str()).collect();
        return Err(format!(
            "port {name:?} is not a serial port of profile {} (it has: {})",
            profile.name,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    let mut merged = p.device_keys();
    merged.extend(table);
    Ok(merged)
}
