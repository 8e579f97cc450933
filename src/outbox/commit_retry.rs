//! What the writer does when a commit fails, as a small unit of its own: on a full disk, make
//! room by evicting (a few times in a row at most) and try again at once; otherwise wait,
//! 50 ms doubling to 5 s, and try again, for as long as the daemon runs; at shutdown, give up
//! after 20 attempts so a dead disk cannot hold the process forever.

use crate::backoff::{Backoff, Retry};
use std::time::Duration;

/// Evictions for a full disk in a row without a commit getting through; then the writer waits
/// and retries as for any other failure (evicting does not help, e.g. under a disk quota
/// where freed pages are not free blocks).
pub(super) const MAX_RELIEFS: u32 = 8;
/// Failed attempts after which a writer that is shutting down drops what it holds.
pub(super) const ATTEMPTS_AT_SHUTDOWN: u32 = 20;
const BACKOFF: Backoff = Backoff {
    min_ms: 50,
    max_ms: 5_000,
};

/// What to do after a failed commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NextStep {
    /// Room was made: try again now.
    Again,
    /// Wait this long, then try again.
    Wait(Duration),
    /// Shutting down and it keeps failing: drop the batch (and say so).
    GiveUp,
}

/// One batch's retries.
#[derive(Debug)]
pub(super) struct CommitRetry {
    waits: Retry,
    reliefs: u32,
}

impl CommitRetry {
    pub(super) fn new() -> CommitRetry {
        CommitRetry {
            waits: Retry::new(BACKOFF, false),
            reliefs: 0,
        }
    }

    /// A commit went through: a later full disk may be relieved again.
    pub(super) fn committed(&mut self) {
        self.reliefs = 0;
    }

    /// A commit failed. `relieve` evicts to make room and says whether it did; it is only
    /// called for a full disk, and only while evicting still may help.
    pub(super) fn failed(
        &mut self,
        disk_full: bool,
        shutting_down: bool,
        relieve: impl FnOnce() -> bool,
    ) -> NextStep {
        if disk_full && self.reliefs < MAX_RELIEFS && relieve() {
            self.reliefs += 1;
            return NextStep::Again;
        }
        let delay = self.waits.next_delay();
        if shutting_down && self.waits.attempts() >= ATTEMPTS_AT_SHUTDOWN {
            NextStep::GiveUp
        } else {
            NextStep::Wait(delay)
        }
    }

    /// Failed attempts that waited, so far.
    pub(super) fn attempts(&self) -> u32 {
        self.waits.attempts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> NextStep {
        NextStep::Wait(Duration::from_millis(n))
    }

    #[test]
    fn a_full_disk_is_relieved_a_few_times_in_a_row_then_waited_out() {
        let mut r = CommitRetry::new();
        let mut asked = 0;
        for _ in 0..MAX_RELIEFS {
            assert_eq!(
                r.failed(true, false, || {
                    asked += 1;
                    true
                }),
                NextStep::Again
            );
        }
        assert_eq!(
            r.failed(true, false, || panic!("evicting did not help: stop asking")),
            ms(50)
        );
        assert_eq!(asked, MAX_RELIEFS);
        // A commit that gets through lets a later full disk be relieved again.
        r.committed();
        assert_eq!(r.failed(true, false, || true), NextStep::Again);
    }

    #[test]
    fn nothing_to_evict_or_another_error_waits_doubling_up_to_5_s() {
        let mut r = CommitRetry::new();
        assert_eq!(r.failed(true, false, || false), ms(50), "only alarms left");
        let waits: Vec<NextStep> = (0..8)
            .map(|_| r.failed(false, false, || panic!("not a full disk")))
            .collect();
        assert_eq!(
            waits,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                ms(5000),
                ms(5000)
            ]
        );
        assert_eq!(r.attempts(), 9);
    }

    #[test]
    fn while_running_it_never_gives_up_at_shutdown_it_does_after_20_attempts() {
        let mut r = CommitRetry::new();
        for _ in 0..100 {
            assert_ne!(r.failed(false, false, || false), NextStep::GiveUp);
        }
        let mut r = CommitRetry::new();
        let steps: Vec<NextStep> = (0..ATTEMPTS_AT_SHUTDOWN)
            .map(|_| r.failed(false, true, || false))
            .collect();
        assert!(steps[..19].iter().all(|s| matches!(s, NextStep::Wait(_))));
        assert_eq!(steps[19], NextStep::GiveUp);
    }
}
