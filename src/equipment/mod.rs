//! The equipment register: what the station holds ("7 classes, 58 items"), by class, who has
//! it, and its state — `in_service`, `checked_out`, `charging`, `fault`, `maintenance_due`,
//! `lost`.
//!
//! Items are imported ([`register`]: CSV or TOML, or central's `equipment.set`) and kept in
//! `equipment.db` ([`store`]). Electronic items are linked to a device id and take their state
//! from it ([`model::judge`]): a recorder in its dock is charging, taken out it is with its
//! officer (read off the dock's events, through the same
//! [`EventWatcher`](crate::drivers::EventWatcher) staffing uses), a device not heard for
//! `offline_fault_h` is a suspected fault. The rest change by CLI or command (checkout,
//! checkin, fault, lost). A change of state is an `equipment.changed` event; `P/state/equipment`
//! holds the counts and the items not in service ([`payload`]). A grid car's item in fault
//! makes its crew `car_unavailable` ([`CarFaults`]); checking out a car's kit puts the person
//! in its crew.

pub mod commands;
pub mod model;
pub mod payload;
pub mod register;
pub mod store;

use crate::board::Board;
use crate::config::Equipment as EquipmentConfig;
use crate::event::Event;
use crate::metrics::{self, Metrics};
use crate::outbox::EventSink;
use crate::side_store::{Shared, Since};
use crate::staffing::Staffing;
use model::{DeviceSeen, Docking, Judged, Manual, State};
use register::Item;
use serde::Deserialize;
use stationd_proto::staffing::presence::Source;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::EquipmentStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Device id of the `equipment.changed` events.
pub const DEVICE: &str = "equipment";
/// How often items are judged again without an event (a device's quiet day, a maintenance
/// date): every 30 s, or more often when `offline_fault_h` is short (a quarter of it, at least
/// a second).
const REFRESH: Duration = Duration::from_secs(30);
const QUEUE: usize = 256;

/// The cars whose vehicle item is in fault, lost or due for maintenance (read by staffing).
#[derive(Default)]
pub struct CarFaults(Mutex<BTreeMap<String, String>>);

impl CarFaults {
    pub fn get(&self, car: &str) -> Option<String> {
        self.lock().get(car).cloned()
    }
    fn replace(&self, faults: BTreeMap<String, String>) -> bool {
        let mut held = self.lock();
        let changed = *held != faults;
        *held = faults;
        changed
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One item now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemView {
    pub item: Item,
    pub judged: Judged,
    pub since_ms: i64,
}

/// The register as computed.
struct Held {
    items: Vec<Item>,
    manual: BTreeMap<String, Manual>,
    docking: BTreeMap<String, Docking>,
    /// Since when each item has been in its state, as stored.
    judged: Since,
}

/// Why a change asked of the register was refused.
#[derive(Debug, thiserror::Error)]
pub enum EquipmentError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// A recorder in or out of its dock, from the dock's events.
#[derive(Debug)]
pub struct DockNote {
    device: String,
    docking: Docking,
}

/// The station's equipment register, one per daemon.
pub struct Equipment {
    station: String,
    cfg: EquipmentConfig,
    state: tokio::sync::Mutex<Held>,
    latest: Mutex<Arc<Vec<ItemView>>>,
    store: Shared<EquipmentStore>,
    sink: EventSink,
    board: Arc<Board>,
    metrics: Arc<Metrics>,
    staffing: Arc<Staffing>,
    car_faults: Arc<CarFaults>,
    notes: mpsc::Sender<DockNote>,
}

impl Equipment {
    /// Opens `equipment.db` beside the outbox; the receiver goes to [`Equipment::run`].
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        station: &str,
        cfg: EquipmentConfig,
        outbox: &std::path::Path,
        sink: EventSink,
        board: Arc<Board>,
        metrics: Arc<Metrics>,
        staffing: Arc<Staffing>,
        car_faults: Arc<CarFaults>,
    ) -> Result<(Arc<Equipment>, mpsc::Receiver<DockNote>), store::StoreError> {
        let store = EquipmentStore::open(&store::store_path(outbox))?;
        let loaded = store.load()?;
        let state = Held {
            items: loaded.items,
            manual: loaded.manual.into_iter().collect(),
            docking: loaded.docking.into_iter().collect(),
            judged: Since::from_rows(loaded.judged),
        };
        let (notes, rx) = mpsc::channel(QUEUE);
        let e = Arc::new(Equipment {
            station: station.to_string(),
            cfg,
            state: tokio::sync::Mutex::new(state),
            latest: Mutex::new(Arc::new(Vec::new())),
            store: Shared::new(store),
            sink,
            board,
            metrics,
            staffing,
            car_faults,
            notes,
        });
        Ok((e, rx))
    }

    pub fn station(&self) -> &str {
        &self.station
    }

    pub fn classes(&self) -> &[String] {
        &self.cfg.classes
    }

    /// The items as last judged.
    pub fn items(&self) -> Arc<Vec<ItemView>> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the station publishes `P/state/equipment` (it has a register).
    pub fn in_use(&self) -> bool {
        !self.items().is_empty()
    }

    /// Judges the register now and every 30 s, and takes the docks' notes, until `stop`.
    pub async fn run(
        self: Arc<Self>,
        mut notes: mpsc::Receiver<DockNote>,
        stop: CancellationToken,
    ) {
        let every = REFRESH
            .min(Duration::from_millis(self.cfg.offline_fault_ms as u64 / 4))
            .max(Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                note = notes.recv() => match note {
                    Some(n) => self.docked(n).await,
                    None => break,
                },
                _ = tick.tick() => self.refresh().await,
            }
        }
    }

