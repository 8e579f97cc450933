//! Live video to central: `video.push` (`args: {camera, url, duration_s}`, optional
//! `username` / `password` for the media server) relays a camera's stream to central's media
//! server as an RTSP publisher — the camera read through retina (PLAY over TCP interleaved),
//! the server written with our own small publisher (ANNOUNCE the camera's SDP, SETUP with
//! `mode=record`, RECORD, RTP over TCP interleaved; [`stationd_proto::camera::rtsp`]) — without
//! transcoding: the camera's RTP packets go out as they came. Decision 0012 says why.
//!
//! - Memory is bounded: packets wait in a queue of [`QUEUE_PACKETS`]; when the uplink cannot
//!   keep up the queue fills, and packets are dropped up to the next keyframe (a frame with a
//!   hole in it would only smear at central), counted in the answer ([`wire::FrameGate`]).
//! - The relay starts at a keyframe, so the first thing central's server gets decodes.
//! - It ends at `duration_s`, at `video.stop`, at shutdown, or when either side ends; it is
//!   answered with frames, bytes, what was dropped and why it ended.
//! - At most `[commands] max_video_pushes` run at once; while any runs the outbox's backlog
//!   replay is held ([`crate::uplink::ReplayGate`]): telemetry and alarms still flow.

use super::cameras::{Camera, Cameras};
use super::{session, Down};
use crate::commands::handlers::{CommandContext, Handler, Outcome, Running};
use crate::uplink::ReplayGate;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use stationd_proto::camera::rtsp::{self as wire, Codec, Item, Request, Response};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The longest push one command may ask for.
pub const MAX_PUSH_S: u64 = 3600;
/// Packets waiting for the uplink; at ~1,400 bytes each, about 1.4 MB per push.
pub const QUEUE_PACKETS: usize = 1024;
/// How long central's media server has to answer a request (the camera's: [`session::TIMEOUT`]).
pub const ANSWER_TIMEOUT: Duration = session::TIMEOUT;

/// The pushes running now, and how many may.
#[derive(Default)]
pub struct Pushes {
    limit: AtomicUsize,
    next: AtomicU64,
    running: Mutex<Vec<(u64, String, CancellationToken)>>,
    /// The daemon's shutdown: every push ends with it.
    shutdown: OnceLock<CancellationToken>,
}

impl Pushes {
    /// From `[commands] max_video_pushes` (2 when never set).
    pub fn set_limit(&self, n: usize) {
        self.limit.store(n, Ordering::Relaxed);
    }

    pub fn set_shutdown(&self, token: CancellationToken) {
        let _ = self.shutdown.set(token);
    }

    fn limit(&self) -> usize {
        match self.limit.load(Ordering::Relaxed) {
            0 => 2,
            n => n,
        }
    }

    /// A slot for a push of `camera`, or why not.
    fn begin(self: &Arc<Self>, camera: &str) -> Result<Slot, String> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.len() >= self.limit() {
            let busy: Vec<&str> = running.iter().map(|(_, c, _)| c.as_str()).collect();
            return Err(format!(
                "{} video push(es) already running ({}), the most [commands] max_video_pushes allows; video.stop one first",
                running.len(),
                busy.join(", ")
            ));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let stop = match self.shutdown.get() {
            Some(s) => s.child_token(),
            None => CancellationToken::new(),
        };
        running.push((id, camera.to_string(), stop.clone()));
        Ok(Slot {
            pushes: self.clone(),
            id,
            stop,
        })
    }

    /// Stops every push of `camera`; how many there were.
    fn stop(&self, camera: &str) -> usize {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .iter()
            .filter(|(_, c, _)| c == camera)
            .map(|(_, _, stop)| stop.cancel())
            .count()
    }
}

/// A running push's place; freed on drop.
struct Slot {
    pushes: Arc<Pushes>,
    id: u64,
    stop: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pushes
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _, _)| *id != self.id);
    }
}

/// `video.push`.
pub struct PushCommand {
    pub cameras: Arc<Cameras>,
    pub pushes: Arc<Pushes>,
    pub replay: Arc<ReplayGate>,
}

/// `video.stop` (`args: {camera}`): ends that camera's pushes now; each answers for itself.
pub struct StopCommand {
    pub pushes: Arc<Pushes>,
}

