//! `/metrics`: the daemon's state and counters in the Prometheus text formats, for the fleet's
//! monitoring (docs/INSTRUMENTATION.md, "Prometheus").
//!
//! Nothing is kept for Prometheus: on each scrape the readings are taken (the outbox's
//! per-class figures, the uplink, the device board, the counter registry, `/proc/self`) and
//! encoded by `prometheus-client` through a [`Collector`], which does the names, the escaping
//! and the format's rules. OpenMetrics 1.0 is answered when the scraper asks for it (Prometheus
//! does), the classic text format 0.0.4 otherwise (curl, older scrapers).
//!
//! Every counter of the registry is exported under its own name (`jsonl.lines_rejected` →
//! `stationd_jsonl_lines_rejected_total`, with a `device` label for a device's own), so a
//! counter added to a driver reaches Prometheus without touching this file.

use crate::board::DeviceState;
use crate::control::server::Sources;
use crate::outbox::{ClassStats, OutboxStats};
use crate::uplink::UplinkStatus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;

/// The states a device row can be in (docs/CONTRACT.md, "Device states"); each device gets
/// one `stationd_device_state` sample per state, 1 for the one it is in.
const DEVICE_STATES: [&str; 6] = [
    "waiting",
    "listening",
    "initialising",
    "online",
    "no_fix",
    "offline",
];

/// Registry counters shown by a family of their own below (from the outbox's file, which
/// outlives a restart) rather than under their own names.
const SHOWN_OTHERWISE: [&str; 3] = ["outbox.rows", "outbox.bytes", "outbox.evicted_rows"];

/// `cmd.answered_done` … become `stationd_cmd_answers_total{status="done"}`.
const ANSWER_PREFIX: &str = "cmd.answered_";

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// One scrape's readings.
#[derive(Debug)]
pub struct Readings {
    pub station: String,
    pub station_name: String,
    pub profile: Option<String>,
    pub uptime_s: f64,
    pub outbox: OutboxStats,
    pub now_ms: i64,
    pub uplink: UplinkStatus,
    pub offline_s: f64,
    pub clock_synced: bool,
    pub devices: Vec<(String, DeviceState)>,
    /// ((name, device), value) from the counter registry, sorted by name.
    pub counters: Vec<((String, String), u64)>,
    pub gauges: BTreeSet<String>,
    pub process: Option<super::process::ProcessStats>,
    /// The configuration running (hash, what waits for a restart, the last reload).
    pub config: crate::reload::ConfigReport,
    /// The box's own health (`P/state/box`), once read.
    pub host: Option<serde_json::Value>,
}

/// Takes the readings of a scrape.
pub async fn read(s: &Sources) -> Result<Readings, String> {
    let outbox = crate::control::server::outbox_stats(s).await?;
    let uplink = s.uplink.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let offline_s = uplink.offline_ms(crate::clock::mono_ms()) as f64 / 1000.0;
    let mut counters = s.metrics.snapshot();
    counters.push((
        ("clock.state_unreadable".into(), String::new()),
        crate::clock::unreadable_readings(),
    ));
    counters.sort();
    let gauges = counters
        .iter()
        .map(|((name, _), _)| name)
        .filter(|name| s.metrics.is_gauge(name))
        .cloned()
        .collect();
    Ok(Readings {
        station: s.station.clone(),
        station_name: s.station_name.clone(),
        profile: s.profile.clone(),
        uptime_s: s.started.elapsed().as_secs_f64(),
        outbox,
        now_ms: crate::clock::unix_ms(),
        uplink: uplink.as_of_now(),
        offline_s,
        clock_synced: crate::clock::sync_state() == crate::clock::SyncState::Synced,
        devices: s.board.snapshot(),
        counters,
        gauges,
        config: s.config.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        host: s.host.as_ref().and_then(|h| h.document()),
        process: super::process::read().map(|mut p| {
            // /proc/stat (the boot time) is hidden under the unit's ProcSubset=pid: then the
            // daemon's own start, a few milliseconds after the process's.
            p.start_time_seconds
                .get_or_insert(s.started_ms as f64 / 1000.0);
            p
        }),
    })
}

/// The readings in the text format asked for.
pub fn encode(readings: Readings, openmetrics: bool) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(readings));
    let mut out = String::new();
    let written = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
    };
    // Writing into a String fails only if a value's Display does, which ours do not.
    written.expect("encoding into a String");
    out
}

type Labels = Vec<(String, String)>;

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One metric family: a descriptor and its samples.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, f64)>,
) -> Result<(), std::fmt::Error> {
    family(
        encoder,
        name,
        help,
        MetricType::Gauge,
        samples.into_iter().map(|(l, v)| (l, ConstGauge::new(v))),
    )
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, f64)>,
) -> Result<(), std::fmt::Error> {
    family(
        encoder,
        name,
        help,
        MetricType::Counter,
        samples.into_iter().map(|(l, v)| (l, ConstCounter::new(v))),
    )
}

