//! The HTTP cache: Qt's `QAbstractNetworkCache` as the object-safe [`Cache`] trait, a
//! [`MemoryCache`] and a `DiskCache` (`QNetworkDiskCache`, cargo feature `disk-cache`), the
//! RFC 9111 and RFC 5861 rules in [`policy`] (for a private cache by default, a shared one when
//! [`Cache::is_shared`]) and byte ranges in [`range`]. docs/cache.md describes the rules, the
//! decisions and the on-disk format.
//!
//! Keys: the primary key is the method and the URL without its fragment ([`CacheKey`]). The
//! response's `Vary` makes the secondary key: an entry keeps the request headers that `Vary`
//! names ([`CacheMetadata::request_headers`]), a lookup is given the new request's headers and
//! returns only a variant they match ([`vary_matches`]), and two variants (say two
//! `Accept-Language` values) are kept side by side.
//!
//! Secrets are never stored in the clear (in memory or on disk): a key holds no user info (a
//! URL with some gets a keyed hash of it as a partition), and the values of credential-bearing
//! request headers a `Vary` names (`Authorization`, `Proxy-Authorization`, `Cookie`) are kept
//! as keyed hashes (HMAC-SHA256 with a per-cache random key) and compared as such; a lookup
//! returns the entry with the new request's own values in their place.
//!
//! Only the storage and the rules live here; the request path asks [`policy::storable`], the
//! entry's [`policy::StoredPolicy`] (parsed once, kept with the entry: [`CachedEntry::policy`]),
//! [`policy::merge_304`], [`policy::invalidated_urls`] and the [`range`] functions. A cache
//! can be listed ([`Cache::entries`]) and cleared by URL prefix ([`Cache::remove_prefix`]).
//!
//! [`Cache`], [`MemoryCache`], `DiskCache` and [`CacheLoadControl`] are also at the crate root;
//! the entry types and the rules are here, for writing a [`Cache`] or deciding as the manager
//! does.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use netaccess::cache::policy::{self, CacheRequest, Freshness};
//! use netaccess::cache::{CacheKey, CacheMetadata};
//! use netaccess::http::{HeaderMap, HeaderValue, Method, StatusCode};
//! use netaccess::url::Url;
//!
//! let url = Url::parse("https://example.org/page#top").unwrap();
//! assert_eq!(CacheKey::get(&url).as_str(), "GET https://example.org/page");
//!
//! let mut response = HeaderMap::new();
//! response.insert("cache-control", HeaderValue::from_static("max-age=60"));
//! let no_headers = HeaderMap::new();
//! let request = CacheRequest::new(&Method::GET, &url, &no_headers);
//! assert!(policy::storable(&request, StatusCode::OK, &response));
//!
//! let stored = SystemTime::now();
//! let entry = CacheMetadata::new(StatusCode::OK, &response, &no_headers, stored, stored);
//! assert_eq!(policy::freshness(&entry, &request, stored), Freshness::Fresh);
//! let later = stored + Duration::from_secs(120);
//! assert!(matches!(policy::freshness(&entry, &request, later), Freshness::Stale { .. }));
//! ```

#[cfg(feature = "disk-cache")]
mod disk;
mod entry;
#[cfg(feature = "disk-cache")]
pub(crate) mod format;
#[cfg(feature = "disk-cache")]
mod hot;
#[cfg(feature = "disk-cache")]
mod lock;
mod memory;
mod parse;
pub mod policy;
pub mod range;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures_core::Stream;
use http::header::{self, HeaderMap, HeaderName, HeaderValue, VARY};
use http::Method;
use sha2::{Digest, Sha256};
use url::Url;

#[cfg(feature = "disk-cache")]
pub use disk::{DiskCache, DEFAULT_DISK_CACHE_SIZE};
pub(crate) use entry::key_has_prefix;
pub use entry::{CacheMetadata, CachedBody, CachedEntry, EntryInfo};
pub use memory::{MemoryCache, DEFAULT_MEMORY_CACHE_SIZE};