/// Where to push: central's media server.
#[derive(Clone)]
pub struct Target {
    /// The URL as requests name it: without credentials.
    pub url: url::Url,
    pub creds: Option<(String, String)>,
    /// For `rtsps://`: a CA to trust besides Mozilla's roots (the camera's `upload_ca_file`).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Target {
    /// From the command's `url` (rtsp:// or rtsps://) and optional `username` / `password`
    /// (or credentials in the URL, which are taken out of it).
    pub fn from_args(args: &Map<String, Value>) -> Result<Target, String> {
        let text = args
            .get("url")
            .and_then(Value::as_str)
            .ok_or("args.url (central's rtsp:// or rtsps:// media server URL) is required")?;
        let mut url = url::Url::parse(text).map_err(|e| format!("args.url: {e}"))?;
        if url.scheme() != "rtsp" && url.scheme() != "rtsps" {
            return Err("args.url must start with rtsp:// or rtsps://".into());
        }
        if url.host_str().is_none() {
            return Err("args.url has no host".into());
        }
        let from_url = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
        let creds = match (text("username"), text("password")) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => from_url,
            _ => return Err("args.username and args.password go together".into()),
        };
        Ok(Target {
            url,
            creds,
            ca_file: None,
        })
    }
}

impl Handler for PushCommand {
    fn name(&self) -> &'static str {
        "video.push"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let camera = match super::cameras::named(&self.cameras, args) {
                Ok(c) => c,
                Err(why) => return Outcome::BadArgs(why),
            };
            let target = match Target::from_args(args) {
                Ok(t) => Target {
                    ca_file: camera.upload.ca_file.clone(),
                    ..t
                },
                Err(why) => return Outcome::BadArgs(why),
            };
            let duration_s = match args.get("duration_s").and_then(Value::as_u64) {
                Some(d) if (1..=MAX_PUSH_S).contains(&d) => d,
                _ => {
                    return Outcome::BadArgs(format!(
                        "args.duration_s (seconds of video, 1 to {MAX_PUSH_S}) is required"
                    ))
                }
            };
            let slot = match self.pushes.begin(&camera.id) {
                Ok(s) => s,
                Err(why) => {
                    return Outcome::Failed {
                        reason: why,
                        result: None,
                    }
                }
            };
            let _hold = self.replay.hold("video.push");
            tracing::info!(event = "video.push_started", device_id = %camera.id, url = %target.url, duration_s, "pushing a camera's video to central");
            let report = relay(
                &camera,
                &target,
                Duration::from_secs(duration_s),
                &slot.stop,
                self.pushes.shutdown.get(),
            )
            .await;
            drop(slot);
            let result = report.json(&camera, &target);
            tracing::info!(event = "video.push_ended", device_id = %camera.id, ended = report.ended, frames = report.counts.frames, bytes = report.counts.bytes, dropped_frames = report.counts.dropped_frames, "a video push ended");
            match report.failure {
                None => Outcome::Done(result),
                Some(reason) => Outcome::Failed {
                    reason,
                    result: Some(result),
                },
            }
        })
    }
}

impl Handler for StopCommand {
    fn name(&self) -> &'static str {
        "video.stop"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let Some(camera) = args.get("camera").and_then(Value::as_str) else {
                return Outcome::BadArgs(
                    "args.camera (the camera whose pushes to stop) is required".into(),
                );
            };
            let stopped = self.pushes.stop(camera);
            Outcome::Done(json!({"camera": camera, "stopped": stopped}))
        })
    }
}

/// How a push went.
#[derive(Debug, Default)]
pub struct Report {
    pub codec: String,
    /// Frames, packets and bytes relayed and dropped.
    pub counts: wire::FrameGate,
    /// From RECORD accepted to the end, monotonic.
    pub relayed_ms: u64,
    /// Until the first keyframe came from the camera.
    pub waited_for_keyframe_ms: Option<u64>,
    /// `duration`, `stopped`, `shutdown`, `camera_ended`, `server_closed`, `failed`.
    pub ended: &'static str,
    /// Set when the push did not do what was asked.
    pub failure: Option<String>,
}

impl Report {
    fn json(&self, camera: &Camera, target: &Target) -> Value {
        json!({
            "camera": camera.id, "url": target.url.as_str(), "codec": self.codec,
            "frames": self.counts.frames, "keyframes": self.counts.keyframes,
            "packets": self.counts.packets, "bytes": self.counts.bytes,
            "dropped_frames": self.counts.dropped_frames,
            "dropped_packets": self.counts.dropped_packets, "duration_ms": self.relayed_ms,
            "waited_for_keyframe_ms": self.waited_for_keyframe_ms, "ended": self.ended,
        })
    }

