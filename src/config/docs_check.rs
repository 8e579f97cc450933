//! docs/CONFIG.md against the code: every key a config table takes is documented in its
//! section's table, and every key documented there exists. A new driver without its section
//! fails here.

use super::commands::RawCommands;
use super::keys::keys_of;
use super::{RawBuffer, Station, Uplink};
use std::collections::BTreeSet;

const CONFIG_MD: &str = include_str!("../../docs/CONFIG.md");

/// The keys in the first column of the table under the heading that starts with `heading`
/// (every backticked name in that cell: "`data_bits`, `parity`" is two keys).
fn documented(heading: &str) -> BTreeSet<String> {
    let mut lines = CONFIG_MD.lines().skip_while(|l| !l.starts_with(heading));
    assert!(
        lines.next().is_some(),
        "docs/CONFIG.md has no section {heading:?}"
    );
    let mut keys = BTreeSet::new();
    for line in lines.take_while(|l| !l.starts_with('#')) {
        let Some(cell) = line.strip_prefix("| ").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        for (i, part) in cell.split('`').enumerate() {
            if i % 2 == 1 && part != "key" {
                keys.insert(part.to_string());
            }
        }
    }
    keys
}

fn assert_same(section: &str, code: Vec<&'static str>, except: &[&str]) {
    let code: BTreeSet<String> = code
        .into_iter()
        .filter(|k| !except.contains(k))
        .map(str::to_string)
        .collect();
    let docs = documented(section);
    let undocumented: Vec<_> = code.difference(&docs).collect();
    let unknown: Vec<_> = docs.difference(&code).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/CONFIG.md {section}: keys the code takes but the table does not document: \
         {undocumented:?}; keys documented that the code does not take: {unknown:?}"
    );
}

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    assert_same("## `[station]`", keys_of::<Station>(), &[]);
    assert_same("## `[uplink]`", keys_of::<Uplink>(), &[]);
    assert_same("## `[buffer]`", keys_of::<RawBuffer>(), &[]);
    assert_same("## `[commands]`", keys_of::<RawCommands>(), &[]);
    assert_same(
        "## `[staffing]`",
        keys_of::<super::staffing::RawStaffing>(),
        &["slot", "car"],
    );
    assert_same(
        "### `[[staffing.slot]]`",
        keys_of::<super::staffing::RawSlot>(),
        &[],
    );
    assert_same(
        "## `[equipment]`",
        keys_of::<super::equipment::RawEquipment>(),
        &[],
    );
    assert_same(
        "## `[dispatch]`",
        keys_of::<super::dispatch::RawDispatch>(),
        &[],
    );
    assert_same("## `[box]`", keys_of::<super::host::RawBox>(), &[]);
    assert_same("## `[metrics]`", keys_of::<super::web::RawMetrics>(), &[]);
    assert_same(
        "## `[status_page]`",
        keys_of::<super::web::RawStatusPage>(),
        &[],
    );
    assert_same(
        "### `[[staffing.car]]`",
        keys_of::<super::staffing::RawCar>(),
        &[],
    );
    for driver in crate::drivers::DRIVERS {
        // `id` and `driver` are documented once for all, under `[[device]]`.
        assert_same(
            &format!("### `driver = \"{}\"`", driver.name),
            (driver.keys)(),
            &["id", "driver"],
        );
    }
}

#[test]
fn the_key_reader_sees_renames_and_skips() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct T {
        a: u8,
        #[serde(rename = "b-b")]
        b: u8,
        #[serde(skip)]
        c: u8,
    }
    assert_eq!(keys_of::<T>(), ["a", "b-b"]);
}
