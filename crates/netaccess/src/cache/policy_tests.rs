//! Tests of `cache/policy.rs`: one or more per rule of RFC 9111 and RFC 5861 it applies, which
//! is why the file is over 600 lines.

use super::*;

const T0: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

fn date(secs: u64) -> String {
    httpdate::fmt_http_date(at(secs))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn url() -> Url {
    Url::parse("http://example.test/a/b?x=1").unwrap()
}

/// An entry received at `at(0)` (requested at `at(0)` too) with a `Date` of `at(0)`.
fn entry(pairs: &[(&str, &str)]) -> CacheMetadata {
    let mut h = headers(pairs);
    if !h.contains_key("date") {
        h.insert("date", HeaderValue::from_str(&date(0)).unwrap());
    }
    CacheMetadata::new(StatusCode::OK, &h, &HeaderMap::new(), at(0), at(0))
}

fn fresh_at(e: &CacheMetadata, req: &[(&str, &str)], secs: u64) -> Freshness {
    let h = headers(req);
    let u = url();
    freshness(e, &CacheRequest::new(&Method::GET, &u, &h), at(secs))
}

fn is_fresh(e: &CacheMetadata, secs: u64) -> bool {
    fresh_at(e, &[], secs) == Freshness::Fresh
}

fn is_stale(f: &Freshness) -> bool {
    matches!(f, Freshness::Stale { .. })
}

fn can_store(method: Method, req: &[(&str, &str)], status: u16, res: &[(&str, &str)]) -> bool {
    let h = headers(req);
    let u = url();
    storable(
        &CacheRequest::new(&method, &u, &h),
        StatusCode::from_u16(status).unwrap(),
        &headers(res),
    )
}

#[test]
fn storable_rules() {
    assert!(can_store(Method::GET, &[], 200, &[]));
    assert!(can_store(
        Method::GET,
        &[],
        200,
        &[("cache-control", "max-age=60")]
    ));
    // private is fine for a private cache; Authorization too.
    assert!(can_store(
        Method::GET,
        &[("authorization", "x")],
        200,
        &[("cache-control", "private, max-age=60")]
    ));
    // no-store in the response or the request.
    assert!(!can_store(
        Method::GET,
        &[],
        200,
        &[("cache-control", "no-store")]
    ));
    assert!(!can_store(
        Method::GET,
        &[],
        200,
        &[("cache-control", "max-age=60, No-Store")]
    ));
    assert!(!can_store(
        Method::GET,
        &[("cache-control", "no-store")],
        200,
        &[]
    ));
    // Partial content is stored with a single byte range; a 200 to a Range request and a
    // 200 with Content-Range too.
    assert!(can_store(
        Method::GET,
        &[],
        206,
        &[("content-range", "bytes 0-9/100")]
    ));
    assert!(!can_store(Method::GET, &[], 206, &[]));
    assert!(!can_store(
        Method::GET,
        &[],
        206,
        &[("content-range", "bytes */100")]
    ));
    assert!(can_store(Method::GET, &[("range", "bytes=0-9")], 200, &[]));
    assert!(can_store(
        Method::GET,
        &[],
        200,
        &[("content-range", "bytes 0-9/10")]
    ));
    // Only GET.
    assert!(!can_store(
        Method::HEAD,
        &[],
        200,
        &[("cache-control", "max-age=60")]
    ));
    assert!(!can_store(
        Method::POST,
        &[],
        200,
        &[("cache-control", "max-age=60")]
    ));
    assert!(!can_store(Method::PUT, &[], 200, &[]));
    // Vary: * never matches.
    assert!(!can_store(Method::GET, &[], 200, &[("vary", "*")]));
    assert!(can_store(
        Method::GET,
        &[],
        200,
        &[("vary", "accept-language")]
    ));
    // Statuses: heuristically cacheable, or any final status with explicit freshness
    // (RFC 9111 §3); never 304 or 1xx.
    assert!(can_store(Method::GET, &[], 404, &[]));
    assert!(can_store(Method::GET, &[], 301, &[]));
    assert!(!can_store(Method::GET, &[], 302, &[]));
    assert!(can_store(
        Method::GET,
        &[],
        302,
        &[("cache-control", "max-age=60")]
    ));
    for status in [299, 400, 499, 500, 502, 503, 504, 599] {
        assert!(can_store(
            Method::GET,
            &[],
            status,
            &[("cache-control", "max-age=60")]
        ));
        assert!(!can_store(Method::GET, &[], status, &[]), "{status}");
    }
    assert!(!can_store(Method::GET, &[], 304, &[]));
    assert!(!can_store(
        Method::GET,
        &[],
        304,
        &[("cache-control", "max-age=60")]
    ));
}

#[test]
fn max_age() {
    let e = entry(&[("cache-control", "max-age=60")]);
    assert!(is_fresh(&e, 0));
    assert!(is_fresh(&e, 59));
    assert!(is_stale(&fresh_at(&e, &[], 61)));
    // max-age wins over Expires.
    let e = entry(&[("cache-control", "max-age=60"), ("expires", &date(3600))]);
    assert!(is_stale(&fresh_at(&e, &[], 61)));
}

#[test]
fn expires_relative_to_date() {
    let e = entry(&[("expires", &date(100))]);
    assert!(is_fresh(&e, 99));
    assert!(is_stale(&fresh_at(&e, &[], 101)));
    // Expires is measured from the server's Date, not our clock: a server whose clock is
    // 1000 s behind ours still gives 100 s (the apparent age is 0 as Date is in the future).
    let h = headers(&[("date", &date(1000)), ("expires", &date(1100))]);
    let e = CacheMetadata::new(StatusCode::OK, &h, &HeaderMap::new(), at(0), at(0));
    assert!(is_fresh(&e, 99));
    assert!(is_stale(&fresh_at(&e, &[], 101)));
    // Invalid Expires ("0") means already expired.
    let e = entry(&[("expires", "0")]);
    assert!(is_stale(&fresh_at(&e, &[], 1)));
    // RFC 850 and asctime dates are understood.
    let e = entry(&[("expires", "Tuesday, 14-Nov-23 22:15:00 GMT")]);
    assert!(is_fresh(&e, 1), "RFC 850 date, {}", date(0));
    let e = entry(&[("expires", "Tue Nov 14 22:15:00 2023")]);
    assert!(is_fresh(&e, 1));
}

#[test]
fn heuristic_freshness() {
    // Last-Modified 1000 s before Date: fresh for 10% of that = 100 s.
    let h = headers(&[("date", &date(1000)), ("last-modified", &date(0))]);
    let e = CacheMetadata::new(StatusCode::OK, &h, &HeaderMap::new(), at(1000), at(1000));
    assert!(is_fresh(&e, 1000 + 99));
    assert!(is_stale(&fresh_at(&e, &[], 1000 + 101)));
    // Without Last-Modified or explicit freshness: stale at once.
    let e = entry(&[]);
    assert!(is_stale(&fresh_at(&e, &[], 1)));
}

#[test]
fn delta_seconds_clamp_at_two_to_the_31() {
    assert_eq!(delta_seconds("60"), Some(60));
    assert_eq!(delta_seconds(" 2147483648 "), Some(MAX_DELTA_SECONDS));
    assert_eq!(
        delta_seconds("18446744073709551615"),
        Some(MAX_DELTA_SECONDS)
    );
    assert_eq!(delta_seconds(&"9".repeat(400)), Some(MAX_DELTA_SECONDS));
    assert_eq!(delta_seconds("-1"), None);
    assert_eq!(delta_seconds("1e9"), None);
    assert_eq!(delta_seconds(""), None);
}

#[test]
fn a_huge_age_is_clamped_not_overflowed() {
    for age in ["18446744073709551615", &"9".repeat(100), "2147483649"] {
        let e = entry(&[("cache-control", "max-age=60"), ("age", age)]);
        assert!(is_stale(&fresh_at(&e, &[], 0)), "Age {age}");
        assert_eq!(
            current_age(&e, at(10)),
            Duration::from_secs(MAX_DELTA_SECONDS + 10)
        );
        let served = served_headers(&e, at(u64::from(u32::MAX)));
        assert!(served.get("age").is_some());
    }
    // A list: the first value counts.
    let e = entry(&[("cache-control", "max-age=3600"), ("age", "7200, 0")]);
    assert!(is_stale(&fresh_at(&e, &[], 0)));
}

#[test]
fn a_huge_max_age_is_clamped_not_overflowed() {
    for value in ["18446744073709551615", &"9".repeat(100)] {
        let e = entry(&[("cache-control", &format!("max-age={value}"))]);
        assert!(is_fresh(&e, 1_000_000_000), "max-age={value}");
        // 2^31 s later it is stale.
        assert!(is_stale(&fresh_at(&e, &[], MAX_DELTA_SECONDS + 1)));
        // Request directives with huge numbers too.
        for directive in ["max-age", "min-fresh", "max-stale"] {
            let request = format!("{directive}={value}");
            let _ = fresh_at(&e, &[("cache-control", &request)], 10);
        }
    }
}

#[test]
fn a_huge_s_maxage_is_clamped_not_overflowed() {
    let e = entry(&[(
        "cache-control",
        "s-maxage=18446744073709551615, max-age=18446744073709551616",
    )]);
    assert!(is_fresh(&e, 1_000_000));
    let (u, h) = (url(), HeaderMap::new());
    let stored = CacheRequest::new(&Method::GET, &u, &h);
    assert!(storable(&stored, StatusCode::OK, &e.headers));
}

#[test]
fn a_far_future_expires_is_fresh_without_overflow() {
    let e = entry(&[("expires", "Fri, 31 Dec 9999 23:59:59 GMT")]);
    assert!(is_fresh(&e, 1_000_000_000));
    let _ = served_headers(&e, at(1_000_000_000));
}

#[test]
fn age_and_date() {
    // Age: 50 on arrival, max-age 60: 10 s left.
    let e = entry(&[("cache-control", "max-age=60"), ("age", "50")]);
    assert!(is_fresh(&e, 9));
    assert!(is_stale(&fresh_at(&e, &[], 11)));
    // A Date 40 s before the response arrived: apparent age 40.
    let mut h = headers(&[("cache-control", "max-age=60")]);
    h.insert("date", HeaderValue::from_str(&date(0)).unwrap());
    let e = CacheMetadata::new(StatusCode::OK, &h, &HeaderMap::new(), at(40), at(40));
    assert!(is_fresh(&e, 40 + 19));
    assert!(is_stale(&fresh_at(&e, &[], 40 + 21)));
    // Response delay counts: sent at 0, answered at 30, Age 0 → age 30 on arrival.
    let mut h = headers(&[("cache-control", "max-age=60")]);
    h.insert("date", HeaderValue::from_str(&date(30)).unwrap());
    let e = CacheMetadata::new(StatusCode::OK, &h, &HeaderMap::new(), at(0), at(30));
    assert!(is_fresh(&e, 30 + 29));
    assert!(is_stale(&fresh_at(&e, &[], 30 + 31)));
    assert_eq!(current_age(&e, at(40)), Duration::from_secs(40));
    assert_eq!(served_headers(&e, at(40)).get("age").unwrap(), "40");
}

#[test]
fn no_cache_and_must_revalidate() {
    let e = entry(&[
        ("cache-control", "no-cache, max-age=600"),
        ("etag", "\"v1\""),
    ]);
    match fresh_at(&e, &[], 1) {
        Freshness::Stale {
            revalidation_headers,
            must_revalidate,
        } => {
            assert_eq!(revalidation_headers.get("if-none-match").unwrap(), "\"v1\"");
            assert!(must_revalidate);
        }
        other => panic!("{other:?}"),
    }
    let e = entry(&[("pragma", "no-cache"), ("expires", &date(600))]);
    assert!(is_stale(&fresh_at(&e, &[], 1)));
    // must-revalidate: fresh while fresh, and max-stale cannot stretch it.
    let e = entry(&[("cache-control", "max-age=10, must-revalidate")]);
    assert!(is_fresh(&e, 5));
    let f = fresh_at(&e, &[("cache-control", "max-stale=1000")], 20);
    assert!(
        matches!(
            f,
            Freshness::Stale {
                must_revalidate: true,
                ..
            }
        ),
        "{f:?}"
    );
    let e = entry(&[("cache-control", "max-age=10")]);
    assert_eq!(
        fresh_at(&e, &[("cache-control", "max-stale=1000")], 20),
        Freshness::Fresh
    );
    assert!(matches!(
        fresh_at(&e, &[], 20),
        Freshness::Stale {
            must_revalidate: false,
            ..
        }
    ));
}

#[test]
fn request_directives() {
    let e = entry(&[
        ("cache-control", "max-age=600"),
        ("last-modified", &date(0)),
    ]);
    assert!(is_fresh(&e, 100));
    for req in [
        &[("cache-control", "no-cache")][..],
        &[("pragma", "no-cache")][..],
        &[("cache-control", "No-Cache")][..],
        &[("cache-control", "max-age=50")][..],
        &[("cache-control", "min-fresh=550")][..],
    ] {
        match fresh_at(&e, req, 100) {
            Freshness::Stale {
                revalidation_headers,
                ..
            } => assert_eq!(
                revalidation_headers
                    .get("if-modified-since")
                    .unwrap()
                    .to_str()
                    .unwrap(),
                date(0),
                "{req:?}"
            ),
            other => panic!("{req:?}: {other:?}"),
        }
    }
    assert_eq!(
        fresh_at(&e, &[("cache-control", "max-age=500")], 100),
        Freshness::Fresh
    );
}

#[test]
fn revalidation_headers() {
    let e = entry(&[("etag", "W/\"w\""), ("last-modified", &date(0))]);
    let Freshness::Stale {
        revalidation_headers: h,
        ..
    } = fresh_at(&e, &[], 1_000_000)
    else {
        panic!()
    };
    assert_eq!(h.get("if-none-match").unwrap(), "W/\"w\"");
    assert_eq!(
        h.get("if-modified-since").unwrap().to_str().unwrap(),
        date(0)
    );
    // No validators: nothing to send, a full response will replace it.
    let e = entry(&[("cache-control", "max-age=1")]);
    let Freshness::Stale {
        revalidation_headers: h,
        ..
    } = fresh_at(&e, &[], 10)
    else {
        panic!()
    };
    assert!(h.is_empty());
}

#[test]
fn must_not_use() {
    let e = entry(&[("cache-control", "max-age=600")]);
    assert_eq!(
        fresh_at(&e, &[("range", "bytes=0-1")], 1),
        Freshness::MustNotUse
    );
    assert_eq!(
        fresh_at(&e, &[("if-none-match", "\"x\"")], 1),
        Freshness::MustNotUse
    );
    let (u, h) = (url(), HeaderMap::new());
    assert_eq!(
        freshness(&e, &CacheRequest::new(&Method::POST, &u, &h), at(1)),
        Freshness::MustNotUse
    );
    // HEAD is answered from the GET entry.
    assert_eq!(
        freshness(&e, &CacheRequest::new(&Method::HEAD, &u, &h), at(1)),
        Freshness::Fresh
    );
    // Vary.
    let res = headers(&[
        ("cache-control", "max-age=600"),
        ("vary", "Accept-Language"),
    ]);
    let e = CacheMetadata::new(
        StatusCode::OK,
        &res,
        &headers(&[("accept-language", "en")]),
        at(0),
        at(0),
    );
    assert_eq!(
        fresh_at(&e, &[("accept-language", "en")], 1),
        Freshness::Fresh
    );
    assert_eq!(
        fresh_at(&e, &[("accept-language", "de")], 1),
        Freshness::MustNotUse
    );
    assert_eq!(fresh_at(&e, &[], 1), Freshness::MustNotUse);
    // A Host header in the request does not matter (the key holds the host).
    assert_eq!(
        fresh_at(
            &e,
            &[("accept-language", "en"), ("host", "example.test")],
            1
        ),
        Freshness::Fresh
    );
}

#[test]
fn merge_after_304() {
    let e = entry(&[
        ("cache-control", "max-age=10"),
        ("etag", "\"v1\""),
        ("content-length", "5"),
        ("content-encoding", "gzip"),
        ("x-old", "kept"),
    ]);
    let r = headers(&[
        ("cache-control", "max-age=100"),
        ("etag", "\"v1\""),
        ("date", &date(500)),
        ("content-length", "0"),
        ("set-cookie", "a=b"),
        ("connection", "close"),
    ]);
    let m = merge_304(&e, &r, at(499), at(500)).unwrap();
    assert_eq!(m.headers.get("cache-control").unwrap(), "max-age=100");
    assert_eq!(m.headers.get("content-length").unwrap(), "5");
    assert_eq!(m.headers.get("content-encoding").unwrap(), "gzip");
    assert_eq!(m.headers.get("x-old").unwrap(), "kept");
    assert!(m.headers.get("set-cookie").is_none());
    assert!(m.headers.get("connection").is_none());
    assert_eq!((m.request_time, m.response_time), (at(499), at(500)));
    // Fresh again, measured from the revalidation.
    let u = url();
    let h = HeaderMap::new();
    assert_eq!(
        freshness(&m, &CacheRequest::new(&Method::GET, &u, &h), at(590)),
        Freshness::Fresh
    );
    // Weak and strong forms of the same tag match; another tag does not.
    assert!(merge_304(&e, &headers(&[("etag", "W/\"v1\"")]), at(1), at(1)).is_some());
    assert!(merge_304(&e, &headers(&[("etag", "\"v2\"")]), at(1), at(1)).is_none());
    assert!(merge_304(&e, &HeaderMap::new(), at(1), at(1)).is_some());
}

#[test]
fn invalidation() {
    let u = Url::parse("http://example.test/items/7#top").unwrap();
    let res = headers(&[
        ("location", "/items/8"),
        ("content-location", "http://other.test/items/7"),
    ]);
    let got = invalidated_urls(&Method::POST, &u, StatusCode::CREATED, &res);
    let got: Vec<&str> = got.iter().map(Url::as_str).collect();
    assert_eq!(
        got,
        ["http://example.test/items/7", "http://example.test/items/8"]
    );
    for m in ["PUT", "DELETE", "PATCH", "PURGE"] {
        let m = Method::from_bytes(m.as_bytes()).unwrap();
        assert_eq!(
            invalidated_urls(&m, &u, StatusCode::OK, &HeaderMap::new()).len(),
            1
        );
    }
    for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
        assert!(invalidated_urls(&m, &u, StatusCode::OK, &res).is_empty());
    }
    // Errors invalidate nothing.
    assert!(
        invalidated_urls(&Method::POST, &u, StatusCode::INTERNAL_SERVER_ERROR, &res).is_empty()
    );
    let res = headers(&[("content-location", "7#x")]);
    assert_eq!(
        invalidated_urls(&Method::DELETE, &u, StatusCode::SEE_OTHER, &res).len(),
        1
    );
}