fn classes(stats: &OutboxStats) -> [(&'static str, &ClassStats); 3] {
    [
        ("alarm", &stats.alarm),
        ("event", &stats.event),
        ("telemetry", &stats.telemetry),
    ]
}

/// `jsonl.lines_rejected` → `stationd_jsonl_lines_rejected`.
fn metric_name(counter: &str) -> String {
    let mut name = String::from("stationd_");
    name.extend(
        counter
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    name
}

impl Collector for Readings {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let info = Info::new(labels([
            ("version", env!("CARGO_PKG_VERSION")),
            ("station", &self.station),
            ("station_name", &self.station_name),
            ("profile", self.profile.as_deref().unwrap_or("")),
        ]));
        let metric = e.encode_descriptor(
            "stationd_build",
            "The daemon's version, station and hardware profile.",
            None,
            MetricType::Info,
        )?;
        info.encode(metric)?;
        gauge(
            &mut e,
            "stationd_uptime_seconds",
            "Seconds since the daemon started (monotonic clock).",
            [(vec![], self.uptime_s)],
        )?;
        gauge(
            &mut e,
            "stationd_clock_synced",
            "1 while the box clock is synchronised (the kernel's flag), which makes `clock` synced in every envelope.",
            [(vec![], f64::from(u8::from(self.clock_synced)))],
        )?;

        // The uplink.
        gauge(
            &mut e,
            "stationd_uplink_connected",
            "1 while connected to a central broker.",
            [(
                vec![],
                f64::from(u8::from(self.uplink.connected_to.is_some())),
            )],
        )?;
        gauge(
            &mut e,
            "stationd_uplink_in_flight",
            "QoS 1 publishes sent and not yet acknowledged by the broker.",
            [(vec![], self.uplink.in_flight as f64)],
        )?;
        counter(
            &mut e,
            "stationd_uplink_offline_seconds",
            "Seconds without a broker since the daemon started (monotonic clock).",
            [(vec![], self.offline_s)],
        )?;

        // The outbox, per class, as its file says (it outlives restarts).
        let classes = classes(&self.outbox);
        gauge(
            &mut e,
            "stationd_outbox_rows",
            "Rows waiting in the outbox for central, per class.",
            classes.map(|(c, s)| (labels([("class", c)]), s.rows as f64)),
        )?;
        gauge(
            &mut e,
            "stationd_outbox_bytes",
            "Bytes of the rows waiting in the outbox, per class.",
            classes.map(|(c, s)| (labels([("class", c)]), s.bytes as f64)),
        )?;
        gauge(
            &mut e,
            "stationd_outbox_oldest_age_seconds",
            "Age of the oldest row waiting, per class, by its event time (0 when none waits).",
            classes.map(|(c, s)| {
                let age = s
                    .oldest_ms
                    .map_or(0.0, |t| (self.now_ms - t).max(0) as f64 / 1000.0);
                (labels([("class", c)]), age)
            }),
        )?;
        counter(
            &mut e,
            "stationd_outbox_evicted_rows",
            "Rows evicted to keep within the outbox's quota or the disk (each eviction is reported to central), since the outbox file was made.",
            [(vec![], self.outbox.evicted_rows as f64)],
        )?;
        counter(
            &mut e,
            "stationd_outbox_eviction_rounds",
            "Evictions, since the outbox file was made.",
            [(vec![], self.outbox.eviction_rounds as f64)],
        )?;
        gauge(
            &mut e,
            "stationd_outbox_next_seq",
            "The seq the next event will get.",
            [(vec![], self.outbox.next_seq as f64)],
        )?;

        // Devices.
        gauge(
            &mut e,
            "stationd_device_state",
            "1 for the state each device is in (waiting, listening, initialising, online, no_fix, offline; docs/INSTRUMENTATION.md, \"Device states\").",
            self.devices.iter().flat_map(|(id, d)| {
                let mut states: Vec<&str> = DEVICE_STATES.to_vec();
                if !states.contains(&d.state.as_str()) {
                    states.push(&d.state);
                }
                states.into_iter().map(move |state| {
                    (
                        labels([("device", id), ("driver", &d.driver), ("state", state)]),
                        f64::from(u8::from(state == d.state)),
                    )
                })
            }),
        )?;
        gauge(
            &mut e,
            "stationd_device_silent_seconds",
            "Seconds since each device last sent anything (monotonic; absent for a device never heard).",
            self.devices.iter().filter_map(|(id, d)| {
                d.last_seen_ms.map(|seen| {
                    (
                        labels([("device", id), ("driver", &d.driver)]),
                        (self.now_ms - seen).max(0) as f64 / 1000.0,
                    )
                })
            }),
        )?;

        // Command answers by status.
        counter(
            &mut e,
            "stationd_cmd_answers",
            "Answers to central's commands, by status (done, failed, refused, expired, …).",
            self.counters.iter().filter_map(|((name, device), v)| {
                let status = name.strip_prefix(ANSWER_PREFIX)?;
                device
                    .is_empty()
                    .then(|| (labels([("status", status)]), *v as f64))
            }),
        )?;

        // Every other counter of the registry, under its own name.
        let rest: Vec<&((String, String), u64)> = self
            .counters
            .iter()
            .filter(|((name, _), _)| {
                !name.starts_with(ANSWER_PREFIX) && !SHOWN_OTHERWISE.contains(&name.as_str())
            })
            .collect();
        for group in rest.chunk_by(|a, b| a.0 .0 == b.0 .0) {
            let name = &group[0].0 .0;
            let samples = group.iter().map(|((_, device), v)| {
                let l = if device.is_empty() {
                    vec![]
                } else {
                    labels([("device", device)])
                };
                (l, *v as f64)
            });
            let help = format!("{name} (docs/INSTRUMENTATION.md)");
            if self.gauges.contains(name) {
                gauge(&mut e, &metric_name(name), &help, samples)?;
            } else {
                counter(&mut e, &metric_name(name), &help, samples)?;
            }
        }

        config_families(&mut e, &self.config)?;
        if let Some(h) = &self.host {
            box_families(&mut e, h)?;
        }
        if let Some(p) = &self.process {
            process_families(&mut e, p)?;
        }
        Ok(())
    }
}

/// The configuration running, and whether the last reload was taken.
fn config_families(
    e: &mut DescriptorEncoder,
    c: &crate::reload::ConfigReport,
) -> Result<(), std::fmt::Error> {
    let info = Info::new(labels([
        ("hash", &c.hash),
        ("pending_restart", &c.pending_restart.join(",")),
    ]));
    let metric = e.encode_descriptor(
        "stationd_config",
        "The configuration running (its sha256) and the changed sections that wait for a restart.",
        None,
        MetricType::Info,
    )?;
    info.encode(metric)?;
    gauge(
        e,
        "stationd_config_loaded_timestamp_seconds",
        "When the running configuration was loaded (start or reload).",
        [(vec![], c.loaded_ms as f64 / 1000.0)],
    )?;
    let rejected = c
        .last_reload
        .as_ref()
        .is_some_and(|l| l["applied"] == false);
    gauge(
        e,
        "stationd_config_last_reload_rejected",
        "1 when the last reload found the file invalid (the running configuration stayed).",
        [(vec![], f64::from(u8::from(rejected)))],
    )
}

/// The box's own health (`P/state/box`) as gauges, and its conditions.
fn box_families(e: &mut DescriptorEncoder, h: &serde_json::Value) -> Result<(), std::fmt::Error> {
    let num = |v: &serde_json::Value| v.as_f64();
    gauge(
        e,
        "stationd_box_load",
        "The kernel's load average over 1, 5 and 15 minutes.",
        ["load1", "load5", "load15"].into_iter().filter_map(|k| {
            num(&h["load"][k]).map(|v| (labels([("period", k.trim_start_matches("load"))]), v))
        }),
    )?;
    gauge(
        e,
        "stationd_box_cpus",
        "CPUs the load is judged by.",
        num(&h["load"]["cpus"]).map(|v| (vec![], v)),
    )?;
    gauge(
        e,
        "stationd_box_memory_used_percent",
        "Memory in use (MemTotal less MemAvailable), percent.",
        num(&h["memory"]["used_pct"]).map(|v| (vec![], v)),
    )?;
    // Each watched volume's `field`, labelled by its path.
    let per_volume = |field: &'static str| {
        h["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(move |v| Some((labels([("path", v["path"].as_str()?)]), num(&v[field])?)))
    };
    gauge(
        e,
        "stationd_box_volume_used_percent",
        "How full each watched volume is, percent ([box] volumes).",
        per_volume("used_pct"),
    )?;
    gauge(
        e,
        "stationd_box_volume_available_bytes",
        "What may still be written on each watched volume.",
        per_volume("available_bytes"),
    )?;
    gauge(
        e,
        "stationd_box_temperature_celsius",
        "Each thermal zone and hwmon sensor.",
        h["temperatures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    labels([("sensor", t["sensor"].as_str()?)]),
                    num(&t["celsius"])?,
                ))
            }),
    )?;
    gauge(
        e,
        "stationd_box_on_battery",
        "1 while the UPS ([box] ups) runs on battery.",
        h["power"]["on_battery"]
            .as_bool()
            .map(|b| (vec![], f64::from(u8::from(b)))),
    )?;
    gauge(
        e,
        "stationd_box_condition",
        "1 for each condition of the box that holds (the box.* alarms: kind, subject).",
        h["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    labels([
                        ("kind", c["kind"].as_str()?),
                        ("subject", c["subject"].as_str()?),
                    ]),
                    1.0,
                ))
            }),
    )
}