    async fn docked(&self, n: DockNote) {
        // Kept for every recorder (a handful), so an item linked later knows where it is.
        let mut st = self.state.lock().await;
        let (device, docking) = (n.device.clone(), n.docking.clone());
        if let Err(e) = self
            .store
            .run(move |s| s.put_docking(&device, &docking))
            .await
        {
            tracing::error!(event = "equipment.store_failed", error = %e, "cannot store a recorder's docking (kept in memory)");
        }
        // A recorder of a car's kit taken out: its officer goes with that car's crew.
        let kit = match (
            &n.docking,
            st.items
                .iter()
                .find(|i| i.device.as_ref() == Some(&n.device)),
        ) {
            (
                Docking {
                    docked: false,
                    officer: Some(officer),
                    dock,
                    ..
                },
                Some(item @ Item { car: Some(car), .. }),
            ) => Some((
                officer.clone(),
                car.clone(),
                format!("took {} ({car}'s kit) from dock {dock}", item.id),
            )),
            _ => None,
        };
        st.docking.insert(n.device, n.docking);
        self.refresh_locked(&mut st, None, Vec::new()).await;
        drop(st);
        if let Some((officer, car, detail)) = kit {
            self.staffing
                .checked_out(&officer, Some(&car), Source::Recorder, detail)
                .await;
        }
    }

    /// Judges every item again; publishes what changed.
    pub async fn refresh(&self) {
        let mut st = self.state.lock().await;
        self.refresh_locked(&mut st, None, Vec::new()).await;
    }

