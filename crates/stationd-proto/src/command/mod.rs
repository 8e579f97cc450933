//! Commands from central dispatch, without I/O: reading a command message, the canonical form
//! its signature covers, the check of that signature against dispatch's keys, the checks of
//! its times, and the answer object (docs/CONTRACT.md, "Commands").
//!
//! A command arrives on `P/cmd/{name}` as one JSON object:
//! `{"request_id", "issued_at", "expires_at", "args", "sig"}`. The name comes from the topic,
//! so the signature binds it (with the station id) to stop a command signed for one purpose
//! or one station being replayed as another.

mod answer;
mod canonical;
mod keys;

pub use answer::{Answer, Status};
pub use canonical::{signed_bytes, SIGNED_PURPOSE};
pub use ed25519_dalek::SigningKey;
pub use keys::{signing_key_from_pem, KeyError, Keyring};

use serde_json::{Map, Value};

/// Largest command message read (bytes); a larger one is not parsed at all.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// Longest `request_id`: it becomes a topic level (`P/cmd-result/{request_id}`).
pub const MAX_REQUEST_ID: usize = 64;

/// A command as dispatch sent it. The times are kept as sent (the signature covers the text)
/// and as Unix milliseconds (the checks use those).
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// From the topic: `P/cmd/{name}`.
    pub name: String,
    pub request_id: String,
    pub issued_at: String,
    pub issued_ms: i64,
    pub expires_at: String,
    pub expires_ms: i64,
    pub args: Map<String, Value>,
    /// The Ed25519 signature (64 bytes), when the message carried one.
    pub sig: Option<Vec<u8>>,
}

/// A message that is not a valid command. With a readable `request_id` it is answered
/// (`status: "refused"`); without one it can only be counted and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Malformed {
    pub request_id: Option<String>,
    pub reason: String,
}

/// Whether `name` may be a command name (a topic level): `[a-z0-9_.]`, 1 to 64 characters.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Whether `id` may be a `request_id`: `[A-Za-z0-9._:-]`, 1 to 64 characters, so that it is
/// a safe topic level (no `/`, `+`, `#`).
pub fn valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Reads the command `name` (from the topic) out of `payload`.
pub fn parse(name: &str, payload: &[u8]) -> Result<Command, Malformed> {
    let unanswerable = |reason: String| Malformed {
        request_id: None,
        reason,
    };
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(unanswerable(format!(
            "command message of {} bytes, more than {MAX_COMMAND_BYTES}",
            payload.len()
        )));
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| unanswerable(format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(unanswerable("not a JSON object".into()));
    };
    let request_id = match obj.remove("request_id") {
        Some(Value::String(id)) if valid_request_id(&id) => id,
        Some(Value::String(_)) => {
            return Err(unanswerable(
                "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -".into(),
            ))
        }
        Some(_) => return Err(unanswerable("request_id must be a string".into())),
        None => return Err(unanswerable("no request_id".into())),
    };
    let refuse = |reason: String| Malformed {
        request_id: Some(request_id.clone()),
        reason,
    };
    if !valid_name(name) {
        return Err(refuse(format!(
            "command name {name:?} is not valid: [a-z0-9_.], 1 to 64 characters"
        )));
    }
    let mut time = |key: &str| -> Result<(String, i64), Malformed> {
        match obj.remove(key) {
            Some(Value::String(text)) => match crate::event::parse_ts_ms(&text) {
                Some(ms) => Ok((text, ms)),
                None => Err(refuse(format!("{key} is not an RFC 3339 time: {text:?}"))),
            },
            Some(_) => Err(refuse(format!("{key} must be an RFC 3339 string"))),
            None => Err(refuse(format!("no {key}"))),
        }
    };
    let (issued_at, issued_ms) = time("issued_at")?;
    let (expires_at, expires_ms) = time("expires_at")?;
    let args = match obj.remove("args") {
        Some(Value::Object(args)) => args,
        None => Map::new(),
        Some(_) => return Err(refuse("args must be a JSON object".into())),
    };
    let sig = match obj.remove("sig") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| refuse(format!("sig is not base64: {e}")))?;
            if bytes.len() != 64 {
                return Err(refuse(format!(
                    "sig must be 64 bytes (an Ed25519 signature), not {}",
                    bytes.len()
                )));
            }
            Some(bytes)
        }
        Some(_) => return Err(refuse("sig must be a base64 string".into())),
    };
    Ok(Command {
        name: name.to_string(),
        request_id,
        issued_at,
        issued_ms,
        expires_at,
        expires_ms,
        args,
        sig,
    })
}

