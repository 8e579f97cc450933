//! The writer thread: the only code that writes the outbox file.
//!
//! Drivers hold an [`EventSink`], the uplink a [`WriterControl`]; both feed one bounded
//! channel, so a writer that cannot keep up (slow flash, full disk) back-pressures the drivers
//! instead of growing a queue in memory. Each loop takes what is queued and commits it in one
//! transaction (group commit, see the module doc of `outbox`).

use super::commit_retry::{CommitRetry, NextStep};
use super::evict::EvictionReason;
use super::store::Store;
use crate::event::Event;
use crate::metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Commands queued for the writer, in the order they must take effect.
pub(super) enum WriterCmd {
    Event(Event),
    /// An event whose sender waits to hear that it is on disk (see [`EventSink::send_durable`]).
    DurableEvent(Event, oneshot::Sender<()>),
    Acks(Vec<u64>),
    Flush(oneshot::Sender<()>),
}

/// Most events committed in one transaction.
const MAX_BATCH: usize = 8192;
/// Events per transaction while the filesystem limits the outbox: each transaction needs WAL
/// space for all it writes (inserts and evictions), so they stay small.
const DISK_CONSTRAINED_PIECE: usize = 1024;
/// An acks-only batch waits up to this long for more acks before it is committed...
const ACK_LINGER: Duration = Duration::from_millis(3);
/// ...unless it already holds this many.
const ACK_BATCH: usize = 1024;

/// Whether the uplink is connected; events created while it is not are `historical`.
#[derive(Debug, Default)]
pub struct LinkState(AtomicBool);

impl LinkState {
    pub fn set_up(&self, up: bool) {
        self.0.store(up, Ordering::SeqCst);
    }
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the outbox writer has stopped")]
pub struct SinkClosed;

/// A receipt for an event handed to [`EventSink::send_durable`]: resolves once the transaction
/// holding it has committed (so once it would survive a power cut under `durability =
/// "power-cut"`). Commits happen in queue order, so a receipt also vouches for every event
/// queued before it on the same sink.
#[derive(Debug)]
pub struct Committed(oneshot::Receiver<()>);

impl Committed {
    /// Waits for the commit. Err when the writer stopped without committing the event (it
    /// gave up at shutdown with the disk failing): the event is not safe.
    pub async fn wait(self) -> Result<(), SinkClosed> {
        self.0.await.map_err(|_| SinkClosed)
    }
}

/// What a driver holds to hand events to the outbox.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<WriterCmd>,
    link: Arc<LinkState>,
    /// Every alarm handed in, for the status page.
    alarms: Arc<crate::recent_alarms::RecentAlarms>,
}

impl EventSink {
    /// Queues an event; waits while the writer is behind. Stamps `historical` when the uplink
    /// is down at this moment.
    pub async fn send(&self, mut ev: Event) -> Result<(), SinkClosed> {
        if !self.link.is_up() {
            ev.historical = true;
        }
        self.alarms.record(&ev);
        self.tx
            .send(WriterCmd::Event(ev))
            .await
            .map_err(|_| SinkClosed)
    }

    /// The alarms handed to this sink (and its clones) lately, for the status page.
    pub fn recent_alarms(&self) -> Arc<crate::recent_alarms::RecentAlarms> {
        self.alarms.clone()
    }

    /// Queues the daemon's own `events` of `kind` (a part's state changes: `staffing.changed`,
    /// `equipment.changed`) with `device` the part's name, stamped now, in order.
    pub async fn send_own(
        &self,
        device: &str,
        kind: &str,
        events: Vec<serde_json::Value>,
    ) -> Result<(), SinkClosed> {
        for data in events {
            let ev = Event::new(
                device,
                kind,
                crate::event::Priority::Event,
                crate::clock::now(),
                false,
                data,
            );
            self.send(ev).await?;
        }
        Ok(())
    }

    /// As [`send`](Self::send), and returns a receipt that resolves once the event is
    /// committed: for a driver that must not acknowledge data to its device before the data is
    /// safe (a JT/T 808 terminal deletes what the platform acknowledged). The event still
    /// goes in with whatever else is queued (group commit); only the acknowledgement waits.
    pub async fn send_durable(&self, mut ev: Event) -> Result<Committed, SinkClosed> {
        if !self.link.is_up() {
            ev.historical = true;
        }
        self.alarms.record(&ev);
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(WriterCmd::DurableEvent(ev, tx))
            .await
            .map_err(|_| SinkClosed)?;
        Ok(Committed(rx))
    }
}

