//! Staffing: who is on duty, who is present and by which signal, which crews are ready.
//!
//! Central's "nearest free car" needs cars that are crewed and able to go. The station box
//! already hears the signals that say who is at work — recorders taken from the dock, handheld
//! radios talking, drivers' IC cards at the car terminals, the station's sign-in system — so
//! this service reads them off the drivers' events ([`signals`], through the
//! [`EventWatcher`](crate::drivers::EventWatcher) every device sink calls), keeps the roster,
//! presence, crews and overrides in `staffing.db` ([`store`]), and computes the picture
//! ([`model`]): the rotation's teams now, each person, each crew's readiness with its reason and
//! since when. Every change becomes a `staffing.changed` event (so central's history is whole
//! across outages) and `P/state/staffing` is republished (rate-limited by the uplink); names
//! stay on the box unless `[staffing] share_names` says otherwise ([`payload`]).
//!
//! Changes by people come three ways, all through [`Staffing`]'s methods: central's signed
//! commands ([`commands`]), the technician's CLI over the control socket, and config (the
//! standing crews).

pub mod commands;
pub mod model;
pub mod payload;
pub mod roster;
pub mod signals;
pub mod store;

use crate::board::Board;
use crate::config::Staffing as StaffingConfig;
use crate::event::Event;
use crate::metrics::{self, Metrics};
use crate::outbox::EventSink;
use crate::side_store::{Shared, Since};
use model::{Change, Model, Override, OverrideKind, Picture};
use roster::Person;
use signals::{Observation, Who};
use stationd_proto::staffing::presence::{Signal, Source};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::StaffingStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Device id of the `staffing.changed` events.
pub const DEVICE: &str = "staffing";
/// Signals waiting for the service; beyond it they are dropped and counted.
const QUEUE: usize = 1024;
/// How often the picture is recomputed without a signal: a shift turning, a presence
/// expiring, a car's tracker going quiet.
const REFRESH: Duration = Duration::from_secs(5);

/// What the drivers' events hand the service.
#[derive(Debug)]
pub enum Note {
    Signal(Observation),
    /// A car's tracker or radio said something: its readiness may have changed.
    Device,
}

/// The station's staffing, one per daemon.
pub struct Staffing {
    station: String,
    cfg: Option<StaffingConfig>,
    state: tokio::sync::Mutex<State>,
    latest: Mutex<Arc<Picture>>,
    store: Shared<StaffingStore>,
    sink: EventSink,
    board: Arc<Board>,
    metrics: Arc<Metrics>,
    car_faults: Arc<crate::equipment::CarFaults>,
    /// The cars whose crews dispatch has sent and not yet stood down.
    on_call: Arc<crate::dispatch::OnCall>,
    notes: mpsc::Sender<Note>,
    /// The cars' trackers and radios.
    watched: BTreeSet<String>,
}

struct State {
    model: Model,
    picture: Arc<Picture>,
    /// Since when each crew has been in its readiness, as stored.
    readiness: Since,
}

