//! `stationd evidence verify`: the administrator's (or an auditor's) check that the footage
//! and its index are as they were indexed. Reads `evidence.db` and the docks' trees directly
//! (the daemon may run meanwhile: SQLite's WAL lets it read a consistent snapshot). Exit 0
//! when everything verifies, 1 on any finding, 78 on a config it cannot read.

use crate::config::Config;
use crate::drivers::dock::DockDevice;
use crate::evidence::{index_path, verify, EvidenceIndex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn verify_command(config: &Path, profile_dirs: &[PathBuf], json: bool) -> u8 {
    let cfg = match Config::load_with(config, profile_dirs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stationd evidence verify: invalid configuration: {e}");
            return crate::exit_code::CONFIG as u8;
        }
    };
    let roots: BTreeMap<String, PathBuf> = cfg
        .devices
        .iter()
        .filter_map(|d| d.as_any().downcast_ref::<DockDevice>())
        .map(|d| (d.id.clone(), d.root.clone()))
        .collect();
    let path = index_path(&cfg.buffer.path);
    if !path.exists() {
        eprintln!(
            "stationd evidence verify: no evidence index at {} (no dock has indexed footage yet)",
            path.display()
        );
        return u8::from(!roots.is_empty());
    }
    let index = match EvidenceIndex::open(&path) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("stationd evidence verify: {e}");
            return 1;
        }
    };
    let report = match verify::verify(&index, &roots) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stationd evidence verify: {e}");
            return 1;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": report.problems.is_empty(),
                "entries": report.entries,
                "files_checked": report.files_checked,
                "bytes_hashed": report.bytes_hashed,
                "head": {"entry": report.head.0, "chain": report.head.1},
                "problems": report.problems,
            })
        );
    } else {
        for p in &report.problems {
            println!("FAILED   {p}");
        }
        println!(
            "{}       {} entries in the chain, {} files hashed again ({} bytes); head: entry {} {}",
            if report.problems.is_empty() {
                "ok"
            } else {
                "FAILED"
            },
            report.entries,
            report.files_checked,
            report.bytes_hashed,
            report.head.0,
            report.head.1
        );
    }
    u8::from(!report.problems.is_empty())
}
