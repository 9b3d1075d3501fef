//! Saving and loading an [`HstsStore`] (JSON) and reading preload lists (cargo feature
//! `hsts`). The file handling (owner-only atomic writes, the lock, the read-merge-write) is
//! [`crate::persist`]'s, shared with the cookie jar.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{enforce_cap, normalize_host, HstsPolicy, HstsStore, Inner};
use crate::persist::{self, from_unix_millis, invalid, parse_json, to_unix_millis};

impl HstsStore {
    /// Adds a preload list: a JSON array of `{"host": "example.org", "include_subdomains":
    /// true}` (`include_subdomains` may be left out: false). Preloaded hosts never expire, are
    /// not removed by `max-age=0` and are not written by [`save`](Self::save). Returns the
    /// number of hosts read; on an error ([`io::ErrorKind::InvalidData`]) nothing is added.
    pub fn load_preload_list(&self, json: &str) -> io::Result<usize> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PreloadEntry {
            host: String,
            #[serde(default)]
            include_subdomains: bool,
        }
        let entries: Vec<PreloadEntry> = serde_json::from_str(json).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a valid HSTS preload list: {e}"),
            )
        })?;
        let mut hosts = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let host = normalize_host(&entry.host).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "not a valid HSTS preload list: entry {i}: {:?} is not a host name",
                        entry.host
                    ),
                )
            })?;
            hosts.push((host, entry.include_subdomains));
        }
        let n = hosts.len();
        self.lock().preload.extend(hosts);
        Ok(n)
    }

    /// Writes the learned and added policies that have not expired to `path` as JSON.
    ///
    /// As [`DefaultCookieJar::save`](crate::DefaultCookieJar::save): an owner-only file (0600,
    /// or the old file's mode if stricter) replaced atomically through an `O_EXCL` temporary
    /// file; saves of one file are serialised by a lock, and each re-reads the file and puts
    /// the changes this store made since it last loaded or saved `path` (learned, changed and
    /// removed policies) on top of what the file holds now, so two processes saving one file
    /// keep both runs' policies (CVE-2023-23915). The store then holds the merged policies
    /// too. A file that is not a valid store is an [`io::ErrorKind::InvalidData`] error and is
    /// not replaced.
    pub fn save(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        let now = SystemTime::now();
        let (snapshot, merged) = persist::update_locked(path, |current| {
            let theirs = match current {
                Some(bytes) => parse_store(path, bytes, now)?,
                None => HashMap::new(),
            };
            let (base, mine) = {
                let mut inner = self.lock();
                inner.dynamic.retain(|_, p| !p.is_expired_at(now));
                // An entry that merely expired here is no change of ours: filtering the base
                // the same way keeps another process's renewal of it.
                let base = match &inner.synced {
                    Some((p, base)) if p == path => base
                        .iter()
                        .filter(|(_, p)| !p.is_expired_at(now))
                        .map(|(k, p)| (k.clone(), p.clone()))
                        .collect(),
                    _ => HashMap::new(),
                };
                (base, inner.dynamic.clone())
            };
            let mut merged = persist::merge3(&base, &mine, theirs, |a, b| a == b);
            merged.retain(|_, p| !p.is_expired_at(now));
            enforce_cap(&mut merged);
            let mut policies: Vec<&HstsPolicy> = merged.values().collect();
            policies.sort_by(|a, b| a.host.cmp(&b.host));
            let file = HstsFile {
                format: HSTS_FORMAT.to_owned(),
                version: HSTS_VERSION,
                policies: policies
                    .into_iter()
                    .map(|p| PolicyRecord {
                        host: p.host.clone(),
                        expiry: p.expiry.map(to_unix_millis),
                        include_subdomains: p.include_subdomains,
                    })
                    .collect(),
            };
            let mut json = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
            json.push(b'\n');
            Ok((json, (mine, merged)))
        })?;
        // Policies learned while the file was written are changes on top of the merge.
        let mut inner = self.lock();
        let current = std::mem::take(&mut inner.dynamic);
        inner.dynamic = persist::merge3(&snapshot, &current, merged.clone(), |a, b| a == b);
        enforce_cap(&mut inner.dynamic);
        inner.synced = Some((path.to_owned(), merged));
        Ok(())
    }

    /// Reads a store written by [`save`](Self::save); expired policies are dropped. A file
    /// that is not a valid store (or is larger than 64 MiB) gives an
    /// [`io::ErrorKind::InvalidData`] error naming the file and the problem, and the file is
    /// not modified.
    pub fn load(path: impl AsRef<Path>) -> io::Result<HstsStore> {
        let path = path.as_ref();
        let bytes = persist::read_required(path)?;
        let dynamic = parse_store(path, &bytes, SystemTime::now())?;
        Ok(HstsStore {
            inner: Mutex::new(Inner {
                synced: Some((path.to_owned(), dynamic.clone())),
                dynamic,
                preload: HashMap::new(),
            }),
        })
    }

    /// [`load`](Self::load), but an empty store when the file does not exist yet.
    pub fn load_or_new(path: impl AsRef<Path>) -> io::Result<HstsStore> {
        match HstsStore::load(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HstsStore::new()),
            other => other,
        }
    }
}

