//! `stationd run`: wires config, outbox, drivers and uplink together, and shuts them down in
//! phases on SIGTERM/SIGINT: stop accepting input, let the uplink finish what is in flight and
//! publish the offline status, commit everything buffered, close the file.

use crate::config::Config;
use crate::drivers::{self, DriverError};
use crate::outbox::{self, LinkState, OutboxError, OutboxOptions, Reader, WriterThread};
use crate::uplink::{Uplink, UplinkError, UplinkOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Events queued for the writer before drivers wait (back-pressure, not memory growth).
const WRITER_QUEUE: usize = 16 * 1024;
/// How long each shutdown phase may take before it is cut short.
const PHASE_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Uplink(#[from] UplinkError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("{0} (check that the outbox's directory is writable by the daemon)")]
    Commands(#[from] crate::commands::store::StoreError),
    /// `staffing.db` or `equipment.db`.
    #[error(transparent)]
    SideStore(#[from] crate::side_store::StoreError),
}

impl DaemonError {
    /// sysexits code for the administrator and systemd's RestartPreventExitStatus.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Outbox(OutboxError::NewerSchema { .. }) | DaemonError::Uplink(_) => {
                crate::exit_code::CONFIG
            }
            DaemonError::Outbox(_) | DaemonError::Commands(_) | DaemonError::SideStore(_) => {
                crate::exit_code::CANT_CREATE
            }
            DaemonError::Driver(_) => crate::exit_code::CONFIG,
            DaemonError::Signals(_) => crate::exit_code::SOFTWARE,
        }
    }
}

/// The daemon's async runtime: one thread. The async work (sockets, MQTT, timers) is light;
/// SQLite runs on the writer thread and the blocking pool. One thread spares the cross-core
/// wake-ups between the MQTT poll task and the uplink, which measured ~10-20 % of drain rate on
/// a 2-core box (README, Benchmark).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("stationd")
        .build()
}

/// A random id for this run of the daemon, so central can tell restarts apart.
pub fn new_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{:032x}", fastrand::u128(..)))
}

/// `stationd run`: the daemon until SIGTERM/SIGINT, with its control socket.
pub async fn run(cfg: Config) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    // SIGHUP reloads the configuration (its default action would kill the daemon).
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let stop = CancellationToken::new();
    let mut running = start(
        cfg,
        stop.clone(),
        Some(crate::control::default_socket_path()),
    )
    .await?;
    crate::systemd::ready("running; connecting to central");
    let watchdog = crate::systemd::watchdog_interval();
    let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(10)));
    let mut last_status = String::new();
    let uplink_changed = running.uplink_changed.clone();
    let mut reloads = running.reloads.take().expect("the reload requests");
    loop {
        tokio::select! {
            _ = sighup.recv() => {
                tracing::info!(event = "config.reload_requested", by = "SIGHUP", "SIGHUP: reloading the configuration");
                running.reload("SIGHUP").await;
            }
            Some(request) = reloads.recv() => {
                tracing::info!(event = "config.reload_requested", by = %request.by, "reloading the configuration");
                let outcome = running.reload(&request.by).await;
                let _ = request.reply.send(outcome);
            }
            // STATUS= follows the uplink at once, not on the next tick.
            _ = uplink_changed.notified() => {
                let status = running.status_line();
                if status != last_status {
                    crate::systemd::status(&status);
                    last_status = status;
                }
            }
            _ = sigterm.recv() => {
                tracing::info!(event = "daemon.stopping", signal = "SIGTERM", "shutting down");
                break;
            }
            _ = sigint.recv() => {
                tracing::info!(event = "daemon.stopping", signal = "SIGINT", "shutting down");
                break;
            }
            _ = tick.tick() => {
                let status = running.status_line();
                if status != last_status {
                    crate::systemd::status(&status);
                    last_status = status;
                }
                if watchdog.is_some() {
                    match running.liveness().await {
                        Ok(()) => crate::systemd::watchdog(),
                        Err(what) => tracing::error!(event = "daemon.wedged", part = what, "not pinging the watchdog: a part of the daemon stopped making progress"),
                    }
                }
            }
        }
    }
    crate::systemd::stopping();
    stop.cancel();
    running.stop().await;
    tracing::info!(event = "daemon.stopped", "stopped cleanly");
    Ok(())
}

