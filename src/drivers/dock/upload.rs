//! Footage on request: `footage.upload` streams an indexed file to a pre-signed HTTP(S) URL
//! from central (PUT), rate-capped so telemetry keeps flowing beside it, hashing what it sends
//! so the answer proves which bytes left; `footage.list` says what the station holds. Both find
//! the docks in [`crate::evidence::Docks`].
//!
//! The PUT runs on a thread of its own (ureq is blocking; a file of any size is streamed in
//! 64 KiB pieces). A link that drops mid-file is retried from the start (a pre-signed URL
//! takes the whole object; PUT is idempotent), at most [`ATTEMPTS`] times with a pause; a
//! refusal by the server (4xx) is not retried.

use crate::commands::handlers::{CommandContext, Handler, Outcome, Running};
use crate::evidence::{DockHandle, Docks, FileRow};
use serde_json::{json, Map, Value};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tries of one upload (the first and the retries after a dropped link or a 5xx).
pub const ATTEMPTS: u32 = 3;
/// Most entries one `footage.list` answers with.
pub const MAX_LIST: usize = 1000;

/// `footage.upload`: `args: {url, sha256? | path?, dock?}`.
pub struct UploadCommand {
    pub docks: Arc<Docks>,
}

/// `footage.list`: `args: {officer?, recorder?, from?, to?, dock?, limit? (100)}`.
pub struct ListCommand {
    pub docks: Arc<Docks>,
}

/// Where to upload and at what rate: from the dock's config.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub kbit_s: u64,
    pub ca_file: Option<PathBuf>,
}

fn failed(reason: String, result: Option<Value>) -> Outcome {
    Outcome::Failed { reason, result }
}

impl Handler for UploadCommand {
    fn name(&self) -> &'static str {
        "footage.upload"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let url = match args.get("url").and_then(Value::as_str) {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => u.to_string(),
                _ => {
                    return Outcome::BadArgs(
                        "args.url (the pre-signed http(s) URL to PUT the file to) is required"
                            .into(),
                    )
                }
            };
            let sha = args
                .get("sha256")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            let path = args.get("path").and_then(Value::as_str).map(str::to_string);
            if sha.is_none() && path.is_none() {
                return Outcome::BadArgs(
                    "args.sha256 or args.path (which file) is required".into(),
                );
            }
            let want_dock = args.get("dock").and_then(Value::as_str).map(str::to_string);
            let docks = self.docks.clone();
            let found = tokio::task::spawn_blocking(move || {
                find(
                    &docks,
                    want_dock.as_deref(),
                    sha.as_deref(),
                    path.as_deref(),
                )
            })
            .await;
            let (handle, file) = match found {
                Ok(Ok(f)) => f,
                Ok(Err(why)) => return failed(why, None),
                Err(_) => return failed("the index lookup stopped".into(), None),
            };
            let task = {
                let (handle, file) = (handle.clone(), file.clone());
                tokio::task::spawn_blocking(move || put_with_retries(&handle, &file, &url))
            };
            let outcome = match task.await {
                Ok(o) => o,
                Err(_) => return failed("the upload thread stopped".into(), None),
            };
            let mut result = json!({
                "dock": file.dock, "path": file.path, "sha256": file.sha256,
                "bytes": outcome.bytes, "duration_ms": outcome.duration_ms, "attempts": outcome.attempts,
                "rate_kbit_s": (outcome.bytes * 8).checked_div(outcome.duration_ms).unwrap_or(0),
                "http_status": outcome.status, "etag": outcome.etag,
            });
            if let Some(why) = outcome.error {
                return failed(why, Some(result));
            }
            let (index, dock, p) = (handle.index.clone(), file.dock.clone(), file.path.clone());
            let at = crate::clock::unix_ms();
            let _ = tokio::task::spawn_blocking(move || {
                index
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_uploaded(&dock, &p, at)
            })
            .await;
            result["uploaded"] = true.into();
            tracing::info!(event = "footage.uploaded", dock = %file.dock, path = %file.path, bytes = outcome.bytes, duration_ms = outcome.duration_ms, "footage uploaded to central");
            Outcome::Done(result)
        })
    }
}

