//! The HTTP cache through the manager, with the test server counting requests.

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::done;

#[cfg(feature = "disk-cache")]
use netaccess::DiskCache;
use netaccess::{
    Cache, CacheLoadControl, MemoryCache, NetworkAccessManager, NetworkError, Request,
};
use netaccess_testserver::{expected_bytes, TestServer};

fn cached_manager() -> (NetworkAccessManager, Arc<MemoryCache>) {
    let cache = Arc::new(MemoryCache::default());
    (
        NetworkAccessManager::builder()
            .cache(cache.clone())
            .build()
            .unwrap(),
        cache,
    )
}

fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn a_fresh_entry_answers_without_a_request() {
    let server = TestServer::http1().await;
    let (manager, _cache) = cached_manager();
    let url = server.url(&format!("/bytes/5000?cache_control={}", enc("max-age=60")));
    let first = manager.get(Request::new(&url));
    assert_eq!(
        first.bytes().await.unwrap().to_vec(),
        expected_bytes(0, 5000)
    );
    assert!(!first.source_is_from_cache());
    let second = manager.get(Request::new(&url));
    assert_eq!(
        second.bytes().await.unwrap().to_vec(),
        expected_bytes(0, 5000)
    );
    assert!(second.source_is_from_cache());
    assert_eq!(second.status_code(), Some(200));
    assert!(second.header("age").is_some());
    assert_eq!(server.requests_for("/bytes/5000"), 1);
    // HEAD is answered from the GET entry.
    let head = manager.head(Request::new(&url));
    assert!(head.bytes().await.unwrap().is_empty());
    assert!(head.source_is_from_cache());
    assert_eq!(server.requests_for("/bytes/5000"), 1);
}

#[tokio::test]
async fn a_stale_entry_is_revalidated_with_a_304() {
    let server = TestServer::http1().await;
    let (manager, _cache) = cached_manager();
    let url = server.url(&format!("/bytes/3000?cache_control={}", enc("no-cache")));
    manager.get(Request::new(&url)).bytes().await.unwrap();
    let again = manager.get(Request::new(&url));
    assert_eq!(
        again.bytes().await.unwrap().to_vec(),
        expected_bytes(0, 3000)
    );
    assert_eq!(
        again.status_code(),
        Some(200),
        "the 304 is merged, the stored response served"
    );
    assert!(
        !again.source_is_from_cache(),
        "a request reached the server"
    );
    assert_eq!(server.requests_for("/bytes/3000"), 2);
}

#[tokio::test]
async fn no_store_is_never_written_and_always_network_bypasses() {
    let server = TestServer::http1().await;
    let (manager, cache) = cached_manager();
    let url = server.url(&format!("/bytes/100?cache_control={}", enc("no-store")));
    manager.get(Request::new(&url)).bytes().await.unwrap();
    manager.get(Request::new(&url)).bytes().await.unwrap();
    assert_eq!(cache.size(), 0);
    assert_eq!(server.requests_for("/bytes/100"), 2);

    let url = server.url(&format!("/bytes/200?cache_control={}", enc("max-age=60")));
    manager.get(Request::new(&url)).bytes().await.unwrap();
    let bypass =
        manager.get(Request::new(&url).with_cache_load_control(CacheLoadControl::AlwaysNetwork));
    bypass.bytes().await.unwrap();
    assert!(!bypass.source_is_from_cache());
    assert_eq!(server.requests_for("/bytes/200"), 2);
    // cache_save_control(false) keeps a response out.
    let url = server.url(&format!("/bytes/300?cache_control={}", enc("max-age=60")));
    manager
        .get(Request::new(&url).with_cache_save_control(false))
        .bytes()
        .await
        .unwrap();
    manager.get(Request::new(&url)).bytes().await.unwrap();
    assert_eq!(server.requests_for("/bytes/300"), 2);
}

#[tokio::test]
async fn vary_keeps_one_entry_per_variant() {
    let server = TestServer::http1().await;
    let (manager, _cache) = cached_manager();
    let url = server.url(&format!(
        "/bytes/400?cache_control={}&vary=Accept-Language",
        enc("max-age=60")
    ));
    for lang in ["en", "fr", "en", "fr", "en"] {
        let reply = manager.get(Request::new(&url).with_header("Accept-Language", lang));
        reply.bytes().await.unwrap();
    }
    assert_eq!(server.requests_for("/bytes/400"), 2);
}

