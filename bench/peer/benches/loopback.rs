//! `cargo bench -p netaccess-bench-peer`: netaccess against the in-process test server on
//! 127.0.0.1 (no nginx needed). Bounded in count and time:
//!
//! - 10,000 GETs of `/bytes/1024` through one manager (6 connections per host): req/s and the
//!   TCP connections the server accepted;
//! - one 256 MiB download of `/bytes/268435456` read as a stream: MB/s (10^6 B) and the
//!   process's peak RSS (`VmHWM`);
//! - cache hits for 1 KiB and 1 MiB entries from a `MemoryCache` and a `DiskCache`, beside the
//!   network fetch of the same body (`AlwaysNetwork`): latency per reply and throughput.
//!
//! Client and server share the process (and the machine's cores), so read the numbers as a
//! smoke test and a trend, not as a comparison; `bench/run.sh` does the side-by-side.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use netaccess::{Cache, CacheLoadControl, DiskCache, MemoryCache, NetworkAccessManager, Request};
use netaccess_testserver::TestServer;

const SMALL_COUNT: usize = 10_000;
const LARGE_BYTES: u64 = 256 * 1024 * 1024;
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// Resets the process's peak RSS (`VmHWM`) to the current RSS (Linux >= 4.0); false if not.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `VmHWM` (peak resident set) of this process in KiB, if /proc has it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn small_gets(server: &TestServer) -> Result<(), String> {
    let manager = NetworkAccessManager::builder()
        .max_connections_per_host(6)
        .build()
        .unwrap();
    let url = server.url("/bytes/1024");
    server.reset_stats();
    let start = Instant::now();
    let tasks: Vec<_> = (0..SMALL_COUNT)
        .map(|_| {
            let reply = manager.get(Request::new(&url));
            let mut stream = reply.body_stream();
            tokio::spawn(async move {
                let mut bytes = 0usize;
                while let Some(chunk) = stream.next().await {
                    bytes += chunk.map_err(|e| e.to_string())?.len();
                }
                match (reply.error(), reply.status_code()) {
                    (None, Some(200..=299)) => Ok(bytes),
                    (e, status) => Err(format!("error {e:?}, status {status:?}")),
                }
            })
        })
        .collect();
    let (mut ok, mut errors, mut bytes) = (0usize, 0usize, 0usize);
    for task in tasks {
        match task.await {
            Ok(Ok(n)) => {
                ok += 1;
                bytes += n;
            }
            Ok(Err(e)) => {
                if errors == 0 {
                    eprintln!("first error: {e}");
                }
                errors += 1;
            }
            Err(e) => return Err(format!("task: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = server.stats();
    println!(
        "small: {SMALL_COUNT} x GET /bytes/1024, 6 per host: {:.0} req/s ({secs:.3} s), \
         ok {ok}, errors {errors}, body bytes {bytes}, connections accepted {}, \
         peak open {}",
        ok as f64 / secs,
        stats.connections_accepted,
        stats.peak_connections_open,
    );
    Ok(())
}

async fn large_download(server: &TestServer) -> Result<(), String> {
    let manager = NetworkAccessManager::new();
    // The 10,000 requests before left their own peak; measure this download's alone.
    let reset = reset_peak_rss();
    let rss_before = peak_rss_kib();
    let start = Instant::now();
    let reply = manager.get(Request::new(server.url(&format!("/bytes/{LARGE_BYTES}"))));
    let mut stream = reply.body_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.map_err(|e| e.to_string())?.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    if bytes != LARGE_BYTES || reply.error().is_some() {
        return Err(format!(
            "large: got {bytes} of {LARGE_BYTES} bytes, error {:?}",
            reply.error()
        ));
    }
    let mib =
        |kib: Option<u64>| kib.map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
    println!(
        "large: 1 x GET /bytes/{LARGE_BYTES} (256 MiB) as a stream: {:.0} MB/s ({secs:.3} s), \
         peak RSS of the process (client + server) {} MiB ({}: {} MiB)",
        bytes as f64 / secs / 1e6,
        mib(peak_rss_kib()),
        if reset {
            "RSS at start"
        } else {
            "peak before, not reset"
        },
        mib(rss_before),
    );
    Ok(())
}

/// Sequential replies of one URL: (mean latency in microseconds, MB/s).
async fn timed_gets(
    manager: &NetworkAccessManager,
    url: &str,
    control: CacheLoadControl,
    count: usize,
    size: usize,
) -> Result<(f64, f64, bool), String> {
    let start = Instant::now();
    let mut from_cache = true;
    for _ in 0..count {
        let reply = manager.get(Request::new(url).with_cache_load_control(control));
        let body = reply.bytes().await.map_err(|e| e.to_string())?;
        if body.len() != size {
            return Err(format!("{url}: {} bytes, expected {size}", body.len()));
        }
        from_cache &= reply.source_is_from_cache();
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((
        secs / count as f64 * 1e6,
        (count * size) as f64 / secs / 1e6,
        from_cache,
    ))
}

async fn cache_hits(server: &TestServer) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("netaccess-bench-cache-{}", std::process::id()));
    let caches: [(&str, std::sync::Arc<dyn Cache>); 2] = [
        ("memory", std::sync::Arc::new(MemoryCache::default())),
        (
            "disk",
            std::sync::Arc::new(DiskCache::new(&dir).map_err(|e| e.to_string())?),
        ),
    ];
    println!("cache hits (sequential, one reply at a time):");
    for (name, cache) in caches {
        let manager = NetworkAccessManager::builder()
            .cache(cache)
            .build()
            .unwrap();
        for (size, count) in [(1024usize, 2000usize), (1 << 20, 200)] {
            let url = server.url(&format!("/bytes/{size}?cache_control=max-age%3D3600"));
            timed_gets(&manager, &url, CacheLoadControl::PreferNetwork, 1, size).await?; // store it
            let (hit_us, hit_mbs, all_hits) =
                timed_gets(&manager, &url, CacheLoadControl::PreferNetwork, count, size).await?;
            let (net_us, net_mbs, _) =
                timed_gets(&manager, &url, CacheLoadControl::AlwaysNetwork, count, size).await?;
            if !all_hits {
                return Err(format!(
                    "{name} {size}: not every reply came from the cache"
                ));
            }
            println!(
                "  {name:>6} {:>7}: hit {hit_us:>8.1} us/reply {hit_mbs:>8.1} MB/s | network {net_us:>8.1} us/reply {net_mbs:>8.1} MB/s | hit is {:.1}x faster",
                if size == 1024 { "1 KiB" } else { "1 MiB" },
                net_us / hit_us
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench` (and maybe a filter); nothing here takes arguments.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(async {
        let server = TestServer::http1().await;
        tokio::time::timeout(TIME_LIMIT, async {
            small_gets(&server).await?;
            large_download(&server).await?;
            cache_hits(&server).await
        })
        .await
        .map_err(|_| format!("time limit of {TIME_LIMIT:?} exceeded"))?
    });
    if let Err(e) = outcome {
        eprintln!("loopback bench failed: {e}");
        std::process::exit(1);
    }
}
