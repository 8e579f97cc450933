//! The one backoff of the daemon: exponential delays with a cap, for every retry loop — the
//! uplink's reconnects (with full jitter), a serial port's reopening and the outbox writer's
//! commit retries (without).
//!
//! After a central broker restarts, a thousand stations must not reconnect in the same second.
//! "Full jitter" (a uniformly random delay between zero and the exponential ceiling) spreads
//! them best; see the AWS Architecture Blog, "Exponential Backoff And Jitter". A local retry
//! (a port, the disk) competes with nobody and waits the ceiling itself.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    /// The ceiling for the `attempt`-th consecutive failed round (0-based).
    pub fn ceiling_ms(&self, attempt: u32) -> u64 {
        let exp = self
            .min_ms
            .saturating_mul(1u64.checked_shl(attempt.min(32)).unwrap_or(u64::MAX));
        exp.min(self.max_ms)
    }

    /// A random delay in `[0, ceiling]`; `random(n)` must return a value in `0..=n`.
    pub fn delay(&self, attempt: u32, random: impl FnOnce(u64) -> u64) -> Duration {
        let ceiling = self.ceiling_ms(attempt);
        Duration::from_millis(random(ceiling).min(ceiling))
    }

    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, |n| fastrand::u64(0..=n))
    }
}

/// A retry loop's state under a [`Backoff`]: how many attempts failed in a row.
#[derive(Debug, Clone)]
pub struct Retry {
    policy: Backoff,
    jitter: bool,
    attempt: u32,
}

impl Retry {
    /// Delays of `policy`: full jitter when `jitter` (many peers retry against one server),
    /// else the ceiling itself (a local resource).
    pub fn new(policy: Backoff, jitter: bool) -> Retry {
        Retry {
            policy,
            jitter,
            attempt: 0,
        }
    }

    /// The delay before the next attempt; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(|n| fastrand::u64(0..=n))
    }

    /// As [`Retry::next_delay`], with the jitter drawn from `random` (a value in `0..=n`):
    /// for a caller that keeps its randomness apart, as the uplink's state machine does.
    pub fn next_delay_with(&mut self, random: impl FnOnce(u64) -> u64) -> Duration {
        let delay = if self.jitter {
            self.policy.delay(self.attempt, random)
        } else {
            Duration::from_millis(self.policy.ceiling_ms(self.attempt))
        };
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// It worked: the next failure starts again from the shortest delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures in a row so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = Backoff {
            min_ms: 500,
            max_ms: 60_000,
        };
        let ceilings: Vec<u64> = (0..10).map(|a| b.ceiling_ms(a)).collect();
        assert_eq!(
            ceilings,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
        assert_eq!(b.ceiling_ms(u32::MAX), 60_000);
    }

    #[test]
    fn a_local_retry_waits_the_ceiling_and_starts_over_after_a_success() {
        let mut r = Retry::new(
            Backoff {
                min_ms: 250,
                max_ms: 10_000,
            },
            false,
        );
        let d: Vec<u64> = (0..8).map(|_| r.next_delay().as_millis() as u64).collect();
        assert_eq!(d, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        r.reset();
        assert_eq!(r.next_delay(), Duration::from_millis(250));
    }

    #[test]
    fn delay_is_jittered_within_the_ceiling() {
        let b = Backoff {
            min_ms: 500,
            max_ms: 60_000,
        };
        assert_eq!(b.delay(3, |_| 0), Duration::ZERO);
        assert_eq!(b.delay(3, |n| n), Duration::from_millis(4000));
        let spread: std::collections::HashSet<u128> =
            (0..50).map(|_| b.delay_random(6).as_millis()).collect();
        assert!(spread.len() > 10, "delays must differ between stations");
        assert!(spread.iter().all(|&d| d <= 32_000));
    }
}
