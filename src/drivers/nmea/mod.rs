//! The `nmea` driver: a GNSS receiver on a serial port. Its config is [`config`]; this is
//! the I/O.
//!
//! Bytes from the port go through the sans-I/O codec (`codec::nmea`): framer → parser →
//! epoch assembler; epochs go to the [`GpsTracker`] (report by exception, health), whose
//! reports become events. Positions carry the receiver's own UTC as `ts` with
//! `clock = "synced"` (GNSS time is trustworthy once the receiver has a fix).

mod config;

pub use config::NmeaDevice;

use super::gps::{position_data, GpsTracker, Report, ReportPolicy};
use super::serial;
use super::{DeviceContext, DeviceSink, Driver};
use crate::codec::nmea::{parse, EpochAssembler, Frame, SentenceFramer};
use crate::event::{Event, Priority};
use crate::metrics::{self, Counter};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The registry's entry (`driver = "nmea"`).
pub const DRIVER: Driver = Driver {
    name: "nmea",
    serial: true,
    parse: serial::parse::<NmeaDevice>,
    keys: serial::keys::<NmeaDevice>,
};

/// Bad sentences logged in full per port session before logging thins out.
const LOG_FIRST_REJECTS: u64 = 10;

/// The device's counters and the settings its reports are judged by.
struct Counters {
    sentences: Counter,
    rejected: Counter,
    malformed: Counter,
    positions: Counter,
    device_time_rejected: Counter,
    /// `max_clock_skew_s` in ms (the receiver's time further off is not believed).
    max_clock_skew_ms: i64,
}

/// Runs until shutdown: open, read, report; reopen with backoff when the port goes away.
async fn run(d: NmeaDevice, ctx: DeviceContext) {
    let DeviceContext {
        sink,
        shutdown,
        board,
        metrics,
        ..
    } = ctx;
    let counters = Counters {
        sentences: metrics.counter("nmea.sentences", &d.id),
        rejected: metrics.counter("nmea.sentences_rejected", &d.id),
        malformed: metrics.counter("nmea.sentences_malformed", &d.id),
        positions: metrics.counter("gps.positions_reported", &d.id),
        device_time_rejected: metrics.counter("clock.device_time_rejected", &d.id),
        max_clock_skew_ms: (d.max_clock_skew_s as i64).saturating_mul(1000),
    };
    let policy = ReportPolicy::from_config(
        d.min_distance_m,
        d.min_course_deg,
        d.min_interval_s,
        d.max_interval_s,
    );
    let mut tracker = GpsTracker::new(policy, d.offline_after_s * 1000);
    let started = Instant::now();
    let now_ms = move || started.elapsed().as_millis() as u64;
    let mut reopen = serial::reopener();
    let mut open_error_logged = false;
    loop {
        match serial::open(&d.line) {
            Ok(mut port) => {
                tracing::info!(event = "device.port_opened", device_id = %d.id, driver = "nmea", path = %d.line.path.display(), baud = d.line.baud, "serial port open");
                open_error_logged = false;
                reopen.reset();
                let mut framer = SentenceFramer::new();
                let mut epochs = EpochAssembler::new();
                let mut buf = [0u8; 1024];
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                let mut rejects: u64 = 0;
                let mut reports = Vec::new();
                let lost = loop {
                    tokio::select! {
                        r = port.read(&mut buf) => match r {
                            Ok(0) => break "end of file".to_string(),
                            Err(e) => break e.to_string(),
                            Ok(n) => {
                                board.seen(&d.id);
                                let now = now_ms();
                                framer.push(&buf[..n], |f| match f {
                                    Frame::Sentence(s) => match parse(s) {
                                        Ok(p) => {
                                            metrics::inc(&counters.sentences);
                                            reports.extend(tracker.heard(now));
                                            if let Some(outcome) = epochs.push(&p.sentence) {
                                                reports.extend(tracker.epoch(now, outcome));
                                            }
                                        }
                                        Err(e) => {
                                            metrics::inc(&counters.malformed);
                                            rejects += 1;
                                            log_reject(&d.id, rejects, &e.to_string());
                                        }
                                    },
                                    Frame::Rejected(r) => {
                                        metrics::inc(&counters.rejected);
                                        rejects += 1;
                                        log_reject(&d.id, rejects, r.as_str());
                                    }
                                });
                            }
                        },
                        _ = tick.tick() => reports.extend(tracker.tick(now_ms())),
                        _ = shutdown.cancelled() => return,
                    }
                    if !send(&d.id, &sink, &counters, &mut reports).await {
                        return;
                    }
                };
                tracing::warn!(event = "device.port_lost", device_id = %d.id, driver = "nmea", path = %d.line.path.display(), error = %lost, "serial port went away; will reopen");
                reports.extend(tracker.port_lost());
                if !send(&d.id, &sink, &counters, &mut reports).await {
                    return;
                }
            }
            Err(e) => {
                board.set_state(
                    &d.id,
                    "offline",
                    Some(&format!("cannot open {}: {e}", d.line.path.display())),
                );
                if !open_error_logged {
                    tracing::warn!(event = "device.open_failed", device_id = %d.id, driver = "nmea", path = %d.line.path.display(), error = %e, "cannot open the serial port; retrying (check the cable, the path and the dialout group)");
                    open_error_logged = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(reopen.next_delay()) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

fn log_reject(device: &str, n: u64, why: &str) {
    if n <= LOG_FIRST_REJECTS || n.is_multiple_of(1000) {
        tracing::warn!(
            event = "nmea.sentence_rejected",
            device_id = device,
            driver = "nmea",
            rejected_on_port = n,
            reason = why,
            "skipped a bad NMEA sentence"
        );
    }
}

/// Turns reports into events and hands them to the outbox. False when the outbox is gone.
async fn send(
    device: &str,
    sink: &DeviceSink,
    counters: &Counters,
    reports: &mut Vec<Report>,
) -> bool {
    for r in reports.drain(..) {
        let (now, clock) = crate::clock::now();
        let ev = match r {
            Report::Position(fix) => {
                metrics::inc(&counters.positions);
                let ((ts_ms, clock), rejected) = crate::clock::device_stamp(
                    fix.utc_ms,
                    (now, clock),
                    counters.max_clock_skew_ms,
                    false,
                );
                if rejected {
                    metrics::inc(&counters.device_time_rejected);
                    if counters
                        .device_time_rejected
                        .load(std::sync::atomic::Ordering::Relaxed)
                        == 1
                    {
                        tracing::warn!(
                            event = "clock.device_time_rejected",
                            device_id = device,
                            driver = "nmea",
                            device_time = %fix.utc_ms.map(crate::event::format_ts_ms).unwrap_or_default(),
                            "the receiver's time is off by more than max_clock_skew_s from the synchronised box clock (GPS week rollover?): positions carry the box's time and clock \"device_unreliable\" (its own time stays in gnss_time)"
                        );
                    }
                }
                Event::new(
                    device,
                    "position",
                    Priority::Telemetry,
                    (ts_ms, clock),
                    false,
                    position_data(&fix),
                )
            }
            Report::Health { kind, mut data } => {
                tracing::info!(
                    event = kind,
                    device_id = device,
                    driver = "nmea",
                    "receiver state changed"
                );
                data["driver"] = "nmea".into();
                Event::new(device, kind, Priority::Event, (now, clock), false, data)
            }
        };
        if sink.send(ev).await.is_err() {
            return false;
        }
    }
    true
}
