//! The shift rotation: a station's teams work a cycle of slots ("four teams, two on duty, one
//! training, one off", repeated), anchored at a start moment. Given any moment (unix ms),
//! [`Rotation::at`] says which slot of which cycle it falls in, and each team's state.
//!
//! Slots are measured in minutes from the start, on UTC milliseconds: the stations' time zone
//! (UTC+8) has no daylight saving, so local days are a fixed offset away and the start is the
//! only local time involved (the daemon turns `start` + `utc_offset` into unix ms). Moments
//! before the start fall in earlier cycles, not in an error: the cycle extends both ways.

use std::collections::BTreeSet;

/// A team's state in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamState {
    OnDuty,
    Training,
    Off,
}

/// One slot of the cycle: how long, who works, who trains; the other teams are off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub minutes: u32,
    pub on_duty: Vec<String>,
    pub training: Vec<String>,
}

/// The longest cycle accepted (a year of slots): a longer one is a mistake in the config.
pub const MAX_CYCLE_MINUTES: i64 = 366 * 24 * 60;

/// A checked rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    teams: Vec<String>,
    start_ms: i64,
    slots: Vec<Slot>,
    /// Each slot's end, in ms from the cycle's start.
    ends_ms: Vec<i64>,
}

/// Where a moment falls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// Which cycle (0 is the one that begins at the start; negative before it).
    pub cycle: i64,
    /// Which slot of the cycle.
    pub slot: usize,
    /// The slot's bounds, unix ms (start inclusive, end exclusive).
    pub slot_start_ms: i64,
    pub slot_end_ms: i64,
}

impl Rotation {
    /// Checks and builds a rotation: at least one team, no team twice, at least one slot, every
    /// slot longer than zero, naming only known teams, no team both on duty and training in a
    /// slot, a cycle of at most a year.
    pub fn new(teams: Vec<String>, start_ms: i64, slots: Vec<Slot>) -> Result<Rotation, String> {
        if teams.is_empty() {
            return Err("no teams: list the station's teams".into());
        }
        let known: BTreeSet<&str> = teams.iter().map(String::as_str).collect();
        if known.len() != teams.len() {
            return Err("a team is listed twice".into());
        }
        if slots.is_empty() {
            return Err("no slots: the cycle needs at least one".into());
        }
        let mut ends_ms = Vec::with_capacity(slots.len());
        let mut total_min: i64 = 0;
        for (i, slot) in slots.iter().enumerate() {
            let n = i + 1;
            if slot.minutes == 0 {
                return Err(format!("slot {n} has no length"));
            }
            for team in slot.on_duty.iter().chain(&slot.training) {
                if !known.contains(team.as_str()) {
                    return Err(format!(
                        "slot {n} names team {team:?}, which is not listed in teams"
                    ));
                }
            }
            if let Some(both) = slot.on_duty.iter().find(|t| slot.training.contains(t)) {
                return Err(format!(
                    "slot {n} has team {both:?} both on duty and training"
                ));
            }
            let duty: BTreeSet<&String> = slot.on_duty.iter().collect();
            if duty.len() != slot.on_duty.len() {
                return Err(format!("slot {n} lists a team on duty twice"));
            }
            total_min += i64::from(slot.minutes);
            if total_min > MAX_CYCLE_MINUTES {
                return Err(format!(
                    "the cycle is longer than a year ({total_min} minutes by slot {n})"
                ));
            }
            ends_ms.push(total_min * 60_000);
        }
        Ok(Rotation {
            teams,
            start_ms,
            slots,
            ends_ms,
        })
    }

