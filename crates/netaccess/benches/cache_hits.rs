//! `cargo bench -p netaccess --bench cache_hits`: what a fresh cache hit costs against a
//! loopback fetch of the same body through the same manager, in one run.
//!
//! For each case one manager with the cache under test talks to the in-process test server:
//! the hit fetches `/bytes/N?cache_control=max-age=3600` (stored by a first request), the
//! loopback fetch `/bytes/N?cache_control=no-store` (never stored, so every request goes over
//! a kept-alive loopback connection). Each is run in batches, sequentially (one request at a
//! time, each read to its end); the median batch gives the time per request. The ratios are
//! printed against the targets of issue 15 (memory 1 KiB 10x, memory 1 MiB 50x, disk 1 KiB
//! 5x). A plain `harness = false` bench: no benchmarking crate needed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use netaccess::{Cache, DiskCache, MemoryCache, NetworkAccessManager, Request};
use netaccess_testserver::TestServer;

const BATCHES: usize = 9;

/// Requests per batch for a body of `len` bytes (fewer for big bodies).
fn batch_size(len: usize) -> usize {
    if len >= 1 << 20 {
        40
    } else {
        400
    }
}

async fn fetch(manager: &NetworkAccessManager, url: &str, len: usize) {
    let reply = manager.get(Request::new(url));
    let body = reply.bytes().await.expect("body");
    assert_eq!(body.len(), len);
}

/// The median time per request of `BATCHES` batches of sequential fetches of `url`.
async fn per_request(manager: &NetworkAccessManager, url: &str, len: usize) -> Duration {
    let n = batch_size(len);
    for _ in 0..n / 4 {
        fetch(manager, url, len).await; // warm up: connection, allocator, caches
    }
    let mut batches = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..n {
            fetch(manager, url, len).await;
        }
        batches.push(start.elapsed() / n as u32);
    }
    batches.sort();
    batches[BATCHES / 2]
}

struct Case {
    name: &'static str,
    len: usize,
    target: f64,
}

async fn measure(server: &TestServer, cache: Arc<dyn Cache>, case: &Case) -> (Duration, Duration) {
    let manager = NetworkAccessManager::builder()
        .cache(cache)
        .build()
        .expect("manager");
    let len = case.len;
    let hit = server.url(&format!("/bytes/{len}?cache_control=max-age%3D3600"));
    let miss = server.url(&format!("/bytes/{len}?cache_control=no-store"));
    fetch(&manager, &hit, len).await; // stores it
    let before = server.requests_for(&format!("/bytes/{len}"));
    let hit_time = per_request(&manager, &hit, len).await;
    assert_eq!(
        server.requests_for(&format!("/bytes/{len}")),
        before,
        "every hit answered by the cache"
    );
    let network_time = per_request(&manager, &miss, len).await;
    (hit_time, network_time)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = TestServer::http1().await;
        let dir =
            std::env::temp_dir().join(format!("netaccess-bench-cache-{}", std::process::id()));
        let disk: Arc<dyn Cache> = Arc::new(
            DiskCache::new(&dir)
                .expect("disk cache")
                .with_max_size(256 << 20),
        );
        let memory: Arc<dyn Cache> = Arc::new(MemoryCache::new(256 << 20));
        let cases = [
            (
                memory.clone(),
                Case {
                    name: "memory hit, 1 KiB",
                    len: 1024,
                    target: 10.0,
                },
            ),
            (
                memory.clone(),
                Case {
                    name: "memory hit, 1 MiB",
                    len: 1 << 20,
                    target: 50.0,
                },
            ),
            (
                disk.clone(),
                Case {
                    name: "disk hit, 1 KiB",
                    len: 1024,
                    target: 5.0,
                },
            ),
            (
                disk.clone(),
                Case {
                    name: "disk hit, 1 MiB",
                    len: 1 << 20,
                    target: 0.0,
                },
            ),
        ];
        println!(
            "{:<20} {:>12} {:>16} {:>8} {:>8}",
            "case", "hit", "loopback fetch", "ratio", "target"
        );
        for (cache, case) in &cases {
            let (hit, network) = measure(&server, cache.clone(), case).await;
            let ratio = network.as_secs_f64() / hit.as_secs_f64();
            let target = if case.target > 0.0 {
                format!("{:.0}x", case.target)
            } else {
                "-".to_owned()
            };
            println!(
                "{:<20} {:>10.1}us {:>14.1}us {:>7.1}x {:>8}",
                case.name,
                hit.as_secs_f64() * 1e6,
                network.as_secs_f64() * 1e6,
                ratio,
                target
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
