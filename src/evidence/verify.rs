//! `stationd evidence verify`: walks the chain (an edited, deleted or inserted entry shows) and
//! hashes every indexed file again (a file changed or gone since it was indexed shows). Says
//! what is wrong in words an administrator can act on; the CLI exits 1 on any finding.

use super::store::{EvidenceIndex, IndexError};
use stationd_proto::footage::chain::{self, Break};
use stationd_proto::footage::hex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub entries: usize,
    pub files_checked: usize,
    pub bytes_hashed: u64,
    /// The head as recomputed: last id and chain hash (hex).
    pub head: (i64, String),
    pub problems: Vec<String>,
}

/// Checks the chain of `index` and every file of the docks in `roots` (dock id → root).
pub fn verify(
    index: &EvidenceIndex,
    roots: &BTreeMap<String, PathBuf>,
) -> Result<Report, IndexError> {
    let entries = index.entries()?;
    let (breaks, head) = chain::verify(entries.iter().map(|(_, e, c, l)| (e, *c, *l)));
    let mut report = Report {
        entries: entries.len(),
        head: (entries.last().map_or(0, |(_, e, _, _)| e.id), hex(&head)),
        ..Report::default()
    };
    for b in breaks {
        report.problems.push(match b {
            Break::Edited { id } => format!("entry {id} was edited after it was written (its fields no longer match its hash)"),
            Break::Unlinked { id } => format!("entry {id} does not follow from the entry before it: an entry was deleted, inserted or rewritten before it"),
            Break::Gap { from, to } if from == to => format!("entry {from} is missing from the index (deleted)"),
            Break::Gap { from, to } => format!("entries {from} to {to} are missing from the index (deleted)"),
        });
    }
    for (dock, root) in roots {
        for f in index.files(dock)? {
            if f.missing && f.uploaded {
                continue;
            }
            let on_disk = root.join(&f.path);
            match hash_file(&on_disk) {
                Ok((size, sha)) => {
                    report.files_checked += 1;
                    report.bytes_hashed += size;
                    if sha != f.sha256 {
                        report.problems.push(format!(
                            "{dock}/{}: content changed since it was indexed (entry {}: sha256 {}, now {sha})",
                            f.path, f.entry_id, f.sha256
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    report.problems.push(format!(
                        "{dock}/{}: missing ({}; entry {}, sha256 {})",
                        f.path,
                        if f.uploaded {
                            "uploaded before"
                        } else {
                            "never uploaded"
                        },
                        f.entry_id,
                        f.sha256
                    ));
                }
                Err(e) => report.problems.push(format!(
                    "{dock}/{}: cannot read {}: {e}",
                    f.path,
                    on_disk.display()
                )),
            }
        }
    }
    Ok(report)
}

/// Size and SHA-256 (hex) of a file, read in 1 MiB pieces (memory stays flat for files of any
/// size); the pages read are dropped from the page cache afterwards, so hashing footage does
/// not push the station's working set out.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let _ = nix::fcntl::posix_fadvise(
        &file,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
    Ok((size, hex(&hasher.finalize())))
}
