//! The `dock` driver: the body-worn cameras' collection station, seen through the tree of files
//! it writes. Its config is [`config`]; the tree is read by [`scan`]; files are hashed on the
//! [`hasher`] thread; the evidence index (`crate::evidence`) keeps what was found.
//!
//! inotify (the `notify` crate) says when something changes; a full rescan at start and every
//! `rescan_s` finds what inotify missed (a queue overflow, a remount, files added while the
//! daemon was stopped). A file is indexed once it is complete: closed after writing, or
//! unchanged for `settle_s`. A recorder's directory appearing at the top of the tree is
//! `recorder.docked`, its disappearing `recorder.undocked` (the officer named: the staffing
//! issue's presence signal). An indexed file whose content changes is `footage.altered`; one
//! that disappears before it was uploaded is `footage.missing` (alarms).

mod config;
mod hasher;
mod scan;
pub mod upload;

pub use crate::upload::UploadSettings;
pub use config::{DockDevice, RecorderEntry};

use super::{DeviceContext, DeviceSink, Driver};
use crate::event::{Event, Priority};
use crate::evidence::store::NewEntry;
use crate::evidence::EvidenceIndex;
use crate::metrics::{self, Counter};
use scan::Stat;
use serde_json::{json, Value};
use stationd_proto::footage::{hex, media_type, name::start_unix_ms};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The registry's entry (`driver = "dock"`).
pub const DRIVER: Driver = Driver {
    name: "dock",
    serial: false,
    parse: super::parse_device::<DockDevice>,
    keys: crate::config::keys::keys_of::<DockDevice>,
};

/// Unreadable names logged in full before logging thins out.
const LOG_FIRST_UNPARSED: u64 = 10;
/// Candidates followed at once, at most (more wait for the next rescan).
const MAX_CANDIDATES: usize = 100_000;
/// Files indexed in one transaction of the evidence index, at most.
const BATCH: usize = 256;

struct Counters {
    indexed: Counter,
    bytes_hashed: Counter,
    unparsed: Counter,
    altered: Counter,
    missing: Counter,
    rescans: Counter,
    overflows: Counter,
    errors: Counter,
}

impl Counters {
    fn new(m: &crate::metrics::Metrics, id: &str) -> Counters {
        Counters {
            indexed: m.counter("dock.files_indexed", id),
            bytes_hashed: m.counter("dock.bytes_hashed", id),
            unparsed: m.counter("dock.names_unparsed", id),
            altered: m.counter("dock.files_altered", id),
            missing: m.counter("dock.files_missing", id),
            rescans: m.counter("dock.rescans", id),
            overflows: m.counter("dock.watch_overflows", id),
            errors: m.counter("dock.errors", id),
        }
    }
}

/// A file seen changing, waiting to be complete.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    stat: Option<Stat>,
    stable_since: Instant,
    closed: bool,
}

/// What the watcher thread hands over.
enum Watch {
    Event(notify::Event),
    /// Lost events (queue overflow, watch error): rescan.
    Rescan(String),
}

struct Dock {
    d: DockDevice,
    template: stationd_proto::footage::name::NameTemplate,
    offset_min: i32,
    sink: DeviceSink,
    board: Arc<crate::board::Board>,
    counters: Counters,
    index: Arc<Mutex<EvidenceIndex>>,
    hasher: hasher::Hasher,
    candidates: HashMap<String, Candidate>,
    unparsed_logged: u64,
    /// Below the free-space threshold (the alarm was sent).
    storage_low: bool,
    docks: Arc<crate::evidence::Docks>,
    /// A directory appeared: files in it may predate its watch (inotify watches a new
    /// directory only once told of it; a directory moved in brings its files silently).
    rescan_soon: bool,
}

