//! Telling systemd how the daemon is doing (`Type=notify`): READY=1 once the outbox, the
//! drivers and the uplink are started, STATUS= lines a technician sees in `systemctl status`,
//! STOPPING=1 on shutdown, and watchdog pings sent only while the writer and the uplink prove
//! they are alive. Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use sd_notify::NotifyState;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

static WARNED: AtomicBool = AtomicBool::new(false);

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(event = "systemd.notify_failed", error = %e, "cannot notify systemd");
        }
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// RELOADING=1: systemd shows the unit `reloading` until the next READY=1.
pub fn reloading() {
    send(&[
        NotifyState::Reloading,
        NotifyState::Status("reloading the configuration"),
    ]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to check liveness and ping: half of `WatchdogSec=`, or None without a watchdog.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// A promise from a long-running task: "I will show a sign of life again before this time".
/// The watchdog pings systemd only while every promise is kept, so a wedged task gets the
/// daemon restarted. Deadlines are on the monotonic clock: NTP stepping the wall clock by
/// hours (a box without a battery-backed clock, after boot) neither breaks a promise that is
/// being kept nor hides one that is not.
#[derive(Debug, Default)]
pub struct Heartbeat {
    /// [`crate::clock::mono_ms`] by which the next beat is due; 0 before the first beat.
    deadline_mono_ms: AtomicU64,
}

impl Heartbeat {
    /// The task is alive now and will beat again within `next`.
    pub fn beat(&self, next: Duration) {
        self.beat_at(crate::clock::mono_ms(), next);
    }

    pub fn alive(&self) -> bool {
        self.alive_at(crate::clock::mono_ms())
    }

    fn beat_at(&self, now_mono_ms: u64, next: Duration) {
        let deadline = now_mono_ms.saturating_add(next.as_millis() as u64);
        self.deadline_mono_ms.store(deadline, Ordering::Relaxed);
    }

    fn alive_at(&self, now_mono_ms: u64) -> bool {
        let d = self.deadline_mono_ms.load(Ordering::Relaxed);
        d == 0 || now_mono_ms <= d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_promise_is_noticed() {
        let h = Heartbeat::default();
        assert!(h.alive(), "not started yet");
        h.beat(Duration::from_secs(60));
        assert!(h.alive());
        h.beat_at(1_000, Duration::from_secs(30));
        assert!(h.alive_at(31_000));
        assert!(!h.alive_at(31_001), "the promise ran out");
    }
}
