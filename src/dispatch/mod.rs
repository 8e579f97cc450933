//! Dispatch relay: central's order meets the crew here. A `dispatch` command names an incident
//! and the crew to send (or lets the box choose the nearest ready one); the service relays the
//! order at once on every path the crew has — the car's JT/T 808 terminal (0x8300, shown and
//! read aloud) and SDS to the car's radio and the members' handhelds — and follows each path to
//! its outcome, waits for the crew's acknowledgement (an acknowledgement status from one of its
//! radios) and raises `dispatch.unacknowledged` when none comes by the deadline, judges the
//! crew's arrival from its positions (`stationd_proto::dispatch::arrival`), and clears the
//! incident when the crew's radio says so or central does. Crews sent are `on_call` in
//! staffing until cleared. Every step is an event through the outbox, so central's history is
//! complete after an outage; the relay itself never waits for the uplink.
//!
//! Durations the service measures itself (time to acknowledge, the deadline) run on the
//! monotonic clock; the response time is the crew's entering position's own time (the
//! receiver's clock) less the moment the order reached the station.

pub mod commands;
pub mod model;
pub mod store;

use crate::board::Board;
use crate::drivers::jt808::text::{CarLinks, FLAG_DISPLAY, FLAG_EMERGENCY, FLAG_TTS};
use crate::drivers::tetra::text::{RadioLinks, SendRequest};
use crate::event::{Event, Priority};
use crate::metrics::{self, Metrics};
use crate::outbox::EventSink;
use crate::side_store::Shared;
use model::{Ack, Assignment, Cleared, Incident, PathState, RelayPath};
use serde_json::{json, Value};
use stationd_proto::dispatch::arrival::Approach;
use stationd_proto::dispatch::choose::{nearest, Candidate, Choice};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::DispatchStore;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Device id of the dispatch events.
pub const DEVICE: &str = "dispatch";
/// Positions and statuses waiting for the service; beyond it they are dropped and counted.
const QUEUE: usize = 1024;
/// The command's answer waits this long past the acknowledgement deadline for the paths'
/// outcomes (a radio's delivery report may take 30 s).
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// The cars whose crews are on an incident not cleared yet; staffing's readiness reads it.
#[derive(Default)]
pub struct OnCall(Mutex<BTreeMap<String, BTreeSet<String>>>);

impl OnCall {
    pub fn contains(&self, car: &str) -> bool {
        self.lock().get(car).is_some_and(|i| !i.is_empty())
    }

    fn set(&self, car: &str, incident: &str, on: bool) {
        let mut m = self.lock();
        let set = m.entry(car.to_string()).or_default();
        if on {
            set.insert(incident.to_string());
        } else {
            set.remove(incident);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Which crew central sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Crew {
    Car(String),
    /// The nearest ready crew of this station, chosen by the box.
    Nearest,
}

/// A checked `dispatch` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub incident: String,
    pub priority: u8,
    pub kind: String,
    pub summary: String,
    pub lat: f64,
    pub lon: f64,
    pub address: String,
    pub crew: Crew,
    /// The order's own deadline, else `[dispatch] ack_within_s`.
    pub ack_within_ms: Option<i64>,
}

/// What the drivers' events hand the service.
#[derive(Debug)]
enum Note {
    Position {
        device: String,
        lat: f64,
        lon: f64,
        at_ms: i64,
        /// Its time is trustworthy (the envelope's `clock`).
        synced: bool,
    },
    /// The crew says it has the order (`ack`) or has closed the call: a status from one of its
    /// radios, an event pressed on its terminal.
    Crew {
        device: String,
        officer: Option<String>,
        car: Option<String>,
        ack: bool,
        /// `radio hh-1001 status 0x8002`, `terminal car-03 event 1`.
        by: String,
    },
}

/// Why a change asked of the service was refused.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{0}")]
    Invalid(String),
}

/// The station's dispatch relay, one per daemon.
pub struct Dispatch {
    station: String,
    cfg: crate::config::Dispatch,
    cars: Vec<crate::config::Car>,
    state: tokio::sync::Mutex<State>,
    /// The incidents as last stored, for the views and `P/state/dispatch` (read without
    /// waiting for the service).
    kept: Mutex<BTreeMap<String, Incident>>,
    /// The latest position of every device that sent one: for "nearest".
    positions: Positions,
    /// Any crew on its way or on scene: positions and statuses go to the task.
    tracking: AtomicBool,
    /// Bumped on every change of an assignment (the command's answer waits on it).
    changed: watch::Sender<u64>,
    /// A new deadline: the task looks again when to wake.
    new_deadline: tokio::sync::Notify,
    on_call: Arc<OnCall>,
    staffing: Arc<crate::staffing::Staffing>,
    store: Shared<DispatchStore>,
    sink: EventSink,
    board: Arc<Board>,
    metrics: Arc<Metrics>,
    terminals: Arc<CarLinks>,
    radios: Arc<RadioLinks>,
    notes: mpsc::Sender<Note>,
    notes_rx: Mutex<Option<mpsc::Receiver<Note>>>,
    stop: CancellationToken,
}

struct State {
    incidents: BTreeMap<String, Incident>,
    /// Open assignments not yet acknowledged: (incident, car) → the deadline, monotonic.
    deadlines: BTreeMap<(String, String), Instant>,
    /// When this process took each order, monotonic: (incident, car) → then.
    taken: HashMap<(String, String), Instant>,
}

/// The parts the service works with.
pub struct Parts {
    pub sink: EventSink,
    pub board: Arc<Board>,
    pub metrics: Arc<Metrics>,
    pub staffing: Arc<crate::staffing::Staffing>,
    pub terminals: Arc<CarLinks>,
    pub radios: Arc<RadioLinks>,
    /// The daemon's shutdown: relays and waiting answers end with it (they hold the outbox's
    /// sink, which must close for the outbox to finish).
    pub stop: CancellationToken,
}

impl Dispatch {
    /// Opens `dispatch.db` beside the outbox; the crews of open incidents are on call again.
    pub fn open(
        station: &str,
        cfg: crate::config::Dispatch,
        outbox: &std::path::Path,
        parts: Parts,
    ) -> Result<Arc<Dispatch>, store::StoreError> {
        let store = DispatchStore::open(&store::store_path(outbox))?;
        let now = crate::clock::unix_ms();
        let pruned = store.prune(now - cfg.keep_ms)?;
        let (loaded, skipped) = store.load()?;
        if skipped > 0 {
            tracing::warn!(
                event = "dispatch.store_unreadable",
                skipped,
                "incidents in dispatch.db that this daemon cannot read were skipped"
            );
        }
        let on_call = parts.staffing.on_call();
        let mut deadlines = BTreeMap::new();
        let mono = Instant::now();
        for i in loaded.iter().filter(|i| i.open()) {
            for a in &i.crews {
                on_call.set(&a.car, &i.id, true);
                if a.acknowledged.is_none() && !a.alarmed {
                    let left = (a.ack_deadline_ms - now).max(0) as u64;
                    deadlines.insert(
                        (i.id.clone(), a.car.clone()),
                        mono + Duration::from_millis(left),
                    );
                }
            }
        }
        let open = loaded.iter().filter(|i| i.open()).count();
        if !loaded.is_empty() {
            tracing::info!(
                event = "dispatch.loaded",
                incidents = loaded.len(),
                open,
                pruned,
                "incidents kept from before"
            );
        }
        let (notes, rx) = mpsc::channel(QUEUE);
        let cars = parts
            .staffing
            .config()
            .map(|c| c.cars.clone())
            .unwrap_or_default();
        Ok(Arc::new(Dispatch {
            station: station.to_string(),
            cfg,
            cars,
            kept: Mutex::new(loaded.iter().map(|i| (i.id.clone(), i.clone())).collect()),
            state: tokio::sync::Mutex::new(State {
                incidents: loaded.into_iter().map(|i| (i.id.clone(), i)).collect(),
                deadlines,
                taken: HashMap::new(),
            }),
            positions: Positions::default(),
            tracking: AtomicBool::new(open > 0),
            changed: watch::Sender::new(0),
            new_deadline: tokio::sync::Notify::new(),
            on_call,
            staffing: parts.staffing,
            store: Shared::new(store),
            sink: parts.sink,
            board: parts.board,
            metrics: parts.metrics,
            terminals: parts.terminals,
            radios: parts.radios,
            notes,
            notes_rx: Mutex::new(Some(rx)),
            stop: parts.stop,
        }))
    }

