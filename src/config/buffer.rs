//! `[buffer]`: the outbox settings, written here or given by the hardware profile's
//! `[storage]`, merged key by key and checked (the directory writable, the quota sane).

use super::{profile, ConfigError};
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The outbox settings: `[buffer]` over the hardware profile's `[storage]` defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    pub path: PathBuf,
    pub max_bytes: u64,
    /// `power-cut` (default): every commit is fsynced (SQLite synchronous=FULL), so a power cut
    /// loses nothing that was committed. `process-crash`: synchronous=NORMAL in WAL mode, which
    /// survives a crash of the daemon but may lose the last commits on power loss; for boxes
    /// whose flash must be spared.
    pub durability: Durability,
}

/// `[buffer]` as written: every key optional, since the profile may give it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuffer {
    #[serde(default)]
    path: Option<Spanned<PathBuf>>,
    #[serde(default)]
    max_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    durability: Option<Durability>,
}

fn default_max_bytes() -> u64 {
    1 << 30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    #[default]
    PowerCut,
    ProcessCrash,
}

/// `[buffer]`'s keys over the profile's `[storage]` defaults, checked: the directory must be
/// writable, the quota at least 1 MiB. Errors point at the key's line when the station config
/// wrote it, at `[buffer]` (or nowhere) when it came from the profile.
pub(super) fn buffer_settings(
    raw: Option<Spanned<RawBuffer>>,
    storage: Option<&profile::Storage>,
    err: &impl Fn(Option<Range<usize>>, Option<&str>, String) -> ConfigError,
) -> Result<Buffer, ConfigError> {
    let (table_span, raw) = match raw {
        Some(t) => (Some(t.span()), t.into_inner()),
        None => (
            None,
            RawBuffer {
                path: None,
                max_bytes: None,
                durability: None,
            },
        ),
    };
    let at = |key: Option<Range<usize>>| key.or(table_span.clone());
    let (path, path_span) = match (raw.path, storage.and_then(|s| s.buffer_path.clone())) {
        (Some(p), _) => (p.get_ref().clone(), Some(p.span())),
        (None, Some(p)) => (p, None),
        (None, None) => {
            return Err(err(
                table_span,
                Some("buffer.path"),
                "missing: the outbox file; set it in [buffer] or as buffer_path in the hardware profile's [storage]".into(),
            ))
        }
    };
    let (max_bytes, max_span) = match (raw.max_bytes, storage.and_then(|s| s.buffer_max_bytes)) {
        (Some(m), _) => (*m.get_ref(), Some(m.span())),
        (None, Some(m)) => (m, None),
        (None, None) => (default_max_bytes(), None),
    };
    let durability = raw
        .durability
        .or(storage.and_then(|s| s.durability))
        .unwrap_or_default();
    check_writable_db_path(&path)
        .map_err(|why| err(at(path_span.clone()), Some("buffer.path"), why))?;
    // The daemon keeps its other stores beside the outbox, under these names.
    if let Some(name) = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| crate::side_store::NAMES.contains(n))
    {
        return Err(err(
            at(path_span),
            Some("buffer.path"),
            format!("{name} is the name of a file the daemon keeps beside the outbox ({}); name the outbox otherwise (outbox.db)", crate::side_store::NAMES.join(", ")),
        ));
    }
    if max_bytes < 1 << 20 {
        return Err(err(
            at(max_span),
            Some("buffer.max_bytes"),
            "must be at least 1 MiB (1048576)".into(),
        ));
    }
    Ok(Buffer {
        path,
        max_bytes,
        durability,
    })
}

/// The outbox file must be creatable or writable: its directory must exist and be writable.
fn check_writable_db_path(path: &Path) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    if !path.is_absolute() {
        return Err(format!("{} must be an absolute path", path.display()));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        return Err(format!(
            "directory {} does not exist; create it (the systemd unit's StateDirectory= does)",
            dir.display()
        ));
    }
    if path.exists() {
        access(path, AccessFlags::R_OK | AccessFlags::W_OK).map_err(|e| {
            format!(
                "{} is not readable and writable by this user: {e}",
                path.display()
            )
        })?;
    }
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        format!(
            "directory {} is not writable by this user: {e}",
            dir.display()
        )
    })
}
