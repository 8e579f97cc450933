//! Telling systemd how the daemon is doing (`Type=notify`): READY=1 once the outbox, the
//! drivers and the uplink are started, STATUS= lines a technician sees in `systemctl status`,
//! STOPPING=1 on shutdown, and watchdog pings sent only while the writer and the uplink prove
//! they are alive. Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use sd_notify::NotifyState;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
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
/// daemon restarted.
#[derive(Debug, Default)]
pub struct Heartbeat {
    deadline_ms: AtomicI64,
}

impl Heartbeat {
    /// The task is alive now and will beat again within `next`.
    pub fn beat(&self, next: Duration) {
        let deadline = crate::clock::unix_ms() + next.as_millis() as i64;
        self.deadline_ms.store(deadline, Ordering::Relaxed);
    }

    pub fn alive(&self) -> bool {
        let d = self.deadline_ms.load(Ordering::Relaxed);
        d == 0 || crate::clock::unix_ms() <= d
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
        h.beat(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!h.alive());
    }
}
