//! What central receives about staffing: the retained `P/state/staffing` and the data of each
//! `staffing.changed` event (docs/CONTRACT.md). People are named by id and role; their names
//! are added only with `[staffing] share_names = true`. Override notes (a sickness's reason)
//! never leave the box.

use super::model::{Change, CrewView, Override, PersonView, Picture, SignalView};
use super::roster::role_name;
use super::store::source_name;
use super::Staffing;
use crate::event::format_ts_ms;
use serde_json::{json, Map, Value};

/// Whether names go to central (`[staffing] share_names`); the status page follows the same rule.
pub fn share_names(s: &Staffing) -> bool {
    s.config().is_some_and(|c| c.share_names)
}

fn signal(v: &SignalView) -> Value {
    json!({
        "source": source_name(v.source),
        "present": v.present,
        "at": format_ts_ms(v.at_ms),
        "detail": v.detail,
    })
}

fn person(p: &PersonView, names: bool) -> Value {
    let mut v = json!({
        "id": p.id,
        "role": p.role.map(role_name),
        "team": p.team,
        "expected": p.expected,
        "present": p.present,
        "by": p.by.as_ref().map(signal),
        "crew": p.crew,
    });
    if p.expired {
        v["expired"] = true.into();
    }
    if let Some(e) = p.exception {
        v["exception"] = e.name().into();
    }
    if !p.disputed_by.is_empty() {
        v["disputed_by"] = p.disputed_by.iter().map(signal).collect();
    }
    if names {
        v["name"] = p.name.clone().into();
    }
    v
}

fn crew(c: &CrewView, names: bool) -> Value {
    let members: Vec<Value> = c
        .members
        .iter()
        .map(|m| {
            let mut v = json!({"id": m.id, "role": m.role.map(role_name), "present": m.present});
            if names {
                v["name"] = m.name.clone().into();
            }
            v
        })
        .collect();
    json!({
        "car": c.car,
        "members": members,
        "formed_by": c.formed_by,
        "formed_at": format_ts_ms(c.formed_ms),
        "readiness": c.readiness.name(),
        "reason": c.reason,
        "since": format_ts_ms(c.since_ms),
    })
}

/// The data of one `staffing.changed` event.
pub fn change(s: &Staffing, picture: &Picture, change: &Change) -> Value {
    let names = share_names(s);
    match change {
        Change::Shift => {
            let shift = picture.shift.as_ref();
            json!({
                "change": "shift",
                "on_duty": shift.map(|s| s.on_duty.clone()).unwrap_or_default(),
                "training": shift.map(|s| s.training.clone()).unwrap_or_default(),
                "off": shift.map(|s| s.off.clone()).unwrap_or_default(),
                "from": shift.map(|s| format_ts_ms(s.from_ms)),
                "until": shift.map(|s| format_ts_ms(s.until_ms)),
            })
        }
        Change::Presence(id) => {
            let mut v = picture
                .person(id)
                .map(|p| person(p, names))
                .unwrap_or_else(|| json!({"id": id}));
            v["change"] = "presence".into();
            v["person"] = id.clone().into();
            v
        }
        Change::Crew(car) => {
            let mut v = picture
                .crews
                .iter()
                .find(|c| &c.car == car)
                .map(|c| crew(c, names))
                .unwrap_or_else(|| json!({"car": car}));
            v["change"] = "crew".into();
            v
        }
        Change::Readiness { car, was } => {
            let c = picture.crews.iter().find(|c| &c.car == car);
            json!({
                "change": "readiness",
                "car": car,
                "readiness": c.map(|c| c.readiness.name()),
                "reason": c.map(|c| c.reason.clone()),
                "was": was,
                "since": c.map(|c| format_ts_ms(c.since_ms)),
            })
        }
    }
}

/// The data of a `staffing.changed` event for an exception added or removed.
/// The answer to setting a crew (`crew.set`, `stationd crew set`).
pub fn crew_answer(c: &CrewView) -> Value {
    json!({
        "car": c.car,
        "members": c.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        "readiness": c.readiness.name(),
        "reason": c.reason,
    })
}

/// The answer to saying someone is on or off duty (`duty.set`, `stationd duty`).
pub fn duty_answer(p: &PersonView) -> Value {
    json!({"person": p.id, "present": p.present, "crew": p.crew})
}

pub fn override_change(o: &Override, what: &str) -> Value {
    json!({
        "change": "override",
        "action": what,
        "id": o.id,
        "person": o.person,
        "kind": o.kind.name(),
        "team": o.team,
        "from": format_ts_ms(o.from_ms),
        "until": format_ts_ms(o.until_ms),
        "by": o.by,
    })
}

/// `P/state/staffing`.
pub fn state(s: &Staffing) -> Vec<u8> {
    serde_json::to_vec(&document(s, share_names(s), false)).expect("a JSON value serialises")
}

/// The staffing document: `P/state/staffing` (`names` as configured, the people expected,
/// present, in a crew or disputed), or the technician's `stationd staffing` on the box (names,
/// the whole roster).
pub fn document(s: &Staffing, names: bool, everyone: bool) -> Value {
    let p = s.picture();
    let count = |want: &dyn Fn(&PersonView) -> bool| -> Map<String, Value> {
        p.counts(want)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect()
    };
    // Everyone expected or present now; the rest of the roster is off and absent.
    let people: Vec<Value> = p
        .people
        .iter()
        .filter(|x| {
            everyone || x.expected || x.present || x.crew.is_some() || !x.disputed_by.is_empty()
        })
        .map(|x| person(x, names))
        .collect();
    let missing: Vec<&str> = p
        .people
        .iter()
        .filter(|x| x.expected && !x.present)
        .map(|x| x.id.as_str())
        .collect();
    let (now, clock) = crate::clock::now();
    json!({
        "v": crate::event::CONTRACT_VERSION,
        "station": s.station(),
        "ts": format_ts_ms(now),
        "clock": clock.as_str(),
        "shift": p.shift.as_ref().map(|sh| json!({
            "on_duty": sh.on_duty,
            "training": sh.training,
            "off": sh.off,
            "from": format_ts_ms(sh.from_ms),
            "until": format_ts_ms(sh.until_ms),
        })),
        "on_duty": count(&|x| x.present),
        "expected": count(&|x| x.expected),
        "missing": missing,
        "roster": p.people.iter().filter(|x| x.role.is_some()).count(),
        "people": people,
        "crews": p.crews.iter().map(|c| crew(c, names)).collect::<Vec<_>>(),
    })
}