    /// Whether the station publishes `P/state/dispatch`: it has cars, or keeps incidents.
    pub fn in_use(&self) -> bool {
        !self.cars.is_empty() || !self.kept().is_empty()
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Incident>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open incidents and the figures, as `P/state/dispatch` and `stationd dispatch` show
    /// them.
    pub fn document(&self) -> Value {
        let incidents = self.kept();
        let now = crate::clock::unix_ms();
        // Open ones by when they were opened; then the ten cleared last, latest first.
        let mut open: Vec<&Incident> = incidents.values().filter(|i| i.open()).collect();
        open.sort_by_key(|i| i.opened_ms);
        let mut recent: Vec<&Incident> = incidents.values().filter(|i| !i.open()).collect();
        recent.sort_by_key(|i| std::cmp::Reverse(i.cleared.as_ref().map_or(0, |c| c.at_ms)));
        let open: Vec<Value> = open.into_iter().map(incident_view).collect();
        let recent: Vec<Value> = recent.into_iter().take(10).map(incident_view).collect();
        let figures = model::figures(incidents.values(), now - self.cfg.figures_window_ms);
        let (now, clock) = crate::clock::now();
        json!({
            "v": crate::event::CONTRACT_VERSION,
            "station": self.station,
            "ts": crate::event::format_ts_ms(now),
            "clock": clock.as_str(),
            "window_h": self.cfg.figures_window_ms / 3_600_000,
            "open": open,
            "recent": recent,
            "figures": figures,
        })
    }

    /// Takes the drivers' notes and raises the acknowledgement alarms, until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let Some(mut notes) = self
            .notes_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let mut next_sweep = Instant::now() + self.sweep_every();
        loop {
            let next = self.state.lock().await.deadlines.values().min().copied();
            // Asleep when no deadline is near: no wakeups on an idle station.
            // … and every minute (or a quarter of max_open_h) for forgotten incidents.
            let wake = next.map_or(next_sweep, |n| n.min(next_sweep));
            tokio::select! {
                _ = stop.cancelled() => break,
                note = notes.recv() => match note {
                    Some(n) => self.note(n).await,
                    None => break,
                },
                _ = tokio::time::sleep_until(wake) => {
                    self.deadlines().await;
                    if Instant::now() >= next_sweep {
                        self.expire().await;
                        next_sweep = Instant::now() + self.sweep_every();
                    }
                }
                _ = self.new_deadline.notified() => {}
            }
        }
    }

