//! `stationd equipment` (the register, filtered by class or state, `--json`), `stationd
//! equipment import FILE`, and the technician's words about an item: `checkout ITEM --to
//! PERSON`, `checkin ITEM`, `fault ITEM`, `mark ITEM STATE`. Through the running daemon's control
//! socket, which records who asked.

use crate::control::client::request;
use crate::control::Command;
use serde_json::Value;
use std::path::Path;

fn ask(socket: &Path, cmd: Command) -> Result<Value, u8> {
    request::<Value>(socket, cmd).map_err(|e| {
        eprintln!("stationd: {e}");
        e.exit_code()
    })
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `stationd equipment [--class C] [--state S] [--json]`.
pub fn show(socket: &Path, class: Option<&str>, state: Option<&str>, json: bool) -> u8 {
    let mut doc = match ask(socket, Command::Equipment) {
        Ok(d) => d,
        Err(code) => return code,
    };
    if let Some(list) = doc["register"].as_array_mut() {
        list.retain(|i| {
            class.is_none_or(|c| i["class"] == c) && state.is_none_or(|s| i["state"] == s)
        });
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value prints")
        );
        return 0;
    }
    print!("{}", render(&doc));
    0
}

/// The human view of the register.
pub fn render(doc: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if doc["items"] == 0 {
        out.push_str(
            "the register is empty (stationd equipment import FILE; docs/OPERATIONS.md)\n",
        );
        return out;
    }
    out.push_str("CLASS            IN_SERVICE  OUT  CHARGING  FAULT  MAINTENANCE  LOST\n");
    if let Some(counts) = doc["counts"].as_object() {
        for (class, c) in counts {
            let n = |s: &str| c[s].as_u64().unwrap_or(0);
            let _ = writeln!(
                out,
                "{class:<16} {:>10}  {:>3}  {:>8}  {:>5}  {:>11}  {:>4}",
                n("in_service"),
                n("checked_out"),
                n("charging"),
                n("fault"),
                n("maintenance_due"),
                n("lost")
            );
        }
    }
    let items = doc["register"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        out.push_str(
            "\nITEM         CLASS            STATE            WITH      DEVICE        NAME / WHY\n",
        );
        for i in &items {
            let why = str_of(&i["reason"]);
            let _ = writeln!(
                out,
                "{:<12} {:<16} {:<16} {:<9} {:<13} {}{}",
                str_of(&i["item"]),
                str_of(&i["class"]),
                str_of(&i["state"]),
                i["assigned_to"].as_str().unwrap_or("-"),
                i["device"].as_str().unwrap_or("-"),
                str_of(&i["name"]),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" — {why}")
                }
            );
        }
    }
    out
}

/// `stationd equipment import FILE`.
pub fn import(socket: &Path, file: &Path) -> u8 {
    let items = (|| {
        let format = crate::records::Format::of(
            file,
            &crate::equipment::register::COLUMNS.join(","),
            "item",
        )?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        crate::equipment::register::parse(&text, format)
            .map_err(|e| format!("{}: {e}", file.display()))
    })();
    let items = match items {
        Ok(i) => i,
        Err(e) => {
            eprintln!("stationd: {e}");
            return crate::exit_code::CONFIG as u8;
        }
    };
    match ask(socket, Command::EquipmentImport { items }) {
        Ok(v) => {
            println!(
                "register: {} items ({} added, {} removed)",
                v["items"], v["added"], v["removed"]
            );
            0
        }
        Err(code) => code,
    }
}

/// `stationd equipment checkout|checkin|fault|mark ITEM …`.
pub fn mark(
    socket: &Path,
    item: &str,
    state: &str,
    to: Option<String>,
    note: Option<String>,
    next_maintenance: Option<String>,
) -> u8 {
    match ask(
        socket,
        Command::EquipmentMark {
            item: item.to_string(),
            state: state.to_string(),
            to,
            note: note.unwrap_or_default(),
            next_maintenance,
        },
    ) {
        Ok(v) => {
            println!(
                "{}: {}{} ({})",
                str_of(&v["item"]),
                str_of(&v["state"]),
                v["assigned_to"]
                    .as_str()
                    .map(|p| format!(" to {p}"))
                    .unwrap_or_default(),
                str_of(&v["reason"])
            );
            0
        }
        Err(code) => code,
    }
}
