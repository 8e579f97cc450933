//! `[staffing]`: the station's teams and their rotation (docs/CONFIG.md, "[staffing]"). The
//! cycle is a list of slots, each so many hours long with the teams on duty and in training
//! (the rest are off), starting at a local moment; `stationd_proto::staffing::rotation` says
//! who is where at any moment. Optional: a station without it reports no teams.

use serde::Deserialize;
use stationd_proto::staffing::rotation::{Rotation, Slot};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaffing {
    /// The teams' names, as the roster's `team` column says them.
    teams: Vec<String>,
    /// When the first slot of the cycle began, local time: `2026-12-01T08:00`.
    start: String,
    /// The station's offset from UTC (no daylight saving).
    #[serde(default = "default_utc_offset")]
    utc_offset: String,
    /// The cycle, in order; it repeats.
    #[serde(default)]
    slot: Vec<RawSlot>,
    /// Whether people's names may leave the box in `P/state/staffing` (ids and roles only
    /// otherwise).
    #[serde(default)]
    share_names: bool,
    /// A signal that someone is present counts this long (a shift and its overtime).
    #[serde(default = "default_presence_expiry_h")]
    presence_expiry_h: f64,
    /// A car's radio counts as up when heard within this many minutes.
    #[serde(default = "default_radio_heard_within_min")]
    radio_heard_within_min: u64,
    /// The station's cars and what each needs aboard.
    #[serde(default)]
    car: Vec<RawCar>,
}

/// `[[staffing.car]]`: one car (or motorcycle) that a crew takes out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCar {
    /// The car's id, as its tracker and the dispatch commands name it (`car-01`).
    id: String,
    /// The device id of its tracker (JT/T 808 terminal or GNSS receiver); default the car's id.
    #[serde(default)]
    tracker: Option<String>,
    /// The device id of its radio, if it has one (`car-radio-01`).
    #[serde(default)]
    radio: Option<String>,
    /// Officers it needs aboard (a leader counts as one).
    #[serde(default = "default_officers")]
    officers: u8,
    /// Auxiliaries it needs aboard.
    #[serde(default = "default_auxiliaries")]
    auxiliaries: u8,
    /// A standing crew, until a command, the CLI or the signals form another.
    #[serde(default)]
    crew: Vec<String>,
}

fn default_presence_expiry_h() -> f64 {
    16.0
}
fn default_radio_heard_within_min() -> u64 {
    60
}
fn default_officers() -> u8 {
    1
}
fn default_auxiliaries() -> u8 {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlot {
    /// How long: whole or fractional hours (7.5), to the minute.
    hours: f64,
    #[serde(default)]
    on_duty: Vec<String>,
    #[serde(default)]
    training: Vec<String>,
}

fn default_utc_offset() -> String {
    "+08:00".into()
}

/// The checked rotation and how it was said.
#[derive(Debug, Clone)]
pub struct Staffing {
    pub rotation: Rotation,
    pub start: String,
    pub utc_offset: String,
    pub share_names: bool,
    pub presence_expiry_ms: i64,
    pub radio_heard_within_ms: i64,
    pub cars: Vec<Car>,
}

/// One car of `[[staffing.car]]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Car {
    pub id: String,
    pub tracker: String,
    pub radio: Option<String>,
    pub needs: stationd_proto::staffing::crew::Composition,
    pub crew: Vec<String>,
}

