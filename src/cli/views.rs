//! `stationd status`, `stationd devices`, `stationd outbox`: the technician's views of the
//! running daemon, over the control socket ([`crate::control`]).

use super::format_duration;
use crate::control::client::{request, ClientError};
use crate::control::{Command, DevicesReply, OutboxReply, StatusReply};
use crate::outbox::OutboxStats;
use std::path::Path;

/// How long from `then_ms` to `now_ms`: `12s`, `3m 05s`.
fn since(now_ms: i64, then_ms: i64) -> String {
    format_duration(((now_ms - then_ms).max(0) / 1000) as u64)
}

/// `12s ago`, or `never`.
fn ago(now_ms: i64, then_ms: Option<i64>) -> String {
    match then_ms {
        Some(t) => format!("{} ago", since(now_ms, t)),
        None => "never".into(),
    }
}

fn utc(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_else(|_| "?".into())
}

fn fail(e: ClientError) -> u8 {
    eprintln!("stationd: {e}");
    e.exit_code()
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("reply serialises")
    );
}

pub fn status(socket: &Path, json: bool) -> u8 {
    let s: StatusReply = match request(socket, Command::Status) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if json {
        print_json(&s);
        return 0;
    }
    let now = crate::clock::unix_ms();
    println!(
        "station     {} ({}), profile {}, stationd {}, pid {}",
        s.station,
        s.station_name,
        s.profile.as_deref().unwrap_or("none"),
        s.version,
        s.pid
    );
    println!(
        "uptime      {} (since {})",
        format_duration(s.uptime_s),
        utc(s.started_ms)
    );
    let u = &s.uplink;
    match &u.connected_to {
        Some(b) => println!(
            "uplink      connected to {b} for {}, {} publish(es) in flight",
            u.since_ms.map_or_else(|| "?".into(), |t| since(now, t)),
            u.in_flight
        ),
        None => println!(
            "uplink      DOWN{}; buffering in the outbox",
            u.since_ms
                .map(|t| format!(" for {}", since(now, t)))
                .unwrap_or_default()
        ),
    }
    match (&u.last_error, u.last_error_ms) {
        (Some(e), t) => println!("last error  {e} ({})", ago(now, t)),
        (None, _) => println!("last error  none"),
    }
    println!(
        "backlog     {} row(s): alarm {}, event {}, telemetry {}; oldest {}",
        s.outbox.rows(),
        s.outbox.alarm.rows,
        s.outbox.event.rows,
        s.outbox.telemetry.rows,
        oldest(now, &s.outbox)
    );
    let states: Vec<String> = s
        .devices
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    println!(
        "devices     {} ({}) — stationd devices for each",
        s.devices.values().sum::<usize>(),
        states.join(", ")
    );
    if let Some(cfg) = &s.config {
        let mut line = format!(
            "config      {} ({}), loaded {}",
            short_hash(&cfg.hash),
            cfg.path,
            utc(cfg.loaded_ms)
        );
        if !cfg.pending_restart.is_empty() {
            line.push_str(&format!(
                "; changed, applies at the next restart: {}",
                cfg.pending_restart.join(", ")
            ));
        }
        println!("{line}");
        if let Some(last) = &cfg.last_reload {
            if last["applied"] == false {
                println!(
                    "            last reload REJECTED ({}, by {}): {}",
                    last["at_ms"].as_i64().map_or_else(|| "?".into(), utc),
                    last["by"].as_str().unwrap_or("?"),
                    last["error"].as_str().unwrap_or("?")
                );
            }
        }
    }
    let c = |name: &str| s.counters.get(name).copied().unwrap_or(0);
    println!(
        "counters    {} committed, {} published, {} acknowledged, {} evicted, {} commit failure(s)",
        c("outbox.events_committed"),
        c("uplink.published"),
        c("uplink.acked"),
        c("outbox.evicted_rows"),
        c("outbox.commit_failures")
    );
    0
}

/// `sha256:0123456789ab…`: enough to tell two configurations apart on a screen.
pub fn short_hash(hash: &str) -> String {
    match hash.get(..19) {
        Some(head) if hash.len() > 19 => format!("{head}…"),
        _ => hash.to_string(),
    }
}

