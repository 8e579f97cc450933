//! What central receives about equipment: `P/state/equipment` (counts per class and state, the
//! items not in service) and the data of each `equipment.changed` event (docs/CONTRACT.md).
//! Items name people by id only (`assigned_to`).

use super::model::State;
use super::{Equipment, ItemView};
use crate::event::format_ts_ms;
use serde_json::{json, Map, Value};

/// One item as the contract shows it.
pub fn item(v: &ItemView) -> Value {
    let i = &v.item;
    json!({
        "item": i.id,
        "class": i.class,
        "name": i.name,
        "serial": i.serial,
        "device": i.device,
        "car": i.car,
        "state": v.judged.state.name(),
        "assigned_to": v.judged.assigned_to,
        "suspected": v.judged.suspected,
        "reason": v.judged.reason,
        "since": format_ts_ms(v.since_ms),
        "next_maintenance": i.next_maintenance,
    })
}

/// Counts per class and state (every class and state present, zeros included).
fn counts(e: &Equipment, items: &[ItemView]) -> Map<String, Value> {
    let mut classes: Vec<String> = e.classes().to_vec();
    for v in items {
        if !classes.contains(&v.item.class) {
            classes.push(v.item.class.clone());
        }
    }
    classes
        .into_iter()
        .map(|c| {
            let per_state: Map<String, Value> = State::ALL
                .iter()
                .map(|s| {
                    let n = items
                        .iter()
                        .filter(|v| v.item.class == c && v.judged.state == *s)
                        .count();
                    (s.name().to_string(), n.into())
                })
                .collect();
            (c, Value::Object(per_state))
        })
        .collect()
}

/// `P/state/equipment`, or with `all` the whole register (`stationd equipment --json`).
pub fn document(e: &Equipment, all: bool) -> Value {
    let items = e.items();
    let listed: Vec<Value> = items
        .iter()
        .filter(|v| all || v.judged.state != State::InService)
        .map(item)
        .collect();
    let (now, clock) = crate::clock::now();
    json!({
        "v": crate::event::CONTRACT_VERSION,
        "station": e.station(),
        "ts": format_ts_ms(now),
        "clock": clock.as_str(),
        "items": items.len(),
        "counts": counts(e, &items),
        if all { "register" } else { "not_in_service" }: listed,
    })
}

/// `P/state/equipment`.
pub fn state(e: &Equipment) -> Vec<u8> {
    serde_json::to_vec(&document(e, false)).expect("a JSON value serialises")
}
