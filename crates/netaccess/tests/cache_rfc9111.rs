//! RFC 9111 (and RFC 5861) behaviours of the HTTP cache through the manager, each against the
//! test server's `/respond/ID` route, which answers with the headers, status and body its
//! query describes (different per request number) and counts the requests that reach it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use netaccess::cache::CacheKey;
use netaccess::url::Url;
use netaccess::{Cache, MemoryCache, NetworkAccessManager, Reply, Request};
use netaccess_testserver::TestServer;

fn manager(cache: Arc<MemoryCache>) -> NetworkAccessManager {
    NetworkAccessManager::builder()
        .cache(cache)
        .build()
        .unwrap()
}

fn private() -> (NetworkAccessManager, Arc<MemoryCache>) {
    let cache = Arc::new(MemoryCache::default());
    (manager(cache.clone()), cache)
}

fn shared() -> (NetworkAccessManager, Arc<MemoryCache>) {
    let cache = Arc::new(MemoryCache::default().shared(true));
    (manager(cache.clone()), cache)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/respond/ID` with these parameters (see the test server's route table).
fn respond(server: &TestServer, id: &str, params: &[(&str, &str)]) -> (String, String) {
    let query: Vec<String> = params
        .iter()
        .map(|(n, v)| format!("{}={}", enc(n), enc(v)))
        .collect();
    let path = format!("/respond/{id}");
    (server.url(&format!("{path}?{}", query.join("&"))), path)
}

async fn get(manager: &NetworkAccessManager, request: Request) -> (Reply, String) {
    let reply = manager.get(request);
    let body = reply.bytes().await.unwrap_or_default();
    (reply.clone(), String::from_utf8_lossy(&body).into_owned())
}

/// Waits (bounded by `support::LIMIT`) until `check` holds: for what happens in the
/// background, such as a revalidation after a stale-while-revalidate hit.
async fn until(mut check: impl FnMut() -> bool) {
    tokio::time::timeout(support::LIMIT, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition within the limit");
}

fn hdr(reply: &Reply, name: &str) -> Option<String> {
    reply
        .header(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn stored_body(cache: &MemoryCache, url: &str) -> Option<String> {
    let key = CacheKey::get(&Url::parse(url).unwrap());
    let headers = netaccess::http::HeaderMap::new();
    let entry = futures_util::FutureExt::now_or_never(cache.lookup(&key, &headers))??;
    Some(String::from_utf8_lossy(entry.body.as_bytes()?).into_owned())
}

#[tokio::test]
async fn an_age_list_counts_its_first_value() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, path) = respond(
        &server,
        "age",
        &[
            ("cache-control", "max-age=3600"),
            ("age", "7200, 0"),
            ("body", "x"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, _) = get(&m, Request::new(&url)).await;
    assert!(
        !again.source_is_from_cache(),
        "Age 7200 > max-age 3600: stale"
    );
    assert_eq!(server.requests_for(&path), 2);
}

#[tokio::test]
async fn a_malformed_expires_means_already_expired() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, path) = respond(
        &server,
        "bad-expires",
        &[("expires", "Thu, 18  Aug  2050 02:01:18 GMT")],
    );
    get(&m, Request::new(&url)).await;
    let (again, _) = get(&m, Request::new(&url)).await;
    assert!(!again.source_is_from_cache());
    assert_eq!(server.requests_for(&path), 2);
    // The same date written correctly is fresh.
    let (url, path) = respond(
        &server,
        "good-expires",
        &[("expires", "Thu, 18 Aug 2050 02:01:18 GMT")],
    );
    get(&m, Request::new(&url)).await;
    assert!(get(&m, Request::new(&url)).await.0.source_is_from_cache());
    assert_eq!(server.requests_for(&path), 1);
}

#[tokio::test]
async fn obsolete_date_forms_are_understood() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    for (id, expires) in [
        ("asctime", "Thu Aug  8 02:01:18 2050"),
        ("rfc850", "Monday, 08-Aug-50 02:01:18 GMT"),
    ] {
        let (url, path) = respond(&server, id, &[("expires", expires), ("body", id)]);
        get(&m, Request::new(&url)).await;
        let (again, body) = get(&m, Request::new(&url)).await;
        assert!(again.source_is_from_cache(), "{expires}");
        assert_eq!(body, id);
        assert_eq!(server.requests_for(&path), 1);
    }
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_and_revalidates_in_the_background() {
    let server = TestServer::http1().await;
    let (m, cache) = private();
    // Stored 9 s stale (Age 10, max-age 1), inside a 60 s window.
    let (url, path) = respond(
        &server,
        "swr",
        &[
            ("cache-control", "max-age=1, stale-while-revalidate=60"),
            ("age", "10"),
            ("body", "one"),
            ("2+:body", "two"),
            ("2+:age", "0"),
            ("2+:cache-control", "max-age=3600"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (stale, body) = get(&m, Request::new(&url)).await;
    assert!(stale.source_is_from_cache());
    assert_eq!(body, "one");
    until(|| stored_body(&cache, &url).as_deref() == Some("two")).await;
    assert_eq!(server.requests_for(&path), 2);
    let (fresh, body) = get(&m, Request::new(&url)).await;
    assert!(fresh.source_is_from_cache());
    assert_eq!(body, "two");
    assert_eq!(server.requests_for(&path), 2);
}

#[tokio::test]
async fn stale_while_revalidate_is_never_used_after_its_window() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    // 99 s stale, window 60 s.
    let (url, path) = respond(
        &server,
        "swr-late",
        &[
            ("cache-control", "max-age=1, stale-while-revalidate=60"),
            ("age", "100"),
            ("body", "one"),
            ("2+:body", "two"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, body) = get(&m, Request::new(&url)).await;
    assert!(!again.source_is_from_cache());
    assert_eq!(body, "two");
    assert_eq!(server.requests_for(&path), 2);
}

#[tokio::test]
async fn stale_if_error_serves_stale_inside_its_window_only() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, _) = respond(
        &server,
        "sie",
        &[
            ("cache-control", "max-age=1, stale-if-error=60"),
            ("age", "10"),
            ("body", "one"),
            ("2+:status", "503"),
            ("2+:body", "down"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, body) = get(&m, Request::new(&url)).await;
    assert_eq!((again.status_code(), body.as_str()), (Some(200), "one"));
    // Outside the window the error is delivered.
    let (url, _) = respond(
        &server,
        "sie-late",
        &[
            ("cache-control", "max-age=1, stale-if-error=60"),
            ("age", "100"),
            ("body", "one"),
            ("2+:status", "503"),
            ("2+:body", "down"),
            ("2+:cache-control", "no-store"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, body) = get(&m, Request::new(&url)).await;
    assert_eq!((again.status_code(), body.as_str()), (Some(503), "down"));
    // A request's own stale-if-error widens the window.
    let request = Request::new(&url).with_header("Cache-Control", "stale-if-error=1000");
    let (again, body) = get(&m, request).await;
    assert_eq!((again.status_code(), body.as_str()), (Some(200), "one"));
}

#[tokio::test]
async fn stale_if_error_covers_a_connection_that_fails() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, _) = respond(
        &server,
        "sie-reset",
        &[
            ("cache-control", "max-age=1, stale-if-error=60"),
            ("age", "10"),
            ("body", "one"),
            ("2+:fail", "reset"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, body) = get(&m, Request::new(&url)).await;
    assert!(again.error().is_none());
    assert_eq!(body, "one");
    assert!(again.source_is_from_cache());
    // must-revalidate forbids it: the failure is reported.
    let (url, _) = respond(
        &server,
        "sie-reset-mr",
        &[
            (
                "cache-control",
                "max-age=1, must-revalidate, stale-if-error=60",
            ),
            ("age", "10"),
            ("body", "one"),
            ("2+:fail", "reset"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, _) = get(&m, Request::new(&url)).await;
    assert!(again.error().is_some());
}

#[tokio::test]
async fn qt_stale_on_5xx_fallback_is_stale_if_error_without_a_window() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, _) = respond(
        &server,
        "qt-fallback",
        &[
            ("cache-control", "max-age=1"),
            ("age", "100000"),
            ("body", "one"),
            ("2+:status", "500"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, body) = get(&m, Request::new(&url)).await;
    assert_eq!((again.status_code(), body.as_str()), (Some(200), "one"));
    // 501 is not an error stale-if-error covers: delivered as is.
    let (url, _) = respond(
        &server,
        "qt-501",
        &[
            ("cache-control", "max-age=1"),
            ("age", "10"),
            ("body", "one"),
            ("2+:status", "501"),
            ("2+:cache-control", "no-store"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, _) = get(&m, Request::new(&url)).await;
    assert_eq!(again.status_code(), Some(501));
}

#[tokio::test]
async fn a_200_with_content_range_is_stored_and_served() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, path) = respond(
        &server,
        "cr200",
        &[
            ("cache-control", "max-age=3600"),
            ("content-range", "bytes 0-4/5"),
            ("body", "01234"),
        ],
    );
    get(&m, Request::new(&url)).await;
    let (again, body) = get(&m, Request::new(&url)).await;
    assert!(again.source_is_from_cache());
    assert_eq!(body, "01234");
    assert_eq!(hdr(&again, "content-range").as_deref(), Some("bytes 0-4/5"));
    assert_eq!(server.requests_for(&path), 1);
}

#[tokio::test]
async fn ranges_are_cut_from_a_stored_complete_response() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, path) = respond(
        &server,
        "ranges",
        &[("cache-control", "max-age=3600"), ("body", "0123456789A")],
    );
    get(&m, Request::new(&url)).await;
    for (range, text, content_range) in [
        ("bytes=0-1", "01", "bytes 0-1/11"),
        ("bytes=-1", "A", "bytes 10-10/11"),
        ("bytes=5-", "56789A", "bytes 5-10/11"),
        ("bytes=3-100", "3456789A", "bytes 3-10/11"),
    ] {
        let (reply, body) = get(&m, Request::new(&url).with_header("Range", range)).await;
        assert!(reply.source_is_from_cache(), "{range}");
        assert_eq!(reply.status_code(), Some(206), "{range}");
        assert_eq!(body, text, "{range}");
        assert_eq!(hdr(&reply, "content-range").as_deref(), Some(content_range));
        assert_eq!(
            hdr(&reply, "content-length").as_deref(),
            Some(text.len().to_string().as_str())
        );
    }
    assert_eq!(server.requests_for(&path), 1);
    // Several ranges, or an unsatisfiable one, are the server's to answer.
    get(&m, Request::new(&url).with_header("Range", "bytes=0-1,3-4")).await;
    get(&m, Request::new(&url).with_header("Range", "bytes=20-")).await;
    assert_eq!(server.requests_for(&path), 3);
}

#[tokio::test]
async fn partial_responses_are_stored_reused_and_combined() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    partial_responses(&server, &m, "partial").await;
}

#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn a_disk_cache_stores_reuses_and_combines_partial_responses() {
    let server = TestServer::http1().await;
    let dir = support::TempDir::new("partial-disk");
    let disk = Arc::new(netaccess::DiskCache::new(&dir.0).unwrap());
    let m = NetworkAccessManager::builder().cache(disk).build().unwrap();
    partial_responses(&server, &m, "partial-disk").await;
}

async fn partial_responses(server: &TestServer, m: &NetworkAccessManager, id: &str) {
    let (url, path) = respond(
        server,
        id,
        &[
            ("cache-control", "max-age=3600"),
            ("etag", "\"r1\""),
            ("ranges", "1"),
            ("body", "0123456789"),
            ("1:x-first", "kept"),
        ],
    );
    let (first, body) = get(m, Request::new(&url).with_header("Range", "bytes=0-4")).await;
    assert_eq!((first.status_code(), body.as_str()), (Some(206), "01234"));
    // Inside the stored part: from the cache.
    let (inside, body) = get(m, Request::new(&url).with_header("Range", "bytes=2-3")).await;
    assert!(inside.source_is_from_cache());
    assert_eq!((inside.status_code(), body.as_str()), (Some(206), "23"));
    assert_eq!(
        hdr(&inside, "content-range").as_deref(),
        Some("bytes 2-3/10")
    );
    // A part alone cannot answer a request for everything.
    assert_eq!(server.requests_for(&path), 1);
    // The rest arrives as another 206 and completes the stored response.
    let (rest, body) = get(m, Request::new(&url).with_header("Range", "bytes=5-")).await;
    assert_eq!((rest.status_code(), body.as_str()), (Some(206), "56789"));
    assert_eq!(server.requests_for(&path), 2);
    let (whole, body) = get(m, Request::new(&url)).await;
    assert!(whole.source_is_from_cache());
    assert_eq!(
        (whole.status_code(), body.as_str()),
        (Some(200), "0123456789")
    );
    assert!(whole.header("content-range").is_none());
    assert_eq!(hdr(&whole, "content-length").as_deref(), Some("10"));
    // A header field of the first part that the second did not carry is kept.
    assert_eq!(hdr(&whole, "x-first").as_deref(), Some("kept"));
    assert_eq!(server.requests_for(&path), 2);
}

#[tokio::test]
async fn a_partial_response_alone_is_not_served_for_the_whole() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, path) = respond(
        &server,
        "partial-only",
        &[
            ("cache-control", "max-age=3600"),
            ("etag", "\"r1\""),
            ("ranges", "1"),
            ("body", "0123456789"),
        ],
    );
    get(&m, Request::new(&url).with_header("Range", "bytes=-5")).await;
    let (whole, body) = get(&m, Request::new(&url)).await;
    assert!(!whole.source_is_from_cache());
    assert_eq!(
        (whole.status_code(), body.as_str()),
        (Some(200), "0123456789")
    );
    assert_eq!(server.requests_for(&path), 2);
    // The complete response replaced the part; ranges now come from it.
    let (part, body) = get(&m, Request::new(&url).with_header("Range", "bytes=-5")).await;
    assert!(part.source_is_from_cache());
    assert_eq!(body, "56789");
}

#[tokio::test]
async fn error_statuses_with_explicit_freshness_are_reused() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    for status in [299u16, 400, 499, 500, 502, 503, 504, 599] {
        let id = format!("status-{status}");
        let status_text = status.to_string();
        let (url, path) = respond(
            &server,
            &id,
            &[
                ("status", status_text.as_str()),
                ("cache-control", "max-age=3600"),
                ("body", "e"),
            ],
        );
        get(&m, Request::new(&url)).await;
        let (again, _) = get(&m, Request::new(&url)).await;
        assert!(again.source_is_from_cache(), "{status}");
        assert_eq!(again.status_code(), Some(status));
        assert_eq!(server.requests_for(&path), 1, "{status}");
    }
    // Without explicit freshness a 500 is not stored.
    let (url, path) = respond(&server, "status-500-plain", &[("status", "500")]);
    get(&m, Request::new(&url)).await;
    get(&m, Request::new(&url)).await;
    assert_eq!(server.requests_for(&path), 2);
}

#[tokio::test]
async fn set_cookie_is_never_replayed_from_the_cache() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, _) = respond(
        &server,
        "cookie",
        &[
            ("cache-control", "max-age=3600"),
            ("set-cookie", "session=secret"),
            ("body", "c"),
        ],
    );
    let (first, _) = get(&m, Request::new(&url)).await;
    assert!(first.header("set-cookie").is_some());
    let (again, _) = get(&m, Request::new(&url)).await;
    assert!(again.source_is_from_cache());
    assert!(again.header("set-cookie").is_none());
}

#[tokio::test]
async fn a_shared_cache_uses_s_maxage_and_a_private_one_ignores_it() {
    let server = TestServer::http1().await;
    for (shared_mode, expected_requests) in [(true, 1), (false, 2)] {
        let (m, _) = if shared_mode { shared() } else { private() };
        let id = format!("s-maxage-{shared_mode}");
        let (url, path) = respond(
            &server,
            &id,
            &[("cache-control", "max-age=0, s-maxage=3600"), ("body", "s")],
        );
        get(&m, Request::new(&url)).await;
        get(&m, Request::new(&url)).await;
        assert_eq!(
            server.requests_for(&path),
            expected_requests,
            "shared {shared_mode}"
        );
    }
}

#[tokio::test]
async fn a_shared_cache_never_stores_private_responses() {
    let server = TestServer::http1().await;
    for (shared_mode, expected_requests) in [(true, 2), (false, 1)] {
        let (m, cache) = if shared_mode { shared() } else { private() };
        let id = format!("private-{shared_mode}");
        let (url, path) = respond(
            &server,
            &id,
            &[("cache-control", "private, max-age=3600"), ("body", "p")],
        );
        get(&m, Request::new(&url)).await;
        get(&m, Request::new(&url)).await;
        assert_eq!(
            server.requests_for(&path),
            expected_requests,
            "shared {shared_mode}"
        );
        assert_eq!(cache.is_empty(), shared_mode);
    }
}

#[tokio::test]
async fn a_shared_cache_stores_authorized_responses_only_when_allowed() {
    let server = TestServer::http1().await;
    let (m, _) = shared();
    for (cc, reused) in [
        ("max-age=3600", false),
        ("public, max-age=3600", true),
        ("s-maxage=3600", true),
        ("must-revalidate, max-age=3600", true),
    ] {
        let id = format!("auth-{}", enc(cc));
        let (url, path) = respond(&server, &id, &[("cache-control", cc), ("body", "a")]);
        let request = || Request::new(&url).with_header("Authorization", "Bearer t");
        get(&m, request()).await;
        let (again, _) = get(&m, request()).await;
        assert_eq!(again.source_is_from_cache(), reused, "{cc}");
        assert_eq!(
            server.requests_for(&path),
            if reused { 1 } else { 2 },
            "{cc}"
        );
    }
    // A private cache stores it whatever the response says.
    let (m, _) = private();
    let (url, path) = respond(
        &server,
        "auth-private",
        &[("cache-control", "max-age=3600")],
    );
    let request = || Request::new(&url).with_header("Authorization", "Bearer t");
    get(&m, request()).await;
    assert!(get(&m, request()).await.0.source_is_from_cache());
    assert_eq!(server.requests_for(&path), 1);
}

#[tokio::test]
async fn a_shared_cache_honors_proxy_revalidate() {
    let server = TestServer::http1().await;
    for (shared_mode, served_stale) in [(true, false), (false, true)] {
        let (m, _) = if shared_mode { shared() } else { private() };
        let id = format!("proxy-revalidate-{shared_mode}");
        let (url, _) = respond(
            &server,
            &id,
            &[
                ("cache-control", "max-age=1, proxy-revalidate"),
                ("age", "10"),
                ("body", "one"),
                ("2+:status", "503"),
            ],
        );
        get(&m, Request::new(&url)).await;
        let (again, _) = get(&m, Request::new(&url)).await;
        let expected = if served_stale { 200 } else { 503 };
        assert_eq!(again.status_code(), Some(expected), "shared {shared_mode}");
    }
}

/// A hit needs no task: a memory hit, and a disk hit on a small entry read before, are
/// delivered and finished before `get()` returns.
#[tokio::test]
async fn a_hit_finishes_inside_get() {
    let server = TestServer::http1().await;
    let (url, path) = respond(
        &server,
        "inline",
        &[("cache-control", "max-age=3600"), ("body", "inline")],
    );
    let (m, _) = private();
    get(&m, Request::new(&url)).await;
    let hit = m.get(Request::new(&url));
    assert!(hit.is_finished());
    assert_eq!(&hit.bytes().await.unwrap()[..], b"inline");
    #[cfg(feature = "disk-cache")]
    {
        let dir = support::TempDir::new("inline-hit");
        let disk = Arc::new(netaccess::DiskCache::new(&dir.0).unwrap());
        let m = NetworkAccessManager::builder().cache(disk).build().unwrap();
        get(&m, Request::new(&url)).await;
        get(&m, Request::new(&url)).await; // read once from the file, kept parsed
        let hit = m.get(Request::new(&url));
        assert!(hit.is_finished());
        assert!(hit.source_is_from_cache());
        assert_eq!(&hit.bytes().await.unwrap()[..], b"inline");
    }
    assert_eq!(server.requests_for(&path), 2);
}

/// A `finished` slot that fetches the next (cached) page from inside an inline hit nests
/// requests; the nesting is bounded (the rest are spawned), so a long chain of hits neither
/// overflows the stack nor loses a reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_hits_started_from_slots_does_not_grow_the_stack() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, path) = respond(
        &server,
        "chain",
        &[("cache-control", "max-age=3600"), ("body", "c")],
    );
    get(&m, Request::new(&url)).await;
    const CHAIN: usize = 20_000;
    let count = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let done_tx = std::sync::Mutex::new(Some(done_tx));
    let weak = m.clone();
    let c = count.clone();
    let next_url = url.clone();
    let _connection = m.finished().connect(move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        if n < CHAIN {
            let _ = weak.get(Request::new(&next_url));
        } else if let Some(tx) = done_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
    });
    let _ = m.get(Request::new(&url));
    tokio::time::timeout(support::LIMIT, done_rx)
        .await
        .expect("the chain ends")
        .unwrap();
    assert!(count.load(Ordering::SeqCst) >= CHAIN);
    assert_eq!(server.requests_for(&path), 1);
}

/// A stored first part is completed by asking for the rest only (`Range: bytes=5-` with
/// `If-Range`), and the whole is served and stored.
#[tokio::test]
async fn a_stored_first_part_is_completed_with_the_rest_only() {
    let server = TestServer::http1().await;
    let (m, _) = private();
    let (url, path) = respond(
        &server,
        "complete",
        &[
            ("cache-control", "max-age=3600"),
            ("etag", "\"c1\""),
            ("ranges", "1"),
            ("body", "0123456789"),
        ],
    );
    let (part, body) = get(&m, Request::new(&url).with_header("Range", "bytes=0-4")).await;
    assert_eq!((part.status_code(), body.as_str()), (Some(206), "01234"));
    let (whole, body) = get(&m, Request::new(&url)).await;
    assert_eq!(
        (whole.status_code(), body.as_str()),
        (Some(200), "0123456789")
    );
    assert!(
        !whole.source_is_from_cache(),
        "the server was asked for the rest"
    );
    assert_eq!(hdr(&whole, "x-saw-range").as_deref(), Some("bytes=5-"));
    assert_eq!(hdr(&whole, "content-length").as_deref(), Some("10"));
    assert!(hdr(&whole, "content-range").is_none());
    assert_eq!(server.requests_for(&path), 2);
    let (again, body) = get(&m, Request::new(&url)).await;
    assert!(again.source_is_from_cache());
    assert_eq!(body, "0123456789");
    assert_eq!(server.requests_for(&path), 2);
    // A weak validator: the part cannot be completed, the whole is fetched.
    let (url, path) = respond(
        &server,
        "complete-weak",
        &[
            ("cache-control", "max-age=3600"),
            ("etag", "W/\"c1\""),
            ("ranges", "1"),
            ("body", "0123456789"),
        ],
    );
    get(&m, Request::new(&url).with_header("Range", "bytes=0-4")).await;
    let (whole, body) = get(&m, Request::new(&url)).await;
    assert_eq!(
        (whole.status_code(), body.as_str()),
        (Some(200), "0123456789")
    );
    assert!(hdr(&whole, "x-saw-range").is_none());
    assert_eq!(server.requests_for(&path), 2);
}
