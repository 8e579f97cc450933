//! Box health: the station box's own figures for central and the technician — CPU load,
//! memory, each configured volume, temperatures, uptime, the clock's sync state, the uplink's
//! interface (and the cellular modem's signal where there is one), and power from a UPS where
//! `[box] ups` names one (`P/state/box`, retained). Thresholds (`judge`) raise `box.*` alarms
//! when a condition starts and a `box.cleared` event when it ends; the figures go to central
//! by exception (`box.reading` telemetry when one moves past its deadband, and at least every
//! `report_every_s`). `stationd check` and the status page show the same readings.

pub mod judge;
pub mod modem;
pub mod nut;
pub mod readings;

use crate::config::HostConfig;
use crate::event::{Event, Priority};
use readings::{Load, Memory, Temperature, Volume};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The device id of the box's own events.
pub const DEVICE: &str = "box";

/// The deadbands of the by-exception report.
const LOAD_DEADBAND: f64 = 0.5;
const PCT_DEADBAND: f64 = 5.0;
const DISK_DEADBAND_PCT: f64 = 1.0;
const TEMPERATURE_DEADBAND_C: f64 = 2.0;

/// One reading of the box.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub uptime_s: Option<f64>,
    pub load: Option<Load>,
    pub memory: Option<Memory>,
    pub volumes: Vec<Volume>,
    pub temperatures: Vec<Temperature>,
    /// `synced`, `unsynced`, `unreadable`.
    pub clock: String,
    /// The interface the route to the connected broker leaves through.
    pub uplink_interface: Option<String>,
    pub uplink_cellular: bool,
    pub modem: Value,
    pub power: Option<PowerReading>,
}

/// The UPS as last asked.
#[derive(Debug, Clone)]
pub struct PowerReading {
    pub source: String,
    pub reading: Result<nut::Power, String>,
}

/// The box health service.
pub struct Host {
    station: String,
    cfg: HostConfig,
    cellular_interfaces: Vec<String>,
    sink: crate::outbox::EventSink,
    board: Arc<crate::board::Board>,
    uplink: Arc<Mutex<crate::uplink::UplinkStatus>>,
    latest: Mutex<Option<(Reading, Vec<judge::Condition>, i64)>>,
}

impl Host {
    pub fn new(
        station: &str,
        cfg: HostConfig,
        cellular_interfaces: Vec<String>,
        sink: crate::outbox::EventSink,
        board: Arc<crate::board::Board>,
        uplink: Arc<Mutex<crate::uplink::UplinkStatus>>,
    ) -> Arc<Host> {
        Arc::new(Host {
            station: station.to_string(),
            cfg,
            cellular_interfaces,
            sink,
            board,
            uplink,
            latest: Mutex::new(None),
        })
    }

    /// Takes a reading now.
    pub async fn read(&self) -> Reading {
        let volumes = self.cfg.volumes.clone();
        let broker = self
            .uplink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .connected_to
            .clone();
        let with_modem = !self.cellular_interfaces.is_empty();
        let root = self.cfg.root.clone();
        let mut r = tokio::task::spawn_blocking(move || {
            let reader = readings::Reader { root };
            let uplink_interface = broker
                .and_then(|b| crate::config::BrokerUrl::try_from(b).ok())
                .and_then(|b| crate::uplink::interface_towards(&b.host, b.port));
            Reading {
                uptime_s: reader.uptime_s(),
                load: reader.load(),
                memory: reader.memory(),
                volumes: volumes.iter().map(|v| reader.volume(v)).collect(),
                temperatures: reader.temperatures(),
                clock: crate::clock::sync_state().as_str().to_string(),
                uplink_interface,
                uplink_cellular: false,
                modem: if with_modem {
                    modem::read()
                } else {
                    json!({"present": false, "why": "the hardware profile names no cellular interface"})
                },
                power: None,
            }
        })
        .await
        .unwrap_or_default();
        r.uplink_cellular = r
            .uplink_interface
            .as_ref()
            .is_some_and(|i| self.cellular_interfaces.contains(i));
        if let Some(ups) = &self.cfg.ups {
            r.power = Some(PowerReading {
                source: ups.to_string(),
                reading: nut::query(ups).await,
            });
        }
        r
    }

