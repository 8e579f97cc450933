//! `[equipment]`: the station's equipment register's classes and the rules that judge items
//! from their devices (docs/CONFIG.md, "[equipment]"). Optional: without it the seven classes
//! of the stations studied are used and a linked device offline for a day is a suspected fault.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEquipment {
    /// The register's classes, in the order views list them.
    #[serde(default = "default_classes")]
    classes: Vec<String>,
    /// A linked device offline this many hours makes its item a suspected fault.
    #[serde(default = "default_offline_fault_h")]
    offline_fault_h: f64,
    /// The station's offset from UTC, for maintenance dates (no daylight saving).
    #[serde(default = "default_utc_offset")]
    utc_offset: String,
}

impl Default for RawEquipment {
    fn default() -> RawEquipment {
        RawEquipment {
            classes: default_classes(),
            offline_fault_h: default_offline_fault_h(),
            utc_offset: default_utc_offset(),
        }
    }
}

/// "7 classes, 58 items": vehicles, radios, recorders, terminals, protective gear, restraint and
/// less-lethal tools, station systems.
pub fn default_classes() -> Vec<String> {
    [
        "vehicles",
        "radios",
        "recorders",
        "terminals",
        "protective_gear",
        "restraints",
        "station_systems",
    ]
    .map(String::from)
    .to_vec()
}
fn default_offline_fault_h() -> f64 {
    24.0
}
fn default_utc_offset() -> String {
    "+08:00".into()
}

/// `[equipment]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Equipment {
    pub classes: Vec<String>,
    pub offline_fault_ms: i64,
    /// Minutes east of UTC.
    pub utc_offset_min: i32,
}

impl Default for Equipment {
    fn default() -> Equipment {
        RawEquipment::default()
            .check()
            .expect("the defaults are valid")
    }
}

impl RawEquipment {
    pub(super) fn check(self) -> Result<Equipment, String> {
        if self.classes.is_empty() {
            return Err("equipment.classes must name at least one class".into());
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.is_empty()
                || c.len() > 32
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "equipment.classes: {c:?} must be 1-32 characters of [a-z0-9_]"
                ));
            }
            if self.classes[..i].contains(c) {
                return Err(format!("equipment.classes: {c:?} listed twice"));
            }
        }
        if !(self.offline_fault_h > 0.0 && self.offline_fault_h <= 24.0 * 365.0) {
            return Err("equipment.offline_fault_h must be between 0 and 8760 hours".into());
        }
        let utc_offset_min =
            crate::config::parse_utc_offset(&self.utc_offset).ok_or_else(|| {
                format!(
                    "equipment.utc_offset {:?} must look like \"+08:00\"",
                    self.utc_offset
                )
            })?;
        Ok(Equipment {
            classes: self.classes,
            offline_fault_ms: (self.offline_fault_h * 3_600_000.0).round() as i64,
            utc_offset_min,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Equipment, String> {
        toml::from_str::<RawEquipment>(text)
            .map_err(|e| e.to_string())?
            .check()
    }

    #[test]
    fn the_defaults_are_the_seven_classes_and_a_day() {
        let e = parse("").unwrap();
        assert_eq!(e.classes.len(), 7);
        assert_eq!(e.offline_fault_ms, 86_400_000);
        assert_eq!(e.utc_offset_min, 480);
        assert_eq!(e, Equipment::default());
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse("classes = []").unwrap_err().contains("at least one"));
        assert!(parse("classes = [\"Radios\"]")
            .unwrap_err()
            .contains("[a-z0-9_]"));
        assert!(parse("classes = [\"a\", \"a\"]")
            .unwrap_err()
            .contains("twice"));
        assert!(parse("offline_fault_h = 0")
            .unwrap_err()
            .contains("offline_fault_h"));
        assert!(parse("utc_offset = \"8\"")
            .unwrap_err()
            .contains("utc_offset"));
    }
}