/// Runs until shutdown.
async fn run(d: DockDevice, ctx: DeviceContext, docks: Arc<crate::evidence::Docks>) {
    let DeviceContext {
        sink,
        shutdown,
        board,
        metrics,
        evidence_index: index_path,
        ..
    } = ctx;
    // The index first: without it nothing can be recorded. Retried (a full or read-only
    // state directory is fixed by the administrator, not by the daemon): after 1 s, doubling
    // to once a minute.
    let mut logged = false;
    let mut retry = crate::backoff::Retry::new(
        crate::backoff::Backoff {
            min_ms: 1_000,
            max_ms: 60_000,
        },
        false,
    );
    let index = loop {
        let p = index_path.clone();
        let error = match tokio::task::spawn_blocking(move || EvidenceIndex::open(&p)).await {
            Ok(Ok(i)) => break Arc::new(Mutex::new(i)),
            Ok(Err(e)) => e.to_string(),
            Err(_) => return,
        };
        metrics::inc(&metrics.counter("dock.errors", &d.id));
        if !logged {
            tracing::error!(event = "dock.index_unavailable", device_id = %d.id, error = %error, "cannot open the evidence index; the dock is not watched until it opens (check the state directory's permissions, free space, and that evidence.db is a database)");
            logged = true;
        }
        board.set_state(&d.id, "offline", Some(&format!("evidence index: {error}")));
        tokio::select! {
            _ = tokio::time::sleep(retry.next_delay()) => {}
            _ = shutdown.cancelled() => return,
        }
    };
    if logged {
        tracing::info!(event = "dock.index_opened", device_id = %d.id, "the evidence index opened; watching the dock");
    }
    // The commands and the retained state find the dock and its index here; the head as it
    // stands is central's witness from the first connection on.
    docks.add(
        &d.id,
        crate::evidence::DockHandle {
            root: d.root.clone(),
            index: index.clone(),
            upload: UploadSettings {
                kbit_s: d.upload_kbit_s,
                ca_file: d.upload_ca_file.clone(),
            },
        },
    );
    if let Ok(Ok((id, head))) = tokio::task::spawn_blocking({
        let index = index.clone();
        move || index.lock().unwrap_or_else(|p| p.into_inner()).head()
    })
    .await
    {
        docks.set_head(id, head);
    }
    let hasher = match hasher::Hasher::start(&d.id) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(event = "dock.index_unavailable", device_id = %d.id, error = %e, "cannot start the hashing thread");
            return;
        }
    };
    let mut dock = Dock {
        template: d.template(),
        offset_min: d.offset_min(),
        counters: Counters::new(&metrics, &d.id),
        d,
        sink,
        board,
        index,
        hasher,
        candidates: HashMap::new(),
        unparsed_logged: 0,
        storage_low: false,
        docks,
        rescan_soon: false,
    };
    let (tx, mut watch) = mpsc::channel::<Watch>(4096);
    let mut watcher: Option<notify::RecommendedWatcher> = None;
    let mut rescan = tokio::time::interval(Duration::from_secs(dock.d.rescan_s));
    let mut storage = tokio::time::interval(Duration::from_secs(dock.d.storage_s));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = rescan.tick() => {
                if watcher.is_none() {
                    watcher = dock.watch(tx.clone());
                }
                if !dock.rescan().await { return; }
            }
            Some(w) = watch.recv() => match w {
                Watch::Event(ev) => if !dock.on_event(ev).await { return; },
                Watch::Rescan(why) => {
                    metrics::inc(&dock.counters.overflows);
                    tracing::warn!(event = "dock.watch_overflow", device_id = %dock.d.id, reason = %why, "file change notifications were lost; rescanning the footage tree");
                    // Drain what is queued: the rescan sees it all.
                    while watch.try_recv().is_ok() {}
                    if !dock.rescan().await { return; }
                }
            },
            _ = tick.tick() => {
                if std::mem::take(&mut dock.rescan_soon) && !dock.rescan().await {
                    return;
                }
                if !dock.settle().await { return; }
            }
            _ = storage.tick() => if !dock.storage().await { return; },
            _ = shutdown.cancelled() => return,
        }
    }
}

impl Dock {
    fn root(&self) -> &Path {
        &self.d.root
    }

