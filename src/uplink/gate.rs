//! The backlog's replay gives way to live video: while a `video.push` runs (the video is what
//! central needs now, on the same uplink), the uplink sends alarms and live rows but holds the
//! historical backlog; when the last push ends, replay resumes where it stopped. Holders take
//! a [`ReplayHold`]; dropping it releases the gate and wakes the uplink.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::Notify;

/// Shared by the uplink (which asks [`ReplayGate::held`] before each read-ahead) and whoever
/// needs the link for something more urgent.
#[derive(Default)]
pub struct ReplayGate {
    holders: AtomicUsize,
    /// The uplink's "new data" bell: rung when the gate opens, so the held backlog is read.
    wake: OnceLock<Arc<Notify>>,
}

impl ReplayGate {
    /// Rings `wake` when the gate opens (the uplink's new-data notification).
    pub fn wake_with(&self, wake: Arc<Notify>) {
        let _ = self.wake.set(wake);
    }

    /// Whether the backlog's replay is held now.
    pub fn held(&self) -> bool {
        self.holders.load(Ordering::Acquire) > 0
    }

    /// Holds the replay until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>, why: &str) -> ReplayHold {
        if self.holders.fetch_add(1, Ordering::AcqRel) == 0 {
            tracing::info!(
                event = "outbox.replay_held",
                why,
                "the backlog's replay gives way (alarms and live data still flow)"
            );
        }
        ReplayHold(self.clone())
    }
}

/// A hold on the replay; released on drop.
pub struct ReplayHold(Arc<ReplayGate>);

impl Drop for ReplayHold {
    fn drop(&mut self) {
        if self.0.holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            tracing::info!(
                event = "outbox.replay_resumed",
                "the backlog's replay resumes"
            );
            if let Some(wake) = self.0.wake.get() {
                wake.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_is_held_while_any_hold_lives_and_rings_when_it_opens() {
        let gate = Arc::new(ReplayGate::default());
        let bell = Arc::new(Notify::new());
        gate.wake_with(bell.clone());
        assert!(!gate.held());
        let a = gate.hold("push 1");
        let b = gate.hold("push 2");
        drop(a);
        assert!(gate.held(), "one push still runs");
        drop(b);
        assert!(!gate.held());
        // The permit stored by notify_one: the uplink's next wait returns at once.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), bell.notified())
                .await
                .expect("rung");
        });
    }
}
