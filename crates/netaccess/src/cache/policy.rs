//! The RFC 9111 rules the request path applies around a [`Cache`](super::Cache): what may be
//! stored (§3, §3.5), whether a stored response is fresh (§4.2, with `Age` and `Date`,
//! `max-age`, `Expires`, heuristics, request directives), when it may be served stale
//! (`max-stale`, RFC 5861 `stale-while-revalidate` and `stale-if-error`), validation (§4.3)
//! and invalidation (§4.4).
//!
//! A cache is private (one user's, the default) or shared ([`CacheRequest::shared`]): a shared
//! cache honors `s-maxage` and `proxy-revalidate`, never stores `private` responses, and stores
//! a response to a request with `Authorization` only when the response allows it (`public`,
//! `s-maxage` or `must-revalidate`, §3.5).
//!
//! The facts of a stored response are parsed once, into a [`StoredPolicy`], when it is stored
//! or first looked up; a hit asks it without reading the headers again.
//!
//! `Set-Cookie` is the one deliberate exception to "store what the server sent": it is never
//! stored (see [`super::CacheMetadata::new`]), so no cookie is replayed from the cache, as in
//! every browser.
//!
//! Why one file of about 720 lines (a third of it documentation and examples): storing,
//! freshness, serving stale and validation are one decision procedure over the same parsed
//! directives, and RFC 9111 is reviewed against it section by section in one place.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use url::Url;

use super::parse::{self, cache_control, header_date, header_delta, Directive};
use super::{vary_matches, vary_names, CacheMetadata};

pub(crate) use super::parse::{delta_seconds, MAX_DELTA_SECONDS};

/// The request being answered, as the pipeline has it (headers as they will be sent), and
/// whether the cache is shared.
#[derive(Debug, Clone, Copy)]
pub struct CacheRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URL.
    pub url: &'a Url,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The cache is shared (a proxy's, a gateway's): `s-maxage`, `proxy-revalidate`,
    /// `private` and the `Authorization` rule apply. `false` for [`CacheRequest::new`].
    pub shared: bool,
}

impl<'a> CacheRequest<'a> {
    /// A request view for a private cache.
    pub fn new(method: &'a Method, url: &'a Url, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            url,
            headers,
            shared: false,
        }
    }

    /// The same view for a shared cache (`true`) or a private one.
    ///
    /// ```
    /// use netaccess::cache::policy::{self, CacheRequest};
    /// use netaccess::http::{HeaderMap, HeaderValue, Method, StatusCode};
    /// use netaccess::url::Url;
    ///
    /// let url = Url::parse("https://example.org/").unwrap();
    /// let request_headers = HeaderMap::new();
    /// let mut response = HeaderMap::new();
    /// response.insert("cache-control", HeaderValue::from_static("private, max-age=60"));
    /// let private = CacheRequest::new(&Method::GET, &url, &request_headers);
    /// assert!(policy::storable(&private, StatusCode::OK, &response));
    /// assert!(!policy::storable(&private.shared(true), StatusCode::OK, &response));
    /// ```
    pub fn shared(self, shared: bool) -> Self {
        Self { shared, ..self }
    }
}

/// Whether a stored response may answer a request, from [`freshness`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Freshness {
    /// Fresh: serve it without contacting the server.
    Fresh,
    /// Stale, but inside its `stale-while-revalidate` window (RFC 5861): serve it now and
    /// revalidate in the background with these headers.
    StaleWhileRevalidate {
        /// `If-None-Match` and/or `If-Modified-Since`, as for [`Freshness::Stale`].
        revalidation_headers: HeaderMap,
    },
    /// Stale (or the request or response demands validation): revalidate by sending the
    /// request with these headers added; a 304 means the stored body is served (after
    /// [`merge_304`]). Empty when the entry has no validator: then only a full response helps.
    /// `PreferCache` may serve it as is unless `must_revalidate` (RFC 9111 §4.2.4).
    Stale {
        /// `If-None-Match` (from `ETag`) and/or `If-Modified-Since` (from `Last-Modified`).
        revalidation_headers: HeaderMap,
        /// The response says `must-revalidate` or `no-cache` (or, in a shared cache,
        /// `proxy-revalidate` or `s-maxage`): a stale copy may not be served without a
        /// successful validation.
        must_revalidate: bool,
    },
    /// The entry cannot answer this request at all (another method, a `Vary` mismatch, a
    /// Range or conditional request of the caller's own): go to the network as if there
    /// were no entry.
    MustNotUse,
}

