//! The backlog replay's bandwidth cap, pure: a token bucket in bytes, refilled at the cap's
//! rate on the monotonic clock the state machine is given. Live rows and alarms never wait for
//! it; only rows of the backlog lane (created while the uplink was down) spend from it.
//!
//! A row is sent while the bucket is above zero and may take it below (a 60 KiB row on a
//! 20 kB/s cap is sent, and the next backlog row waits three seconds): rows of any size go
//! through, and over a replay the average holds at the cap. Unused allowance is kept for at
//! most one second, so a link that was idle does not get a burst of more than one second's
//! worth.

/// Bytes a row costs: its payload and its topic (what goes on the wire, less a few bytes of
/// MQTT header).
pub fn row_bytes(row: &crate::outbox::OutRow) -> u64 {
    (row.payload.len() + row.topic.len()) as u64
}

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Bytes per second.
    rate: u64,
    /// Bytes that may go now (negative: owed).
    tokens: f64,
    /// When `tokens` was last brought up to date (monotonic ms).
    at: u64,
}

impl Budget {
    /// A budget of `rate` bytes/s starting empty at `now`.
    pub fn new(rate: u64, now: u64) -> Budget {
        Budget {
            rate: rate.max(1),
            tokens: 0.0,
            at: now,
        }
    }

    fn refill(&mut self, now: u64) {
        if now > self.at {
            let earned = self.rate as f64 * (now - self.at) as f64 / 1000.0;
            self.tokens = (self.tokens + earned).min(self.rate as f64);
            self.at = now;
        }
    }

    /// Whether a backlog row may go at `now`.
    pub fn open(&mut self, now: u64) -> bool {
        self.refill(now);
        self.tokens > 0.0
    }

    /// A backlog row of `bytes` went.
    pub fn spend(&mut self, bytes: u64) {
        self.tokens -= bytes as f64;
    }

    /// When the bucket is above zero again, if it is not now.
    pub fn reopens_at(&self) -> Option<u64> {
        (self.tokens <= 0.0)
            .then(|| self.at + ((-self.tokens) * 1000.0 / self.rate as f64).ceil() as u64 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `row` bytes whenever the budget is open, stepping time 1 ms: bytes sent in `ms`.
    fn replay(rate: u64, row: u64, ms: u64) -> u64 {
        let mut b = Budget::new(rate, 0);
        let mut sent = 0;
        for now in 0..ms {
            while b.open(now) {
                b.spend(row);
                sent += row;
            }
        }
        sent
    }

    #[test]
    fn the_average_holds_at_the_cap_for_small_and_large_rows() {
        for (rate, row) in [
            (20_000, 200),
            (20_000, 60_000),
            (1_000_000, 900),
            (5_000, 5_000),
        ] {
            let sent = replay(rate, row, 30_000);
            let expected = rate * 30;
            let off = sent.abs_diff(expected) as f64 / expected as f64;
            assert!(
                off < 0.1,
                "rate {rate}, rows of {row}: {sent} bytes in 30 s ({off:.3} off)"
            );
        }
    }

    #[test]
    fn it_says_when_it_reopens_and_keeps_at_most_a_second() {
        let mut b = Budget::new(10_000, 1_000);
        assert!(!b.open(1_000));
        let at = b.reopens_at().unwrap();
        assert!(at > 1_000 && at <= 1_002, "{at}");
        assert!(b.open(at));
        b.spend(25_000); // a large row goes through, and is owed
        let at = b.reopens_at().unwrap();
        assert!((3_400..3_600).contains(&at), "{at}");
        assert!(!b.open(at - 2));
        // Idle for a minute: at most one second's worth at once.
        assert!(b.open(70_000));
        b.spend(10_000);
        assert!(!b.open(70_000));
    }
}
