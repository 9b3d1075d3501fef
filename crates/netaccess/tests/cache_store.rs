//! The cache storage without sockets: `DiskCache` entries, aborts, eviction, damaged files,
//! several caches and several processes on one directory; `MemoryCache` through the trait.
#![cfg(feature = "disk-cache")]

mod support;

use support::TempDir;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use netaccess::cache::{CacheKey, CacheMetadata};
use netaccess::http::{HeaderMap, HeaderValue, Method, StatusCode};
use netaccess::url::Url;
use netaccess::{Cache, DiskCache, MemoryCache};

fn key(path: &str) -> CacheKey {
    CacheKey::get(&Url::parse(&format!("http://cache.test{path}")).unwrap())
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            netaccess::http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn meta(response: &[(&str, &str)], request: &[(&str, &str)]) -> CacheMetadata {
    let now = SystemTime::now();
    CacheMetadata::new(
        StatusCode::OK,
        &headers(response),
        &headers(request),
        now,
        now,
    )
}

/// Deterministic bytes from a seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn store(cache: &dyn Cache, k: &CacheKey, m: CacheMetadata, body: &[u8]) {
    let mut w = cache.begin_store(k, m);
    for chunk in body.chunks(16 * 1024 + 7) {
        w.write(chunk).unwrap();
    }
    w.commit().await.unwrap();
}

async fn read(cache: &dyn Cache, k: &CacheKey, req: &HeaderMap) -> Option<Vec<u8>> {
    let entry = cache.lookup(k, req).await?;
    Some(entry.body.bytes().await.ok()?.to_vec())
}

/// Every regular file under `dir` (recursively) with its length.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push((entry.path(), meta.len()));
        }
    }
    out
}

fn data_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    files(&dir.join("data"))
}