/// Response headers that are never stored: hop-by-hop headers (RFC 9110 §7.6.1) and cookies.
const NOT_STORED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "set-cookie2",
];

/// Headers a 304 does not update in the stored response (RFC 9111 §3.2: the stored body is
/// kept, so its framing and coding stay).
const NOT_UPDATED_BY_304: &[&str] = &[
    "content-length",
    "content-encoding",
    "content-range",
    "transfer-encoding",
];

/// Request headers that make the caller's request one [`freshness`] does not answer.
const BYPASS_REQUEST_HEADERS: &[HeaderName] = &[
    header::RANGE,
    header::IF_RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// Conditional request headers of the caller's own: the cache never answers those itself.
const CONDITIONAL_REQUEST_HEADERS: &[HeaderName] = &[
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// Statuses that are heuristically cacheable (RFC 9110 §15.1).
fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// `headers` without hop-by-hop headers (and those `Connection` names) and cookies.
pub(crate) fn headers_to_store(headers: &HeaderMap) -> HeaderMap {
    let connection_named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = name.as_str();
        if !NOT_STORED.contains(&n) && !connection_named.iter().any(|c| c == n) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The value of the first `name` directive: `None` absent, `Some(None)` present without a
/// (valid) number, `Some(Some(n))` with one.
fn first_number(directives: &[Directive], name: &str) -> Option<Option<u64>> {
    directives
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.value.as_deref().and_then(delta_seconds))
}

fn has(directives: &[Directive], name: &str) -> bool {
    directives.iter().any(|d| d.name == name)
}

/// `Pragma: no-cache` counts as `Cache-Control: no-cache` when there is no Cache-Control.
fn pragma_no_cache(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::CACHE_CONTROL)
        && headers
            .get_all(header::PRAGMA)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("no-cache"))
}

/// Response directive flags of a [`StoredPolicy`].
mod flag {
    pub const NO_CACHE: u16 = 1;
    pub const MUST_REVALIDATE: u16 = 1 << 1;
    pub const PROXY_REVALIDATE: u16 = 1 << 2;
    pub const PRIVATE: u16 = 1 << 3;
    pub const PUBLIC: u16 = 1 << 4;
    pub const NO_STORE: u16 = 1 << 5;
    pub const S_MAXAGE: u16 = 1 << 6;
    pub const VARY_STAR: u16 = 1 << 7;
    pub const HAS_VARY: u16 = 1 << 8;
    pub const CONTENT_ENCODING: u16 = 1 << 9;
}

/// The facts of a stored response that the rules read, parsed once from its
/// [`CacheMetadata`]: freshness lifetimes (private and shared), the corrected initial age,
/// the response's directives, its validators and the `stale-while-revalidate` and
/// `stale-if-error` windows. A hit decides with it without parsing a header.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use netaccess::cache::policy::{CacheRequest, Freshness, StoredPolicy};
/// use netaccess::cache::CacheMetadata;
/// use netaccess::http::{HeaderMap, HeaderValue, Method, StatusCode};
/// use netaccess::url::Url;
///
/// let mut response = HeaderMap::new();
/// response.insert("cache-control", HeaderValue::from_static("max-age=60, stale-while-revalidate=30"));
/// let now = SystemTime::now();
/// let entry = CacheMetadata::new(StatusCode::OK, &response, &HeaderMap::new(), now, now);
/// let policy = StoredPolicy::new(&entry);
/// let url = Url::parse("https://example.org/").unwrap();
/// let headers = HeaderMap::new();
/// let request = CacheRequest::new(&Method::GET, &url, &headers);
/// assert_eq!(policy.freshness(&entry, &request, now), Freshness::Fresh);
/// let later = now + Duration::from_secs(75);
/// assert!(matches!(
///     policy.freshness(&entry, &request, later),
///     Freshness::StaleWhileRevalidate { .. }
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    status: StatusCode,
    response_time: SystemTime,
    initial_age: Duration,
    lifetime: Duration,
    shared_lifetime: Duration,
    flags: u16,
    stale_while_revalidate: Option<Duration>,
    stale_if_error: Option<Duration>,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

