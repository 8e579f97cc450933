//! Whether a device's own timestamp can stand as an event's `ts` (docs/CONTRACT.md, "Device
//! clocks"): a terminal with a flat RTC battery or a receiver hit by the GPS week rollover
//! sends times years off, and only a synchronised box clock can tell.

use crate::event::ClockQuality;

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
}
