//! Forged disk-cache entries (issue 10, fix 5): files with valid checksums but absurd content
//! (30,000 or 40,000 headers, lengths near 2^64, lengths past the end of the file or of the
//! metadata, a 100 KB key, thousands of `Vary` names) are misses and are removed, with no
//! panic and no allocation sized from the file; through the manager the request simply goes
//! to the network.
//!
//! The forgeries follow the documented format (`src/cache/format.rs`): a 40-byte header with
//! lengths and CRC-32s, the metadata, the body. The CRC-32 is computed here.
#![cfg(feature = "disk-cache")]

mod support;

use support::TempDir;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use netaccess::cache::{CacheKey, CacheMetadata};
use netaccess::http::{HeaderMap, HeaderValue, StatusCode};
use netaccess::url::Url;
use netaccess::{Cache, DiskCache, NetworkAccessManager, Request};
use netaccess_testserver::TestServer;

/// CRC-32 (IEEE, reflected), as the format uses.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The one entry file under `data/` (vary markers aside, there is one per test).
fn entry_files(cache_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(cache_dir.join("data")).unwrap().flatten() {
        for f in std::fs::read_dir(fan.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out
}

/// A parsed entry file: the fixed header's fields, the metadata up to the response headers,
/// and the body.
struct EntryFile {
    kind: u8,
    /// Key, stored-at, status, request and response times: everything before the headers.
    prefix: Vec<u8>,
    body: Vec<u8>,
}

fn parse(bytes: &[u8]) -> EntryFile {
    assert_eq!(&bytes[0..8], b"NACACHE\0");
    let meta_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let meta = &bytes[40..40 + meta_len];
    let key_len = u32::from_le_bytes(meta[0..4].try_into().unwrap()) as usize;
    // key, stored-at (12), status (2), request time (12), response time (12).
    let prefix_len = 4 + key_len + 12 + 2 + 12 + 12;
    EntryFile {
        kind: bytes[10],
        prefix: meta[..prefix_len].to_vec(),
        body: bytes[40 + meta_len..].to_vec(),
    }
}

/// A file with valid checksums for `meta` and `body`, claiming `meta_len` and `body_len`.
fn assemble(kind: u8, meta: &[u8], body: &[u8], meta_len: u32, body_len: u64) -> Vec<u8> {
    let mut head = [0u8; 40];
    head[0..8].copy_from_slice(b"NACACHE\0");
    head[8..10].copy_from_slice(&2u16.to_le_bytes());
    head[10] = kind;
    head[12..16].copy_from_slice(&meta_len.to_le_bytes());
    head[16..24].copy_from_slice(&body_len.to_le_bytes());
    head[24..28].copy_from_slice(&crc32(meta).to_le_bytes());
    head[28..32].copy_from_slice(&crc32(body).to_le_bytes());
    let crc = crc32(&head[0..32]);
    head[32..36].copy_from_slice(&crc.to_le_bytes());
    let mut out = head.to_vec();
    out.extend_from_slice(meta);
    out.extend_from_slice(body);
    out
}

fn put(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(&(b.len() as u32).to_le_bytes());
    w.extend_from_slice(b);
}

/// Metadata: `prefix`, then `n` response headers, then no request headers.
fn with_headers(prefix: &[u8], n: u32) -> Vec<u8> {
    let mut meta = prefix.to_vec();
    meta.extend_from_slice(&n.to_le_bytes());
    for _ in 0..n {
        put(&mut meta, b"x-a");
        put(&mut meta, b"b");
    }
    meta.extend_from_slice(&0u32.to_le_bytes());
    meta
}

/// The forgeries, built from a valid entry: (what, file bytes).
fn forgeries(valid: &EntryFile) -> Vec<(&'static str, Vec<u8>)> {
    let EntryFile { kind, prefix, body } = valid;
    let kind = *kind;
    let whole =
        |meta: &[u8], body: &[u8]| assemble(kind, meta, body, meta.len() as u32, body.len() as u64);
    let plain = with_headers(prefix, 1);
    let mut out = vec![
        ("30,000 headers", whole(&with_headers(prefix, 30_000), body)),
        (
            "40,000 headers (over the http crate's map capacity)",
            whole(&with_headers(prefix, 40_000), body),
        ),
        (
            "a body length near 2^64",
            assemble(kind, &plain, body, plain.len() as u32, u64::MAX - 20),
        ),
        (
            "a body length past the end of the file",
            assemble(
                kind,
                &plain,
                body,
                plain.len() as u32,
                body.len() as u64 + 4096,
            ),
        ),
        (
            "a metadata length past the end of the file",
            assemble(
                kind,
                &plain,
                body,
                plain.len() as u32 + 4096,
                body.len() as u64,
            ),
        ),
        (
            "a metadata length of 4 GiB",
            assemble(kind, &plain, body, u32::MAX, body.len() as u64),
        ),
    ];
    // A header value whose length runs past the end of the metadata.
    let mut meta = prefix.to_vec();
    meta.extend_from_slice(&1u32.to_le_bytes());
    put(&mut meta, b"x-a");
    meta.extend_from_slice(&u32::MAX.to_le_bytes());
    meta.extend_from_slice(b"short");
    out.push((
        "a header value length past the metadata",
        whole(&meta, body),
    ));
    // A header count the remaining bytes cannot hold.
    let mut meta = prefix.to_vec();
    meta.extend_from_slice(&u32::MAX.to_le_bytes());
    meta.extend_from_slice(&0u32.to_le_bytes());
    out.push(("a header count of 2^32 - 1", whole(&meta, body)));
    // A 100 KB key (longer than any URL sent) with the rest intact.
    let mut meta = Vec::new();
    put(&mut meta, &vec![b'k'; 100_000]);
    let key_len = u32::from_le_bytes(prefix[0..4].try_into().unwrap()) as usize;
    meta.extend_from_slice(&prefix[4 + key_len..]);
    meta.extend_from_slice(&0u32.to_le_bytes());
    meta.extend_from_slice(&0u32.to_le_bytes());
    out.push(("a 100 KB key", whole(&meta, body)));
    // A vary marker naming 100,000 headers.
    let mut meta = prefix[..4 + key_len + 12].to_vec();
    meta.extend_from_slice(&100_000u32.to_le_bytes());
    for i in 0..100_000 {
        put(&mut meta, format!("x-{i}").as_bytes());
    }
    out.push((
        "a vary marker with 100,000 names",
        assemble(2, &meta, &[], meta.len() as u32, 0),
    ));
    out
}

fn metadata() -> CacheMetadata {
    let mut response = HeaderMap::new();
    response.insert("cache-control", HeaderValue::from_static("max-age=3600"));
    response.insert("content-type", HeaderValue::from_static("text/plain"));
    let now = SystemTime::now();
    CacheMetadata::new(StatusCode::OK, &response, &HeaderMap::new(), now, now)
}

#[tokio::test]
async fn forged_entries_with_valid_checksums_are_misses_and_removed() {
    let dir = TempDir::new("direct");
    let root = dir.0.join("cache");
    let cache = DiskCache::new(&root).unwrap();
    let key = CacheKey::get(&Url::parse("http://cache.test/forged").unwrap());
    let mut w = cache.begin_store(&key, metadata());
    w.write(b"the real body").unwrap();
    w.commit().await.unwrap();
    let files = entry_files(&root);
    assert_eq!(files.len(), 1);
    let path = files[0].clone();
    let valid = parse(&std::fs::read(&path).unwrap());
    assert!(cache.lookup(&key, &HeaderMap::new()).await.is_some());
    for (what, bytes) in forgeries(&valid) {
        std::fs::write(&path, &bytes).unwrap();
        let found = tokio::time::timeout(
            Duration::from_secs(10),
            cache.lookup(&key, &HeaderMap::new()),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: the lookup hung"));
        assert!(found.is_none(), "{what}: served");
        assert!(!path.exists(), "{what}: the file was not removed");
    }
    // A new cache on the directory is fine, and storing works again.
    let cache = DiskCache::new(&root).unwrap();
    let mut w = cache.begin_store(&key, metadata());
    w.write(b"again").unwrap();
    w.commit().await.unwrap();
    let entry = cache.lookup(&key, &HeaderMap::new()).await.unwrap();
    assert_eq!(&entry.body.bytes().await.unwrap()[..], b"again");
}

#[tokio::test]
async fn a_response_with_more_headers_than_a_reader_accepts_is_not_stored() {
    let dir = TempDir::new("writer");
    let root = dir.0.join("cache");
    let cache = DiskCache::new(&root).unwrap();
    let key = CacheKey::get(&Url::parse("http://cache.test/many").unwrap());
    let mut m = metadata();
    for i in 0..600 {
        m.headers.append(
            netaccess::http::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
            HeaderValue::from_static("v"),
        );
    }
    let mut w = cache.begin_store(&key, m);
    let _ = w.write(b"body");
    assert!(w.commit().await.is_err());
    assert!(entry_files(&root).is_empty());
    assert!(cache.lookup(&key, &HeaderMap::new()).await.is_none());
}

#[tokio::test]
async fn a_forged_entry_sends_the_request_to_the_network() {
    let server = TestServer::http1().await;
    let dir = TempDir::new("manager");
    let root = dir.0.join("cache");
    let disk = Arc::new(DiskCache::new(&root).unwrap());
    let manager = NetworkAccessManager::builder()
        .cache(disk.clone())
        .build()
        .unwrap();
    let url = server.url("/bytes/100?cache_control=max-age%3D3600");
    let first = manager.get(Request::new(&url));
    assert_eq!(first.bytes().await.unwrap().len(), 100);
    let hit = manager.get(Request::new(&url));
    hit.bytes().await.unwrap();
    assert!(hit.source_is_from_cache());
    assert_eq!(server.requests_for("/bytes/100"), 1);
    let path = entry_files(&root).pop().unwrap();
    let valid = parse(&std::fs::read(&path).unwrap());
    let (_, forged) = forgeries(&valid).swap_remove(1); // 40,000 headers
    std::fs::write(&path, forged).unwrap();
    let reply = manager.get(Request::new(&url));
    let body = tokio::time::timeout(Duration::from_secs(30), reply.bytes())
        .await
        .expect("finished in time")
        .unwrap();
    assert_eq!(body.len(), 100);
    assert!(!reply.source_is_from_cache());
    assert_eq!(server.requests_for("/bytes/100"), 2);
    // The forged file is gone; the fresh response was stored in its place and serves again.
    let again = manager.get(Request::new(&url));
    again.bytes().await.unwrap();
    assert!(again.source_is_from_cache());
    assert_eq!(server.requests_for("/bytes/100"), 2);
}