impl StoredPolicy {
    /// Parses the stored response `entry`.
    pub fn new(entry: &CacheMetadata) -> Self {
        let h = &entry.headers;
        let cc = cache_control(h);
        let mut flags = 0;
        for (name, bit) in [
            ("no-cache", flag::NO_CACHE),
            ("must-revalidate", flag::MUST_REVALIDATE),
            ("proxy-revalidate", flag::PROXY_REVALIDATE),
            ("private", flag::PRIVATE),
            ("public", flag::PUBLIC),
            ("no-store", flag::NO_STORE),
            ("s-maxage", flag::S_MAXAGE),
        ] {
            if has(&cc, name) {
                flags |= bit;
            }
        }
        if pragma_no_cache(h) {
            flags |= flag::NO_CACHE;
        }
        match vary_names(h) {
            None => flags |= flag::VARY_STAR,
            Some(names) if !names.is_empty() => flags |= flag::HAS_VARY,
            Some(_) => {}
        }
        if h.contains_key(header::CONTENT_ENCODING) {
            flags |= flag::CONTENT_ENCODING;
        }
        let date = header_date(h, &header::DATE).and_then(Result::ok);
        let initial_age = corrected_initial_age(entry, date);
        let base = date.unwrap_or(entry.response_time);
        let lifetime = freshness_lifetime(entry.status, h, &cc, base, flags, false);
        let shared_lifetime = freshness_lifetime(entry.status, h, &cc, base, flags, true);
        let window = |name| first_number(&cc, name).flatten().map(Duration::from_secs);
        Self {
            status: entry.status,
            response_time: entry.response_time,
            initial_age,
            lifetime,
            shared_lifetime,
            flags,
            stale_while_revalidate: window("stale-while-revalidate"),
            stale_if_error: window("stale-if-error"),
            etag: h.get(header::ETAG).cloned(),
            last_modified: h.get(header::LAST_MODIFIED).cloned(),
        }
    }

    fn is(&self, bit: u16) -> bool {
        self.flags & bit != 0
    }

    /// The freshness lifetime (RFC 9111 §4.2.1) for a private or a shared cache.
    pub fn freshness_lifetime(&self, shared: bool) -> Duration {
        if shared {
            self.shared_lifetime
        } else {
            self.lifetime
        }
    }

    /// The current age at `now` (RFC 9111 §4.2.3).
    pub fn current_age(&self, now: SystemTime) -> Duration {
        self.initial_age
            .saturating_add(now.duration_since(self.response_time).unwrap_or_default())
    }

    /// The body is content-coded (`Content-Encoding`): byte ranges of it cannot be cut from
    /// the stored body and handed to the decoder.
    pub(crate) fn content_coded(&self) -> bool {
        self.is(flag::CONTENT_ENCODING)
    }

    /// A stale copy may not be served without a successful validation.
    fn must_revalidate(&self, shared: bool) -> bool {
        self.is(flag::MUST_REVALIDATE)
            || self.is(flag::NO_CACHE)
            || self.is(flag::NO_STORE)
            || self.is(flag::VARY_STAR)
            || (shared && (self.is(flag::PROXY_REVALIDATE) || self.is(flag::S_MAXAGE)))
    }

    /// `If-None-Match` and `If-Modified-Since` from the stored validators.
    fn revalidation_headers(&self) -> HeaderMap {
        let mut out = HeaderMap::new();
        if let Some(etag) = &self.etag {
            out.insert(header::IF_NONE_MATCH, etag.clone());
        }
        if let Some(lm) = &self.last_modified {
            out.insert(header::IF_MODIFIED_SINCE, lm.clone());
        }
        out
    }

    /// Whether `entry` (the response this policy was parsed from) may answer `request` at
    /// `now`. Unlike [`freshness`] this ignores a `Range` or `If-Range` in the request: it
    /// decides for the whole stored response, and the caller cuts the range.
    pub fn freshness(
        &self,
        entry: &CacheMetadata,
        request: &CacheRequest<'_>,
        now: SystemTime,
    ) -> Freshness {
        if !(*request.method == Method::GET || *request.method == Method::HEAD)
            || self.is(flag::VARY_STAR)
            || CONDITIONAL_REQUEST_HEADERS
                .iter()
                .any(|h| request.headers.contains_key(h))
            || (self.is(flag::HAS_VARY)
                && !vary_matches(&entry.request_headers, &entry.headers, request.headers))
            || (request.shared && !may_store_in_shared(request.headers, self.flags))
        {
            return Freshness::MustNotUse;
        }
        let shared = request.shared;
        let must_revalidate = self.must_revalidate(shared);
        let stale = || Freshness::Stale {
            revalidation_headers: self.revalidation_headers(),
            must_revalidate,
        };
        if self.is(flag::NO_CACHE) {
            return stale();
        }
        let req = RequestDirectives::of(request.headers);
        if req.no_cache {
            return stale();
        }
        let age = self.current_age(now);
        let lifetime = self.freshness_lifetime(shared);
        if req.max_age.is_some_and(|max| age > max) {
            return stale();
        }
        let fresh_for = lifetime.saturating_sub(age);
        if lifetime > age && req.min_fresh.is_none_or(|min| fresh_for >= min) {
            return Freshness::Fresh;
        }
        if lifetime > age || must_revalidate {
            return stale();
        }
        let staleness = age - lifetime;
        match req.max_stale {
            Some(None) => return Freshness::Fresh,
            Some(Some(max)) if staleness <= max => return Freshness::Fresh,
            _ => {}
        }
        let constrained = req.max_age.is_some() || req.min_fresh.is_some();
        if !constrained
            && self
                .stale_while_revalidate
                .is_some_and(|window| staleness <= window)
        {
            return Freshness::StaleWhileRevalidate {
                revalidation_headers: self.revalidation_headers(),
            };
        }
        stale()
    }

