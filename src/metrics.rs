//! Named counters, one naming scheme for logs and metrics (docs/INSTRUMENTATION.md).
//!
//! A counter is identified by its name (`jsonl.lines_rejected`) and an optional device id.
//! Hot paths look a counter up once and keep the `Arc<AtomicU64>`. The registry is what the
//! technician views and the periodic stats log line read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub type Counter = Arc<AtomicU64>;

fn registry() -> &'static Mutex<BTreeMap<(String, String), Counter>> {
    static REG: OnceLock<Mutex<BTreeMap<(String, String), Counter>>> = OnceLock::new();
    REG.get_or_init(Default::default)
}

/// The counter `name` for `device` ("" for station-wide counters), created at zero.
pub fn counter(name: &str, device: &str) -> Counter {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    reg.entry((name.to_string(), device.to_string()))
        .or_default()
        .clone()
}

pub fn inc(c: &Counter) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Sets a gauge (a counter that can go down: `outbox.rows`, `outbox.bytes`).
pub fn set(c: &Counter, value: u64) {
    c.store(value, Ordering::Relaxed);
}

/// The current value of `name` for `device` ("" for station-wide).
pub fn value(name: &str, device: &str) -> u64 {
    counter(name, device).load(Ordering::Relaxed)
}

/// Every counter with its value: ((name, device), value), sorted.
pub fn snapshot() -> Vec<((String, String), u64)> {
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    reg.iter()
        .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
        .collect()
}