    /// Reads every `interval_s` until `stop`: alarms on conditions, figures by exception.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut last_report: Option<(Reading, Instant)> = None;
        let mut holding: Vec<judge::Condition> = Vec::new();
        loop {
            let reading = self.read().await;
            let keys: Vec<(String, String)> = holding.iter().map(judge::Condition::key).collect();
            let now_holding = judge::judge(&reading, &self.cfg.thresholds, &keys);
            let mut changed = false;
            for c in &now_holding {
                if !keys.contains(&c.key()) {
                    changed = true;
                    tracing::warn!(event = "box.alarm", kind = %c.kind, subject = %c.subject, detail = %c.detail, "the box: {}", c.detail);
                    self.emit(&c.kind, Priority::Alarm, condition_data(c)).await;
                }
            }
            for c in &holding {
                if !now_holding.iter().any(|n| n.key() == c.key()) {
                    changed = true;
                    tracing::info!(event = "box.cleared", kind = %c.kind, subject = %c.subject, "the box: {} is over", c.kind);
                    let mut data = condition_data(c);
                    data["condition"] = c.kind.clone().into();
                    self.emit("box.cleared", Priority::Event, data).await;
                }
            }
            holding = now_holding.clone();
            let due = match &last_report {
                None => true,
                Some((last, at)) => {
                    at.elapsed() >= Duration::from_secs(self.cfg.report_every_s)
                        || moved(last, &reading)
                }
            };
            if due {
                changed = true;
                self.emit("box.reading", Priority::Telemetry, telemetry(&reading))
                    .await;
                last_report = Some((reading.clone(), Instant::now()));
            }
            *self.latest.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((reading, now_holding, crate::clock::unix_ms()));
            if changed {
                self.board.state_changed();
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(self.cfg.interval_s)) => {}
            }
        }
    }

    async fn emit(&self, kind: &str, prio: Priority, data: Value) {
        let ev = Event::new(DEVICE, kind, prio, crate::clock::now(), false, data);
        if self.sink.send(ev).await.is_err() {
            tracing::debug!(event = "box.report_lost", "the outbox writer has stopped");
        }
    }

    /// Whether the box has been read yet (`P/state/box` exists).
    pub fn has_reading(&self) -> bool {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// `P/state/box`, the status page's and `stationd check`'s view; None before the first
    /// reading.
    pub fn document(&self) -> Option<Value> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let (r, conditions, at_ms) = latest.as_ref()?;
        let (now, clock) = crate::clock::now();
        let power = r.power.as_ref().map(|p| match &p.reading {
            Ok(power) => serde_json::to_value(power).expect("serialises"),
            Err(why) => json!({"source": p.source, "error": why}),
        });
        Some(json!({
            "v": crate::event::CONTRACT_VERSION,
            "station": self.station,
            "ts": crate::event::format_ts_ms(now),
            "clock": clock.as_str(),
            "read_at": crate::event::format_ts_ms(*at_ms),
            "uptime_s": r.uptime_s.map(|s| s.round() as u64),
            "load": r.load,
            "memory": r.memory,
            "volumes": r.volumes,
            "temperatures": r.temperatures,
            "temperature_note": r.temperatures.is_empty().then_some("no thermal zone or hwmon temperature sensor on this box"),
            "clock_sync": r.clock,
            "uplink": {
                "interface": r.uplink_interface,
                "cellular": r.uplink_cellular,
                "modem": r.modem,
            },
            "power": power,
            "conditions": conditions,
        }))
    }
}

fn condition_data(c: &judge::Condition) -> Value {
    let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    json!({
        "subject": c.subject,
        "value": num(c.value),
        "threshold": num(c.threshold),
        "detail": c.detail,
    })
}

/// The compact figures of `box.reading`.
fn telemetry(r: &Reading) -> Value {
    json!({
        "load5": r.load.as_ref().map(|l| l.load5),
        "cpus": r.load.as_ref().map(|l| l.cpus),
        "memory_used_pct": r.memory.as_ref().map(|m| m.used_pct),
        "volumes": r.volumes.iter().map(|v| (v.path.display().to_string(), json!(v.used_pct))).collect::<serde_json::Map<_, _>>(),
        "temperature_max_c": r.temperatures.iter().map(|t| t.celsius).reduce(f64::max),
        "uplink_interface": r.uplink_interface,
        "on_battery": r.power.as_ref().and_then(|p| p.reading.as_ref().ok()).map(|p| p.on_battery),
        "clock_sync": r.clock,
    })
}

/// Whether a figure moved past its deadband since `last`.
fn moved(last: &Reading, now: &Reading) -> bool {
    let far = |a: Option<f64>, b: Option<f64>, band: f64| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() >= band,
        (a, b) => a.is_some() != b.is_some(),
    };
    far(
        last.load.as_ref().map(|l| l.load5),
        now.load.as_ref().map(|l| l.load5),
        LOAD_DEADBAND,
    ) || far(
        last.memory.as_ref().map(|m| m.used_pct),
        now.memory.as_ref().map(|m| m.used_pct),
        PCT_DEADBAND,
    ) || last.volumes.len() != now.volumes.len()
        || last
            .volumes
            .iter()
            .zip(&now.volumes)
            .any(|(a, b)| (a.used_pct - b.used_pct).abs() >= DISK_DEADBAND_PCT)
        || far(
            last.temperatures.iter().map(|t| t.celsius).reduce(f64::max),
            now.temperatures.iter().map(|t| t.celsius).reduce(f64::max),
            TEMPERATURE_DEADBAND_C,
        )
        || last.uplink_interface != now.uplink_interface
        || last.clock != now.clock
        || last
            .power
            .as_ref()
            .map(|p| p.reading.as_ref().map(|p| p.status.clone()).ok())
            != now
                .power
                .as_ref()
                .map(|p| p.reading.as_ref().map(|p| p.status.clone()).ok())
}
