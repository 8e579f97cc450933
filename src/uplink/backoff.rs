//! Reconnect delays: exponential with full jitter and a cap.
//!
//! After a central broker restarts, a thousand stations must not reconnect in the same second.
//! "Full jitter" (a uniformly random delay between zero and the exponential ceiling) spreads
//! them best; see the AWS Architecture Blog, "Exponential Backoff And Jitter".

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
