//! `driver = "nmea"`: a GNSS receiver speaking NMEA 0183 on a serial port (docs/CONFIG.md).

use crate::drivers::gps::{
    default_max_interval_s, default_min_course_deg, default_min_distance_m, default_min_interval_s,
};
use crate::drivers::serial::SerialLine;
use crate::drivers::{CheckedConfig, DeviceConfig, DeviceContext, DeviceTask, DriverError};
use serde::Deserialize;
use std::any::Any;

/// A GNSS receiver's `[[device]]` table: the serial line ([`SerialLine`], taken from the same
/// table), report by exception, health and clock settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NmeaDevice {
    pub id: String,
    pub driver: String,
    /// `path`, `baud`, `data_bits`, `parity`, `stop_bits`, `flow_control`.
    #[serde(skip)]
    pub line: SerialLine,
    /// Report a position when the receiver moved at least this far…
    #[serde(default = "default_min_distance_m")]
    pub min_distance_m: f64,
    /// …or turned at least this much while moving…
    #[serde(default = "default_min_course_deg")]
    pub min_course_deg: f64,
    /// …but not more often than this…
    #[serde(default = "default_min_interval_s")]
    pub min_interval_s: u64,
    /// …and at least this often, even when still.
    #[serde(default = "default_max_interval_s")]
    pub max_interval_s: u64,
    /// Silence after which the receiver counts as offline.
    #[serde(default = "default_offline_after_s")]
    pub offline_after_s: u64,
    /// A receiver time further than this from the synchronised box clock is not believed
    /// (GPS week rollover): the box's time is used, `clock: "device_unreliable"`.
    #[serde(default = "crate::clock::default_max_clock_skew_s")]
    pub max_clock_skew_s: u64,
}

fn default_offline_after_s() -> u64 {
    10
}

impl CheckedConfig for NmeaDevice {
    fn check(&self) -> Result<(), String> {
        if self.min_interval_s > self.max_interval_s || self.max_interval_s == 0 {
            return Err(
                "min_interval_s must not exceed max_interval_s, which must be positive".into(),
            );
        }
        if self.offline_after_s == 0 {
            return Err("offline_after_s must be positive".into());
        }
        Ok(())
    }
}

impl crate::drivers::serial::SerialDevice for NmeaDevice {
    fn set_line(&mut self, line: SerialLine) {
        self.line = line;
    }
}

impl DeviceConfig for NmeaDevice {
    fn id(&self) -> &str {
        &self.id
    }
    fn driver(&self) -> &'static str {
        "nmea"
    }
    fn describe(&self) -> String {
        format!("{} nmea {}", self.id, self.line.describe())
    }
    fn initial_state(&self) -> &'static str {
        "waiting"
    }
    /// A receiver that is absent at start is not an error: it is reported offline and
    /// opened when it appears.
    fn start(&self, ctx: DeviceContext) -> Result<DeviceTask, DriverError> {
        Ok(Box::pin(super::run(self.clone(), ctx)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