fn oldest(now: i64, s: &OutboxStats) -> String {
    [&s.alarm, &s.event, &s.telemetry]
        .iter()
        .filter_map(|c| c.oldest_ms)
        .min()
        .map(|t| ago(now, Some(t)))
        .unwrap_or_else(|| "-".into())
}

pub fn devices(socket: &Path, json: bool) -> u8 {
    let r: DevicesReply = match request(socket, Command::Devices) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if json {
        print_json(&r);
        return 0;
    }
    println!(
        "{:<16} {:<7} {:<20} {:<10} DETAIL",
        "DEVICE", "DRIVER", "STATE (FOR)", "LAST SEEN"
    );
    // Configured devices first, each followed by the devices seen through it.
    let top: Vec<_> = r.devices.iter().filter(|d| d.board.via.is_none()).collect();
    for d in top {
        print_row(r.now_ms, d, "");
        for sub in r
            .devices
            .iter()
            .filter(|s| s.board.via.as_deref() == Some(&d.id))
        {
            print_row(r.now_ms, sub, "  ");
        }
    }
    0
}

fn print_row(now: i64, row: &crate::control::DeviceRow, indent: &str) {
    let d = &row.board;
    let mut detail: Vec<String> = Vec::new();
    if let Some(why) = &d.detail {
        detail.push(why.clone());
    }
    // Counters that moved (all of them, zeros included, are in --json).
    for (name, v) in row.counters.iter().filter(|(_, v)| **v > 0) {
        // `nmea.sentences` → `sentences`: the driver column already says which.
        let short = name.split_once('.').map(|(_, n)| n).unwrap_or(name);
        detail.push(format!("{short} {v}"));
    }
    let state = format!("{} ({})", d.state, since(now, d.since_ms));
    println!(
        "{:<16} {:<7} {:<20} {:<10} {}",
        format!("{indent}{}", row.id),
        d.driver,
        state,
        match d.last_seen_ms {
            Some(t) => since(now, t),
            None => "never".into(),
        },
        detail.join(", ")
    );
}

pub fn outbox(socket: &Path, json: bool) -> u8 {
    let r: OutboxReply = match request(socket, Command::Outbox) {
        Ok(r) => r,
        Err(e) => {
            let code = fail(e);
            if code == 69 {
                eprintln!("(a stopped daemon's outbox can be read with: sudo stationd outbox --config /etc/stationd/stationd.toml)");
            }
            return code;
        }
    };
    print_outbox(&r.path, r.now_ms, &r.stats, json);
    0
}

/// `stationd outbox --file`/`--config`: the outbox read from its file (a stopped daemon's).
pub fn outbox_file(path: &Path, json: bool) -> u8 {
    if !path.exists() {
        eprintln!(
            "no outbox at {} yet (the daemon creates it on first start)",
            path.display()
        );
        return 1;
    }
    let stats = crate::outbox::Reader::open(path).and_then(|r| {
        r.stats().map_err(|e| crate::outbox::OutboxError::Open {
            path: path.to_path_buf(),
            source: e,
        })
    });
    match stats {
        Ok(s) => {
            print_outbox(path, crate::clock::unix_ms(), &s, json);
            0
        }
        Err(e) => {
            eprintln!("stationd: {e}");
            1
        }
    }
}

/// The outbox table (or its JSON), from the daemon or read from the file.
pub fn print_outbox(path: &Path, now: i64, s: &OutboxStats, json: bool) {
    if json {
        print_json(s);
        return;
    }
    let age = |oldest: Option<i64>| match oldest {
        Some(ms) => since(now, ms),
        None => "-".into(),
    };
    println!("outbox {}", path.display());
    println!(
        "{:<10} {:>10} {:>12} {:>12}",
        "class", "rows", "bytes", "oldest"
    );
    for (name, c) in [
        ("alarm", &s.alarm),
        ("event", &s.event),
        ("telemetry", &s.telemetry),
    ] {
        println!(
            "{:<10} {:>10} {:>12} {:>12}",
            name,
            c.rows,
            c.bytes,
            age(c.oldest_ms)
        );
    }
    println!("{:<10} {:>10} {:>12}", "total", s.rows(), s.bytes);
    println!(
        "next seq {}; evicted {} row(s) in {} round(s)",
        s.next_seq, s.evicted_rows, s.eviction_rounds
    );
}
