//! The `jt808` driver: the station box as the platform for the patrol cars' JT/T 808
//! terminals, over TCP. Its config is [`config`]; the protocol state of one connection is
//! [`Session`] (pure, in the protocol crate); this is the I/O: a listener with a connection limit,
//! one task per terminal, an idle timeout, and disconnection of a terminal that keeps sending
//! garbage.
//!
//! - Registration (0x0100) is answered with 0x8100 and a fresh authentication code; a
//!   terminal not listed in `terminals` is refused (result 4) unless `allow_unknown`, and is
//!   reported (`jt808.unknown_terminal`) either way.
//! - Authentication (0x0102) must present the code issued by this daemon; until then other
//!   messages are answered "fail" (terminals then register again, which they do after every
//!   reset anyway).
//! - Every message that needs it gets a 0x8001 general response; unknown messages get
//!   "unsupported". A reply is written only once the events its message produced are
//!   committed to the outbox ([`answer`]): a terminal deletes the stored reports the platform
//!   acknowledged, so an early acknowledgement would lose them in a power cut.
//! - Locations (0x0200) become `position` telemetry for the car, by exception
//!   ([`crate::drivers::gps::ReportFilter`]) — except while an alarm bit is set: those always
//!   pass. A newly set alarm bit becomes an alarm-priority event (`vehicle.emergency` for bit
//!   0, `vehicle.alarm` otherwise) with the car's position. Batches of stored locations
//!   (0x0704) become positions with their own time and `historical: true`.

mod config;
pub mod text;

pub use config::{Jt808Device, TerminalEntry};
pub use stationd_proto::jt808::{
    normalize_phone, Action, KnownTerminal, Notice, Session, SessionConfig, Shared,
};

use super::{DeviceContext, DeviceSink, Driver, DriverError};
use crate::board::Board;
use crate::codec::jt808::FrameDecoder;
use crate::config::ListenAddr;
use crate::event::{Event, Priority};
use crate::metrics::{self, Counter, Metrics};
use crate::outbox::Committed;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The registry's entry (`driver = "jt808"`).
pub const DRIVER: Driver = Driver {
    name: "jt808",
    serial: false,
    parse: super::parse_device::<config::Jt808Device>,
    keys: crate::config::keys::keys_of::<config::Jt808Device>,
};

/// Bad frames tolerated on one connection before the terminal is disconnected.
const MAX_BAD_FRAMES: u32 = 20;

/// What the connections of one listener share for their I/O: counters and the board.
struct Counters {
    frames: Counter,
    bad_frames: Counter,
    refused: Counter,
    garbage_disconnects: Counter,
    board: Arc<Board>,
    metrics: Arc<Metrics>,
}

/// Binds the listener (inside the runtime).
fn bind(d: &Jt808Device) -> Result<TcpListener, DriverError> {
    let ListenAddr::Tcp(addr) = &d.listen else {
        unreachable!("checked by config")
    };
    super::bind_tcp(*addr).map_err(|source| DriverError::Listen {
        device: d.id.clone(),
        addr: d.listen.to_string(),
        source,
    })
}

/// Accepts terminals until shutdown.
async fn serve(
    d: Jt808Device,
    listener: TcpListener,
    ctx: DeviceContext,
    links: Arc<text::CarLinks>,
) {
    let DeviceContext {
        sink,
        shutdown,
        board,
        metrics,
        ..
    } = ctx;
    let shared = Arc::new(Shared::new(d.session_config()));
    let counters = Arc::new(Counters {
        frames: metrics.counter("jt808.frames", &d.id),
        bad_frames: metrics.counter("jt808.frames_rejected", &d.id),
        refused: metrics.counter("jt808.connections_refused", &d.id),
        garbage_disconnects: metrics.counter("jt808.garbage_disconnects", &d.id),
        board,
        metrics,
    });
    let slots = Arc::new(Semaphore::new(d.max_connections));
    let idle = Duration::from_secs(d.idle_timeout_s);
    let started = Instant::now();
    let mut conns = JoinSet::new();
    tracing::info!(event = "device.listening", device_id = %d.id, driver = "jt808", listen = %d.listen, "accepting vehicle terminals");
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::inc(&counters.refused);
            tracing::warn!(event = "jt808.connection_refused", device_id = %d.id, driver = "jt808", peer = %peer, limit = d.max_connections, "too many terminals connected");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (shared, sink, counters, shutdown, links) = (
            shared.clone(),
            sink.clone(),
            counters.clone(),
            shutdown.clone(),
            links.clone(),
        );
        conns.spawn(async move {
            connection(
                stream,
                peer.to_string(),
                shared,
                sink,
                counters,
                idle,
                started,
                shutdown,
                links,
            )
            .await;
            drop(permit);
        });
    }
    while conns.join_next().await.is_some() {}
}

