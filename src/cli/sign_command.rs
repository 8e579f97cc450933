//! `stationd sign-command`: dispatch's side of a command, so that an integrator (or a test,
//! or a technician with `mosquitto_pub`) can produce a valid signed command on day one. It
//! prints the message to publish on `P/cmd/{name}` (docs/CONTRACT.md, "Commands").

use crate::command::{signing_key_from_pem, Command};
use std::path::PathBuf;

pub struct SignArgs {
    /// Dispatch's Ed25519 private key, PEM PKCS#8; None: unsigned.
    pub key: Option<PathBuf>,
    pub station: String,
    pub name: String,
    /// `args` as a JSON object.
    pub args: Option<String>,
    pub request_id: Option<String>,
    pub ttl_s: u64,
}

/// Prints the command message; exit 0, or 1 with what is wrong.
pub fn sign_command(a: &SignArgs) -> u8 {
    match build(a) {
        Ok(payload) => {
            println!("{payload}");
            eprintln!(
                "publish it (QoS 1) on {{topic_prefix}}/{}/cmd/{}; the answer comes on …/cmd-result/<request_id>",
                a.station, a.name
            );
            0
        }
        Err(e) => {
            eprintln!("stationd sign-command: {e}");
            1
        }
    }
}

fn build(a: &SignArgs) -> Result<String, String> {
    if !crate::command::valid_name(&a.name) {
        return Err(format!(
            "command name {:?} is not valid: [a-z0-9_.], 1 to 64 characters",
            a.name
        ));
    }
    let args = match &a.args {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err("ARGS must be a JSON object, e.g. '{\"car\":\"car-02\"}'".into()),
            Err(e) => return Err(format!("ARGS is not JSON: {e}")),
        },
    };
    let now = crate::clock::unix_ms();
    let request_id = a
        .request_id
        .clone()
        .unwrap_or_else(|| format!("cli-{now}-{:04x}", fastrand::u16(..)));
    if !crate::command::valid_request_id(&request_id) {
        return Err("--request-id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -".into());
    }
    let ttl_ms = i64::try_from(a.ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    let mut cmd = Command::new(&a.name, &request_id, now, now + ttl_ms, args);
    if let Some(path) = &a.key {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
        let key = signing_key_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        cmd.sign(&a.station, &key);
    }
    Ok(String::from_utf8(cmd.to_payload()).expect("JSON is UTF-8"))
}
