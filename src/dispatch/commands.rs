//! Central's dispatch commands (signed and checked by the command core): `dispatch` (send a
//! crew to an incident, or the nearest ready one) and `dispatch.clear` (the incident is over).

use super::{Crew, Dispatch, Order};
use crate::commands::handlers::text_arg as text;
use crate::commands::handlers::{CommandContext, Handler, Outcome, Registry, Running};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Adds the dispatch commands to `registry`.
pub fn register(registry: &mut Registry, dispatch: &Arc<Dispatch>) {
    registry.add(Arc::new(Send {
        dispatch: dispatch.clone(),
    }));
    registry.add(Arc::new(Clear {
        dispatch: dispatch.clone(),
    }));
}

struct Send {
    dispatch: Arc<Dispatch>,
}

struct Clear {
    dispatch: Arc<Dispatch>,
}

impl Handler for Send {
    fn name(&self) -> &'static str {
        "dispatch"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            match read_order(args) {
                Ok(order) => self.dispatch.send(order).await,
                Err(why) => Outcome::BadArgs(why),
            }
        })
    }
}

impl Handler for Clear {
    fn name(&self) -> &'static str {
        "dispatch.clear"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let Some(incident) = text(args, "incident") else {
                return Outcome::BadArgs("args.incident (the incident's id) is required".into());
            };
            let outcome = text(args, "outcome").unwrap_or_else(|| "closed".into());
            if !super::model::OUTCOMES.contains(&outcome.as_str()) {
                return Outcome::BadArgs(format!(
                    "args.outcome {outcome:?} is not one of {}",
                    super::model::OUTCOMES.join(", ")
                ));
            }
            match self
                .dispatch
                .clear(&incident, &outcome, text(args, "car"), "central".into())
                .await
            {
                Ok(v) => Outcome::Done(v),
                Err(e) => Outcome::BadArgs(e.to_string()),
            }
        })
    }
}

/// `dispatch`'s arguments, checked before anything is sent.
fn read_order(args: &Map<String, Value>) -> Result<Order, String> {
    let incident = text(args, "incident")
        .ok_or("args.incident (central's incident id, a string) is required")?;
    if incident.len() > 64
        || !incident
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(format!(
            "args.incident {incident:?} must be 1 to 64 of A-Z a-z 0-9 - _ . :"
        ));
    }
    let priority = match args.get("priority") {
        None => 2,
        Some(v) => v
            .as_u64()
            .filter(|p| (1..=4).contains(p))
            .ok_or("args.priority must be 1 (highest) to 4")? as u8,
    };
    let kind =
        text(args, "type").ok_or("args.type (what kind of call, e.g. \"dispute\") is required")?;
    let summary = text(args, "summary").unwrap_or_default();
    let location = args
        .get("location")
        .and_then(Value::as_object)
        .ok_or("args.location ({lat, lon, address}) is required")?;
    let coord = |key: &str, max: f64| -> Result<f64, String> {
        location
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && v.abs() <= max)
            .ok_or_else(|| format!("args.location.{key} must be WGS-84 degrees (|{key}| ≤ {max})"))
    };
    let (lat, lon) = (coord("lat", 90.0)?, coord("lon", 180.0)?);
    let address = text(location, "address").unwrap_or_default();
    if summary.chars().count() > 500 || address.chars().count() > 200 {
        return Err(
            "args.summary (500) or args.location.address (200 characters) is too long".into(),
        );
    }
    let crew = match text(args, "car").as_deref() {
        None => {
            return Err("args.car (the car whose crew to send, or \"nearest\") is required".into())
        }
        Some("nearest") => Crew::Nearest,
        Some(car) => Crew::Car(car.to_string()),
    };
    let ack_within_ms = match args.get("ack_within_s") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|s| (5..=3600).contains(s))
                .ok_or("args.ack_within_s must be 5 to 3600 seconds")? as i64
                * 1000,
        ),
    };
    Ok(Order {
        incident,
        priority,
        kind,
        summary,
        lat,
        lon,
        address,
        crew,
        ack_within_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::handlers::args;
    use serde_json::json;

    #[test]
    fn an_order_is_checked_before_anything_is_sent() {
        let o = read_order(&args(json!({
            "incident": "J2026-1201-0042", "priority": 1, "type": "dispute",
            "summary": "两人争吵", "location": {"lat": 36.66, "lon": 117.02, "address": "文化路口"},
            "car": "nearest", "ack_within_s": 30
        })))
        .unwrap();
        assert_eq!(
            (o.priority, o.crew, o.ack_within_ms, o.address.as_str()),
            (1, Crew::Nearest, Some(30_000), "文化路口")
        );
        let base = json!({"incident": "J-1", "type": "help", "location": {"lat": 1.0, "lon": 2.0}, "car": "car-01"});
        assert_eq!(read_order(&args(base.clone())).unwrap().priority, 2);
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            read_order(&args(b)).unwrap_err()
        };
        assert!(with("priority", json!(5)).contains("1 (highest) to 4"));
        assert!(with("incident", json!("a/b")).contains("args.incident"));
        assert!(with("location", json!({"lat": 91, "lon": 0})).contains("location.lat"));
        assert!(with("car", json!("")).contains("args.car"));
        assert!(with("ack_within_s", json!(1)).contains("5 to 3600"));
        assert!(with("type", json!(null)).contains("args.type"));
    }
}
