//! Saving and loading [`DefaultCookieJar`] (JSON), and the atomic file write it shares with
//! the HSTS store.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::cookie::{Cookie, SameSite};
use super::jar::{DefaultCookieJar, Entry};

const COOKIE_FORMAT: &str = "netaccess-cookie-jar";
const COOKIE_VERSION: u32 = 1;

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, written and
/// fsynced, then renamed over `path` (and the folder fsynced, where the system allows it).
/// A failure leaves `path` as it was.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
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
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
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

/// Reads a JSON file into `T`, with errors that say which file and what is wrong.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> io::Result<T> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(path, what, &e.to_string()))
}

pub(crate) fn invalid(path: &Path, what: &str, detail: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: not a valid {what} file: {detail}", path.display()),
    )
}

pub(crate) fn to_unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn from_unix_millis(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JarFile {
    format: String,
    version: u32,
    cookies: Vec<CookieRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CookieRecord {
    name: String,
    value: String,
    /// `host` (host-only) or `.domain`.
    domain: String,
    path: String,
    /// Milliseconds since the Unix epoch; absent for a session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<i64>,
    #[serde(default)]
    secure: bool,
    #[serde(default)]
    http_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    same_site: Option<String>,
    /// Milliseconds since the Unix epoch.
    creation: i64,
    /// Milliseconds since the Unix epoch.
    last_access: i64,
}

impl DefaultCookieJar {
    /// Writes the jar to `path` as JSON, atomically (temporary file in the same folder,
    /// fsync, rename): a failed save leaves the old file intact. Expired cookies are left
    /// out, and so are session cookies unless `include_session` is true.
    pub fn save(&self, path: impl AsRef<Path>, include_session: bool) -> io::Result<()> {
        let now = SystemTime::now();
        let cookies = self
            .lock()
            .entries
            .iter()
            .filter(|e| !e.cookie.is_expired_at(now))
            .filter(|e| include_session || !e.cookie.is_session_cookie())
            .map(|e| CookieRecord {
                name: e.cookie.name.clone(),
                value: e.cookie.value.clone(),
                domain: e.cookie.domain.clone(),
                path: e.cookie.path.clone(),
                expires: e.cookie.expires.map(to_unix_millis),
                secure: e.cookie.secure,
                http_only: e.cookie.http_only,
                same_site: e.cookie.same_site.as_str().map(str::to_owned),
                creation: to_unix_millis(e.creation),
                last_access: to_unix_millis(e.last_access),
            })
            .collect();
        let file = JarFile {
            format: COOKIE_FORMAT.to_owned(),
            version: COOKIE_VERSION,
            cookies,
        };
        let mut json = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        json.push(b'\n');
        write_atomic(path.as_ref(), &json)
    }

    /// Reads a jar written by [`save`](Self::save). Expired cookies are dropped. A file that
    /// is not a valid jar gives an [`io::ErrorKind::InvalidData`] error naming the file and
    /// the problem; the file is never modified. A missing file gives
    /// [`io::ErrorKind::NotFound`] (see [`load_or_new`](Self::load_or_new)).
    pub fn load(path: impl AsRef<Path>) -> io::Result<DefaultCookieJar> {
        let path = path.as_ref();
        let what = "cookie jar";
        let file: JarFile = read_json(path, what)?;
        if file.format != COOKIE_FORMAT {
            return Err(invalid(path, what, &format!("format is {:?}", file.format)));
        }
        if file.version != COOKIE_VERSION {
            return Err(invalid(
                path,
                what,
                &format!("unsupported version {}", file.version),
            ));
        }
        let now = SystemTime::now();
        let mut entries = Vec::with_capacity(file.cookies.len());
        for (i, r) in file.cookies.into_iter().enumerate() {
            if r.name.is_empty() || r.domain.trim_start_matches('.').is_empty() {
                return Err(invalid(
                    path,
                    what,
                    &format!("cookie {i} has no name or domain"),
                ));
            }
            if !r.path.starts_with('/') {
                return Err(invalid(
                    path,
                    what,
                    &format!("cookie {i} has a path without a leading '/'"),
                ));
            }
            let same_site = match r.same_site.as_deref() {
                None => SameSite::Default,
                Some("None") => SameSite::None,
                Some("Lax") => SameSite::Lax,
                Some("Strict") => SameSite::Strict,
                Some(other) => {
                    return Err(invalid(
                        path,
                        what,
                        &format!("cookie {i} has SameSite {other:?}"),
                    ))
                }
            };
            let cookie = Cookie {
                name: r.name,
                value: r.value,
                domain: r.domain.to_ascii_lowercase(),
                path: r.path,
                expires: r.expires.map(from_unix_millis),
                secure: r.secure,
                http_only: r.http_only,
                same_site,
            };
            if cookie.is_expired_at(now) {
                continue;
            }
            entries.push((i, cookie, r.creation, r.last_access));
        }
        // Rebuild the ordering counters: creation order, then least recent access.
        entries.sort_by_key(|&(i, _, creation, _)| (creation, i));
        let jar = DefaultCookieJar::new();
        {
            let mut store = jar.lock();
            let mut by_access: Vec<(i64, usize)> = entries
                .iter()
                .enumerate()
                .map(|(k, &(_, _, _, access))| (access, k))
                .collect();
            by_access.sort_unstable();
            let mut access_seq = vec![0u64; entries.len()];
            for (seq, &(_, k)) in by_access.iter().enumerate() {
                access_seq[k] = seq as u64 + 1;
            }
            let n = entries.len() as u64;
            for (k, (_, cookie, creation, last_access)) in entries.into_iter().enumerate() {
                // Later duplicates of an identifier replace earlier ones.
                if let Some(j) = store
                    .entries
                    .iter()
                    .position(|e| e.cookie.has_same_identifier(&cookie))
                {
                    store.entries.remove(j);
                }
                store.entries.push(Entry {
                    cookie,
                    creation: from_unix_millis(creation),
                    last_access: from_unix_millis(last_access),
                    creation_seq: k as u64 + 1,
                    access_seq: access_seq[k],
                });
            }
            store.seq = n + 1;
        }
        Ok(jar)
    }

    /// [`load`](Self::load), but an empty jar when the file does not exist yet.
    pub fn load_or_new(path: impl AsRef<Path>) -> io::Result<DefaultCookieJar> {
        match DefaultCookieJar::load(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DefaultCookieJar::new()),
            other => other,
        }
    }
}
