//! The dock's hashing thread: files are hashed one at a time on a thread of their own whose
//! I/O priority is "idle" (ioprio_set(2), IOPRIO_CLASS_IDLE), so the dock's own copy from a
//! recorder and the outbox's commits are not slowed by a 4 GiB video being read. Memory stays
//! flat whatever the file size (1 MiB pieces, `evidence::verify::hash_file`). An MP4's header
//! is read on the same thread, for the recording's start when its name does not say.

use std::path::PathBuf;
use tokio::sync::oneshot;

type Job = (PathBuf, oneshot::Sender<std::io::Result<Hashed>>);

/// A file read: its size and SHA-256, and for MP4/MOV the creation time in its header.
#[derive(Debug, Clone)]
pub struct Hashed {
    pub size: u64,
    pub sha256: String,
    pub media_created_ms: Option<i64>,
}

pub struct Hasher {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Hasher {
    /// Starts the thread (it ends when the `Hasher` is dropped).
    pub fn start(name: &str) -> std::io::Result<Hasher> {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("hash-{name}"))
            .spawn(move || {
                idle_io_priority();
                while let Ok((path, reply)) = rx.recv() {
                    let hashed = crate::evidence::verify::hash_file(&path).map(|(size, sha256)| {
                        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                        let mp4 = ["mp4", "mov", "m4v", "3gp"]
                            .iter()
                            .any(|e| ext.eq_ignore_ascii_case(e));
                        Hashed {
                            size,
                            sha256,
                            media_created_ms: mp4
                                .then(|| super::scan::mp4_created_ms(&path))
                                .flatten(),
                        }
                    });
                    let _ = reply.send(hashed);
                }
            })?;
        Ok(Hasher { jobs })
    }

    /// Size and SHA-256 of the file at `path` (and an MP4's creation time).
    pub async fn hash(&self, path: PathBuf) -> std::io::Result<Hashed> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((path, tx))
            .map_err(|_| std::io::Error::other("the hashing thread stopped"))?;
        rx.await
            .map_err(|_| std::io::Error::other("the hashing thread stopped"))?
    }
}

/// This thread's I/O at idle priority: served when no one else wants the disk.
fn idle_io_priority() {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    // SAFETY: ioprio_set takes three integers and touches no memory of ours; `who` 0 is the
    // calling thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_long,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        )
    };
    if r != 0 {
        tracing::warn!(event = "dock.ioprio_unavailable", error = %std::io::Error::last_os_error(), "cannot lower the hashing thread's I/O priority; footage is hashed at normal priority");
    }
}