/// What the uplink holds: report acknowledged seqs, and wait until they are on disk.
#[derive(Clone)]
pub struct WriterControl {
    tx: mpsc::Sender<WriterCmd>,
}

impl WriterControl {
    pub async fn ack(&self, seqs: Vec<u64>) -> Result<(), SinkClosed> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.tx
            .send(WriterCmd::Acks(seqs))
            .await
            .map_err(|_| SinkClosed)
    }

    /// Returns once everything queued before it is committed.
    pub async fn flush(&self) -> Result<(), SinkClosed> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(WriterCmd::Flush(tx))
            .await
            .map_err(|_| SinkClosed)?;
        rx.await.map_err(|_| SinkClosed)
    }
}

/// The running writer; join it after every sink and control is dropped.
pub struct WriterThread {
    handle: std::thread::JoinHandle<()>,
}

impl WriterThread {
    /// Starts the writer on `store`. `new_data` is notified after each commit that added rows;
    /// `metrics` gets the outbox's counters and gauges.
    pub fn start(
        store: Store,
        queue: usize,
        new_data: Arc<Notify>,
        link: Arc<LinkState>,
        metrics: Arc<metrics::Metrics>,
    ) -> (WriterThread, EventSink, WriterControl) {
        let (tx, rx) = mpsc::channel(queue);
        let handle = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || run(store, rx, new_data, metrics))
            .expect("spawn the outbox writer thread");
        (
            WriterThread { handle },
            EventSink {
                tx: tx.clone(),
                link,
                alarms: Default::default(),
            },
            WriterControl { tx },
        )
    }

    /// Waits for the writer to commit what is queued and close the file.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

