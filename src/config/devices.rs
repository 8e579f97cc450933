//! The `[[device]]` tables: the profile's devices with the station's changes, then the
//! station's own, each typed by its driver through the registry, and checked across devices
//! (ids unique, no input speaking for another device's ids).

use super::{line_of, profile, ConfigError, Device, Profile};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// A `[[device]]` table, typed by its driver (the registry, `crate::drivers::DRIVERS`) and
/// checked.
pub(crate) fn device_from_table(table: toml::Table) -> Result<Device, String> {
    let name = match table.get("driver").and_then(|v| v.as_str()) {
        Some(d) => d.to_string(),
        None => return Err("missing `driver`".into()),
    };
    let Some(driver) = crate::drivers::driver(&name) else {
        let known: Vec<&str> = crate::drivers::DRIVERS.iter().map(|d| d.name).collect();
        return Err(format!(
            "unknown driver {name:?}; this build knows: {}",
            known.join(", ")
        ));
    };
    let device = (driver.parse)(table)?;
    if !crate::event::is_valid_device_id(device.id()) {
        return Err("id must be 1-64 characters of [A-Za-z0-9_.-]".into());
    }
    Ok(device)
}

/// One `[[device]]` on its way to being typed: from the profile, the station config, or both.
struct DeviceDraft {
    id: String,
    table: toml::Table,
    /// The station config's table that defined or changed it, if any.
    station_span: Option<Range<usize>>,
}

/// The profile's devices, in its order, with the station's changes; then the station's own.
/// With them, each device's settings as one canonical text (its merged table, the profile's
/// port resolved): a reload restarts a device only when this text changed.
pub(super) fn merge_devices(
    path: &Path,
    text: &str,
    profile: Option<&Profile>,
    station_tables: Vec<Spanned<toml::Table>>,
) -> Result<(Vec<Device>, BTreeMap<String, String>), ConfigError> {
    let at_station = |span: Range<usize>, label: &str, message: String| ConfigError {
        file: path.to_path_buf(),
        line: Some(line_of(text, span.start)),
        key: Some(label.to_string()),
        message,
    };
    let mut drafts: Vec<DeviceDraft> = profile
        .map(|p| {
            p.devices
                .iter()
                .map(|d| DeviceDraft {
                    id: d.id.clone(),
                    table: d.table.clone(),
                    station_span: None,
                })
                .collect()
        })
        .unwrap_or_default();
    for table in station_tables {
        let span = table.span();
        let table = table.into_inner();
        let id = table_id(&table);
        let label = format!("device {id:?}");
        let Some(draft) = drafts.iter_mut().find(|d| d.id == id) else {
            drafts.push(DeviceDraft {
                id,
                table,
                station_span: Some(span),
            });
            continue;
        };
        if draft.station_span.is_some() {
            return Err(at_station(span, &label, "device id used twice".into()));
        }
        if table.contains_key("driver") && table.get("driver") != draft.table.get("driver") {
            return Err(at_station(
                span,
                &label,
                "the hardware profile defines this device with another driver; set `enabled = false` on it and add a device with a new id".into(),
            ));
        }
        draft.table.extend(table);
        draft.station_span = Some(span);
    }

    let mut devices = Vec::new();
    let mut settings = BTreeMap::new();
    let mut seen = HashSet::new();
    for DeviceDraft {
        id,
        mut table,
        station_span,
    } in drafts
    {
        let label = format!("device {id:?}");
        let in_profile = profile.and_then(|p| {
            p.devices
                .iter()
                .find(|d| d.id == id)
                .map(|d| (p.source.clone(), d.line))
        });
        // Errors are reported where the administrator can fix them: the station config's
        // table when it has one (naming the profile's device it changes), else the profile's.
        let locate = |why: String| match (&station_span, &in_profile) {
            (None, Some((file, line))) => ConfigError {
                file: file.clone(),
                line: Some(*line),
                key: Some(label.clone()),
                message: why,
            },
            (Some(span), Some((file, line))) => at_station(
                span.clone(),
                &label,
                format!(
                    "{why} (this table overrides the device of {}:{line})",
                    file.display()
                ),
            ),
            (Some(span), None) => at_station(span.clone(), &label, why),
            // (not reached: a draft comes from the profile or from the station config)
            (None, None) => ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: Some(label.clone()),
                message: why,
            },
        };
        match table.remove("enabled") {
            None | Some(toml::Value::Boolean(true)) => {}
            Some(toml::Value::Boolean(false)) => continue,
            Some(_) => return Err(locate("enabled must be true or false".into())),
        }
        let table = profile::resolve_port(profile, table).map_err(&locate)?;
        // (toml's Table is ordered by key: the same settings give the same text.)
        let canonical = table.to_string();
        let device = device_from_table(table).map_err(&locate)?;
        settings.insert(device.id().to_string(), canonical);
        if !seen.insert(device.id().to_string()) {
            return Err(locate("device id used twice".into()));
        }
        if let Some(why) = devices
            .iter()
            .find_map(|other| foreign_claim(&device, other))
        {
            return Err(locate(why));
        }
        devices.push(device);
    }
    // (A device listed before the one whose ids it claims is caught here.)
    for (i, d) in devices.iter().enumerate() {
        if let Some(why) = devices[i + 1..]
            .iter()
            .find_map(|other| foreign_claim(d, other))
        {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: Some(format!("device {:?}", d.id())),
                message: why,
            });
        }
    }
    Ok((devices, settings))
}

/// Why `device` may not speak for an id `other` owns (a `jsonl` input's `devices`), if it
/// asks to.
fn foreign_claim(device: &Device, other: &Device) -> Option<String> {
    let id = device.speaks_for().iter().find(|id| other.owns(id))?;
    Some(format!(
        "devices: {id:?} belongs to device {:?} ({}); only that device speaks for it (docs/CONTRACT.md, \"Reserved names\")",
        other.id(),
        other.driver()
    ))
}

/// The `id` a `[[device]]` table gives, "" when none (the typed parse then says it is missing).
pub(super) fn table_id(table: &toml::Table) -> String {
    table
        .get("id")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}