    pub fn teams(&self) -> &[String] {
        &self.teams
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The cycle's length, ms.
    pub fn cycle_ms(&self) -> i64 {
        *self.ends_ms.last().expect("at least one slot")
    }

    /// Where `t_ms` falls.
    pub fn at(&self, t_ms: i64) -> Moment {
        let cycle_ms = self.cycle_ms();
        let since = i128::from(t_ms) - i128::from(self.start_ms);
        let cycle = since.div_euclid(i128::from(cycle_ms));
        let within = since.rem_euclid(i128::from(cycle_ms)) as i64;
        // The first slot whose end is after `within`.
        let slot = self.ends_ms.partition_point(|&end| end <= within);
        let cycle_start = i128::from(self.start_ms) + cycle * i128::from(cycle_ms);
        let slot_start = if slot == 0 { 0 } else { self.ends_ms[slot - 1] };
        let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        Moment {
            cycle: clamp(cycle),
            slot,
            slot_start_ms: clamp(cycle_start + i128::from(slot_start)),
            slot_end_ms: clamp(cycle_start + i128::from(self.ends_ms[slot])),
        }
    }

    /// `team`'s state at `t_ms` (`None` for a team not in the rotation).
    pub fn state_of(&self, team: &str, t_ms: i64) -> Option<TeamState> {
        if !self.teams.iter().any(|t| t == team) {
            return None;
        }
        let slot = &self.slots[self.at(t_ms).slot];
        Some(if slot.on_duty.iter().any(|t| t == team) {
            TeamState::OnDuty
        } else if slot.training.iter().any(|t| t == team) {
            TeamState::Training
        } else {
            TeamState::Off
        })
    }

    /// Every team's state at `t_ms`, in the order the teams are listed.
    pub fn states(&self, t_ms: i64) -> Vec<(&str, TeamState)> {
        self.teams
            .iter()
            .map(|t| (t.as_str(), self.state_of(t, t_ms).expect("a listed team")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn teams(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn slot(hours: u32, on: &[&str], training: &[&str]) -> Slot {
        Slot {
            minutes: hours * 60,
            on_duty: teams(on),
            training: teams(training),
        }
    }

    /// 2026-12-01 08:00 at UTC+8 = 00:00 UTC.
    const START: i64 = 1_796_083_200_000;
    const H: i64 = 3_600_000;

    /// The stations' cycle: four teams, two on duty, one training, one off, a day each.
    fn four_two_one_one() -> Rotation {
        Rotation::new(
            teams(&["1", "2", "3", "4"]),
            START,
            vec![
                slot(24, &["1", "2"], &["3"]),
                slot(24, &["2", "3"], &["4"]),
                slot(24, &["3", "4"], &["1"]),
                slot(24, &["4", "1"], &["2"]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_four_team_cycle_turns_at_the_local_shift_change() {
        let r = four_two_one_one();
        use TeamState::*;
        let states = |t| r.states(t).into_iter().map(|(_, s)| s).collect::<Vec<_>>();
        assert_eq!(states(START), [OnDuty, OnDuty, Training, Off]);
        assert_eq!(
            states(START + 24 * H - 1),
            [OnDuty, OnDuty, Training, Off],
            "07:59:59.999 next day"
        );
        assert_eq!(states(START + 24 * H), [Off, OnDuty, OnDuty, Training]);
        assert_eq!(
            states(START + 4 * 24 * H),
            states(START),
            "the cycle repeats"
        );
        // Before the start: the cycle extends backwards (the day before is the fourth slot).
        assert_eq!(states(START - 1), [OnDuty, Training, Off, OnDuty]);
        let m = r.at(START - 1);
        assert_eq!(
            (m.cycle, m.slot, m.slot_start_ms, m.slot_end_ms),
            (-1, 3, START - 24 * H, START)
        );
        assert_eq!(r.state_of("5", START), None);
        // A month later, across the month boundary (2027-01-01 08:00 local = 31 days on).
        let jan1 = START + 31 * 24 * H;
        assert_eq!(r.at(jan1).slot, 31 % 4);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |teams_: &[&str], slots: Vec<Slot>| {
            Rotation::new(teams(teams_), START, slots).unwrap_err()
        };
        assert!(err(&[], vec![slot(1, &[], &[])]).contains("no teams"));
        assert!(err(&["1", "1"], vec![slot(1, &[], &[])]).contains("twice"));
        assert!(err(&["1"], vec![]).contains("no slots"));
        assert!(err(&["1"], vec![slot(0, &["1"], &[])]).contains("no length"));
        assert!(err(&["1"], vec![slot(1, &["2"], &[])]).contains("\"2\""));
        assert!(err(&["1"], vec![slot(1, &["1"], &["1"])]).contains("both"));
        assert!(err(&["1"], vec![slot(24 * 367, &["1"], &[])]).contains("longer than a year"));
    }

    fn any_rotation() -> impl Strategy<Value = Rotation> {
        (1usize..6, 1usize..8, any::<i32>())
            .prop_flat_map(|(n_teams, n_slots, start_min)| {
                let names: Vec<String> = (0..n_teams).map(|i| format!("T{i}")).collect();
                let slot = (1u32..2000, proptest::collection::vec(0..3u8, n_teams));
                (
                    Just(names),
                    Just(start_min),
                    proptest::collection::vec(slot, n_slots),
                )
            })
            .prop_map(|(names, start_min, raw)| {
                let slots = raw
                    .into_iter()
                    .map(|(minutes, roles)| Slot {
                        minutes,
                        on_duty: names
                            .iter()
                            .zip(&roles)
                            .filter(|(_, r)| **r == 0)
                            .map(|(n, _)| n.clone())
                            .collect(),
                        training: names
                            .iter()
                            .zip(&roles)
                            .filter(|(_, r)| **r == 1)
                            .map(|(n, _)| n.clone())
                            .collect(),
                    })
                    .collect();
                Rotation::new(names, i64::from(start_min) * 60_000, slots).unwrap()
            })
    }

    proptest! {
        /// Every moment, centuries either side of the start, falls in exactly one slot, inside
        /// its bounds, and exactly that slot's teams are on duty and in training.
        #[test]
        fn every_moment_has_exactly_the_configured_teams(r in any_rotation(), t in -5_000_000_000_000i64..5_000_000_000_000) {
            let m = r.at(t);
            prop_assert!(m.slot_start_ms <= t && t < m.slot_end_ms);
            prop_assert_eq!(m.slot_end_ms - m.slot_start_ms, i64::from(r.slots()[m.slot].minutes) * 60_000);
            let slot = &r.slots()[m.slot];
            let on: Vec<&str> = r.states(t).into_iter().filter(|(_, s)| *s == TeamState::OnDuty).map(|(n, _)| n).collect();
            let mut want: Vec<&str> = slot.on_duty.iter().map(String::as_str).collect();
            want.sort();
            let mut got = on.clone();
            got.sort();
            prop_assert_eq!(got, want);
            let training = r.states(t).into_iter().filter(|(_, s)| *s == TeamState::Training).count();
            prop_assert_eq!(training, slot.training.len());
            // The same moment one cycle later is in the same slot.
            prop_assert_eq!(r.at(t + r.cycle_ms()).slot, m.slot);
            // The slot's last millisecond is still in it; its end is in the next.
            prop_assert_eq!(r.at(m.slot_end_ms - 1).slot, m.slot);
            prop_assert_eq!(r.at(m.slot_end_ms).slot, (m.slot + 1) % r.slots().len());
        }
    }
}
