//! Inspecting and controlling a cache: listing its entries, removing one URL or every URL
//! under a prefix, for a `MemoryCache` and a `DiskCache` filled through the manager from the
//! test server.

mod support;

use std::sync::Arc;

use netaccess::cache::CacheKey;
use netaccess::url::Url;
use netaccess::{Cache, MemoryCache, NetworkAccessManager, Request};
use netaccess_testserver::TestServer;

async fn fill_and_control(cache: Arc<dyn Cache>) {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .cache(cache.clone())
        .build()
        .unwrap();
    let paths = [
        "/respond/site/a",
        "/respond/site/b",
        "/respond/site/deep/c",
        "/respond/other",
    ];
    for path in paths {
        let url = server.url(&format!("{path}?cache-control=max-age%3D3600&body=x"));
        manager.get(Request::new(&url)).bytes().await.unwrap();
    }
    // With user info: listed under its URL without it, never showing it.
    let secret = server
        .url("/respond/site/private?cache-control=max-age%3D3600")
        .replace("http://", "http://user:hunter2@");
    manager.get(Request::new(&secret)).bytes().await.unwrap();

    let entries = cache.entries().await;
    assert_eq!(entries.len(), 5);
    for e in &entries {
        assert!(!e.key.contains("hunter2"), "{}", e.key);
        assert_eq!(e.metadata.status, 200);
        assert!(e.url().is_some());
    }
    let base = server.url("/respond/");
    assert!(entries
        .iter()
        .any(|e| e.url_text().starts_with(&format!("{base}site/private"))));
    let private = entries
        .iter()
        .find(|e| e.url_text().contains("/site/private"))
        .unwrap();
    assert!(private.key.contains(" userinfo="));

    // One URL.
    let a = Url::parse(&server.url("/respond/site/a?cache-control=max-age%3D3600&body=x")).unwrap();
    assert!(cache.remove(&CacheKey::get(&a)).await);
    assert_eq!(cache.entries().await.len(), 4);
    // A prefix: everything under /respond/site/, the user-info one included.
    assert_eq!(cache.remove_prefix(&format!("{base}site/")).await, 3);
    let left: Vec<String> = cache
        .entries()
        .await
        .iter()
        .map(|e| e.url_text().to_owned())
        .collect();
    assert_eq!(left.len(), 1);
    assert!(left[0].contains("/respond/other"));
    assert_eq!(cache.remove_prefix("http://nowhere.test/").await, 0);
    // What was removed is fetched again.
    let c = server.url("/respond/site/deep/c?cache-control=max-age%3D3600&body=x");
    let again = manager.get(Request::new(&c));
    again.bytes().await.unwrap();
    assert!(!again.source_is_from_cache());
    assert_eq!(server.requests_for("/respond/site/deep/c"), 2);
}

#[tokio::test]
async fn a_memory_cache_lists_and_removes_by_url_and_prefix() {
    fill_and_control(Arc::new(MemoryCache::default())).await;
}

#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn a_disk_cache_lists_and_removes_by_url_and_prefix() {
    let dir = support::TempDir::new("inspect");
    fill_and_control(Arc::new(netaccess::DiskCache::new(&dir.0).unwrap())).await;
}

/// Qt's per-entry metadata: attributes the application sets with `update_metadata` stay with
/// the entry (across a 304 revalidation, and on disk across instances); `save_to_disk(false)`
/// takes an entry off the disk and leaves a memory cache alone.
async fn attributes_and_save_to_disk(cache: Arc<dyn Cache>, reopen: impl Fn() -> Arc<dyn Cache>) {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .cache(cache.clone())
        .build()
        .unwrap();
    let url = server.url("/respond/attr?cache-control=max-age%3D0&etag=%22a%22&validate=1&body=x");
    manager.get(Request::new(&url)).bytes().await.unwrap();
    let key = CacheKey::get(&Url::parse(&url).unwrap());
    let none = netaccess::http::HeaderMap::new();
    let entry = cache.lookup(&key, &none).await.unwrap();
    let mut metadata = entry.metadata;
    assert!(metadata.save_to_disk);
    assert!(metadata.attributes.is_empty());
    metadata.attributes.insert("app.tag".into(), "v1".into());
    assert!(cache.update_metadata(&key, metadata.clone()).await);
    // A revalidation (max-age=0): the 304 refreshes the entry and keeps the attributes.
    let again = manager.get(Request::new(&url));
    assert_eq!(&again.bytes().await.unwrap()[..], b"x");
    assert_eq!(server.requests_for("/respond/attr"), 2);
    let listed = reopen().entries().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]
            .metadata
            .attributes
            .get("app.tag")
            .map(String::as_str),
        Some("v1")
    );
    // saveToDisk(false).
    let mut metadata = cache.lookup(&key, &none).await.unwrap().metadata;
    metadata.save_to_disk = false;
    assert!(cache.update_metadata(&key, metadata).await);
}

#[tokio::test]
async fn a_memory_cache_keeps_attributes_and_ignores_save_to_disk() {
    let cache = Arc::new(MemoryCache::default());
    let same = cache.clone();
    attributes_and_save_to_disk(cache.clone(), move || same.clone()).await;
    assert_eq!(cache.entries().await.len(), 1);
}

#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn a_disk_cache_keeps_attributes_and_honors_save_to_disk() {
    let dir = support::TempDir::new("attributes");
    let path = dir.0.clone();
    let cache = Arc::new(netaccess::DiskCache::new(&dir.0).unwrap());
    let reopen = move || -> Arc<dyn Cache> { Arc::new(netaccess::DiskCache::new(&path).unwrap()) };
    attributes_and_save_to_disk(cache.clone(), reopen).await;
    assert!(cache.entries().await.is_empty());
    // A response stored with save_to_disk(false) is not written at all.
    let url = netaccess::url::Url::parse("http://cache.test/never").unwrap();
    let now = std::time::SystemTime::now();
    let mut m = netaccess::cache::CacheMetadata::new(
        netaccess::http::StatusCode::OK,
        &netaccess::http::HeaderMap::new(),
        &netaccess::http::HeaderMap::new(),
        now,
        now,
    );
    m.save_to_disk = false;
    let mut w = cache.begin_store(&CacheKey::get(&url), m);
    let _ = w.write(b"x");
    assert!(w.commit().await.is_err());
    assert!(cache.entries().await.is_empty());
}