/// Why a change asked of the service was refused (the command's `refused`, the CLI's error).
#[derive(Debug, thiserror::Error)]
pub enum StaffingError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The device board (and the register's car faults, and the cars sent to incidents) as the
/// picture reads them.
struct BoardDevices(
    Vec<(String, crate::board::DeviceState)>,
    Arc<crate::equipment::CarFaults>,
    Arc<crate::dispatch::OnCall>,
);

impl model::Devices for BoardDevices {
    fn car_fault(&self, car: &str) -> bool {
        self.1.get(car).is_some()
    }
    fn on_call(&self, car: &str) -> bool {
        self.2.contains(car)
    }
    fn online(&self, device: &str) -> bool {
        self.0
            .iter()
            .any(|(id, d)| id == device && d.state == "online")
    }
    fn heard_within(&self, device: &str, within_ms: i64, now_ms: i64) -> bool {
        self.0.iter().any(|(id, d)| {
            id == device
                && (d.state == "online"
                    || d.last_seen_ms
                        .is_some_and(|t| now_ms.saturating_sub(t) <= within_ms))
        })
    }
}

impl Staffing {
    /// Opens `staffing.db` beside the outbox and computes the picture it holds. The receiver
    /// goes to [`Staffing::run`].
    pub fn open(
        station: &str,
        cfg: Option<StaffingConfig>,
        outbox: &std::path::Path,
        sink: EventSink,
        board: Arc<Board>,
        metrics: Arc<Metrics>,
        car_faults: Arc<crate::equipment::CarFaults>,
    ) -> Result<(Arc<Staffing>, mpsc::Receiver<Note>), store::StoreError> {
        let store = StaffingStore::open(&store::store_path(outbox))?;
        let loaded = store.load()?;
        let mut model = Model {
            roster: loaded.roster,
            overrides: loaded.overrides,
            ..Default::default()
        };
        for s in loaded.signals {
            model.presence.observe(s);
        }
        for c in loaded.crews {
            model.crews.insert(c.car.clone(), c);
        }
        // Standing crews from config, where nothing else formed one.
        let now = crate::clock::unix_ms();
        for car in cfg.iter().flat_map(|c| &c.cars) {
            if !model.crews.contains_key(&car.id) {
                model.set_crew(&car.id, car.crew.clone(), "config", now);
            }
        }
        let readiness = Since::from_rows(loaded.readiness);
        let on_call = Arc::new(crate::dispatch::OnCall::default());
        let watched = cfg
            .iter()
            .flat_map(|c| &c.cars)
            .flat_map(|c| std::iter::once(c.tracker.clone()).chain(c.radio.clone()))
            .collect();
        let picture = Arc::new(model.picture(
            cfg.as_ref(),
            &BoardDevices(board.snapshot(), car_faults.clone(), on_call.clone()),
            now,
            &readiness,
        ));
        let (notes, rx) = mpsc::channel(QUEUE);
        Ok((
            Arc::new(Staffing {
                station: station.to_string(),
                cfg,
                state: tokio::sync::Mutex::new(State {
                    model,
                    picture: picture.clone(),
                    readiness,
                }),
                latest: Mutex::new(picture),
                store: Shared::new(store),
                sink,
                board,
                metrics,
                car_faults,
                on_call,
                notes,
                watched,
            }),
            rx,
        ))
    }

    /// Whether the station publishes `P/state/staffing`: it has a rotation, a roster or crews.
    /// (People heard on radios of a station that keeps none of these are held, not published.)
    pub fn in_use(&self) -> bool {
        let p = self.picture();
        self.cfg.is_some() || p.people.iter().any(|x| x.role.is_some()) || !p.crews.is_empty()
    }

    /// The cars on call, which dispatch fills and staffing's readiness reads.
    pub fn on_call(&self) -> Arc<crate::dispatch::OnCall> {
        self.on_call.clone()
    }

    pub fn config(&self) -> Option<&StaffingConfig> {
        self.cfg.as_ref()
    }

    pub fn station(&self) -> &str {
        &self.station
    }

    /// The latest picture.
    pub fn picture(&self) -> Arc<Picture> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The overrides held (current and future).
    pub async fn overrides(&self) -> Vec<Override> {
        self.state.lock().await.model.overrides.clone()
    }

    /// Takes the drivers' notes and refreshes the picture every few seconds, until `stop`.
    pub async fn run(self: Arc<Self>, mut notes: mpsc::Receiver<Note>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                note = notes.recv() => match note {
                    Some(Note::Signal(o)) => self.observe(o).await,
                    Some(Note::Device) => self.refresh(Vec::new()).await,
                    None => break,
                },
                _ = tick.tick() => self.refresh(Vec::new()).await,
            }
        }
    }

    /// A signal from a driver's event.
    async fn observe(&self, o: Observation) {
        let mut st = self.state.lock().await;
        let person = match &o.who {
            Who::Person(p) => p.clone(),
            Who::Card(card) => match st.model.by_card(card) {
                Some(p) => p.id.clone(),
                None => {
                    metrics::inc(&self.metrics.counter("staffing.unknown_cards", ""));
                    tracing::warn!(event = "staffing.unknown_card", certificate = %card, car = ?o.car, "a driver's IC card that no one on the roster holds (add its certificate as the person's `card`)");
                    return;
                }
            },
        };
        // Someone not on the roster is shown (role unknown) only while no roster is kept, and
        // only so many: a local input cannot grow the picture without bound.
        let on_roster = st.model.person(&person).is_some();
        let room =
            st.model.roster.is_empty() && st.model.presence.people().count() < roster::MAX_PEOPLE;
        if !crate::event::is_valid_device_id(&person) || (!on_roster && !room) {
            let unknown = self.metrics.counter("staffing.unknown_people", "");
            metrics::inc(&unknown);
            let n = unknown.load(std::sync::atomic::Ordering::Relaxed);
            if n <= 10 || n.is_multiple_of(1000) {
                tracing::warn!(event = "staffing.unknown_person", person = %person, source = store::source_name(o.source), detail = %o.detail, unknown = n, "a signal about someone not on the roster was ignored (add them to the roster)");
            }
            return;
        }
        let signal = Signal {
            person: person.clone(),
            present: o.present,
            source: o.source,
            at_ms: o.at_ms,
            detail: o.detail,
        };
        self.keep_signal(&mut st, signal).await;
        if let (true, Some(car)) = (o.present, &o.car) {
            let known_car = self
                .cfg
                .as_ref()
                .is_some_and(|c| c.cars.iter().any(|k| &k.id == car));
            let formed_by = store::source_name(o.source);
            if known_car && st.model.join_heard(&person, car, formed_by, o.at_ms) {
                self.keep_crews(&st).await;
            }
        }
        self.refresh_locked(&mut st, Vec::new()).await;
    }

    async fn keep_signal(&self, st: &mut State, signal: Signal) {
        metrics::inc(&self.metrics.counter("staffing.signals", ""));
        let s = signal.clone();
        if let Err(e) = self.store.run(move |st| st.put_signal(&s)).await {
            tracing::error!(event = "staffing.store_failed", error = %e, "cannot store a presence signal (kept in memory)");
        }
        st.model.presence.observe(signal);
    }

    async fn keep_crews(&self, st: &State) {
        let crews: Vec<model::CrewEntry> = st.model.crews.values().cloned().collect();
        if let Err(e) = self
            .store
            .run(move |s| crews.iter().try_for_each(|c| s.put_crew(c)))
            .await
        {
            tracing::error!(event = "staffing.store_failed", error = %e, "cannot store the crews (kept in memory)");
        }
    }

    /// Recomputes the picture; publishes what changed.
    pub async fn refresh(&self, extra: Vec<serde_json::Value>) {
        let mut st = self.state.lock().await;
        self.refresh_locked(&mut st, extra).await;
    }

    async fn refresh_locked(&self, st: &mut State, extra: Vec<serde_json::Value>) {
        let now = crate::clock::unix_ms();
        let picture = st.model.picture(
            self.cfg.as_ref(),
            &BoardDevices(
                self.board.snapshot(),
                self.car_faults.clone(),
                self.on_call.clone(),
            ),
            now,
            &st.readiness,
        );
        let in_use =
            self.cfg.is_some() || !st.model.roster.is_empty() || !st.model.crews.is_empty();
        // A station that keeps no staffing sends none of its events.
        let changes = if in_use {
            model::diff(&st.picture, &picture)
        } else {
            Vec::new()
        };
        let mut events = extra;
        for change in &changes {
            events.push(payload::change(self, &picture, change));
        }
        // Readiness "since" survives a restart.
        let store_readiness: Vec<_> = picture
            .crews
            .iter()
            .filter_map(|c| st.readiness.of(&c.car, c.readiness.name(), c.since_ms).1)
            .collect();
        if !store_readiness.is_empty() {
            if let Err(e) = self.store.run(move |s| s.put_since(&store_readiness)).await {
                tracing::error!(event = "staffing.store_failed", error = %e, "cannot store crews' readiness (kept in memory)");
            }
        }
        for change in &changes {
            if let Change::Readiness { car, was } = change {
                if let Some(c) = picture.crews.iter().find(|c| &c.car == car) {
                    tracing::info!(event = "staffing.readiness", car = %car, readiness = c.readiness.name(), was = ?was, reason = %c.reason, "crew readiness changed");
                }
            }
        }
        let picture = Arc::new(picture);
        st.picture = picture.clone();
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = picture;
        if events.is_empty() {
            return;
        }
        if self
            .sink
            .send_own(DEVICE, "staffing.changed", events)
            .await
            .is_err()
        {
            return;
        }
        metrics::add(
            &self.metrics.counter("staffing.changes", ""),
            changes.len() as u64,
        );
        self.board.state_changed();
    }

    /// Replaces the roster (central's `roster.set`, `stationd roster import`).
    pub async fn set_roster(
        &self,
        people: Vec<Person>,
        by: &str,
    ) -> Result<serde_json::Value, StaffingError> {
        roster::check(&people, self.cfg.as_ref().map(|c| c.rotation.teams()))
            .map_err(StaffingError::Invalid)?;
        let mut st = self.state.lock().await;
        let old: BTreeSet<String> = st.model.roster.iter().map(|p| p.id.clone()).collect();
        let new: BTreeSet<String> = people.iter().map(|p| p.id.clone()).collect();
        let kept = people.clone();
        self.store.run(move |s| s.set_roster(&kept)).await?;
        let changed = people
            .iter()
            .filter(|p| old.contains(&p.id) && st.model.person(&p.id) != Some(*p))
            .count();
        st.model.roster = people;
        let added: Vec<&String> = new.difference(&old).collect();
        let removed: Vec<&String> = old.difference(&new).collect();
        let summary = serde_json::json!({
            "change": "roster",
            "people": new.len(),
            "added": added,
            "removed": removed,
            "changed": changed,
            "by": by,
        });
        tracing::info!(
            event = "staffing.roster_set",
            people = new.len(),
            added = added.len(),
            removed = removed.len(),
            changed,
            by,
            "roster replaced"
        );
        let answer = serde_json::json!({
            "people": new.len(),
            "added": added.len(),
            "removed": removed.len(),
            "changed": changed,
        });
        self.refresh_locked(&mut st, vec![summary]).await;
        Ok(answer)
    }

    /// Whether `person` may be named (on the roster, or no roster is kept).
    pub async fn knows(&self, person: &str) -> bool {
        let st = self.state.lock().await;
        st.model.roster.is_empty() || st.model.person(person).is_some()
    }

    /// Someone checked out equipment: present (by `source`: the CLI's or central's word), and
    /// for a car's kit in that car's crew, as the signals form crews.
    pub async fn checked_out(
        &self,
        person: &str,
        car: Option<&str>,
        source: Source,
        detail: String,
    ) {
        let mut st = self.state.lock().await;
        if st.model.person(person).is_none() {
            return;
        }
        let now = crate::clock::unix_ms();
        self.keep_signal(
            &mut st,
            Signal {
                person: person.to_string(),
                present: true,
                source,
                at_ms: now,
                detail,
            },
        )
        .await;
        let known_car = |c: &str| {
            self.cfg
                .as_ref()
                .is_some_and(|cfg| cfg.cars.iter().any(|k| k.id == c))
        };
        if let Some(car) = car.filter(|c| known_car(c)) {
            if st.model.join_heard(person, car, "checkout", now) {
                self.keep_crews(&st).await;
            }
        }
        self.refresh_locked(&mut st, Vec::new()).await;
    }

    /// An explicit word that `person` is on or off duty (the CLI, central's `duty.set`).
    pub async fn duty(
        &self,
        person: &str,
        present: bool,
        source: Source,
        detail: String,
    ) -> Result<model::PersonView, StaffingError> {
        let mut st = self.state.lock().await;
        if st.model.person(person).is_none() {
            return Err(StaffingError::Invalid(unknown_person(person, &st.model)));
        }
        let signal = Signal {
            person: person.to_string(),
            present,
            source,
            at_ms: crate::clock::unix_ms(),
            detail,
        };
        self.keep_signal(&mut st, signal).await;
        self.refresh_locked(&mut st, Vec::new()).await;
        Ok(st
            .picture
            .person(person)
            .cloned()
            .expect("a roster person is in the picture"))
    }

    /// Sets `car`'s crew (central's `crew.set`, `stationd crew set`); an empty list stands the
    /// crew down.
    pub async fn set_crew(
        &self,
        car: &str,
        members: Vec<String>,
        by: &str,
    ) -> Result<model::CrewView, StaffingError> {
        let known_cars: Vec<&str> = self
            .cfg
            .iter()
            .flat_map(|c| &c.cars)
            .map(|c| c.id.as_str())
            .collect();
        if !known_cars.contains(&car) {
            return Err(StaffingError::Invalid(format!(
                "no car {car:?} in [[staffing.car]]; the station's cars: {}",
                if known_cars.is_empty() {
                    "none".to_string()
                } else {
                    known_cars.join(", ")
                }
            )));
        }
        let mut st = self.state.lock().await;
        let mut seen = BTreeSet::new();
        for m in &members {
            if st.model.person(m).is_none() {
                return Err(StaffingError::Invalid(unknown_person(m, &st.model)));
            }
            if !seen.insert(m) {
                return Err(StaffingError::Invalid(format!("{m:?} listed twice")));
            }
        }
        st.model.set_crew(car, members, by, crate::clock::unix_ms());
        self.keep_crews(&st).await;
        self.refresh_locked(&mut st, Vec::new()).await;
        Ok(st
            .picture
            .crews
            .iter()
            .find(|c| c.car == car)
            .cloned()
            .expect("the crew was just set"))
    }

    /// Adds an exception to the rotation; its id.
    pub async fn add_override(&self, mut o: Override) -> Result<i64, StaffingError> {
        let mut st = self.state.lock().await;
        if st.model.person(&o.person).is_none() {
            return Err(StaffingError::Invalid(unknown_person(&o.person, &st.model)));
        }
        if o.until_ms <= o.from_ms {
            return Err(StaffingError::Invalid(
                "`until` must be after `from`".into(),
            ));
        }
        match (o.kind, &o.team) {
            (OverrideKind::Swap, None) => {
                return Err(StaffingError::Invalid(
                    "a swap names the team the person works with (`team`)".into(),
                ))
            }
            (OverrideKind::Swap, Some(t)) => {
                if let Some(cfg) = &self.cfg {
                    if !cfg.rotation.teams().contains(t) {
                        return Err(StaffingError::Invalid(format!(
                            "team {t:?} is not one of the station's teams ({})",
                            cfg.rotation.teams().join(", ")
                        )));
                    }
                }
            }
            (_, Some(_)) => return Err(StaffingError::Invalid("only a swap names a team".into())),
            _ => {}
        }
        let kept = o.clone();
        let now = crate::clock::unix_ms();
        o.id = self
            .store
            .run(move |s| {
                s.prune_overrides(now - 7 * 86_400_000)?;
                s.add_override(&kept)
            })
            .await?;
        st.model
            .overrides
            .retain(|x| x.until_ms >= now - 7 * 86_400_000);
        st.model.overrides.push(o.clone());
        let summary = payload::override_change(&o, "added");
        tracing::info!(event = "staffing.override_added", id = o.id, person = %o.person, kind = o.kind.name(), by = %o.by, "rotation exception added");
        self.refresh_locked(&mut st, vec![summary]).await;
        Ok(o.id)
    }

    /// Removes an exception.
    pub async fn remove_override(&self, id: i64, by: &str) -> Result<(), StaffingError> {
        let mut st = self.state.lock().await;
        let Some(o) = st.model.overrides.iter().find(|o| o.id == id).cloned() else {
            return Err(StaffingError::Invalid(format!(
                "no exception {id} (stationd staffing lists them)"
            )));
        };
        self.store.run(move |s| s.remove_override(id)).await?;
        st.model.overrides.retain(|x| x.id != id);
        let mut summary = payload::override_change(&o, "removed");
        summary["by"] = by.into();
        self.refresh_locked(&mut st, vec![summary]).await;
        Ok(())
    }
}