    /// Whether the stored copy may be served when revalidating it failed (a 500, 502, 503 or
    /// 504, or no answer at all) at `now` (RFC 5861 `stale-if-error`). Never when the response
    /// forbids serving it stale (`must-revalidate`, `no-cache`, `no-store`, `Vary: *`, and in
    /// a shared cache `proxy-revalidate` and `s-maxage`). With a `stale-if-error` window in the
    /// response or the request (the larger counts), only inside it. Without one, Qt's
    /// fallback: the stored copy is served however stale.
    pub fn may_serve_on_error(
        &self,
        request_headers: &HeaderMap,
        shared: bool,
        now: SystemTime,
    ) -> bool {
        if self.must_revalidate(shared) {
            return false;
        }
        let requested = RequestDirectives::of(request_headers).stale_if_error;
        let window = match (self.stale_if_error, requested) {
            (None, None) => return true,
            (a, b) => a.max(b).unwrap_or_default(),
        };
        let staleness = self
            .current_age(now)
            .saturating_sub(self.freshness_lifetime(shared));
        staleness <= window
    }
}

/// The request's own `Cache-Control` (and `Pragma`).
#[derive(Default)]
struct RequestDirectives {
    no_cache: bool,
    max_age: Option<Duration>,
    min_fresh: Option<Duration>,
    /// `Some(None)`: any staleness.
    max_stale: Option<Option<Duration>>,
    stale_if_error: Option<Duration>,
}

impl RequestDirectives {
    fn of(headers: &HeaderMap) -> Self {
        if !headers.contains_key(header::CACHE_CONTROL) {
            return Self {
                no_cache: pragma_no_cache(headers),
                ..Self::default()
            };
        }
        let cc = cache_control(headers);
        let secs = |name| first_number(&cc, name).flatten().map(Duration::from_secs);
        Self {
            no_cache: has(&cc, "no-cache"),
            // An invalid max-age asks for a response of age 0.
            max_age: first_number(&cc, "max-age").map(|v| Duration::from_secs(v.unwrap_or(0))),
            min_fresh: secs("min-fresh"),
            max_stale: cc.iter().find(|d| d.name == "max-stale").map(|d| {
                d.value
                    .as_deref()
                    .and_then(delta_seconds)
                    .map(Duration::from_secs)
            }),
            stale_if_error: secs("stale-if-error"),
        }
    }
}

/// §3.5: a shared cache stores (and uses) a response to a request with `Authorization` only if
/// the response says `public`, `s-maxage` or `must-revalidate`; never a `private` one.
fn may_store_in_shared(request_headers: &HeaderMap, flags: u16) -> bool {
    let allowed = flag::PUBLIC | flag::S_MAXAGE | flag::MUST_REVALIDATE;
    flags & flag::PRIVATE == 0
        && (!request_headers.contains_key(header::AUTHORIZATION) || flags & allowed != 0)
}