    fn failed(why: String) -> Report {
        Report {
            ended: "failed",
            failure: Some(why),
            ..Report::default()
        }
    }
}

/// Relays `camera` to `target` for at most `duration`, or until `stop` (which `shutdown`, when
/// given, also cancels: the answer then says so).
pub async fn relay(
    camera: &Camera,
    target: &Target,
    duration: Duration,
    stop: &CancellationToken,
    shutdown: Option<&CancellationToken>,
) -> Report {
    // The camera: DESCRIBE and SETUP (its SDP is what central's server is told).
    let camera_down = |d: Down| {
        Report::failed(format!(
            "the camera: {}: {}",
            d.reason.replace('_', " "),
            d.detail
        ))
    };
    let (mut described, video) = match session::describe(camera).await {
        Ok(s) => s,
        Err(d) => return camera_down(d),
    };
    let encoding = described.streams()[video].encoding_name().to_string();
    let codec = Codec::from_encoding(&encoding);
    let Some(sdp) = wire::sdp_for_publish(
        described.sdp(),
        video,
        &format!("stationd {}", camera.id),
        "streamid=0",
    ) else {
        return Report::failed("the camera's SDP cannot be restated for the media server".into());
    };
    if let Err(d) = session::setup_tcp(&mut described, video).await {
        return camera_down(d);
    }

    // Central's media server: ANNOUNCE, SETUP (record), RECORD.
    let mut publisher = match tokio::time::timeout(ANSWER_TIMEOUT, Publisher::connect(target)).await
    {
        Err(_) => {
            return Report::failed(format!(
                "the media server {} did not accept a connection within 10 s",
                target.url
            ))
        }
        Ok(Err(why)) => return Report::failed(why),
        Ok(Ok(p)) => p,
    };
    let session_timeout = match publisher.start(&sdp).await {
        Ok(t) => t,
        Err(why) => return Report::failed(why),
    };

    // Only now the camera plays: nothing waits in a buffer while the server was asked.
    let playing = match session::play(described).await {
        Ok(p) => p,
        Err(d) => return camera_down(d),
    };
    let mut report = Report {
        codec: encoding,
        ..Report::default()
    };
    let started = Instant::now();
    let ended = publisher
        .relay(
            playing,
            video,
            codec,
            duration,
            stop,
            shutdown,
            session_timeout,
            &mut report,
            started,
        )
        .await;
    report.relayed_ms = started.elapsed().as_millis() as u64;
    report.ended = ended;
    report.failure = match ended {
        "duration" | "stopped" => None,
        "shutdown" => Some("the station is shutting down".into()),
        "camera_ended" => Some("the camera ended its stream".into()),
        "server_closed" => Some(
            report
                .failure
                .take()
                .unwrap_or_else(|| "the media server closed the connection".into()),
        ),
        _ => report.failure.take(),
    };
    report
}

/// `request` with the answer to the server's challenge, once one came (`auth`).
fn authorize(
    auth: &mut Option<http_auth::PasswordClient>,
    creds: &Option<(String, String)>,
    request: Request,
) -> Result<Request, String> {
    let (Some(client), Some((username, password))) = (auth, creds) else {
        return Ok(request);
    };
    let header = client
        .respond(&http_auth::PasswordParams {
            username,
            password,
            uri: &request.url,
            method: request.method,
            body: Some(&request.body),
        })
        .map_err(|e| format!("cannot answer the media server's challenge: {e}"))?;
    Ok(request.header("Authorization", header))
}

/// Either half of the connection to the media server.
trait Conn: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Conn for T {}

/// The RTSP publisher's side of one connection.
struct Publisher {
    conn: Box<dyn Conn>,
    reader: wire::Reader,
    target: Target,
    cseq: u32,
    auth: Option<http_auth::PasswordClient>,
    session: Option<String>,
}

