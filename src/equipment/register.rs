//! The register's items as administrators keep them (a CSV export of the station's asset list,
//! or central's `equipment.set`): asset tag, class, name, serial, the device it is linked to,
//! the car whose kit it is, the next maintenance date. Checked whole, errors naming the row.

use crate::records::{read_csv, Format};
use serde::{Deserialize, Serialize};

/// One item of the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The asset tag (`RAD-07`): what every payload names it by.
    pub id: String,
    /// One of `[equipment] classes`.
    pub class: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub serial: Option<String>,
    /// The device id it takes its health from (a radio's, a recorder's serial, a car's).
    #[serde(default)]
    pub device: Option<String>,
    /// The car whose kit it is: checking it out puts the person in that car's crew.
    #[serde(default)]
    pub car: Option<String>,
    /// `YYYY-MM-DD`: from that day on it is `maintenance_due`.
    #[serde(default)]
    pub next_maintenance: Option<String>,
}

/// The most items a register may hold (a station has ~58).
pub const MAX_ITEMS: usize = 5_000;

/// The register's CSV columns.
pub const COLUMNS: [&str; 7] = [
    "id",
    "class",
    "name",
    "serial",
    "device",
    "car",
    "next_maintenance",
];

/// Reads a register file's text (`.csv` or `.toml`, as for the roster).
pub fn parse(text: &str, format: Format) -> Result<Vec<Item>, String> {
    match format {
        Format::Toml => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct File {
                #[serde(default)]
                item: Vec<Item>,
            }
            Ok(toml::from_str::<File>(text)
                .map_err(|e| e.to_string())?
                .item)
        }
        Format::Csv => read_csv(text, &COLUMNS, &["id", "class"])?
            .into_iter()
            .map(|row| {
                Ok(Item {
                    id: row.get("id").unwrap_or_default(),
                    class: row.get("class").unwrap_or_default(),
                    name: row.get("name").unwrap_or_default(),
                    serial: row.get("serial"),
                    device: row.get("device"),
                    car: row.get("car"),
                    next_maintenance: row.get("next_maintenance"),
                })
            })
            .collect(),
    }
}

/// Checks a whole register against the station's classes.
pub fn check(items: &[Item], classes: &[String]) -> Result<(), String> {
    if items.len() > MAX_ITEMS {
        return Err(format!(
            "{} items: a register holds at most {MAX_ITEMS}",
            items.len()
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("item {} ({:?})", i + 1, item.id);
        if !crate::event::is_valid_device_id(&item.id) {
            return Err(format!(
                "{at}: id must be 1-64 characters of [A-Za-z0-9_.-]"
            ));
        }
        if !ids.insert(item.id.as_str()) {
            return Err(format!("{at}: listed twice"));
        }
        if !classes.contains(&item.class) {
            return Err(format!(
                "{at}: class {:?} is not one of the station's classes ({})",
                item.class,
                classes.join(", ")
            ));
        }
        for (key, v) in [("device", &item.device), ("car", &item.car)] {
            if let Some(v) = v {
                if !crate::event::is_valid_device_id(v) {
                    return Err(format!(
                        "{at}: {key} {v:?} must be 1-64 characters of [A-Za-z0-9_.-]"
                    ));
                }
            }
        }
        if let Some(d) = &item.next_maintenance {
            if !is_date(d) {
                return Err(format!(
                    "{at}: next_maintenance {d:?} must be a date like 2027-03-31"
                ));
            }
        }
    }
    Ok(())
}

/// `YYYY-MM-DD`, a real day.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (
        s[..4].parse::<i32>(),
        s[5..7].parse::<u8>(),
        s[8..].parse::<u8>(),
    ) else {
        return false;
    };
    time::Month::try_from(m)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(y, m, d).ok())
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        crate::config::Equipment::default().classes
    }

    #[test]
    fn an_asset_list_reads_and_checks() {
        let text = "id,class,name,serial,device,car,next_maintenance\nVEH-03,vehicles,Grid car 3,LSVAX,car-03,car-03,2027-03-31\nRAD-07,radios,\"Handheld, MTP3550\",SN7,hh-1001,car-03,\nVEST-1,protective_gear,Stab vest,,,,\n";
        let items = parse(text, Format::Csv).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].name, "Handheld, MTP3550");
        assert_eq!(items[1].device.as_deref(), Some("hh-1001"));
        assert_eq!(items[2].device, None);
        check(&items, &classes()).unwrap();
    }

    #[test]
    fn mistakes_name_the_item() {
        let bad_class = parse("id,class\nX-1,radios\nX-2,tanks\n", Format::Csv).unwrap();
        assert!(check(&bad_class, &classes())
            .unwrap_err()
            .starts_with("item 2 (\"X-2\"): class \"tanks\" is not one of"));
        let bad_date = parse(
            "id,class,next_maintenance\nX-1,radios,2027-02-30\n",
            Format::Csv,
        )
        .unwrap();
        assert!(check(&bad_date, &classes())
            .unwrap_err()
            .contains("2027-02-30"));
        let twice = parse("id,class\nX-1,radios\nX-1,radios\n", Format::Csv).unwrap();
        assert!(check(&twice, &classes())
            .unwrap_err()
            .contains("listed twice"));
        assert!(parse("id,kind\nX,radios\n", Format::Csv)
            .unwrap_err()
            .contains("unknown column \"kind\""));
        let toml = parse("[[item]]\nid = \"X-1\"\nclass = \"radios\"\n", Format::Toml).unwrap();
        check(&toml, &classes()).unwrap();
        assert!(is_date("2028-02-29") && !is_date("2027-02-29") && !is_date("27-02-01"));
    }
}
