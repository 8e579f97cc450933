//! Which events say something about people: the presence signals the drivers already produce,
//! read off the events on their way into the outbox. Pure (an event in, observations out), so
//! each source's reading is a unit test.
//!
//! | event | says |
//! | --- | --- |
//! | `recorder.undocked` (dock) | its officer took a recorder out: present (`recorder`) |
//! | `radio.call`, `radio.status`, `radio.text`, `radio.emergency`, a handheld's `position` (tetra) | the radio's officer talked or reported: present (`radio`); with its `car`, they are with that car |
//! | `jt808.driver_card` (JT/T 808 0x0702) | the card's holder signed in (present) or out (absent) at the car's terminal (`terminal`) |
//! | `duty.signed_on` / `duty.signed_off` (a `jsonl` input) | the station's sign-in system: present / absent (`sign_in`) |
//!
//! Each is believed only from the driver that makes it (a `position` from a `jsonl` input is
//! not a radio's, whatever its data says). A recorder put back in the dock is not read as
//! absence: officers dock to unload footage in the middle of a shift.

use crate::event::Event;
use serde::Deserialize;
use stationd_proto::staffing::presence::Source;

/// Who a signal is about: a person id, or a JT/T 808 card the roster maps to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Person(String),
    Card(String),
}

/// One thing an event says about people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub who: Who,
    pub present: bool,
    pub source: Source,
    pub at_ms: i64,
    pub detail: String,
    /// The car they were heard with (a car's radio, a car's terminal).
    pub car: Option<String>,
}