/// A started daemon (also used by the demo and the benchmark).
pub struct Running {
    /// The configured devices, changed one by one by a reload.
    devices: drivers::DeviceSet,
    /// The services beside them (staffing, equipment, dispatch, the command core).
    services: tokio::task::JoinSet<()>,
    uplink: tokio::task::JoinHandle<()>,
    /// New uplink settings from a reload.
    uplink_reconfigure: Arc<crate::uplink::Reconfigure>,
    /// The configuration the daemon started with (what `pending_restart` compares against)
    /// and the one applied last.
    started_cfg: Config,
    applied_cfg: Config,
    boot_id: String,
    /// The configuration as the views show it.
    config_report: crate::reload::SharedConfigReport,
    /// Reload requests from the control socket and `config.reload` (taken by `run`).
    pub reloads: Option<tokio::sync::mpsc::Receiver<crate::reload::ReloadRequest>>,
    writer: WriterThread,
    control: outbox::WriterControl,
    uplink_heartbeat: Arc<crate::systemd::Heartbeat>,
    /// Notified when the uplink connects or loses its broker.
    pub uplink_changed: Arc<Notify>,
    control_server: Option<tokio::task::JoinHandle<()>>,
    /// `/metrics` and the status page, where configured.
    web_servers: Vec<tokio::task::JoinHandle<()>>,
    pub sink: outbox::EventSink,
    pub uplink_status: Arc<std::sync::Mutex<crate::uplink::UplinkStatus>>,
    /// This daemon's device board and counters.
    pub board: Arc<crate::board::Board>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Opens the outbox, starts the writer, the drivers, the uplink and, when `control` is given,
/// the control socket there. `stop` ends them.
pub async fn start(
    cfg: Config,
    stop: CancellationToken,
    control_socket: Option<std::path::PathBuf>,
) -> Result<Running, DaemonError> {
    let started = std::time::Instant::now();
    let started_ms = crate::clock::unix_ms();
    let boot_id = new_boot_id();
    let config_report = Arc::new(std::sync::Mutex::new(crate::reload::ConfigReport {
        path: cfg.source.display().to_string(),
        hash: cfg.hash.clone(),
        loaded_ms: started_ms,
        ..Default::default()
    }));
    let (reloader, reloads) = crate::reload::Reloader::new();
    let opts = OutboxOptions {
        path: cfg.buffer.path.clone(),
        station: cfg.station.id.as_str().to_string(),
        max_bytes: cfg.buffer.max_bytes,
        durability: cfg.buffer.durability,
    };
    let (store, recovery) = tokio::task::spawn_blocking(move || outbox::open_store(&opts))
        .await
        .expect("outbox open task")?;
    if let Some(r) = &recovery {
        tracing::error!(
            event = "outbox.recovered",
            moved_to = r.moved_to.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(no file: it was missing)".into()),
            reason = %r.reason,
            rows_recovered = r.rows_recovered,
            resumed_at_seq = r.resumed_at_seq,
            "the outbox file was damaged: moved it aside and started a new one (alarm sent to central)"
        );
    }
    tracing::info!(event = "outbox.opened", path = %store.path().display(), next_seq = store.next_seq(), bytes = store.bytes(), "outbox ready");
    let path = store.path().to_path_buf();
    let link = Arc::new(LinkState::default());
    let new_data = Arc::new(Notify::new());
    // This daemon's device board and counters, handed to its parts (not process-wide: the
    // benchmark and the demo run daemons side by side).
    let board = Arc::new(crate::board::Board::default());
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let (writer, sink, control) = WriterThread::start(
        store,
        WRITER_QUEUE,
        new_data.clone(),
        link.clone(),
        metrics.clone(),
    );
    let reader = Reader::open(&path)?;
    let control_reader = Reader::open(&path)?;
    // The commands the station takes: the core's own, and what the drivers add as they start.
    let registry = Arc::new(std::sync::Mutex::new(
        crate::commands::handlers::Registry::builtin(),
    ));
    registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .service::<crate::drivers::rtsp::Pushes>()
        .set_limit(cfg.commands.max_video_pushes as usize);
    // Staffing and the equipment register read the drivers' events, so they are there before
    // the drivers start.
    let car_faults = Arc::new(crate::equipment::CarFaults::default());
    let (staffing, staffing_notes) = crate::staffing::Staffing::open(
        cfg.station.id.as_str(),
        cfg.staffing.clone(),
        &path,
        sink.clone(),
        board.clone(),
        metrics.clone(),
        car_faults.clone(),
    )?;
    let (equipment, equipment_notes) = crate::equipment::Equipment::open(
        cfg.station.id.as_str(),
        cfg.equipment.clone(),
        &path,
        sink.clone(),
        board.clone(),
        metrics.clone(),
        staffing.clone(),
        car_faults,
    )?;
    let dispatch = {
        let mut registry = registry.lock().unwrap_or_else(|p| p.into_inner());
        crate::staffing::commands::register(&mut registry, &staffing);
        crate::equipment::commands::register(&mut registry, &equipment);
        // Dispatch relays through the terminals' and radios' links, which those drivers fill.
        let dispatch = crate::dispatch::Dispatch::open(
            cfg.station.id.as_str(),
            cfg.dispatch.clone(),
            &path,
            crate::dispatch::Parts {
                sink: sink.clone(),
                board: board.clone(),
                metrics: metrics.clone(),
                staffing: staffing.clone(),
                terminals: registry.service::<crate::drivers::jt808::text::CarLinks>(),
                radios: registry.service::<crate::drivers::tetra::text::RadioLinks>(),
                stop: stop.clone(),
            },
        )?;
        crate::dispatch::commands::register(&mut registry, &dispatch);
        dispatch
    };
    let watchers: drivers::Watchers = Arc::new([
        staffing.clone() as Arc<dyn drivers::EventWatcher>,
        equipment.clone() as Arc<dyn drivers::EventWatcher>,
        dispatch.clone() as Arc<dyn drivers::EventWatcher>,
    ]);
    registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .add(Arc::new(crate::commands::handlers::ConfigReload(
            reloader.clone(),
        )));
    let devices = drivers::DeviceSet::start(
        &cfg.devices,
        &cfg.device_settings,
        drivers::Parts {
            sink: sink.clone(),
            board: board.clone(),
            metrics: metrics.clone(),
            commands: registry.clone(),
            evidence_index: crate::evidence::index_path(&cfg.buffer.path),
            watchers,
        },
        &stop,
    )?;
    let mut services = tokio::task::JoinSet::new();
    services.spawn(staffing.clone().run(staffing_notes, stop.clone()));
    services.spawn(equipment.clone().run(equipment_notes, stop.clone()));
    services.spawn(dispatch.clone().run(stop.clone()));
    let (docks, replay_gate) = {
        let mut registry = registry.lock().unwrap_or_else(|p| p.into_inner());
        // The docks the dock drivers registered (none: an empty set, no `P/state/evidence`).
        // Held by video pushes: the backlog's replay gives way to live video.
        (
            registry.service::<crate::evidence::Docks>(),
            registry.service::<crate::uplink::ReplayGate>(),
        )
    };
    let (commands_tx, commands_rx) = tokio::sync::mpsc::channel(crate::commands::QUEUE);
    let uplink = Uplink::new(
        UplinkOptions::from_config(&cfg, &boot_id)?,
        reader,
        control.clone(),
        new_data,
        link,
        stop.clone(),
        metrics.clone(),
    )
    .with_commands(commands_tx)
    .with_replay_gate(replay_gate);
    // The box's own health: its figures, alarms and `P/state/box`.
    let host = crate::host::Host::new(
        cfg.station.id.as_str(),
        cfg.host.clone(),
        cfg.profile
            .iter()
            .flat_map(|p| &p.network)
            .filter(|n| n.role == crate::config::profile::NetworkRole::Cellular)
            .map(|n| n.interface.clone())
            .collect(),
        sink.clone(),
        board.clone(),
        uplink.status(),
    );
    let host = cfg.host.enabled.then_some(host);
    if let Some(host) = &host {
        services.spawn(host.clone().run(stop.clone()));
    }
    let snapshots = Arc::new(crate::state::Snapshots {
        station: cfg.station.id.as_str().to_string(),
        board: board.clone(),
        metrics: metrics.clone(),
        docks: Some(docks),
        staffing: Some(staffing.clone()),
        equipment: Some(equipment.clone()),
        dispatch: Some(dispatch.clone()),
        host: host.clone(),
    });
    let uplink = uplink.with_state(snapshots.clone());
    // Commands from dispatch: an input like the drivers, stopped with them.
    let answers =
        crate::commands::store::AnswerStore::open(&crate::commands::store::store_path(&path))?;
    let core = crate::commands::CommandCore::new(
        cfg.station.id.as_str(),
        cfg.commands.clone(),
        answers,
        sink.clone(),
        registry,
        crate::commands::handlers::CommandContext {
            boot_id: boot_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started,
            metrics: metrics.clone(),
            board: board.clone(),
            rebirth: uplink.rebirth(),
            state_request: uplink.state_request(),
            snapshots: Some(snapshots),
        },
        metrics.clone(),
    );
    services.spawn(core.run(commands_rx, stop.clone()));
    tracing::info!(event = "cmd.ready", "{}", cfg.commands.describe());
    let uplink_status = uplink.status();
    let uplink_reconfigure = uplink.reconfigurer();
    let uplink_heartbeat = uplink.heartbeat();
    let uplink_changed = uplink.status_changed();
    let uplink = tokio::spawn(uplink.run());
    // What the technician's views read: the control socket's replies, the status page, /metrics.
    let sources = Arc::new(crate::control::server::Sources {
        station: cfg.station.id.as_str().to_string(),
        station_name: cfg.station.name.clone(),
        profile: cfg.profile.as_ref().map(|p| p.name.clone()),
        outbox_path: path.clone(),
        reader: Arc::new(std::sync::Mutex::new(control_reader)),
        uplink: uplink_status.clone(),
        started,
        started_ms,
        board: board.clone(),
        metrics: metrics.clone(),
        staffing: Some(staffing.clone()),
        equipment: Some(equipment.clone()),
        dispatch: Some(dispatch.clone()),
        alarms: sink.recent_alarms(),
        config: config_report.clone(),
        reloader: Some(reloader),
        host,
    });
    // The technician's views are a convenience: without the socket the daemon still does its job.
    let control_server = control_socket.and_then(|socket| match crate::control::server::bind(&socket) {
        Ok(listener) => {
            tracing::info!(event = "control.listening", path = %socket.display(), "control socket ready (stationd status / devices / outbox)");
            Some(tokio::spawn(crate::control::server::serve(
                listener,
                socket,
                sources.clone(),
                stop.clone(),
            )))
        }
        Err(e) => {
            tracing::warn!(event = "control.unavailable", error = %e, "no control socket: stationd status/devices/outbox will not reach this daemon");
            None
        }
    });
    let web_servers = crate::web::start(
        cfg.metrics.as_ref(),
        cfg.status_page.as_ref(),
        sources,
        stop.clone(),
    )
    .await;
    tracing::info!(
        event = "daemon.ready",
        devices = cfg.devices.len(),
        "stationd is running"
    );
    let started_cfg = cfg.clone();
    Ok(Running {
        devices,
        services,
        uplink,
        uplink_reconfigure,
        applied_cfg: cfg,
        started_cfg,
        boot_id,
        config_report,
        reloads: Some(reloads),
        writer,
        control,
        uplink_heartbeat,
        uplink_changed,
        control_server,
        web_servers,
        sink,
        uplink_status,
        board,
        metrics,
    })
}

impl Running {
    /// Reads the configuration file again and applies it (see `crate::reload`): an invalid
    /// one changes nothing and is reported; a valid one restarts only the devices whose
    /// settings changed and reconnects the uplink only when its settings changed.
    pub async fn reload(&mut self, by: &str) -> crate::reload::ReloadOutcome {
        use crate::reload::{pending_restart, uplink_changed, ReloadOutcome};
        crate::systemd::reloading();
        let current = self.applied_cfg.clone();
        let read = tokio::task::spawn_blocking(move || current.reload())
            .await
            .map_err(|e| format!("the reload task failed: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()));
        // The uplink's new options are built (TLS files read) before anything is applied.
        let checked = read.and_then(|new| {
            let opts = if uplink_changed(&self.applied_cfg, &new) {
                Some(UplinkOptions::from_config(&new, &self.boot_id).map_err(|e| e.to_string())?)
            } else {
                None
            };
            Ok((new, opts))
        });
        let outcome = match checked {
            Err(error) => {
                tracing::error!(event = "config.rejected", by = %by, error = %error, "the configuration was not reloaded: it is invalid; the running one stays (fix the file, then reload again)");
                ReloadOutcome {
                    applied: false,
                    by: by.to_string(),
                    at_ms: crate::clock::unix_ms(),
                    hash: self.applied_cfg.hash.clone(),
                    previous_hash: None,
                    error: Some(error),
                    devices: Default::default(),
                    uplink: "unchanged",
                    pending_restart: pending_restart(&self.started_cfg, &self.applied_cfg),
                }
            }
            Ok((new, uplink_opts)) => {
                let devices = self.devices.apply(&new.devices, &new.device_settings).await;
                let uplink = match uplink_opts {
                    Some(opts) => {
                        self.uplink_reconfigure.apply(opts);
                        "reconnecting"
                    }
                    None => "unchanged",
                };
                let outcome = ReloadOutcome {
                    applied: true,
                    by: by.to_string(),
                    at_ms: crate::clock::unix_ms(),
                    hash: new.hash.clone(),
                    previous_hash: Some(self.applied_cfg.hash.clone()),
                    error: None,
                    devices,
                    uplink,
                    pending_restart: pending_restart(&self.started_cfg, &new),
                };
                tracing::info!(
                    event = "config.reloaded",
                    by = %by,
                    hash = %outcome.hash,
                    added = ?outcome.devices.added,
                    removed = ?outcome.devices.removed,
                    restarted = ?outcome.devices.restarted,
                    unchanged = outcome.devices.unchanged,
                    uplink,
                    pending_restart = ?outcome.pending_restart,
                    "configuration reloaded"
                );
                if !outcome.pending_restart.is_empty() {
                    tracing::warn!(event = "config.pending_restart", sections = ?outcome.pending_restart, "these changes apply at the next restart (systemctl restart stationd)");
                }
                self.applied_cfg = new;
                outcome
            }
        };
        {
            let mut report = self.config_report.lock().unwrap_or_else(|p| p.into_inner());
            if outcome.applied {
                report.hash = outcome.hash.clone();
                report.loaded_ms = outcome.at_ms;
            }
            report.pending_restart = outcome.pending_restart.clone();
            report.last_reload = serde_json::to_value(&outcome).ok();
        }
        let kind = if outcome.applied {
            "config.reloaded"
        } else {
            "config.rejected"
        };
        let data = serde_json::to_value(&outcome).expect("the outcome serialises");
        if self
            .sink
            .send_own("config", kind, vec![data])
            .await
            .is_err()
        {
            tracing::warn!(
                event = "config.report_lost",
                "the reload's outcome could not be queued for central (the outbox writer stopped)"
            );
        }
        crate::systemd::ready(&self.status_line());
        outcome
    }

    /// Ok when the outbox writer answers within 5 s and the uplink kept its heartbeat;
    /// otherwise which part is stuck.
    pub async fn liveness(&self) -> Result<(), &'static str> {
        if tokio::time::timeout(Duration::from_secs(5), self.control.flush())
            .await
            .map(|r| r.is_ok())
            != Ok(true)
        {
            return Err("outbox writer");
        }
        if self.uplink.is_finished() || !self.uplink_heartbeat.alive() {
            return Err("uplink");
        }
        Ok(())
    }

    /// One line for `systemctl status`.
    pub fn status_line(&self) -> String {
        let st = self
            .uplink_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let backlog = format!(
            "backlog {} rows ({:.1} MB)",
            self.metrics.value("outbox.rows", ""),
            self.metrics.value("outbox.bytes", "") as f64 / 1e6
        );
        match (st.connected_to, st.last_error) {
            (Some(b), _) => format!("connected to {b}; {backlog}; {} in flight", st.in_flight),
            (None, Some(e)) => {
                format!("uplink down, buffering in the outbox: {backlog}; last error: {e}")
            }
            (None, None) => format!("connecting to central; {backlog}"),
        }
    }

    /// Phased stop; call after the `stop` channel was set to true.
    pub async fn stop(mut self) {
        // 1. Inputs stop accepting and hand over what they have read.
        let devices_stopped = self.devices.join(PHASE_DEADLINE).await;
        let drained = tokio::time::timeout(PHASE_DEADLINE, async {
            while self.services.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() || !devices_stopped {
            tracing::warn!(
                event = "daemon.stop_forced",
                phase = "drivers",
                "inputs did not stop in time"
            );
            self.services.abort_all();
        }
        // 2. The uplink finishes what is in flight and says offline.
        if tokio::time::timeout(PHASE_DEADLINE, &mut self.uplink)
            .await
            .is_err()
        {
            tracing::warn!(
                event = "daemon.stop_forced",
                phase = "uplink",
                "uplink did not stop in time"
            );
            self.uplink.abort();
            let _ = (&mut self.uplink).await;
        }
        if let Some(c) = self.control_server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), c).await;
        }
        for mut server in self.web_servers.drain(..) {
            if tokio::time::timeout(Duration::from_secs(1), &mut server)
                .await
                .is_err()
            {
                tracing::debug!(
                    event = "web.stop_forced",
                    "an HTTP client held its connection past the stop"
                );
                server.abort();
            }
        }
        // 3. Everything queued is committed; the writer ends when its last sender is gone.
        drop(self.devices);
        drop(self.sink);
        drop(self.control);
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }
}
