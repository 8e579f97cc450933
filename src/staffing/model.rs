//! The station's people as the daemon holds them — roster, presence, crews, overrides — and the
//! picture computed from them at a moment: the shift, each person (expected? present? by which
//! signal?), each crew and its readiness since when. Pure: the service feeds it and publishes
//! what [`diff`] says changed, so every transition is a unit test.

use super::roster::{role_name, Person};
use crate::config::{Car, Staffing as StaffingConfig};
use serde::Serialize;
use stationd_proto::staffing::crew::{self, CrewInputs, Member, Readiness, Role};
use stationd_proto::staffing::presence::{Presence, Signal, Source};
use stationd_proto::staffing::rotation::TeamState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Sick, on leave, or working with another team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    Sick,
    Leave,
    Swap,
}

impl OverrideKind {
    pub fn name(self) -> &'static str {
        match self {
            OverrideKind::Sick => "sick",
            OverrideKind::Leave => "leave",
            OverrideKind::Swap => "swap",
        }
    }
    pub fn from_name(s: &str) -> Option<OverrideKind> {
        [OverrideKind::Sick, OverrideKind::Leave, OverrideKind::Swap]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// An exception to the rotation for one person over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub id: i64,
    pub person: String,
    pub kind: OverrideKind,
    /// The team they work with instead (a swap).
    pub team: Option<String>,
    pub from_ms: i64,
    pub until_ms: i64,
    pub note: String,
    /// Who said so (`cli:alice`, `central`).
    pub by: String,
}

impl Override {
    fn covers(&self, t: i64) -> bool {
        self.from_ms <= t && t < self.until_ms
    }
}

/// A car's crew as formed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrewEntry {
    pub car: String,
    pub members: Vec<String>,
    /// `config`, `command`, `cli`, `radio`, `terminal`.
    pub formed_by: String,
    pub since_ms: i64,
}

impl CrewEntry {
    /// Formed from signals or checkouts (and so re-formed by them), not by a person's decision
    /// about the crew.
    fn automatic(&self) -> bool {
        matches!(self.formed_by.as_str(), "radio" | "terminal" | "checkout")
    }
}

/// What the picture needs to know of the devices.
pub trait Devices {
    fn online(&self, device: &str) -> bool;
    /// Online, or heard within `within_ms`.
    fn heard_within(&self, device: &str, within_ms: i64, now_ms: i64) -> bool;
    /// The car's vehicle item is in fault, lost or due for maintenance (the register).
    fn car_fault(&self, _car: &str) -> bool {
        false
    }
    /// The car's crew has been sent to an incident not cleared yet (dispatch).
    fn on_call(&self, _car: &str) -> bool {
        false
    }
}

/// Everything held about the station's people.
#[derive(Debug, Default)]
pub struct Model {
    pub roster: Vec<Person>,
    pub presence: Presence,
    pub crews: BTreeMap<String, CrewEntry>,
    pub overrides: Vec<Override>,
}

/// The rotation's slot now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shift {
    pub slot: usize,
    pub from_ms: i64,
    pub until_ms: i64,
    pub on_duty: Vec<String>,
    pub training: Vec<String>,
    pub off: Vec<String>,
}

/// A signal as shown: where from, when, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignalView {
    pub source: Source,
    pub present: bool,
    pub at_ms: i64,
    pub detail: String,
}

impl From<&Signal> for SignalView {
    fn from(s: &Signal) -> SignalView {
        SignalView {
            source: s.source,
            present: s.present,
            at_ms: s.at_ms,
            detail: s.detail.clone(),
        }
    }
}

/// One person now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonView {
    pub id: String,
    pub name: String,
    /// None: heard of, not on the roster.
    pub role: Option<Role>,
    pub team: Option<String>,
    /// Their team (or a swap's) is on duty and no sickness or leave covers now.
    pub expected: bool,
    /// `sick`, `leave` or `swap` when an override covers now.
    pub exception: Option<OverrideKind>,
    /// Present by the latest signal, and that signal not expired.
    pub present: bool,
    /// The latest signal said present but is older than `presence_expiry_h`.
    pub expired: bool,
    pub by: Option<SignalView>,
    /// Other sources' latest words that disagree.
    pub disputed_by: Vec<SignalView>,
    pub crew: Option<String>,
}

