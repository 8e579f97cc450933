//! The `jsonl` driver's I/O: TCP and Unix-socket listeners, many connections at once.
//!
//! Each connection is read in chunks and fed to the sans-I/O [`LineFramer`] and
//! [`parse_line`]; good lines go to the outbox, bad ones are counted and logged (the first few
//! per connection, then every thousandth) and skipped. The connection stays open.

use crate::codec::jsonl::{parse_line, Frame, LineFramer, MAX_LINE_BYTES};
use crate::config::{JsonlDevice, ListenAddr};
use crate::event::Event;
use crate::metrics::{self, Counter};
use crate::outbox::EventSink;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::DriverError;

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, std::path::PathBuf),
}

/// Rejected lines logged in full per connection before logging thins out.
const LOG_FIRST_REJECTS: u64 = 10;

pub async fn bind(d: &JsonlDevice) -> Result<Listener, DriverError> {
    let err = |source| DriverError::Listen {
        device: d.id.clone(),
        addr: d.listen.to_string(),
        source,
    };
    match &d.listen {
        ListenAddr::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await.map_err(err)?)),
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

struct Counters {
    accepted: Counter,
    rejected: Counter,
    oversized: Counter,
    refused: Counter,
}

/// Accepts connections until shutdown, then waits for the open ones to hand over what they read.
pub async fn serve(
    d: JsonlDevice,
    listener: Listener,
    sink: EventSink,
    mut shutdown: watch::Receiver<bool>,
) {
    let counters = Arc::new(Counters {
        accepted: metrics::counter("jsonl.lines_accepted", &d.id),
        rejected: metrics::counter("jsonl.lines_rejected", &d.id),
        oversized: metrics::counter("jsonl.lines_oversized", &d.id),
        refused: metrics::counter("jsonl.connections_refused", &d.id),
    });
    let slots = Arc::new(Semaphore::new(d.max_connections));
    let mut conns = JoinSet::new();
    tracing::info!(event = "device.listening", device_id = %d.id, driver = "jsonl", listen = %d.listen, "accepting JSON lines");
    loop {
        let accepted: std::io::Result<(Box<dyn AsyncReadUnpinSend>, String)> = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
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
        let (id, sink, counters, shutdown) = (
            d.id.clone(),
            sink.clone(),
            counters.clone(),
            shutdown.clone(),
        );
        conns.spawn(async move {
            read_connection(stream, &id, &peer, &sink, &counters, shutdown).await;
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

async fn read_connection(
    mut stream: Box<dyn AsyncReadUnpinSend>,
    device: &str,
    peer: &str,
    sink: &EventSink,
    counters: &Counters,
    mut shutdown: watch::Receiver<bool>,
) {
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
            _ = shutdown.wait_for(|s| *s) => Ok(0),
        };
        let eof = match n {
            Ok(0) => true,
            Ok(n) => {
                crate::health::seen(device);
                let now = crate::clock::now();
                framer.push(&buf[..n], |f| {
                    handle(f, device, peer, now, counters, &mut rejects, &mut events)
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
            framer.finish(|f| handle(f, device, peer, now, counters, &mut rejects, &mut events));
        }
        for ev in events.drain(..) {
            crate::health::observe(device, "jsonl", &ev);
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
    device: &str,
    peer: &str,
    now: (i64, crate::event::ClockQuality),
    counters: &Counters,
    rejects: &mut u64,
    events: &mut Vec<Event>,
) {
    let why = match frame {
        Frame::Line(line) => match parse_line(line, device, now) {
            Ok(ev) => {
                metrics::inc(&counters.accepted);
                events.push(ev);
                return;
            }
            Err(e) => {
                metrics::inc(&counters.rejected);
                e.to_string()
            }
        },
        Frame::Oversized { bytes } => {
            metrics::inc(&counters.oversized);
            format!("line of {bytes} bytes exceeds the {MAX_LINE_BYTES}-byte limit; discarded")
        }
    };
    *rejects += 1;
    if *rejects <= LOG_FIRST_REJECTS || rejects.is_multiple_of(1000) {
        tracing::warn!(event = "jsonl.line_rejected", device_id = device, driver = "jsonl", peer, rejected_on_connection = *rejects, reason = %why, "skipped a bad input line");
    }
}