/// The process metrics every Prometheus client library exports, under their usual names.
pub(super) fn process_families(
    e: &mut DescriptorEncoder,
    p: &super::process::ProcessStats,
) -> Result<(), std::fmt::Error> {
    counter(
        e,
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        [(vec![], p.cpu_seconds)],
    )?;
    gauge(
        e,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        [(vec![], p.resident_bytes as f64)],
    )?;
    gauge(
        e,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        [(vec![], p.virtual_bytes as f64)],
    )?;
    gauge(
        e,
        "process_open_fds",
        "Number of open file descriptors.",
        [(vec![], p.open_fds as f64)],
    )?;
    if let Some(max) = p.max_fds {
        gauge(
            e,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            [(vec![], max as f64)],
        )?;
    }
    gauge(
        e,
        "process_threads",
        "Number of OS threads in the process.",
        [(vec![], p.threads as f64)],
    )?;
    if let Some(start) = p.start_time_seconds {
        gauge(
            e,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            [(vec![], start)],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings() -> Readings {
        let stats = OutboxStats {
            telemetry: ClassStats {
                rows: 3,
                oldest_ms: Some(10_000),
                bytes: 300,
            },
            next_seq: 42,
            ..Default::default()
        };
        Readings {
            station: "jn-szq-wd01".into(),
            station_name: "万达\"驻巡站\"".into(),
            profile: None,
            uptime_s: 12.5,
            outbox: stats,
            now_ms: 25_000,
            uplink: UplinkStatus::default(),
            offline_s: 3.25,
            clock_synced: true,
            devices: vec![(
                "gps0".into(),
                DeviceState {
                    driver: "nmea".into(),
                    via: None,
                    state: "offline".into(),
                    detail: Some("port closed".into()),
                    last_seen_ms: Some(20_000),
                    since_ms: 21_000,
                },
            )],
            counters: vec![
                (("cmd.answered_done".into(), String::new()), 4),
                (("nmea.sentences".into(), "gps0".into()), 7),
                (("nmea.sentences".into(), "gps1".into()), 8),
                (("outbox.rows".into(), String::new()), 3),
                (("uplink.published".into(), String::new()), 9),
            ],
            gauges: ["outbox.rows".to_string()].into(),
            process: None,
            config: crate::reload::ConfigReport {
                hash: "sha256:00".into(),
                pending_restart: vec!["dispatch".into()],
                ..Default::default()
            },
            host: Some(serde_json::json!({
                "load": {"load1": 0.5, "load5": 0.25, "load15": 0.125, "cpus": 2},
                "memory": {"used_pct": 41.5},
                "volumes": [{"path": "/var/lib/stationd", "used_pct": 91.0, "available_bytes": 1000}],
                "temperatures": [],
                "power": null,
                "conditions": [{"kind": "box.disk_low", "subject": "/var/lib/stationd"}],
            })),
        }
    }

    #[test]
    fn families_carry_the_readings() {
        let text = encode(readings(), false);
        for line in [
            "stationd_outbox_rows{class=\"telemetry\"} 3.0",
            "stationd_outbox_oldest_age_seconds{class=\"telemetry\"} 15.0",
            "stationd_outbox_oldest_age_seconds{class=\"alarm\"} 0.0",
            "stationd_device_state{device=\"gps0\",driver=\"nmea\",state=\"offline\"} 1.0",
            "stationd_device_state{device=\"gps0\",driver=\"nmea\",state=\"online\"} 0.0",
            "stationd_device_silent_seconds{device=\"gps0\",driver=\"nmea\"} 5.0",
            "stationd_cmd_answers_total{status=\"done\"} 4.0",
            "stationd_nmea_sentences_total{device=\"gps1\"} 8.0",
            "stationd_uplink_published_total 9.0",
            "stationd_uplink_offline_seconds_total 3.25",
            "stationd_uplink_connected 0.0",
            "stationd_config_info{hash=\"sha256:00\",pending_restart=\"dispatch\"} 1",
            "stationd_box_load{period=\"5\"} 0.25",
            "stationd_box_volume_used_percent{path=\"/var/lib/stationd\"} 91.0",
            "stationd_box_condition{kind=\"box.disk_low\",subject=\"/var/lib/stationd\"} 1.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        // The registry's own outbox.rows is shown per class above, not a second time.
        assert!(!text.contains("stationd_outbox_rows_total"), "{text}");
        assert!(text.contains(r#"station_name="万达\"驻巡站\"""#), "{text}");
    }

    #[test]
    fn openmetrics_ends_with_eof() {
        let text = encode(readings(), true);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")) && !wants_openmetrics(None));
    }
}
