//! The daemon's side of the control socket: binds it with the right permissions, answers each
//! connection with one reply, and removes the socket at shutdown. The readings it answers
//! with ([`Sources`], [`status_reply`], [`devices_reply`]) are also what the HTTP listeners
//! (`crate::web`) show.

use super::{
    Command, DeviceRow, DevicesReply, OutboxReply, Request, StatusReply, PROTOCOL_VERSION,
};
use crate::outbox::Reader;
use crate::uplink::UplinkStatus;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Longest request line accepted (a roster import of a few thousand people).
const MAX_REQUEST: u64 = 1024 * 1024;
/// A client gets this long to send its request, and to read the reply.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// A connection lasts at most this long (a reload's answer waits for devices to stop).
const CONNECTION_LIMIT: Duration = Duration::from_secs(95);
/// Connections answered at once; more wait.
const MAX_CLIENTS: usize = 8;

/// What the server reads to answer.
pub struct Sources {
    pub station: String,
    pub station_name: String,
    pub profile: Option<String>,
    pub outbox_path: PathBuf,
    pub reader: Arc<Mutex<Reader>>,
    pub uplink: Arc<Mutex<UplinkStatus>>,
    pub started: Instant,
    pub started_ms: i64,
    pub board: Arc<crate::board::Board>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub staffing: Option<Arc<crate::staffing::Staffing>>,
    pub equipment: Option<Arc<crate::equipment::Equipment>>,
    pub dispatch: Option<Arc<crate::dispatch::Dispatch>>,
    /// The alarms queued lately (the status page).
    pub alarms: Arc<crate::recent_alarms::RecentAlarms>,
    /// The configuration running, and the last reload.
    pub config: crate::reload::SharedConfigReport,
    /// Asks the daemon's main loop to reload (None where there is none: the demo).
    pub reloader: Option<crate::reload::Reloader>,
    /// The box's own health.
    pub host: Option<Arc<crate::host::Host>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another stationd answers on the control socket {0}; is the daemon running twice?")]
    InUse(PathBuf),
    #[error("cannot create the control socket {path}: {source} (the unit's RuntimeDirectory= creates /run/stationd; elsewhere set STATIOND_CONTROL_SOCKET)")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the socket (replacing a stale one) with mode 0660.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    // A socket left by a daemon that died is replaced; one that answers is another daemon's.
    // Anything else at the path is left alone (bind then fails and says so).
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse(path.to_path_buf()));
            }
            let _ = std::fs::remove_file(path);
        }
    }
    let bind_err = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
    Ok(listener)
}

/// Answers until `shutdown`, then removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    sources: Arc<Sources>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(event = "control.accept_failed", error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            // (the guard wait_for returns is not Send: drop it inside)
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(CONNECTION_LIMIT, answer(stream, &sources))
                .await
                .is_err()
            {
                tracing::debug!(
                    event = "control.client_timeout",
                    "control client too slow; closed"
                );
            }
            drop(permit);
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn answer(stream: UnixStream, sources: &Sources) {
    let caller = caller(&stream);
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    match tokio::time::timeout(CLIENT_DEADLINE, reader.read_until(b'\n', &mut line)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    let reply = match serde_json::from_slice::<Request>(line.trim_ascii()) {
        Ok(r) if r.v != PROTOCOL_VERSION => Err(format!(
            "control protocol version {} is not supported (this daemon speaks {PROTOCOL_VERSION}); use the stationd binary of the installed package",
            r.v
        )),
        Ok(r) => {
            crate::metrics::inc(&sources.metrics.counter("control.requests", ""));
            reply(r.cmd, sources, &caller).await
        }
        Err(e) if line.len() as u64 >= MAX_REQUEST => Err(format!(
            "request longer than {MAX_REQUEST} bytes: {e}"
        )),
        Err(e) => Err(format!("bad request: {e}")),
    };
    if let Err(why) = &reply {
        let rejected = sources.metrics.counter("control.requests_rejected", "");
        crate::metrics::inc(&rejected);
        let n = rejected.load(std::sync::atomic::Ordering::Relaxed);
        if n <= 10 || n.is_multiple_of(1000) {
            tracing::warn!(event = "control.request_rejected", rejected = n, reason = %why, "refused a control request");
        }
    }
    let body = match reply {
        Ok(v) => serde_json::json!({"ok": true, "reply": v}),
        Err(e) => serde_json::json!({"ok": false, "error": e}),
    };
    let mut text = body.to_string();
    text.push('\n');
    let _ = tokio::time::timeout(CLIENT_DEADLINE, async {
        let _ = write.write_all(text.as_bytes()).await;
        let _ = write.shutdown().await;
    })
    .await;
}

/// Who is asking: `cli:NAME` from the socket's peer credentials (`cli:uid N` without a name).
fn caller(stream: &UnixStream) -> String {
    match stream.peer_cred() {
        Ok(cred) => {
            let uid = cred.uid();
            match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                Ok(Some(user)) => format!("cli:{}", user.name),
                _ => format!("cli:uid {uid}"),
            }
        }
        Err(_) => "cli".to_string(),
    }
}

