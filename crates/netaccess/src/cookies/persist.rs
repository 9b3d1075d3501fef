//! Saving and loading [`DefaultCookieJar`] (JSON; cargo feature `cookies`). The file handling
//! (owner-only atomic writes, the lock, the read-merge-write) is [`crate::persist`]'s, shared
//! with the HSTS store.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::cookie::{domain_key, Cookie, SameSite};
use super::jar::{DefaultCookieJar, Entry, Store, Synced};
use crate::persist::{self, from_unix_millis, invalid, parse_json, to_unix_millis};

const COOKIE_FORMAT: &str = "netaccess-cookie-jar";
const COOKIE_VERSION: u32 = 1;

/// What identifies a cookie in a jar (RFC 6265 §5.3 step 11): name, domain, path.
pub(crate) type CookieId = (String, String, String);

pub(crate) fn cookie_id(cookie: &Cookie) -> CookieId {
    (
        cookie.name.clone(),
        domain_key(&cookie.domain).to_owned(),
        cookie.path.clone(),
    )
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
    /// Writes the jar to `path` as JSON. Expired cookies are left out, and so are session
    /// cookies unless `include_session` is true.
    ///
    /// The file is private and replaced atomically: an owner-only (0600, or the old file's
    /// mode if stricter) temporary file in the same folder, created with `O_EXCL`, fsynced,
    /// renamed over `path`; a failed save leaves the old file intact. Saves of one file are
    /// serialised by a lock (`.<name>.lock` beside it), and each one re-reads the file and
    /// merges: the changes this jar made since it last loaded or saved `path` (new, changed
    /// and deleted cookies) go on top of what the file holds now, so two processes saving one
    /// jar keep both runs' cookies (CVE-2023-23915). The jar then holds the merged cookies
    /// too. A file that is not a valid jar is an [`io::ErrorKind::InvalidData`] error and is
    /// not replaced.
    pub fn save(&self, path: impl AsRef<Path>, include_session: bool) -> io::Result<()> {
        let path = path.as_ref();
        let now = SystemTime::now();
        let (snapshot, written) = persist::update_locked(path, |current| {
            let theirs = match current {
                Some(bytes) => parse_jar(path, bytes, now)?,
                None => Vec::new(),
            };
            let theirs: HashMap<CookieId, Entry> = theirs
                .into_iter()
                .map(|e| (cookie_id(&e.cookie), e))
                .collect();
            let (base, mine) = {
                let store = self.lock();
                // A cookie that merely expired here is no change of ours: filtering the base
                // the same way keeps another process's renewal of it.
                let base = match &store.synced {
                    Some(s) if s.path == path => s
                        .cookies
                        .iter()
                        .filter(|(_, e)| !e.cookie.is_expired_at(now))
                        .map(|(k, e)| (k.clone(), e.clone()))
                        .collect(),
                    _ => HashMap::new(),
                };
                (base, live_entries(&store, now))
            };
            let mut merged = persist::merge3(&base, &mine, theirs, same_cookie);
            // Where the file holds the very cookie this jar has, keep this jar's entry: its
            // creation time and counter order it exactly among this jar's other cookies.
            for (id, entry) in merged.iter_mut() {
                if let Some(own) = mine.get(id).filter(|own| same_cookie(own, entry)) {
                    *entry = own.clone();
                }
            }
            let merged = Store::rebuild(merged.into_values().collect(), now);
            let written: Vec<Entry> = merged
                .entries
                .iter()
                .filter(|e| include_session || !e.cookie.is_session_cookie())
                .cloned()
                .collect();
            let mut json = encode_jar(&written)?;
            json.push(b'\n');
            Ok((json, (mine, merged.entries)))
        })?;
        // Cookies set while the file was written are changes on top of the merge.
        let mut store = self.lock();
        let current = live_entries(&store, now);
        let merged: HashMap<CookieId, Entry> = written
            .into_iter()
            .map(|e| (cookie_id(&e.cookie), e))
            .collect();
        let file_now: HashMap<CookieId, Entry> = merged
            .iter()
            .filter(|(_, e)| include_session || !e.cookie.is_session_cookie())
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        let updated = persist::merge3(&snapshot, &current, merged, same_cookie);
        let rebuilt = Store::rebuild(updated.into_values().collect(), now);
        store.entries = rebuilt.entries;
        store.seq = store.seq.max(rebuilt.seq);
        store.synced = Some(Synced {
            path: path.to_owned(),
            cookies: file_now,
        });
        Ok(())
    }

    /// Reads a jar written by [`save`](Self::save). Expired cookies are dropped. A file that
    /// is not a valid jar (or is larger than 64 MiB) gives an [`io::ErrorKind::InvalidData`]
    /// error naming the file and the problem; the file is never modified. A missing file
    /// gives [`io::ErrorKind::NotFound`] (see [`load_or_new`](Self::load_or_new)).
    pub fn load(path: impl AsRef<Path>) -> io::Result<DefaultCookieJar> {
        let path = path.as_ref();
        let bytes = persist::read_required(path)?;
        let now = SystemTime::now();
        let mut store = Store::rebuild(parse_jar(path, &bytes, now)?, now);
        store.synced = Some(Synced {
            path: path.to_owned(),
            cookies: store
                .entries
                .iter()
                .map(|e| (cookie_id(&e.cookie), e.clone()))
                .collect(),
        });
        let jar = DefaultCookieJar::new();
        *jar.lock() = store;
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

/// Two entries are the same for the merge when their cookies are (access times aside, and
/// expiry times to the millisecond the file keeps).
fn same_cookie(a: &Entry, b: &Entry) -> bool {
    let (a, b) = (&a.cookie, &b.cookie);
    a.name == b.name
        && a.value == b.value
        && a.domain == b.domain
        && a.path == b.path
        && a.expires.map(to_unix_millis) == b.expires.map(to_unix_millis)
        && a.secure == b.secure
        && a.http_only == b.http_only
        && a.same_site == b.same_site
}

/// The unexpired entries of `store` by identifier.
fn live_entries(store: &Store, now: SystemTime) -> HashMap<CookieId, Entry> {
    store
        .entries
        .iter()
        .filter(|e| !e.cookie.is_expired_at(now))
        .map(|e| (cookie_id(&e.cookie), e.clone()))
        .collect()
}

fn encode_jar(entries: &[Entry]) -> io::Result<Vec<u8>> {
    let cookies = entries
        .iter()
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
    serde_json::to_vec_pretty(&file).map_err(io::Error::other)
}

/// The unexpired cookies of a jar file, in file order (creation and access times from the
/// file; sequence numbers are assigned by [`Store::rebuild`]).
fn parse_jar(path: &Path, bytes: &[u8], now: SystemTime) -> io::Result<Vec<Entry>> {
    let what = "cookie jar";
    let file: JarFile = parse_json(path, what, bytes)?;
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
        if !cookie.is_well_formed() {
            return Err(invalid(
                path,
                what,
                &format!("cookie {i} has a control character, or ';' or '=' where not allowed"),
            ));
        }
        if cookie.is_expired_at(now) {
            continue;
        }
        entries.push(Entry {
            cookie,
            creation: from_unix_millis(r.creation),
            last_access: from_unix_millis(r.last_access),
            creation_seq: i as u64,
            access_seq: i as u64,
        });
    }
    Ok(entries)
}
