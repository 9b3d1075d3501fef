//! The [`DiskCache`](super::DiskCache)'s index of small entries it has read, kept parsed (the
//! metadata, its [`StoredPolicy`] and the body) so that a hit on one needs neither a read nor
//! a decode nor a blocking task: one `stat` of the entry's file, on the calling thread, tells
//! whether the file is still the one that was read.
//!
//! A file's identity is its device, inode, length and change time (`ctime`, which every write,
//! rename and timestamp change moves and no process can set back). Another process replacing
//! (writers always rename a new file into place, so the inode differs), removing or touching
//! the file changes it, and the next lookup reads the file again. The one blind spot: a file
//! rewritten in place, or removed and recreated on a reused inode, with the same length within
//! one tick of the file system's clock (a few milliseconds); no writer of this crate does the
//! former, and the entry served then is the verified copy that was read. Only
//! entries stored without `Vary` and with bodies up to [`HOT_BODY_LIMIT`] are kept, at most
//! [`HOT_MAX_BYTES`] of bodies in all (the index is emptied when it would grow past that).
//! Without file identities (non-Unix systems) nothing is kept.
//!
//! A hit refreshes the file's modification time (the LRU clock all processes share) at most
//! once per [`TOUCH_INTERVAL`], on a blocking thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::policy::StoredPolicy;
use super::{CacheMetadata, CachedBody, CachedEntry};

/// The largest body kept in the index: 64 KiB.
pub(crate) const HOT_BODY_LIMIT: u64 = 64 * 1024;
/// The most body bytes the index holds: 4 MiB.
pub(crate) const HOT_MAX_BYTES: u64 = 4 << 20;
/// How often a hit refreshes its file's modification time.
pub(crate) const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// What makes a file the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    ctime: i64,
    ctime_nsec: i64,
}

impl Identity {
    /// The identity of the file `meta` describes; `None` where the system has none.
    pub(crate) fn of(meta: &std::fs::Metadata) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(Self {
                dev: meta.dev(),
                ino: meta.ino(),
                len: meta.len(),
                ctime: meta.ctime(),
                ctime_nsec: meta.ctime_nsec(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }

    /// The identity of the file at `path` now.
    pub(crate) fn at(path: &Path) -> Option<Self> {
        Self::of(&std::fs::symlink_metadata(path).ok()?)
    }
}

struct Hot {
    identity: Identity,
    key: String,
    metadata: CacheMetadata,
    policy: Arc<StoredPolicy>,
    body: Bytes,
    stored_at: SystemTime,
    touched: Instant,
}

/// The index (see the module docs).
#[derive(Default)]
pub(crate) struct HotIndex {
    inner: Mutex<(HashMap<PathBuf, Hot>, u64)>,
}

impl HotIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<PathBuf, Hot>, u64)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry kept for the file at `path`, when it is `key`'s and the file is unchanged.
    /// The second value says the file's modification time is due for a refresh.
    pub(crate) fn get(&self, path: &Path, key: &str) -> Option<(CachedEntry, bool)> {
        let identity = {
            let map = self.lock();
            map.0.get(path)?.identity
        };
        // The stat outside the lock.
        if Identity::at(path) != Some(identity) {
            self.remove(path);
            return None;
        }
        let mut map = self.lock();
        let hot = map.0.get_mut(path)?;
        if hot.key != key || hot.identity != identity {
            return None;
        }
        let touch = hot.touched.elapsed() >= TOUCH_INTERVAL;
        if touch {
            hot.touched = Instant::now();
        }
        let entry = CachedEntry::new(
            hot.metadata.clone(),
            CachedBody::from_bytes(hot.body.clone()),
            hot.stored_at,
        )
        .with_policy(hot.policy.clone());
        Some((entry, touch))
    }

    /// Keeps the entry just read from the file at `path` (with `identity` after the read).
    pub(crate) fn insert(
        &self,
        path: &Path,
        identity: Identity,
        key: &str,
        metadata: &CacheMetadata,
        body: &Bytes,
        stored_at: SystemTime,
    ) {
        let len = body.len() as u64;
        if len > HOT_BODY_LIMIT {
            return;
        }
        let mut map = self.lock();
        let (entries, bytes) = &mut *map;
        if let Some(old) = entries.remove(path) {
            *bytes -= old.body.len() as u64;
        }
        if *bytes + len > HOT_MAX_BYTES {
            entries.clear();
            *bytes = 0;
        }
        *bytes += len;
        entries.insert(
            path.to_owned(),
            Hot {
                identity,
                key: key.to_owned(),
                policy: Arc::new(StoredPolicy::new(metadata)),
                metadata: metadata.clone(),
                body: body.clone(),
                stored_at,
                touched: Instant::now(),
            },
        );
    }

    /// Updates the identity after this instance changed the file's times.
    pub(crate) fn set_identity(&self, path: &Path, identity: Identity) {
        if let Some(hot) = self.lock().0.get_mut(path) {
            hot.identity = identity;
        }
    }

    /// The identity recorded for `path`.
    pub(crate) fn get_identity(&self, path: &Path) -> Option<Identity> {
        self.lock().0.get(path).map(|h| h.identity)
    }

    /// Forgets the file at `path`.
    pub(crate) fn remove(&self, path: &Path) {
        let mut map = self.lock();
        let (entries, bytes) = &mut *map;
        if let Some(old) = entries.remove(path) {
            *bytes -= old.body.len() as u64;
        }
    }

    /// Forgets every file whose name starts with `prefix` in `dir`.
    pub(crate) fn remove_prefix(&self, dir: &Path, prefix: &str) {
        let mut map = self.lock();
        let (entries, bytes) = &mut *map;
        entries.retain(|path, hot| {
            let keep = !(path.parent() == Some(dir)
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix)));
            if !keep {
                *bytes -= hot.body.len() as u64;
            }
            keep
        });
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        let mut map = self.lock();
        map.0.clear();
        map.1 = 0;
    }
}
