//! The answer to a command: the `data` of the message on `P/cmd-result/{request_id}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It ran and succeeded; `result` says what came of it.
    Done,
    /// It was not run: bad signature, unsigned, malformed, rate limited, too far ahead.
    Refused,
    /// It ran and did not succeed (a car not connected, a terminal's error code).
    Failed,
    /// It arrived after its `expires_at` and was not run.
    Expired,
    /// No command of that name on this station.
    UnknownCommand,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Refused => "refused",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::UnknownCommand => "unknown_command",
        }
    }
}

/// Every field is always present (`null` where it does not apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub request_id: String,
    /// The command's name (from the topic).
    pub command: String,
    pub status: Status,
    /// Why it was refused or failed, in words for the dispatcher.
    pub reason: Option<String>,
    /// What the command returned (`done`), or details of a failure.
    pub result: Option<Value>,
    /// RFC 3339, when it started to run; null when it did not run.
    pub started_ts: Option<String>,
    /// RFC 3339, when the answer was made.
    pub finished_ts: String,
    /// The station clock's state when it judged the command (`synced` / `unsynced`): with
    /// `unsynced` the expiry was not checked.
    pub clock: String,
}
