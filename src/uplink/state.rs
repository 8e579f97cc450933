//! What one MQTT session has in flight, pure: the read-ahead, the publishes queued to rumqttc
//! and those awaiting PUBACK (packet id → seq), the acks not yet handed to the writer, and the
//! refill policy (`plan_fetch`). The state machine in `machine.rs` drives it.

use crate::outbox::{Lane, OutRow, Reader};
use std::collections::{HashMap, VecDeque};

/// A read-ahead running on the blocking pool, with the id the state machine gave it.
pub(super) type PendingRead = tokio::task::JoinHandle<rusqlite::Result<(u64, Vec<(Lane, OutRow)>)>>;

/// The refill policy, kept apart from the session so it can be tested on a plain `Reader`.
/// Without `backlog` (the replay gate is held) no historical row is read.
pub fn plan_fetch(
    reader: &Reader,
    cursors: [u64; 3],
    free: usize,
    backlog: bool,
) -> rusqlite::Result<Vec<(Lane, OutRow)>> {
    let mut out = Vec::with_capacity(free);
    let take = |out: &mut Vec<(Lane, OutRow)>,
                lane: Lane,
                after: u64,
                n: usize|
     -> rusqlite::Result<u64> {
        if n == 0 {
            return Ok(after);
        }
        let rows = reader.fetch(lane, after, n)?;
        let last = rows.last().map(|r| r.seq).unwrap_or(after);
        out.extend(rows.into_iter().map(|r| (lane, r)));
        Ok(last)
    };
    take(&mut out, Lane::Alarm, cursors[Lane::Alarm as usize], free)?;
    let live_share = (free - out.len()).div_ceil(2);
    let live_after = take(
        &mut out,
        Lane::Live,
        cursors[Lane::Live as usize],
        live_share,
    )?;
    let room = if backlog { free - out.len() } else { 0 };
    take(
        &mut out,
        Lane::Backlog,
        cursors[Lane::Backlog as usize],
        room,
    )?;
    let room = free - out.len();
    take(&mut out, Lane::Live, live_after, room)?;
    Ok(out)
}

#[derive(Debug)]
pub(super) struct SessionState {
    /// Last seq read from the outbox per lane (indexed by `Lane as usize`).
    pub(super) cursors: [u64; 3],
    /// Rows read ahead, in send order, not yet published, with their lane.
    pub(super) ready: VecDeque<(Lane, OutRow)>,
    /// How many of them are backlog rows (the replay cap may hold those back).
    pub(super) backlog_ready: usize,
    /// The last read-ahead left the backlog lane out (a window of it was waiting already):
    /// more may be in the outbox, read once what waits has gone down.
    pub(super) backlog_pending: bool,
    /// Publishes queued to rumqttc whose packet id is not known yet (None: a status message).
    pub(super) queued: VecDeque<Option<u64>>,
    /// Packet id -> seq of publishes awaiting PUBACK.
    in_flight: HashMap<u16, Option<u64>>,
    pub(super) pending_acks: Vec<u64>,
    /// The id of the read-ahead running, if one is.
    pub(super) reading: Option<u64>,
    /// The outbox may hold rows after the cursors (the last read was full, or new data came).
    pub(super) maybe_more: bool,
    /// New data was announced while the read-ahead ran.
    pub(super) renotified: bool,
}

impl Default for SessionState {
    fn default() -> SessionState {
        SessionState {
            cursors: [0; 3],
            ready: VecDeque::new(),
            backlog_ready: 0,
            backlog_pending: false,
            queued: VecDeque::new(),
            in_flight: HashMap::new(),
            pending_acks: Vec::new(),
            reading: None,
            // A new session reads the outbox from the start.
            maybe_more: true,
            renotified: false,
        }
    }
}

impl SessionState {
    pub(super) fn in_window(&self) -> usize {
        self.queued.len() + self.in_flight.len()
    }
    pub(super) fn sent(&mut self, pkid: u16) {
        if let Some(seq) = self.queued.pop_front() {
            self.in_flight.insert(pkid, seq);
        }
    }
    /// True when the PUBACK was for an outbox row.
    pub(super) fn acked(&mut self, pkid: u16) -> bool {
        match self.in_flight.remove(&pkid) {
            Some(Some(seq)) => {
                self.pending_acks.push(seq);
                true
            }
            _ => false,
        }
    }
    /// A publish the broker refused: out of the window, not acknowledged. Its seq when it was
    /// an outbox row.
    pub(super) fn refused(&mut self, pkid: u16) -> Option<u64> {
        self.in_flight.remove(&pkid).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubacks_map_back_to_seqs_in_the_order_publishes_were_queued() {
        let mut s = SessionState::default();
        // Three publishes queued: a status message (no seq), then rows 7 and 8.
        s.queued.extend([None, Some(7), Some(8)]);
        assert_eq!(s.in_window(), 3);
        // rumqttc reports their packet ids in queue order.
        for pkid in [1, 2, 3] {
            s.sent(pkid);
        }
        assert_eq!(s.in_window(), 3, "sent, not yet acknowledged");
        assert!(!s.acked(1), "the status message is not an outbox row");
        assert!(s.acked(3));
        assert!(!s.acked(3), "a second PUBACK for the same id acks nothing");
        assert!(s.acked(2));
        assert_eq!(s.pending_acks, [8, 7], "acks in the order they came");
        assert_eq!(s.in_window(), 0);
    }
}
