//! What a GPS receiver's fixes become: position telemetry by exception, and health events.
//!
//! Pure (time is handed in as monotonic milliseconds), so the rules are tested without a
//! receiver. The `nmea` driver feeds it; the JT/T 808 driver will reuse the report policy.
//!
//! - **Report by exception**: a fix is sent when the car moved more than `min_distance_m`, or
//!   turned more than `min_course_deg` while moving, but never more often than every
//!   `min_interval`, and at least every `max_interval` even when parked.
//! - **Health**: `offline` → (valid sentence) → `no_fix` / `fix`; `fix` ↔ `no_fix` on the
//!   receiver's own status; → `offline` after `offline_after` of silence or when the port
//!   goes away. Each change is an event: `device.online`, `device.offline`,
//!   `gps.fix_acquired`, `gps.fix_lost`.

use crate::codec::nmea::{EpochOutcome, Fix};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportPolicy {
    pub min_distance_m: f64,
    pub min_course_deg: f64,
    pub min_interval_ms: u64,
    pub max_interval_ms: u64,
}

impl ReportPolicy {
    /// From the config keys every position-reporting driver shares.
    pub fn from_config(
        min_distance_m: f64,
        min_course_deg: f64,
        min_interval_s: u64,
        max_interval_s: u64,
    ) -> ReportPolicy {
        ReportPolicy {
            min_distance_m,
            min_course_deg,
            min_interval_ms: min_interval_s * 1000,
            max_interval_ms: max_interval_s * 1000,
        }
    }
}

/// Defaults of the report-by-exception keys every position-reporting driver's config has
/// (`min_distance_m`, `min_course_deg`, `min_interval_s`, `max_interval_s`).
pub fn default_min_distance_m() -> f64 {
    50.0
}
pub fn default_min_course_deg() -> f64 {
    30.0
}
pub fn default_min_interval_s() -> u64 {
    5
}
pub fn default_max_interval_s() -> u64 {
    60
}

/// Below this speed the course a receiver reports is noise.
const MOVING_KMH: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Offline,
    NoFix,
    Fix,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Offline => "offline",
            Health::NoFix => "no_fix",
            Health::Fix => "online",
        }
    }
}

/// What the tracker wants sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Position(Fix),
    /// A health change: kind (`device.online`, …) and its data.
    Health {
        kind: &'static str,
        data: serde_json::Value,
    },
}

/// Report by exception: decides whether a fix is worth sending, given the last one sent.
#[derive(Debug)]
pub struct ReportFilter {
    policy: ReportPolicy,
    last_sent: Option<(u64, Fix)>,
}

impl ReportFilter {
    pub fn new(policy: ReportPolicy) -> ReportFilter {
        ReportFilter {
            policy,
            last_sent: None,
        }
    }

    /// True when `fix` should be sent now; then it becomes the reference for the next one.
    /// `force` sends regardless (first fix, a fix carrying an alarm).
    pub fn offer(&mut self, now_ms: u64, fix: &Fix, force: bool) -> bool {
        if force || self.should_send(now_ms, fix) {
            self.last_sent = Some((now_ms, fix.clone()));
            true
        } else {
            false
        }
    }

    /// Forget the reference (the next fix is sent).
    pub fn reset(&mut self) {
        self.last_sent = None;
    }

    fn should_send(&self, now_ms: u64, fix: &Fix) -> bool {
        let Some((sent_ms, sent)) = &self.last_sent else {
            return true;
        };
        let elapsed = now_ms.saturating_sub(*sent_ms);
        if elapsed < self.policy.min_interval_ms {
            return false;
        }
        if elapsed >= self.policy.max_interval_ms {
            return true;
        }
        if distance_m((sent.lat, sent.lon), (fix.lat, fix.lon)) >= self.policy.min_distance_m {
            return true;
        }
        let moving = fix.speed_kmh.unwrap_or(0.0) >= MOVING_KMH;
        match (moving, sent.course_deg, fix.course_deg) {
            (true, Some(a), Some(b)) => course_change(a, b) >= self.policy.min_course_deg,
            _ => false,
        }
    }
}