/// The unexpired policies of a store file by host.
fn parse_store(
    path: &Path,
    bytes: &[u8],
    now: SystemTime,
) -> io::Result<HashMap<String, HstsPolicy>> {
    let what = "HSTS store";
    let file: HstsFile = parse_json(path, what, bytes)?;
    if file.format != HSTS_FORMAT {
        return Err(invalid(path, what, &format!("format is {:?}", file.format)));
    }
    if file.version != HSTS_VERSION {
        return Err(invalid(
            path,
            what,
            &format!("unsupported version {}", file.version),
        ));
    }
    let mut dynamic = HashMap::new();
    for (i, r) in file.policies.into_iter().enumerate() {
        let host = normalize_host(&r.host).ok_or_else(|| {
            invalid(
                path,
                what,
                &format!("policy {i}: {:?} is not a host name", r.host),
            )
        })?;
        let policy = HstsPolicy {
            host: host.clone(),
            expiry: r.expiry.map(from_unix_millis),
            include_subdomains: r.include_subdomains,
        };
        if !policy.is_expired_at(now) {
            dynamic.insert(host, policy);
        }
    }
    enforce_cap(&mut dynamic);
    Ok(dynamic)
}

const HSTS_FORMAT: &str = "netaccess-hsts-store";
const HSTS_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HstsFile {
    format: String,
    version: u32,
    policies: Vec<PolicyRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRecord {
    host: String,
    /// Milliseconds since the Unix epoch; absent: never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiry: Option<i64>,
    #[serde(default)]
    include_subdomains: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn preload_list() {
        let store = HstsStore::new();
        let n = store
            .load_preload_list(
                r#"[{"host": "pre.test", "include_subdomains": true}, {"host": "Only.Test"}]"#,
            )
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(store.preloaded_len(), 2);
        assert!(store.is_known_host("a.pre.test"));
        assert!(store.is_known_host("only.test"));
        assert!(!store.is_known_host("a.only.test"));
        // max-age=0 does not remove a preloaded host.
        assert!(store.process_header(&url("https://pre.test/"), "max-age=0"));
        assert!(store.is_known_host("pre.test"));
        assert!(store.policies().is_empty());
        // Errors add nothing.
        assert!(store.load_preload_list("{").is_err());
        let e = store
            .load_preload_list(r#"[{"host": "ok.test"}, {"host": "10.0.0.1"}]"#)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(!store.is_known_host("ok.test"));
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "netaccess-hsts-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn persistence_round_trip() {
        let dir = temp_dir("round-trip");
        let path = dir.join("hsts.json");
        let store = HstsStore::new();
        assert!(store.process_header(
            &url("https://example.test/"),
            "max-age=3600; includeSubDomains"
        ));
        store.add_policies([HstsPolicy::new("forever.test", None, false)]);
        store
            .load_preload_list(r#"[{"host": "pre.test"}]"#)
            .unwrap();
        store.save(&path).unwrap();
        let loaded = HstsStore::load(&path).unwrap();
        let (a, b) = (store.policies(), loaded.policies());
        assert_eq!(a.len(), 2);
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.host, b.host);
            assert_eq!(a.include_subdomains, b.include_subdomains);
            assert_eq!(a.expiry.map(to_unix_millis), b.expiry.map(to_unix_millis));
        }
        assert!(loaded.is_known_host("www.example.test"));
        assert!(
            !loaded.is_known_host("pre.test"),
            "preloaded hosts are not saved"
        );
        // No temporary files are left behind (only the lock file beside the store).
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".hsts.json.lock", "hsts.json"]);
        assert!(HstsStore::load_or_new(dir.join("missing.json"))
            .unwrap()
            .policies()
            .is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_policy_that_only_expired_here_keeps_another_stores_renewal() {
        let dir = temp_dir("renewal");
        let path = dir.join("hsts.json");
        let now = SystemTime::now();
        // Another process renewed renewed.test in the file.
        let other = HstsStore::new();
        other.add_policies([HstsPolicy::new(
            "renewed.test",
            Some(now + Duration::from_secs(3600)),
            false,
        )]);
        other.save(&path).unwrap();
        // This store had loaded it earlier with an expiry that has passed since.
        let store = HstsStore::new();
        store.lock().synced = Some((
            path.clone(),
            HashMap::from([(
                "renewed.test".to_owned(),
                HstsPolicy::new("renewed.test", Some(now - Duration::from_secs(1)), false),
            )]),
        ));
        store.save(&path).unwrap();
        assert!(HstsStore::load(&path)
            .unwrap()
            .is_known_host("renewed.test"));
        assert!(
            store.is_known_host("renewed.test"),
            "and this store has it again"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_file() {
        let dir = temp_dir("corrupt");
        let path = dir.join("hsts.json");
        let garbage = b"{\"format\": \"netaccess-hsts-store\", \"version\": 1, \"poli";
        std::fs::write(&path, garbage).unwrap();
        let e = HstsStore::load(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("hsts.json"), "{e}");
        assert!(e.to_string().contains("HSTS store"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
        assert!(HstsStore::load_or_new(&path).is_err());
        std::fs::write(
            &path,
            br#"{"format": "other", "version": 1, "policies": []}"#,
        )
        .unwrap();
        assert!(HstsStore::load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