/// The dock and file a command names.
fn find(
    docks: &Docks,
    dock: Option<&str>,
    sha: Option<&str>,
    path: Option<&str>,
) -> Result<(DockHandle, FileRow), String> {
    for (id, handle) in docks.all() {
        if dock.is_some_and(|d| d != id) {
            continue;
        }
        let index = handle.index.lock().unwrap_or_else(|p| p.into_inner());
        let files = index.files(&id).map_err(|e| e.to_string())?;
        drop(index);
        if let Some(f) = files
            .into_iter()
            .find(|f| path.is_none_or(|p| p == f.path) && sha.is_none_or(|s| s == f.sha256))
        {
            if f.missing {
                return Err(format!(
                    "{id}/{}: indexed, but no longer on the dock (missing)",
                    f.path
                ));
            }
            return Ok((handle, f));
        }
    }
    Err(match (sha, path) {
        (Some(s), _) => format!("no indexed file has sha256 {s}"),
        (None, Some(p)) => format!("no indexed file at {p}"),
        _ => unreachable!("checked"),
    })
}

/// How an upload went.
#[derive(Debug, Default)]
struct Uploaded {
    bytes: u64,
    duration_ms: u64,
    attempts: u32,
    status: Option<u16>,
    etag: Option<String>,
    error: Option<String>,
}

fn put_with_retries(handle: &DockHandle, file: &FileRow, url: &str) -> Uploaded {
    let started = Instant::now();
    let mut out = Uploaded::default();
    let agent = match agent(&handle.upload) {
        Ok(a) => a,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    for attempt in 1..=ATTEMPTS {
        out.attempts = attempt;
        match put_once(&agent, handle, file, url) {
            Ok((status, etag, bytes)) => {
                out.status = Some(status);
                out.etag = etag;
                out.bytes = bytes;
                out.error = None;
                break;
            }
            Err(PutError::Refused(status, why)) => {
                out.status = Some(status);
                out.error = Some(why);
                break;
            }
            Err(PutError::Changed(why)) => {
                out.error = Some(why);
                break;
            }
            Err(PutError::Retry(why)) => {
                tracing::warn!(event = "footage.upload_retry", dock = %file.dock, path = %file.path, attempt, error = %why, "the upload failed; retrying from the start");
                out.error = Some(format!("{why} (after {attempt} attempt(s))"));
                if attempt < ATTEMPTS {
                    #[allow(clippy::disallowed_methods)] // the upload's own blocking thread
                    std::thread::sleep(Duration::from_secs(u64::from(attempt)));
                }
            }
        }
    }
    out.duration_ms = started.elapsed().as_millis() as u64;
    out
}

enum PutError {
    /// The server said no (4xx): the URL is wrong or expired; retrying will not help.
    Refused(u16, String),
    /// The file's bytes are not the indexed ones.
    Changed(String),
    /// A dropped link, a timeout, a 5xx: worth another try.
    Retry(String),
}

fn agent(settings: &UploadSettings) -> Result<ureq::Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = &settings.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("upload_ca_file {}: {e}", ca.display()))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!(
                "upload_ca_file {}: no certificate in it",
                ca.display()
            ));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
    }
    let config = ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

fn put_once(
    agent: &ureq::Agent,
    handle: &DockHandle,
    file: &FileRow,
    url: &str,
) -> Result<(u16, Option<String>, u64), PutError> {
    let on_disk = handle.root.join(&file.path);
    let f = std::fs::File::open(&on_disk)
        .map_err(|e| PutError::Changed(format!("cannot open {}: {e}", on_disk.display())))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    if size != file.size {
        return Err(PutError::Changed(format!(
            "{}: {size} bytes now, {} when indexed: the file changed; not uploaded",
            file.path, file.size
        )));
    }
    let body = Metered::new(f, handle.upload.kbit_s);
    let hashed = body.hasher.clone();
    let sent = body.sent.clone();
    let response = agent
        .put(url)
        .header("Content-Length", size.to_string())
        .header(
            "Content-Type",
            stationd_proto::footage::media_type(file.path.rsplit('.').next().unwrap_or("")),
        )
        .send(ureq::SendBody::from_owned_reader(body));
    let response = response.map_err(|e| PutError::Retry(e.to_string()))?;
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if (400..500).contains(&status) {
        return Err(PutError::Refused(status, format!("the server refused the upload: HTTP {status} (the pre-signed URL is wrong or expired)")));
    }
    if !(200..300).contains(&status) {
        return Err(PutError::Retry(format!(
            "the server answered HTTP {status}"
        )));
    }
    let digest = hashed.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    let sha = stationd_proto::footage::hex(&sha2::Digest::finalize(digest));
    if sha != file.sha256 || sent != size {
        return Err(PutError::Changed(format!("{}: the bytes sent hash to {sha}, the index says {}: the file changed since it was indexed", file.path, file.sha256)));
    }
    Ok((status, etag, sent))
}

