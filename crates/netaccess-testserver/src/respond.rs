//! `/respond/ID`: a response described by its query, different per request number, for the
//! HTTP cache tests (RFC 9111 cases need exact headers, statuses and bodies, and a second
//! answer that differs from the first).
//!
//! Query parameters, in order: `status` (default 200), `body` (text, default empty), and any
//! other name is a response header (appended). A parameter written `N:name` applies only to
//! the Nth request to this path (counting from 1), `N+:name` (the `+` written `%2B`) to the Nth
//! and later ones; these replace the same name given without a prefix. `fail=reset` resets the connection instead
//! of answering. `validate=1` answers a conditional request whose `If-None-Match` equals the
//! `etag` parameter, or whose `If-Modified-Since` equals `last-modified`, with `304` and the
//! headers. `ranges=1` answers a single `Range` of the body with `206` and `Content-Range`.
//! The request's `Range`, `If-None-Match`, `If-Modified-Since`, `Authorization` and
//! `Cache-Control` come back as `X-Saw-Range` and so on.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

use crate::body::ResponseBody;
use crate::query::parse_query;
use crate::routes::{BadRequest, RouteResult};

/// What `/respond/ID` does for one request.
pub(crate) enum Respond {
    Answer(RouteResult),
    Reset,
}

/// The parameters that apply to request number `n`: unprefixed ones, replaced by `N:` and
/// `N+:` ones for this request.
fn applicable(query: &str, n: u64) -> Vec<(String, String)> {
    let mut base: Vec<(String, String)> = Vec::new();
    let mut specific: Vec<(String, String)> = Vec::new();
    for (name, value) in parse_query(query) {
        match name.split_once(':') {
            Some((prefix, rest)) if !prefix.is_empty() => {
                let (digits, plus) = match prefix.strip_suffix('+') {
                    Some(d) => (d, true),
                    None => (prefix, false),
                };
                let Ok(k) = digits.parse::<u64>() else {
                    base.push((name, value));
                    continue;
                };
                if n == k || (plus && n > k) {
                    specific.push((rest.to_ascii_lowercase(), value));
                }
            }
            _ => base.push((name.to_ascii_lowercase(), value)),
        }
    }
    base.retain(|(name, _)| !specific.iter().any(|(s, _)| s == name));
    base.extend(specific);
    base
}

pub(crate) fn respond_route(query: Option<&str>, n: u64, request: &HeaderMap) -> Respond {
    let params = applicable(query.unwrap_or(""), n);
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if get("fail") == Some("reset") {
        return Respond::Reset;
    }
    Respond::Answer(answer(&params, get, request))
}

fn answer<'a>(
    params: &'a [(String, String)],
    get: impl Fn(&str) -> Option<&'a str>,
    request: &HeaderMap,
) -> RouteResult {
    let code: u16 = get("status")
        .unwrap_or("200")
        .parse()
        .map_err(|_| BadRequest("invalid status".into()))?;
    let mut status = StatusCode::from_u16(code)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| BadRequest(format!("invalid status {code}")))?;
    let mut body = Bytes::copy_from_slice(get("body").unwrap_or("").as_bytes());
    let mut headers = HeaderMap::new();
    for (name, value) in params {
        if matches!(
            name.as_str(),
            "status" | "body" | "fail" | "validate" | "ranges"
        ) {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| BadRequest(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| BadRequest(format!("invalid header value for {name}")))?;
        headers.append(name, value);
    }
    let seen = |h: HeaderName| request.get(h).and_then(|v| v.to_str().ok());
    let validated = get("validate") == Some("1")
        && ((seen(header::IF_NONE_MATCH).is_some() && seen(header::IF_NONE_MATCH) == get("etag"))
            || (seen(header::IF_MODIFIED_SINCE).is_some()
                && seen(header::IF_MODIFIED_SINCE) == get("last-modified")));
    if validated {
        status = StatusCode::NOT_MODIFIED;
        body = Bytes::new();
    } else if let (Some("1"), Some(range)) = (get("ranges"), seen(header::RANGE)) {
        let len = body.len() as u64;
        if let Some((start, end)) = crate::routes::parse_range(range, len) {
            status = StatusCode::PARTIAL_CONTENT;
            body = body.slice(start as usize..=end as usize);
            let value = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
                .map_err(|_| BadRequest("bad range".into()))?;
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    for (from, to) in [
        (header::RANGE, "x-saw-range"),
        (header::IF_NONE_MATCH, "x-saw-if-none-match"),
        (header::IF_MODIFIED_SINCE, "x-saw-if-modified-since"),
        (header::AUTHORIZATION, "x-saw-authorization"),
        (header::CACHE_CONTROL, "x-saw-cache-control"),
    ] {
        if let Some(v) = request.get(&from) {
            headers.insert(HeaderName::from_static(to), v.clone());
        }
    }
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_replace_the_base_ones() {
        // `+` is written `%2B` in a query (a bare `+` is a space).
        let q = "status=200&etag=%22a%22&2:status=503&3%2B:x-late=1";
        let names = |n| applicable(q, n);
        assert_eq!(names(1).iter().find(|p| p.0 == "status").unwrap().1, "200");
        assert_eq!(names(2).iter().find(|p| p.0 == "status").unwrap().1, "503");
        assert!(names(2).iter().all(|p| p.0 != "x-late"));
        assert!(names(4).iter().any(|p| p.0 == "x-late"));
        assert_eq!(names(4).iter().find(|p| p.0 == "etag").unwrap().1, "\"a\"");
    }
}