impl RawStaffing {
    pub(super) fn check(self) -> Result<Staffing, String> {
        let offset = crate::config::parse_utc_offset(&self.utc_offset).ok_or_else(|| {
            format!(
                "staffing.utc_offset {:?} must look like \"+08:00\"",
                self.utc_offset
            )
        })?;
        let start_ms = parse_local(&self.start)
            .and_then(|t| stationd_proto::footage::name::start_unix_ms(t, offset))
            .ok_or_else(|| {
                format!(
                    "staffing.start {:?} must be a local time like \"2026-12-01T08:00\"",
                    self.start
                )
            })?;
        let mut slots = Vec::with_capacity(self.slot.len());
        for (i, s) in self.slot.into_iter().enumerate() {
            let minutes = (s.hours * 60.0).round();
            if !(1.0..=f64::from(u32::MAX)).contains(&minutes) {
                return Err(format!(
                    "staffing.slot {}: hours must be positive (24, 12, 7.5)",
                    i + 1
                ));
            }
            slots.push(Slot {
                minutes: minutes as u32,
                on_duty: s.on_duty,
                training: s.training,
            });
        }
        let rotation =
            Rotation::new(self.teams, start_ms, slots).map_err(|e| format!("staffing: {e}"))?;
        if !(self.presence_expiry_h > 0.0 && self.presence_expiry_h <= 24.0 * 31.0) {
            return Err("staffing.presence_expiry_h must be between 0 and 744 hours (16 covers a shift and its overtime)".into());
        }
        let mut cars: Vec<Car> = Vec::with_capacity(self.car.len());
        for (i, c) in self.car.into_iter().enumerate() {
            let at = format!("staffing.car {} ({:?})", i + 1, c.id);
            if !crate::event::is_valid_device_id(&c.id) {
                return Err(format!(
                    "{at}: id must be 1-64 characters of [A-Za-z0-9_.-]"
                ));
            }
            if cars.iter().any(|k| k.id == c.id) {
                return Err(format!("{at}: car listed twice"));
            }
            if c.officers == 0 && c.auxiliaries == 0 {
                return Err(format!(
                    "{at}: a crew needs someone aboard (officers, auxiliaries)"
                ));
            }
            if let Some(p) = c.crew.iter().find(|p| !crate::event::is_valid_device_id(p)) {
                return Err(format!(
                    "{at}: crew member {p:?} must be 1-64 characters of [A-Za-z0-9_.-]"
                ));
            }
            if let Some(p) = c
                .crew
                .iter()
                .find(|p| cars.iter().any(|k| k.crew.contains(p)))
            {
                return Err(format!("{at}: {p:?} is in two cars' standing crews"));
            }
            cars.push(Car {
                tracker: c.tracker.unwrap_or_else(|| c.id.clone()),
                id: c.id,
                radio: c.radio,
                needs: stationd_proto::staffing::crew::Composition {
                    officers: c.officers,
                    auxiliaries: c.auxiliaries,
                },
                crew: c.crew,
            });
        }
        Ok(Staffing {
            rotation,
            start: self.start,
            utc_offset: self.utc_offset,
            share_names: self.share_names,
            presence_expiry_ms: (self.presence_expiry_h * 3_600_000.0).round() as i64,
            radio_heard_within_ms: self.radio_heard_within_min.saturating_mul(60_000) as i64,
            cars,
        })
    }
}

/// `2026-12-01T08:00` (or with `:SS`).
fn parse_local(s: &str) -> Option<stationd_proto::footage::name::LocalTime> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, mo, day) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let mut t = time.split(':');
    let (h, mi) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let sec = match t.next() {
        Some(v) => v.parse().ok()?,
        None => 0,
    };
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    Some((y, mo, day, h, mi, sec))
}