/// RFC 9111 §4.2.1: `s-maxage` (shared only), then the first `max-age` (an invalid one means
/// stale), then `Expires - Date` (an invalid `Expires` means stale), then 10% of the time
/// since `Last-Modified` for heuristically cacheable statuses (or `public`).
fn freshness_lifetime(
    status: StatusCode,
    h: &HeaderMap,
    cc: &[Directive],
    base: SystemTime,
    flags: u16,
    shared: bool,
) -> Duration {
    if shared {
        if let Some(Some(s)) = first_number(cc, "s-maxage") {
            return Duration::from_secs(s);
        }
    }
    if let Some(max_age) = first_number(cc, "max-age") {
        return Duration::from_secs(max_age.unwrap_or(0));
    }
    if let Some(expires) = header_date(h, &header::EXPIRES) {
        return expires
            .ok()
            .and_then(|e| e.duration_since(base).ok())
            .unwrap_or_default();
    }
    if heuristically_cacheable(status) || flags & flag::PUBLIC != 0 {
        if let Some(Ok(lm)) = header_date(h, &header::LAST_MODIFIED) {
            return base.duration_since(lm).unwrap_or_default() / 10;
        }
    }
    Duration::ZERO
}

/// RFC 9111 §4.2.3 `corrected_initial_age`: the larger of the apparent age
/// (`response_time - Date`) and `Age + response_delay`.
fn corrected_initial_age(entry: &CacheMetadata, date: Option<SystemTime>) -> Duration {
    let apparent = date
        .and_then(|d| entry.response_time.duration_since(d).ok())
        .unwrap_or_default();
    let age_value = Duration::from_secs(header_delta(&entry.headers, &header::AGE).unwrap_or(0));
    let delay = entry
        .response_time
        .duration_since(entry.request_time)
        .unwrap_or_default();
    apparent.max(age_value.saturating_add(delay))
}

/// The current age of a stored response (RFC 9111 §4.2.3), for its `Age` header when served.
pub fn current_age(entry: &CacheMetadata, now: SystemTime) -> Duration {
    let date = header_date(&entry.headers, &header::DATE).and_then(Result::ok);
    corrected_initial_age(entry, date)
        .saturating_add(now.duration_since(entry.response_time).unwrap_or_default())
}

/// The headers to serve a stored response with: the stored ones with `Age` set to the current
/// age.
pub fn served_headers(entry: &CacheMetadata, now: SystemTime) -> HeaderMap {
    let mut headers = entry.headers.clone();
    headers.insert(
        header::AGE,
        HeaderValue::from(current_age(entry, now).as_secs()),
    );
    headers
}

/// Whether a response may be stored (RFC 9111 §3): only `GET` (a `HEAD` is answered from the
/// `GET` entry; POST responses are not reused by Qt either); any final status but 304, a 206
/// only with a single byte range in `Content-Range` (§3.3); not `no-store` in the request or
/// the response, not `Vary: *`; and the status is heuristically cacheable or the response has
/// explicit freshness (`max-age`, `Expires`, in a shared cache `s-maxage`) or is `public`. So
/// a 500 with `max-age=60` is stored and reused while fresh (§3). A private cache stores
/// `private` responses; a shared one does not, and follows §3.5 for `Authorization`.
pub fn storable(
    request: &CacheRequest<'_>,
    status: StatusCode,
    response_headers: &HeaderMap,
) -> bool {
    if *request.method != Method::GET
        || status.is_informational()
        || status == StatusCode::NOT_MODIFIED
        || (status == StatusCode::PARTIAL_CONTENT
            && super::range::content_range(response_headers).is_none())
        || vary_names(response_headers).is_none()
    {
        return false;
    }
    let cc = cache_control(response_headers);
    let req_no_store = request.headers.contains_key(header::CACHE_CONTROL)
        && has(&cache_control(request.headers), "no-store");
    if has(&cc, "no-store") || req_no_store {
        return false;
    }
    let flags = [
        ("private", flag::PRIVATE),
        ("public", flag::PUBLIC),
        ("s-maxage", flag::S_MAXAGE),
        ("must-revalidate", flag::MUST_REVALIDATE),
    ]
    .iter()
    .filter(|(name, _)| has(&cc, name))
    .fold(0, |acc, (_, bit)| acc | bit);
    if request.shared && !may_store_in_shared(request.headers, flags) {
        return false;
    }
    heuristically_cacheable(status)
        || flags & flag::PUBLIC != 0
        || has(&cc, "max-age")
        || (request.shared && flags & flag::S_MAXAGE != 0)
        || response_headers.contains_key(header::EXPIRES)
}

