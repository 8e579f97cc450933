//! The daemon's two clocks, and whether the wall clock can be trusted.
//!
//! - **Wall clock** ([`unix_ms`], [`now`]): only for `ts`, the time a thing happened, which
//!   central compares across stations. It can jump: a box without a battery-backed clock boots
//!   at an old time and NTP steps it forward by hours.
//! - **Monotonic clock** ([`mono_ms`]): for every duration the daemon measures (watchdog
//!   deadlines, idle timeouts, rate limits, backoffs, caches). It never jumps. `clippy.toml`
//!   bans `SystemTime::now` outside this module so a duration cannot slip onto the wall clock.
//!
//! Whether the wall clock is synchronised comes from the kernel: `adjtimex(2)` with
//! `modes = 0` is read-only and tells whether a time-sync daemon (systemd-timesyncd, chrony,
//! ntpd, gpsd+chrony) has disciplined the clock — `TIME_ERROR` / `STA_UNSYNC` while it has
//! not. Every time-sync daemon keeps that kernel state, so it is the one source that works on
//! every box; `stationd check` and the envelope's `clock` read the same value (the daemon's,
//! through the control socket). Under the hardened unit `adjtimex` must be allowed explicitly:
//! `ProtectClock=yes` and `~@privileged` refuse even the read-only call (decision 0008). When
//! the call is refused the state is [`SyncState::Unreadable`]: events say `unsynced` (never a
//! false `synced`), the log says why once, and `stationd check` fails the clock check.

use crate::event::ClockQuality;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What the kernel says about the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    Synced,
    Unsynced,
    /// `adjtimex` failed with this errno (EPERM under a sandbox that forbids it).
    Unreadable(i32),
}

impl SyncState {
    /// The envelope's `clock` for events stamped with the box's time.
    pub fn quality(self) -> ClockQuality {
        match self {
            SyncState::Synced => ClockQuality::Synced,
            SyncState::Unsynced | SyncState::Unreadable(_) => ClockQuality::Unsynced,
        }
    }

    /// `synced`, `unsynced` or `unreadable` (the control socket's and the CLI's word).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "synced",
            SyncState::Unsynced => "unsynced",
            SyncState::Unreadable(_) => "unreadable",
        }
    }
}

/// Asks the kernel now. Read-only.
pub fn kernel_sync_state() -> SyncState {
    // SAFETY: `timex` is plain old data; modes = 0 makes adjtimex read-only.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0;
    // SAFETY: `tx` is a valid, exclusively borrowed timex for the duration of the call.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state == -1 {
        SyncState::Unreadable(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else if state == libc::TIME_ERROR || (tx.status & libc::STA_UNSYNC) != 0 {
        SyncState::Unsynced
    } else {
        SyncState::Synced
    }
}

/// Milliseconds since the Unix epoch from the system clock. For timestamps only: a duration
/// measured on it jumps when the clock is stepped (use [`mono_ms`]).
pub fn unix_ms() -> i64 {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Milliseconds on the monotonic clock since the first call in this process (never 0, never
/// goes back, unaffected by steps of the wall clock).
pub fn mono_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// The wall-clock time of an instant recorded as `mono` ([`mono_ms`]), as the wall clock
/// reads now (`now_wall`, `now_mono` taken together): the age it implies is the monotonic one,
/// whatever steps the wall clock took since. For showing in-memory times (a device last heard,
/// the uplink down since) to a technician.
pub fn wall_of_mono(mono: u64, now_wall: i64, now_mono: u64) -> i64 {
    now_wall - now_mono.saturating_sub(mono) as i64
}

/// How long a kernel answer is reused: it changes rarely and drivers stamp many events a second.
const STATE_CACHE_MS: u64 = 1000;

static CACHED_STATE: AtomicU8 = AtomicU8::new(0); // 0 = none yet, 1 synced, 2 unsynced, 3 unreadable
static CACHED_ERRNO: AtomicI32 = AtomicI32::new(0);
static CACHED_AT_MONO: AtomicU64 = AtomicU64::new(0);
/// Readings of the sync state that failed. The kernel's clock is the process's (and the
/// box's), so this one counter is process-wide; the control socket reports it among the
/// daemon's counters as `clock.state_unreadable`.
static UNREADABLE_READINGS: AtomicU64 = AtomicU64::new(0);

/// How many readings of the sync state failed since start.
pub fn unreadable_readings() -> u64 {
    UNREADABLE_READINGS.load(Ordering::Relaxed)
}

/// The kernel's answer, at most [`STATE_CACHE_MS`] old. The first time it cannot be read it is
/// logged (`clock.state_unreadable`) and counted.
pub fn sync_state() -> SyncState {
    let mono = mono_ms();
    let cached = CACHED_STATE.load(Ordering::Relaxed);
    if cached != 0 && mono.saturating_sub(CACHED_AT_MONO.load(Ordering::Relaxed)) < STATE_CACHE_MS {
        return match cached {
            1 => SyncState::Synced,
            2 => SyncState::Unsynced,
            _ => SyncState::Unreadable(CACHED_ERRNO.load(Ordering::Relaxed)),
        };
    }
    let state = kernel_sync_state();
    let code = match state {
        SyncState::Synced => 1,
        SyncState::Unsynced => 2,
        SyncState::Unreadable(errno) => {
            CACHED_ERRNO.store(errno, Ordering::Relaxed);
            3
        }
    };
    let previous = CACHED_STATE.swap(code, Ordering::Relaxed);
    CACHED_AT_MONO.store(mono, Ordering::Relaxed);
    if let SyncState::Unreadable(errno) = state {
        UNREADABLE_READINGS.fetch_add(1, Ordering::Relaxed);
        if previous != 3 {
            tracing::error!(
                event = "clock.state_unreadable",
                error = %std::io::Error::from_raw_os_error(errno),
                "cannot read the clock's sync state (adjtimex): events say clock \"unsynced\"; \
                 the unit must allow adjtimex (docs/OPERATIONS.md, \"The clock\")"
            );
        }
    }
    state
}

/// The time now and whether it can be trusted.
pub fn now() -> (i64, ClockQuality) {
    (unix_ms(), sync_state().quality())
}

pub use stationd_proto::device_clock::{
    default_max_clock_skew_s, device_stamp, DEFAULT_MAX_CLOCK_SKEW_S,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2020_and_state_matches_kernel() {
        let (ms, q) = now();
        assert!(ms > 1_577_836_800_000);
        assert_eq!(q, kernel_sync_state().quality());
    }

    #[test]
    fn the_monotonic_clock_never_goes_back() {
        let a = mono_ms();
        let b = mono_ms();
        assert!(a >= 1 && b >= a);
    }
}