/// One member of a crew as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub id: String,
    pub name: String,
    pub role: Option<Role>,
    pub present: bool,
}

/// One crew now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrewView {
    pub car: String,
    pub members: Vec<MemberView>,
    pub formed_by: String,
    pub formed_ms: i64,
    pub readiness: Readiness,
    pub reason: String,
    pub since_ms: i64,
}

/// The whole picture at a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Picture {
    pub at_ms: i64,
    pub shift: Option<Shift>,
    pub people: Vec<PersonView>,
    pub crews: Vec<CrewView>,
}

impl Picture {
    /// Present people by role (`officer`, `auxiliary`, `leader`, `unknown`) and `total`.
    pub fn counts(&self, want: impl Fn(&PersonView) -> bool) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::from([("officer", 0), ("auxiliary", 0), ("leader", 0)]);
        let mut total = 0;
        for p in self.people.iter().filter(|p| want(p)) {
            *out.entry(p.role.map(role_name).unwrap_or("unknown"))
                .or_default() += 1;
            total += 1;
        }
        out.insert("total", total);
        out
    }

    pub fn person(&self, id: &str) -> Option<&PersonView> {
        self.people.iter().find(|p| p.id == id)
    }
}

impl Model {
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.roster.iter().find(|p| p.id == id)
    }

    /// The person holding JT/T 808 card `certificate`.
    pub fn by_card(&self, certificate: &str) -> Option<&Person> {
        self.roster
            .iter()
            .find(|p| p.card.as_deref() == Some(certificate))
    }

    /// The car whose crew `person` is in.
    pub fn crew_of(&self, person: &str) -> Option<&str> {
        self.crews
            .values()
            .find(|c| c.members.iter().any(|m| m == person))
            .map(|c| c.car.as_str())
    }

    /// Sets `car`'s crew to `members`, taking them out of any other crew.
    pub fn set_crew(&mut self, car: &str, members: Vec<String>, formed_by: &str, now_ms: i64) {
        for c in self.crews.values_mut() {
            if c.car != car {
                c.members.retain(|m| !members.contains(m));
            }
        }
        self.crews.insert(
            car.to_string(),
            CrewEntry {
                car: car.to_string(),
                members,
                formed_by: formed_by.to_string(),
                since_ms: now_ms,
            },
        );
    }

    /// A present person heard with `car` (its radio, its terminal) or checking out its kit joins
    /// its crew when they are in no crew or in one the signals formed; crews set by a person are
    /// left alone. `formed_by`: `radio`, `terminal`, `checkout`. Whether the crews changed.
    pub fn join_heard(&mut self, person: &str, car: &str, formed_by: &str, now_ms: i64) -> bool {
        let current = self.crew_of(person).map(str::to_string);
        if current.as_deref() == Some(car) {
            return false;
        }
        if let Some(other) = &current {
            if !self.crews[other].automatic() {
                return false;
            }
        }
        if self
            .crews
            .get(car)
            .is_some_and(|c| !c.automatic() && !c.members.is_empty())
        {
            return false;
        }
        let mut members = self
            .crews
            .get(car)
            .map(|c| c.members.clone())
            .unwrap_or_default();
        members.push(person.to_string());
        self.set_crew(car, members, formed_by, now_ms);
        true
    }

    /// The picture at `now_ms`. `before` gives each crew's readiness since when (kept while the
    /// readiness stays the same).
    pub fn picture(
        &self,
        cfg: Option<&StaffingConfig>,
        devices: &dyn Devices,
        now_ms: i64,
        before: &crate::side_store::Since,
    ) -> Picture {
        let expiry = cfg.map_or(i64::MAX, |c| c.presence_expiry_ms);
        let shift = cfg.map(|c| {
            let m = c.rotation.at(now_ms);
            let states = c.rotation.states(now_ms);
            let of = |want: TeamState| {
                states
                    .iter()
                    .filter(|(_, s)| *s == want)
                    .map(|(t, _)| t.to_string())
                    .collect()
            };
            Shift {
                slot: m.slot,
                from_ms: m.slot_start_ms,
                until_ms: m.slot_end_ms,
                on_duty: of(TeamState::OnDuty),
                training: of(TeamState::Training),
                off: of(TeamState::Off),
            }
        });
        let on_duty: BTreeSet<&str> = shift
            .as_ref()
            .map(|s| s.on_duty.iter().map(String::as_str).collect())
            .unwrap_or_default();
        // Indexes, so a district's roster (thousands) is not searched once per person.
        let crew_by_person: HashMap<&str, &str> = self
            .crews
            .values()
            .flat_map(|c| c.members.iter().map(move |m| (m.as_str(), c.car.as_str())))
            .collect();
        let on_roster: HashSet<&str> = self.roster.iter().map(|p| p.id.as_str()).collect();
        let view = |id: &str, person: Option<&Person>| {
            let exception = self
                .overrides
                .iter()
                .rev()
                .find(|o| o.person == id && o.covers(now_ms));
            let team = match exception {
                Some(o) if o.kind == OverrideKind::Swap => o.team.clone(),
                _ => person.and_then(|p| p.team.clone()),
            };
            let away = exception.is_some_and(|o| o.kind != OverrideKind::Swap);
            let expected = !away && team.as_deref().is_some_and(|t| on_duty.contains(t));
            let resolved = self.presence.of(id);
            let said_present = resolved.as_ref().is_some_and(|r| r.present);
            let expired = said_present
                && resolved
                    .as_ref()
                    .is_some_and(|r| now_ms.saturating_sub(r.by.at_ms) > expiry);
            PersonView {
                id: id.to_string(),
                name: person.map(|p| p.name.clone()).unwrap_or_default(),
                role: person.map(|p| p.role),
                team: person.and_then(|p| p.team.clone()),
                expected,
                exception: exception.map(|o| o.kind),
                present: said_present && !expired,
                expired,
                by: resolved.as_ref().map(|r| SignalView::from(&r.by)),
                disputed_by: resolved
                    .map(|r| r.disputed_by.iter().map(SignalView::from).collect())
                    .unwrap_or_default(),
                crew: crew_by_person.get(id).map(|c| c.to_string()),
            }
        };
        let mut people: Vec<PersonView> =
            self.roster.iter().map(|p| view(&p.id, Some(p))).collect();
        for id in self.presence.people() {
            if !on_roster.contains(id) {
                people.push(view(id, None));
            }
        }
        let index: HashMap<&str, usize> = people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        let cars: Vec<Car> = cfg.map(|c| c.cars.clone()).unwrap_or_default();
        let mut crews = Vec::new();
        for (car_id, entry) in &self.crews {
            let car = cars.iter().find(|c| &c.id == car_id);
            let members: Vec<MemberView> = entry
                .members
                .iter()
                .map(|m| {
                    let p = index.get(m.as_str()).map(|&i| &people[i]);
                    MemberView {
                        id: m.clone(),
                        name: p.map(|p| p.name.clone()).unwrap_or_default(),
                        role: p.and_then(|p| p.role),
                        present: p.is_some_and(|p| p.present),
                    }
                })
                .collect();
            let inputs = CrewInputs {
                members: members
                    .iter()
                    .filter_map(|m| {
                        Some(Member {
                            id: m.id.clone(),
                            role: m.role?,
                            present: m.present,
                        })
                    })
                    .collect(),
                tracker_online: devices.online(car.map_or(car_id.as_str(), |c| &c.tracker)),
                radio_up: car.and_then(|c| c.radio.as_deref()).is_none_or(|r| {
                    devices.heard_within(r, cfg.map_or(0, |c| c.radio_heard_within_ms), now_ms)
                }),
                car_fault: devices.car_fault(car_id),
                dispatched: devices.on_call(car_id),
            };
            let readiness = crew::readiness(&inputs, car.map(|c| c.needs).unwrap_or_default());
            let since_ms = match before.get(car_id) {
                Some((name, since)) if name == readiness.name() => *since,
                _ => now_ms,
            };
            crews.push(CrewView {
                car: car_id.clone(),
                members,
                formed_by: entry.formed_by.clone(),
                formed_ms: entry.since_ms,
                reason: readiness.reason(),
                readiness,
                since_ms,
            });
        }
        Picture {
            at_ms: now_ms,
            shift,
            people,
            crews,
        }
    }
}

