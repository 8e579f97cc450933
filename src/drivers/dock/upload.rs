//! Footage on request: `footage.upload` streams an indexed file to a pre-signed HTTP(S) URL
//! from central (PUT), rate-capped so telemetry keeps flowing beside it, hashing what it sends
//! so the answer proves which bytes left; `footage.list` says what the station holds. Both find
//! the docks in [`crate::evidence::Docks`].
//!
//! The PUT is [`crate::upload`]'s (rate cap, hashing, retries from the start), on a thread of
//! its own; a file of any size is streamed.

use crate::commands::handlers::{CommandContext, Handler, Outcome, Running};
use crate::evidence::{DockHandle, Docks, FileRow};
use crate::upload::Uploaded;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::sync::Arc;
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
                "rate_kbit_s": outcome.kbit_s(),
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

/// PUTs the indexed file, checking that the bytes sent are the ones the index holds.
fn put_with_retries(handle: &DockHandle, file: &FileRow, url: &str) -> Uploaded {
    let on_disk = handle.root.join(&file.path);
    let content_type =
        stationd_proto::footage::media_type(file.path.rsplit('.').next().unwrap_or(""));
    let mut out = crate::upload::put(
        "footage.upload_retry",
        &handle.upload,
        url,
        content_type,
        || {
            let f = std::fs::File::open(&on_disk)
                .map_err(|e| format!("cannot open {}: {e}", on_disk.display()))?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            if size != file.size {
                return Err(format!(
                    "{}: {size} bytes now, {} when indexed: the file changed; not uploaded",
                    file.path, file.size
                ));
            }
            Ok((Box::new(f) as Box<dyn Read + Send>, size))
        },
    );
    if out.error.is_none() && (out.sha256 != file.sha256 || out.bytes != file.size) {
        out.error = Some(format!(
            "{}: the bytes sent hash to {}, the index says {}: the file changed since it was indexed",
            file.path, out.sha256, file.sha256
        ));
    }
    out
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