    async fn refresh_locked(&self, st: &mut Held, by: Option<&str>, extra: Vec<serde_json::Value>) {
        let now = crate::clock::unix_ms();
        let today = model::local_date(now, self.cfg.utc_offset_min);
        let board: BTreeMap<String, DeviceSeen> = self
            .board
            .snapshot()
            .into_iter()
            .map(|(id, d)| {
                (
                    id,
                    DeviceSeen {
                        state: d.state,
                        since_ms: d.since_ms,
                        last_seen_ms: d.last_seen_ms,
                    },
                )
            })
            .collect();
        let before = self.items();
        let mut views = Vec::with_capacity(st.items.len());
        let mut to_store = Vec::new();
        // (item, the state it had: its last view's, else the stored one's; None: a new item)
        let mut was: Vec<Option<String>> = Vec::with_capacity(st.items.len());
        for item in &st.items {
            let judged = model::judge(
                item,
                st.manual.get(&item.id),
                item.device.as_ref().and_then(|d| st.docking.get(d)),
                item.device.as_ref().and_then(|d| board.get(d)),
                now,
                self.cfg.offline_fault_ms,
                &today,
            );
            let name = judged.state.name().to_string();
            was.push(
                before
                    .iter()
                    .find(|b| b.item.id == item.id)
                    .map(|b| b.judged.state.name().to_string())
                    .or_else(|| st.judged.state(&item.id).map(str::to_string)),
            );
            let (since_ms, new_row) = st.judged.of(&item.id, &name, now);
            to_store.extend(new_row);
            views.push(ItemView {
                item: item.clone(),
                judged,
                since_ms,
            });
        }
        if !to_store.is_empty() {
            if let Err(e) = self.store.run(move |s| s.put_since(&to_store)).await {
                tracing::error!(event = "equipment.store_failed", error = %e, "cannot store items' states (kept in memory)");
            }
        }
        let mut events = extra;
        for (v, was) in views.iter().zip(&was) {
            // A new item is announced by its register's change, not one by one.
            let Some(was) = was else { continue };
            let old = before.iter().find(|b| b.item.id == v.item.id);
            let same = *was == v.judged.state.name()
                && old.is_none_or(|o| {
                    o.judged.assigned_to == v.judged.assigned_to
                        && o.judged.suspected == v.judged.suspected
                });
            if same {
                continue;
            }
            let mut data = payload::item(v);
            data["change"] = "item".into();
            data["was"] = was.clone().into();
            if let Some(by) = by {
                data["by"] = by.into();
            }
            tracing::info!(event = "equipment.changed", item = %v.item.id, state = v.judged.state.name(), was = %was, reason = %v.judged.reason, "equipment state changed");
            events.push(data);
        }
        let faults: BTreeMap<String, String> = views
            .iter()
            .filter(|v| v.item.class == "vehicles")
            .filter(|v| {
                matches!(
                    v.judged.state,
                    State::Fault | State::Lost | State::MaintenanceDue
                )
            })
            .filter_map(|v| {
                let car = v.item.car.clone().or_else(|| v.item.device.clone())?;
                Some((car, v.judged.reason.clone()))
            })
            .collect();
        let cars_changed = self.car_faults.replace(faults);
        let changed = !events.is_empty() || views != *before;
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(views);
        metrics::add(
            &self.metrics.counter("equipment.changes", ""),
            events.len() as u64,
        );
        if self
            .sink
            .send_own(DEVICE, "equipment.changed", events)
            .await
            .is_err()
        {
            return;
        }
        if cars_changed {
            self.staffing.refresh(Vec::new()).await;
        }
        if changed {
            self.board.state_changed();
        }
    }

    /// Replaces the register (`stationd equipment import`, central's `equipment.set`).
    pub async fn set_register(
        &self,
        items: Vec<Item>,
        by: &str,
    ) -> Result<serde_json::Value, EquipmentError> {
        register::check(&items, &self.cfg.classes).map_err(EquipmentError::Invalid)?;
        let mut st = self.state.lock().await;
        let kept = items.clone();
        self.store.run(move |s| s.set_items(&kept)).await?;
        let old: Vec<String> = st.items.iter().map(|i| i.id.clone()).collect();
        let added = items.iter().filter(|i| !old.contains(&i.id)).count();
        let removed = old
            .iter()
            .filter(|o| !items.iter().any(|i| &i.id == *o))
            .count();
        let n = items.len();
        st.items = items;
        tracing::info!(
            event = "equipment.register_set",
            items = n,
            added,
            removed,
            by,
            "equipment register replaced"
        );
        let summary = serde_json::json!({
            "change": "register", "items": n, "added": added, "removed": removed, "by": by,
        });
        self.refresh_locked(&mut st, Some(by), vec![summary]).await;
        Ok(serde_json::json!({"items": n, "added": added, "removed": removed}))
    }