/// One change between two pictures: what a `staffing.changed` event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The rotation turned to another slot.
    Shift,
    /// Someone became present or absent (or their presence expired), or another source now
    /// decides.
    Presence(String),
    /// A crew's members changed.
    Crew(String),
    /// A crew's readiness or its reason changed.
    Readiness { car: String, was: Option<String> },
}

/// What changed from `old` to `new`, in a stable order.
pub fn diff(old: &Picture, new: &Picture) -> Vec<Change> {
    let mut out = Vec::new();
    let slot = |p: &Picture| p.shift.as_ref().map(|s| s.from_ms);
    if slot(old) != slot(new) {
        out.push(Change::Shift);
    }
    let old_people: HashMap<&str, &PersonView> =
        old.people.iter().map(|p| (p.id.as_str(), p)).collect();
    for p in &new.people {
        let before = old_people.get(p.id.as_str()).copied();
        let was_present = before.is_some_and(|b| b.present);
        let source = |v: Option<&PersonView>| v.and_then(|v| v.by.as_ref()).map(|b| b.source);
        // Present or not, and which source says so (a radio talking again changes neither).
        if p.present != was_present || source(Some(p)) != source(before) {
            out.push(Change::Presence(p.id.clone()));
        }
    }
    for c in &new.crews {
        let before = old.crews.iter().find(|o| o.car == c.car);
        let ids = |c: &CrewView| c.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        if before.is_none_or(|b| ids(b) != ids(c)) {
            out.push(Change::Crew(c.car.clone()));
        }
        if before.is_none_or(|b| b.readiness != c.readiness) {
            out.push(Change::Readiness {
                car: c.car.clone(),
                was: before.map(|b| b.readiness.name().to_string()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use stationd_proto::staffing::crew::Composition;
    use stationd_proto::staffing::rotation::{Rotation, Slot};

    struct Fake {
        online: Vec<&'static str>,
    }
    impl Devices for Fake {
        fn online(&self, d: &str) -> bool {
            self.online.contains(&d)
        }
        fn heard_within(&self, d: &str, _: i64, _: i64) -> bool {
            self.online(d)
        }
    }

    const H: i64 = 3_600_000;

    fn config() -> StaffingConfig {
        let slot = |on: &[&str]| Slot {
            minutes: 24 * 60,
            on_duty: on.iter().map(|s| s.to_string()).collect(),
            training: vec![],
        };
        StaffingConfig {
            rotation: Rotation::new(
                vec!["1".into(), "2".into()],
                0,
                vec![slot(&["1"]), slot(&["2"])],
            )
            .unwrap(),
            start: String::new(),
            utc_offset: String::new(),
            share_names: false,
            presence_expiry_ms: 16 * H,
            radio_heard_within_ms: H,
            cars: vec![Car {
                id: "car-01".into(),
                tracker: "car-01".into(),
                radio: Some("car-radio-01".into()),
                needs: Composition::default(),
                crew: vec![],
            }],
        }
    }

    fn person(id: &str, role: Role, team: &str) -> Person {
        Person {
            id: id.into(),
            name: format!("name of {id}"),
            role,
            team: Some(team.into()),
            card: None,
        }
    }

    fn model() -> Model {
        let mut m = Model {
            roster: vec![
                person("P-1", Role::Officer, "1"),
                person("A-1", Role::Auxiliary, "1"),
                person("A-2", Role::Auxiliary, "1"),
                person("P-2", Role::Officer, "2"),
            ],
            ..Default::default()
        };
        m.set_crew(
            "car-01",
            vec!["P-1".into(), "A-1".into(), "A-2".into()],
            "config",
            0,
        );
        m
    }

    fn signal(m: &mut Model, who: &str, present: bool, source: Source, at_ms: i64) {
        m.presence.observe(Signal {
            person: who.into(),
            present,
            source,
            at_ms,
            detail: String::new(),
        });
    }

    fn readiness(p: &Picture) -> (&'static str, String) {
        (p.crews[0].readiness.name(), p.crews[0].reason.clone())
    }

    #[test]
    fn a_crew_goes_from_off_duty_through_short_staffed_to_ready_and_car_unavailable() {
        let cfg = config();
        let mut m = model();
        let up = Fake {
            online: vec!["car-01", "car-radio-01"],
        };
        let none = Default::default();
        let p0 = m.picture(Some(&cfg), &up, H, &none);
        assert_eq!(readiness(&p0).0, "off_duty");
        signal(&mut m, "P-1", true, Source::Recorder, H);
        let p1 = m.picture(Some(&cfg), &up, 2 * H, &none);
        assert_eq!(
            readiness(&p1),
            (
                "short_staffed",
                "0 of 2 auxiliaries; absent: A-1, A-2".into()
            )
        );
        signal(&mut m, "A-1", true, Source::Radio, 2 * H);
        signal(&mut m, "A-2", true, Source::SignIn, 2 * H);
        let p2 = m.picture(Some(&cfg), &up, 3 * H, &none);
        assert_eq!(readiness(&p2).0, "ready");
        let tracker_off = Fake {
            online: vec!["car-radio-01"],
        };
        let p3 = m.picture(Some(&cfg), &tracker_off, 3 * H, &none);
        assert_eq!(
            readiness(&p3),
            ("car_unavailable", "the car's tracker is offline".into())
        );
        assert_eq!(
            diff(&p2, &p3),
            [Change::Readiness {
                car: "car-01".into(),
                was: Some("ready".into())
            }]
        );
        assert_eq!(p3.counts(|p| p.present)["total"], 3);
        assert_eq!(p3.counts(|p| p.present)["auxiliary"], 2);
    }

    #[test]
    fn readiness_keeps_its_since_while_it_holds() {
        let cfg = config();
        let mut m = model();
        signal(&mut m, "P-1", true, Source::Cli, 0);
        let up = Fake {
            online: vec!["car-01", "car-radio-01"],
        };
        let first = m.picture(Some(&cfg), &up, 10, &Default::default());
        let before = crate::side_store::Since::from_rows(vec![(
            "car-01".to_string(),
            "short_staffed".to_string(),
            10,
        )]);
        let later = m.picture(Some(&cfg), &up, 5_000, &before);
        assert_eq!(first.crews[0].since_ms, 10);
        assert_eq!(later.crews[0].since_ms, 10, "still short staffed since 10");
    }

    #[test]
    fn presence_expires_and_is_shown_expired_not_present() {
        let cfg = config();
        let mut m = model();
        signal(&mut m, "P-1", true, Source::Recorder, 0);
        let fresh = m.picture(
            Some(&cfg),
            &Fake { online: vec![] },
            16 * H,
            &Default::default(),
        );
        assert!(fresh.person("P-1").unwrap().present);
        let old = m.picture(
            Some(&cfg),
            &Fake { online: vec![] },
            16 * H + 1,
            &Default::default(),
        );
        let p = old.person("P-1").unwrap();
        assert!(!p.present && p.expired);
        assert_eq!(
            diff(&fresh, &old),
            [
                Change::Presence("P-1".into()),
                Change::Readiness {
                    car: "car-01".into(),
                    was: Some("car_unavailable".into())
                }
            ]
        );
    }

    #[test]
    fn expected_follows_the_rotation_and_the_overrides() {
        let cfg = config();
        let mut m = model();
        let day1 = 12 * H;
        let day2 = 36 * H;
        let at =
            |m: &Model, t| m.picture(Some(&cfg), &Fake { online: vec![] }, t, &Default::default());
        assert!(at(&m, day1).person("P-1").unwrap().expected);
        assert!(!at(&m, day2).person("P-1").unwrap().expected);
        assert!(at(&m, day2).person("P-2").unwrap().expected);
        m.overrides.push(Override {
            id: 1,
            person: "P-1".into(),
            kind: OverrideKind::Sick,
            team: None,
            from_ms: 0,
            until_ms: 24 * H,
            note: String::new(),
            by: "cli".into(),
        });
        m.overrides.push(Override {
            id: 2,
            person: "P-1".into(),
            kind: OverrideKind::Swap,
            team: Some("2".into()),
            from_ms: 24 * H,
            until_ms: 48 * H,
            note: "swapped with P-2".into(),
            by: "central".into(),
        });
        let sick = at(&m, day1);
        let p = sick.person("P-1").unwrap();
        assert!(!p.expected && p.exception == Some(OverrideKind::Sick));
        let swapped = at(&m, day2);
        assert!(
            swapped.person("P-1").unwrap().expected,
            "works with team 2 that day"
        );
        assert_eq!(sick.shift.as_ref().unwrap().on_duty, ["1"]);
        assert_eq!(diff(&sick, &swapped)[0], Change::Shift);
    }

    #[test]
    fn signals_form_crews_but_never_undo_a_persons_decision() {
        let mut m = Model::default();
        assert!(m.join_heard("P-1", "car-01", "terminal", 5));
        assert!(m.join_heard("A-1", "car-01", "radio", 6));
        assert_eq!(m.crews["car-01"].members, ["P-1", "A-1"]);
        // Heard with another car: moves, because signals formed the first crew.
        assert!(m.join_heard("A-1", "car-02", "radio", 7));
        assert_eq!(m.crew_of("A-1"), Some("car-02"));
        // A crew set by the CLI stays as set.
        m.set_crew("car-03", vec!["P-9".into()], "cli", 8);
        assert!(!m.join_heard("P-9", "car-01", "radio", 9));
        assert!(!m.join_heard("A-1", "car-03", "radio", 9));
        assert_eq!(m.crews["car-03"].members, ["P-9"]);
        // Setting a crew takes its members out of the others.
        m.set_crew("car-04", vec!["P-1".into()], "command", 10);
        assert_eq!(m.crews["car-01"].members, Vec::<String>::new());
    }

    #[test]
    fn a_new_deciding_source_is_a_change_a_repeated_one_is_not() {
        let mut m = model();
        let pic = |m: &Model| m.picture(None, &Fake { online: vec![] }, 10, &Default::default());
        signal(&mut m, "P-1", true, Source::Radio, 1);
        let a = pic(&m);
        signal(&mut m, "P-1", true, Source::Radio, 2);
        assert_eq!(diff(&a, &pic(&m)), [], "the radio talking again");
        signal(&mut m, "P-1", true, Source::Terminal, 3);
        assert_eq!(diff(&a, &pic(&m)), [Change::Presence("P-1".into())]);
    }

    #[test]
    fn people_heard_but_not_on_the_roster_are_shown_without_a_role() {
        let mut m = model();
        signal(&mut m, "X-9", true, Source::Radio, 0);
        let p = m.picture(None, &Fake { online: vec![] }, 1, &Default::default());
        let x = p.person("X-9").unwrap();
        assert!(x.present && x.role.is_none());
        assert_eq!(p.counts(|p| p.present)["unknown"], 1);
        assert!(p.shift.is_none());
    }
}
