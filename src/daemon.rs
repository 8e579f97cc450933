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
    // SIGHUP's default action would kill the daemon without its clean stop (and systemd would
    // restart it). Reloading is not supported yet: say so and go on.
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let stop = CancellationToken::new();
    let running = start(
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
    loop {
        tokio::select! {
            _ = sighup.recv() => {
                tracing::warn!(event = "daemon.reload_unsupported", signal = "SIGHUP", "SIGHUP received: reloading the configuration is not supported yet; restart the unit to apply changes (still running)");
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
    drivers: tokio::task::JoinSet<()>,
    uplink: tokio::task::JoinHandle<()>,
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
    let mut drivers = drivers::start_all(
        &cfg.devices,
        &drivers::Parts {
            sink: sink.clone(),
            board: board.clone(),
            metrics: metrics.clone(),
            commands: registry.clone(),
            evidence_index: crate::evidence::index_path(&cfg.buffer.path),
            watchers,
        },
        &stop,
    )?;
    drivers.spawn(staffing.clone().run(staffing_notes, stop.clone()));
    drivers.spawn(equipment.clone().run(equipment_notes, stop.clone()));
    drivers.spawn(dispatch.clone().run(stop.clone()));
    let mut registry = registry.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // The docks the dock drivers registered (none: an empty set, no `P/state/evidence`).
    let docks = registry.service::<crate::evidence::Docks>();
    // Held by video pushes: the backlog's replay gives way to live video.
    let replay_gate = registry.service::<crate::uplink::ReplayGate>();
    let (commands_tx, commands_rx) = tokio::sync::mpsc::channel(crate::commands::QUEUE);
    let snapshots = Arc::new(crate::state::Snapshots {
        station: cfg.station.id.as_str().to_string(),
        board: board.clone(),
        metrics: metrics.clone(),
        docks: Some(docks),
        staffing: Some(staffing.clone()),
        equipment: Some(equipment.clone()),
        dispatch: Some(dispatch.clone()),
    });
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
    .with_replay_gate(replay_gate)
    .with_state(snapshots.clone());
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
    drivers.spawn(core.run(commands_rx, stop.clone()));
    tracing::info!(event = "cmd.ready", "{}", cfg.commands.describe());
    let uplink_status = uplink.status();
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
    Ok(Running {
        drivers,
        uplink,
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
        let drained = tokio::time::timeout(PHASE_DEADLINE, async {
            while self.drivers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                event = "daemon.stop_forced",
                phase = "drivers",
                "inputs did not stop in time"
            );
            self.drivers.abort_all();
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
        drop(self.sink);
        drop(self.control);
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }
}
