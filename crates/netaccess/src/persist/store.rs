//! The saves of the cookie jar and the HSTS store (cargo features `cookies`, `hsts`): atomic
//! replacement, the size limit on reading, the lock and the three-way merge of
//! [`update_locked`], and the JSON and time conversions of both file formats.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::hash::Hash;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{create_new_private, PRIVATE_FILE_MODE};

/// A state file larger than this is refused (a jar at its limits is about 15 MiB of JSON).
pub(crate) const MAX_STATE_FILE_SIZE: u64 = 64 << 20;
/// How long a save waits for another process's lock before it fails with `WouldBlock`.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The mode for a file replacing `path`: owner-only, or the existing file's mode when that
/// allows less (an existing 0400 stays 0400; an existing 0644 becomes 0600).
fn replacement_mode(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match fs::metadata(path) {
            Ok(m) => m.permissions().mode() & PRIVATE_FILE_MODE,
            Err(_) => PRIVATE_FILE_MODE,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        PRIVATE_FILE_MODE
    }
}

fn split_path(path: &Path) -> io::Result<(&Path, String)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// Writes `bytes` to `path` atomically: a new owner-only temporary file in the same folder
/// (`O_EXCL`), written and fsynced, renamed over `path`, and the folder fsynced where the
/// system allows it. The file gets mode 0600, or the replaced file's mode when stricter. A
/// failure leaves `path` as it was.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (dir, name) = split_path(path)?;
    let mode = replacement_mode(path);
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let tmp = dir.join(format!(
            ".{name}.tmp-{}-{}-{nanos:09}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match create_new_private(&tmp, mode) {
            Ok(file) => break (tmp, file),
            // Someone else's file at that name: never reuse it, pick another name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; not every system lets a folder be opened and synced.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The contents of `path`; a missing file is an [`io::ErrorKind::NotFound`] error naming it.
pub(crate) fn read_required(path: &Path) -> io::Result<Vec<u8>> {
    read_limited(path)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no such file", path.display()),
        )
    })
}