/// Replies waiting to be written to one terminal, at most.
const REPLY_QUEUE: usize = 1024;
/// How long a closing connection waits for the commits its last replies are held for.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A reply to the terminal, held until the events queued before it are committed.
struct Reply {
    after: Option<Committed>,
    bytes: Vec<u8>,
}

/// Writes the replies in order, each once the events before it are on disk: a terminal deletes
/// the stored reports the platform acknowledges, so a 0x8001 sent before the commit would lose
/// them in a power cut. Err says why it stopped writing.
async fn answer(
    mut stream: tokio::net::tcp::OwnedWriteHalf,
    mut replies: mpsc::Receiver<Reply>,
) -> Result<(), &'static str> {
    while let Some(reply) = replies.recv().await {
        if let Some(committed) = reply.after {
            committed
                .wait()
                .await
                .map_err(|_| "the outbox could not commit")?;
        }
        stream
            .write_all(&reply.bytes)
            .await
            .map_err(|_| "connection error")?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: tokio::net::TcpStream,
    peer: String,
    shared: Arc<Shared>,
    sink: DeviceSink,
    counters: Arc<Counters>,
    idle: Duration,
    started: Instant,
    shutdown: CancellationToken,
    links: Arc<text::CarLinks>,
) {
    let mut session = Session::new(shared.clone());
    // Texts from dispatch for this terminal, once it is logged in as a car; and the ones
    // sent, by serial, waiting for the terminal's 0x0001.
    let (texts_tx, mut texts) = mpsc::channel::<text::TextRequest>(8);
    let mut attached: Option<(String, u64)> = None;
    let mut awaiting: std::collections::HashMap<
        u16,
        tokio::sync::oneshot::Sender<Result<u8, String>>,
    > = Default::default();
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 4096];
    let mut bad: u32 = 0;
    let mut actions = Vec::new();
    let (mut input, output) = stream.into_split();
    let (replies, queued) = mpsc::channel::<Reply>(REPLY_QUEUE);
    let mut answering = tokio::spawn(answer(output, queued));
    let reason = loop {
        let n = tokio::select! {
            r = tokio::time::timeout(idle, input.read(&mut buf)) => match r {
                Err(_) => break "idle timeout",
                Ok(Ok(0)) => break "closed by the terminal",
                Ok(Err(_)) => break "connection error",
                Ok(Ok(n)) => n,
            },
            r = &mut answering => break r.ok().and_then(Result::err).unwrap_or("connection error"),
            _ = shutdown.cancelled() => break "shutdown",
            Some(request) = texts.recv() => {
                match session.text(request.flags, &request.text) {
                    Some((serial, bytes)) => {
                        if replies.send(Reply { after: None, bytes }).await.is_err() {
                            let _ = request.answer.send(Err("connection error".into()));
                            break "connection error";
                        }
                        awaiting.retain(|_, waiting| !waiting.is_closed());
                        awaiting.insert(serial, request.answer);
                    }
                    None => {
                        let _ = request.answer.send(Err("the terminal is not logged in".into()));
                    }
                }
                continue;
            }
        };
        let now = crate::clock::now();
        let mono = started.elapsed().as_millis() as u64;
        counters.board.seen(shared.device());
        if let Some(car) = session.car() {
            counters.board.seen(car);
        }
        decoder.push(&buf[..n], |f| match f {
            Ok(frame) => {
                metrics::inc(&counters.frames);
                actions.extend(session.on_frame(frame, now, mono));
            }
            Err(e) => {
                metrics::inc(&counters.bad_frames);
                bad += 1;
                if bad <= 3 {
                    // Records about a car carry its id, so `journalctl DEVICE_ID=car-03` finds them.
                    let device_id = session.car().unwrap_or(shared.device());
                    tracing::warn!(event = "jt808.frame_rejected", device_id = %device_id, driver = "jt808", listener = %shared.device(), peer = %peer, error = %e, "skipped a bad frame");
                }
            }
        });
        let mut close = None;
        // The event right before a reply is sent with a receipt, and the reply waits for it
        // (commits are in queue order: that receipt covers every earlier event too).
        let mut receipt = None;
        let mut actions_left = actions.drain(..).peekable();
        while let Some(a) = actions_left.next() {
            match a {
                Action::Reply(bytes) => {
                    let reply = Reply {
                        after: receipt.take(),
                        bytes,
                    };
                    if replies.send(reply).await.is_err() {
                        close = Some("connection error");
                    }
                }
                Action::Event(ev) => {
                    log_car_event(&ev, shared.device(), &peer);
                    if matches!(actions_left.peek(), Some(Action::Reply(_))) {
                        match sink.send_durable(ev).await {
                            Ok(r) => receipt = Some(r),
                            Err(_) => return,
                        }
                    } else if sink.send(ev).await.is_err() {
                        return;
                    }
                }
                Action::Close(why) => close = Some(why),
                Action::Notice(notice) => {
                    log_notice(&notice, shared.device(), &peer, &counters.metrics)
                }
                Action::TerminalAnswer {
                    serial,
                    msg_id: 0x8300,
                    result,
                } => {
                    if let Some(waiting) = awaiting.remove(&serial) {
                        let _ = waiting.send(Ok(result));
                    }
                }
                Action::TerminalAnswer { .. } => {}
            }
        }
        drop(actions_left);
        if attached.is_none() && session.authenticated() {
            if let Some(car) = session.car() {
                attached = Some((car.to_string(), links.attach(car, texts_tx.clone())));
            }
        }
        if let Some(why) = close {
            break why;
        }
        if bad > MAX_BAD_FRAMES {
            metrics::inc(&counters.garbage_disconnects);
            break "too many bad frames";
        }
    };
    if let Some((car, link)) = &attached {
        links.detach(car, *link);
    }
    // Replies still queued go out as their events commit (a refused registration's answer,
    // the last acknowledgements); then the connection closes.
    drop(replies);
    if !answering.is_finished() {
        let _ = tokio::time::timeout(CLOSE_GRACE, &mut answering).await;
        answering.abort();
    }
    tracing::info!(event = "jt808.disconnected", device_id = %session.car().unwrap_or(shared.device()), driver = "jt808", listener = %shared.device(), peer = %peer, reason, "terminal connection closed");
    if session.authenticated() {
        let ev = Event::new(
            session.car().unwrap_or(shared.device()),
            "device.offline",
            Priority::Event,
            crate::clock::now(),
            false,
            json!({"driver": "jt808", "reason": reason}),
        );
        let _ = sink.send(ev).await;
    }
}