#[derive(Debug)]
pub struct GpsTracker {
    filter: ReportFilter,
    offline_after_ms: u64,
    health: Health,
    last_heard_ms: Option<u64>,
    last_fix: Option<Fix>,
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

/// Smallest angle between two courses, 0–180.
fn course_change(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

pub fn position_data(f: &Fix) -> serde_json::Value {
    json!({
        "lat": (f.lat * 1e7).round() / 1e7,
        "lon": (f.lon * 1e7).round() / 1e7,
        "alt_m": f.altitude_m,
        "speed_kmh": f.speed_kmh.map(|s| (s * 100.0).round() / 100.0),
        "course_deg": f.course_deg,
        "fix_quality": f.quality,
        "fix_type": f.fix_type,
        "satellites": f.satellites,
        "hdop": f.hdop,
        "gnss_time": f.utc_ms.map(crate::event::format_ts_ms),
    })
}

impl GpsTracker {
    pub fn new(policy: ReportPolicy, offline_after_ms: u64) -> GpsTracker {
        GpsTracker {
            filter: ReportFilter::new(policy),
            offline_after_ms,
            health: Health::Offline,
            last_heard_ms: None,
            last_fix: None,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// A valid sentence arrived (whatever it said).
    pub fn heard(&mut self, now_ms: u64) -> Vec<Report> {
        self.last_heard_ms = Some(now_ms);
        if self.health == Health::Offline {
            self.health = Health::NoFix;
            return vec![Report::Health {
                kind: "device.online",
                data: json!({"state": "no_fix"}),
            }];
        }
        Vec::new()
    }

    /// An epoch completed.
    pub fn epoch(&mut self, now_ms: u64, outcome: EpochOutcome) -> Vec<Report> {
        let mut out = self.heard(now_ms);
        match outcome {
            EpochOutcome::NoFix => {
                if self.health == Health::Fix {
                    self.health = Health::NoFix;
                    let last = self.last_fix.as_ref().map(position_data);
                    out.push(Report::Health {
                        kind: "gps.fix_lost",
                        data: json!({ "last_position": last }),
                    });
                }
            }
            EpochOutcome::Fix(fix) => {
                let acquired = self.health != Health::Fix;
                if acquired {
                    self.health = Health::Fix;
                    out.push(Report::Health {
                        kind: "gps.fix_acquired",
                        data: position_data(&fix),
                    });
                }
                if self.filter.offer(now_ms, &fix, acquired) {
                    out.push(Report::Position(fix.clone()));
                }
                self.last_fix = Some(fix);
            }
        }
        out
    }

    /// Time passes: silence longer than `offline_after` makes the receiver offline.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Report> {
        match self.last_heard_ms {
            Some(t)
                if self.health != Health::Offline
                    && now_ms.saturating_sub(t) >= self.offline_after_ms =>
            {
                self.go_offline("silent")
            }
            _ => Vec::new(),
        }
    }

    /// The port went away (unplugged, read error, EOF).
    pub fn port_lost(&mut self) -> Vec<Report> {
        if self.health == Health::Offline {
            return Vec::new();
        }
        self.go_offline("port closed")
    }

    fn go_offline(&mut self, reason: &str) -> Vec<Report> {
        self.health = Health::Offline;
        self.filter.reset();
        vec![Report::Health {
            kind: "device.offline",
            data: json!({ "reason": reason }),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: ReportPolicy = ReportPolicy {
        min_distance_m: 50.0,
        min_course_deg: 30.0,
        min_interval_ms: 5_000,
        max_interval_ms: 60_000,
    };

    fn fix(lat: f64, lon: f64, speed: f64, course: f64) -> EpochOutcome {
        EpochOutcome::Fix(Fix {
            utc_ms: None,
            lat,
            lon,
            altitude_m: None,
            speed_kmh: Some(speed),
            course_deg: Some(course),
            quality: 1,
            fix_type: Some(3),
            satellites: Some(8),
            hdop: Some(1.0),
        })
    }

    fn kinds(r: &[Report]) -> Vec<&str> {
        r.iter()
            .map(|r| match r {
                Report::Position(_) => "position",
                Report::Health { kind, .. } => kind,
            })
            .collect()
    }

    #[test]
    fn distance_is_right_on_a_known_pair() {
        // One arc-minute of latitude is one nautical mile.
        let d = distance_m((36.0, 117.0), (36.0 + 1.0 / 60.0, 117.0));
        assert!((d - 1853.0).abs() < 5.0, "{d}");
    }

    #[test]
    fn health_goes_online_fix_lost_and_offline_with_events() {
        let mut t = GpsTracker::new(POLICY, 10_000);
        assert_eq!(kinds(&t.epoch(0, EpochOutcome::NoFix)), ["device.online"]);
        assert_eq!(t.health(), Health::NoFix);
        assert_eq!(
            kinds(&t.epoch(1_000, fix(36.65, 117.0, 0.0, 0.0))),
            ["gps.fix_acquired", "position"]
        );
        assert_eq!(
            kinds(&t.epoch(2_000, EpochOutcome::NoFix)),
            ["gps.fix_lost"]
        );
        assert!(t.tick(11_000).is_empty(), "heard 9 s ago");
        assert_eq!(kinds(&t.tick(12_000)), ["device.offline"]);
        assert!(t.tick(20_000).is_empty(), "one event per change");
        assert_eq!(kinds(&t.heard(21_000)), ["device.online"]);
        assert_eq!(kinds(&t.port_lost()), ["device.offline"]);
        assert!(t.port_lost().is_empty());
    }

    #[test]
    fn a_parked_car_reports_every_max_interval_only() {
        let mut t = GpsTracker::new(POLICY, 10_000);
        let mut sent = 0;
        for s in 0..=180u64 {
            // GPS jitter of a few metres while parked.
            let jitter = if s % 2 == 0 { 0.00002 } else { -0.00002 };
            sent += kinds(&t.epoch(
                s * 1000,
                fix(36.65 + jitter, 117.0, 0.3, (s * 37 % 360) as f64),
            ))
            .iter()
            .filter(|k| **k == "position")
            .count();
        }
        assert_eq!(sent, 4, "first fix, then at 60, 120, 180 s");
    }

    #[test]
    fn a_moving_car_reports_on_distance_and_turns_but_not_faster_than_min_interval() {
        let mut t = GpsTracker::new(POLICY, 10_000);
        let mut times = Vec::new();
        // 54 km/h north = 15 m/s: 50 m every 3.3 s, limited to one per 5 s.
        for s in 0..=30u64 {
            let lat = 36.65 + (s as f64 * 15.0) / 111_195.0;
            if kinds(&t.epoch(s * 1000, fix(lat, 117.0, 54.0, 0.0))).contains(&"position") {
                times.push(s);
            }
        }
        assert_eq!(times, [0, 5, 10, 15, 20, 25, 30]);
        // Stopped at a junction, then a 90° turn: reported after min_interval even though it
        // moved less than 50 m.
        let mut t = GpsTracker::new(POLICY, 10_000);
        t.epoch(0, fix(36.65, 117.0, 20.0, 0.0));
        assert!(
            !kinds(&t.epoch(6_000, fix(36.65001, 117.0, 20.0, 10.0))).contains(&"position"),
            "10° is not a turn"
        );
        assert!(kinds(&t.epoch(7_000, fix(36.65002, 117.0, 20.0, 90.0))).contains(&"position"));
    }
}
