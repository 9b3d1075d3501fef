//! The types of a stored response: [`CacheMetadata`] (Qt's `QNetworkCacheMetaData`), a
//! lookup's [`CachedEntry`] with its [`CachedBody`] and the rules parsed from it, and the
//! [`EntryInfo`] a cache lists.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName};
use http::StatusCode;
use url::Url;

use super::{parse, policy, vary_matches, vary_names, CachedBodyStream};
#[allow(unused_imports)] // for the doc links
use super::{Cache, MemoryCache};

/// What is stored with a response (Qt's `QNetworkCacheMetaData`).
#[doc(alias = "QNetworkCacheMetaData")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMetadata {
    /// The response status.
    pub status: StatusCode,
    /// The response headers (hop-by-hop headers and `Set-Cookie` left out by
    /// [`CacheMetadata::new`]).
    pub headers: HeaderMap,
    /// The request headers named by the response's `Vary` (the secondary key), as sent.
    pub request_headers: HeaderMap,
    /// When the request was sent (RFC 9111 `request_time`).
    pub request_time: SystemTime,
    /// When the response headers arrived (RFC 9111 `response_time`).
    pub response_time: SystemTime,
    /// Qt's `saveToDisk()`: `false` keeps the entry off the disk (a `DiskCache` does not store
    /// it, and removes it when its metadata is updated so); a [`MemoryCache`] keeps it all the
    /// same. `true` from [`CacheMetadata::new`].
    #[doc(alias = "saveToDisk")]
    pub save_to_disk: bool,
    /// Qt's `attributes()`: the application's own name/value pairs kept with the entry (set
    /// them with [`Cache::update_metadata`] after a lookup). The request path never reads them
    /// and keeps them when a 304 refreshes the entry. Empty from [`CacheMetadata::new`].
    pub attributes: BTreeMap<String, String>,
}

impl CacheMetadata {
    /// Metadata for a response: keeps the response headers except hop-by-hop ones and
    /// `Set-Cookie` (a cookie is never replayed from the cache), and of `request_headers` (the
    /// headers as sent on the wire, defaults included) only those the response's `Vary` names.
    pub fn new(
        status: StatusCode,
        response_headers: &HeaderMap,
        request_headers: &HeaderMap,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> Self {
        let headers = policy::headers_to_store(response_headers);
        let mut selected = HeaderMap::new();
        for name in vary_names(&headers).unwrap_or_default() {
            for value in request_headers.get_all(&name) {
                selected.append(name.clone(), value.clone());
            }
        }
        Self {
            status,
            headers,
            request_headers: selected,
            request_time,
            response_time,
            save_to_disk: true,
            attributes: BTreeMap::new(),
        }
    }

    /// The header names of the response's `Vary`, lowercase, sorted, without duplicates;
    /// `None` for `Vary: *` (never matches).
    pub fn vary(&self) -> Option<Vec<HeaderName>> {
        vary_names(&self.headers)
    }

    /// Whether a new request with `request_headers` may use this entry as far as `Vary` goes.
    pub fn matches_request(&self, request_headers: &HeaderMap) -> bool {
        vary_matches(&self.request_headers, &self.headers, request_headers)
    }

    /// The `Last-Modified` response header as a time (Qt's `lastModified()`).
    pub fn last_modified(&self) -> Option<SystemTime> {
        header_date(&self.headers, http::header::LAST_MODIFIED)
    }

    /// The `Expires` response header as a time (Qt's `expirationDate()`); `Cache-Control:
    /// max-age` takes precedence over it, see [`policy::freshness`].
    pub fn expiration_date(&self) -> Option<SystemTime> {
        header_date(&self.headers, http::header::EXPIRES)
    }

    /// A rough size in bytes of this metadata (for a memory budget).
    pub(crate) fn approximate_size(&self) -> u64 {
        let map = |h: &HeaderMap| -> u64 {
            h.iter()
                .map(|(n, v)| (n.as_str().len() + v.len() + 8) as u64)
                .sum()
        };
        let attributes: u64 = self
            .attributes
            .iter()
            .map(|(k, v)| (k.len() + v.len() + 16) as u64)
            .sum();
        64 + map(&self.headers) + map(&self.request_headers) + attributes
    }
}

fn header_date(headers: &HeaderMap, name: HeaderName) -> Option<SystemTime> {
    parse::header_date(headers, &name)?.ok()
}

/// A stored response, as returned by [`Cache::lookup`].
#[derive(Debug)]
pub struct CachedEntry {
    /// Status, headers, `Vary` request headers and times.
    pub metadata: CacheMetadata,
    /// The body.
    pub body: CachedBody,
    /// When this entry (or its metadata, after a 304) was written.
    pub stored_at: SystemTime,
    /// The parsed rules of `metadata`, when the cache kept them with the entry.
    pub(super) policy: Option<Arc<policy::StoredPolicy>>,
}

impl CachedEntry {
    /// An entry as a [`Cache`] returns it; its [`policy`](Self::policy) is parsed from
    /// `metadata` when first asked.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use netaccess::cache::{CacheMetadata, CachedBody, CachedEntry};
    /// use netaccess::http::{HeaderMap, StatusCode};
    ///
    /// let now = SystemTime::now();
    /// let metadata = CacheMetadata::new(StatusCode::OK, &HeaderMap::new(), &HeaderMap::new(), now, now);
    /// let entry = CachedEntry::new(metadata, CachedBody::from_bytes("hi"), now);
    /// assert_eq!(entry.body.len(), 2);
    /// ```
    pub fn new(metadata: CacheMetadata, body: CachedBody, stored_at: SystemTime) -> Self {
        Self {
            metadata,
            body,
            stored_at,
            policy: None,
        }
    }