/// The daemon's event watcher: signals and the cars' devices go to the service's task.
impl crate::drivers::EventWatcher for Staffing {
    fn watch(&self, driver: &'static str, ev: &Event) {
        let note = match signals::observe(driver, ev) {
            Some(o) => Note::Signal(o),
            // A car's tracker or radio changing health (not every position it sends).
            None if (ev.kind.starts_with("device.") || ev.kind.starts_with("gps.fix"))
                && self.watched.contains(&ev.device) =>
            {
                Note::Device
            }
            None => return,
        };
        if self.notes.try_send(note).is_err() {
            let dropped = self.metrics.counter("staffing.signals_dropped", "");
            metrics::inc(&dropped);
            let n = dropped.load(std::sync::atomic::Ordering::Relaxed);
            if n <= 10 || n.is_multiple_of(1000) {
                tracing::warn!(event = "staffing.signal_dropped", dropped = n, kind = %ev.kind, device_id = %ev.device, "staffing is behind: a signal was dropped (the next one corrects the picture)");
            }
        }
    }
}

fn unknown_person(id: &str, model: &Model) -> String {
    if model.roster.is_empty() {
        format!("{id:?} is not on the roster: the roster is empty (stationd roster import FILE, or central's roster.set)")
    } else {
        format!("{id:?} is not on the roster")
    }
}
