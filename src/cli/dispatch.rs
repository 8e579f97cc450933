//! `stationd dispatch [--json]`: the incidents central sent this station's crews to — for each
//! crew the paths the order went out on and how each came out, the acknowledgement, the
//! arrival — and the response figures, through the running daemon's control socket.

use crate::control::client::request;
use crate::control::Command;
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

/// `stationd dispatch [--json]`.
pub fn show(socket: &Path, json: bool) -> u8 {
    let doc = match request::<Value>(socket, Command::Dispatch) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("stationd: {e}");
            return e.exit_code();
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value prints")
        );
    } else {
        print!("{}", render(&doc));
    }
    0
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The human view.
pub fn render(doc: &Value) -> String {
    let mut out = String::new();
    let open = doc["open"].as_array().cloned().unwrap_or_default();
    if open.is_empty() {
        out.push_str("no open incident\n");
    }
    for i in open
        .iter()
        .chain(doc["recent"].as_array().into_iter().flatten())
    {
        incident(&mut out, i);
    }
    let f = &doc["figures"]["station"];
    let secs = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.0} s"));
    let _ = writeln!(
        out,
        "last {} h: {} incidents, {} crews sent, {} acknowledged, {} arrived (median {}, p90 {}), closed by the first crew: {}",
        doc["window_h"],
        f["incidents"],
        f["dispatched"],
        f["acknowledged"],
        f["arrived"],
        secs(&f["median_response_s"]),
        secs(&f["p90_response_s"]),
        f["first_crew_closure_share"]
            .as_f64()
            .map_or("-".to_string(), |x| format!("{:.0} %", x * 100.0)),
    );
    out
}

fn incident(out: &mut String, i: &Value) {
    let state = match i["cleared"]["outcome"].as_str() {
        Some(o) => format!("cleared ({o})"),
        None => "OPEN".to_string(),
    };
    let _ = writeln!(
        out,
        "{} P{} {} — {} @ {} [{}]",
        s(&i["incident"]),
        i["priority"],
        s(&i["type"]),
        s(&i["summary"]),
        s(&i["location"]["address"]),
        state
    );
    for c in i["crews"].as_array().into_iter().flatten() {
        let ack = match (&c["acknowledged"], c["unacknowledged_alarm"].as_bool()) {
            (Value::Object(a), _) => format!(
                "acknowledged after {:.0} s by {}",
                a["after_ms"].as_f64().unwrap_or(0.0) / 1000.0,
                s(&a["by"])
            ),
            (_, Some(true)) => "NOT ACKNOWLEDGED (alarm raised)".to_string(),
            _ => "waiting for acknowledgement".to_string(),
        };
        let arrived = match &c["arrived"] {
            Value::Object(a) => format!(
                "arrived after {:.0} s, {:.0} m driven",
                a["response_s"].as_f64().unwrap_or(0.0),
                a["driven_m"].as_f64().unwrap_or(0.0)
            ),
            _ => "not arrived".to_string(),
        };
        let _ = writeln!(out, "  {}: {ack}; {arrived}", s(&c["car"]));
        if let Some(why) = c["chosen"].as_str() {
            let _ = writeln!(out, "    chosen: {why}");
        }
        for p in c["paths"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "    {:<8} {:<10} {:<9} {}",
                s(&p["via"]),
                s(&p["to"]),
                s(&p["state"]),
                s(&p["detail"])
            );
        }
    }
}
