//! The incidents the station relays and what became of each crew sent to them: the paths the
//! order went out on, the crew's acknowledgement, its way to the scene, the clearing. Plain
//! data (kept as JSON in `dispatch.db`), changed only by the service; the figures central sees
//! are a pure function of it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use stationd_proto::dispatch::arrival::{Approach, Arrived};
use stationd_proto::dispatch::figures::{median_p90, share};
use std::collections::BTreeMap;

/// One incident central sent crews of this station to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// 1 (highest) to 4.
    pub priority: u8,
    /// What kind of call (`dispute`, `help`, `traffic`, … as central names them).
    #[serde(rename = "type")]
    pub kind: String,
    pub summary: String,
    pub lat: f64,
    pub lon: f64,
    pub address: String,
    /// When the first order for it reached the station.
    pub opened_ms: i64,
    /// The crews sent, the first first.
    pub crews: Vec<Assignment>,
    pub cleared: Option<Cleared>,
}

/// One crew sent to an incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub car: String,
    /// When the order reached the station (the response time counts from here).
    pub ordered_ms: i64,
    pub ack_deadline_ms: i64,
    /// Why the box chose this crew, when central left the choice to it.
    pub chosen: Option<String>,
    /// The teams on duty when it was sent (`1`, `2+3`), for the per-shift figures.
    pub shift: Option<String>,
    pub members: Vec<String>,
    /// The devices whose positions and statuses speak for the crew: the car's tracker and
    /// radio, the members' handhelds.
    pub devices: Vec<String>,
    pub paths: Vec<RelayPath>,
    pub acknowledged: Option<Ack>,
    /// The `dispatch.unacknowledged` alarm was raised.
    pub alarmed: bool,
    pub approach: Approach,
    pub arrived: Option<Arrived>,
    /// The box's clock was synchronised when the order came.
    #[serde(default = "yes")]
    pub ordered_synced: bool,
    /// A position on the way carried an unsynchronised clock.
    #[serde(default)]
    pub unsynced_positions: bool,
}

fn yes() -> bool {
    true
}

/// One way the order went to the crew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayPath {
    /// `terminal` (the car's JT/T 808 terminal) or `radio` (an SDS to a radio).
    pub via: String,
    /// The car's id for a terminal; the ISSI for a radio.
    pub to: String,
    /// The device in events (the car's tracker, the radio's id).
    pub device: String,
    pub state: PathState,
    pub at_ms: i64,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathState {
    /// Going out now.
    Sending,
    /// The radio took it; no delivery report was asked for or came.
    Sent,
    /// The terminal answered 0x0001 success, or the radio's delivery report said delivered.
    Delivered,
    Failed,
}

impl PathState {
    pub fn name(self) -> &'static str {
        match self {
            PathState::Sending => "sending",
            PathState::Sent => "sent",
            PathState::Delivered => "delivered",
            PathState::Failed => "failed",
        }
    }
    /// The path's outcome is known.
    pub fn settled(self) -> bool {
        self != PathState::Sending
    }
}

/// The crew acknowledged the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub at_ms: i64,
    /// `radio hh-1001 status 0x8002`, `terminal car-01 (delivery)`, …
    pub by: String,
}

/// The incident is over for the station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleared {
    pub at_ms: i64,
    /// `closed` (the call is dealt with), `handed_over` (another unit took it), `cancelled`;
    /// `expired` when the station cleared it after `max_open_h`.
    pub outcome: String,
    /// The car whose crew closed it, when one did.
    pub closed_by: Option<String>,
    /// What said so: `radio car-01-radio status 0x8004`, `central`.
    pub by: String,
}

/// How an incident may be cleared.
pub const OUTCOMES: [&str; 3] = ["closed", "handed_over", "cancelled"];

impl Incident {
    pub fn open(&self) -> bool {
        self.cleared.is_none()
    }

    pub fn crew(&self, car: &str) -> Option<&Assignment> {
        self.crews.iter().find(|a| a.car == car)
    }

    pub fn crew_mut(&mut self, car: &str) -> Option<&mut Assignment> {
        self.crews.iter_mut().find(|a| a.car == car)
    }

    /// The first crew's arrival: the incident's response time.
    pub fn first_arrival(&self) -> Option<Arrived> {
        self.crews
            .iter()
            .filter_map(|a| a.arrived)
            .min_by_key(|a| a.at_ms)
    }

    /// Closed by the first crew sent.
    pub fn closed_by_first_crew(&self) -> Option<bool> {
        let c = self.cleared.as_ref().filter(|c| c.outcome == "closed")?;
        Some(
            c.closed_by.is_some()
                && c.closed_by.as_deref() == self.crews.first().map(|a| a.car.as_str()),
        )
    }
}