#[tokio::test]
async fn unsafe_methods_invalidate() {
    let server = TestServer::http1().await;
    let (manager, _cache) = cached_manager();
    let url = server.url(&format!("/bytes/500?cache_control={}", enc("max-age=60")));
    manager.get(Request::new(&url)).bytes().await.unwrap();
    manager.get(Request::new(&url)).bytes().await.unwrap();
    assert_eq!(server.requests_for("/bytes/500"), 1);
    manager
        .post(Request::new(&url), "change")
        .bytes()
        .await
        .unwrap();
    let after = manager.get(Request::new(&url));
    after.bytes().await.unwrap();
    assert!(!after.source_is_from_cache());
    assert_eq!(server.requests_for("/bytes/500"), 3);
}

#[tokio::test]
async fn always_cache_works_offline_and_misses_cleanly() {
    let server = TestServer::http1().await;
    let (manager, _cache) = cached_manager();
    let url = server.url(&format!("/bytes/600?cache_control={}", enc("max-age=0")));
    manager.get(Request::new(&url)).bytes().await.unwrap();
    server.shutdown();
    let offline =
        manager.get(Request::new(&url).with_cache_load_control(CacheLoadControl::AlwaysCache));
    assert_eq!(
        offline.bytes().await.unwrap().to_vec(),
        expected_bytes(0, 600),
        "stale is fine offline"
    );
    assert!(offline.source_is_from_cache());
    let stale =
        manager.get(Request::new(&url).with_cache_load_control(CacheLoadControl::PreferCache));
    assert_eq!(stale.bytes().await.unwrap().len(), 600);
    let miss = manager.get(
        Request::new(server.url("/bytes/601"))
            .with_cache_load_control(CacheLoadControl::AlwaysCache),
    );
    done(&miss).await;
    assert_eq!(
        miss.error().map(|e| e.kind()),
        Some(NetworkError::ContentNotFoundError)
    );
}

#[tokio::test]
async fn an_aborted_download_leaves_no_entry() {
    let server = TestServer::http1().await;
    let (manager, cache) = cached_manager();
    let big = server.url(&format!(
        "/bytes/20000000?cache_control={}",
        enc("max-age=60")
    ));
    let reply = manager.get(Request::new(&big));
    reply.set_read_buffer_size(64 * 1024);
    tokio::time::sleep(Duration::from_millis(200)).await;
    reply.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cache.size(), 0);
    let next =
        manager.get(Request::new(&big).with_cache_load_control(CacheLoadControl::AlwaysCache));
    done(&next).await;
    assert_eq!(
        next.error().map(|e| e.kind()),
        Some(NetworkError::ContentNotFoundError)
    );
}

#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn encoded_bodies_are_stored_encoded_and_decoded_on_a_hit() {
    let server = TestServer::http1().await;
    let dir = std::env::temp_dir().join(format!("netaccess-cache-{}", std::process::id()));
    let disk = Arc::new(DiskCache::new(&dir).unwrap());
    let manager = NetworkAccessManager::builder()
        .cache(disk.clone())
        .build()
        .unwrap();
    let url = server.url(&format!("/gzip/200000?cache_control={}", enc("max-age=60")));
    let first = manager.get(Request::new(&url));
    assert_eq!(
        first.bytes().await.unwrap().to_vec(),
        expected_bytes(0, 200_000)
    );
    let hit = manager.get(Request::new(&url));
    assert_eq!(
        hit.bytes().await.unwrap().to_vec(),
        expected_bytes(0, 200_000)
    );
    assert!(hit.source_is_from_cache());
    assert!(
        hit.header("content-encoding").is_none(),
        "decoded on the way out"
    );
    assert_eq!(server.requests_for("/gzip/200000"), 1);
    assert!(
        disk.size() < 200_000,
        "stored as received (gzip): {}",
        disk.size()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_5xx_on_revalidation_serves_the_stale_copy() {
    let server = TestServer::http1().await;
    let (manager, _cache) = cached_manager();
    let url = server.url(&format!(
        "/bytes/800?cache_control={}&fail_revalidation=1",
        enc("max-age=0")
    ));
    manager.get(Request::new(&url)).bytes().await.unwrap();
    let fallback = manager.get(Request::new(&url));
    assert_eq!(
        fallback.bytes().await.unwrap().to_vec(),
        expected_bytes(0, 800)
    );
    assert_eq!(fallback.status_code(), Some(200));
    assert_eq!(fallback.error().map(|e| e.to_string()), None);
    assert_eq!(
        server.requests_for("/bytes/800"),
        2,
        "the revalidation reached the server"
    );
    // must-revalidate forbids the fallback: the 503 is the reply.
    let strict = server.url(&format!(
        "/bytes/801?cache_control={}&fail_revalidation=1",
        enc("max-age=0, must-revalidate")
    ));
    manager.get(Request::new(&strict)).bytes().await.unwrap();
    let failed = manager.get(Request::new(&strict));
    done(&failed).await;
    assert_eq!(failed.status_code(), Some(503));
}