impl Publisher {
    /// TCP to the server; for `rtsps://` (default port 322) TLS over it, trusting Mozilla's
    /// roots and the configured CA.
    async fn connect(target: &Target) -> Result<Publisher, String> {
        let host = target.url.host_str().unwrap_or_default().to_string();
        let tls = target.url.scheme() == "rtsps";
        let port = target.url.port().unwrap_or(if tls { 322 } else { 554 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("the media server {}: {e}", target.url))?;
        let _ = tcp.set_nodelay(true);
        let conn: Box<dyn Conn> = if tls {
            let config = crate::uplink::tls::public_roots_and(target.ca_file.as_deref())
                .map_err(|e| format!("upload_ca_file: {e}"))?;
            // An IP literal in a URL comes bracketed for IPv6; ServerName wants it bare.
            let name = rustls::pki_types::ServerName::try_from(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            )
            .map_err(|e| format!("the media server's name {host}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("the media server {}: TLS: {e}", target.url))?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        Ok(Publisher {
            conn,
            reader: wire::Reader::new(),
            target: target.clone(),
            cseq: 0,
            auth: None,
            session: None,
        })
    }

    /// ANNOUNCE, SETUP with `mode=record`, RECORD; the session's timeout (s).
    async fn start(&mut self, sdp: &str) -> Result<u64, String> {
        let url = self.target.url.to_string();
        self.call(Request::new("ANNOUNCE", &url).body("application/sdp", sdp.as_bytes().to_vec()))
            .await?;
        let control = format!("{}/streamid=0", url.trim_end_matches('/'));
        let setup = self
            .call(Request::new("SETUP", control).header(
                "Transport",
                "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record",
            ))
            .await?;
        let (session, timeout) = setup
            .session()
            .ok_or("the media server's SETUP answer has no Session")?;
        self.session = Some(session.clone());
        self.call(
            Request::new("RECORD", &url)
                .header("Session", session)
                .header("Range", "npt=0.000-"),
        )
        .await?;
        Ok(timeout)
    }

    /// Sends `request` and waits for its answer, answering an authentication challenge once.
    async fn call(&mut self, request: Request) -> Result<Response, String> {
        let method = request.method;
        let mut response = self.exchange(&request).await?;
        if response.status == 401 && self.auth.is_none() {
            if self.target.creds.is_none() {
                return Err(format!(
                    "the media server refused {method}: authentication failed (401; the command gave no username and password)"
                ));
            }
            let challenges: Vec<&str> = response.headers_named("WWW-Authenticate").collect();
            self.auth = Some(
                http_auth::PasswordClient::try_from(challenges.join(", ").as_str()).map_err(
                    |e| {
                        format!(
                            "the media server's authentication challenge cannot be answered: {e}"
                        )
                    },
                )?,
            );
            response = self.exchange(&request).await?;
        }
        match response.status {
            200..=299 => Ok(response),
            401 => Err(format!(
                "the media server refused {method}: authentication failed (401 {}; check the username and password)",
                response.reason
            )),
            s => Err(format!(
                "the media server refused {method}: {s} {}",
                response.reason
            )),
        }
    }

    /// One request, one response (interleaved packets and the server's own requests met
    /// on the way are skipped or answered).
    async fn exchange(&mut self, request: &Request) -> Result<Response, String> {
        let mut request = authorize(&mut self.auth, &self.target.creds, request.clone())?;
        request = request.header(
            "User-Agent",
            format!("stationd/{}", env!("CARGO_PKG_VERSION")),
        );
        self.cseq += 1;
        let cseq = self.cseq;
        let method = request.method;
        self.conn
            .write_all(&request.encode(cseq))
            .await
            .map_err(|e| format!("the media server, {method}: {e}"))?;
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            while let Some(item) = self
                .reader
                .next_item()
                .map_err(|e| format!("the media server: {e}"))?
            {
                match item {
                    Item::Response(r) if r.cseq() == Some(cseq) || r.cseq().is_none() => {
                        return Ok(r)
                    }
                    Item::Response(_) | Item::Interleaved { .. } => {}
                    Item::Request { cseq: their, .. } => {
                        let _ = self.conn.write_all(&wire::ok_response(their)).await;
                    }
                }
            }
            let n = tokio::time::timeout_at(deadline, self.conn.read(&mut buf))
                .await
                .map_err(|_| format!("the media server did not answer {method} within 10 s"))?
                .map_err(|e| format!("the media server, {method}: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "the media server closed the connection after {method}"
                ));
            }
            self.reader.push(&buf[..n]);
        }
    }