impl Assignment {
    /// Every path's outcome is known.
    pub fn relay_settled(&self) -> bool {
        self.paths.iter().all(|p| p.state.settled())
    }

    /// What the command's answer and the events say of the crew.
    pub fn view(&self) -> Value {
        json!({
            "car": self.car,
            "members": self.members,
            "ordered": crate::event::format_ts_ms(self.ordered_ms),
            "ack_deadline": crate::event::format_ts_ms(self.ack_deadline_ms),
            "chosen": self.chosen,
            "paths": self.paths.iter().map(RelayPath::view).collect::<Vec<_>>(),
            "acknowledged": self.acknowledged.as_ref().map(|a| json!({
                "at": crate::event::format_ts_ms(a.at_ms),
                "by": a.by,
                "after_ms": a.at_ms - self.ordered_ms,
            })),
            "unacknowledged_alarm": self.alarmed,
            "arrived": self.arrived.map(|a| arrived_view(a, self.response_clock())),
        })
    }
}

impl Assignment {
    /// Whether the response time can be trusted: the order's moment on a synchronised box
    /// clock, every position on the way on a trustworthy clock (the contract's `clock`).
    pub fn response_clock(&self) -> &'static str {
        if self.ordered_synced && !self.unsynced_positions {
            "synced"
        } else {
            "unsynced"
        }
    }
}

impl RelayPath {
    pub fn view(&self) -> Value {
        json!({
            "via": self.via,
            "to": self.to,
            "device": self.device,
            "state": self.state.name(),
            "at": crate::event::format_ts_ms(self.at_ms),
            "detail": self.detail,
        })
    }
}

/// An arrival as events and the state show it; `clock` says whether its response time can be
/// trusted.
pub fn arrived_view(a: Arrived, clock: &str) -> Value {
    json!({
        "clock": clock,
        "at": crate::event::format_ts_ms(a.at_ms),
        "response_ms": a.response_ms,
        "response_s": a.response_ms as f64 / 1000.0,
        "driven_m": a.driven_m.round(),
        "positions": a.positions,
        "distance_m": (a.distance_m * 10.0).round() / 10.0,
    })
}

/// The open incidents first ordered more than `max_open_ms` before `now_ms`.
pub fn expired<'a>(
    incidents: impl Iterator<Item = &'a Incident>,
    now_ms: i64,
    max_open_ms: i64,
) -> Vec<String> {
    incidents
        .filter(|i| i.open() && now_ms - i.opened_ms > max_open_ms)
        .map(|i| i.id.clone())
        .collect()
}

/// Counts behind one row of the figures.
#[derive(Debug, Default)]
struct Tally {
    dispatched: u64,
    acknowledged: u64,
    unacknowledged: u64,
    arrived: u64,
    /// Response times on trustworthy clocks only.
    response_ms: Vec<i64>,
    /// Arrivals whose response time is not counted: a clock was not synchronised.
    unsynced: u64,
    /// Incidents this crew was first to and that were closed, and of those closed by it.
    first_closed: u64,
    first_closed_by_it: u64,
}

impl Tally {
    fn take(&mut self, incident: &Incident, a: &Assignment) {
        self.dispatched += 1;
        self.acknowledged += u64::from(a.acknowledged.is_some());
        self.unacknowledged += u64::from(a.alarmed && a.acknowledged.is_none());
        if let Some(arr) = a.arrived {
            self.arrived += 1;
            if a.response_clock() == "synced" {
                self.response_ms.push(arr.response_ms);
            } else {
                self.unsynced += 1;
            }
        }
        let first = incident.crews.first().is_some_and(|f| f.car == a.car);
        if let (true, Some(by_first)) = (first, incident.closed_by_first_crew()) {
            self.first_closed += 1;
            self.first_closed_by_it += u64::from(by_first);
        }
    }

    fn view(&self) -> Value {
        let (median, p90) = median_p90(&self.response_ms).unzip();
        json!({
            "dispatched": self.dispatched,
            "acknowledged": self.acknowledged,
            "unacknowledged": self.unacknowledged,
            "arrived": self.arrived,
            "median_response_s": median.map(|m| m as f64 / 1000.0),
            "p90_response_s": p90.map(|m| m as f64 / 1000.0),
            "unsynced_responses": self.unsynced,
            "first_crew_closure_share": share(self.first_closed_by_it, self.first_closed),
        })
    }
}

