//! The RFC 9111 rules the request path applies around a [`Cache`](super::Cache), as a private
//! (single-user) cache: `private` responses are stored, `s-maxage` and `proxy-revalidate`
//! are ignored.
//!
//! Freshness lifetime (max-age, Expires, heuristic 10% of the Last-Modified age), request
//! directives (no-cache, max-age, min-fresh, max-stale) and validators come from the
//! `http-cache-semantics` crate; around it this module computes the RFC 9111 §4.2.3 age (with
//! `Date`, `Age` and the request/response times), accepts all three HTTP date formats, and
//! adds what the crate leaves to its caller: Range and conditional requests, `Vary`,
//! invalidation by unsafe methods, 304 merging, serving stale on error.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_cache_semantics::{BeforeRequest, CacheOptions, CachePolicy};
use url::Url;

use super::{vary_matches, vary_names, CacheMetadata};

/// The request being answered, as the pipeline has it (headers as they will be sent).
#[derive(Debug, Clone, Copy)]
pub struct CacheRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URL.
    pub url: &'a Url,
    /// The headers.
    pub headers: &'a HeaderMap,
}

impl<'a> CacheRequest<'a> {
    /// A request view.
    pub fn new(method: &'a Method, url: &'a Url, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            url,
            headers,
        }
    }
}

/// Whether a stored response may answer a request, from [`freshness`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Freshness {
    /// Fresh: serve it without contacting the server.
    Fresh,
    /// Stale (or the request or response demands validation): revalidate by sending the
    /// request with these headers added; a 304 means the stored body is served (after
    /// [`merge_304`]). Empty when the entry has no validator: then only a full response helps.
    /// `PreferCache` may serve it as is unless `must_revalidate` (RFC 9111 §4.2.4).
    Stale {
        /// `If-None-Match` (from `ETag`) and/or `If-Modified-Since` (from `Last-Modified`).
        revalidation_headers: HeaderMap,
        /// The response says `must-revalidate` or `no-cache`: a stale copy may not be served
        /// without a successful validation.
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

/// Request headers that make the caller's request one the cache does not answer.
const BYPASS_REQUEST_HEADERS: &[HeaderName] = &[
    header::RANGE,
    header::IF_RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

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

/// The Cache-Control directives of `headers` (names lowercase, values unquoted).
fn directives(headers: &HeaderMap) -> Vec<(String, Option<String>)> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| {
            let mut kv = part.splitn(2, '=');
            let name = kv.next()?.trim().to_ascii_lowercase();
            let value = kv.next().map(|v| v.trim().trim_matches('"').to_owned());
            (!name.is_empty()).then_some((name, value))
        })
        .collect()
}

/// The largest delta-seconds value a cache works with: RFC 9111 §1.2.2 says a larger value,
/// or one whose calculations would overflow, is taken as 2^31.
pub(crate) const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// A delta-seconds value (RFC 9111 §1.2.2): digits only, clamped at [`MAX_DELTA_SECONDS`]
/// however many digits there are.
pub(crate) fn delta_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        text.parse::<u64>()
            .map_or(MAX_DELTA_SECONDS, |v| v.min(MAX_DELTA_SECONDS)),
    )
}

fn has_directive(headers: &HeaderMap, name: &str) -> bool {
    directives(headers).iter().any(|(n, _)| n == name)
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

fn options() -> CacheOptions {
    CacheOptions {
        shared: false,
        ..CacheOptions::default()
    }
}

/// A `http::request::Parts` for the crate.
fn request_parts(method: &Method, url: &Url, headers: HeaderMap) -> http::request::Parts {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method.clone();
    parts.uri = url
        .as_str()
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    parts.headers = headers;
    parts
}

fn response_parts(status: StatusCode, headers: HeaderMap) -> http::response::Parts {
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = status;
    parts.headers = headers;
    parts
}

/// Rewrites `Date`, `Expires` and `Last-Modified` in IMF-fixdate (the crate parses only that
/// form; RFC 850 and asctime dates are valid HTTP too). An invalid `Expires` stays as it is
/// (it means "already expired").
fn normalize_dates(headers: &mut HeaderMap) {
    for name in [header::DATE, header::EXPIRES, header::LAST_MODIFIED] {
        let parsed = headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok());
        if let Some(time) = parsed {
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(time)) {
                headers.insert(name, v);
            }
        }
    }
}

/// Rewrites `Cache-Control` with lowercase directive names and `Pragma` in lowercase (the
/// crate compares them case-sensitively; RFC 9111 §5.2 names are case-insensitive).
fn normalize_directives(headers: &mut HeaderMap) {
    if headers.contains_key(header::CACHE_CONTROL) {
        let joined = directives(headers)
            .into_iter()
            .map(|(name, value)| match value {
                // Numbers the crate adds to times are clamped first (no overflow downstream).
                Some(v) => match delta_seconds(&v) {
                    Some(seconds) => format!("{name}={seconds}"),
                    None => format!("{name}={v}"),
                },
                None => name,
            })
            .collect::<Vec<_>>()
            .join(", ");
        headers.remove(header::CACHE_CONTROL);
        if let Ok(v) = HeaderValue::from_str(&joined) {
            headers.insert(header::CACHE_CONTROL, v);
        }
    }
    let pragma: Vec<HeaderValue> = headers
        .get_all(header::PRAGMA)
        .iter()
        .filter_map(|v| HeaderValue::from_str(&v.to_str().ok()?.to_ascii_lowercase()).ok())
        .collect();
    if !pragma.is_empty() {
        headers.remove(header::PRAGMA);
        for v in pragma {
            headers.append(header::PRAGMA, v);
        }
    }
}