    fn rel(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.d.root).ok()?;
        let s = rel.to_str()?.to_string();
        (!s.is_empty() && !s.split('/').any(|p| p.starts_with('.'))).then_some(s)
    }

    /// Starts inotify on the root (None while the root is missing: retried at each rescan).
    fn watch(&self, tx: mpsc::Sender<Watch>) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher;
        let handler = move |res: notify::Result<notify::Event>| {
            let msg = match res {
                Ok(ev) if ev.need_rescan() => {
                    Watch::Rescan("the kernel's event queue overflowed".into())
                }
                Ok(ev) => Watch::Event(ev),
                Err(e) => Watch::Rescan(e.to_string()),
            };
            // A full queue is lost events: ask for a rescan instead (which cannot be lost,
            // since the loop drains the queue before rescanning).
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(msg) {
                let _ = tx.blocking_send(Watch::Rescan("more changes than the queue holds".into()));
            }
        };
        let mut w = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(event = "dock.watch_failed", device_id = %self.d.id, error = %e, "cannot watch the footage tree; relying on rescans");
                return None;
            }
        };
        match w.watch(&self.d.root, notify::RecursiveMode::Recursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(event = "dock.watch_failed", device_id = %self.d.id, root = %self.d.root.display(), error = %e, "cannot watch the footage tree (missing? not mounted?); retrying at the next rescan");
                None
            }
        }
    }

    /// Runs `f` on the index on the blocking pool.
    async fn with_index<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut EvidenceIndex) -> Result<T, crate::evidence::IndexError> + Send + 'static,
    ) -> Option<T> {
        let index = self.index.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut i = index.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut i)
        })
        .await;
        match r {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                metrics::inc(&self.counters.errors);
                tracing::error!(event = "dock.index_failed", device_id = %self.d.id, error = %e, "the evidence index failed; will retry at the next rescan");
                None
            }
            Err(_) => None,
        }
    }

    async fn send(&self, device: &str, kind: &str, prio: Priority, data: Value) -> bool {
        let ev = Event::new(device, kind, prio, crate::clock::now(), false, data);
        self.sink.send(ev).await.is_ok()
    }

    /// Walks the whole tree: new or changed files become candidates, indexed files that are
    /// gone are missing, recorder directories docked or undocked. False when the outbox is gone.
    async fn rescan(&mut self) -> bool {
        metrics::inc(&self.counters.rescans);
        let root = self.root().to_path_buf();
        let walked = tokio::task::spawn_blocking(move || scan::walk(&root)).await;
        let (files, top) = match walked {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                self.board.set_state(
                    &self.d.id,
                    "offline",
                    Some(&format!("cannot read {}: {e}", self.d.root.display())),
                );
                tracing::warn!(event = "dock.root_unreadable", device_id = %self.d.id, root = %self.d.root.display(), error = %e, "cannot read the footage tree (not mounted?); will look again");
                return true;
            }
            Err(_) => return true,
        };
        let dock = self.d.id.clone();
        let Some((known, docked)) = self
            .with_index(move |i| Ok((i.files(&dock)?, i.docked(&dock)?)))
            .await
        else {
            return true;
        };
        let known: HashMap<String, crate::evidence::FileRow> =
            known.into_iter().map(|f| (f.path.clone(), f)).collect();
        let now = Instant::now();
        let mut present = BTreeSet::new();
        for (path, stat) in files {
            present.insert(path.clone());
            let unchanged = known
                .get(&path)
                .is_some_and(|k| !k.missing && k.size == stat.size && k.mtime_ns == stat.mtime_ns);
            if !unchanged
                && !self.candidates.contains_key(&path)
                && self.candidates.len() < MAX_CANDIDATES
            {
                self.candidates.insert(
                    path,
                    Candidate {
                        stat: Some(stat),
                        stable_since: now,
                        closed: false,
                    },
                );
            }
        }
        for (path, f) in &known {
            if !f.missing && !present.contains(path) && !self.file_gone(f.clone()).await {
                return false;
            }
        }
        // Recorders: directories at the top of the tree.
        let top: BTreeSet<String> = top.into_iter().collect();
        let docked: BTreeSet<String> = docked.into_iter().collect();
        for r in top.difference(&docked) {
            if !self.recorder(r, true).await {
                return false;
            }
        }
        for r in docked.difference(&top) {
            if !self.recorder(r, false).await {
                return false;
            }
        }
        self.board.set_state(
            &self.d.id,
            "online",
            Some(&format!(
                "{} file(s) indexed, {} recorder(s) docked",
                present.len(),
                top.len()
            )),
        );
        true
    }

    /// A change inotify reported.
    async fn on_event(&mut self, ev: notify::Event) -> bool {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode,
        };
        /// What a reported path means here.
        enum Step {
            /// A directory appeared (created or moved in); at the top, a recorder docking.
            NewDir {
                top_level: bool,
            },
            Recorder(bool),
            Gone,
            Closed,
            Changed,
        }
        let now = Instant::now();
        for (i, path) in ev.paths.iter().enumerate() {
            let Some(rel) = self.rel(path) else { continue };
            let top_level = !rel.contains('/');
            let step = match ev.kind {
                EventKind::Create(CreateKind::Folder) => Step::NewDir { top_level },
                EventKind::Remove(RemoveKind::Folder) if top_level => Step::Recorder(false),
                // The old name of a rename (the first path of a "both" pair): gone from here.
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if i == 0 => Step::Gone,
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                    Step::Gone
                }
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => Step::Closed,
                EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) if path.is_dir() => {
                    Step::NewDir { top_level }
                }
                EventKind::Modify(_) if path.is_dir() => continue,
                EventKind::Create(_) | EventKind::Modify(_) => Step::Changed,
                _ => continue,
            };
            let ok = match step {
                Step::NewDir { top_level } => {
                    self.rescan_soon = true;
                    !top_level || self.recorder(&rel, true).await
                }
                Step::Recorder(docked) => self.recorder(&rel, docked).await,
                Step::Gone => self.maybe_gone(&rel).await,
                Step::Closed | Step::Changed => {
                    let closed = matches!(step, Step::Closed);
                    if self.candidates.len() < MAX_CANDIDATES || self.candidates.contains_key(&rel)
                    {
                        let c = self.candidates.entry(rel).or_insert(Candidate {
                            stat: None,
                            stable_since: now,
                            closed,
                        });
                        c.closed = closed;
                        if !closed {
                            c.stable_since = now;
                        }
                    }
                    true
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// `rel` was removed or renamed away: if it is indexed, it is missing.
    async fn maybe_gone(&mut self, rel: &str) -> bool {
        self.candidates.remove(rel);
        let (dock, path) = (self.d.id.clone(), rel.to_string());
        match self.with_index(move |i| i.file(&dock, &path)).await {
            Some(Some(f)) if !f.missing => self.file_gone(f).await,
            _ => true,
        }
    }

    async fn file_gone(&mut self, f: crate::evidence::FileRow) -> bool {
        let (dock, path) = (self.d.id.clone(), f.path.clone());
        if self
            .with_index(move |i| i.set_missing(&dock, &path, true))
            .await
            .is_none()
        {
            return true;
        }
        if f.uploaded {
            tracing::info!(event = "footage.removed_after_upload", device_id = %self.d.id, path = %f.path, "an uploaded file was removed from the dock");
            return true;
        }
        metrics::inc(&self.counters.missing);
        tracing::warn!(event = "footage.missing", device_id = %self.d.id, path = %f.path, sha256 = %f.sha256, "an indexed file that was never uploaded disappeared");
        self.send(
            &self.d.id.clone(),
            "footage.missing",
            Priority::Alarm,
            json!({"dock": self.d.id, "path": f.path, "recorder": f.recorder, "officer": f.officer, "sha256": f.sha256, "entry": f.entry_id}),
        )
        .await
    }

    /// A recorder directory came or went: `recorder.docked` / `recorder.undocked` once per change.
    async fn recorder(&mut self, recorder: &str, docked: bool) -> bool {
        let (dock, r) = (self.d.id.clone(), recorder.to_string());
        let at = crate::clock::unix_ms();
        let Some(changed) = self
            .with_index(move |i| i.set_docked(&dock, &r, docked, at))
            .await
        else {
            return true;
        };
        if !changed {
            return true;
        }
        let officer = self.officer_of(recorder, None);
        let kind = if docked {
            "recorder.docked"
        } else {
            "recorder.undocked"
        };
        tracing::info!(event = kind, device_id = %self.d.id, recorder, officer = %officer, "recorder {}", if docked { "docked" } else { "undocked" });
        let device = device_id(recorder);
        self.send(
            &device,
            kind,
            Priority::Event,
            json!({"dock": self.d.id, "recorder": recorder, "officer": officer}),
        )
        .await
    }

    /// The officer carrying `recorder`: the name's, else the configured one, else `unknown`.
    fn officer_of(&self, recorder: &str, from_name: Option<&str>) -> String {
        from_name
            .map(str::to_string)
            .or_else(|| self.d.recorders.get(recorder).map(|r| r.officer.clone()))
            .unwrap_or_else(|| "unknown".into())
    }

    /// Candidates that are complete get indexed, in batches of at most [`BATCH`] files (one
    /// index transaction each).
    async fn settle(&mut self) -> bool {
        if self.candidates.is_empty() {
            return true;
        }
        let settle = Duration::from_secs(self.d.settle_s);
        let now = Instant::now();
        let paths: Vec<String> = self.candidates.keys().cloned().collect();
        let mut complete = Vec::new();
        for rel in paths {
            let abs = self.d.root.join(&rel);
            let stat = match scan::stat(&abs) {
                Ok(s) => s,
                Err(_) => {
                    // Gone before it was complete, or not a file.
                    if !self.maybe_gone(&rel).await {
                        return false;
                    }
                    continue;
                }
            };
            let Some(c) = self.candidates.get_mut(&rel) else {
                continue;
            };
            if c.stat != Some(stat) {
                c.stat = Some(stat);
                c.stable_since = now;
                if !c.closed {
                    continue;
                }
            }
            if c.closed || now.duration_since(c.stable_since) >= settle {
                self.candidates.remove(&rel);
                complete.push((rel, stat));
            }
        }
        if complete.is_empty() {
            return true;
        }
        complete.sort_by(|a: &(String, Stat), b| a.0.cmp(&b.0));
        // What the index knows, read once for the round (each path is in one batch only).
        let dock = self.d.id.clone();
        let Some(known) = self.with_index(move |i| i.files(&dock)).await else {
            return true;
        };
        let known: HashMap<String, crate::evidence::FileRow> =
            known.into_iter().map(|f| (f.path.clone(), f)).collect();
        for batch in complete.chunks(BATCH) {
            if !self.index_files(batch, &known).await {
                return false;
            }
        }
        true
    }

    /// Hashes complete files and indexes them (new, or changed versions of indexed ones).
    async fn index_files(
        &mut self,
        batch: &[(String, Stat)],
        known: &HashMap<String, crate::evidence::FileRow>,
    ) -> bool {
        let mut news = Vec::new();
        let mut previous = Vec::new();
        let mut touched = Vec::new();
        for (rel, stat) in batch {
            let k = known.get(rel);
            if k.is_some_and(|k| !k.missing && k.size == stat.size && k.mtime_ns == stat.mtime_ns) {
                continue;
            }
            let hasher::Hashed {
                size,
                sha256: sha,
                media_created_ms,
            } = match self.hasher.hash(self.d.root.join(rel)).await {
                Ok(h) => h,
                Err(e) => {
                    metrics::inc(&self.counters.errors);
                    tracing::warn!(event = "dock.hash_failed", device_id = %self.d.id, path = %rel, error = %e, "cannot read a footage file; will try again at the next rescan");
                    continue;
                }
            };
            metrics::add(&self.counters.bytes_hashed, size);
            if let Some(k) = k.filter(|k| k.sha256 == sha) {
                // Same content (touched, or copied again): only the file state moves.
                touched.push((k.path.clone(), size, stat.mtime_ns));
                continue;
            }
            let mut new = self.new_entry(rel, *stat, size, sha, k.is_some());
            if new.start_ms.is_none() {
                new.start_ms = media_created_ms;
            }
            news.push(new);
            previous.push(k.cloned());
        }
        if !touched.is_empty() {
            let dock = self.d.id.clone();
            self.with_index(move |i| {
                for (path, size, mtime) in touched {
                    i.touch(&dock, &path, size, mtime)?;
                }
                Ok(())
            })
            .await;
        }
        if news.is_empty() {
            return true;
        }
        let indexed_ms = crate::clock::unix_ms();
        let to_append = news.clone();
        let Some(appended) = self
            .with_index(move |i| i.append_many(&to_append, indexed_ms))
            .await
        else {
            return true;
        };
        if let Some((entry, link)) = appended.last() {
            self.docks.set_head(entry.id, *link);
            self.board.state_changed();
        }
        for ((new, (entry, link)), prev) in news.iter().zip(appended).zip(previous) {
            let mut data = json!({
                "dock": self.d.id, "recorder": new.recorder, "officer": new.officer, "path": new.path,
                "size": new.size, "sha256": new.sha256, "media_type": entry.media_type,
                "start": new.start_ms.map(crate::event::format_ts_ms), "entry": entry.id, "chain": hex(&link),
            });
            let device = device_id(&new.recorder);
            let sent = match prev {
                Some(k) => {
                    metrics::inc(&self.counters.altered);
                    tracing::warn!(event = "footage.altered", device_id = %self.d.id, path = %new.path, was = %k.sha256, now = %new.sha256, "an indexed file's content changed");
                    data["previous_sha256"] = k.sha256.into();
                    data["previous_entry"] = k.entry_id.into();
                    self.send(&device, "footage.altered", Priority::Alarm, data)
                        .await
                }
                None => {
                    metrics::inc(&self.counters.indexed);
                    self.send(&device, "footage.indexed", Priority::Event, data)
                        .await
                }
            };
            if !sent {
                return false;
            }
        }
        true
    }

    /// What the index records of a file: who and when from its name, else from its directory
    /// and the config.
    fn new_entry(
        &mut self,
        rel: &str,
        stat: Stat,
        size: u64,
        sha: String,
        altered: bool,
    ) -> NewEntry {
        let file_name = rel.rsplit('/').next().unwrap_or(rel);
        let fields = self.template.read(file_name);
        if fields.is_none() {
            metrics::inc(&self.counters.unparsed);
            self.unparsed_logged += 1;
            if self.unparsed_logged <= LOG_FIRST_UNPARSED
                || self.unparsed_logged.is_multiple_of(1000)
            {
                tracing::warn!(event = "dock.name_unparsed", device_id = %self.d.id, path = rel, pattern = %self.d.name, "a file name does not fit the dock's name pattern; indexed with what the directory and the config say");
            }
        }
        let fields = fields.unwrap_or_default();
        let dir_recorder = rel
            .contains('/')
            .then(|| rel.split('/').next().unwrap_or_default().to_string());
        let recorder = fields
            .recorder
            .clone()
            .or(dir_recorder)
            .unwrap_or_else(|| "unknown".into());
        let officer = self.officer_of(&recorder, fields.officer.as_deref());
        let ext = fields
            .ext
            .clone()
            .or_else(|| file_name.rsplit_once('.').map(|(_, e)| e.to_string()))
            .unwrap_or_default();
        NewEntry {
            dock: self.d.id.clone(),
            recorder,
            officer,
            path: rel.to_string(),
            size,
            mtime_ns: stat.mtime_ns,
            sha256: sha,
            media_type: media_type(&ext).to_string(),
            start_ms: fields.start.and_then(|s| start_unix_ms(s, self.offset_min)),
            reason: if altered { "altered" } else { "new" },
        }
    }

    /// `dock.storage` telemetry, and the alarm when free space falls below the threshold.
    async fn storage(&mut self) -> bool {
        let root = self.d.root.clone();
        let Ok(Ok((free, total))) = tokio::task::spawn_blocking(move || scan::space(&root)).await
        else {
            return true;
        };
        let dock = self.d.id.clone();
        let Some(pending) = self.with_index(move |i| i.pending(&dock)).await else {
            return true;
        };
        let now = crate::clock::unix_ms();
        let free_pct = if total > 0 {
            free as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        let data = json!({
            "free_bytes": free, "total_bytes": total, "free_pct": (free_pct * 10.0).round() / 10.0,
            "pending_files": pending.files, "pending_bytes": pending.bytes,
            "oldest_pending_s": pending.oldest_indexed_ms.map(|t| (now - t).max(0) / 1000),
        });
        let id = self.d.id.clone();
        if !self
            .send(&id, "dock.storage", Priority::Telemetry, data.clone())
            .await
        {
            return false;
        }
        let low = free_pct < f64::from(self.d.min_free_pct);
        if low != self.storage_low {
            self.storage_low = low;
            let (kind, prio) = if low {
                ("dock.storage_low", Priority::Alarm)
            } else {
                ("dock.storage_ok", Priority::Event)
            };
            tracing::warn!(event = kind, device_id = %id, free_bytes = free, min_free_pct = self.d.min_free_pct, "footage volume free space crossed the threshold");
            return self.send(&id, kind, prio, data).await;
        }
        true
    }
}

/// A recorder's serial as a device id (`[A-Za-z0-9_.-]`, other characters become `_`).
fn device_id(recorder: &str) -> String {
    let id: String = recorder
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() {
        "unknown".into()
    } else {
        id
    }
}