/// The figures of the incidents opened since `since_ms`: the station's, per crew (car) and per
/// shift (the teams on duty when the crew was sent).
pub fn figures<'a>(incidents: impl Iterator<Item = &'a Incident>, since_ms: i64) -> Value {
    let mut all = Tally::default();
    let mut crews: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut shifts: BTreeMap<&str, Tally> = BTreeMap::new();
    let (mut incidents_n, mut cleared, mut closed) = (0u64, 0u64, 0u64);
    for i in incidents.filter(|i| i.opened_ms >= since_ms) {
        incidents_n += 1;
        cleared += u64::from(!i.open());
        closed += u64::from(i.cleared.as_ref().is_some_and(|c| c.outcome == "closed"));
        for a in &i.crews {
            all.take(i, a);
            crews.entry(&a.car).or_default().take(i, a);
            shifts
                .entry(a.shift.as_deref().unwrap_or("none"))
                .or_default()
                .take(i, a);
        }
    }
    let rows = |m: BTreeMap<&str, Tally>| -> Map<String, Value> {
        m.into_iter()
            .map(|(k, t)| (k.to_string(), t.view()))
            .collect()
    };
    let mut station = all.view();
    station["incidents"] = incidents_n.into();
    station["cleared"] = cleared.into();
    station["closed"] = closed.into();
    json!({
        "station": station,
        "crews": rows(crews),
        "shifts": rows(shifts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stationd_proto::dispatch::arrival::Rules;

    fn assignment(car: &str, ordered_ms: i64, response_ms: Option<i64>, acked: bool) -> Assignment {
        Assignment {
            car: car.into(),
            ordered_ms,
            ack_deadline_ms: ordered_ms + 60_000,
            chosen: None,
            shift: Some("1".into()),
            members: vec![],
            devices: vec![],
            paths: vec![],
            acknowledged: acked.then(|| Ack {
                at_ms: ordered_ms + 5_000,
                by: "test".into(),
            }),
            alarmed: !acked,
            approach: Approach::new((0.0, 0.0), ordered_ms, Rules::default()),
            ordered_synced: true,
            unsynced_positions: false,
            arrived: response_ms.map(|r| Arrived {
                at_ms: ordered_ms + r,
                response_ms: r,
                driven_m: 1000.0,
                positions: 10,
                distance_m: 20.0,
            }),
        }
    }

    fn incident(id: &str, crews: Vec<Assignment>, closed_by: Option<&str>) -> Incident {
        Incident {
            id: id.into(),
            priority: 2,
            kind: "dispute".into(),
            summary: String::new(),
            lat: 0.0,
            lon: 0.0,
            address: String::new(),
            opened_ms: crews[0].ordered_ms,
            crews,
            cleared: closed_by.map(|c| Cleared {
                at_ms: 0,
                outcome: "closed".into(),
                closed_by: Some(c.into()),
                by: "central".into(),
            }),
        }
    }

    #[test]
    fn only_open_incidents_past_the_limit_expire() {
        let open_old = incident("old", vec![assignment("car-01", 1_000, None, true)], None);
        let open_new = incident("new", vec![assignment("car-02", 9_000, None, true)], None);
        let closed_old = incident(
            "done",
            vec![assignment("car-03", 1_000, None, true)],
            Some("car-03"),
        );
        let all = [open_old, open_new, closed_old];
        assert_eq!(expired(all.iter(), 10_000, 5_000), ["old"]);
        assert!(expired(all.iter(), 10_000, 9_000).is_empty());
    }

    #[test]
    fn figures_count_each_crew_and_the_first_crews_closures() {
        let incidents = [
            incident(
                "a",
                vec![assignment("car-01", 1_000, Some(300_000), true)],
                Some("car-01"),
            ),
            incident(
                "b",
                vec![
                    assignment("car-01", 2_000, Some(500_000), true),
                    assignment("car-02", 3_000, Some(200_000), false),
                ],
                Some("car-02"),
            ),
            incident("c", vec![assignment("car-02", 4_000, None, true)], None),
            // Before the window.
            incident(
                "old",
                vec![assignment("car-01", 10, Some(1), true)],
                Some("car-01"),
            ),
        ];
        let f = figures(incidents.iter(), 500);
        let s = &f["station"];
        assert_eq!(
            (s["incidents"].as_u64(), s["dispatched"].as_u64()),
            (Some(3), Some(4))
        );
        assert_eq!(
            (s["acknowledged"].as_u64(), s["unacknowledged"].as_u64()),
            (Some(3), Some(1))
        );
        assert_eq!(s["arrived"], 3);
        // Responses 200, 300, 500 s: median the 2nd, p90 the 3rd.
        assert_eq!(
            (
                s["median_response_s"].as_f64(),
                s["p90_response_s"].as_f64()
            ),
            (Some(300.0), Some(500.0))
        );
        // a closed by its first crew, b by the second: half.
        assert_eq!(s["first_crew_closure_share"], 0.5);
        assert_eq!(f["crews"]["car-01"]["first_crew_closure_share"], 0.5);
        assert_eq!(
            f["crews"]["car-02"]["first_crew_closure_share"],
            Value::Null
        );
        assert_eq!(f["crews"]["car-02"]["dispatched"], 2);
        assert_eq!(f["shifts"]["1"]["dispatched"], 4);
    }
}