impl Staffing {
    /// What `check-config` says: the cycle and who is on duty now.
    pub fn describe(&self, now_ms: i64) -> String {
        use stationd_proto::staffing::rotation::TeamState;
        let r = &self.rotation;
        let names = |want: TeamState| {
            let v: Vec<&str> = r
                .states(now_ms)
                .into_iter()
                .filter(|(_, s)| *s == want)
                .map(|(t, _)| t)
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        format!(
            "{} team(s), a cycle of {} slot(s) ({} h) from {}{}; now on duty: {}; training: {}; off: {}",
            r.teams().len(),
            r.slots().len(),
            r.cycle_ms() as f64 / 3_600_000.0,
            self.start,
            self.utc_offset,
            names(TeamState::OnDuty),
            names(TeamState::Training),
            names(TeamState::Off)
        ) + &if self.cars.is_empty() {
            String::new()
        } else {
            format!(
                "; cars: {}",
                self.cars
                    .iter()
                    .map(|c| format!(
                        "{} ({} officer(s) + {} auxiliar{})",
                        c.id,
                        c.needs.officers,
                        c.needs.auxiliaries,
                        if c.needs.auxiliaries == 1 { "y" } else { "ies" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Staffing, String> {
        toml::from_str::<RawStaffing>(text)
            .map_err(|e| e.to_string())?
            .check()
    }

    const FOUR: &str = r#"
teams = ["1", "2", "3", "4"]
start = "2026-12-01T08:00"
[[slot]]
hours = 24
on_duty = ["1", "2"]
training = ["3"]
[[slot]]
hours = 24
on_duty = ["2", "3"]
training = ["4"]
[[slot]]
hours = 24
on_duty = ["3", "4"]
training = ["1"]
[[slot]]
hours = 24
on_duty = ["4", "1"]
training = ["2"]
"#;

    #[test]
    fn the_four_team_example_parses_and_says_who_is_on_duty() {
        let s = parse(FOUR).unwrap();
        // 2026-12-01 08:00 at UTC+8 is 00:00 UTC.
        assert_eq!(s.rotation.at(1_796_083_200_000).slot, 0);
        assert_eq!(
            s.rotation.at(1_796_083_200_000 - 1).slot,
            3,
            "07:59 belongs to the day before"
        );
        assert_eq!(
            s.describe(1_796_083_200_000),
            "4 team(s), a cycle of 4 slot(s) (96 h) from 2026-12-01T08:00+08:00; now on duty: 1, 2; training: 3; off: 4"
        );
    }

    #[test]
    fn cars_default_to_a_grid_crew_and_their_own_tracker() {
        let text = format!(
            "{FOUR}[[car]]\nid = \"car-01\"\nradio = \"car-radio-01\"\ncrew = [\"P-0417\"]\n[[car]]\nid = \"moto-1\"\ntracker = \"gps-moto\"\nauxiliaries = 0\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.cars[0].tracker, "car-01");
        assert_eq!(s.cars[0].needs, Default::default());
        assert_eq!(s.cars[0].crew, ["P-0417"]);
        assert_eq!(s.cars[1].tracker, "gps-moto");
        assert_eq!(s.cars[1].needs.auxiliaries, 0);
        assert!(!s.share_names, "names stay on the box unless configured");
        assert!(s.describe(0).ends_with(
            "cars: car-01 (1 officer(s) + 2 auxiliaries), moto-1 (1 officer(s) + 0 auxiliaries)"
        ));
    }

    #[test]
    fn mistakes_are_named() {
        let bad_start = FOUR.replace("2026-12-01T08:00", "1 December");
        assert!(parse(&bad_start).unwrap_err().contains("staffing.start"));
        let bad_team = FOUR.replace("training = [\"4\"]", "training = [\"5\"]");
        assert!(parse(&bad_team).unwrap_err().contains("\"5\""));
        let bad_hours = FOUR.replacen("hours = 24", "hours = 0", 1);
        assert!(parse(&bad_hours)
            .unwrap_err()
            .contains("hours must be positive"));
        let twice = format!("{FOUR}[[car]]\nid = \"car-01\"\n[[car]]\nid = \"car-01\"\n");
        assert!(parse(&twice).unwrap_err().contains("car listed twice"));
        let nobody = format!("{FOUR}[[car]]\nid = \"m-1\"\nofficers = 0\nauxiliaries = 0\n");
        assert!(parse(&nobody).unwrap_err().contains("needs someone aboard"));
        let bad_offset = format!("utc_offset = \"8\"\n{FOUR}");
        assert!(parse(&bad_offset).unwrap_err().contains("utc_offset"));
    }
}