/// Whether `entry` (stored for `request.url`) may answer `request` at `now`: fresh, stale with
/// the headers to revalidate it, or not usable. Parses the entry; the request path keeps a
/// [`StoredPolicy`] with each entry and asks [`StoredPolicy::freshness`] instead.
///
/// Honors `max-age`, `Expires` (relative to `Date`), heuristic freshness (10% of the time since
/// `Last-Modified`, only for statuses heuristically cacheable), response `no-cache` (always
/// revalidate) and `must-revalidate`, `stale-while-revalidate`, `Age` and `Date`, and the
/// request's `Cache-Control` (`no-cache`, `max-age`, `min-fresh`, `max-stale`) and `Pragma:
/// no-cache`. A `HEAD` request may use the `GET` entry. A request with `Range` or a
/// conditional header of its own is [`Freshness::MustNotUse`] here.
pub fn freshness(entry: &CacheMetadata, request: &CacheRequest<'_>, now: SystemTime) -> Freshness {
    if BYPASS_REQUEST_HEADERS
        .iter()
        .any(|h| request.headers.contains_key(h))
    {
        return Freshness::MustNotUse;
    }
    StoredPolicy::new(entry).freshness(entry, request, now)
}

/// The stored metadata updated by a 304 (RFC 9111 §4.3.4): the 304's headers replace the
/// stored ones of the same name, except `Content-Length`, `Content-Encoding`, `Content-Range`
/// and hop-by-hop headers (the stored body stays), and the times become those of the
/// revalidation (the application's `attributes` and `save_to_disk` stay). `None` when the 304's validator does not match the stored response (a
/// different strong `ETag`, or a different `ETag` at all): then the stored body cannot be
/// served; request again without validators.
pub fn merge_304(
    entry: &CacheMetadata,
    response_headers: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Option<CacheMetadata> {
    let etag = |h: &HeaderMap| {
        h.get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    };
    if let (Some(new), Some(old)) = (etag(response_headers), etag(&entry.headers)) {
        if new.trim_start_matches("W/") != old.trim_start_matches("W/") {
            return None;
        }
    }
    let update = headers_to_store(response_headers);
    let mut headers = entry.headers.clone();
    for name in update.keys() {
        if NOT_UPDATED_BY_304.contains(&name.as_str()) {
            continue;
        }
        headers.remove(name);
        for value in update.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    Some(CacheMetadata {
        status: entry.status,
        headers,
        request_headers: entry.request_headers.clone(),
        request_time,
        response_time,
        save_to_disk: entry.save_to_disk,
        attributes: entry.attributes.clone(),
    })
}

/// The URLs whose stored responses a response to `method` on `request_url` invalidates
/// (RFC 9111 §4.4): for an unsafe method (anything but GET, HEAD, OPTIONS, TRACE) answered
/// with a non-error status (2xx or 3xx), the request URL and the URLs in `Location` and
/// `Content-Location`, those only if on the same origin. Fragments are dropped. The pipeline
/// removes `CacheKey::get(url)` for each.
pub fn invalidated_urls(
    method: &Method,
    request_url: &Url,
    status: StatusCode,
    response_headers: &HeaderMap,
) -> Vec<Url> {
    let safe = [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE];
    if safe.contains(method) || !(status.is_success() || status.is_redirection()) {
        return Vec::new();
    }
    let mut base = request_url.clone();
    base.set_fragment(None);
    let mut urls = vec![base.clone()];
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let Some(value) = response_headers.get(&name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Ok(mut url) = base.join(value.trim()) {
            url.set_fragment(None);
            if url.origin() == base.origin() && !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    urls
}

/// Qt's fallback as a case of `stale-if-error`: when revalidation fails with a 5xx (or the
/// network), may the stored copy be served instead? Not when the response forbids serving
/// it stale: `must-revalidate`, `no-cache` (or `Pragma: no-cache`), `no-store`, or `Vary: *`
/// (RFC 9111 §4.2.4). [`StoredPolicy::may_serve_on_error`] also applies the
/// `stale-if-error` window.
pub fn may_serve_stale_on_error(entry: &CacheMetadata) -> bool {
    !StoredPolicy::new(entry).must_revalidate(false)
}

/// The statuses of a failed revalidation that `stale-if-error` covers (RFC 5861 §4).
pub fn is_error_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// The time of an HTTP date in any of its three forms (RFC 9110 §5.6.7: IMF-fixdate, and the
/// obsolete RFC 850 and asctime forms); `None` for anything else, a doubled space included.
///
/// ```
/// use netaccess::cache::policy::parse_http_date;
/// assert!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").is_some());
/// assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_some());
/// assert!(parse_http_date("Sun Nov  6 08:49:37 1994").is_some());
/// assert!(parse_http_date("Sun, 06  Nov 1994 08:49:37 GMT").is_none());
/// ```
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    parse::http_date(text.trim())
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