/// The future returned by the [`Cache`] operations that may do I/O.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A cached body as a stream of chunks.
pub type CachedBodyStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Where a request may be answered from (Qt's `QNetworkRequest::CacheLoadControl`, set per
/// request).
#[doc(alias = "QNetworkRequest::CacheLoadControl")]
#[doc(alias = "CacheLoadControlAttribute")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CacheLoadControl {
    /// Always load from the network, never from the cache (the request is sent with
    /// `Cache-Control: no-cache`); the response may still be stored.
    AlwaysNetwork,
    /// The default: a fresh stored response is used, a stale one is revalidated.
    #[default]
    PreferNetwork,
    /// A stored response is used even when stale; the network only on a miss.
    PreferCache,
    /// Only the cache (offline): a miss is `ContentNotFoundError`.
    AlwaysCache,
}

/// The default of the per-request `cache_save_control` flag (Qt's `CacheSaveControlAttribute`):
/// `true`, responses may be stored; `false` keeps this response out of the cache.
#[doc(alias = "CacheSaveControlAttribute")]
pub const DEFAULT_CACHE_SAVE_CONTROL: bool = true;

/// The primary cache key: the request method and the URL without its fragment and user info.
///
/// The user info (`user:password@`) is not part of the URL or text of the key; it is kept
/// apart, and a cache partitions by a keyed hash of it, so the responses of one user are never
/// served to another and no password is stored.
///
/// `HEAD` requests are answered from the `GET` entry: look them up with
/// `CacheKey::new(&Method::GET, url)` (see [`policy::storable`]: only `GET` is stored).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    method: Method,
    url: Url,
    text: String,
    /// `user:password` as in the URL (percent-encoded), when it had any.
    user_info: Option<String>,
}

impl CacheKey {
    /// The key of `method` on `url` (the fragment and the user info are dropped from the URL).
    pub fn new(method: &Method, url: &Url) -> Self {
        let mut url = url.clone();
        url.set_fragment(None);
        let user_info = (!url.username().is_empty() || url.password().is_some())
            .then(|| format!("{}:{}", url.username(), url.password().unwrap_or("")));
        // Both fail only for URLs that cannot have user info, which then have none.
        let _ = url.set_password(None);
        let _ = url.set_username("");
        let text = format!("{} {}", method.as_str(), url.as_str());
        Self {
            method: method.clone(),
            url,
            text,
            user_info,
        }
    }

