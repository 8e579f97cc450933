//! The administrator's and technician's commands that are not the daemon itself:
//! `check-config`, `udev-rules`, `sign-command` (dispatch's side of a command), `evidence verify`, the views over the control socket (`status`, `devices`,
//! `outbox`, `check`, `staffing`, `equipment`) and the station's own records (`duty`, `roster
//! import`, `crew set`, `override`, `equipment import|checkout|checkin|fault|mark`). `main.rs` parses arguments and calls these; they print and return the exit code.
//!
//! Output follows one pattern (docs/OPERATIONS.md): named checks or rows, a human table by
//! default, `--json` for scripts, exit 0 when nothing failed.

pub mod check_config;
pub mod dispatch;
pub mod equipment;
pub mod evidence;
pub mod reload;
pub mod sign_command;
pub mod staffing;
pub mod station_check;
pub mod views;

use serde::Serialize;

/// How a named check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Warning,
    Failed,
}

/// One named check: `ok  profile  generic-x86-4com (/usr/share/…)`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl Check {
    pub fn new(check: &str, outcome: Outcome, detail: impl Into<String>) -> Check {
        Check {
            check: check.to_string(),
            outcome,
            detail: detail.into(),
        }
    }
}

/// Prints checks as a table or JSON; the exit code is 1 when any failed.
pub fn report(checks: &[Check], json: bool) -> u8 {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(checks).expect("checks serialise")
        );
    } else {
        for c in checks {
            let outcome = match c.outcome {
                Outcome::Ok => "ok",
                Outcome::Warning => "warning",
                Outcome::Failed => "FAILED",
            };
            println!("{outcome:<8} {:<10} {}", c.check, c.detail);
        }
    }
    u8::from(checks.iter().any(|c| c.outcome == Outcome::Failed))
}

/// `1m 05s`, `3h 12m`, `2d 4h`: an age or duration for a table.
pub fn format_duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m {:02}s", s / 60, s % 60),
        s if s < 172_800 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}