/// The response or request headers as the crate should see them.
fn normalized(headers: &HeaderMap) -> HeaderMap {
    let mut headers = headers.clone();
    normalize_dates(&mut headers);
    normalize_directives(&mut headers);
    headers
}

/// The first value of a delta-seconds header (`Age: 7200, 0` is 7200), clamped.
fn parse_delta(value: Option<&HeaderValue>) -> Option<u64> {
    delta_seconds(value?.to_str().ok()?.split(',').next()?)
}

/// RFC 9111 §4.2.3 `corrected_initial_age`: the larger of the apparent age
/// (`response_time - Date`) and `Age + response_delay`.
fn corrected_initial_age(entry: &CacheMetadata) -> Duration {
    let date = entry
        .headers
        .get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok());
    let apparent = date
        .and_then(|d| entry.response_time.duration_since(d).ok())
        .unwrap_or_default();
    let age_value = Duration::from_secs(parse_delta(entry.headers.get(header::AGE)).unwrap_or(0));
    let delay = entry
        .response_time
        .duration_since(entry.request_time)
        .unwrap_or_default();
    apparent.max(age_value.saturating_add(delay))
}

/// The crate's policy for a stored entry, with the RFC 9111 age folded into `Age`.
fn stored_policy(entry: &CacheMetadata, url: &Url) -> CachePolicy {
    let mut headers = normalized(&entry.headers);
    let age = corrected_initial_age(entry).as_secs();
    headers.insert(header::AGE, HeaderValue::from(age));
    let request = request_parts(&Method::GET, url, entry.request_headers.clone());
    let response = response_parts(entry.status, headers);
    CachePolicy::new_options(&request, &response, entry.response_time, options())
}

/// The current age of a stored response (RFC 9111 §4.2.3), for its `Age` header when served.
pub fn current_age(entry: &CacheMetadata, now: SystemTime) -> Duration {
    corrected_initial_age(entry)
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
/// `GET` entry; POST responses are not reused by Qt either), not a Range request or a 206
/// (partial content is not stored), not `no-store` in the request or the response, not
/// `Vary: *`, a status the cache understands that is cacheable by default or has explicit
/// freshness (`Expires`, `max-age`, `public`). `private` is allowed: this is a private cache.
pub fn storable(
    request: &CacheRequest<'_>,
    status: StatusCode,
    response_headers: &HeaderMap,
) -> bool {
    if *request.method != Method::GET
        || status == StatusCode::PARTIAL_CONTENT
        || request.headers.contains_key(header::RANGE)
        || response_headers.contains_key(header::CONTENT_RANGE)
        || vary_names(response_headers).is_none()
    {
        return false;
    }
    let req = request_parts(request.method, request.url, normalized(request.headers));
    let res = response_parts(status, normalized(response_headers));
    CachePolicy::new_options(&req, &res, SystemTime::now(), options()).is_storable()
}

/// Whether `entry` (stored for `request.url`) may answer `request` at `now`: fresh, stale with
/// the headers to revalidate it, or not usable.
///
/// Honors `max-age`, `Expires` (relative to `Date`), heuristic freshness (10% of the time since
/// `Last-Modified`, only for statuses cacheable by default), response `no-cache` (always
/// revalidate) and `must-revalidate`, `Age` and `Date`, and the request's `Cache-Control`
/// (`no-cache`, `max-age`, `min-fresh`, `max-stale`) and `Pragma: no-cache`. A `HEAD` request
/// may use the `GET` entry.
pub fn freshness(entry: &CacheMetadata, request: &CacheRequest<'_>, now: SystemTime) -> Freshness {
    if !(*request.method == Method::GET || *request.method == Method::HEAD)
        || BYPASS_REQUEST_HEADERS
            .iter()
            .any(|h| request.headers.contains_key(h))
        || !vary_matches(&entry.request_headers, &entry.headers, request.headers)
    {
        return Freshness::MustNotUse;
    }
    let policy = stored_policy(entry, request.url);
    // The crate compares Host and the Vary headers with the stored request; Vary is checked
    // above and the key already holds the host.
    let mut headers = normalized(request.headers);
    headers.remove(header::HOST);
    let presented = request_parts(&Method::GET, request.url, headers);
    match policy.before_request(&presented, now) {
        BeforeRequest::Fresh(_) => Freshness::Fresh,
        BeforeRequest::Stale { matches: false, .. } => Freshness::MustNotUse,
        BeforeRequest::Stale { request: parts, .. } => {
            let mut revalidation_headers = HeaderMap::new();
            for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
                for value in parts.headers.get_all(&name) {
                    revalidation_headers.append(name.clone(), value.clone());
                }
            }
            Freshness::Stale {
                revalidation_headers,
                must_revalidate: !may_serve_stale_on_error(entry),
            }
        }
    }
}

/// The stored metadata updated by a 304 (RFC 9111 §4.3.4): the 304's headers replace the
/// stored ones of the same name, except `Content-Length`, `Content-Encoding`, `Content-Range`
/// and hop-by-hop headers (the stored body stays), and the times become those of the
/// revalidation. `None` when the 304's validator does not match the stored response (a
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

/// Qt's fallback: when revalidation fails with a 5xx (or the network), may the stored copy be
/// served instead? Yes unless the response forbids serving it stale: `must-revalidate`,
/// `no-cache` (or `Pragma: no-cache`), `no-store`, or `Vary: *` (RFC 9111 §4.2.4).
pub fn may_serve_stale_on_error(entry: &CacheMetadata) -> bool {
    let h = &entry.headers;
    !(has_directive(h, "must-revalidate")
        || has_directive(h, "no-cache")
        || has_directive(h, "no-store")
        || pragma_no_cache(h)
        || vary_names(h).is_none())
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
