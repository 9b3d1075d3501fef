//! The cache policy (cache/policy.rs) over arbitrary request and response headers, statuses
//! and times: storable, freshness, served headers, 304 merge, invalidation, stale-on-error.
//! Properties: never a panic or overflow; only GET, non-304, non-`Vary: *` responses (a 206
//! only with a valid Content-Range) are storable, private or shared, and stored metadata
//! keeps no hop-by-hop header or cookie; a range cut from an entry stays inside its body; served
//! headers carry exactly one numeric `Age`; revalidation adds only validators; a 304 merge
//! keeps the status, the body's framing headers and the Vary request headers; invalidated
//! URLs stay on the request's origin.
#![no_main]

use arbitrary::Arbitrary;
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use netaccess::cache::policy::{
    current_age, freshness, invalidated_urls, may_serve_stale_on_error, merge_304, served_headers,
    storable, CacheRequest, Freshness, StoredPolicy,
};
use netaccess::cache::range::{content_range, request_range, slice};
use netaccess::cache::CacheMetadata;
use netaccess_fuzz::header_map;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE",
];

#[derive(Arbitrary, Debug)]
struct Input {
    method: u8,
    lookup_method: u8,
    status: u16,
    path: String,
    request: Vec<(u8, Vec<u8>)>,
    response: Vec<(u8, Vec<u8>)>,
    lookup: Vec<(u8, Vec<u8>)>,
    not_modified: Vec<(u8, Vec<u8>)>,
    /// Seconds after 2023-11-14 the request was sent.
    request_at: u32,
    /// Response delay.
    delay: u32,
    /// Seconds from the response to the lookup (negative: a clock that went back).
    later: i64,
}

fn shift(t: SystemTime, secs: i64) -> SystemTime {
    if secs >= 0 {
        t.checked_add(Duration::from_secs(secs as u64)).unwrap_or(t)
    } else {
        t.checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .unwrap_or(t)
    }
}

const NOT_STORED: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "set-cookie",
];

fuzz_target!(|input: Input| {
    let method =
        Method::from_bytes(METHODS[usize::from(input.method) % METHODS.len()].as_bytes()).unwrap();
    let lookup_method =
        Method::from_bytes(METHODS[usize::from(input.lookup_method) % METHODS.len()].as_bytes())
            .unwrap();
    let Ok(status) = StatusCode::from_u16(input.status) else {
        return;
    };
    let Ok(url) = Url::parse(&format!("http://cache.test/{}", input.path)) else {
        return;
    };
    let request_headers = header_map(&input.request);
    let response_headers = header_map(&input.response);
    let lookup_headers = header_map(&input.lookup);
    let not_modified = header_map(&input.not_modified);
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let request_time = t0 + Duration::from_secs(u64::from(input.request_at));
    let response_time = request_time + Duration::from_secs(u64::from(input.delay));
    let now = shift(response_time, input.later);

    let request = CacheRequest::new(&method, &url, &request_headers);
    let can_store = storable(&request, status, &response_headers);
    let shared_store = storable(&request.shared(true), status, &response_headers);
    if can_store || shared_store {
        assert_eq!(method, Method::GET);
        assert_ne!(status, StatusCode::NOT_MODIFIED);
        assert!(!status.is_informational());
        if status == StatusCode::PARTIAL_CONTENT {
            assert!(
                content_range(&response_headers).is_some(),
                "a 206 without a range stored"
            );
        }
        let vary_star = response_headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|n| n.trim() == "*");
        assert!(!vary_star, "Vary: * stored");
    }

    let entry = CacheMetadata::new(
        status,
        &response_headers,
        &request_headers,
        request_time,
        response_time,
    );
    for name in NOT_STORED {
        assert!(!entry.headers.contains_key(*name), "{name} stored");
    }

    let served = served_headers(&entry, now);
    let ages: Vec<_> = served.get_all(header::AGE).iter().collect();
    assert_eq!(ages.len(), 1);
    let age: u64 = ages[0].to_str().unwrap().parse().expect("a numeric Age");
    assert_eq!(age, current_age(&entry, now).as_secs());

    let lookup = CacheRequest::new(&lookup_method, &url, &lookup_headers);
    let policy = StoredPolicy::new(&entry);
    for shared in [false, true] {
        let _ = policy.freshness(&entry, &lookup.shared(shared), now);
        let _ = policy.may_serve_on_error(&lookup_headers, shared, now);
    }
    // Ranges cut from the entry stay inside its body.
    if let Some(asked) = request_range(&lookup_headers) {
        let body_len = u64::from(input.delay);
        if let Some(s) = slice(&entry, body_len, asked) {
            assert!(
                s.len >= 1
                    && s.offset
                        .checked_add(s.len)
                        .is_some_and(|end| end <= body_len)
            );
            assert_eq!(s.range.len(), s.len);
        }
    }
    match freshness(&entry, &lookup, now) {
        Freshness::Fresh => {
            assert!(lookup_method == Method::GET || lookup_method == Method::HEAD);
        }
        Freshness::Stale {
            revalidation_headers,
            ..
        }
        | Freshness::StaleWhileRevalidate {
            revalidation_headers,
        } => {
            for name in revalidation_headers.keys() {
                assert!(
                    name == header::IF_NONE_MATCH || name == header::IF_MODIFIED_SINCE,
                    "{name} added to a revalidation"
                );
            }
        }
        _ => {}
    }
    let _ = may_serve_stale_on_error(&entry);

    let later = shift(now, 1);
    if let Some(merged) = merge_304(&entry, &not_modified, now, later) {
        assert_eq!(merged.status, entry.status);
        for name in [
            header::CONTENT_LENGTH,
            header::CONTENT_ENCODING,
            header::CONTENT_RANGE,
        ] {
            let a: Vec<_> = merged.headers.get_all(&name).iter().collect();
            let b: Vec<_> = entry.headers.get_all(&name).iter().collect();
            assert_eq!(a, b, "{name} changed by a 304");
        }
        assert_eq!(merged.request_headers, entry.request_headers);
        assert!(!merged.headers.contains_key(header::SET_COOKIE));
        assert_eq!((merged.request_time, merged.response_time), (now, later));
        let served = served_headers(&merged, later);
        assert_eq!(served.get_all(header::AGE).iter().count(), 1);
        let _ = freshness(&merged, &lookup, later);
    }

    for invalid in invalidated_urls(&method, &url, status, &response_headers) {
        assert_eq!(invalid.origin(), url.origin());
        assert!(invalid.fragment().is_none());
    }
    let _: &HeaderMap = &entry.request_headers;
});
