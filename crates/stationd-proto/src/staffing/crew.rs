//! A crew's readiness: a car and its people, judged from what the box knows now. Central's
//! "nearest free car" needs cars that are crewed and able to go, not just cars with a
//! position. The rule is one function of plain inputs, so every transition is a test.
//!
//! Order of precedence: `on_call` (dispatched: busy whatever else holds), then `off_duty`
//! (nobody of the crew present), `car_unavailable` (the car's tracker offline or the car in
//! fault, its radio down), `short_staffed` (who is missing), and `ready`.

/// A person's role on the roster.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Officer,
    Auxiliary,
    /// A team leader; counts as an officer in a crew.
    Leader,
}

/// What a crew needs aboard: one officer and two auxiliaries for a grid car, one officer for a
/// motorcycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Composition {
    pub officers: u8,
    pub auxiliaries: u8,
}

impl Default for Composition {
    fn default() -> Composition {
        Composition {
            officers: 1,
            auxiliaries: 2,
        }
    }
}

/// One member as the crew sees them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub role: Role,
    pub present: bool,
}

/// What readiness is judged from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrewInputs {
    pub members: Vec<Member>,
    /// The car's tracker (JT/T 808 terminal or GNSS receiver) is online.
    pub tracker_online: bool,
    /// The car's radio is up (true where the car has none configured).
    pub radio_up: bool,
    /// The car is marked in fault or maintenance in the equipment register.
    pub car_fault: bool,
    /// Dispatched and not cleared.
    pub dispatched: bool,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Readiness {
    Ready,
    OnCall,
    /// Who is missing (absent members' ids) and which roles are short.
    ShortStaffed {
        absent: Vec<String>,
        short: Vec<String>,
    },
    CarUnavailable {
        why: Vec<String>,
    },
    OffDuty,
}

impl Readiness {
    /// `ready`, `on_call`, … as the contract names the states.
    pub fn name(&self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::OnCall => "on_call",
            Readiness::ShortStaffed { .. } => "short_staffed",
            Readiness::CarUnavailable { .. } => "car_unavailable",
            Readiness::OffDuty => "off_duty",
        }
    }

    /// The reason in a dispatcher's words.
    pub fn reason(&self) -> String {
        match self {
            Readiness::Ready => "crew complete, car and radio up".into(),
            Readiness::OnCall => "dispatched".into(),
            Readiness::ShortStaffed { absent, short } => {
                let mut parts = short.clone();
                if !absent.is_empty() {
                    parts.push(format!("absent: {}", absent.join(", ")));
                }
                parts.join("; ")
            }
            Readiness::CarUnavailable { why } => why.join("; "),
            Readiness::OffDuty => "nobody of the crew present".into(),
        }
    }
}

/// Judges a crew.
pub fn readiness(inputs: &CrewInputs, needs: Composition) -> Readiness {
    if inputs.dispatched {
        return Readiness::OnCall;
    }
    let present: Vec<&Member> = inputs.members.iter().filter(|m| m.present).collect();
    if present.is_empty() {
        return Readiness::OffDuty;
    }
    let mut why = Vec::new();
    if !inputs.tracker_online {
        why.push("the car's tracker is offline".to_string());
    }
    if inputs.car_fault {
        why.push("the car is in fault or maintenance".to_string());
    }
    if !inputs.radio_up {
        why.push("the car's radio is down".to_string());
    }
    if !why.is_empty() {
        return Readiness::CarUnavailable { why };
    }
    let officers = present
        .iter()
        .filter(|m| matches!(m.role, Role::Officer | Role::Leader))
        .count();
    let auxiliaries = present.iter().filter(|m| m.role == Role::Auxiliary).count();
    let mut short = Vec::new();
    if officers < usize::from(needs.officers) {
        short.push(format!("{} of {} officer(s)", officers, needs.officers));
    }
    if auxiliaries < usize::from(needs.auxiliaries) {
        short.push(format!(
            "{} of {} auxiliar{}",
            auxiliaries,
            needs.auxiliaries,
            if needs.auxiliaries == 1 { "y" } else { "ies" }
        ));
    }
    if short.is_empty() {
        return Readiness::Ready;
    }
    let absent = inputs
        .members
        .iter()
        .filter(|m| !m.present)
        .map(|m| m.id.clone())
        .collect();
    Readiness::ShortStaffed { absent, short }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, role: Role, present: bool) -> Member {
        Member {
            id: id.into(),
            role,
            present,
        }
    }

    fn car_03(present: [bool; 3]) -> CrewInputs {
        CrewInputs {
            members: vec![
                member("P-0417", Role::Officer, present[0]),
                member("A-0031", Role::Auxiliary, present[1]),
                member("A-0032", Role::Auxiliary, present[2]),
            ],
            tracker_online: true,
            radio_up: true,
            car_fault: false,
            dispatched: false,
        }
    }

    #[test]
    fn readiness_follows_people_car_and_dispatch_with_reasons() {
        let grid = Composition::default();
        assert_eq!(readiness(&car_03([true; 3]), grid), Readiness::Ready);
        let short = readiness(&car_03([true, true, false]), grid);
        assert_eq!(short.name(), "short_staffed");
        assert_eq!(short.reason(), "1 of 2 auxiliaries; absent: A-0032");
        assert_eq!(readiness(&car_03([false; 3]), grid), Readiness::OffDuty);
        let mut no_officer = car_03([false, true, true]);
        assert_eq!(
            readiness(&no_officer, grid).reason(),
            "0 of 1 officer(s); absent: P-0417"
        );
        no_officer.members[0].role = Role::Leader;
        no_officer.members[0].present = true;
        assert_eq!(
            readiness(&no_officer, grid),
            Readiness::Ready,
            "a leader counts as an officer"
        );
        let mut offline = car_03([true; 3]);
        offline.tracker_online = false;
        offline.radio_up = false;
        let r = readiness(&offline, grid);
        assert_eq!(r.name(), "car_unavailable");
        assert_eq!(
            r.reason(),
            "the car's tracker is offline; the car's radio is down"
        );
        // Dispatched: on call whatever else holds.
        offline.dispatched = true;
        assert_eq!(readiness(&offline, grid), Readiness::OnCall);
        // A motorcycle crew of one officer.
        let solo = Composition {
            officers: 1,
            auxiliaries: 0,
        };
        assert_eq!(
            readiness(&car_03([true, false, false]), solo),
            Readiness::Ready
        );
    }
}