    /// What a person says of an item: checked out to someone, checked in, in fault, lost,
    /// back in service; optionally its next maintenance date.
    pub async fn mark(&self, m: Mark) -> Result<serde_json::Value, EquipmentError> {
        let mut st = self.state.lock().await;
        let Some(item) = st.items.iter().find(|i| i.id == m.item).cloned() else {
            let known = st.items.len();
            return Err(EquipmentError::Invalid(format!(
                "no item {:?} in the register ({known} items; stationd equipment lists them)",
                m.item
            )));
        };
        let state = m.state;
        if !matches!(
            state,
            State::InService | State::CheckedOut | State::Fault | State::Lost
        ) {
            return Err(EquipmentError::Invalid(format!(
                "{} is judged, not said: say in_service, checked_out, fault or lost",
                state.name()
            )));
        }
        if state == State::CheckedOut && m.to.is_none() {
            return Err(EquipmentError::Invalid(
                "a checkout names the person (to)".into(),
            ));
        }
        if let Some(p) = &m.to {
            if !self.staffing.knows(p).await {
                return Err(EquipmentError::Invalid(format!(
                    "{p:?} is not on the roster"
                )));
            }
        }
        if let Some(d) = &m.next_maintenance {
            if !register::is_date(d) {
                return Err(EquipmentError::Invalid(format!(
                    "next_maintenance {d:?} must be a date like 2027-03-31"
                )));
            }
        }
        let manual = Manual {
            state,
            assigned_to: if state == State::CheckedOut {
                m.to.clone()
            } else {
                None
            },
            note: m.note.clone(),
            by: m.by.clone(),
            at_ms: crate::clock::unix_ms(),
        };
        let mut items = st.items.clone();
        if let Some(d) = &m.next_maintenance {
            if let Some(i) = items.iter_mut().find(|i| i.id == m.item) {
                i.next_maintenance = Some(d.clone());
            }
        }
        let (id, kept, kept_items) = (m.item.clone(), manual.clone(), items.clone());
        let dated = m.next_maintenance.is_some();
        self.store
            .run(move |s| {
                s.put_manual(&id, &kept)?;
                if dated {
                    s.set_items(&kept_items)?;
                }
                Ok::<_, store::StoreError>(())
            })
            .await?;
        st.items = items;
        st.manual.insert(m.item.clone(), manual);
        self.refresh_locked(&mut st, Some(&m.by), Vec::new()).await;
        let view = self
            .items()
            .iter()
            .find(|v| v.item.id == m.item)
            .cloned()
            .expect("the item was just judged");
        drop(st);
        if let (State::CheckedOut, Some(person)) = (state, &m.to) {
            self.staffing
                .checked_out(
                    person,
                    item.car.as_deref(),
                    m.source,
                    format!("checked out {} ({})", item.id, item.class),
                )
                .await;
        }
        Ok(payload::item(&view))
    }
}

/// A person's word about one item.
#[derive(Debug, Clone)]
pub struct Mark {
    pub item: String,
    pub state: State,
    pub to: Option<String>,
    pub note: String,
    pub next_maintenance: Option<String>,
    /// `cli:NAME` or `central`.
    pub by: String,
    /// How the checkout counts as presence (`cli` or `central`).
    pub source: Source,
}

/// The dock's events about recorders, for the items linked to them.
impl crate::drivers::EventWatcher for Equipment {
    fn watch(&self, driver: &'static str, ev: &Event) {
        let docked = match ev.kind.as_str() {
            "recorder.docked" => true,
            "recorder.undocked" => false,
            _ => return,
        };
        if driver != "dock" {
            return;
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Fields {
            dock: String,
            officer: Option<String>,
        }
        let f: Fields = serde_json::from_str(ev.data.get()).unwrap_or_default();
        let note = DockNote {
            device: ev.device.clone(),
            docking: Docking {
                docked,
                dock: f.dock,
                officer: f.officer.filter(|o| o != "unknown"),
                at_ms: ev.ts_ms,
            },
        };
        if self.notes.try_send(note).is_err() {
            metrics::inc(&self.metrics.counter("equipment.notes_dropped", ""));
        }
    }
}