#[test]
fn stale_on_error() {
    assert!(may_serve_stale_on_error(&entry(&[(
        "cache-control",
        "max-age=1"
    )])));
    assert!(may_serve_stale_on_error(&entry(&[])));
    assert!(!may_serve_stale_on_error(&entry(&[(
        "cache-control",
        "max-age=1, must-revalidate"
    )])));
    assert!(!may_serve_stale_on_error(&entry(&[(
        "cache-control",
        "no-cache"
    )])));
    assert!(!may_serve_stale_on_error(&entry(&[("pragma", "no-cache")])));
}

#[test]
fn the_issue_dates_expire_as_they_should() {
    // Doubled spaces: invalid, so already expired.
    let e = entry(&[("expires", "Thu, 18  Aug  2050 02:01:18 GMT")]);
    assert!(is_stale(&fresh_at(&e, &[], 1)));
    // asctime with a day name that does not match the date: accepted.
    let e = entry(&[("expires", "Thu Aug  8 02:01:18 2050")]);
    assert!(is_fresh(&e, 1));
}

#[test]
fn stale_while_revalidate_window() {
    let e = entry(&[("cache-control", "max-age=10, stale-while-revalidate=20")]);
    let p = StoredPolicy::new(&e);
    let (u, h) = (url(), HeaderMap::new());
    let req = CacheRequest::new(&Method::GET, &u, &h);
    assert_eq!(p.freshness(&e, &req, at(9)), Freshness::Fresh);
    assert!(matches!(
        p.freshness(&e, &req, at(25)),
        Freshness::StaleWhileRevalidate { .. }
    ));
    assert!(matches!(
        p.freshness(&e, &req, at(31)),
        Freshness::Stale { .. }
    ));
    // must-revalidate wins; a request's max-age keeps it out of the window.
    let e = entry(&[(
        "cache-control",
        "max-age=10, must-revalidate, stale-while-revalidate=20",
    )]);
    assert!(is_stale(&fresh_at(&e, &[], 25)));
    let e = entry(&[("cache-control", "max-age=10, stale-while-revalidate=20")]);
    assert!(is_stale(&fresh_at(
        &e,
        &[("cache-control", "max-age=5")],
        25
    )));
}