    /// The key of a `GET` of `url`.
    pub fn get(url: &Url) -> Self {
        Self::new(&Method::GET, url)
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL, without fragment.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The key as text: `"GET https://example.org/path?q"` (no user info).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A stable 128-bit hash of a stored key in hex (32 characters), used for file names.
#[cfg(feature = "disk-cache")]
pub(crate) fn digest_hex(stored_key: &str) -> String {
    hex16(&Sha256::digest(stored_key.as_bytes())[..16])
}

/// Request headers whose values are credentials: when a response's `Vary` names one, the cache
/// keeps a keyed hash of the value, never the value.
pub(crate) const CREDENTIAL_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// The prefix of a credential value replaced by its keyed hash.
const SEALED_PREFIX: &str = "hmac-sha256:";

/// A cache's secret key for the keyed hashes of credentials and user info (a [`DiskCache`]
/// keeps it in an owner-only file in its directory; a [`MemoryCache`] makes one per instance).
#[derive(Clone)]
pub(crate) struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// The length of a key in bytes.
    pub(crate) const LEN: usize = 32;

    /// A new random key (from the system's generator; should that fail, a hash of the time,
    /// the process id and a counter, which is unpredictable enough to partition a cache).
    pub(crate) fn generate() -> Self {
        let mut key = [0u8; Self::LEN];
        if getrandom::getrandom(&mut key).is_err() {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let mut h = Sha256::new();
            h.update(format!(
                "{:?} {} {} {:p}",
                SystemTime::now(),
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                &key
            ));
            key = h.finalize().into();
        }
        Self(key)
    }

    /// A key read back from storage.
    #[cfg(feature = "disk-cache")]
    pub(crate) fn from_bytes(key: [u8; Self::LEN]) -> Self {
        Self(key)
    }

    /// The key's bytes, to store it.
    #[cfg(feature = "disk-cache")]
    pub(crate) fn bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`, each preceded by its length.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in self.0.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let mut inner = Sha256::new();
        inner.update(ipad);
        for part in parts {
            inner.update((part.len() as u64).to_le_bytes());
            inner.update(part);
        }
        let inner = inner.finalize();
        let mut outer = Sha256::new();
        outer.update(opad);
        outer.update(inner);
        outer.finalize().into()
    }

    /// The text a cache stores and indexes `key` under: the key's text, plus a keyed hash of
    /// its user info when the URL had some.
    pub(crate) fn stored_key(&self, key: &CacheKey) -> String {
        match &key.user_info {
            None => key.text.clone(),
            Some(info) => format!(
                "{} userinfo={}",
                key.text,
                hex16(&self.mac(&[b"userinfo", info.as_bytes()]))
            ),
        }
    }

    /// `headers` with the lines of each [`CREDENTIAL_HEADERS`] header replaced by one keyed
    /// hash of their combined value.
    pub(crate) fn seal_headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut out = headers.clone();
        for name in &CREDENTIAL_HEADERS {
            if let Some(value) = normalized_value(headers, name) {
                let mac = self.mac(&[name.as_str().as_bytes(), &value]);
                let sealed = format!("{SEALED_PREFIX}{}", hex16(&mac));
                out.remove(name);
                if let Ok(v) = HeaderValue::from_str(&sealed) {
                    out.insert(name.clone(), v);
                }
            }
        }
        out
    }

    /// `metadata` as a cache stores it: the `Vary` request headers sealed.
    pub(crate) fn seal(&self, metadata: &CacheMetadata) -> CacheMetadata {
        CacheMetadata {
            request_headers: self.seal_headers(&metadata.request_headers),
            ..metadata.clone()
        }
    }

    /// A stored (sealed) entry's metadata when its `Vary` request headers match
    /// `new_request_headers` (credentials compared by keyed hash), with the new request's
    /// values in place of the hashes; `None` when it does not match.
    #[cfg(feature = "disk-cache")]
    pub(crate) fn open_if_matching(
        &self,
        stored: CacheMetadata,
        new_request_headers: &HeaderMap,
    ) -> Option<CacheMetadata> {
        let probe = self.seal_headers(new_request_headers);
        vary_matches(&stored.request_headers, &stored.headers, &probe)
            .then(|| restore(stored, new_request_headers))
    }
}

/// `stored` (sealed metadata that matched `new_request_headers`) with the new request's values
/// in place of the keyed hashes.
pub(crate) fn restore(mut stored: CacheMetadata, new_request_headers: &HeaderMap) -> CacheMetadata {
    for name in &CREDENTIAL_HEADERS {
        if stored.request_headers.remove(name).is_some() {
            for value in new_request_headers.get_all(name) {
                stored.request_headers.append(name.clone(), value.clone());
            }
        }
    }
    stored
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheKey").field(&self.text).finish()
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A response being stored: the body is written as it arrives and becomes visible only on
/// [`commit`](CacheWriter::commit); dropping the writer aborts (nothing is stored).
pub trait CacheWriter: Send {
    /// Appends a body chunk. May block briefly (a [`DiskCache`] writes to its temporary file
    /// every 64 KiB). After an error the writer only waits to be dropped.
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;

    /// Stores the entry (replacing the same variant of the same key).
    fn commit(self: Box<Self>) -> CacheFuture<'static, io::Result<()>>;
}

/// An HTTP cache (Qt's `QAbstractNetworkCache`), shared as `Arc<dyn Cache>`.
///
/// Errors of the storage are not the request's errors: lookups that fail are misses, and
/// failed writes leave nothing behind.
#[doc(alias = "QAbstractNetworkCache")]
pub trait Cache: Send + Sync {
    /// The stored response for `key` whose `Vary` request headers match `request_headers`
    /// (the new request's headers, as they will be sent), or `None`. The newest matching
    /// variant wins. Corrupt storage is a miss (and is removed).
    #[doc(alias = "metaData")]
    #[doc(alias = "data")]
    fn lookup<'a>(
        &'a self,
        key: &'a CacheKey,
        request_headers: &'a HeaderMap,
    ) -> CacheFuture<'a, Option<CachedEntry>>;

    /// Starts storing a response (Qt's `prepare()`; `commit` is `insert()`). The variant is
    /// given by `metadata` (its `Vary` and `request_headers`).
    #[doc(alias = "prepare")]
    #[doc(alias = "insert")]
    fn begin_store(&self, key: &CacheKey, metadata: CacheMetadata) -> Box<dyn CacheWriter>;

    /// Replaces the metadata of the stored variant that `metadata` selects, keeping the body
    /// (after a 304, see [`policy::merge_304`]). `false` if there was no such entry.
    #[doc(alias = "updateMetaData")]
    fn update_metadata<'a>(
        &'a self,
        key: &'a CacheKey,
        metadata: CacheMetadata,
    ) -> CacheFuture<'a, bool>;

    /// Removes every variant stored for `key`; `true` if something was removed.
    fn remove<'a>(&'a self, key: &'a CacheKey) -> CacheFuture<'a, bool>;

    /// Removes everything.
    fn clear(&self) -> CacheFuture<'_, ()>;

    /// The bytes used (Qt's `cacheSize()`).
    #[doc(alias = "cacheSize")]
    fn size(&self) -> u64;

    /// Every stored response (each `Vary` variant apart), for inspecting the cache. The
    /// default lists nothing: a cache that cannot enumerate its entries.
    fn entries(&self) -> CacheFuture<'_, Vec<EntryInfo>> {
        Box::pin(std::future::ready(Vec::new()))
    }

    /// Removes every stored response whose URL starts with `url_prefix` (as
    /// [`EntryInfo::url_text`] shows it: no fragment, no user info), every method and variant;
    /// returns how many were removed. `remove` removes one URL; this removes a site or a
    /// folder (`"https://example.org/"`, `"https://example.org/api/"`). The default removes
    /// nothing.
    fn remove_prefix<'a>(&'a self, url_prefix: &'a str) -> CacheFuture<'a, u64> {
        let _ = url_prefix;
        Box::pin(std::future::ready(0))
    }

    /// Whether this is a shared cache (a proxy's or a gateway's, RFC 9111 §1): `s-maxage`
    /// and `proxy-revalidate` apply, `private` responses are not stored, and a response to a
    /// request with `Authorization` only when it allows it (§3.5). `false` by default: a
    /// private cache, one user's, as Qt's.
    fn is_shared(&self) -> bool {
        false
    }
}

/// Whether a stored entry may answer a new request as far as `Vary` goes (RFC 9111 §4.1):
/// every header named by the `Vary` of `stored_response_headers` has the same value (all
/// field lines combined, whitespace around commas ignored) in `stored_request_headers` and
/// `new_request_headers`, absent matching absent. `Vary: *` never matches.
pub fn vary_matches(
    stored_request_headers: &HeaderMap,
    stored_response_headers: &HeaderMap,
    new_request_headers: &HeaderMap,
) -> bool {
    let Some(names) = vary_names(stored_response_headers) else {
        return false;
    };
    names.iter().all(|name| {
        normalized_value(stored_request_headers, name)
            == normalized_value(new_request_headers, name)
    })
}

/// The names in the `Vary` headers of `response_headers`, lowercase, sorted, deduplicated;
/// `None` for `*`. Unparsable names are ignored.
pub(crate) fn vary_names(response_headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in response_headers.get_all(VARY) {
        for part in String::from_utf8_lossy(value.as_bytes()).split(',') {
            let part = part.trim();
            if part == "*" {
                return None;
            }
            if let Ok(name) = HeaderName::from_bytes(part.to_ascii_lowercase().as_bytes()) {
                names.push(name);
            }
        }
    }
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    Some(names)
}

/// All field lines of `name`, joined, with whitespace around list commas removed; `None` when
/// absent.
fn normalized_value(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut out = Vec::new();
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let parts: Vec<&[u8]> = value
            .as_bytes()
            .split(|b| *b == b',')
            .map(trim_ascii)
            .collect();
        out.extend_from_slice(&parts.join(&b','));
    }
    Some(out)
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// The secondary key of a variant: a hash of the `Vary` names and the request's values for
/// them (16 hex characters). Used by [`DiskCache`] for file names.
#[cfg(feature = "disk-cache")]
pub(crate) fn variant_hex(names: &[HeaderName], request_headers: &HeaderMap) -> String {
    let mut hasher = Sha256::new();
    for name in names {
        hasher.update(name.as_str().as_bytes());
        match normalized_value(request_headers, name) {
            Some(v) => {
                hasher.update([1u8]);
                hasher.update((v.len() as u64).to_le_bytes());
                hasher.update(&v);
            }
            None => hasher.update([0u8]),
        }
    }
    hex16(&hasher.finalize()[..8])
}

fn hex16(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
