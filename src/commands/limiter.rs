//! The rate limit per command name: at most N messages of one name in any 60 s (monotonic
//! time), so a flood cannot starve the uplink or the outbox. Names are arbitrary topic levels,
//! so the number of names tracked is bounded too: beyond it, unknown names share one budget.

use std::collections::{HashMap, VecDeque};

const WINDOW_MS: u64 = 60_000;
/// Names tracked one by one; the rest share `OTHER`.
const MAX_NAMES: usize = 64;
const OTHER: &str = "(other names)";

pub(super) struct RateLimiter {
    per_minute: usize,
    taken: HashMap<String, VecDeque<u64>>,
}

impl RateLimiter {
    pub(super) fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: per_minute.max(1) as usize,
            taken: HashMap::new(),
        }
    }

    /// Whether a message of `name` at `now_ms` (monotonic) is within the limit; counts it if so.
    pub(super) fn allow(&mut self, name: &str, now_ms: u64) -> bool {
        self.taken.retain(|_, times| {
            while times.front().is_some_and(|t| t + WINDOW_MS <= now_ms) {
                times.pop_front();
            }
            !times.is_empty()
        });
        let key = if self.taken.contains_key(name) || self.taken.len() < MAX_NAMES {
            name
        } else {
            OTHER
        };
        let times = self.taken.entry(key.to_string()).or_default();
        if times.len() >= self.per_minute {
            return false;
        }
        times.push_back(now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_gets_its_budget_per_sliding_minute_and_other_names_their_own() {
        let mut l = RateLimiter::new(3);
        let start = 1_000_000;
        assert!((0..3).all(|i| l.allow("ping", start + i)));
        assert!(!l.allow("ping", start + 10), "the fourth in the minute");
        assert!(
            l.allow("jt808.text", start + 10),
            "another name has its own"
        );
        assert!(!l.allow("ping", start + WINDOW_MS - 1));
        assert!(
            l.allow("ping", start + WINDOW_MS + 1),
            "the first one has left the minute"
        );
    }

    #[test]
    fn a_flood_of_names_shares_one_budget_beyond_the_tracked_ones() {
        let mut l = RateLimiter::new(2);
        for i in 0..MAX_NAMES {
            assert!(l.allow(&format!("n{i}"), 1_000_000));
        }
        assert!(l.allow("new1", 1_000_000));
        assert!(l.allow("new2", 1_000_000));
        assert!(!l.allow("new3", 1_000_000), "the shared budget is spent");
        assert_eq!(l.taken.len(), MAX_NAMES + 1);
    }
}