    /// The entry with the rules already parsed from its metadata (a cache that keeps them).
    pub(crate) fn with_policy(mut self, policy: Arc<policy::StoredPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The rules of this entry: the ones its cache kept with it, or parsed from `metadata`
    /// now (and kept).
    pub fn policy(&mut self) -> Arc<policy::StoredPolicy> {
        self.policy
            .get_or_insert_with(|| Arc::new(policy::StoredPolicy::new(&self.metadata)))
            .clone()
    }
}

/// The body of a [`CachedEntry`]: bytes in memory or a stream (a `DiskCache` streams bodies
/// over 1 MiB from their file, checking the checksum at the end).
pub struct CachedBody {
    repr: BodyRepr,
}

enum BodyRepr {
    Bytes(Bytes),
    Stream { len: u64, stream: CachedBodyStream },
}

impl CachedBody {
    /// A body held in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self {
            repr: BodyRepr::Bytes(bytes.into()),
        }
    }

    /// A body read from `stream`, `len` bytes long in all.
    pub fn from_stream(len: u64, stream: CachedBodyStream) -> Self {
        Self {
            repr: BodyRepr::Stream { len, stream },
        }
    }

    /// The body length in bytes.
    pub fn len(&self) -> u64 {
        match &self.repr {
            BodyRepr::Bytes(b) => b.len() as u64,
            BodyRepr::Stream { len, .. } => *len,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when the body is held in memory.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.repr {
            BodyRepr::Bytes(b) => Some(b),
            BodyRepr::Stream { .. } => None,
        }
    }

    /// The body as a stream of chunks (an error if a stored file turns out corrupt).
    pub fn into_stream(self) -> CachedBodyStream {
        match self.repr {
            BodyRepr::Bytes(b) => {
                Box::pin(futures_util::stream::iter((!b.is_empty()).then_some(Ok(b))))
            }
            BodyRepr::Stream { stream, .. } => stream,
        }
    }

    /// The whole body.
    pub async fn bytes(self) -> io::Result<Bytes> {
        use futures_util::StreamExt;
        match self.repr {
            BodyRepr::Bytes(b) => Ok(b),
            BodyRepr::Stream { len, mut stream } => {
                let mut out = bytes::BytesMut::with_capacity(len.min(64 << 20) as usize);
                while let Some(chunk) = stream.next().await {
                    out.extend_from_slice(&chunk?);
                }
                Ok(out.freeze())
            }
        }
    }
}

impl fmt::Debug for CachedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            BodyRepr::Bytes(b) => f
                .debug_struct("CachedBody")
                .field("bytes", &b.len())
                .finish(),
            BodyRepr::Stream { len, .. } => {
                f.debug_struct("CachedBody").field("stream", len).finish()
            }
        }
    }
}

/// One stored response, as [`Cache::entries`] lists it.
///
/// ```
/// use std::sync::Arc;
/// use std::time::SystemTime;
/// use netaccess::cache::{Cache, CacheKey, CacheMetadata, MemoryCache};
/// use netaccess::http::{HeaderMap, StatusCode};
/// use netaccess::url::Url;
///
/// # futures_executor_block_on(async {
/// let cache = MemoryCache::default();
/// let now = SystemTime::now();
/// let metadata = CacheMetadata::new(StatusCode::OK, &HeaderMap::new(), &HeaderMap::new(), now, now);
/// for path in ["/a", "/b", "/c/d"] {
///     let url = Url::parse(&format!("https://example.org{path}")).unwrap();
///     let mut writer = cache.begin_store(&CacheKey::get(&url), metadata.clone());
///     writer.write(b"body").unwrap();
///     writer.commit().await.unwrap();
/// }
/// let entries = cache.entries().await;
/// assert_eq!(entries.len(), 3);
/// assert!(entries.iter().any(|e| e.url_text() == "https://example.org/c/d"));
/// assert_eq!(cache.remove_prefix("https://example.org/c/").await, 1);
/// assert_eq!(cache.entries().await.len(), 2);
/// # });
/// # fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The key as stored: `"GET https://example.org/path"`; a URL that had user info adds
    /// ` userinfo=<keyed hash>` (never the user info itself).
    pub key: String,
    /// Status, headers, the `Vary` request headers (credentials as keyed hashes) and times.
    pub metadata: CacheMetadata,
    /// The body length in bytes (as stored: still content-coded).
    pub body_len: u64,
    /// When it was stored (or its metadata last updated).
    pub stored_at: SystemTime,
}

impl EntryInfo {
    pub(crate) fn new(
        key: &str,
        metadata: CacheMetadata,
        body_len: u64,
        stored_at: SystemTime,
    ) -> Self {
        Self {
            key: key.to_owned(),
            metadata,
            body_len,
            stored_at,
        }
    }

    /// The URL of the entry, as text (no fragment, no user info).
    pub fn url_text(&self) -> &str {
        url_of_stored_key(&self.key)
    }

    /// The URL of the entry.
    pub fn url(&self) -> Option<Url> {
        Url::parse(self.url_text()).ok()
    }
}

/// The URL part of a stored key's text (`"GET <url>[ userinfo=<hash>]"`).
pub(crate) fn url_of_stored_key(key: &str) -> &str {
    let rest = key.split_once(' ').map_or(key, |(_, rest)| rest);
    rest.split_once(" userinfo=").map_or(rest, |(url, _)| url)
}

/// Whether a stored key's URL starts with `prefix`.
pub(crate) fn key_has_prefix(key: &str, prefix: &str) -> bool {
    url_of_stored_key(key).starts_with(prefix)
}