    /// Sends a crew: chooses it if asked to, relays the order on every path, and answers once
    /// the paths have settled and the crew acknowledged or the deadline passed.
    pub async fn send(self: &Arc<Self>, order: Order) -> crate::commands::handlers::Outcome {
        use crate::commands::handlers::Outcome;
        let key = match self.take_order(&order).await {
            Ok(k) => k,
            Err(Refusal::BadArgs(why)) => return Outcome::BadArgs(why),
            Err(Refusal::Failed(why)) => {
                return Outcome::Failed {
                    reason: why,
                    result: None,
                }
            }
        };
        // Relay on every path at once, before anything is written; each reports as it settles.
        let paths = {
            let st = self.state.lock().await;
            st.incidents[&key.0]
                .crew(&key.1)
                .map(|a| a.paths.clone())
                .unwrap_or_default()
        };
        let text = order_text(&order);
        for (index, path) in paths.into_iter().enumerate() {
            let me = self.clone();
            let key = key.clone();
            let text = text.clone();
            let priority = order.priority;
            let stop = self.stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = me.relay(key, index, path, text, priority) => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
        // Then the record (under the lock, so no later change's write is overtaken), and the
        // crew's readiness.
        {
            let st = self.state.lock().await;
            let incident = st.incidents[&key.0].clone();
            self.keep(&incident).await;
        }
        self.staffing.refresh(Vec::new()).await;
        self.board.state_changed();
        // The answer: when every path settled and the crew acknowledged, or the deadline.
        let ack_within = order.ack_within_ms.unwrap_or(self.cfg.ack_within_ms);
        let until = Instant::now() + Duration::from_millis(ack_within as u64) + ANSWER_GRACE;
        let mut changed = self.changed.subscribe();
        loop {
            {
                let st = self.state.lock().await;
                let incident = &st.incidents[&key.0];
                let a = incident.crew(&key.1).expect("taken above");
                let all_failed =
                    !a.paths.is_empty() && a.paths.iter().all(|p| p.state == PathState::Failed);
                let done = a.relay_settled()
                    && (a.acknowledged.is_some() || a.alarmed || !incident.open());
                if all_failed || done || Instant::now() >= until {
                    return answer(incident, a);
                }
                if self.stop.is_cancelled() {
                    return stopping(incident, a);
                }
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = tokio::time::sleep_until(until) => {}
                _ = self.stop.cancelled() => {}
            }
        }
    }

    /// Records the order and its crew (refused: why).
    async fn take_order(&self, order: &Order) -> Result<(String, String), Refusal> {
        let mut st = self.state.lock().await;
        if let Some(i) = st.incidents.get(&order.incident) {
            if let Some(c) = &i.cleared {
                return Err(Refusal::BadArgs(format!(
                    "incident {} was cleared ({}) at {}; use a new incident id",
                    i.id,
                    c.outcome,
                    crate::event::format_ts_ms(c.at_ms)
                )));
            }
        }
        if self.cars.is_empty() {
            return Err(Refusal::BadArgs(
                "this station has no cars ([[staffing.car]] in its config)".into(),
            ));
        }
        let now = crate::clock::unix_ms();
        let picture = self.staffing.picture();
        let (car, chosen) = match &order.crew {
            Crew::Car(car) => {
                if !self.cars.iter().any(|c| &c.id == car) {
                    return Err(Refusal::BadArgs(format!(
                        "args.car {car:?} is not a car of this station (it has: {})",
                        self.car_names()
                    )));
                }
                (car.clone(), None)
            }
            Crew::Nearest => {
                let positions = self.positions.lock();
                let candidates: Vec<Candidate> = self
                    .cars
                    .iter()
                    .map(|car| Candidate {
                        car: car.id.clone(),
                        readiness: picture
                            .crews
                            .iter()
                            .find(|c| c.car == car.id)
                            .map_or("no_crew".into(), |c| c.readiness.name().to_string()),
                        position: std::iter::once(&car.tracker)
                            .chain(car.radio.as_ref())
                            .filter_map(|d| positions.get(d).copied())
                            .max_by_key(|p| p.2),
                    })
                    .collect();
                drop(positions);
                match nearest(
                    &candidates,
                    (order.lat, order.lon),
                    now,
                    self.cfg.position_max_age_ms,
                ) {
                    Choice::Chosen { car, reason, .. } => (car, Some(reason)),
                    Choice::Nobody { reason } => {
                        return Err(Refusal::Failed(format!("no ready crew to send: {reason}")))
                    }
                }
            }
        };
        if st
            .incidents
            .get(&order.incident)
            .is_some_and(|i| i.crew(&car).is_some())
        {
            return Err(Refusal::BadArgs(format!(
                "{car} is already sent to incident {}",
                order.incident
            )));
        }
        let car_cfg = self
            .cars
            .iter()
            .find(|c| c.id == car)
            .expect("a car of the station")
            .clone();
        let members: Vec<String> = picture
            .crews
            .iter()
            .find(|c| c.car == car)
            .map(|c| c.members.iter().map(|m| m.id.clone()).collect())
            .unwrap_or_default();
        let (paths, devices) = self.paths_of(&car_cfg, &members, now);
        let ack_within = order.ack_within_ms.unwrap_or(self.cfg.ack_within_ms);
        let assignment = Assignment {
            car: car.clone(),
            ordered_ms: now,
            ack_deadline_ms: now + ack_within,
            chosen,
            shift: picture.shift.as_ref().map(|s| s.on_duty.join("+")),
            members,
            devices,
            paths,
            acknowledged: None,
            alarmed: false,
            approach: Approach::new((order.lat, order.lon), now, self.cfg.arrival),
            arrived: None,
            ordered_synced: crate::clock::now().1 == crate::event::ClockQuality::Synced,
            unsynced_positions: false,
        };
        let incident = st
            .incidents
            .entry(order.incident.clone())
            .or_insert_with(|| Incident {
                id: order.incident.clone(),
                priority: order.priority,
                kind: order.kind.clone(),
                summary: order.summary.clone(),
                lat: order.lat,
                lon: order.lon,
                address: order.address.clone(),
                opened_ms: now,
                crews: Vec::new(),
                cleared: None,
            });
        incident.crews.push(assignment);
        let key = (order.incident.clone(), car.clone());
        let mono = Instant::now();
        st.deadlines
            .insert(key.clone(), mono + Duration::from_millis(ack_within as u64));
        st.taken.insert(key.clone(), mono);
        self.new_deadline.notify_one();
        self.on_call.set(&car, &order.incident, true);
        self.tracking.store(true, Ordering::Relaxed);
        metrics::inc(&self.metrics.counter("dispatch.orders", ""));
        // Stored once the relay is under way (`send`): the order reaches the crew first.
        let incident = st.incidents[&key.0].clone();
        let a = incident.crew(&car).expect("just added");
        tracing::info!(event = "dispatch.ordered", incident = %incident.id, car = %car, priority = incident.priority, chosen = ?a.chosen, paths = a.paths.len(), "crew sent");
        let mut data = incident_head(&incident);
        data["crew"] = a.view();
        self.emit("dispatch.ordered", Priority::Event, data).await;
        Ok(key)
    }

    /// The ways to reach `car`'s crew: the car's terminal, the car's radio, each member's
    /// handheld; and the devices that speak for the crew.
    fn paths_of(
        &self,
        car: &crate::config::Car,
        members: &[String],
        now: i64,
    ) -> (Vec<RelayPath>, Vec<String>) {
        let path = |via: &str, to: &str, device: &str| RelayPath {
            via: via.into(),
            to: to.into(),
            device: device.into(),
            state: PathState::Sending,
            at_ms: now,
            detail: String::new(),
        };
        let mut paths = vec![path("terminal", &car.id, &car.tracker)];
        let mut devices = vec![car.tracker.clone()];
        let known = self.radios.known();
        if let Some(radio) = &car.radio {
            devices.push(radio.clone());
            match known.iter().find(|k| &k.device == radio) {
                Some(k) => paths.push(path("radio", &k.issi, radio)),
                None => {
                    let mut p = path("radio", "", radio);
                    p.state = PathState::Failed;
                    p.detail = format!(
                        "no base radio's `radios` table names {radio}: its ISSI is unknown"
                    );
                    paths.push(p);
                }
            }
        }
        for k in known
            .iter()
            .filter(|k| k.officer.as_ref().is_some_and(|o| members.contains(o)))
        {
            if !devices.contains(&k.device) {
                devices.push(k.device.clone());
                paths.push(path("radio", &k.issi, &k.device));
            }
        }
        (paths, devices)
    }

    /// Relays the order on one path and records its outcome.
    async fn relay(
        self: Arc<Self>,
        key: (String, String),
        index: usize,
        path: RelayPath,
        text: String,
        priority: u8,
    ) {
        if path.state.settled() {
            self.path_settled(&key, index, path.state, path.detail)
                .await;
            return;
        }
        let (state, detail) = match path.via.as_str() {
            "terminal" => self.relay_terminal(&path.device, &text, priority).await,
            _ => self.relay_radio(&key, index, &path, &text).await,
        };
        self.path_settled(&key, index, state, detail).await;
    }

    /// The order as a 0x8300 text on the car terminal `tracker` (the JT/T 808 driver's
    /// `CarLinks::send_text`, as `jt808.text` sends it).
    async fn relay_terminal(&self, tracker: &str, text: &str, priority: u8) -> (PathState, String) {
        let mut flags = FLAG_DISPLAY | FLAG_TTS;
        if priority == 1 {
            flags |= FLAG_EMERGENCY;
        }
        let text = fit_gbk(text, crate::drivers::jt808::text::MAX_TEXT_BYTES);
        match self.terminals.send_text(tracker, flags, text).await {
            Ok(0) => (
                PathState::Delivered,
                "the terminal answered 0x0001 success".into(),
            ),
            Ok(code) => (
                PathState::Failed,
                format!("the terminal answered result {code}"),
            ),
            Err(why) => (PathState::Failed, why),
        }
    }

    async fn relay_radio(
        &self,
        key: &(String, String),
        index: usize,
        path: &RelayPath,
        text: &str,
    ) -> (PathState, String) {
        use crate::drivers::tetra::text::{ACCEPT_TIMEOUT, REPORT_TIMEOUT};
        let base = self
            .radios
            .known()
            .into_iter()
            .find(|k| k.device == path.device)
            .map(|k| k.base);
        let (radio, link) = match self.radios.get(base.as_deref()) {
            Ok(l) => l,
            Err(why) => return (PathState::Failed, why),
        };
        let (accepted_tx, accepted) = oneshot::channel();
        let (delivered_tx, delivered) = oneshot::channel();
        let request = SendRequest {
            to: path.to.clone(),
            text: fit_sds(text),
            report: true,
            accepted: accepted_tx,
            delivered: Some(delivered_tx),
        };
        if link.send(request).await.is_err() {
            return (PathState::Failed, format!("base radio {radio} is stopping"));
        }
        match tokio::time::timeout(ACCEPT_TIMEOUT, accepted).await {
            Ok(Ok(Ok(a))) => {
                let detail = format!("{radio} took it (reference {})", a.reference);
                self.path_progress(key, index, detail).await;
            }
            Ok(Ok(Err(why))) => return (PathState::Failed, format!("{radio}: {why}")),
            Ok(Err(_)) => return (PathState::Failed, format!("{radio} dropped the message")),
            Err(_) => {
                return (
                    PathState::Failed,
                    format!(
                        "{radio} did not take the message within {} s",
                        ACCEPT_TIMEOUT.as_secs()
                    ),
                )
            }
        }
        match tokio::time::timeout(REPORT_TIMEOUT, delivered).await {
            Ok(Ok(status)) => match stationd_proto::tetra::sds::delivered(status) {
                Some(false) => (
                    PathState::Failed,
                    format!("not delivered (delivery status 0x{status:02X})"),
                ),
                _ => (
                    PathState::Delivered,
                    format!("delivery report 0x{status:02X}"),
                ),
            },
            Ok(Err(_)) => (
                PathState::Sent,
                "the radio's port closed before a delivery report".into(),
            ),
            Err(_) => (
                PathState::Sent,
                format!("no delivery report within {} s", REPORT_TIMEOUT.as_secs()),
            ),
        }
    }

    /// A path moved on but is not settled: the radio took the message, its delivery report
    /// is awaited (and the command's answer with it).
    async fn path_progress(&self, key: &(String, String), index: usize, detail: String) {
        let mut st = self.state.lock().await;
        if let Some(p) = st
            .incidents
            .get_mut(&key.0)
            .and_then(|i| i.crew_mut(&key.1))
            .and_then(|a| a.paths.get_mut(index))
        {
            p.detail = detail;
        }
    }

    /// A path's outcome: recorded, published, and (with `ack_on_delivery`) an acknowledgement.
    async fn path_settled(
        &self,
        key: &(String, String),
        index: usize,
        state: PathState,
        detail: String,
    ) {
        let mut st = self.state.lock().await;
        let now = self.now_for(&st, key);
        let Some(incident) = st.incidents.get_mut(&key.0) else {
            return;
        };
        let Some(a) = incident.crew_mut(&key.1) else {
            return;
        };
        let Some(p) = a.paths.get_mut(index) else {
            return;
        };
        p.state = state;
        p.detail = detail;
        p.at_ms = now;
        let path = p.clone();
        let mut acked = None;
        if state == PathState::Delivered && self.cfg.ack_on_delivery && a.acknowledged.is_none() {
            let device = if path.via == "terminal" {
                &path.to
            } else {
                &path.device
            };
            acked = Some(format!("{} {device} (delivery)", path.via));
        }
        if state == PathState::Failed {
            metrics::inc(&self.metrics.counter("dispatch.paths_failed", ""));
            tracing::warn!(event = "dispatch.path_failed", incident = %key.0, car = %key.1, via = %path.via, to = %path.to, detail = %path.detail, "an order did not reach the crew on this path");
        }
        let mut data = json!({"incident": key.0, "car": key.1});
        if let (Value::Object(d), Value::Object(p)) = (&mut data, path.view()) {
            d.extend(p);
        }
        self.emit("dispatch.relayed", Priority::Event, data).await;
        if let Some(by) = acked {
            self.acknowledge(&mut st, key, by).await;
        }
        // Stored under the lock: a later change's write cannot be overtaken by this one.
        let incident = st.incidents[&key.0].clone();
        self.keep(&incident).await;
        drop(st);
        self.touched();
    }

    /// The wall-clock time now for the order `key`, read as its order time plus the monotonic
    /// time since, where this process took the order.
    fn now_for(&self, st: &State, key: &(String, String)) -> i64 {
        let ordered = st
            .incidents
            .get(&key.0)
            .and_then(|i| i.crew(&key.1))
            .map(|a| a.ordered_ms);
        match (st.taken.get(key), ordered) {
            (Some(then), Some(ordered_ms)) => ordered_ms + then.elapsed().as_millis() as i64,
            _ => crate::clock::unix_ms(),
        }
    }

    /// The crew of `key` acknowledged (first time only); the event is queued.
    async fn acknowledge(&self, st: &mut State, key: &(String, String), by: String) {
        let now = self.now_for(st, key);
        let Some(a) = st
            .incidents
            .get_mut(&key.0)
            .and_then(|i| i.crew_mut(&key.1))
        else {
            return;
        };
        if a.acknowledged.is_some() {
            return;
        }
        a.acknowledged = Some(Ack {
            at_ms: now,
            by: by.clone(),
        });
        let late = a.alarmed;
        let after_ms = now - a.ordered_ms;
        st.deadlines.remove(key);
        metrics::inc(&self.metrics.counter("dispatch.acknowledged", ""));
        tracing::info!(event = "dispatch.acknowledged", incident = %key.0, car = %key.1, by = %by, after_ms, late, "the crew acknowledged");
        self.emit(
            "dispatch.acknowledged",
            Priority::Event,
            json!({"incident": key.0, "car": key.1, "by": by, "after_ms": after_ms, "late": late}),
        )
        .await;
        self.touched();
    }

    fn sweep_every(&self) -> Duration {
        Duration::from_millis((self.cfg.max_open_ms as u64 / 4).clamp(250, 60_000))
    }

    /// Incidents open longer than `max_open_h`: cleared as `expired`, their crews stood down.
    async fn expire(&self) {
        let now = crate::clock::unix_ms();
        let old: Vec<String> = {
            let st = self.state.lock().await;
            model::expired(st.incidents.values(), now, self.cfg.max_open_ms)
        };
        for id in old {
            let hours = self.cfg.max_open_ms as f64 / 3_600_000.0;
            tracing::warn!(event = "dispatch.expired", incident = %id, max_open_h = hours, "an incident nobody cleared is cleared by the station; its crews are stood down");
            let _ = self
                .clear(
                    &id,
                    "expired",
                    None,
                    format!("station: open longer than {hours} h"),
                )
                .await;
        }
    }

    /// Deadlines that passed: the alarm, once per crew.
    async fn deadlines(&self) {
        let mut st = self.state.lock().await;
        let now = Instant::now();
        let due: Vec<(String, String)> = st
            .deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            st.deadlines.remove(&key);
            let Some(incident) = st.incidents.get_mut(&key.0).filter(|i| i.open()) else {
                continue;
            };
            let head = incident_head(incident);
            let Some(a) = incident.crew_mut(&key.1) else {
                continue;
            };
            if a.acknowledged.is_some() {
                continue;
            }
            a.alarmed = true;
            let mut data = head;
            data["crew"] = a.view();
            let reached: Vec<String> = a
                .paths
                .iter()
                .filter(|p| p.state == PathState::Delivered)
                .map(|p| format!("{} {}", p.via, p.to))
                .collect();
            data["delivered_to"] = reached.clone().into();
            let incident = st.incidents[&key.0].clone();
            metrics::inc(&self.metrics.counter("dispatch.unacknowledged", ""));
            tracing::warn!(event = "dispatch.unacknowledged", incident = %key.0, car = %key.1, delivered_to = ?reached, "ALARM: the crew did not acknowledge the order in time");
            self.keep(&incident).await;
            self.emit("dispatch.unacknowledged", Priority::Alarm, data)
                .await;
        }
        drop(st);
        self.touched();
    }