async fn reply(cmd: Command, s: &Sources, caller: &str) -> Result<serde_json::Value, String> {
    let staffing = || {
        s.staffing
            .clone()
            .ok_or_else(|| "this daemon keeps no staffing".to_string())
    };
    let refused = |e: crate::staffing::StaffingError| e.to_string();
    let equipment = || {
        s.equipment
            .clone()
            .ok_or_else(|| "this daemon keeps no equipment register".to_string())
    };
    let value = match cmd {
        Command::Staffing => {
            let st = staffing()?;
            let mut doc = crate::staffing::payload::document(&st, true, true);
            doc["exceptions"] = serde_json::to_value(st.overrides().await)
                .map_err(|e| format!("cannot encode the reply: {e}"))?;
            doc["in_use"] = st.in_use().into();
            Ok(doc)
        }
        Command::Duty {
            person,
            present,
            note,
        } => {
            let detail = match note {
                Some(n) if !n.is_empty() => format!("{caller}: {n}"),
                _ => caller.to_string(),
            };
            tracing::info!(event = "staffing.duty", person = %person, present, by = %caller, "duty set on the box");
            let p = staffing()?
                .duty(
                    &person,
                    present,
                    stationd_proto::staffing::presence::Source::Cli,
                    detail,
                )
                .await
                .map_err(refused)?;
            Ok(crate::staffing::payload::duty_answer(&p))
        }
        Command::RosterImport { people } => {
            let answer = staffing()?
                .set_roster(people, caller)
                .await
                .map_err(refused)?;
            Ok(answer)
        }
        Command::CrewSet { car, members } => {
            let c = staffing()?
                .set_crew(&car, members, "cli")
                .await
                .map_err(refused)?;
            tracing::info!(event = "staffing.crew_set", car = %car, by = %caller, "crew set on the box");
            Ok(crate::staffing::payload::crew_answer(&c))
        }
        Command::OverrideAdd {
            person,
            kind,
            team,
            from_ms,
            until_ms,
            note,
        } => {
            let kind = crate::staffing::model::OverrideKind::from_name(&kind)
                .ok_or_else(|| format!("{kind:?} is not one of sick, leave, swap"))?;
            let id = staffing()?
                .add_override(crate::staffing::model::Override {
                    id: 0,
                    person,
                    kind,
                    team,
                    from_ms,
                    until_ms,
                    note,
                    by: caller.to_string(),
                })
                .await
                .map_err(refused)?;
            Ok(serde_json::json!({ "id": id }))
        }
        Command::Dispatch => Ok(s
            .dispatch
            .as_ref()
            .ok_or("this daemon relays no dispatch")?
            .document()),
        Command::Equipment => Ok(crate::equipment::payload::document(&*equipment()?, true)),
        Command::EquipmentImport { items } => Ok(equipment()?
            .set_register(items, caller)
            .await
            .map_err(|e| e.to_string())?),
        Command::EquipmentMark {
            item,
            state,
            to,
            note,
            next_maintenance,
        } => {
            let state = crate::equipment::model::State::from_name(&state).ok_or_else(|| {
                format!("{state:?} is not a state (in_service, checked_out, fault, lost)")
            })?;
            tracing::info!(event = "equipment.marked", item = %item, state = state.name(), by = %caller, "equipment marked on the box");
            Ok(equipment()?
                .mark(crate::equipment::Mark {
                    item,
                    state,
                    to,
                    note,
                    next_maintenance,
                    by: caller.to_string(),
                    source: stationd_proto::staffing::presence::Source::Cli,
                })
                .await
                .map_err(|e| e.to_string())?)
        }
        Command::OverrideRemove { id } => {
            staffing()?
                .remove_override(id, caller)
                .await
                .map_err(refused)?;
            Ok(serde_json::json!({ "id": id, "removed": true }))
        }
        Command::Status => serde_json::to_value(status_reply(s).await?),
        Command::Devices => serde_json::to_value(devices_reply(s)),
        Command::Reload => {
            let reloader = s
                .reloader
                .as_ref()
                .ok_or("this daemon does not reload (it runs embedded, without its main loop)")?;
            tracing::info!(event = "config.reload_requested", by = %caller, "reload asked on the control socket");
            let outcome = reloader.reload(caller).await?;
            serde_json::to_value(outcome)
        }
        Command::Outbox => serde_json::to_value(OutboxReply {
            now_ms: crate::clock::unix_ms(),
            path: s.outbox_path.clone(),
            stats: outbox_stats(s).await?,
        }),
    };
    value.map_err(|e| format!("cannot encode the reply: {e}"))
}