/// The file as the request body: read in 64 KiB pieces, held to the rate cap (a token bucket
/// on monotonic time, one second of burst), hashed as it goes.
struct Metered {
    file: std::fs::File,
    bytes_per_s: f64,
    started: Instant,
    sent: Arc<std::sync::atomic::AtomicU64>,
    hasher: Arc<std::sync::Mutex<sha2::Sha256>>,
}

impl Metered {
    fn new(file: std::fs::File, kbit_s: u64) -> Metered {
        Metered {
            file,
            bytes_per_s: (kbit_s.max(1) * 1000 / 8) as f64,
            started: Instant::now(),
            sent: Default::default(),
            hasher: Arc::new(std::sync::Mutex::new(<sha2::Sha256 as sha2::Digest>::new())),
        }
    }
}

impl Read for Metered {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let sent = self.sent.load(std::sync::atomic::Ordering::Relaxed);
        // Ahead of the cap: wait until the bytes sent are what the rate allows by now.
        let due = Duration::from_secs_f64(sent as f64 / self.bytes_per_s);
        let elapsed = self.started.elapsed();
        if due > elapsed + Duration::from_millis(5) {
            #[allow(clippy::disallowed_methods)] // the upload's own blocking thread
            std::thread::sleep(due - elapsed);
        }
        let piece = buf
            .len()
            .min(64 * 1024)
            .min((self.bytes_per_s as usize / 10).max(1024));
        let n = self.file.read(&mut buf[..piece])?;
        sha2::Digest::update(
            &mut *self.hasher.lock().unwrap_or_else(|p| p.into_inner()),
            &buf[..n],
        );
        self.sent
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl Handler for ListCommand {
    fn name(&self) -> &'static str {
        "footage.list"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
            let time = |k: &str| -> Result<Option<i64>, String> {
                match args.get(k) {
                    None => Ok(None),
                    Some(Value::String(s)) => crate::event::parse_ts_ms(s)
                        .map(Some)
                        .ok_or_else(|| format!("args.{k} must be an RFC 3339 time")),
                    Some(_) => Err(format!("args.{k} must be an RFC 3339 time")),
                }
            };
            let (from, to) = match (time("from"), time("to")) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => return Outcome::BadArgs(e),
            };
            let limit = match args.get("limit") {
                None => 100,
                Some(v) => match v.as_u64() {
                    Some(n) if n >= 1 => (n as usize).min(MAX_LIST),
                    _ => return Outcome::BadArgs("args.limit must be a positive integer".into()),
                },
            };
            let (officer, recorder, dock) = (text("officer"), text("recorder"), text("dock"));
            let docks = self.docks.clone();
            let rows = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, String> {
                let mut out = Vec::new();
                for (id, handle) in docks.all() {
                    if dock.as_deref().is_some_and(|d| d != id) {
                        continue;
                    }
                    let index = handle.index.lock().unwrap_or_else(|p| p.into_inner());
                    for f in index.files(&id).map_err(|e| e.to_string())? {
                        let start_ms = f.start_ms;
                        let keep = officer.as_deref().is_none_or(|o| o == f.officer)
                            && recorder.as_deref().is_none_or(|r| r == f.recorder)
                            && from.is_none_or(|t| start_ms.is_some_and(|s| s >= t))
                            && to.is_none_or(|t| start_ms.is_some_and(|s| s < t));
                        if keep {
                            out.push(json!({
                                "dock": f.dock, "path": f.path, "recorder": f.recorder, "officer": f.officer,
                                "size": f.size, "sha256": f.sha256, "entry": f.entry_id,
                                "start": start_ms.map(crate::event::format_ts_ms),
                                "uploaded": f.uploaded, "missing": f.missing,
                            }));
                        }
                    }
                }
                Ok(out)
            })
            .await;
            let mut rows = match rows {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return failed(format!("the evidence index: {e}"), None),
                Err(_) => return failed("the index lookup stopped".into(), None),
            };
            rows.sort_by(|a, b| {
                a["start"]
                    .as_str()
                    .cmp(&b["start"].as_str())
                    .then(a["path"].as_str().cmp(&b["path"].as_str()))
            });
            let matched = rows.len();
            rows.truncate(limit);
            Outcome::Done(json!({"files": rows, "matched": matched, "truncated": matched > limit}))
        })
    }
}
