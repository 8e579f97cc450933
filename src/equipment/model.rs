//! An item's state, judged (pure): what people said of it (checked out, fault, lost, back in
//! service), what its device shows (a recorder in the dock is charging, out of it is with its
//! officer; a device not heard for `offline_fault_h` is a suspected fault), and its maintenance
//! date. The order of precedence is one function, so every rule is a unit test.

use super::register::Item;
use serde::Serialize;

/// The register's states (the contract's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    InService,
    CheckedOut,
    Charging,
    Fault,
    MaintenanceDue,
    Lost,
}

impl State {
    pub const ALL: [State; 6] = [
        State::InService,
        State::CheckedOut,
        State::Charging,
        State::Fault,
        State::MaintenanceDue,
        State::Lost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::InService => "in_service",
            State::CheckedOut => "checked_out",
            State::Charging => "charging",
            State::Fault => "fault",
            State::MaintenanceDue => "maintenance_due",
            State::Lost => "lost",
        }
    }

    pub fn from_name(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// What a person last said of an item (CLI or central).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manual {
    /// `in_service`, `checked_out`, `fault` or `lost`.
    pub state: State,
    pub assigned_to: Option<String>,
    pub note: String,
    pub by: String,
    pub at_ms: i64,
}

/// What the item's recorder last did at the dock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Docking {
    pub docked: bool,
    pub dock: String,
    pub officer: Option<String>,
    pub at_ms: i64,
}

/// The linked device as the board shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSeen {
    pub state: String,
    pub since_ms: i64,
    pub last_seen_ms: Option<i64>,
}

/// An item's state now, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub state: State,
    pub assigned_to: Option<String>,
    /// Judged from its device (a suspected fault), not said by a person.
    pub suspected: bool,
    pub reason: String,
}

/// Judges `item` at `now_ms` on `today` (`YYYY-MM-DD`, the station's local date).
pub fn judge(
    item: &Item,
    manual: Option<&Manual>,
    docking: Option<&Docking>,
    device: Option<&DeviceSeen>,
    now_ms: i64,
    offline_fault_ms: i64,
    today: &str,
) -> Judged {
    let said = |m: &Manual, reason: String| Judged {
        state: m.state,
        assigned_to: m.assigned_to.clone(),
        suspected: false,
        reason,
    };
    let note = |m: &Manual| {
        if m.note.is_empty() {
            String::new()
        } else {
            format!(": {}", m.note)
        }
    };
    if let Some(m) = manual.filter(|m| matches!(m.state, State::Lost | State::Fault)) {
        let what = if m.state == State::Lost {
            "reported lost"
        } else {
            "reported in fault"
        };
        return said(m, format!("{what} by {}{}", m.by, note(m)));
    }
    // A recorder's dock says where it is; a docked recorder is quiet by nature.
    let device = device.filter(|_| docking.is_none());
    if let (Some(d), Some(id)) = (device, &item.device) {
        let quiet_ms = now_ms.saturating_sub(d.last_seen_ms.unwrap_or(d.since_ms));
        if d.state != "listening" && quiet_ms >= offline_fault_ms {
            return Judged {
                state: State::Fault,
                assigned_to: manual.and_then(|m| m.assigned_to.clone()),
                suspected: true,
                reason: format!(
                    "suspected: device {id} {} for {}",
                    if d.state == "online" {
                        "not heard"
                    } else {
                        "offline"
                    },
                    crate::cli::format_duration((quiet_ms / 1000) as u64)
                ),
            };
        }
    }
    if let Some(date) = item.next_maintenance.as_deref().filter(|d| *d <= today) {
        return Judged {
            state: State::MaintenanceDue,
            assigned_to: manual.and_then(|m| m.assigned_to.clone()),
            suspected: false,
            reason: format!("maintenance due since {date}"),
        };
    }
    // What a person said and what the dock saw: the more recent decides.
    match (manual, docking) {
        (Some(m), Some(d)) if m.at_ms > d.at_ms => said(m, said_reason(m)),
        (_, Some(d)) if d.docked => Judged {
            state: State::Charging,
            assigned_to: None,
            suspected: false,
            reason: format!("in dock {}", d.dock),
        },
        (_, Some(d)) => Judged {
            state: State::CheckedOut,
            assigned_to: d.officer.clone(),
            suspected: false,
            reason: format!("taken from dock {}", d.dock),
        },
        (Some(m), None) => said(m, said_reason(m)),
        (None, None) => Judged {
            state: State::InService,
            assigned_to: None,
            suspected: false,
            reason: String::new(),
        },
    }
}