impl Command {
    /// A new unsigned command (the dispatch side: `stationd sign-command`, the demo, tests).
    pub fn new(
        name: &str,
        request_id: &str,
        issued_ms: i64,
        expires_ms: i64,
        args: Map<String, Value>,
    ) -> Command {
        Command {
            name: name.to_string(),
            request_id: request_id.to_string(),
            issued_at: crate::event::format_ts_ms(issued_ms),
            issued_ms,
            expires_at: crate::event::format_ts_ms(expires_ms),
            expires_ms,
            args,
            sig: None,
        }
    }

    /// Signs the command for `station` with dispatch's private key.
    pub fn sign(&mut self, station: &str, key: &ed25519_dalek::SigningKey) {
        use ed25519_dalek::Signer;
        let sig = key.sign(&signed_bytes(station, self));
        self.sig = Some(sig.to_bytes().to_vec());
    }

    /// The message to publish on `P/cmd/{name}`.
    pub fn to_payload(&self) -> Vec<u8> {
        use base64::Engine;
        let mut v = serde_json::json!({
            "request_id": self.request_id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "args": self.args,
        });
        if let Some(sig) = &self.sig {
            v["sig"] = base64::engine::general_purpose::STANDARD.encode(sig).into();
        }
        serde_json::to_vec(&v).expect("a JSON value always serialises")
    }
}

/// What the station accepts, from `[commands]`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Dispatch's keys; None: none configured.
    pub keys: Option<Keyring>,
    /// Without keys, whether unsigned commands are accepted at all.
    pub allow_unsigned: bool,
    /// How far ahead `expires_at` may be (ms).
    pub max_expiry_ms: i64,
}

/// Why a command is not executed: the answer's `status` and `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `status: "refused"`: not signed, badly signed, or no commands taken. Nothing about such
    /// a message can be trusted, its `request_id` included: its answer is not kept (else a
    /// stranger could take a request_id before dispatch uses it).
    Unauthenticated(String),
    /// `status: "refused"`.
    Refused(String),
    /// `status: "expired"`.
    Expired(String),
}

/// The checks before a command runs: [`authenticate`], then [`check_times`].
pub fn check(
    cmd: &Command,
    station: &str,
    policy: &Policy,
    now_ms: i64,
    clock_synced: bool,
) -> Result<(), Refusal> {
    authenticate(cmd, station, policy)?;
    check_times(cmd, policy, now_ms, clock_synced)
}

/// Its signature, or the station's consent to unsigned commands.
pub fn authenticate(cmd: &Command, station: &str, policy: &Policy) -> Result<(), Refusal> {
    match (&policy.keys, &cmd.sig) {
        (Some(keys), Some(sig)) => {
            if !keys.verify(&signed_bytes(station, cmd), sig) {
                return Err(Refusal::Unauthenticated(
                    "bad signature: not signed by a configured dispatch key for this station, this command and these arguments".into(),
                ));
            }
        }
        (Some(_), None) => {
            return Err(Refusal::Unauthenticated(
                "unsigned: this station requires commands signed by dispatch".into(),
            ))
        }
        (None, _) if !policy.allow_unsigned => {
            return Err(Refusal::Unauthenticated(
                "this station accepts no commands: no dispatch key configured ([commands] public_key_file)".into(),
            ))
        }
        (None, _) => {}
    }
    Ok(())
}

/// Its times. `now_ms` is the box's clock; when it is not synchronised (`clock_synced` false)
/// the times cannot be judged and are not, which the answer states.
pub fn check_times(
    cmd: &Command,
    policy: &Policy,
    now_ms: i64,
    clock_synced: bool,
) -> Result<(), Refusal> {
    if cmd.expires_ms <= cmd.issued_ms {
        return Err(Refusal::Refused(format!(
            "expires_at ({}) is not after issued_at ({})",
            cmd.expires_at, cmd.issued_at
        )));
    }
    if !clock_synced {
        return Ok(());
    }
    if cmd.expires_ms <= now_ms {
        return Err(Refusal::Expired(format!(
            "expired at {} ({} s ago by this station's synchronised clock)",
            cmd.expires_at,
            (now_ms - cmd.expires_ms) / 1000
        )));
    }
    if cmd.expires_ms - now_ms > policy.max_expiry_ms {
        return Err(Refusal::Refused(format!(
            "expires_at ({}) is {} s ahead, more than the {} s this station accepts (max_expiry_s)",
            cmd.expires_at,
            (cmd.expires_ms - now_ms) / 1000,
            policy.max_expiry_ms / 1000
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
