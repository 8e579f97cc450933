//! `[commands]`: whether the station takes commands from dispatch, whose, and within what
//! limits (docs/CONTRACT.md, "Commands"). No key and no `allow_unsigned`: no commands.

use crate::command::{Keyring, Policy};
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommands {
    /// Dispatch's Ed25519 public key(s), PEM SubjectPublicKeyInfo blocks.
    #[serde(default)]
    public_key_file: Option<Spanned<PathBuf>>,
    /// Without a key, accept unsigned commands (a test bench, a closed network).
    #[serde(default)]
    allow_unsigned: bool,
    /// How far ahead of now a command's `expires_at` may be, seconds.
    #[serde(default = "default_max_expiry_s")]
    max_expiry_s: u64,
    /// Commands of one name taken per minute; more are refused until the minute has passed.
    #[serde(default = "default_max_per_minute")]
    max_per_minute: u32,
    /// How long answers are kept to answer a repeated `request_id` again, days.
    #[serde(default = "default_keep_days")]
    keep_answers_days: u32,
    /// How many answers are kept at most.
    #[serde(default = "default_keep_answers")]
    keep_answers: u32,
    /// `video.push` relays running at once (each is a camera's full bitrate on the uplink).
    #[serde(default = "default_max_video_pushes")]
    max_video_pushes: u32,
}

impl Default for RawCommands {
    fn default() -> RawCommands {
        RawCommands {
            public_key_file: None,
            allow_unsigned: false,
            max_expiry_s: default_max_expiry_s(),
            max_per_minute: default_max_per_minute(),
            keep_answers_days: default_keep_days(),
            keep_answers: default_keep_answers(),
            max_video_pushes: default_max_video_pushes(),
        }
    }
}

fn default_max_expiry_s() -> u64 {
    86_400
}
fn default_max_per_minute() -> u32 {
    60
}
fn default_keep_days() -> u32 {
    7
}
fn default_keep_answers() -> u32 {
    10_000
}
fn default_max_video_pushes() -> u32 {
    2
}

/// `[commands]`, checked: the key file read and parsed.
#[derive(Debug, Clone)]
pub struct Commands {
    pub keys: Option<Keyring>,
    pub public_key_file: Option<PathBuf>,
    pub allow_unsigned: bool,
    pub max_expiry_s: u64,
    pub max_per_minute: u32,
    pub keep_answers_days: u32,
    pub keep_answers: u32,
    pub max_video_pushes: u32,
}

impl Default for Commands {
    fn default() -> Commands {
        Commands::check(RawCommands::default()).expect("the defaults are valid")
    }
}

/// An error in `[commands]`: (span in the file, key, message).
pub(super) type CommandsError = (Option<std::ops::Range<usize>>, &'static str, String);

impl Commands {
    pub(super) fn check(raw: RawCommands) -> Result<Commands, CommandsError> {
        let keys = match &raw.public_key_file {
            None => None,
            Some(file) => {
                let text = std::fs::read_to_string(file.get_ref()).map_err(|e| {
                    (
                        Some(file.span()),
                        "commands.public_key_file",
                        format!("cannot read {}: {e}", file.get_ref().display()),
                    )
                })?;
                Some(Keyring::from_pem(&text).map_err(|e| {
                    (
                        Some(file.span()),
                        "commands.public_key_file",
                        format!("{}: {e}", file.get_ref().display()),
                    )
                })?)
            }
        };
        if raw.max_expiry_s == 0 {
            return Err((None, "commands.max_expiry_s", "must be at least 1".into()));
        }
        if raw.max_per_minute == 0 {
            return Err((None, "commands.max_per_minute", "must be at least 1".into()));
        }
        Ok(Commands {
            keys,
            public_key_file: raw.public_key_file.map(Spanned::into_inner),
            allow_unsigned: raw.allow_unsigned,
            max_expiry_s: raw.max_expiry_s,
            max_per_minute: raw.max_per_minute,
            keep_answers_days: raw.keep_answers_days,
            keep_answers: raw.keep_answers,
            max_video_pushes: raw.max_video_pushes,
        })
    }

    /// Whether any command can be accepted at all.
    pub fn enabled(&self) -> bool {
        self.keys.is_some() || self.allow_unsigned
    }

    /// What `check-config` says about commands.
    pub fn describe(&self) -> String {
        match (&self.keys, &self.public_key_file) {
            (Some(keys), Some(file)) => format!(
                "signed by dispatch: {} key(s) from {}; expiry at most {} s ahead; {} per minute per command",
                keys.len(),
                file.display(),
                self.max_expiry_s,
                self.max_per_minute
            ),
            _ if self.allow_unsigned => "UNSIGNED commands accepted (allow_unsigned = true): anyone who can publish on the broker can command this station".into(),
            _ => "no commands accepted: no dispatch key ([commands] public_key_file) and allow_unsigned is false".into(),
        }
    }

    /// The checks a command passes before it runs.
    pub fn policy(&self) -> Policy {
        Policy {
            keys: self.keys.clone(),
            allow_unsigned: self.allow_unsigned,
            max_expiry_ms: i64::try_from(self.max_expiry_s.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }
    }
}
