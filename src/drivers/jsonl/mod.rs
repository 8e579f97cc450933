//! The `jsonl` driver: JSON lines from other local systems. Its config is [`config`], what an
//! input may send is [`policy`]; this is the I/O: TCP and Unix-socket listeners, many
//! connections at once.
//!
//! Each connection is read in chunks and fed to the sans-I/O [`LineFramer`] and
//! [`parse_line`]; good lines go to the outbox, bad ones are counted and logged (the first few
//! per connection, then every thousandth) and skipped. The connection stays open.
//!
//! A well-formed line must also be this input's to send ([`InputPolicy`]): no kind from the
//! daemon's reserved namespaces (`outbox.*`, `device.*`, `vehicle.*`, …), no device another
//! configured device owns (a GNSS receiver, a car behind the JT/T 808 listener, another
//! input), and, when the input's config lists them, only its `devices` and `kinds`. Otherwise
//! any local process that can write to the socket could forge `outbox.evicted` (the proof of an
//! allowed seq gap) or a car's emergency.

mod config;
mod policy;

pub use config::{kind_matches, JsonlDevice};
pub use policy::InputPolicy;

use super::{DeviceContext, DeviceSink, Driver};
use crate::board::Board;
use crate::codec::jsonl::{parse_line, Frame, LineFramer, MAX_LINE_BYTES};
use crate::config::ListenAddr;
use crate::event::Event;
use crate::metrics::{self, Counter};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::DriverError;

/// The registry's entry (`driver = "jsonl"`).
pub const DRIVER: Driver = Driver {
    name: "jsonl",
    serial: false,
    parse: super::parse_device::<config::JsonlDevice>,
    keys: crate::config::keys::keys_of::<config::JsonlDevice>,
};

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, std::path::PathBuf),
}

/// Rejected lines logged in full per connection before logging thins out.
const LOG_FIRST_REJECTS: u64 = 10;

/// Binds the input's socket (inside the runtime).
pub fn bind(d: &JsonlDevice) -> Result<Listener, DriverError> {
    let err = |source| DriverError::Listen {
        device: d.id.clone(),
        addr: d.listen.to_string(),
        source,
    };
    match &d.listen {
        ListenAddr::Tcp(addr) => Ok(Listener::Tcp(super::bind_tcp(*addr).map_err(err)?)),
        ListenAddr::Unix(path) => {
            // A socket file left by a previous run would make bind fail.
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                use std::os::unix::fs::FileTypeExt;
                if meta.file_type().is_socket() {
                    let _ = std::fs::remove_file(path);
                }
            }
            let listener = UnixListener::bind(path).map_err(err)?;
            // Local systems in the daemon's group may write (the unit's umask would leave the
            // socket 0750, and connecting needs write permission).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
            Ok(Listener::Unix(listener, path.clone()))
        }
    }
}

/// What the connections of one input share: its counters and the board.
struct Counters {
    accepted: Counter,
    rejected: Counter,
    forbidden: Counter,
    oversized: Counter,
    refused: Counter,
    board: Arc<Board>,
}

/// Accepts connections until shutdown, then waits for the open ones to hand over what they read.
async fn serve(d: JsonlDevice, policy: InputPolicy, listener: Listener, ctx: DeviceContext) {
    let DeviceContext {
        sink,
        shutdown,
        board,
        metrics,
        ..
    } = ctx;
    let policy = Arc::new(policy);
    let counters = Arc::new(Counters {
        accepted: metrics.counter("jsonl.lines_accepted", &d.id),
        rejected: metrics.counter("jsonl.lines_rejected", &d.id),
        forbidden: metrics.counter("jsonl.lines_forbidden", &d.id),
        oversized: metrics.counter("jsonl.lines_oversized", &d.id),
        refused: metrics.counter("jsonl.connections_refused", &d.id),
        board,
    });
    let slots = Arc::new(Semaphore::new(d.max_connections));
    let mut conns = JoinSet::new();
    tracing::info!(event = "device.listening", device_id = %d.id, driver = "jsonl", listen = %d.listen, "accepting JSON lines");
    loop {
        let accepted: std::io::Result<(Box<dyn AsyncReadUnpinSend>, String)> = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = accept(&listener) => r,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(event = "jsonl.accept_failed", device_id = %d.id, driver = "jsonl", error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::inc(&counters.refused);
            tracing::warn!(event = "jsonl.connection_refused", device_id = %d.id, driver = "jsonl", peer = %peer, limit = d.max_connections, "too many connections; closing this one");
            continue;
        };
        let (id, sink, counters, shutdown, policy) = (
            d.id.clone(),
            sink.clone(),
            counters.clone(),
            shutdown.clone(),
            policy.clone(),
        );
        conns.spawn(async move {
            let input = Input {
                device: &id,
                peer: &peer,
                policy: &policy,
                counters: &counters,
            };
            read_connection(stream, &input, &sink, shutdown).await;
            drop(permit);
        });
    }
    while conns.join_next().await.is_some() {}
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
}

