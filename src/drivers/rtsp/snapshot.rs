//! `camera.snapshot` (`args: {camera, url}`): a JPEG from the camera's `snapshot_url` (HTTP,
//! Basic or Digest authentication as the camera asks, through the `http-auth` crate retina
//! itself uses), bounded by `snapshot_max_kb`, checked to be a JPEG, then PUT to the pre-signed
//! URL from the command through [`crate::upload`] (the footage upload's path: rate cap, hash,
//! retries). The answer carries size, SHA-256, pixel size and capture time (the box's clock
//! when the camera's answer came; a camera's own clock is often wrong).

use super::cameras::{Camera, Cameras};
use crate::commands::handlers::{CommandContext, Handler, Outcome, Running};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// `camera.snapshot`.
pub struct SnapshotCommand {
    pub cameras: Arc<Cameras>,
}

/// A picture as the camera gave it.
#[derive(Debug)]
pub struct Picture {
    pub jpeg: Vec<u8>,
    pub captured_ms: i64,
    pub width: Option<u16>,
    pub height: Option<u16>,
}

impl Handler for SnapshotCommand {
    fn name(&self) -> &'static str {
        "camera.snapshot"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let camera = match super::cameras::named(&self.cameras, args) {
                Ok(c) => c,
                Err(why) => return Outcome::BadArgs(why),
            };
            let url = match args.get("url").and_then(Value::as_str) {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => u.to_string(),
                _ => {
                    return Outcome::BadArgs(
                        "args.url (the pre-signed http(s) URL to PUT the picture to) is required"
                            .into(),
                    )
                }
            };
            let task = tokio::task::spawn_blocking(move || snapshot_and_upload(&camera, &url));
            match task.await {
                Ok(Ok(result)) => Outcome::Done(result),
                Ok(Err((reason, result))) => Outcome::Failed { reason, result },
                Err(_) => Outcome::Failed {
                    reason: "the snapshot thread stopped".into(),
                    result: None,
                },
            }
        })
    }
}

type Failure = (String, Option<Value>);

fn snapshot_and_upload(camera: &Camera, url: &str) -> Result<Value, Failure> {
    let picture = fetch(camera).map_err(|why| {
        tracing::warn!(event = "camera.snapshot_failed", device_id = %camera.id, error = %why, "no snapshot from the camera");
        (why, None)
    })?;
    let sha256 =
        stationd_proto::footage::hex(&<sha2::Sha256 as sha2::Digest>::digest(&picture.jpeg));
    let size = picture.jpeg.len() as u64;
    let jpeg: Arc<[u8]> = picture.jpeg.into();
    let sent = crate::upload::put(
        "camera.snapshot_upload_retry",
        &camera.upload,
        url,
        "image/jpeg",
        || {
            let body = std::io::Cursor::new(jpeg.clone());
            Ok((Box::new(body) as Box<dyn std::io::Read + Send>, size))
        },
    );
    let mut result = json!({
        "camera": camera.id, "bytes": size, "sha256": sha256,
        "captured_at": crate::event::format_ts_ms(picture.captured_ms),
        "width": picture.width, "height": picture.height,
        "http_status": sent.status, "etag": sent.etag,
        "duration_ms": sent.duration_ms, "attempts": sent.attempts,
    });
    if let Some(why) = sent.error {
        return Err((why, Some(result)));
    }
    if sent.sha256 != sha256 {
        return Err((
            format!(
                "the bytes sent hash to {}, the picture to {sha256}",
                sent.sha256
            ),
            Some(result),
        ));
    }
    result["uploaded"] = true.into();
    tracing::info!(event = "camera.snapshot", device_id = %camera.id, bytes = size, "camera snapshot uploaded to central");
    Ok(result)
}

/// GETs the camera's snapshot URL, answering its authentication challenge once.
pub fn fetch(camera: &Camera) -> Result<Picture, String> {
    let Some(url) = &camera.snapshot_url else {
        return Err(format!(
            "{} has no snapshot_url configured (docs/CONFIG.md, rtsp)",
            camera.id
        ));
    };
    let agent = crate::upload::agent(None)?;
    let unreachable = |e: ureq::Error| format!("snapshot_url {url}: {e}");
    let mut response = agent.get(url).call().map_err(unreachable)?;
    if response.status() == 401 {
        let Some(creds) = &camera.creds else {
            return Err(format!(
                "authentication failed: the camera asks for credentials at {url} (HTTP 401); set username and password_file"
            ));
        };
        let challenges: Vec<&str> = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut client = http_auth::PasswordClient::try_from(challenges.join(", ").as_str())
            .map_err(|e| {
                format!("the camera's authentication challenge cannot be answered: {e}")
            })?;
        let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
        let uri = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let authorization = client
            .respond(&http_auth::PasswordParams {
                username: &creds.username,
                password: &creds.password,
                uri: &uri,
                method: "GET",
                body: Some(&[]),
            })
            .map_err(|e| {
                format!("the camera's authentication challenge cannot be answered: {e}")
            })?;
        response = agent
            .get(url)
            .header("Authorization", authorization)
            .call()
            .map_err(unreachable)?;
        if response.status() == 401 {
            return Err(format!(
                "authentication failed: the camera refused user {:?} at {url} (HTTP 401)",
                creds.username
            ));
        }
    }
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(format!("the camera answered HTTP {status} at {url}"));
    }
    let captured_ms = crate::clock::unix_ms();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content type")
        .to_string();
    let jpeg = response
        .body_mut()
        .with_config()
        .limit(camera.snapshot_max_bytes)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => format!(
                "the camera's answer is larger than snapshot_max_kb ({} kB): not a snapshot",
                camera.snapshot_max_bytes / 1024
            ),
            e => format!("reading the snapshot from {url}: {e}"),
        })?;
    if !stationd_proto::camera::jpeg::is_jpeg(&jpeg) {
        return Err(format!(
            "the camera answered with {content_type} ({} bytes), not a JPEG",
            jpeg.len()
        ));
    }
    let size = stationd_proto::camera::jpeg::dimensions(&jpeg);
    Ok(Picture {
        captured_ms,
        width: size.map(|s| s.0),
        height: size.map(|s| s.1),
        jpeg,
    })
}
