//! One writer per key for a [`DiskCache`](super::DiskCache) directory, across processes: a
//! writer that starts writing a body to disk first creates `tmp/<entry name>.lock` (with
//! `O_EXCL`, so exactly one process succeeds) and removes it once its entry is renamed into
//! place or abandoned. A second writer of the same key meanwhile gives up (the response it
//! carries is delivered, only not stored). A lock whose file was not refreshed for
//! [`LOCK_STALE_AFTER`] was left by a crashed writer and is taken over; a live writer refreshes
//! its lock at most every [`LOCK_REFRESH`] as its body arrives.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::persist::{self, PRIVATE_FILE_MODE};

/// A lock untouched for this long belongs to a writer that died.
pub(crate) const LOCK_STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a writer refreshes its lock.
pub(crate) const LOCK_REFRESH: Duration = Duration::from_secs(10);

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct KeyLock {
    path: PathBuf,
    refreshed: Instant,
}

impl KeyLock {
    /// Takes the lock `name` in `tmp`, or fails with `WouldBlock` while another writer holds
    /// it.
    pub(crate) fn acquire(tmp: &Path, name: &str) -> io::Result<Self> {
        let path = tmp.join(format!("{name}.lock"));
        for _ in 0..2 {
            match persist::create_new_private(&path, PRIVATE_FILE_MODE) {
                Ok(_) => {
                    return Ok(Self {
                        path,
                        refreshed: Instant::now(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let age = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
                    match age {
                        Ok(age) if age > LOCK_STALE_AFTER => {
                            // Left by a crashed writer: take it over.
                            let _ = fs::remove_file(&path);
                        }
                        Ok(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::WouldBlock,
                                "another writer is storing this entry",
                            ))
                        }
                        // Released meanwhile: try again.
                        Err(_) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "another writer is storing this entry",
        ))
    }

    /// Marks the lock as alive (at most every [`LOCK_REFRESH`]).
    pub(crate) fn refresh(&mut self) {
        if self.refreshed.elapsed() >= LOCK_REFRESH {
            self.refreshed = Instant::now();
            if let Ok(file) = fs::OpenOptions::new().write(true).open(&self.path) {
                let _ = file.set_modified(SystemTime::now());
            }
        }
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
