//! The cellular modem's signal, through ModemManager's own client (`mmcli -J`, its JSON
//! output), where the hardware profile names a cellular interface. Absent ModemManager, or no
//! modem, is said in words rather than guessed.

use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// A process that does not answer within this is abandoned.
const TIMEOUT: Duration = Duration::from_secs(3);

fn mmcli(args: &[&str]) -> Result<Value, String> {
    let mut child = Command::new("mmcli")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run mmcli: {e}"))?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                #[allow(clippy::disallowed_methods)] // on the blocking pool
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("mmcli did not answer within 3 s".into());
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "mmcli: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("mmcli printed no JSON: {e}"))
}

/// Whether `mmcli` is on the PATH.
fn installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join("mmcli").is_file()))
}

/// The modem as the status page and `P/state/box` show it (blocking: run on the blocking pool).
pub fn read() -> Value {
    if !installed() {
        return json!({"present": false, "why": "ModemManager is not installed (no mmcli)"});
    }
    let list = match mmcli(&["-J", "-L"]) {
        Ok(v) => v,
        Err(why) => return json!({"present": false, "why": why}),
    };
    let Some(path) = list["modem-list"]
        .as_array()
        .and_then(|l| l.first())
        .and_then(Value::as_str)
    else {
        return json!({"present": false, "why": "ModemManager sees no modem"});
    };
    match mmcli(&["-J", "-m", path]) {
        Ok(m) => summary(&m),
        Err(why) => json!({"present": false, "why": why}),
    }
}

/// The figures of `mmcli -J -m` that matter on a station.
pub fn summary(m: &Value) -> Value {
    let generic = &m["modem"]["generic"];
    json!({
        "present": true,
        "model": generic["model"],
        "state": generic["state"],
        "signal_pct": generic["signal-quality"]["value"].as_str().and_then(|v| v.parse::<u64>().ok()),
        "access": generic["access-technologies"],
        "operator": m["modem"]["3gpp"]["operator-name"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mmcli -J -m 0` of a Quectel EC25 (ModemManager 1.20), trimmed.
    #[test]
    fn an_mmcli_answer() {
        let m: Value = serde_json::from_str(r#"{"modem":{"3gpp":{"operator-name":"CHINA MOBILE","registration-state":"home"},"generic":{"access-technologies":["lte"],"model":"EC25","signal-quality":{"recent":"yes","value":"67"},"state":"connected"}}}"#).unwrap();
        assert_eq!(
            summary(&m),
            json!({"present": true, "model": "EC25", "state": "connected", "signal_pct": 67,
                   "access": ["lte"], "operator": "CHINA MOBILE"})
        );
    }
}
