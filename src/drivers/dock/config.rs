//! `driver = "dock"`: the body-worn cameras' collection station (dock), as the tree of files it
//! writes on a volume the box can read (docs/CONFIG.md, "dock").

use crate::drivers::{CheckedConfig, DeviceConfig, DeviceContext, DeviceTask, DriverError};
use serde::Deserialize;
use stationd_proto::footage::name::NameTemplate;
use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A dock's `[[device]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockDevice {
    pub id: String,
    pub driver: String,
    /// Where the dock writes: one sub-directory per recorder, or flat.
    pub root: PathBuf,
    /// How to read a file name (stationd_proto::footage::name).
    #[serde(default = "default_name")]
    pub name: String,
    /// A file is complete when unchanged this long (or closed after writing).
    #[serde(default = "default_settle_s")]
    pub settle_s: u64,
    /// Recorder serial → officer, when names do not say.
    #[serde(default)]
    pub recorders: BTreeMap<String, RecorderEntry>,
    /// A full rescan this often (inotify loses events on overflow and across remounts).
    #[serde(default = "default_rescan_s")]
    pub rescan_s: u64,
    /// `dock.storage` telemetry this often.
    #[serde(default = "default_storage_s")]
    pub storage_s: u64,
    /// `dock.storage_low` (alarm) when the footage volume has less free space than this.
    #[serde(default = "default_min_free_pct")]
    pub min_free_pct: u8,
    /// The recorders' clock, which names are written in: `+08:00` (China) by default.
    #[serde(default = "default_utc_offset")]
    pub utc_offset: String,
    /// `footage.upload` sends at most this many kilobits per second (well below the uplink's
    /// capacity, so telemetry and alarms keep flowing beside an upload).
    #[serde(default = "default_upload_kbit_s")]
    pub upload_kbit_s: u64,
    /// A CA certificate (PEM) for central's upload server, besides the public roots.
    pub upload_ca_file: Option<PathBuf>,
}

/// Who carries a recorder.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecorderEntry {
    pub officer: String,
}

/// A common pattern (serial, police number, start); GA/T 947 publishes no naming rule.
pub fn default_name() -> String {
    "{recorder}_{officer}_{start:%Y%m%d%H%M%S}.{ext}".into()
}
fn default_settle_s() -> u64 {
    10
}
fn default_rescan_s() -> u64 {
    300
}
fn default_storage_s() -> u64 {
    60
}
fn default_min_free_pct() -> u8 {
    10
}
fn default_upload_kbit_s() -> u64 {
    2000
}
fn default_utc_offset() -> String {
    "+08:00".into()
}

impl DockDevice {
    pub fn template(&self) -> NameTemplate {
        NameTemplate::parse(&self.name).expect("checked when the config was read")
    }

    /// `utc_offset` in minutes ahead of UTC.
    pub fn offset_min(&self) -> i32 {
        parse_offset(&self.utc_offset).expect("checked when the config was read")
    }
}

use crate::config::parse_utc_offset as parse_offset;

impl CheckedConfig for DockDevice {
    fn check(&self) -> Result<(), String> {
        if !self.root.is_absolute() {
            return Err(format!("root {} must be absolute", self.root.display()));
        }
        NameTemplate::parse(&self.name).map_err(|e| format!("name: {e}"))?;
        if parse_offset(&self.utc_offset).is_none() {
            return Err(format!(
                "utc_offset {:?} must look like \"+08:00\" or \"-05:00\"",
                self.utc_offset
            ));
        }
        if self.settle_s == 0 || self.rescan_s == 0 || self.storage_s == 0 {
            return Err("settle_s, rescan_s and storage_s must be positive".into());
        }
        if self.upload_kbit_s == 0 {
            return Err("upload_kbit_s must be positive (2000 = 2 Mbit/s)".into());
        }
        if self.min_free_pct > 100 {
            return Err("min_free_pct is a percentage (0 to 100)".into());
        }
        Ok(())
    }
}

impl DeviceConfig for DockDevice {
    fn id(&self) -> &str {
        &self.id
    }
    fn driver(&self) -> &'static str {
        "dock"
    }
    fn describe(&self) -> String {
        format!(
            "{} dock {} (names {}; complete after {} s; {} recorder(s) listed)",
            self.id,
            self.root.display(),
            self.name,
            self.settle_s,
            self.recorders.len()
        )
    }
    fn initial_state(&self) -> &'static str {
        "waiting"
    }
    /// The dock and the recorders listed for it.
    fn owns(&self, id: &str) -> bool {
        self.id == id || self.recorders.contains_key(id)
    }
    /// A root that is missing at start (the volume not mounted yet) is not an error: the
    /// dock is reported offline and watched again at the next rescan.
    fn start(&self, ctx: DeviceContext) -> Result<DeviceTask, DriverError> {
        let docks = {
            let mut commands = ctx.commands.lock().unwrap_or_else(|p| p.into_inner());
            let docks = commands.service::<crate::evidence::Docks>();
            commands.add_once(std::sync::Arc::new(super::upload::UploadCommand {
                docks: docks.clone(),
            }));
            commands.add_once(std::sync::Arc::new(super::upload::ListCommand {
                docks: docks.clone(),
            }));
            docks
        };
        Ok(Box::pin(super::run(self.clone(), ctx, docks)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<crate::drivers::Device, String> {
        crate::drivers::parse_device::<DockDevice>(toml::from_str(s).unwrap())
    }

    #[test]
    fn the_issue_example_parses_and_mistakes_are_named() {
        let d = parse(
            "id = \"dock0\"\ndriver = \"dock\"\nroot = \"/srv/footage\"\nsettle_s = 10\n[recorders]\n\"DSJ-A1-0001\" = { officer = \"P-0417\" }\n",
        )
        .unwrap();
        let dock = d.as_any().downcast_ref::<DockDevice>().unwrap();
        assert_eq!(dock.offset_min(), 480);
        assert!(d.owns("DSJ-A1-0001"));
        let base = "id = \"dock0\"\ndriver = \"dock\"\n";
        assert!(parse(&format!("{base}root = \"srv\"\n"))
            .unwrap_err()
            .contains("absolute"));
        assert!(
            parse(&format!("{base}root = \"/srv\"\nname = \"{{who}}\"\n"))
                .unwrap_err()
                .contains("name: unknown field")
        );
        assert!(
            parse(&format!("{base}root = \"/srv\"\nutc_offset = \"8\"\n"))
                .unwrap_err()
                .contains("utc_offset")
        );
        assert_eq!(parse_offset("-05:30"), Some(-330));
    }
}