    /// Relays until the end; why it ended.
    #[allow(clippy::too_many_arguments)]
    async fn relay(
        self,
        mut playing: retina::client::Session<retina::client::Playing>,
        video: usize,
        codec: Codec,
        duration: Duration,
        stop: &CancellationToken,
        shutdown: Option<&CancellationToken>,
        session_timeout: u64,
        report: &mut Report,
        started: Instant,
    ) -> &'static str {
        let Publisher {
            conn,
            mut reader,
            target,
            mut cseq,
            mut auth,
            session,
        } = self;
        let (mut from_server, mut to_server) = tokio::io::split(conn);
        // The writer: interleaved packets and the odd request, in order, from a bounded queue.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(QUEUE_PACKETS);
        // Why the server side ended, in words, from whichever half saw it first.
        let why_gone: Arc<Mutex<Option<String>>> = Default::default();
        let gone = |why: &Arc<Mutex<Option<String>>>, text: String| {
            why.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(text);
        };
        let writer_why = why_gone.clone();
        let writer = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if let Err(e) = to_server.write_all(&bytes).await {
                    gone(&writer_why, format!("writing to the media server: {e}"));
                    return;
                }
            }
            let _ = to_server.flush().await;
            let _ = to_server.shutdown().await;
        });
        let mut control = |method: &'static str, cseq: &mut u32| -> Vec<u8> {
            *cseq += 1;
            let mut r = Request::new(method, target.url.as_str());
            if let Some(s) = &session {
                r = r.header("Session", s.clone());
            }
            // Best effort: a keepalive or goodbye the server may refuse changes nothing.
            authorize(&mut auth, &target.creds, r.clone())
                .unwrap_or(r)
                .encode(*cseq)
        };
        // The server's side: responses to keepalives, RTCP receiver reports; its end.
        let (server_gone_tx, mut server_gone) = tokio::sync::oneshot::channel::<()>();
        let answer_tx = tx.clone();
        let reader_why = why_gone.clone();
        let server_reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match from_server.read(&mut buf).await {
                    Ok(0) => {
                        gone(&reader_why, "the media server closed the connection".into());
                        break;
                    }
                    Err(e) => {
                        gone(&reader_why, format!("reading from the media server: {e}"));
                        break;
                    }
                    Ok(n) => reader.push(&buf[..n]),
                }
                loop {
                    match reader.next_item() {
                        Ok(Some(Item::Request { cseq, .. })) => {
                            let _ = answer_tx.try_send(wire::ok_response(cseq));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            gone(&reader_why, format!("the media server: {e}"));
                            let _ = server_gone_tx.send(());
                            return;
                        }
                    }
                }
            }
            let _ = server_gone_tx.send(());
        });
        let deadline = tokio::time::Instant::now() + duration;
        let keepalive_every = Duration::from_secs((session_timeout / 2).clamp(5, 30));
        let mut keepalive = tokio::time::interval_at(
            tokio::time::Instant::now() + keepalive_every,
            keepalive_every,
        );
        let mut gate = wire::FrameGate::default();
        let ended = loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    break if shutdown.is_some_and(CancellationToken::is_cancelled) { "shutdown" } else { "stopped" };
                }
                _ = tokio::time::sleep_until(deadline) => break "duration",
                _ = &mut server_gone => break "server_closed",
                _ = keepalive.tick() => {
                    let _ = tx.try_send(control("GET_PARAMETER", &mut cseq));
                }
                item = playing.next() => match item {
                    None => break "camera_ended",
                    Some(Err(e)) => {
                        report.failure = Some(format!("the camera, while playing: {}", session::first_line(&e)));
                        break "camera_failed";
                    }
                    Some(Ok(retina::client::PacketItem::Rtp(packet))) if packet.stream_id() == video => {
                        let raw = packet.raw();
                        let Some(facts) = wire::rtp_facts(raw, codec) else { continue };
                        let Some(header) = wire::interleaved_header(0, raw.len()) else { continue };
                        let was_started = gate.started;
                        if !gate.admit(facts) {
                            continue;
                        }
                        if !was_started {
                            report.waited_for_keyframe_ms = Some(started.elapsed().as_millis() as u64);
                        }
                        let mut framed = Vec::with_capacity(4 + raw.len());
                        framed.extend_from_slice(&header);
                        framed.extend_from_slice(raw);
                        match tx.try_send(framed) {
                            Ok(()) => gate.sent(facts, raw.len()),
                            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => gate.overflowed(facts),
                            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => break "server_closed",
                        }
                    }
                    Some(Ok(_)) => {}
                },
            }
        };
        report.counts = gate;
        // Say goodbye to the server (best effort) and let the writer drain, briefly.
        let _ = tx.try_send(control("TEARDOWN", &mut cseq));
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        server_reader.abort();
        if ended == "server_closed" {
            report.failure = why_gone.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        ended
    }
}
