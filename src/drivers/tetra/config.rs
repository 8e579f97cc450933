//! `driver = "tetra"`: the station's TETRA base radio (or radio gateway terminal) on its PEI
//! serial port (docs/CONFIG.md, "tetra").

use crate::drivers::serial::SerialLine;
use crate::drivers::{CheckedConfig, DeviceConfig, DeviceContext, DeviceTask, DriverError};
use serde::Deserialize;
use std::any::Any;
use std::collections::BTreeMap;

/// A base radio's `[[device]]` table: the serial line ([`SerialLine`], taken from the same
/// table), the poll interval, who carries which ISSI, and which status values are emergencies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TetraDevice {
    pub id: String,
    pub driver: String,
    /// `path`, `baud`, `data_bits`, `parity`, `stop_bits`, `flow_control`.
    #[serde(skip)]
    pub line: SerialLine,
    /// Signal, battery, talkgroup and identity are asked this often.
    #[serde(default = "default_poll_s")]
    pub poll_s: u64,
    /// ISSI → who carries it. Unknown ISSIs still work (`issi-<ISSI>`).
    #[serde(default)]
    pub radios: BTreeMap<String, RadioEntry>,
    /// Status values (AI service 13) that mean "emergency" besides the pre-coded 0, e.g. a
    /// vendor's or the force's own emergency status (`0x8005` is a valid TOML integer).
    #[serde(default)]
    pub emergency_statuses: Vec<u16>,
    /// `radio.signal` is sent again when the level moved at least this much (dB).
    #[serde(default = "default_signal_step_db")]
    pub signal_step_db: u32,
}

/// Who carries one radio.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RadioEntry {
    /// The radio's device id in events (`position`, `radio.*`); default `issi-<ISSI>`.
    pub id: Option<String>,
    /// The officer's number, when the radio is personal.
    pub officer: Option<String>,
    pub callsign: Option<String>,
    /// The car, when the radio is a car's.
    pub car: Option<String>,
}

fn default_poll_s() -> u64 {
    30
}
fn default_signal_step_db() -> u32 {
    6
}

impl CheckedConfig for TetraDevice {
    fn check(&self) -> Result<(), String> {
        if self.poll_s == 0 {
            return Err("poll_s must be positive (30 is usual)".into());
        }
        for (key, entry) in &self.radios {
            if stationd_proto::tetra::issi(key).as_deref() != Some(key.as_str()) {
                return Err(format!(
                    "radios: {key:?} is not an ISSI (decimal digits without leading zeros, e.g. \"1001\")"
                ));
            }
            if let Some(id) = &entry.id {
                if !stationd_proto::event::is_valid_device_id(id) {
                    return Err(format!(
                        "radios.{key}.id {id:?} is not a device id ([A-Za-z0-9_.-], 1 to 64 characters)"
                    ));
                }
                if id == &self.id {
                    return Err(format!("radios.{key}.id is the base radio's own id"));
                }
            }
        }
        let mut ids: Vec<&str> = self
            .radios
            .values()
            .filter_map(|r| r.id.as_deref())
            .collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("radios: two ISSIs have the id {:?}", w[0]));
        }
        Ok(())
    }
}

impl crate::drivers::serial::SerialDevice for TetraDevice {
    fn set_line(&mut self, line: SerialLine) {
        self.line = line;
    }
}

impl DeviceConfig for TetraDevice {
    fn id(&self) -> &str {
        &self.id
    }
    fn driver(&self) -> &'static str {
        "tetra"
    }
    fn describe(&self) -> String {
        format!(
            "{} tetra {} (poll every {} s, {} radio(s) listed)",
            self.id,
            self.line.describe(),
            self.poll_s,
            self.radios.len()
        )
    }
    fn initial_state(&self) -> &'static str {
        "waiting"
    }
    /// The base radio and the radios heard through it: the listed ids and any `issi-<ISSI>`.
    fn owns(&self, id: &str) -> bool {
        self.id == id
            || id.starts_with("issi-")
            || self.radios.values().any(|r| r.id.as_deref() == Some(id))
    }
    /// A radio that is absent at start is not an error: it is reported offline and opened
    /// when it appears.
    fn start(&self, ctx: DeviceContext) -> Result<DeviceTask, DriverError> {
        let links = {
            let mut commands = ctx.commands.lock().unwrap_or_else(|p| p.into_inner());
            let links = commands.service::<super::text::RadioLinks>();
            commands.add_once(std::sync::Arc::new(super::text::TextCommand {
                links: links.clone(),
            }));
            links
        };
        Ok(Box::pin(super::run(self.clone(), ctx, links)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<crate::drivers::Device, String> {
        crate::drivers::serial::parse::<TetraDevice>(toml::from_str(s).unwrap())
    }

    #[test]
    fn the_issue_example_parses_and_mistakes_are_named() {
        let d = parse_str(
            r#"id = "radio0"
driver = "tetra"
path = "/dev/ttyUSB1"
poll_s = 30
emergency_statuses = [0x8005]
[radios]
"1001" = { id = "hh-1001", officer = "P-0417", callsign = "Ji-03" }
"1002" = { id = "car-03-radio", car = "car-03" }
"#,
        )
        .unwrap();
        let t = d.as_any().downcast_ref::<TetraDevice>().unwrap();
        assert_eq!(t.emergency_statuses, [0x8005]);
        assert_eq!(t.radios["1002"].car.as_deref(), Some("car-03"));
        assert!(d.owns("hh-1001") && d.owns("issi-77") && !d.owns("car-03"));
        let base = "id = \"radio0\"\ndriver = \"tetra\"\npath = \"/dev/ttyUSB1\"\n";
        assert!(parse_str(&format!("{base}[radios]\n\"01001\" = {{}}\n"))
            .unwrap_err()
            .contains("not an ISSI"));
        assert!(
            parse_str(&format!("{base}[radios]\n\"1\" = {{ id = \"a b\" }}\n"))
                .unwrap_err()
                .contains("device id")
        );
        assert!(parse_str(&format!(
            "{base}[radios]\n\"1\" = {{ id = \"x\" }}\n\"2\" = {{ id = \"x\" }}\n"
        ))
        .unwrap_err()
        .contains("two ISSIs"));
        assert!(parse_str(&format!("{base}[radios]\n\"1\" = {{ officr = \"x\" }}\n")).is_err());
        assert!(parse_str(&format!("{base}poll_s = 0\n"))
            .unwrap_err()
            .contains("poll_s"));
    }
}
