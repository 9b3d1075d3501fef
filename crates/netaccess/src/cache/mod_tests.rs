//! Tests of `cache/mod.rs`.

use super::*;
use http::header::HeaderValue;
use http::StatusCode;

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

#[test]
#[cfg(feature = "disk-cache")] // digest_hex, variant_hex, open_if_matching
fn key_drops_fragment() {
    let url = Url::parse("http://h/p?q#frag").unwrap();
    let key = CacheKey::get(&url);
    assert_eq!(key.as_str(), "GET http://h/p?q");
    assert_eq!(
        key,
        CacheKey::new(&Method::GET, &Url::parse("http://h/p?q").unwrap())
    );
    assert_ne!(key, CacheKey::new(&Method::HEAD, &url));
    assert_eq!(digest_hex(key.as_str()).len(), 32);
}

#[test]
fn key_keeps_no_user_info_but_partitions_by_it() {
    let secret = SecretKey::generate();
    let plain = CacheKey::get(&Url::parse("http://h/p").unwrap());
    let carol = CacheKey::get(&Url::parse("http://carol:pw4cache99@h/p").unwrap());
    let dave = CacheKey::get(&Url::parse("http://dave@h/p").unwrap());
    assert_eq!(carol.as_str(), "GET http://h/p");
    assert_eq!(carol.url().as_str(), "http://h/p");
    assert!(!format!("{carol:?} {carol}").contains("pw4cache99"));
    let stored = [&plain, &carol, &dave].map(|k| secret.stored_key(k));
    assert_eq!(stored[0], "GET http://h/p");
    assert!(!stored[1].contains("pw4cache99") && !stored[1].contains("carol"));
    assert_ne!(stored[1], stored[2]);
    assert_ne!(stored[0], stored[1]);
    // Another cache's key gives other hashes.
    let other = SecretKey::generate();
    assert_ne!(other.stored_key(&carol), stored[1]);
}

#[test]
#[cfg(feature = "disk-cache")] // digest_hex, variant_hex, open_if_matching
fn credentials_are_sealed_and_matched_by_hash() {
    let secret = SecretKey::generate();
    let res = headers(&[("vary", "Authorization, Cookie, Accept-Language")]);
    let req = headers(&[
        ("authorization", "Basic YWxpY2U6czNjcmV0"),
        ("cookie", "sid=alice"),
        ("accept-language", "en"),
    ]);
    let now = SystemTime::now();
    let m = CacheMetadata::new(StatusCode::OK, &res, &req, now, now);
    let sealed = secret.seal(&m);
    let text = format!("{:?}", sealed.request_headers);
    assert!(
        !text.contains("YWxpY2U6czNjcmV0") && !text.contains("alice"),
        "{text}"
    );
    assert_eq!(sealed.request_headers["accept-language"], "en");
    // The same request matches and gets its own values back.
    assert_eq!(
        secret.open_if_matching(sealed.clone(), &req),
        Some(m.clone())
    );
    // Another user's credentials do not match.
    let bob = headers(&[
        ("authorization", "Basic Ym9iOnB3"),
        ("cookie", "sid=alice"),
        ("accept-language", "en"),
    ]);
    assert_eq!(secret.open_if_matching(sealed.clone(), &bob), None);
    let no_cookie = headers(&[
        ("authorization", "Basic YWxpY2U6czNjcmV0"),
        ("accept-language", "en"),
    ]);
    assert_eq!(secret.open_if_matching(sealed.clone(), &no_cookie), None);
    // A request presenting the stored hash itself does not match either.
    assert_eq!(
        secret.open_if_matching(sealed.clone(), &sealed.request_headers),
        None
    );
}

#[test]
fn vary_rules() {
    let res = headers(&[("vary", "Accept-Language"), ("vary", "accept-encoding ")]);
    let stored = headers(&[("accept-language", "en"), ("accept-encoding", "gzip, br")]);
    assert!(vary_matches(
        &stored,
        &res,
        &headers(&[
            ("accept-language", "en"),
            ("accept-encoding", "gzip,br"),
            ("user-agent", "x"),
        ])
    ));
    assert!(!vary_matches(
        &stored,
        &res,
        &headers(&[("accept-language", "de"), ("accept-encoding", "gzip, br"),])
    ));
    assert!(!vary_matches(
        &stored,
        &res,
        &headers(&[("accept-encoding", "gzip, br")])
    ));
    // Absent matches absent.
    let stored = headers(&[("accept-encoding", "gzip")]);
    assert!(vary_matches(
        &stored,
        &res,
        &headers(&[("accept-encoding", "gzip")])
    ));
    // No Vary: anything matches; Vary: * nothing.
    assert!(vary_matches(&HeaderMap::new(), &HeaderMap::new(), &stored));
    assert!(!vary_matches(
        &HeaderMap::new(),
        &headers(&[("vary", "*")]),
        &HeaderMap::new()
    ));
}

#[test]
#[cfg(feature = "disk-cache")] // digest_hex, variant_hex, open_if_matching
fn metadata_keeps_only_vary_request_headers_and_no_cookies() {
    let res = headers(&[
        ("vary", "accept-language"),
        ("set-cookie", "a=b"),
        ("connection", "keep-alive"),
        ("etag", "\"x\""),
    ]);
    let req = headers(&[("accept-language", "fr"), ("authorization", "secret")]);
    let now = SystemTime::now();
    let m = CacheMetadata::new(StatusCode::OK, &res, &req, now, now);
    assert_eq!(m.request_headers, headers(&[("accept-language", "fr")]));
    assert!(m.headers.get("set-cookie").is_none());
    assert!(m.headers.get("connection").is_none());
    assert!(m.headers.get("etag").is_some());
    assert!(m.matches_request(&headers(&[("accept-language", "fr")])));
    assert!(!m.matches_request(&headers(&[("accept-language", "en")])));
    let a = variant_hex(&m.vary().unwrap(), &req);
    let b = variant_hex(&m.vary().unwrap(), &headers(&[("accept-language", "en")]));
    assert_ne!(a, b);
    assert_eq!(
        a,
        variant_hex(&m.vary().unwrap(), &headers(&[("accept-language", "fr")]))
    );
}
