//! "The nearest ready crew of this station": central may name the crew to send, or leave the
//! choice to the box, which sees its cars' positions first. The choice is a pure function of
//! each crew's readiness and its car's latest position, and it says why — which crew, how far,
//! and why each other crew was not taken — so the dispatcher can trust or overrule it.

use crate::gps::distance_m;

/// One crew as the choice sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub car: String,
    /// `ready`, `on_call`, `short_staffed`, … (staffing's readiness).
    pub readiness: String,
    /// The car's latest position and when it was taken (the freshest of its devices').
    pub position: Option<(f64, f64, i64)>,
}

/// The choice.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    Chosen {
        car: String,
        distance_m: f64,
        /// In a dispatcher's words: the chosen crew and every other one with why not.
        reason: String,
    },
    /// No crew can go; why, per crew.
    Nobody { reason: String },
}

/// The nearest ready crew to `incident` whose position is at most `max_age_ms` old at `now_ms`.
/// Ties go to the car listed first.
pub fn nearest(
    candidates: &[Candidate],
    incident: (f64, f64),
    now_ms: i64,
    max_age_ms: i64,
) -> Choice {
    let mut best: Option<(&Candidate, f64)> = None;
    let mut notes = Vec::new();
    for c in candidates {
        if c.readiness != "ready" {
            notes.push(format!("{} {}", c.car, c.readiness));
            continue;
        }
        let Some((lat, lon, at_ms)) = c.position else {
            notes.push(format!("{} has no position", c.car));
            continue;
        };
        let age_ms = now_ms.saturating_sub(at_ms);
        if age_ms > max_age_ms {
            notes.push(format!("{}'s position is {} s old", c.car, age_ms / 1000));
            continue;
        }
        let d = distance_m((lat, lon), incident);
        notes.push(format!("{} at {}", c.car, metres(d)));
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((c, d));
        }
    }
    match best {
        Some((c, d)) => {
            let others: Vec<&String> = notes
                .iter()
                .filter(|n| !n.starts_with(&format!("{} at ", c.car)))
                .collect();
            let mut reason = format!("nearest ready crew: {} at {}", c.car, metres(d));
            if !others.is_empty() {
                reason.push_str(&format!(
                    " ({})",
                    others
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            Choice::Chosen {
                car: c.car.clone(),
                distance_m: d,
                reason,
            }
        }
        None => Choice::Nobody {
            reason: if notes.is_empty() {
                "the station has no crews".into()
            } else {
                format!("no ready crew with a recent position: {}", notes.join("; "))
            },
        },
    }
}

/// `850 m`, `1.2 km`.
fn metres(d: f64) -> String {
    if d < 1_000.0 {
        format!("{} m", d.round())
    } else {
        format!("{:.1} km", d / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: (f64, f64) = (36.6612, 117.0194);

    fn c(car: &str, readiness: &str, north_m: Option<f64>, at_ms: i64) -> Candidate {
        Candidate {
            car: car.into(),
            readiness: readiness.into(),
            position: north_m.map(|n| (AT.0 + n / 111_195.08, AT.1, at_ms)),
        }
    }

    #[test]
    fn the_nearest_ready_crew_with_a_fresh_position_and_why_the_others_were_not() {
        let crews = [
            c("car-01", "ready", Some(1_200.0), 0),
            c("car-02", "ready", Some(850.0), 0),
            c("car-03", "short_staffed", Some(100.0), 0),
            c("car-04", "ready", Some(50.0), -600_000),
            c("car-05", "ready", None, 0),
        ];
        let Choice::Chosen {
            car,
            distance_m,
            reason,
        } = nearest(&crews, AT, 1_000, 120_000)
        else {
            panic!("someone is ready");
        };
        assert_eq!(car, "car-02");
        assert!((distance_m - 850.0).abs() < 1.0);
        assert_eq!(
            reason,
            "nearest ready crew: car-02 at 850 m (car-01 at 1.2 km; car-03 short_staffed; car-04's position is 601 s old; car-05 has no position)"
        );
    }

    #[test]
    fn nobody_ready_says_why_for_each() {
        let crews = [
            c("car-01", "on_call", Some(10.0), 0),
            c("car-02", "off_duty", None, 0),
        ];
        assert_eq!(
            nearest(&crews, AT, 0, 60_000),
            Choice::Nobody {
                reason: "no ready crew with a recent position: car-01 on_call; car-02 off_duty"
                    .into()
            }
        );
        assert_eq!(
            nearest(&[], AT, 0, 60_000),
            Choice::Nobody {
                reason: "the station has no crews".into()
            }
        );
    }
}
