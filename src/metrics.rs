//! Named counters, one naming scheme for logs and metrics (docs/INSTRUMENTATION.md).
//!
//! A counter is identified by its name (`jsonl.lines_rejected`) and an optional device id.
//! Hot paths look a counter up once and keep the `Arc<AtomicU64>`. The registry ([`Metrics`])
//! is owned by the running daemon and handed to its parts (drivers through their
//! `DeviceContext`, the writer, the uplink, the control socket), so two daemons in one
//! process (the benchmark, the demo) keep their own counts.
//!
//! Most are counters (they only go up while the daemon runs); the few that go down
//! (`outbox.rows`) are made with [`Metrics::gauge`], so the Prometheus exposition
//! (`crate::web::prometheus`) can type them right.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub type Counter = Arc<AtomicU64>;

/// One daemon's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<BTreeMap<(String, String), Counter>>,
    /// Names made with [`Metrics::gauge`].
    gauges: Mutex<std::collections::BTreeSet<String>>,
}

impl Metrics {
    /// The counter `name` for `device` ("" for station-wide counters), created at zero.
    pub fn counter(&self, name: &str, device: &str) -> Counter {
        let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        reg.entry((name.to_string(), device.to_string()))
            .or_default()
            .clone()
    }

    /// The gauge `name` for `device`: a value that goes up and down, changed with [`set`].
    pub fn gauge(&self, name: &str, device: &str) -> Counter {
        self.gauges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        self.counter(name, device)
    }

    /// Whether `name` was made with [`Metrics::gauge`].
    pub fn is_gauge(&self, name: &str) -> bool {
        self.gauges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// The current value of `name` for `device` ("" for station-wide).
    pub fn value(&self, name: &str, device: &str) -> u64 {
        self.counter(name, device).load(Ordering::Relaxed)
    }

    /// Every counter with its value: ((name, device), value), sorted.
    pub fn snapshot(&self) -> Vec<((String, String), u64)> {
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        reg.iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

pub fn inc(c: &Counter) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` (bytes hashed, …).
pub fn add(c: &Counter, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Sets a gauge (a counter that can go down: `outbox.rows`, `outbox.bytes`).
pub fn set(c: &Counter, value: u64) {
    c.store(value, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_registries_keep_their_own_counts() {
        let (a, b) = (Metrics::default(), Metrics::default());
        inc(&a.counter("x", "d"));
        inc(&a.counter("x", "d"));
        assert_eq!((a.value("x", "d"), b.value("x", "d")), (2, 0));
        assert_eq!(a.snapshot(), [(("x".to_string(), "d".to_string()), 2)]);
    }

    #[test]
    fn a_gauge_is_known_as_one() {
        let m = Metrics::default();
        set(&m.gauge("outbox.rows", ""), 5);
        inc(&m.counter("outbox.commits", ""));
        assert!(m.is_gauge("outbox.rows") && !m.is_gauge("outbox.commits"));
        assert_eq!(m.value("outbox.rows", ""), 5);
    }
}
