//! Whether the box's clock can be trusted, from the kernel's synchronisation state.
//!
//! A station box may have no battery-backed clock: after a power cut it starts in 1970 or at
//! its last shutdown time until NTP or GNSS time sets it. `adjtimex(2)` (read-only, `modes = 0`)
//! tells whether a time-sync daemon has disciplined the clock: it returns `TIME_ERROR` and
//! sets `STA_UNSYNC` while the clock is unsynchronised. Every event carries the answer as
//! `clock` so that evidence and response-time figures can be weighed.

use crate::event::ClockQuality;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Asks the kernel now. Read-only; any failure counts as unsynchronised.
pub fn kernel_sync_state() -> ClockQuality {
    // SAFETY: `timex` is plain old data; modes = 0 makes adjtimex read-only.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0;
    // SAFETY: `tx` is a valid, exclusively borrowed timex for the duration of the call.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state == -1 || state == libc::TIME_ERROR || (tx.status & libc::STA_UNSYNC) != 0 {
        ClockQuality::Unsynced
    } else {
        ClockQuality::Synced
    }
}

/// Milliseconds since the Unix epoch from the system clock.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

static CACHED_STATE: AtomicU8 = AtomicU8::new(0); // 0 = unknown, 1 = synced, 2 = unsynced
static CACHED_AT_MS: AtomicI64 = AtomicI64::new(i64::MIN);

/// The time now and whether it can be trusted. The kernel's answer is cached for one second:
/// it changes rarely and drivers stamp many events per second.
pub fn now() -> (i64, ClockQuality) {
    let now = unix_ms();
    let at = CACHED_AT_MS.load(Ordering::Relaxed);
    let cached = CACHED_STATE.load(Ordering::Relaxed);
    let quality = if cached != 0 && now.wrapping_sub(at).abs() < 1000 {
        if cached == 1 {
            ClockQuality::Synced
        } else {
            ClockQuality::Unsynced
        }
    } else {
        let q = kernel_sync_state();
        CACHED_STATE.store(
            if q == ClockQuality::Synced { 1 } else { 2 },
            Ordering::Relaxed,
        );
        CACHED_AT_MS.store(now, Ordering::Relaxed);
        q
    };
    (now, quality)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2020_and_state_matches_kernel() {
        let (ms, q) = now();
        assert!(ms > 1_577_836_800_000);
        assert_eq!(q, kernel_sync_state());
    }
}