/// `stationd status` (and the status page's head).
pub async fn status_reply(s: &Sources) -> Result<StatusReply, String> {
    let outbox = outbox_stats(s).await?;
    let mut devices: BTreeMap<String, usize> = BTreeMap::new();
    for (_, d) in s.board.snapshot() {
        *devices.entry(d.state).or_default() += 1;
    }
    let mut counters: BTreeMap<String, u64> = s
        .metrics
        .snapshot()
        .into_iter()
        .filter(|((_, device), _)| device.is_empty())
        .map(|((name, _), v)| (name, v))
        .collect();
    counters.insert(
        "clock.state_unreadable".into(),
        crate::clock::unreadable_readings(),
    );
    Ok(StatusReply {
        station: s.station.clone(),
        station_name: s.station_name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        profile: s.profile.clone(),
        pid: std::process::id(),
        started_ms: s.started_ms,
        uptime_s: s.started.elapsed().as_secs(),
        uplink: s
            .uplink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_of_now(),
        outbox,
        devices,
        counters,
        clock: crate::control::ClockReport::from_state(crate::clock::sync_state()),
        config: Some(s.config.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        host: s.host.as_ref().and_then(|h| h.document()),
    })
}

/// `stationd devices` (and the status page's device table).
pub fn devices_reply(s: &Sources) -> DevicesReply {
    let mut counters: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((name, device), v) in s.metrics.snapshot() {
        if !device.is_empty() {
            counters.entry(device).or_default().insert(name, v);
        }
    }
    let devices = s
        .board
        .snapshot()
        .into_iter()
        .map(|(id, board)| DeviceRow {
            counters: counters.remove(&id).unwrap_or_default(),
            id,
            board,
        })
        .collect();
    DevicesReply {
        now_ms: crate::clock::unix_ms(),
        devices,
    }
}

/// The outbox's figures, read off the daemon's thread.
pub async fn outbox_stats(s: &Sources) -> Result<crate::outbox::OutboxStats, String> {
    let reader = s.reader.clone();
    tokio::task::spawn_blocking(move || {
        reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stats()
            .map_err(|e| format!("cannot read the outbox: {e}"))
    })
    .await
    .map_err(|e| format!("outbox stats task failed: {e}"))?
}
