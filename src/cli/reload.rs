//! `stationd reload`: asks the running daemon to read its configuration again and apply it
//! (what SIGHUP and the unit's `ExecReload=` do), and says what changed. Exit 0 when applied,
//! 1 when the file was rejected (the running configuration stays), 69 without a daemon. The
//! answer is read as JSON (the daemon's `crate::reload::ReloadOutcome`), so a CLI prints a
//! newer daemon's answer too.

use super::views::short_hash;
use crate::control::client::request;
use crate::control::Command;
use serde_json::Value;
use std::path::Path;

pub fn reload(socket: &Path, json: bool) -> u8 {
    let outcome: Value = match request(socket, Command::Reload) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("stationd: {e}");
            return e.exit_code();
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome).expect("JSON"));
    } else {
        print!("{}", describe(&outcome));
    }
    if outcome["applied"] == true {
        0
    } else {
        1
    }
}

/// The outcome in an administrator's words.
pub fn describe(o: &Value) -> String {
    let hash = short_hash(o["hash"].as_str().unwrap_or("?"));
    if o["applied"] != true {
        return format!(
            "configuration NOT reloaded: {}\nthe running configuration ({hash}) stays; fix the file (stationd check-config) and reload again\n",
            o["error"].as_str().unwrap_or("rejected")
        );
    }
    let list = |key: &str| -> String {
        let ids: Vec<&str> = o["devices"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if ids.is_empty() {
            "-".into()
        } else {
            ids.join(", ")
        }
    };
    let mut text = format!(
        "configuration reloaded: {hash} (was {})\ndevices: added {}; removed {}; restarted {}; {} unchanged\nuplink: {}\n",
        short_hash(o["previous_hash"].as_str().unwrap_or("?")),
        list("added"),
        list("removed"),
        list("restarted"),
        o["devices"]["unchanged"],
        o["uplink"].as_str().unwrap_or("?"),
    );
    if o["devices"]["failed"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
    {
        text.push_str(&format!("FAILED to start: {}\n", list("failed")));
    }
    let pending: Vec<&str> = o["pending_restart"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !pending.is_empty() {
        text.push_str(&format!(
            "changed but read at start only, applies at the next restart (systemctl restart stationd): {}\n",
            pending.join(", ")
        ));
    }
    text
}