    /// A position or a status from a driver.
    async fn note(&self, note: Note) {
        let mut st = self.state.lock().await;
        match note {
            Note::Position {
                device,
                lat,
                lon,
                at_ms,
                synced,
            } => {
                let mut arrivals = Vec::new();
                for i in st.incidents.values_mut().filter(|i| i.open()) {
                    let head = incident_head(i);
                    for a in i.crews.iter_mut().filter(|a| a.arrived.is_none()) {
                        if !a.devices.contains(&device) {
                            continue;
                        }
                        if !synced && at_ms >= a.ordered_ms {
                            a.unsynced_positions = true;
                        }
                        if let Some(arrived) = a.approach.position(lat, lon, at_ms) {
                            a.arrived = Some(arrived);
                            let mut data = head.clone();
                            data["car"] = a.car.clone().into();
                            data["by"] = device.clone().into();
                            if let (Value::Object(d), Value::Object(v)) =
                                (&mut data, model::arrived_view(arrived, a.response_clock()))
                            {
                                d.extend(v);
                            }
                            arrivals.push((i.id.clone(), a.car.clone(), data));
                        }
                    }
                }
                for (incident, car, data) in arrivals {
                    metrics::inc(&self.metrics.counter("dispatch.arrivals", ""));
                    tracing::info!(event = "dispatch.arrived", incident = %incident, car = %car, response_s = data["response_s"].as_f64(), driven_m = data["driven_m"].as_f64(), "the crew arrived");
                    let kept = st.incidents[&incident].clone();
                    self.keep(&kept).await;
                    self.emit("dispatch.arrived", Priority::Event, data).await;
                    self.board.state_changed();
                }
            }
            Note::Crew {
                device,
                officer,
                car,
                ack,
                by,
            } => {
                // The open incidents whose crew this device speaks for, newest order first.
                let mut of_crew: Vec<(i64, String, String)> = st
                    .incidents
                    .values()
                    .filter(|i| i.open())
                    .flat_map(|i| {
                        i.crews
                            .iter()
                            .filter(|a| {
                                a.devices.contains(&device)
                                    || car.as_ref() == Some(&a.car)
                                    || officer.as_ref().is_some_and(|o| a.members.contains(o))
                            })
                            .map(|a| (a.ordered_ms, i.id.clone(), a.car.clone()))
                    })
                    .collect();
                of_crew.sort();
                let Some((_, incident, car)) = of_crew.pop() else {
                    tracing::info!(event = "dispatch.status_unmatched", device = %device, by = %by, "an acknowledgement or clearing from a device of no crew on an incident");
                    return;
                };
                let key = (incident.clone(), car.clone());
                if ack {
                    self.acknowledge(&mut st, &key, by).await;
                    let kept = st.incidents[&incident].clone();
                    self.keep(&kept).await;
                } else {
                    // Closing the call also acknowledges, if nothing had.
                    self.acknowledge(&mut st, &key, by.clone()).await;
                    drop(st);
                    let _ = self.clear(&incident, "closed", Some(car), by).await;
                }
            }
        }
    }

