//! `stationd staffing`, `stationd duty on|off`, `stationd roster import`, `stationd crew set`,
//! `stationd override add|remove`: the station's staff records, kept on the box through the
//! running daemon's control socket (which records who asked). `stationd staffing --json` prints
//! the document central receives as `P/state/staffing`, with names and the whole roster.

use crate::control::client::{request, ClientError};
use crate::control::Command;
use crate::staffing::roster;
use serde_json::Value;
use std::path::Path;

fn fail(e: ClientError) -> u8 {
    eprintln!("stationd: {e}");
    e.exit_code()
}

fn ask(socket: &Path, cmd: Command) -> Result<Value, u8> {
    request::<Value>(socket, cmd).map_err(fail)
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `3m 05s ago` from an RFC 3339 time in a reply.
fn ago(now_ms: i64, ts: &Value) -> String {
    match ts.as_str().and_then(crate::event::parse_ts_ms) {
        Some(t) => format!(
            "{} ago",
            super::format_duration(((now_ms - t).max(0) / 1000) as u64)
        ),
        None => "-".into(),
    }
}

fn list(v: &Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// `stationd staffing`.
pub fn show(socket: &Path, json: bool) -> u8 {
    let doc = match ask(socket, Command::Staffing) {
        Ok(d) => d,
        Err(code) => return code,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value prints")
        );
        return 0;
    }
    print!("{}", render(&doc, crate::clock::unix_ms()));
    0
}

/// The human view of the staffing document at `now_ms`.
pub fn render(doc: &Value, now_ms: i64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if doc["in_use"] == false {
        out.push_str("no staffing: no [staffing] in the config, no roster, no crews (docs/CONFIG.md, \"[staffing]\"; stationd roster import FILE)\n");
        return out;
    }
    let shift = &doc["shift"];
    if shift.is_object() {
        let _ = writeln!(
            out,
            "shift     on duty: {} · training: {} · off: {} (turns {})",
            list(&shift["on_duty"]),
            list(&shift["training"]),
            list(&shift["off"]),
            str_of(&shift["until"])
        );
    } else {
        out.push_str(
            "shift     no rotation configured ([staffing] teams, start, [[staffing.slot]])\n",
        );
    }
    let count = |v: &Value, role: &str| v[role].as_u64().unwrap_or(0);
    let (on, exp) = (&doc["on_duty"], &doc["expected"]);
    let _ = writeln!(
        out,
        "present   {} officer(s), {} auxiliaries, {} leader(s) — {} of {} expected on duty; missing: {}",
        count(on, "officer"),
        count(on, "auxiliary"),
        count(on, "leader"),
        count(on, "total"),
        count(exp, "total"),
        list(&doc["missing"])
    );
    let crews = doc["crews"].as_array().cloned().unwrap_or_default();
    if !crews.is_empty() {
        out.push_str(
            "\nCREW     READINESS        SINCE           MEMBERS (* present)              REASON\n",
        );
        for c in &crews {
            let members: Vec<String> = c["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .map(|m| {
                            format!(
                                "{}{}",
                                str_of(&m["id"]),
                                if m["present"] == true { "*" } else { "" }
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<8} {:<16} {:<15} {:<32} {}",
                str_of(&c["car"]),
                str_of(&c["readiness"]),
                ago(now_ms, &c["since"]),
                if members.is_empty() {
                    "(nobody)".to_string()
                } else {
                    members.join(", ")
                },
                str_of(&c["reason"])
            );
        }
    }
    let people = doc["people"].as_array().cloned().unwrap_or_default();
    if !people.is_empty() {
        out.push_str(
            "\nPERSON     NAME         ROLE       TEAM  EXPECTED  PRESENT   CREW     BY\n",
        );
        for p in &people {
            let present = if p["expired"] == true {
                "expired"
            } else if p["present"] == true {
                "yes"
            } else if p["by"].is_null() {
                "unheard"
            } else {
                "no"
            };
            let by = match p["by"].as_object() {
                Some(b) => format!(
                    "{} {}: {}",
                    b.get("source").map(str_of).unwrap_or(""),
                    ago(now_ms, b.get("at").unwrap_or(&Value::Null)),
                    b.get("detail").map(str_of).unwrap_or("")
                ),
                None => "-".into(),
            };
            let disputed: Vec<String> = p["disputed_by"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .map(|s| {
                            format!(
                                "{} says {} ({})",
                                str_of(&s["source"]),
                                if s["present"] == true {
                                    "present"
                                } else {
                                    "absent"
                                },
                                ago(now_ms, &s["at"])
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let expected = match (p["expected"] == true, p["exception"].as_str()) {
                (_, Some(e)) => e.to_string(),
                (true, None) => "yes".into(),
                (false, None) => "no".into(),
            };
            let _ = writeln!(
                out,
                "{:<10} {:<12} {:<10} {:<5} {:<9} {:<9} {:<8} {}{}",
                str_of(&p["id"]),
                str_of(&p["name"]),
                p["role"].as_str().unwrap_or("(not on roster)"),
                p["team"].as_str().unwrap_or("-"),
                expected,
                present,
                p["crew"].as_str().unwrap_or("-"),
                by,
                if disputed.is_empty() {
                    String::new()
                } else {
                    format!(" [disputed: {}]", disputed.join("; "))
                }
            );
        }
    }
    let exceptions = doc["exceptions"].as_array().cloned().unwrap_or_default();
    if !exceptions.is_empty() {
        out.push_str("\nEXCEPTION PERSON     KIND   TEAM  FROM                      UNTIL                     BY\n");
        for e in &exceptions {
            let ts = |k: &str| {
                e[k].as_i64()
                    .map(crate::event::format_ts_ms)
                    .unwrap_or_default()
            };
            let _ = writeln!(
                out,
                "{:<9} {:<10} {:<6} {:<5} {:<25} {:<25} {}",
                e["id"],
                str_of(&e["person"]),
                str_of(&e["kind"]),
                e["team"].as_str().unwrap_or("-"),
                ts("from_ms"),
                ts("until_ms"),
                str_of(&e["by"])
            );
        }
    }
    out
}

/// `stationd duty on|off PERSON`.
pub fn duty(socket: &Path, person: &str, present: bool, note: Option<String>) -> u8 {
    match ask(
        socket,
        Command::Duty {
            person: person.to_string(),
            present,
            note,
        },
    ) {
        Ok(v) => {
            println!(
                "{} is {}{}",
                str_of(&v["person"]),
                if v["present"] == true {
                    "on duty"
                } else {
                    "off duty"
                },
                v["crew"]
                    .as_str()
                    .map(|c| format!(" (crew of {c})"))
                    .unwrap_or_default()
            );
            0
        }
        Err(code) => code,
    }
}

/// `stationd roster import FILE`: read and checked here (errors name the row), sent whole.
pub fn roster_import(socket: &Path, file: &Path) -> u8 {
    let people = match read_roster(file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("stationd: {e}");
            return crate::exit_code::CONFIG as u8;
        }
    };
    match ask(socket, Command::RosterImport { people }) {
        Ok(v) => {
            println!(
                "roster: {} people ({} added, {} removed, {} changed)",
                v["people"], v["added"], v["removed"], v["changed"]
            );
            0
        }
        Err(code) => code,
    }
}

/// A roster file, parsed and checked (teams are checked by the daemon, which knows them).
pub fn read_roster(file: &Path) -> Result<Vec<roster::Person>, String> {
    let format = roster::Format::of(file, roster::COLUMNS, "person")?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let people = roster::parse(&text, format).map_err(|e| format!("{}: {e}", file.display()))?;
    roster::check(&people, None).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(people)
}

/// `stationd crew set CAR [PERSON…]`.
pub fn crew_set(socket: &Path, car: &str, members: Vec<String>) -> u8 {
    match ask(
        socket,
        Command::CrewSet {
            car: car.to_string(),
            members,
        },
    ) {
        Ok(v) => {
            println!(
                "{}: {} — {} ({})",
                str_of(&v["car"]),
                list(&v["members"]),
                str_of(&v["readiness"]),
                str_of(&v["reason"])
            );
            0
        }
        Err(code) => code,
    }
}

/// What `stationd override add` was given.
pub struct OverrideArgs {
    pub person: String,
    pub kind: String,
    pub team: Option<String>,
    pub from: Option<String>,
    pub until: Option<String>,
    pub hours: Option<f64>,
    pub note: Option<String>,
}

/// `stationd override add PERSON sick|leave|swap …`.
pub fn override_add(socket: &Path, a: OverrideArgs) -> u8 {
    let parse = |what: &str, s: &str| {
        crate::event::parse_ts_ms(s)
            .ok_or_else(|| format!("--{what} {s:?} is not a time like 2026-12-03T08:00:00+08:00"))
    };
    let times = (|| {
        let from = match &a.from {
            Some(f) => parse("from", f)?,
            None => crate::clock::unix_ms(),
        };
        let until = match (&a.until, a.hours) {
            (Some(u), None) => parse("until", u)?,
            (None, Some(h)) if h > 0.0 => from + (h * 3_600_000.0) as i64,
            _ => return Err("say when it ends: --until TIME or --hours H".to_string()),
        };
        Ok((from, until))
    })();
    let (from_ms, until_ms) = match times {
        Ok(t) => t,
        Err(e) => {
            eprintln!("stationd: {e}");
            return 64;
        }
    };
    match ask(
        socket,
        Command::OverrideAdd {
            person: a.person.clone(),
            kind: a.kind.clone(),
            team: a.team,
            from_ms,
            until_ms,
            note: a.note.unwrap_or_default(),
        },
    ) {
        Ok(v) => {
            println!(
                "exception {} added: {} {} from {} until {}",
                v["id"],
                a.person,
                a.kind,
                crate::event::format_ts_ms(from_ms),
                crate::event::format_ts_ms(until_ms)
            );
            0
        }
        Err(code) => code,
    }
}

/// `stationd override remove ID`.
pub fn override_remove(socket: &Path, id: i64) -> u8 {
    match ask(socket, Command::OverrideRemove { id }) {
        Ok(_) => {
            println!("exception {id} removed");
            0
        }
        Err(code) => code,
    }
}
