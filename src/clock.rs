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
        crate::metrics::inc(&crate::metrics::counter("clock.state_unreadable", ""));
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

/// Default for a device's `max_clock_skew_s`: one day. Catches what really happens — a
/// terminal whose RTC battery is flat starts in 2000, a receiver hit by the GPS week rollover
/// is 19.6 years back — without second-guessing a device that is minutes off.
pub const DEFAULT_MAX_CLOCK_SKEW_S: u64 = 86_400;

/// [`DEFAULT_MAX_CLOCK_SKEW_S`], for serde's `default =` on the drivers' configs.
pub fn default_max_clock_skew_s() -> u64 {
    DEFAULT_MAX_CLOCK_SKEW_S
}

/// The `ts` for something a device stamped itself at `device_ms`, received `now` (the box's
/// time and state). While the box clock is synchronised it is the judge: a device time more
/// than `max_skew_ms` away from it (live reports), or more than that in its future
/// (`backfill`: stored reports may be old, never from the future), is not believed, and the
/// box's time is used with `clock: "device_unreliable"`. Without a synchronised box clock the
/// device's time is the better one and is kept. The bool says the device's time was rejected.
pub fn device_stamp(
    device_ms: Option<i64>,
    now: (i64, ClockQuality),
    max_skew_ms: i64,
    backfill: bool,
) -> ((i64, ClockQuality), bool) {
    let Some(device_ms) = device_ms else {
        return (now, false);
    };
    let (box_ms, box_clock) = now;
    let off = device_ms - box_ms;
    let unbelievable = if backfill {
        off > max_skew_ms
    } else {
        off.abs() > max_skew_ms
    };
    if box_clock == ClockQuality::Synced && unbelievable {
        ((box_ms, ClockQuality::DeviceUnreliable), true)
    } else {
        ((device_ms, ClockQuality::Synced), false)
    }
}

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
    fn a_device_time_years_off_is_replaced_only_when_the_box_clock_is_synchronised() {
        const DAY: i64 = 86_400_000;
        let box_ms = 1_795_000_000_000; // 2026-11-18
        let synced = (box_ms, ClockQuality::Synced);
        let unsynced = (box_ms, ClockQuality::Unsynced);
        let rollover = box_ms - 7_168 * DAY; // 1024 GPS weeks back
        assert_eq!(
            device_stamp(Some(rollover), synced, DAY, false),
            ((box_ms, ClockQuality::DeviceUnreliable), true)
        );
        assert_eq!(
            device_stamp(Some(box_ms + 2 * DAY), synced, DAY, false),
            ((box_ms, ClockQuality::DeviceUnreliable), true),
            "the future too"
        );
        assert_eq!(
            device_stamp(Some(box_ms - 3_600_000), synced, DAY, false),
            ((box_ms - 3_600_000, ClockQuality::Synced), false),
            "an hour off is within the limit"
        );
        assert_eq!(
            device_stamp(Some(rollover), unsynced, DAY, false),
            ((rollover, ClockQuality::Synced), false),
            "nothing to judge it by"
        );
        assert_eq!(
            device_stamp(Some(box_ms - 3 * DAY), synced, DAY, true),
            ((box_ms - 3 * DAY, ClockQuality::Synced), false),
            "back-fill may be old"
        );
        assert_eq!(
            device_stamp(Some(box_ms + 2 * DAY), synced, DAY, true),
            ((box_ms, ClockQuality::DeviceUnreliable), true),
            "but not from the future"
        );
        assert_eq!(device_stamp(None, unsynced, DAY, false), (unsynced, false));
    }

    #[test]
    fn the_monotonic_clock_never_goes_back() {
        let a = mono_ms();
        let b = mono_ms();
        assert!(a >= 1 && b >= a);
    }
}