/// The event kinds read here (a cheap filter before the data is parsed).
pub fn is_about_people(kind: &str) -> bool {
    matches!(
        kind,
        "recorder.undocked"
            | "radio.call"
            | "radio.status"
            | "radio.text"
            | "radio.emergency"
            | "position"
            | "jt808.driver_card"
            | "duty.signed_on"
            | "duty.signed_off"
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Fields {
    officer: Option<String>,
    person: Option<String>,
    recorder: Option<String>,
    dock: Option<String>,
    issi: Option<String>,
    car: Option<String>,
    inserted: Option<bool>,
    certificate: Option<String>,
    detail: Option<String>,
}

/// The driver whose events of `kind` are believed.
fn made_by(kind: &str) -> &'static str {
    match kind {
        "recorder.undocked" => "dock",
        "jt808.driver_card" => "jt808",
        "duty.signed_on" | "duty.signed_off" => "jsonl",
        _ => "tetra",
    }
}

/// What `ev`, sent through a device of `driver`, says about people, if anything.
pub fn observe(driver: &str, ev: &Event) -> Option<Observation> {
    if !is_about_people(&ev.kind) || made_by(&ev.kind) != driver {
        return None;
    }
    let f: Fields = serde_json::from_str(ev.data.get()).ok()?;
    let person = |id: Option<String>| {
        id.map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s != "unknown")
    };
    let at_ms = ev.ts_ms;
    let obs = |who, present, source, detail: String, car| Observation {
        who,
        present,
        source,
        at_ms,
        detail,
        car,
    };
    match ev.kind.as_str() {
        "recorder.undocked" => Some(obs(
            Who::Person(person(f.officer)?),
            true,
            Source::Recorder,
            format!(
                "recorder {} taken from dock {}",
                f.recorder.unwrap_or_default(),
                f.dock.unwrap_or_default()
            ),
            None,
        )),
        "radio.call" | "radio.status" | "radio.text" | "radio.emergency" | "position" => {
            // A `position` is a handheld's only when the tetra driver said which radio.
            let issi = f.issi?;
            let what = match ev.kind.as_str() {
                "radio.call" => "talked",
                "radio.status" => "sent a status",
                "radio.text" => "sent a text",
                "radio.emergency" => "raised an emergency",
                _ => "reported its position",
            };
            Some(obs(
                Who::Person(person(f.officer)?),
                true,
                Source::Radio,
                format!("radio {issi} ({}) {what}", ev.device),
                f.car,
            ))
        }
        "jt808.driver_card" => {
            let inserted = f.inserted?;
            Some(obs(
                Who::Card(person(f.certificate)?),
                inserted,
                Source::Terminal,
                format!(
                    "IC card {} at {}'s terminal",
                    if inserted { "inserted" } else { "removed" },
                    ev.device
                ),
                Some(ev.device.clone()),
            ))
        }
        "duty.signed_on" | "duty.signed_off" => Some(obs(
            Who::Person(person(f.person)?),
            ev.kind == "duty.signed_on",
            Source::SignIn,
            f.detail
                .unwrap_or_else(|| format!("sign-in system via {}", ev.device)),
            None,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ClockQuality, Priority};
    use serde_json::json;

    fn ev(device: &str, kind: &str, data: serde_json::Value) -> Event {
        Event::new(
            device,
            kind,
            Priority::Event,
            (1_000, ClockQuality::Synced),
            false,
            data,
        )
    }

    #[test]
    fn each_source_reads_as_its_signal() {
        let o = observe(
            "dock",
            &ev(
                "bwc-dsj-a1-0001",
                "recorder.undocked",
                json!({"dock": "dock-1", "recorder": "DSJ-A1-0001", "officer": "P-0417"}),
            ),
        )
        .unwrap();
        assert_eq!(o.who, Who::Person("P-0417".into()));
        assert!(o.present && o.source == Source::Recorder && o.at_ms == 1_000);
        assert_eq!(o.detail, "recorder DSJ-A1-0001 taken from dock dock-1");

        let o = observe(
            "tetra",
            &ev(
                "hh-1001",
                "radio.call",
                json!({"issi": "1001", "officer": "A-1203", "car": "car-01", "talk_s": 3.2}),
            ),
        )
        .unwrap();
        assert_eq!(
            (o.who, o.source, o.car.as_deref()),
            (Who::Person("A-1203".into()), Source::Radio, Some("car-01"))
        );

        let o = observe(
            "jt808",
            &ev(
                "car-01",
                "jt808.driver_card",
                json!({"inserted": false, "certificate": "440301198001", "read": "removed"}),
            ),
        )
        .unwrap();
        assert_eq!(o.who, Who::Card("440301198001".into()));
        assert!(!o.present);
        assert_eq!(o.car.as_deref(), Some("car-01"));

        let o = observe(
            "jsonl",
            &ev("signin", "duty.signed_off", json!({"person": "P-0417"})),
        )
        .unwrap();
        assert!(!o.present && o.source == Source::SignIn);
    }

    #[test]
    fn events_that_name_nobody_say_nothing() {
        // A recorder of an unknown officer, a radio without an officer, a car's position,
        // a card that could not be read, a docked recorder, another kind entirely.
        for (kind, data) in [
            ("recorder.undocked", json!({"officer": "unknown"})),
            ("radio.call", json!({"issi": "1001"})),
            ("position", json!({"lat": 36.6, "lon": 117.0})),
            (
                "jt808.driver_card",
                json!({"inserted": true, "certificate": null}),
            ),
            ("recorder.docked", json!({"officer": "P-0417"})),
            ("gps.fix_lost", json!({"officer": "P-0417"})),
            ("duty.signed_on", json!({"person": "  "})),
        ] {
            assert_eq!(
                observe(made_by(kind), &ev("x", kind, data.clone())),
                None,
                "{kind} {data}"
            );
        }
    }

    #[test]
    fn a_signal_counts_only_from_the_driver_that_makes_it() {
        // A local input's `position` dressed as a handheld's is not a radio's word.
        let forged = ev(
            "hh-1001",
            "position",
            json!({"issi": "1001", "officer": "P-0417", "lat": 36.6, "lon": 117.0}),
        );
        assert_eq!(observe("jsonl", &forged), None);
        assert!(observe("tetra", &forged).is_some());
        let sign_in = ev("signin", "duty.signed_on", json!({"person": "P-0417"}));
        assert_eq!(observe("tetra", &sign_in), None);
    }
}
