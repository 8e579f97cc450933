//! Arrival at an incident from a crew's positions, judged without flapping: a crew is inside
//! once a position falls within `radius_m`, stays inside until one falls beyond `exit_radius_m`
//! (the hysteresis band absorbs GNSS jitter at the boundary), and has **arrived** once it has
//! stayed inside for `dwell_ms` — at the moment it entered. Positions from several devices (the
//! car's terminal, the crew's radios) are taken in time order; one older than the newest seen is
//! stale and ignored, so the fresher source always decides.

use crate::gps::distance_m;
use serde::{Deserialize, Serialize};

/// The arrival rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// Inside when this close (default 100 m).
    pub radius_m: f64,
    /// Out again only beyond this (≥ `radius_m`; default 1.5 × radius).
    pub exit_radius_m: f64,
    /// Inside this long before it counts (default 20 s): a car passing by has not arrived.
    pub dwell_ms: i64,
    /// Movements shorter than this are jitter, not driving (default 15 m).
    pub min_step_m: f64,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules::with_radius(100.0)
    }
}

impl Rules {
    pub fn with_radius(radius_m: f64) -> Rules {
        Rules {
            radius_m,
            exit_radius_m: radius_m * 1.5,
            dwell_ms: 20_000,
            min_step_m: 15.0,
        }
    }
}

/// The crew has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Arrived {
    /// When it entered the radius (of the stay that counted).
    pub at_ms: i64,
    /// Order → arrival.
    pub response_ms: i64,
    /// Distance driven from the first position after the order, jitter left out.
    pub driven_m: f64,
    /// Positions taken on the way (stale ones not counted).
    pub positions: u64,
    /// How far from the incident the entering position was.
    pub distance_m: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Where {
    Outside,
    /// Inside since, at that distance.
    Inside {
        since_ms: i64,
        distance_m: f64,
    },
    Arrived(Arrived),
}

/// One crew's way to one incident.
/// Serialisable, so a restarted daemon goes on with the way so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approach {
    incident: (f64, f64),
    ordered_at_ms: i64,
    rules: Rules,
    state: Where,
    newest_ms: Option<i64>,
    anchor: Option<(f64, f64)>,
    driven_m: f64,
    positions: u64,
}

impl Approach {
    pub fn new(incident: (f64, f64), ordered_at_ms: i64, rules: Rules) -> Approach {
        Approach {
            incident,
            ordered_at_ms,
            rules,
            state: Where::Outside,
            newest_ms: None,
            anchor: None,
            driven_m: 0.0,
            positions: 0,
        }
    }

    /// Takes a position of the crew (any of its devices) at `at_ms`; `Some` the once it
    /// arrives. Positions before the order, and older than the newest taken, are ignored.
    pub fn position(&mut self, lat: f64, lon: f64, at_ms: i64) -> Option<Arrived> {
        if at_ms < self.ordered_at_ms || self.newest_ms.is_some_and(|n| at_ms < n) {
            return None;
        }
        if !(lat.is_finite() && lon.is_finite()) || lat.abs() > 90.0 || lon.abs() > 180.0 {
            return None;
        }
        self.newest_ms = Some(at_ms);
        if let Where::Arrived(_) = self.state {
            return None;
        }
        self.positions += 1;
        let here = (lat, lon);
        match self.anchor {
            None => self.anchor = Some(here),
            Some(a) => {
                let step = distance_m(a, here);
                if step >= self.rules.min_step_m {
                    self.driven_m += step;
                    self.anchor = Some(here);
                }
            }
        }
        let d = distance_m(here, self.incident);
        self.state = match self.state {
            Where::Outside if d <= self.rules.radius_m => Where::Inside {
                since_ms: at_ms,
                distance_m: d,
            },
            Where::Inside { .. } if d > self.rules.exit_radius_m => Where::Outside,
            other => other,
        };
        if let Where::Inside {
            since_ms,
            distance_m,
        } = self.state
        {
            if at_ms - since_ms >= self.rules.dwell_ms {
                let arrived = Arrived {
                    at_ms: since_ms,
                    response_ms: since_ms - self.ordered_at_ms,
                    driven_m: self.driven_m,
                    positions: self.positions,
                    distance_m,
                };
                self.state = Where::Arrived(arrived);
                return Some(arrived);
            }
        }
        None
    }

