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
        Ok(Staffing {
            rotation,
            start: self.start,
            utc_offset: self.utc_offset,
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
        )
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
    fn mistakes_are_named() {
        let bad_start = FOUR.replace("2026-12-01T08:00", "1 December");
        assert!(parse(&bad_start).unwrap_err().contains("staffing.start"));
        let bad_team = FOUR.replace("training = [\"4\"]", "training = [\"5\"]");
        assert!(parse(&bad_team).unwrap_err().contains("\"5\""));
        let bad_hours = FOUR.replacen("hours = 24", "hours = 0", 1);
        assert!(parse(&bad_hours)
            .unwrap_err()
            .contains("hours must be positive"));
        let bad_offset = format!("utc_offset = \"8\"\n{FOUR}");
        assert!(parse(&bad_offset).unwrap_err().contains("utc_offset"));
    }
}