trait AsyncReadUnpinSend: AsyncRead + Unpin + Send {}
impl<T: AsyncRead + Unpin + Send> AsyncReadUnpinSend for T {}

async fn accept(l: &Listener) -> std::io::Result<(Box<dyn AsyncReadUnpinSend>, String)> {
    match l {
        Listener::Tcp(t) => {
            let (s, a) = t.accept().await?;
            Ok((Box::new(s), a.to_string()))
        }
        Listener::Unix(u, path) => {
            let (s, _) = u.accept().await?;
            Ok((Box::new(s), format!("unix:{}", path.display())))
        }
    }
}

/// One connection's fixed context.
struct Input<'a> {
    device: &'a str,
    peer: &'a str,
    policy: &'a InputPolicy,
    counters: &'a Counters,
}

async fn read_connection(
    mut stream: Box<dyn AsyncReadUnpinSend>,
    input: &Input<'_>,
    sink: &DeviceSink,
    shutdown: CancellationToken,
) {
    let (device, peer) = (input.device, input.peer);
    tracing::debug!(
        event = "jsonl.connected",
        device_id = device,
        driver = "jsonl",
        peer,
        "connection opened"
    );
    let mut framer = LineFramer::new(MAX_LINE_BYTES);
    let mut buf = vec![0u8; 16 * 1024];
    let mut events: Vec<Event> = Vec::new();
    let mut rejects: u64 = 0;
    loop {
        let n = tokio::select! {
            r = stream.read(&mut buf) => r,
            _ = shutdown.cancelled() => Ok(0),
        };
        let eof = match n {
            Ok(0) => true,
            Ok(n) => {
                input.counters.board.seen(device);
                let now = crate::clock::now();
                framer.push(&buf[..n], |f| {
                    handle(f, input, now, &mut rejects, &mut events)
                });
                false
            }
            Err(e) => {
                tracing::debug!(event = "jsonl.read_failed", device_id = device, driver = "jsonl", peer, error = %e, "read failed; closing");
                true
            }
        };
        if eof {
            let now = crate::clock::now();
            framer.finish(|f| handle(f, input, now, &mut rejects, &mut events));
        }
        for ev in events.drain(..) {
            if sink.send(ev).await.is_err() {
                return;
            }
        }
        if eof {
            break;
        }
    }
    tracing::debug!(
        event = "jsonl.disconnected",
        device_id = device,
        driver = "jsonl",
        peer,
        rejected = rejects,
        "connection closed"
    );
}

fn handle(
    frame: Frame<'_>,
    input: &Input<'_>,
    now: (i64, crate::event::ClockQuality),
    rejects: &mut u64,
    events: &mut Vec<Event>,
) {
    let counters = input.counters;
    let (event, why) = match frame {
        Frame::Line(line) => match parse_line(line, input.device, now) {
            Ok(ev) => match input.policy.check(&ev) {
                Ok(()) => {
                    metrics::inc(&counters.accepted);
                    events.push(ev);
                    return;
                }
                Err(why) => {
                    metrics::inc(&counters.forbidden);
                    ("jsonl.line_forbidden", why)
                }
            },
            Err(e) => {
                metrics::inc(&counters.rejected);
                ("jsonl.line_rejected", e.to_string())
            }
        },
        Frame::Oversized { bytes } => {
            metrics::inc(&counters.oversized);
            (
                "jsonl.line_rejected",
                format!("line of {bytes} bytes exceeds the {MAX_LINE_BYTES}-byte limit; discarded"),
            )
        }
    };
    *rejects += 1;
    if *rejects <= LOG_FIRST_REJECTS || rejects.is_multiple_of(1000) {
        let (device, peer) = (input.device, input.peer);
        if event == "jsonl.line_forbidden" {
            tracing::warn!(event = "jsonl.line_forbidden", device_id = device, driver = "jsonl", peer, rejected_on_connection = *rejects, reason = %why, "refused an input line that is not this input's to send");
        } else {
            tracing::warn!(event = "jsonl.line_rejected", device_id = device, driver = "jsonl", peer, rejected_on_connection = *rejects, reason = %why, "skipped a bad input line");
        }
    }
}