#[test]
fn stale_if_error_window() {
    let none = HeaderMap::new();
    let p = StoredPolicy::new(&entry(&[(
        "cache-control",
        "max-age=10, stale-if-error=20",
    )]));
    assert!(p.may_serve_on_error(&none, false, at(30)));
    assert!(!p.may_serve_on_error(&none, false, at(31)));
    let asked = headers(&[("cache-control", "stale-if-error=100")]);
    assert!(p.may_serve_on_error(&asked, false, at(100)));
    // Without a window: Qt's fallback, however stale.
    let p = StoredPolicy::new(&entry(&[("cache-control", "max-age=10")]));
    assert!(p.may_serve_on_error(&none, false, at(1_000_000)));
    // Shared caches: proxy-revalidate and s-maxage forbid it.
    let p = StoredPolicy::new(&entry(&[("cache-control", "max-age=10, proxy-revalidate")]));
    assert!(p.may_serve_on_error(&none, false, at(30)));
    assert!(!p.may_serve_on_error(&none, true, at(30)));
    assert!(is_error_status(StatusCode::BAD_GATEWAY));
    assert!(!is_error_status(StatusCode::NOT_IMPLEMENTED));
}

#[test]
fn shared_caches_read_s_maxage_private_and_authorization() {
    let (u, none) = (url(), HeaderMap::new());
    let auth = headers(&[("authorization", "Bearer x")]);
    let e = entry(&[("cache-control", "max-age=0, s-maxage=60")]);
    let private_req = CacheRequest::new(&Method::GET, &u, &none);
    let shared_req = CacheRequest::new(&Method::GET, &u, &none).shared(true);
    assert!(is_stale(&freshness(&e, &private_req, at(1))));
    assert_eq!(freshness(&e, &shared_req, at(1)), Freshness::Fresh);
    let res = headers(&[("cache-control", "private, max-age=60")]);
    assert!(storable(&private_req, StatusCode::OK, &res));
    assert!(!storable(&shared_req, StatusCode::OK, &res));
    let authed = CacheRequest::new(&Method::GET, &u, &auth).shared(true);
    for (cc, ok) in [
        ("max-age=60", false),
        ("public, max-age=60", true),
        ("s-maxage=60", true),
        ("must-revalidate, max-age=60", true),
    ] {
        let res = headers(&[("cache-control", cc)]);
        assert_eq!(storable(&authed, StatusCode::OK, &res), ok, "{cc}");
    }
}