fn said_reason(m: &Manual) -> String {
    match (m.state, &m.assigned_to) {
        (State::CheckedOut, Some(p)) => format!("checked out to {p} by {}", m.by),
        (State::InService, _) => format!("checked in by {}", m.by),
        (s, _) => format!("{} by {}", s.name(), m.by),
    }
}

/// The station's local date at `now_ms`, `YYYY-MM-DD`.
pub fn local_date(now_ms: i64, offset_min: i32) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(
        (now_ms + i64::from(offset_min) * 60_000).div_euclid(1000),
    )
    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn item(device: Option<&str>, next: Option<&str>) -> Item {
        Item {
            id: "RAD-07".into(),
            class: "radios".into(),
            name: String::new(),
            serial: None,
            device: device.map(String::from),
            car: None,
            next_maintenance: next.map(String::from),
        }
    }

    fn manual(state: State, to: Option<&str>, at_ms: i64) -> Manual {
        Manual {
            state,
            assigned_to: to.map(String::from),
            note: String::new(),
            by: "cli:alice".into(),
            at_ms,
        }
    }

    fn seen(state: &str, last_seen_ms: i64) -> DeviceSeen {
        DeviceSeen {
            state: state.into(),
            since_ms: 0,
            last_seen_ms: Some(last_seen_ms),
        }
    }

    #[test]
    fn a_device_quiet_for_a_day_is_a_suspected_fault() {
        let i = item(Some("hh-1001"), None);
        let fresh = judge(
            &i,
            None,
            None,
            Some(&seen("online", 10 * H)),
            30 * H,
            24 * H,
            "2026-12-02",
        );
        assert_eq!(fresh.state, State::InService);
        let quiet = judge(
            &i,
            None,
            None,
            Some(&seen("offline", H)),
            26 * H,
            24 * H,
            "2026-12-02",
        );
        assert_eq!(
            (quiet.state, quiet.suspected, quiet.reason.as_str()),
            (
                State::Fault,
                true,
                "suspected: device hh-1001 offline for 25h 00m"
            )
        );
    }

    #[test]
    fn what_people_say_of_loss_and_faults_wins_over_everything() {
        let i = item(Some("hh-1001"), Some("2026-01-01"));
        let lost = judge(
            &i,
            Some(&manual(State::Lost, None, 5)),
            None,
            Some(&seen("offline", 0)),
            48 * H,
            24 * H,
            "2026-12-02",
        );
        assert_eq!((lost.state, lost.suspected), (State::Lost, false));
        assert_eq!(lost.reason, "reported lost by cli:alice");
        let due = judge(&i, None, None, None, 0, 24 * H, "2026-12-02");
        assert_eq!(due.state, State::MaintenanceDue);
        assert_eq!(due.reason, "maintenance due since 2026-01-01");
        let not_yet = judge(
            &item(None, Some("2026-12-03")),
            None,
            None,
            None,
            0,
            24 * H,
            "2026-12-02",
        );
        assert_eq!(not_yet.state, State::InService);
    }

    #[test]
    fn the_dock_and_the_people_the_more_recent_decides() {
        let i = item(Some("DSJ-A1-0001"), None);
        let out = Docking {
            docked: false,
            dock: "dock0".into(),
            officer: Some("P-0417".into()),
            at_ms: 10,
        };
        let j = judge(&i, None, Some(&out), None, 20, 24 * H, "2026-12-02");
        assert_eq!(
            (j.state, j.assigned_to.as_deref()),
            (State::CheckedOut, Some("P-0417"))
        );
        let back = Docking {
            docked: true,
            at_ms: 30,
            ..out.clone()
        };
        let j = judge(
            &i,
            Some(&manual(State::CheckedOut, Some("A-1203"), 20)),
            Some(&back),
            None,
            40,
            24 * H,
            "2026-12-02",
        );
        assert_eq!(
            (j.state, j.reason.as_str()),
            (State::Charging, "in dock dock0")
        );
        let j = judge(
            &i,
            Some(&manual(State::CheckedOut, Some("A-1203"), 50)),
            Some(&back),
            None,
            60,
            24 * H,
            "2026-12-02",
        );
        assert_eq!(j.reason, "checked out to A-1203 by cli:alice");
    }

    #[test]
    fn the_local_date_turns_at_local_midnight() {
        // 2026-12-01T16:00Z is 2026-12-02 00:00 at UTC+8.
        assert_eq!(local_date(1_796_140_800_000, 480), "2026-12-02");
        assert_eq!(local_date(1_796_140_800_000 - 1, 480), "2026-12-01");
    }
}