/// The contents of `path`, `None` when it does not exist; an error for a file over
/// [`MAX_STATE_FILE_SIZE`] (decided before reading it).
pub(crate) fn read_limited(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len > MAX_STATE_FILE_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {len} bytes, more than the {MAX_STATE_FILE_SIZE} allowed for a state file",
                path.display()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` bounds the read even if the file grows meanwhile.
    file.take(MAX_STATE_FILE_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STATE_FILE_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: grew past the state file limit", path.display()),
        ));
    }
    Ok(Some(bytes))
}

/// Parses `bytes` read from `path` as JSON.
pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &str,
    bytes: &[u8],
) -> io::Result<T> {
    serde_json::from_slice(bytes).map_err(|e| invalid(path, what, &e.to_string()))
}

/// An `InvalidData` error naming the file, what it should be, and the problem.
pub(crate) fn invalid(path: &Path, what: &str, detail: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: not a valid {what} file: {detail}", path.display()),
    )
}

/// Milliseconds since the Unix epoch (negative before it), saturating.
pub(crate) fn to_unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The inverse of [`to_unix_millis`]; saturates at what `SystemTime` can hold.
pub(crate) fn from_unix_millis(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    let t = if ms >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    // Out of range for this platform's clock: far in the future (about 34,000 years), or the
    // epoch.
    t.or_else(|| {
        (ms >= 0)
            .then(|| UNIX_EPOCH.checked_add(Duration::from_secs(1 << 40)))
            .flatten()
    })
    .unwrap_or(UNIX_EPOCH)
}

/// An exclusive lock on a state file, held until dropped (`flock` on `.<name>.lock` beside
/// it; the lock file stays, so every process locks the same inode).
pub(crate) struct FileLock {
    #[allow(dead_code)] // held for its lock
    file: File,
}

/// Locks `path` for a read-merge-write, waiting at most [`LOCK_TIMEOUT`] for another holder.
pub(crate) fn lock(path: &Path) -> io::Result<FileLock> {
    lock_within(path, LOCK_TIMEOUT)
}

/// [`lock`] with another bound on the wait.
fn lock_within(path: &Path, timeout: Duration) -> io::Result<FileLock> {
    let (dir, name) = split_path(path)?;
    let lock_path: PathBuf = dir.join(format!(".{name}.lock"));
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(PRIVATE_FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(&lock_path)?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            // SAFETY: flock on a file descriptor this function owns; no memory is shared.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{}: still locked by another process after {:?}",
                        path.display(),
                        timeout
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
    #[cfg(not(unix))]
    let _ = (Instant::now(), timeout);
    Ok(FileLock { file })
}

/// The read-merge-write of a state file under its lock: `merge` gets the current contents
/// (`None` when there is no file yet) and returns the bytes to write, which replace the file
/// atomically ([`write_atomic`]). Returns what `merge` returned besides the bytes.
pub(crate) fn update_locked<T>(
    path: &Path,
    merge: impl FnOnce(Option<&[u8]>) -> io::Result<(Vec<u8>, T)>,
) -> io::Result<T> {
    let _lock = lock(path)?;
    let current = read_limited(path)?;
    let (bytes, out) = merge(current.as_deref())?;
    write_atomic(path, &bytes)?;
    Ok(out)
}

/// A three-way merge by key: `theirs` (the file as it is now) with every change `mine` made
/// since `base` (the file as last loaded or saved by this store) applied on top, removals
/// included. Keys `mine` did not change keep the file's value, or stay absent if another
/// process removed them. `same` tells whether two values are the same for this purpose.
pub(crate) fn merge3<K, V>(
    base: &HashMap<K, V>,
    mine: &HashMap<K, V>,
    theirs: HashMap<K, V>,
    same: impl Fn(&V, &V) -> bool,
) -> HashMap<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    let mut out = theirs;
    for key in base.keys().chain(mine.keys()) {
        let changed = match (base.get(key), mine.get(key)) {
            (Some(a), Some(b)) => !same(a, b),
            (None, None) => false,
            _ => true,
        };
        if changed {
            match mine.get(key) {
                Some(v) => out.insert(key.clone(), v.clone()),
                None => out.remove(key),
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "netaccess-persist-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn merge3_applies_only_my_changes() {
        let map = |pairs: &[(&str, i32)]| -> HashMap<String, i32> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let base = map(&[
            ("kept", 1),
            ("i_changed", 1),
            ("i_removed", 1),
            ("they_removed", 1),
        ]);
        let mine = map(&[
            ("kept", 1),
            ("i_changed", 2),
            ("they_removed", 1),
            ("i_added", 3),
        ]);
        let theirs = map(&[
            ("kept", 5),
            ("i_changed", 1),
            ("i_removed", 1),
            ("they_added", 4),
        ]);
        let out = merge3(&base, &mine, theirs, |a, b| a == b);
        assert_eq!(
            out,
            map(&[
                ("kept", 5),
                ("i_changed", 2),
                ("i_added", 3),
                ("they_added", 4)
            ])
        );
    }

    #[cfg(unix)]
    #[test]
    fn writes_are_private_and_keep_a_stricter_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("modes");
        let path = dir.join("state.json");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        write_atomic(&path, b"1").unwrap();
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"2").unwrap();
        assert_eq!(
            mode(&path),
            0o600,
            "a group/world-readable file is tightened"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        write_atomic(&path, b"3").unwrap();
        assert_eq!(mode(&path), 0o400, "a stricter mode is kept");
        assert_eq!(fs::read(&path).unwrap(), b"3");
        // Only the file and nothing temporary is left.
        let names: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn oversized_files_are_refused_before_reading() {
        let dir = temp_dir("oversized");
        let path = dir.join("big.json");
        let f = File::create(&path).unwrap();
        f.set_len(MAX_STATE_FILE_SIZE + 1).unwrap();
        let e = read_limited(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(read_limited(&dir.join("missing")).unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_updates_are_serialised() {
        let dir = temp_dir("concurrent");
        let path = dir.join("counter");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        update_locked(&path, |old| {
                            let n: u64 = old
                                .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
                                .unwrap_or(0);
                            Ok(((n + 1).to_string().into_bytes(), ()))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "100");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_held_lock_makes_a_save_fail_in_bounded_time() {
        let dir = temp_dir("held");
        let path = dir.join("state.json");
        let held = lock(&path).unwrap();
        let started = Instant::now();
        let e = lock_within(&path, Duration::from_millis(100))
            .err()
            .expect("the lock is held");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
        lock_within(&path, Duration::from_millis(100)).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn millis_round_trip_and_saturate() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(from_unix_millis(to_unix_millis(t)), t);
        let _ = from_unix_millis(i64::MAX);
        let _ = from_unix_millis(i64::MIN);
    }
}
