//! The serial transport every serial driver uses (GPS receivers now, radios later).
//!
//! Opens the configured path (`/dev/ttyS1`, `/dev/serial/by-id/…`, a udev name like
//! `/dev/stationd/gps0`) with the configured line settings, exclusively, so that a second
//! program cannot steal bytes. A read error or EOF (USB unplugged, the other end of a pty
//! closed) means "device gone": the driver reports it and [`reopener`] retries with capped
//! backoff until the path works again.

use serde::Deserialize;
use std::path::PathBuf;
use tokio_serial::{DataBits, FlowControl, Parity, SerialPortBuilderExt, SerialStream, StopBits};

/// The line settings every serial driver's `[[device]]` table has (docs/CONFIG.md, "nmea"):
/// one type for all serial drivers. [`SerialLine::take_from`] takes these keys out of the table
/// before the driver types the rest (serde's `flatten` would switch off
/// `deny_unknown_fields`, and typos must stay errors).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialLine {
    /// The device node, absolute (`/dev/ttyS1`, `/dev/serial/by-id/…`, `/dev/stationd/gps0`);
    /// a profile's `port = "NAME"` resolves to it.
    pub path: PathBuf,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// `none`, `odd`, `even`.
    #[serde(default = "default_none")]
    pub parity: String,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// `none`, `hardware`, `software`.
    #[serde(default = "default_none")]
    pub flow_control: String,
}

/// The keys of [`SerialLine`].
pub const SERIAL_KEYS: &[&str] = &[
    "path",
    "baud",
    "data_bits",
    "parity",
    "stop_bits",
    "flow_control",
];

fn default_baud() -> u32 {
    9600
}
fn default_data_bits() -> u8 {
    8
}
fn default_stop_bits() -> u8 {
    1
}
fn default_none() -> String {
    "none".into()
}

impl SerialLine {
    /// Removes the line settings from a `[[device]]` table, typed and checked.
    pub fn take_from(table: &mut toml::Table) -> Result<SerialLine, String> {
        let mut line = toml::Table::new();
        for key in SERIAL_KEYS {
            if let Some(v) = table.remove(*key) {
                line.insert(key.to_string(), v);
            }
        }
        if !line.contains_key("path") {
            return Err(
                "missing field `path` (or `port`, a serial port of the hardware profile)".into(),
            );
        }
        let line: SerialLine = toml::Value::Table(line)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
        line.check()?;
        Ok(line)
    }

    fn check(&self) -> Result<(), String> {
        if self.baud == 0 {
            return Err("baud must be positive (e.g. 4800, 9600, 115200)".into());
        }
        if !(5..=8).contains(&self.data_bits) {
            return Err("data_bits must be 5, 6, 7 or 8".into());
        }
        if !["none", "odd", "even"].contains(&self.parity.as_str()) {
            return Err(format!(
                "parity {:?} must be none, odd or even",
                self.parity
            ));
        }
        if !(1..=2).contains(&self.stop_bits) {
            return Err("stop_bits must be 1 or 2".into());
        }
        if !["none", "hardware", "software"].contains(&self.flow_control.as_str()) {
            return Err(format!(
                "flow_control {:?} must be none, hardware or software",
                self.flow_control
            ));
        }
        if !self.path.is_absolute() {
            return Err(format!("path {} must be absolute", self.path.display()));
        }
        Ok(())
    }

    /// `/dev/ttyS0 4800 8N1`, for `check-config`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} baud {}{}{}",
            self.path.display(),
            self.baud,
            self.data_bits,
            self.parity
                .chars()
                .next()
                .unwrap_or('n')
                .to_ascii_uppercase(),
            self.stop_bits
        )
    }
}

/// A serial driver's config type: its `[[device]]` table less the line settings, which
/// [`parse`] takes out first and hands over with [`set_line`](SerialDevice::set_line).
pub trait SerialDevice: super::CheckedConfig + super::DeviceConfig + Sized {
    fn set_line(&mut self, line: SerialLine);
}

/// The registry's `keys` for a serial driver: the line's keys and the driver's own.
pub fn keys<T: SerialDevice>() -> Vec<&'static str> {
    let mut keys = crate::config::keys::keys_of::<SerialLine>();
    keys.extend(crate::config::keys::keys_of::<T>());
    keys
}

/// The registry's `parse` for a serial driver: the line settings out of the table, the rest
/// typed and checked as `T`.
pub fn parse<T: SerialDevice>(mut table: toml::Table) -> Result<super::Device, String> {
    let line = SerialLine::take_from(&mut table)?;
    let mut device: T = super::parse_table(table)?;
    device.set_line(line);
    Ok(std::sync::Arc::new(device))
}

/// Opens the port with the configured settings, exclusive access.
pub fn open(s: &SerialLine) -> std::io::Result<SerialStream> {
    let builder = tokio_serial::new(s.path.to_string_lossy(), s.baud)
        .data_bits(match s.data_bits {
            5 => DataBits::Five,
            6 => DataBits::Six,
            7 => DataBits::Seven,
            _ => DataBits::Eight,
        })
        .parity(match s.parity.as_str() {
            "odd" => Parity::Odd,
            "even" => Parity::Even,
            _ => Parity::None,
        })
        .stop_bits(if s.stop_bits == 2 {
            StopBits::Two
        } else {
            StopBits::One
        })
        .flow_control(match s.flow_control.as_str() {
            "hardware" => FlowControl::Hardware,
            "software" => FlowControl::Software,
            _ => FlowControl::None,
        });
    let mut port = builder.open_native_async().map_err(std::io::Error::from)?;
    // Exclusive (TIOCEXCL): serialport sets it by default; say so explicitly.
    port.set_exclusive(true).map_err(std::io::Error::from)?;
    Ok(port)
}

/// Reopening a port that went away: 0.25 s, doubling to 10 s, from the shortest again once
/// the port worked.
pub fn reopener() -> crate::backoff::Retry {
    crate::backoff::Retry::new(
        crate::backoff::Backoff {
            min_ms: 250,
            max_ms: 10_000,
        },
        false,
    )
}