    /// Clears `incident`: its crews are stood down. Returns the cleared incident's view.
    pub async fn clear(
        &self,
        incident: &str,
        outcome: &str,
        closed_by: Option<String>,
        by: String,
    ) -> Result<Value, DispatchError> {
        let mut st = self.state.lock().await;
        let Some(i) = st.incidents.get_mut(incident) else {
            return Err(DispatchError::Invalid(format!(
                "incident {incident:?} is not one this station was sent to"
            )));
        };
        if let Some(c) = &i.cleared {
            return Err(DispatchError::Invalid(format!(
                "incident {incident} was already cleared ({}) at {}",
                c.outcome,
                crate::event::format_ts_ms(c.at_ms)
            )));
        }
        if let Some(car) = &closed_by {
            if i.crew(car).is_none() {
                return Err(DispatchError::Invalid(format!(
                    "{car} was not sent to incident {incident} (sent: {})",
                    i.crews
                        .iter()
                        .map(|a| a.car.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let closed_by = match outcome {
            "closed" => closed_by.or_else(|| i.crews.first().map(|a| a.car.clone())),
            _ => None,
        };
        let now = crate::clock::unix_ms();
        i.cleared = Some(Cleared {
            at_ms: now,
            outcome: outcome.to_string(),
            closed_by: closed_by.clone(),
            by: by.clone(),
        });
        let kept = i.clone();
        for a in &kept.crews {
            self.on_call.set(&a.car, &kept.id, false);
            st.deadlines.remove(&(kept.id.clone(), a.car.clone()));
            st.taken.remove(&(kept.id.clone(), a.car.clone()));
        }
        let open = st.incidents.values().any(|i| i.open());
        self.tracking.store(open, Ordering::Relaxed);
        self.keep(&kept).await;
        drop(st);
        let keep_ms = self.cfg.keep_ms;
        let recent = |i: &Incident| i.cleared.as_ref().is_none_or(|c| c.at_ms >= now - keep_ms);
        self.kept().retain(|_, i| recent(i));
        self.state.lock().await.incidents.retain(|_, i| recent(i));
        if let Err(e) = self.store.run(move |s| s.prune(now - keep_ms)).await {
            tracing::warn!(event = "dispatch.store_failed", error = %e, "cannot drop old incidents from dispatch.db");
        }
        metrics::inc(&self.metrics.counter("dispatch.cleared", ""));
        tracing::info!(event = "dispatch.cleared", incident = %kept.id, outcome, closed_by = ?closed_by, by = %by, "incident cleared; its crews are stood down");
        let mut data = incident_head(&kept);
        data["outcome"] = outcome.into();
        data["closed_by"] = closed_by.into();
        data["by"] = by.into();
        data["first_crew"] = kept.crews.first().map(|a| a.car.clone()).into();
        data["closed_by_first_crew"] = kept.closed_by_first_crew().into();
        data["response_ms"] = kept.first_arrival().map(|a| a.response_ms).into();
        data["open_ms"] = (now - kept.opened_ms).into();
        self.emit("dispatch.cleared", Priority::Event, data.clone())
            .await;
        self.touched();
        self.staffing.refresh(Vec::new()).await;
        self.board.state_changed();
        Ok(incident_view(&kept))
    }

    /// An assignment changed: the command's answer looks again, `P/state/dispatch` is due.
    fn touched(&self) {
        self.changed.send_modify(|v| *v += 1);
        self.board.state_changed();
    }

    fn car_names(&self) -> String {
        self.cars
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Stores `incident` (and shows it to the views). Called with the state lock held, so
    /// writes happen in the order of the changes.
    async fn keep(&self, incident: &Incident) {
        self.kept().insert(incident.id.clone(), incident.clone());
        let i = incident.clone();
        if let Err(e) = self.store.run(move |s| s.put(&i)).await {
            metrics::inc(&self.metrics.counter("dispatch.store_failed", ""));
            tracing::error!(event = "dispatch.store_failed", incident = %incident.id, error = %e, "cannot store an incident (kept in memory; the events still went out)");
        }
    }

    async fn emit(&self, kind: &str, prio: Priority, data: Value) {
        let ev = Event::new(DEVICE, kind, prio, crate::clock::now(), false, data);
        let _ = self.sink.send(ev).await;
    }
}

enum Refusal {
    BadArgs(String),
    Failed(String),
}

impl crate::drivers::EventWatcher for Dispatch {
    fn watch(&self, driver: &'static str, ev: &Event) {
        #[derive(serde::Deserialize)]
        struct Status {
            status: u16,
            officer: Option<String>,
            car: Option<String>,
        }
        let note = match ev.kind.as_str() {
            // Positions only from the drivers that make them (a local input's are not a car's).
            "position" if matches!(driver, "nmea" | "jt808" | "tetra") => {
                let Some((lat, lon)) = self.positions.take(ev) else {
                    return;
                };
                if !self.tracking.load(Ordering::Relaxed) {
                    return;
                }
                Note::Position {
                    device: ev.device.clone(),
                    lat,
                    lon,
                    at_ms: ev.ts_ms,
                    synced: ev.clock == crate::event::ClockQuality::Synced,
                }
            }
            "radio.status" if driver == "tetra" && self.tracking.load(Ordering::Relaxed) => {
                let Ok(s) = serde_json::from_str::<Status>(ev.data.get()) else {
                    return;
                };
                let ack = self.cfg.ack_statuses.contains(&s.status);
                if !ack && !self.cfg.clear_statuses.contains(&s.status) {
                    return;
                }
                Note::Crew {
                    device: ev.device.clone(),
                    officer: s.officer,
                    car: s.car,
                    ack,
                    by: format!("radio {} status 0x{:04X}", ev.device, s.status),
                }
            }
            "jt808.event_report" if driver == "jt808" && self.tracking.load(Ordering::Relaxed) => {
                #[derive(serde::Deserialize)]
                struct Pressed {
                    event_id: u8,
                }
                let Ok(p) = serde_json::from_str::<Pressed>(ev.data.get()) else {
                    return;
                };
                let ack = self.cfg.terminal_ack_events.contains(&p.event_id);
                if !ack && !self.cfg.terminal_clear_events.contains(&p.event_id) {
                    return;
                }
                Note::Crew {
                    device: ev.device.clone(),
                    officer: None,
                    car: None,
                    ack,
                    by: format!("terminal {} event {}", ev.device, p.event_id),
                }
            }
            _ => return,
        };
        if self.notes.try_send(note).is_err() {
            metrics::inc(&self.metrics.counter("dispatch.notes_dropped", ""));
        }
    }
}

/// Devices whose latest position is kept (the station's own are a few dozen).
const MAX_POSITIONS: usize = 10_000;

/// The latest position of each device, as the drivers' `position` events give them (the
/// dispatch watcher's work on every position: parse two fields, keep the newer).
#[derive(Default)]
pub struct Positions(Mutex<HashMap<String, (f64, f64, i64)>>);

impl Positions {
    /// Takes `ev` (a `position` event): its (lat, lon) when it reads, kept if it is the
    /// device's newest.
    pub fn take(&self, ev: &Event) -> Option<(f64, f64)> {
        #[derive(serde::Deserialize)]
        struct Fix {
            lat: f64,
            lon: f64,
        }
        let fix = serde_json::from_str::<Fix>(ev.data.get()).ok()?;
        let mut positions = self.lock();
        let room = positions.len() < MAX_POSITIONS;
        match positions.get_mut(ev.device.as_str()) {
            Some(p) if p.2 <= ev.ts_ms => *p = (fix.lat, fix.lon, ev.ts_ms),
            Some(_) => {}
            // Bounded: a base radio may hear a whole city's handhelds.
            None if room => {
                positions.insert(ev.device.clone(), (fix.lat, fix.lon, ev.ts_ms));
            }
            None => {}
        }
        Some((fix.lat, fix.lon))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (f64, f64, i64)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The command's answer for one crew.
fn answer(incident: &Incident, a: &Assignment) -> crate::commands::handlers::Outcome {
    use crate::commands::handlers::Outcome;
    let mut result = incident_head(incident);
    result["crew"] = a.view();
    if a.paths.is_empty() || a.paths.iter().all(|p| p.state == PathState::Failed) {
        let why: Vec<String> = a
            .paths
            .iter()
            .map(|p| {
                format!(
                    "{} {}: {}",
                    p.via,
                    if p.to.is_empty() { &p.device } else { &p.to },
                    p.detail
                )
            })
            .collect();
        return Outcome::Failed {
            reason: format!(
                "the order reached no one of {}'s crew: {}",
                a.car,
                why.join("; ")
            ),
            result: Some(result),
        };
    }
    Outcome::Done(result)
}

/// The answer when the station stops before the outcome is known.
fn stopping(incident: &Incident, a: &Assignment) -> crate::commands::handlers::Outcome {
    let mut result = incident_head(incident);
    result["crew"] = a.view();
    crate::commands::handlers::Outcome::Failed {
        reason: "the station stopped before the crew acknowledged; the incident is kept and followed after the restart (dispatch.* events)".into(),
        result: Some(result),
    }
}

/// What every dispatch event says of the incident.
fn incident_head(i: &Incident) -> Value {
    json!({
        "incident": i.id,
        "priority": i.priority,
        "type": i.kind,
        "summary": i.summary,
        "location": {"lat": i.lat, "lon": i.lon, "address": i.address},
        "opened": crate::event::format_ts_ms(i.opened_ms),
        "open": i.open(),
    })
}

/// An incident as the state and the CLI show it.
fn incident_view(i: &Incident) -> Value {
    let mut v = incident_head(i);
    v["crews"] = i
        .crews
        .iter()
        .map(Assignment::view)
        .collect::<Vec<_>>()
        .into();
    v["cleared"] = i
        .cleared
        .as_ref()
        .map(|c| {
            json!({"at": crate::event::format_ts_ms(c.at_ms), "outcome": c.outcome,
                   "closed_by": c.closed_by, "by": c.by})
        })
        .into();
    v["response_ms"] = i.first_arrival().map(|a| a.response_ms).into();
    v
}

/// The order as the crew reads and hears it.
fn order_text(o: &Order) -> String {
    let mut t = format!("P{} {} {}", o.priority, o.incident, o.kind);
    if !o.address.is_empty() {
        t.push_str(&format!(" @ {}", o.address));
    }
    if !o.summary.is_empty() {
        t.push_str(&format!(": {}", o.summary));
    }
    t
}

/// `text` cut to fit `max` bytes of GBK (the terminal's encoding).
fn fit_gbk(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        out.push(c);
        if encoding_rs::GBK.encode(&out).0.len() > max {
            out.pop();
            break;
        }
    }
    out
}

/// `text` cut to one SDS: 251 Latin-1 or 125 other characters, nothing beyond UCS-2.
fn fit_sds(text: &str) -> String {
    let chars: Vec<char> = text.chars().filter(|c| u32::from(*c) <= 0xFFFF).collect();
    let max = if chars.iter().all(|c| u32::from(*c) <= 0xFF) {
        crate::drivers::tetra::text::MAX_TEXT_BYTES
    } else {
        crate::drivers::tetra::text::MAX_TEXT_BYTES / 2
    };
    chars.into_iter().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_cut_to_what_each_path_carries() {
        let long = "很".repeat(600);
        assert_eq!(encoding_rs::GBK.encode(&fit_gbk(&long, 1000)).0.len(), 1000);
        assert_eq!(fit_sds(&long).chars().count(), 125);
        assert_eq!(fit_sds(&"a".repeat(300)).len(), 251);
        assert_eq!(fit_sds("到场🚓"), "到场");
        let o = Order {
            incident: "J-1".into(),
            priority: 1,
            kind: "dispute".into(),
            summary: "两人争吵".into(),
            lat: 0.0,
            lon: 0.0,
            address: "文化路口".into(),
            crew: Crew::Nearest,
            ack_within_ms: None,
        };
        assert_eq!(order_text(&o), "P1 J-1 dispute @ 文化路口: 两人争吵");
    }

    #[test]
    fn a_car_is_on_call_while_any_incident_holds_it() {
        let c = OnCall::default();
        c.set("car-01", "J-1", true);
        c.set("car-01", "J-2", true);
        c.set("car-01", "J-1", false);
        assert!(c.contains("car-01"));
        c.set("car-01", "J-2", false);
        assert!(!c.contains("car-01") && !c.contains("car-02"));
    }
}
