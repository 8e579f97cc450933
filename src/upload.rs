//! Sending bytes to central over HTTP(S): a PUT to a pre-signed URL from a command, rate-capped
//! so telemetry keeps flowing beside it, hashed as it goes so the answer proves which bytes left.
//! Body-cam footage (`footage.upload`) and camera snapshots (`camera.snapshot`) both use it;
//! each says what to send and checks the hash against what it expected.
//!
//! Blocking (ureq): call it from a thread of its own (`spawn_blocking`). A link that drops
//! mid-body is retried from the start (a pre-signed URL takes the whole object; PUT is
//! idempotent), at most [`ATTEMPTS`] times with a pause; a refusal by the server (4xx) is not.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tries of one upload (the first and the retries after a dropped link or a 5xx).
pub const ATTEMPTS: u32 = 3;

/// At what rate, trusting which CA: from the device's config.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub kbit_s: u64,
    pub ca_file: Option<PathBuf>,
}

/// How an upload went.
#[derive(Debug, Default)]
pub struct Uploaded {
    /// Bytes of the body the server took (the last attempt's).
    pub bytes: u64,
    /// SHA-256 (hex) of the bytes sent in the last attempt.
    pub sha256: String,
    pub duration_ms: u64,
    pub attempts: u32,
    pub status: Option<u16>,
    pub etag: Option<String>,
    /// Why it failed, in words for the answer; `None` when the server took it.
    pub error: Option<String>,
}

impl Uploaded {
    /// The achieved rate.
    pub fn kbit_s(&self) -> u64 {
        (self.bytes * 8).checked_div(self.duration_ms).unwrap_or(0)
    }
}

/// What one attempt sends: a body of a known length, opened afresh for every attempt.
pub type Body = (Box<dyn Read + Send>, u64);

/// An HTTP client trusting the public roots and, when given, the configured CA; statuses are
/// answers here, not errors (a 401 or a 403 is read, not thrown).
pub fn agent(ca_file: Option<&std::path::Path>) -> Result<ureq::Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("CA file {}: {e}", ca.display()))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!("CA file {}: no certificate in it", ca.display()));
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

/// PUTs what `open` gives to `url`, retrying a dropped link or a 5xx from the start (logged as
/// `retry_event`). `open` failing (the source changed or vanished) ends the upload with its
/// words.
pub fn put(
    retry_event: &'static str,
    settings: &UploadSettings,
    url: &str,
    content_type: &str,
    mut open: impl FnMut() -> Result<Body, String>,
) -> Uploaded {
    let started = Instant::now();
    let mut out = Uploaded::default();
    let agent = match agent(settings.ca_file.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    for attempt in 1..=ATTEMPTS {
        out.attempts = attempt;
        let (body, size) = match open() {
            Ok(b) => b,
            Err(why) => {
                out.error = Some(why);
                break;
            }
        };
        match put_once(&agent, url, content_type, body, size, settings.kbit_s) {
            Ok((status, etag, bytes, sha256)) => {
                out.status = Some(status);
                out.etag = etag;
                out.bytes = bytes;
                out.sha256 = sha256;
                out.error = None;
                break;
            }
            Err(PutError::Refused(status, why)) => {
                out.status = Some(status);
                out.error = Some(why);
                break;
            }
            Err(PutError::Retry(why)) => {
                tracing::warn!(event = retry_event, attempt, error = %why, "an upload to central failed; retrying from the start");
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
    /// A dropped link, a timeout, a 5xx: worth another try.
    Retry(String),
}

fn put_once(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    body: Box<dyn Read + Send>,
    size: u64,
    kbit_s: u64,
) -> Result<(u16, Option<String>, u64, String), PutError> {
    let body = Metered::new(body, kbit_s);
    let hashed = body.hasher.clone();
    let sent = body.sent.clone();
    let response = agent
        .put(url)
        .header("Content-Length", size.to_string())
        .header("Content-Type", content_type)
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
    let sha = stationd_proto::footage::hex(&sha2::Digest::finalize(digest));
    Ok((
        status,
        etag,
        sent.load(std::sync::atomic::Ordering::Relaxed),
        sha,
    ))
}

/// The body as sent: read in pieces of at most 64 KiB, held to the rate cap (a token bucket
/// on monotonic time, one second of burst), hashed as it goes.
struct Metered {
    inner: Box<dyn Read + Send>,
    bytes_per_s: f64,
    started: Instant,
    sent: Arc<std::sync::atomic::AtomicU64>,
    hasher: Arc<std::sync::Mutex<sha2::Sha256>>,
}

impl Metered {
    fn new(inner: Box<dyn Read + Send>, kbit_s: u64) -> Metered {
        Metered {
            inner,
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
        let n = self.inner.read(&mut buf[..piece])?;
        sha2::Digest::update(
            &mut *self.hasher.lock().unwrap_or_else(|p| p.into_inner()),
            &buf[..n],
        );
        self.sent
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}
