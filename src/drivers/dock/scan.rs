//! Reading the footage tree: every file (relative path, size, mtime) and the recorders'
//! directories at its top. Hidden names (`.part`, `.tmp` files of a copy in progress) are
//! skipped. Blocking: run on the blocking pool.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One file as the filesystem shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
}

pub fn stat(path: &Path) -> std::io::Result<Stat> {
    let m = std::fs::metadata(path)?;
    if !m.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(Stat {
        size: m.len(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
    })
}

/// The files below a root by relative path, and its top-level directories.
pub type Tree = (Vec<(String, Stat)>, Vec<String>);

/// The tree below `root`: (files by relative path, top-level directories). Depth is bounded
/// (a dock writes recorder/date/file at most); symlinks are not followed.
pub fn walk(root: &Path) -> std::io::Result<Tree> {
    let mut files = Vec::new();
    let mut top = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    std::fs::read_dir(root)?;
    while let Some((dir, rel, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let rel_path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if kind.is_dir() {
                if depth == 0 {
                    top.push(name.clone());
                }
                if depth < 6 {
                    stack.push((entry.path(), rel_path, depth + 1));
                }
            } else if kind.is_file() {
                if let Ok(s) = stat(&entry.path()) {
                    files.push((rel_path, s));
                }
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    top.sort();
    Ok((files, top))
}

/// Free and total bytes of the filesystem holding `path`.
pub fn space(path: &Path) -> std::io::Result<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let unit = s.fragment_size() as u64;
    Ok((s.blocks_available() as u64 * unit, s.blocks() as u64 * unit))
}

/// When an MP4/MOV recording was created, from its `mvhd` (Unix ms); None for other files, a
/// header that is not set, or a file that is not well formed. Reads box headers only, then
/// the `moov` box (at most 16 MiB), wherever it is in the file.
pub fn mp4_created_ms(path: &Path) -> Option<i64> {
    use stationd_proto::footage::mp4;
    use std::io::{Read, Seek, SeekFrom};
    const MAX_MOOV: u64 = 16 << 20;
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut offset = 0u64;
    for _ in 0..64 {
        if offset + 8 > len {
            return None;
        }
        f.seek(SeekFrom::Start(offset)).ok()?;
        let mut head = [0u8; 16];
        let n = f.read(&mut head).ok()?;
        let h = mp4::box_header(&head[..n])?;
        let payload = h
            .payload_len
            .unwrap_or(len.saturating_sub(offset + h.header_len));
        if &h.kind == b"moov" {
            if payload > MAX_MOOV {
                return None;
            }
            f.seek(SeekFrom::Start(offset + h.header_len)).ok()?;
            let mut moov = vec![0u8; payload as usize];
            f.read_exact(&mut moov).ok()?;
            return mp4::created_ms(&moov);
        }
        offset = offset.checked_add(h.header_len)?.checked_add(payload)?;
    }
    None
}
