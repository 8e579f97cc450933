//! Eviction: the oldest telemetry, then the oldest events, never alarms, in the same
//! transaction as the `outbox.evicted` alarm that names the dropped seqs (the only allowed
//! gap in `seq`).

use super::store::{insert_row, NewRow, ROW_OVERHEAD};
use super::Lane;
use crate::event::{Event, Priority};
use rusqlite::params;

/// Eviction frees down to this share of the quota, so that it runs in rounds, not per event.
pub(super) const EVICT_TO_PERCENT: u64 = 90;

/// Rows evicted per statement while freeing space.
const EVICT_CHUNK: i64 = 2048;

/// Why rows were evicted, as `outbox.evicted` tells central.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionReason {
    /// Over `buffer.max_bytes`.
    #[default]
    Quota,
    /// The filesystem has less room than the quota.
    DiskFull,
}

impl EvictionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionReason::Quota => "quota",
            EvictionReason::DiskFull => "disk_full",
        }
    }
}

/// What one eviction round dropped; becomes the `outbox.evicted` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eviction {
    /// Inclusive seq ranges, ascending.
    pub ranges: Vec<(u64, u64)>,
    pub telemetry: u64,
    pub events: u64,
    pub bytes: u64,
    /// Set when the round is recorded.
    pub reason: EvictionReason,
}

impl Eviction {
    pub fn rows(&self) -> u64 {
        self.telemetry + self.events
    }
}

/// Deletes the oldest telemetry, then the oldest events, until `need` bytes are freed.
/// Alarms are never evicted.
pub(super) fn evict(tx: &rusqlite::Transaction<'_>, need: u64) -> rusqlite::Result<Eviction> {
    let mut ev = Eviction::default();
    let mut seqs = Vec::new();
    for prio in [Priority::Telemetry, Priority::Event] {
        while ev.bytes < need {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, length(payload) + length(topic) FROM outbox WHERE prio = ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows: Vec<(i64, i64)> = stmt
                .query_map(params![prio as i64, EVICT_CHUNK], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            if rows.is_empty() {
                break;
            }
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
            for (seq, size) in rows {
                if ev.bytes >= need {
                    break;
                }
                del.execute([seq])?;
                ev.bytes += size as u64 + ROW_OVERHEAD;
                seqs.push(seq as u64);
                match prio {
                    Priority::Telemetry => ev.telemetry += 1,
                    _ => ev.events += 1,
                }
            }
        }
    }
    seqs.sort_unstable();
    ev.ranges = to_ranges(&seqs);
    Ok(ev)
}

/// Inserts the `outbox.evicted` alarm for `eviction` at `seq` and counts the round in `meta`;
/// returns the bytes the alarm row adds.
pub(super) fn record_eviction(
    tx: &rusqlite::Transaction<'_>,
    station: &str,
    seq: u64,
    eviction: &Eviction,
) -> rusqlite::Result<u64> {
    let report = eviction_event(eviction);
    let payload = report.to_envelope_json(station, seq);
    let topic = report.topic_suffix();
    let mut ins = tx.prepare_cached(
        "INSERT INTO outbox(seq, lane, prio, created_ms, topic, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let added = insert_row(
        &mut ins,
        seq,
        &NewRow {
            lane: Lane::of(&report),
            prio: report.prio,
            created_ms: report.ts_ms,
            topic: &topic,
            payload: &payload,
        },
    )?;
    tx.execute(
        "UPDATE meta SET value = value + ?1 WHERE key = 'evicted_rows'",
        [eviction.rows() as i64],
    )?;
    tx.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'eviction_rounds'",
        [],
    )?;
    Ok(added)
}

/// Sorted seqs to inclusive ranges: [1,2,3,7] -> [(1,3),(7,7)].
pub fn to_ranges(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in sorted {
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == s => *hi = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// The contract's `outbox.evicted` event. It is an alarm so that it is itself never evicted:
/// it is the only explanation a consumer gets for a gap in `seq`.
pub fn eviction_event(e: &Eviction) -> Event {
    super::own_event(
        "outbox",
        "outbox.evicted",
        Priority::Alarm,
        serde_json::json!({
            "reason": e.reason.as_str(),
            "rows": e.rows(),
            "telemetry": e.telemetry,
            "events": e.events,
            "bytes": e.bytes,
            "ranges": e.ranges.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>(),
        }),
    )
}