fn run(
    mut store: Store,
    mut rx: mpsc::Receiver<WriterCmd>,
    new_data: Arc<Notify>,
    metrics: Arc<metrics::Metrics>,
) {
    let committed = metrics.counter("outbox.events_committed", "");
    let commits = metrics.counter("outbox.commits", "");
    let failures = metrics.counter("outbox.commit_failures", "");
    let evicted = metrics.counter("outbox.evicted_rows", "");
    let backlog_rows = metrics.gauge("outbox.rows", "");
    let backlog_bytes = metrics.gauge("outbox.bytes", "");
    let disk_limited = metrics.gauge("outbox.disk_limited", "");
    metrics::set(&backlog_rows, store.rows());
    metrics::set(&backlog_bytes, store.bytes());
    let mut events: Vec<Event> = Vec::with_capacity(MAX_BATCH);
    let mut acks: Vec<u64> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    // Receipts of durable events: (index in `events`, sender), told once that index is committed.
    let mut receipts: Vec<(usize, oneshot::Sender<()>)> = Vec::new();
    let take = |cmd: WriterCmd,
                events: &mut Vec<Event>,
                acks: &mut Vec<u64>,
                flushes: &mut Vec<_>,
                receipts: &mut Vec<_>| match cmd {
        WriterCmd::Event(e) => events.push(e),
        WriterCmd::DurableEvent(e, receipt) => {
            receipts.push((events.len(), receipt));
            events.push(e);
        }
        WriterCmd::Acks(a) => acks.extend(a),
        WriterCmd::Flush(f) => flushes.push(f),
    };
    let mut warned_alarms_only = false;
    while let Some(cmd) = rx.blocking_recv() {
        take(cmd, &mut events, &mut acks, &mut flushes, &mut receipts);
        let linger_until = std::time::Instant::now() + ACK_LINGER;
        while events.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => take(cmd, &mut events, &mut acks, &mut flushes, &mut receipts),
                // Only acks so far, and few: wait a moment for more. Deleting them is not
                // urgent, and every commit costs an fsync and rewrites the same pages.
                Err(_)
                    if events.is_empty()
                        && flushes.is_empty()
                        && acks.len() < ACK_BATCH
                        && std::time::Instant::now() < linger_until =>
                {
                    #[allow(clippy::disallowed_methods)] // the writer is a plain thread
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(_) => break,
            }
        }
        if !events.is_empty() || !acks.is_empty() {
            let mut retry = CommitRetry::new();
            // The batch goes in as one transaction, or, on a full disk, in smaller pieces (a
            // transaction needs WAL space for all it writes): events[done..done + piece].
            let mut done = 0;
            let mut piece = if store.disk_constrained() {
                events.len().min(DISK_CONSTRAINED_PIECE)
            } else {
                events.len()
            };
            loop {
                let part = &events[done..(done + piece).min(events.len())];
                match store.commit(part, &acks) {
                    Ok(outcome) => {
                        done += part.len();
                        // On disk now: tell those waiting for these events.
                        let told = receipts.partition_point(|(i, _)| *i < done);
                        for (_, receipt) in receipts.drain(..told) {
                            let _ = receipt.send(());
                        }
                        acks.clear();
                        retry.committed();
                        metrics::inc(&commits);
                        metrics::set(&backlog_rows, store.rows());
                        metrics::set(&backlog_bytes, store.bytes());
                        metrics::set(&disk_limited, u64::from(store.disk_constrained()));
                        committed.fetch_add(outcome.seqs.len() as u64, Ordering::Relaxed);
                        if let Some(ev) = &outcome.eviction {
                            evicted.fetch_add(ev.rows(), Ordering::Relaxed);
                            tracing::warn!(
                                event = "outbox.evicted",
                                reason = ev.reason.as_str(),
                                rows = ev.rows(),
                                telemetry = ev.telemetry,
                                events = ev.events,
                                bytes = ev.bytes,
                                ranges = ev.ranges.len(),
                                "{}",
                                match ev.reason {
                                    EvictionReason::Quota => "outbox quota reached: evicted the oldest rows (reported to central)",
                                    EvictionReason::DiskFull => "the outbox's filesystem has less room than the quota: evicted the oldest rows (reported to central); free space or lower buffer.max_bytes",
                                }
                            );
                        }
                        if outcome.over_quota_with_alarms_only && !warned_alarms_only {
                            tracing::warn!(
                                event = "outbox.over_quota",
                                bytes = store.bytes(),
                                "outbox is over its quota with only alarms left; alarms are kept"
                            );
                        }
                        warned_alarms_only = outcome.over_quota_with_alarms_only;
                        if !outcome.seqs.is_empty() {
                            new_data.notify_one();
                        }
                        if done < events.len() {
                            continue;
                        }
                        store.ensure_ballast();
                        break;
                    }
                    Err(e) => {
                        metrics::inc(&failures);
                        let step = retry.failed(e.is_disk_full(), rx.is_closed(), || {
                            relieve(&mut store, part, &evicted)
                        });
                        if step == NextStep::Again {
                            // Room made by evicting old telemetry: go on at once, in small
                            // pieces.
                            piece = piece.min(DISK_CONSTRAINED_PIECE);
                            continue;
                        }
                        let attempts = retry.attempts();
                        tracing::error!(
                            event = "outbox.commit_failed",
                            error = %e,
                            disk_full = e.is_disk_full(),
                            pending_events = events.len() - done,
                            attempts,
                            "cannot commit to the outbox; inputs are held back until it works{}",
                            if e.is_disk_full() { " (disk full: free space on the outbox's filesystem)" } else { "" }
                        );
                        match step {
                            NextStep::Wait(delay) => {
                                #[allow(clippy::disallowed_methods)]
                                // the writer is a plain thread
                                std::thread::sleep(delay);
                            }
                            _ => {
                                tracing::error!(
                                    event = "outbox.events_lost",
                                    count = events.len() - done,
                                    "shutting down with events that could not be committed"
                                );
                                break;
                            }
                        }
                    }
                }
            }
        }
        events.clear();
        acks.clear();
        // Receipts of events that were not committed (the writer gave up): dropped, so their
        // senders learn the events are not safe.
        receipts.clear();
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
    }
    store.checkpoint();
}

/// The disk is full: evict old telemetry (then events, never alarms) to make room for `events`
/// and as much again, a ballast's worth at most per round. True when something was evicted.
fn relieve(store: &mut Store, events: &[Event], evicted: &metrics::Counter) -> bool {
    // The batch's size on disk, roughly: its data plus the envelope (docs/CONTRACT.md).
    let batch: u64 = events.iter().map(|e| e.data.get().len() as u64 + 400).sum();
    // Evicting touches pages, which costs WAL space too: a little at a time, repeated while
    // the disk stays full.
    let need = (2 * batch).min(super::disk::ballast_size(store.max_bytes()));
    match store.relieve_disk_full(need) {
        Ok(Some(ev)) => {
            evicted.fetch_add(ev.rows(), Ordering::Relaxed);
            tracing::warn!(
                event = "outbox.evicted",
                reason = "disk_full",
                rows = ev.rows(),
                telemetry = ev.telemetry,
                events = ev.events,
                bytes = ev.bytes,
                ranges = ev.ranges.len(),
                "the disk is full: evicted the oldest rows to keep accepting input (reported to central); free space on the outbox's filesystem"
            );
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::error!(event = "outbox.commit_failed", error = %e, disk_full = true, "could not evict to make room on the full disk");
            false
        }
    }
}