/// What the session asks to be logged and counted.
fn log_notice(notice: &Notice, listener: &str, peer: &str, metrics: &Metrics) {
    match notice {
        Notice::MessageRejected {
            device,
            phone,
            error,
        } => {
            tracing::warn!(event = "jt808.message_rejected", device_id = %device, driver = "jt808", listener = %listener, peer = %peer, phone = %phone, error = %error, "malformed message");
        }
        Notice::DeviceTimeRejected {
            car,
            device_time_ms,
            stored,
            first,
        } => {
            crate::metrics::inc(&metrics.counter("clock.device_time_rejected", car));
            if *first {
                tracing::warn!(
                    event = "clock.device_time_rejected",
                    device_id = %car,
                    driver = "jt808",
                    listener = %listener,
                    device_time = %device_time_ms.map(crate::event::format_ts_ms).unwrap_or_default(),
                    stored,
                    "the terminal's clock is off by more than max_clock_skew_s from the synchronised box clock (flat RTC battery?): its reports carry the box's time and clock \"device_unreliable\" (its own time stays in gnss_time)"
                );
            }
        }
    }
}

/// The journal's view of a car: its registration, health and alarms, under its own device id
/// (positions are not logged: they go to central only).
fn log_car_event(ev: &Event, listener: &str, peer: &str) {
    match ev.kind.as_str() {
        "position" => {}
        "vehicle.emergency" | "vehicle.alarm" => {
            tracing::warn!(event = ev.kind.as_str(), device_id = %ev.device, driver = "jt808", listener = %listener, peer = %peer, data = %ev.data.get(), "alarm from the car's terminal (sent to central)")
        }
        _ => {
            tracing::info!(event = ev.kind.as_str(), device_id = %ev.device, driver = "jt808", listener = %listener, peer = %peer, data = %ev.data.get(), "terminal event (sent to central)")
        }
    }
}