    /// Arrived, and how.
    pub fn arrived(&self) -> Option<Arrived> {
        match self.state {
            Where::Arrived(a) => Some(a),
            _ => None,
        }
    }

    /// Inside the radius now, waiting out the dwell.
    pub fn inside(&self) -> bool {
        matches!(self.state, Where::Inside { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The incident: Jinan, Quancheng Square.
    const AT: (f64, f64) = (36.6612, 117.0194);

    /// Metres per degree of latitude on the sphere `distance_m` uses.
    const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

    /// A point `north_m` north of the incident.
    fn north(north_m: f64) -> (f64, f64) {
        (AT.0 + north_m / M_PER_DEG, AT.1)
    }

    #[test]
    fn a_crew_driving_in_and_staying_has_arrived_when_it_entered() {
        let mut a = Approach::new(AT, 1_000, Rules::default());
        let mut out = None;
        // From 2 km north at 10 m/s, a position every second, then parked 30 m away.
        for s in 0..=230 {
            let d = (2_000.0 - 10.0 * s as f64).max(30.0);
            let p = north(d);
            if let Some(x) = a.position(p.0, p.1, 1_000 + s * 1_000) {
                out = Some(x);
            }
        }
        let x = out.expect("arrived");
        // 100 m is reached at s = 190; arrival is then, not after the dwell.
        assert_eq!(x.at_ms, 1_000 + 190_000);
        assert_eq!(x.response_ms, 190_000);
        assert!((x.driven_m - 1_970.0).abs() < 20.0, "{}", x.driven_m);
        assert_eq!(x.positions, 211, "until the dwell was done");
    }

    #[test]
    fn passing_by_is_not_arriving() {
        let mut a = Approach::new(AT, 0, Rules::default());
        // Straight through at 15 m/s: inside for ~13 s, less than the dwell.
        for s in 0..300 {
            let p = north(2_000.0 - 15.0 * s as f64);
            assert_eq!(a.position(p.0, p.1, s * 1_000), None, "at {s} s");
        }
        assert!(a.arrived().is_none());
    }

    #[test]
    fn stale_and_early_positions_are_ignored() {
        let mut a = Approach::new(AT, 10_000, Rules::default());
        let p = north(50.0);
        assert_eq!(a.position(p.0, p.1, 5_000), None, "before the order");
        assert_eq!(a.position(p.0, p.1, 11_000), None);
        let far = north(5_000.0);
        // An older report from another device saying "far" changes nothing.
        assert_eq!(a.position(far.0, far.1, 10_500), None);
        assert!(a.inside());
        assert_eq!(a.position(f64::NAN, 0.0, 12_000), None);
        let x = a.position(p.0, p.1, 31_000).expect("dwell done");
        assert_eq!(x.at_ms, 11_000);
    }

    proptest! {
        /// Jitter of up to ±40 m around a car parked anywhere between 60 m and 110 m from the
        /// incident (across the 100 m radius, inside the 150 m exit) never makes it leave once
        /// inside, so it arrives exactly once, and only if it was ever inside; nothing after.
        #[test]
        fn jitter_at_the_radius_does_not_flap(
            parked in 60.0f64..110.0,
            jitter in proptest::collection::vec(-40.0f64..40.0, 30..120),
        ) {
            let mut a = Approach::new(AT, 0, Rules::default());
            let mut arrivals = 0;
            let mut entered: Option<i64> = None;
            for (i, j) in jitter.iter().enumerate() {
                let t = i as i64 * 1_000;
                let d = parked + j;
                if entered.is_none() && d <= 100.0 {
                    entered = Some(t);
                }
                let p = north(d);
                if let Some(x) = a.position(p.0, p.1, t) {
                    arrivals += 1;
                    prop_assert_eq!(Some(x.at_ms), entered);
                }
            }
            prop_assert!(arrivals <= 1);
            let long_enough = entered.is_some_and(|e| (jitter.len() as i64 - 1) * 1_000 - e >= 20_000);
            prop_assert_eq!(arrivals == 1, long_enough);
        }
    }
}