fn dir_size(dir: &Path) -> u64 {
    data_files(dir).iter().map(|(_, len)| len).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_store_and_lookup() {
    let dir = TempDir::new("store");
    let cache = DiskCache::new(&dir.0).unwrap();
    assert_eq!(cache.max_size(), 50 * 1024 * 1024);
    let none = HeaderMap::new();
    let small = pattern(1, 1000);
    let large = pattern(2, 3 * 1024 * 1024 + 5); // streamed from the file
    let m = meta(&[("content-type", "text/plain"), ("etag", "\"a\"")], &[]);
    store(&cache, &key("/small"), m.clone(), &small).await;
    store(&cache, &key("/large"), meta(&[], &[]), &large).await;
    store(&cache, &key("/empty"), meta(&[], &[]), b"").await;

    let entry = cache.lookup(&key("/small"), &none).await.unwrap();
    assert_eq!(entry.metadata, m);
    assert!(entry.body.as_bytes().is_some());
    assert_eq!(entry.body.bytes().await.unwrap(), small);
    let entry = cache.lookup(&key("/large"), &none).await.unwrap();
    assert_eq!(entry.body.len(), large.len() as u64);
    assert!(entry.body.as_bytes().is_none());
    assert_eq!(entry.body.bytes().await.unwrap(), large);
    assert_eq!(read(&cache, &key("/empty"), &none).await.unwrap(), b"");
    assert!(cache.lookup(&key("/missing"), &none).await.is_none());
    // The fragment is not part of the key; the method is.
    let with_fragment = CacheKey::get(&Url::parse("http://cache.test/small#part").unwrap());
    assert!(cache.lookup(&with_fragment, &none).await.is_some());
    let head = CacheKey::new(&Method::HEAD, key("/small").url());
    assert!(cache.lookup(&head, &none).await.is_none());

    // The size counts the files; another instance sees the entries and the size.
    assert_eq!(cache.size(), dir_size(&dir.0));
    let again = DiskCache::new(&dir.0).unwrap();
    assert_eq!(again.size(), cache.size());
    assert_eq!(read(&again, &key("/large"), &none).await.unwrap(), large);
    assert!(files(&dir.0.join("tmp")).is_empty());

    // update_metadata keeps the body; remove and clear.
    let mut m2 = m.clone();
    m2.headers.insert("etag", HeaderValue::from_static("\"b\""));
    assert!(cache.update_metadata(&key("/small"), m2.clone()).await);
    assert!(!cache.update_metadata(&key("/missing"), m2.clone()).await);
    let entry = again.lookup(&key("/small"), &none).await.unwrap();
    assert_eq!(entry.metadata, m2);
    assert_eq!(entry.body.bytes().await.unwrap(), small);
    assert!(cache.remove(&key("/small")).await);
    assert!(!cache.remove(&key("/small")).await);
    assert!(again.lookup(&key("/small"), &none).await.is_none());
    cache.clear().await;
    assert_eq!(cache.size(), 0);
    assert!(data_files(&dir.0).is_empty());
    assert!(again.lookup(&key("/large"), &none).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_vary_keeps_two_entries() {
    let dir = TempDir::new("vary");
    let cache = DiskCache::new(&dir.0).unwrap();
    let k = key("/greeting");
    let res = [("vary", "Accept-Language")];
    let en = headers(&[("accept-language", "en"), ("user-agent", "a")]);
    let de = headers(&[("accept-language", "de"), ("user-agent", "b")]);
    store(
        &cache,
        &k,
        meta(&res, &[("accept-language", "en")]),
        b"hello",
    )
    .await;
    store(
        &cache,
        &k,
        meta(&res, &[("accept-language", "de")]),
        b"hallo",
    )
    .await;
    assert_eq!(read(&cache, &k, &en).await.unwrap(), b"hello");
    assert_eq!(read(&cache, &k, &de).await.unwrap(), b"hallo");
    assert!(read(&cache, &k, &headers(&[("accept-language", "fr")]))
        .await
        .is_none());
    assert!(read(&cache, &k, &HeaderMap::new()).await.is_none());
    // Two variants and the marker.
    assert_eq!(data_files(&dir.0).len(), 3);
    // The variant's metadata can be updated.
    let mut m = meta(&res, &[("accept-language", "de")]);
    m.headers
        .insert("etag", HeaderValue::from_static("\"de2\""));
    assert!(cache.update_metadata(&k, m.clone()).await);
    assert_eq!(cache.lookup(&k, &de).await.unwrap().metadata, m);
    // remove() drops every variant.
    assert!(cache.remove(&k).await);
    assert!(data_files(&dir.0).is_empty());
    // Vary: * is never stored.
    let mut w = cache.begin_store(&k, meta(&[("vary", "*")], &[]));
    assert!(w.write(b"x").is_err());
    assert!(w.commit().await.is_err());
    assert!(data_files(&dir.0).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_write_leaves_no_entry() {
    let dir = TempDir::new("abort");
    let cache = DiskCache::new(&dir.0).unwrap();
    let k = key("/aborted");
    let body = pattern(3, 300 * 1024);
    let mut w = cache.begin_store(&k, meta(&[], &[]));
    w.write(&body[..200 * 1024]).unwrap();
    // Past the write buffer: the temporary file exists, and only it (and the key's lock).
    let temps = files(&dir.0.join("tmp"));
    assert_eq!(temps.len(), 2);
    assert_eq!(
        temps
            .iter()
            .filter(|(p, _)| p.extension().is_some_and(|x| x == "lock"))
            .count(),
        1
    );
    assert!(data_files(&dir.0).is_empty());
    drop(w);
    assert!(files(&dir.0.join("tmp")).is_empty());
    assert!(data_files(&dir.0).is_empty());
    assert!(cache.lookup(&k, &HeaderMap::new()).await.is_none());
    assert_eq!(cache.size(), 0);
    // An old entry survives an aborted replacement.
    store(&cache, &k, meta(&[], &[]), b"old").await;
    let mut w = cache.begin_store(&k, meta(&[], &[]));
    w.write(&body).unwrap();
    drop(w);
    assert_eq!(read(&cache, &k, &HeaderMap::new()).await.unwrap(), b"old");
    // A response larger than the cache is refused and leaves nothing.
    let small = DiskCache::new(&dir.0).unwrap().with_max_size(100 * 1024);
    let mut w = small.begin_store(&key("/huge"), meta(&[], &[]));
    assert!(w.write(&body).is_err());
    assert!(w.commit().await.is_err());
    assert!(files(&dir.0.join("tmp")).is_empty());
    assert_eq!(data_files(&dir.0).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_keeps_directory_under_limit() {
    let dir = TempDir::new("evict");
    let max = 1024 * 1024;
    let cache = DiskCache::new(&dir.0).unwrap().with_max_size(max);
    let none = HeaderMap::new();
    store(
        &cache,
        &key("/keep"),
        meta(&[], &[]),
        &pattern(9, 100 * 1024),
    )
    .await;
    for i in 0..40u64 {
        // Keep /keep recently used: LRU must not evict it.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            read(&cache, &key("/keep"), &none).await.is_some(),
            "round {i}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        store(
            &cache,
            &key(&format!("/{i}")),
            meta(&[], &[]),
            &pattern(i, 100 * 1024),
        )
        .await;
        let size = dir_size(&dir.0);
        assert!(size <= max, "round {i}: {size} > {max}");
        assert!(cache.size() >= size);
    }
    // The newest entries are there, the oldest evicted.
    assert!(read(&cache, &key("/39"), &none).await.is_some());
    assert!(read(&cache, &key("/0"), &none).await.is_none());
    assert_eq!(
        read(&cache, &key("/keep"), &none).await.unwrap(),
        pattern(9, 100 * 1024)
    );
    // Lowering the limit and expiring trims to 90% of it.
    cache.set_max_size(500 * 1024);
    let size = cache.expire().await;
    assert!(size <= 450 * 1024, "{size}");
    assert_eq!(size, dir_size(&dir.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_are_misses_and_removed() {
    let dir = TempDir::new("corrupt");
    let cache = DiskCache::new(&dir.0).unwrap();
    let none = HeaderMap::new();
    let k = key("/victim");
    let body = pattern(5, 10_000);

    type Damage = fn(&Path);
    let damages: [(&str, Damage); 7] = [
        ("flipped body byte", |p| {
            let mut b = std::fs::read(p).unwrap();
            let n = b.len();
            b[n - 10] ^= 1;
            std::fs::write(p, b).unwrap();
        }),
        ("flipped metadata byte", |p| {
            let mut b = std::fs::read(p).unwrap();
            b[50] ^= 0x80;
            std::fs::write(p, b).unwrap();
        }),
        ("flipped header byte", |p| {
            let mut b = std::fs::read(p).unwrap();
            b[17] ^= 4;
            std::fs::write(p, b).unwrap();
        }),
        ("truncated", |p| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() / 2]).unwrap();
        }),
        ("extended", |p| {
            let mut b = std::fs::read(p).unwrap();
            b.extend_from_slice(b"trailing");
            std::fs::write(p, b).unwrap();
        }),
        ("empty", |p| std::fs::write(p, b"").unwrap()),
        ("foreign", |p| {
            std::fs::write(p, b"<html><body>not a cache entry at all</body></html>").unwrap()
        }),
    ];
    for (what, damage) in damages {
        store(&cache, &k, meta(&[], &[]), &body).await;
        let found = data_files(&dir.0);
        assert_eq!(found.len(), 1, "{what}");
        damage(&found[0].0);
        assert!(cache.lookup(&k, &none).await.is_none(), "{what}");
        assert!(data_files(&dir.0).is_empty(), "{what}: the file is removed");
        // And the key works again.
        store(&cache, &k, meta(&[], &[]), &body).await;
        assert_eq!(read(&cache, &k, &none).await.unwrap(), body, "{what}");
        cache.clear().await;
    }

    // A damaged vary marker is survived too.
    let res = [("vary", "accept-language")];
    store(&cache, &k, meta(&res, &[("accept-language", "en")]), &body).await;
    let marker = data_files(&dir.0)
        .into_iter()
        .find(|(p, _)| !p.file_name().unwrap().to_string_lossy().contains('-'))
        .unwrap();
    std::fs::write(&marker.0, b"garbage").unwrap();
    assert!(cache
        .lookup(&k, &headers(&[("accept-language", "en")]))
        .await
        .is_none());
    cache.clear().await;

    // A large body (streamed) damaged in the middle: the stream ends with an error and the
    // file is removed.
    let large = pattern(6, 2 * 1024 * 1024);
    store(&cache, &k, meta(&[], &[]), &large).await;
    let path = data_files(&dir.0)[0].0.clone();
    let mut b = std::fs::read(&path).unwrap();
    let n = b.len();
    b[n - 1_000_000] ^= 0xff;
    std::fs::write(&path, b).unwrap();
    let entry = cache.lookup(&k, &none).await.unwrap();
    let err = entry.body.bytes().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(data_files(&dir.0).is_empty());

    // Stray files and directories in the data directory never make it panic.
    std::fs::create_dir_all(dir.0.join("data/zz/sub")).unwrap();
    std::fs::write(dir.0.join("data/zz/random"), b"x").unwrap();
    std::fs::write(dir.0.join("data/stray"), b"x").unwrap();
    let again = DiskCache::new(&dir.0).unwrap();
    store(&again, &k, meta(&[], &[]), b"ok").await;
    assert_eq!(read(&again, &k, &none).await.unwrap(), b"ok");
    assert!(again.expire().await > 0);
}

/// One worker's share of the shared-directory tests: writes and reads `rounds` entries of up
/// to `max_len` bytes on `keys` keys (a quarter of them with `Vary`), checking every body it
/// reads back. Returns (writes, hits).
async fn hammer(
    cache: Arc<dyn Cache>,
    worker: u64,
    rounds: u64,
    keys: u64,
    max_len: u64,
) -> (u64, u64) {
    let mut rng = worker.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut writes, mut hits) = (0, 0);
    for round in 0..rounds {
        let k = next() % keys;
        let (path, vary) = (format!("/item/{k}"), k % 4 == 0);
        let lang = if next() % 2 == 0 { "en" } else { "de" };
        let request = if vary {
            headers(&[("accept-language", lang)])
        } else {
            HeaderMap::new()
        };
        if next() % 2 == 0 {
            let seed = next();
            let len = (next() % max_len) as usize;
            let body = pattern(seed, len);
            let (s, l, w) = (
                seed.to_string(),
                len.to_string(),
                format!("{worker}/{round}"),
            );
            let mut response = vec![
                ("x-seed", s.as_str()),
                ("x-len", l.as_str()),
                ("x-writer", w.as_str()),
            ];
            if vary {
                response.push(("vary", "accept-language"));
            }
            let m = CacheMetadata::new(
                StatusCode::OK,
                &headers(&response),
                &request,
                SystemTime::now(),
                SystemTime::now(),
            );
            let mut writer = cache.begin_store(&key(&path), m);
            // Another writer of this key may hold its lock: then this one gives up.
            let refused = |e: std::io::Error| assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
            let written = body.chunks(64 * 1024 - 3).try_for_each(|c| writer.write(c));
            match written {
                Err(e) => refused(e),
                Ok(()) => match writer.commit().await {
                    Ok(()) => writes += 1,
                    Err(e) => refused(e),
                },
            }
        } else if let Some(entry) = cache.lookup(&key(&path), &request).await {
            check_entry(&path, &request, entry).await;
            hits += 1;
        }
    }
    (writes, hits)
}

/// An entry read back is exactly what some writer wrote for this key and variant.
async fn check_entry(path: &str, request: &HeaderMap, entry: netaccess::cache::CachedEntry) {
    let h = &entry.metadata.headers;
    let field = |n: &str| h.get(n).unwrap().to_str().unwrap().parse::<u64>().unwrap();
    let (seed, len) = (field("x-seed"), field("x-len"));
    assert!(
        entry.metadata.matches_request(request),
        "{path}: wrong variant"
    );
    assert_eq!(entry.body.len(), len, "{path}");
    let body = entry.body.bytes().await.expect("intact body");
    assert!(
        body[..] == pattern(seed, len as usize)[..],
        "{path}: body differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_share_one_directory() {
    let dir = TempDir::new("two-caches");
    let max = 4 * 1024 * 1024;
    let a: Arc<dyn Cache> = Arc::new(DiskCache::new(&dir.0).unwrap().with_max_size(max));
    let b: Arc<dyn Cache> = Arc::new(DiskCache::new(&dir.0).unwrap().with_max_size(max));
    let tasks = [
        tokio::spawn(hammer(a.clone(), 1, 200, 24, 128 * 1024)),
        tokio::spawn(hammer(b.clone(), 2, 200, 24, 128 * 1024)),
        tokio::spawn(hammer(a.clone(), 3, 200, 24, 128 * 1024)),
    ];
    let mut hits = 0;
    for t in tasks {
        hits += t.await.unwrap().1;
    }
    assert!(hits > 0);
    verify_directory(&dir.0, max, 24).await;
}

/// Every entry in `dir` is intact, no temporary file is left, and the size is near the limit.
async fn verify_directory(dir: &Path, max: u64, keys: u64) {
    let cache = DiskCache::new(dir).unwrap().with_max_size(max);
    let mut found = 0;
    for k in 0..keys {
        let path = format!("/item/{k}");
        for lang in ["en", "de"] {
            let request = if k % 4 == 0 {
                headers(&[("accept-language", lang)])
            } else {
                HeaderMap::new()
            };
            if let Some(entry) = cache.lookup(&key(&path), &request).await {
                check_entry(&path, &request, entry).await;
                found += 1;
            }
        }
    }
    assert!(found > 0);
    assert!(files(&dir.join("tmp")).is_empty(), "temporary files left");
    // Each writer rescans after writing 1/8 of the limit: other writers overshoot by at most that.
    let size = dir_size(dir);
    assert!(size <= max + max / 2, "{size} > {max}");
    assert!(cache.expire().await <= max);
}

const HAMMER_DIR: &str = "NETACCESS_CACHE_HAMMER_DIR";
const HAMMER_WORKER: &str = "NETACCESS_CACHE_HAMMER_WORKER";
const HAMMER_MAX: u64 = 8 * 1024 * 1024;
const HAMMER_KEYS: u64 = 40;

/// The child of `two_processes_share_one_directory` (does nothing unless started by it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammer_child_process() {
    let (Ok(dir), Ok(worker)) = (std::env::var(HAMMER_DIR), std::env::var(HAMMER_WORKER)) else {
        return;
    };
    let worker: u64 = worker.parse().unwrap();
    let cache: Arc<dyn Cache> = Arc::new(DiskCache::new(dir).unwrap().with_max_size(HAMMER_MAX));
    let started = Instant::now();
    // 300 writes and reads each (600 operations), bodies up to 256 KiB.
    let (writes, hits) = hammer(cache, worker, 600, HAMMER_KEYS, 256 * 1024).await;
    println!(
        "hammer worker {worker}: {writes} writes, {hits} intact hits in {:?}",
        started.elapsed()
    );
}

#[test]
fn two_processes_share_one_directory() {
    let dir = TempDir::new("two-processes");
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut children: Vec<_> = (1..=2)
        .map(|worker| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "hammer_child_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(HAMMER_DIR, &dir.0)
                .env(HAMMER_WORKER, worker.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Bounded: kill what is still running after 60 s.
    let deadline = started + Duration::from_secs(60);
    let mut outputs = Vec::new();
    for child in &mut children {
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{text}");
        assert!(
            text.contains("hammer worker"),
            "the child ran no hammer:\n{text}"
        );
        outputs.push(text);
    }
    for text in &outputs {
        for line in text
            .lines()
            .filter_map(|l| l.find("hammer worker").map(|i| &l[i..]))
        {
            println!("{line}");
        }
    }
    println!("two processes done in {:?}", started.elapsed());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(verify_directory(&dir.0, HAMMER_MAX, HAMMER_KEYS));
}

#[tokio::test]
async fn memory_cache_through_the_trait() {
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new(10_000));
    let none = HeaderMap::new();
    store(&*cache, &key("/a"), meta(&[], &[]), &pattern(1, 4000)).await;
    store(&*cache, &key("/b"), meta(&[], &[]), &pattern(2, 4000)).await;
    assert!(read(&*cache, &key("/a"), &none).await.is_some());
    store(&*cache, &key("/c"), meta(&[], &[]), &pattern(3, 4000)).await;
    // /b was the least recently used.
    assert!(read(&*cache, &key("/b"), &none).await.is_none());
    assert_eq!(
        read(&*cache, &key("/a"), &none).await.unwrap(),
        pattern(1, 4000)
    );
    assert!(cache.size() <= 10_000);
    let mut w = cache.begin_store(&key("/d"), meta(&[], &[]));
    w.write(b"partial").unwrap();
    drop(w);
    assert!(read(&*cache, &key("/d"), &none).await.is_none());
    cache.clear().await;
    assert_eq!(cache.size(), 0);
}

/// A small entry read once is kept parsed by its `DiskCache` (a hit needs only a `stat`); a
/// change by another instance (another process) is seen at once: a replacement of the same
/// length, a removal, a damaged file.
#[tokio::test]
async fn a_disk_hit_kept_parsed_sees_every_change_by_another_instance() {
    let dir = TempDir::new("hot-index");
    let a = DiskCache::new(&dir.0).unwrap();
    let b = DiskCache::new(&dir.0).unwrap();
    let k = key("/hot");
    let none = HeaderMap::new();
    let m = || meta(&[("cache-control", "max-age=60")], &[]);
    store(&a, &k, m(), b"one").await;
    for _ in 0..3 {
        assert_eq!(read(&a, &k, &none).await.unwrap(), b"one");
    }
    // The same length, written by the other instance: a new file.
    store(&b, &k, m(), b"uno").await;
    assert_eq!(read(&a, &k, &none).await.unwrap(), b"uno");
    assert_eq!(read(&a, &k, &none).await.unwrap(), b"uno");
    // A damaged copy of the same length put in its place: read again, found corrupt.
    let (path, len) = data_files(&dir.0).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let damaged = dir.0.join("damaged");
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::rename(&damaged, &path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    assert!(read(&a, &k, &none).await.is_none());
    // Stored again, then removed by the other instance.
    store(&a, &k, m(), b"two").await;
    assert_eq!(read(&a, &k, &none).await.unwrap(), b"two");
    assert!(b.remove(&k).await);
    assert!(read(&a, &k, &none).await.is_none());
    // Removed by this instance while kept.
    store(&a, &k, m(), b"three").await;
    assert_eq!(read(&a, &k, &none).await.unwrap(), b"three");
    assert!(a.remove(&k).await);
    assert!(read(&a, &k, &none).await.is_none());
}

/// At most one writer per key, across instances (processes): a second writer that starts while
/// the first streams its body to disk gives up; once the first is in place the next may write;
/// a lock left by a crashed writer is taken over after a minute.
#[tokio::test]
async fn one_writer_per_key_at_a_time() {
    let dir = TempDir::new("one-writer");
    let a = DiskCache::new(&dir.0).unwrap();
    let b = DiskCache::new(&dir.0).unwrap();
    let k = key("/big");
    let none = HeaderMap::new();
    let m = || meta(&[("cache-control", "max-age=60")], &[]);
    let body_a = pattern(1, 300_000);
    let body_b = pattern(2, 300_000);
    let mut wa = a.begin_store(&k, m());
    wa.write(&body_a[..100_000]).unwrap(); // on disk: the lock is held
    let mut wb = b.begin_store(&k, m());
    let refused = wb.write(&body_b[..100_000]).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::WouldBlock);
    assert!(wb.write(&body_b[100_000..]).is_err());
    drop(wb);
    // Readers never see the half-written entry.
    assert!(read(&a, &k, &none).await.is_none());
    wa.write(&body_a[100_000..]).unwrap();
    wa.commit().await.unwrap();
    assert_eq!(read(&b, &k, &none).await.unwrap(), body_a);
    // The lock was released: the next writer stores.
    store(&b, &k, m(), &body_b).await;
    assert_eq!(read(&a, &k, &none).await.unwrap(), body_b);
    // An aborted writer releases it too.
    let mut aborted = a.begin_store(&k, m());
    aborted.write(&body_a).unwrap();
    drop(aborted);
    store(&b, &k, m(), &body_a).await;
    assert_eq!(read(&a, &k, &none).await.unwrap(), body_a);
    // A lock a crashed writer left behind: honored while recent, taken over when stale.
    let locks = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d.join("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "lock"))
            .collect()
    };
    assert!(locks(&dir.0).is_empty());
    let mut held = a.begin_store(&k, m());
    held.write(&body_b).unwrap();
    let lock = locks(&dir.0).pop().unwrap();
    std::mem::forget(held); // a writer that never finishes (its process died)
    let mut refused = b.begin_store(&k, m());
    assert!(refused.write(&body_b).is_err());
    drop(refused);
    let old = SystemTime::now() - Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(old)
        .unwrap();
    store(&b, &k, m(), &body_b).await;
    assert_eq!(read(&a, &k, &none).await.unwrap(), body_b);
}
