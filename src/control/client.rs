//! The technician's side: one request, one reply, and errors that say what to do.

use super::{Command, Request, PROTOCOL_VERSION};
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the daemon gets to answer (it answers in milliseconds unless it is wedged).
const DEADLINE: Duration = Duration::from_secs(10);
/// A reload stops and starts devices: its answer may take longer (the daemon gives up on it
/// after `crate::reload::RELOAD_DEADLINE`).
const RELOAD_DEADLINE: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("stationd is not running: no control socket at {0} (check: systemctl status stationd; journalctl -u stationd)")]
    NotRunning(PathBuf),
    #[error("stationd is not running: nothing answers on {0}, a socket left by a stopped daemon (check: systemctl status stationd)")]
    Stale(PathBuf),
    #[error("permission denied on {0}: the control socket is for members of the stationd group; add yourself with `sudo usermod -aG stationd $USER` and log in again, or use sudo")]
    PermissionDenied(PathBuf),
    #[error("the daemon did not answer within 10 s on {0}: it may be stuck (journalctl -u stationd; the watchdog restarts it)")]
    Timeout(PathBuf),
    #[error("cannot talk to the daemon on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon refused the request: {0}")]
    Refused(String),
    #[error("cannot understand the daemon's reply ({0}); is this stationd the same version as the daemon?")]
    BadReply(String),
}

impl ClientError {
    /// sysexits code: 69 (unavailable) when the daemon is not there, 77 (no permission), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::NotRunning(_) | ClientError::Stale(_) | ClientError::Timeout(_) => 69,
            ClientError::PermissionDenied(_) => 77,
            _ => 1,
        }
    }
}

/// Sends `cmd` to the daemon at `socket` and returns its typed reply.
pub fn request<T: DeserializeOwned>(socket: &Path, cmd: Command) -> Result<T, ClientError> {
    let path = socket.to_path_buf();
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => ClientError::NotRunning(path.clone()),
        std::io::ErrorKind::ConnectionRefused => ClientError::Stale(path.clone()),
        std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(path.clone()),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            ClientError::Timeout(path.clone())
        }
        _ => ClientError::Io {
            path: path.clone(),
            source,
        },
    };
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    let read_deadline = if cmd == Command::Reload {
        RELOAD_DEADLINE
    } else {
        DEADLINE
    };
    stream.set_read_timeout(Some(read_deadline)).map_err(io)?;
    stream.set_write_timeout(Some(DEADLINE)).map_err(io)?;
    let mut line = serde_json::to_string(&Request {
        v: PROTOCOL_VERSION,
        cmd,
    })
    .expect("request serialises");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).map_err(io)?;
    if reply.is_empty() {
        return Err(ClientError::BadReply(
            "the connection closed without a reply".into(),
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&reply).map_err(|e| ClientError::BadReply(e.to_string()))?;
    if v["ok"] != true {
        return Err(ClientError::Refused(
            v["error"].as_str().unwrap_or("no reason given").to_string(),
        ));
    }
    serde_json::from_value(v["reply"].clone()).map_err(|e| ClientError::BadReply(e.to_string()))
}
