//! `netaccess demo`: starts the test servers on loopback (three HTTP/1.1 "hosts" and one
//! HTTPS host speaking HTTP/2, with a certificate generated at start and trusted here),
//! downloads from all of them through one manager (a bar per host on a terminal), and prints
//! what happened per host, then follows a redirect chain (`/redirect/2`), shows a cache hit on
//! a second pass and a cookie round trip.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use netaccess::{NetworkAccessManager, Reply, Request};
use netaccess_testserver::TestServer;

/// Arguments of `netaccess demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Requests per host
    #[arg(long, default_value_t = 30)]
    requests: usize,
}

struct Host {
    name: &'static str,
    server: TestServer,
    replies: Vec<Reply>,
    started: Instant,
    /// Milliseconds from `started` to the end of the host's last reply.
    finished_ms: Arc<AtomicU64>,
}

/// The length of a reply's body, read as a stream and not kept; `None` if the transfer failed.
async fn body_len(reply: &Reply) -> Option<u64> {
    use futures_util::StreamExt;
    let mut stream = reply.body_stream();
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        len += chunk.ok()?.len() as u64;
    }
    Some(len)
}

/// Runs the demo; returns the exit status.
pub async fn run(args: DemoArgs) -> i32 {
    let tls = TestServer::tls().await;
    let manager = match NetworkAccessManager::builder()
        .cache(Arc::new(netaccess::MemoryCache::default()))
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap_or_default().as_bytes())
        .build()
    {
        Ok(manager) => manager,
        Err(e) => {
            eprintln!("demo: {e}");
            return 1;
        }
    };
    let mut hosts = vec![
        Host {
            name: "small files",
            server: TestServer::http1().await,
            replies: vec![],
            started: Instant::now(),
            finished_ms: Arc::default(),
        },
        Host {
            name: "slow server",
            server: TestServer::http1().await,
            replies: vec![],
            started: Instant::now(),
            finished_ms: Arc::default(),
        },
        Host {
            name: "large files",
            server: TestServer::http1().await,
            replies: vec![],
            started: Instant::now(),
            finished_ms: Arc::default(),
        },
        Host {
            name: "https + h2",
            server: tls,
            replies: vec![],
            started: Instant::now(),
            finished_ms: Arc::default(),
        },
    ];
    let paths = [
        "/bytes/1024",
        "/slow/100?size=4096",
        "/bytes/4194304",
        "/bytes/65536",
    ];
    println!("netaccess demo: {} requests to each of {} local hosts, one manager, 6 connections per host", args.requests, hosts.len());
    let bars = std::io::IsTerminal::is_terminal(&std::io::stderr())
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let all_started = Instant::now();
    for (host, path) in hosts.iter_mut().zip(paths) {
        let bar = bars.as_ref().map(|multi| {
            let bar = ProgressBar::new(args.requests as u64).with_style(
                ProgressStyle::with_template(
                    "{prefix:<13} [{bar:30.cyan/blue}] {pos}/{len} files {binary_bytes_per_sec:>12} {elapsed}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(host.name);
            multi.add(bar)
        });
        host.started = Instant::now();
        host.replies = (0..args.requests)
            .map(|_| {
                manager.get_with(Request::new(host.server.url(path)), |reply| {
                    let bar = bar.clone();
                    let finished_ms = host.finished_ms.clone();
                    let started = host.started;
                    reply.finished().connect(move |_| {
                        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                        finished_ms.fetch_max(ms, Ordering::Relaxed);
                        if let Some(bar) = &bar {
                            bar.inc(1);
                        }
                    });
                })
            })
            .collect();
    }
    // Read every body (counting, not keeping it), then print the table.
    let mut failures = 0;
    let mut rows = Vec::new();
    for host in &hosts {
        let mut bytes = 0u64;
        let mut version = "HTTP/1.1";
        for reply in &host.replies {
            match tokio::time::timeout(Duration::from_secs(60), body_len(reply)).await {
                Ok(Some(len)) if reply.error().is_none() => bytes += len,
                _ => failures += 1,
            }
            if reply.http2_was_used() {
                version = "HTTP/2";
            }
        }
        rows.push((version, bytes, host.finished_ms.load(Ordering::Relaxed)));
    }
    if let Some(multi) = &bars {
        let _ = multi.clear();
    }
    println!();
    println!(
        "{:<13} {:<26} {:>8} {:>11} {:>9} {:>8} {:>11} {:>8}",
        "host", "url", "requests", "connections", "peak par.", "version", "bytes", "time"
    );
    for (host, (version, bytes, ms)) in hosts.iter().zip(rows) {
        let stats = host.server.stats();
        println!(
            "{:<13} {:<26} {:>8} {:>11} {:>9} {:>8} {:>11} {:>6} ms",
            host.name,
            host.server.base_url(),
            stats.requests_total,
            stats.connections_accepted,
            stats.peak_in_flight,
            version,
            bytes,
            ms
        );
    }

    // A redirect chain: /redirect/2 -> /redirect/1 -> /redirect/0, followed by the manager.
    let server = &hosts[0].server;
    let redirects = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let reply = manager.get_with(Request::new(server.url("/redirect/2")), |reply| {
        let redirects = redirects.clone();
        reply.redirected().connect(move |_| {
            redirects.fetch_add(1, Ordering::Relaxed);
        });
    });
    let body = tokio::time::timeout(Duration::from_secs(10), reply.bytes()).await;
    let ok = matches!(body, Ok(Ok(_))) && reply.error().is_none();
    failures += usize::from(!ok);
    println!();
    println!(
        "redirect: {} -> {} after {} redirects, status {}, {} ms",
        server.url("/redirect/2"),
        reply.url(),
        redirects.load(Ordering::Relaxed),
        reply
            .status_code()
            .map_or_else(|| "none".to_owned(), |s| s.to_string()),
        started.elapsed().as_millis()
    );
    // A cache hit on a second pass: the second GET is answered without a request.
    let cached = server.url("/bytes/65536?cache_control=max-age%3D60");
    let mut from_cache = Vec::new();
    for _ in 0..2 {
        let reply = manager.get(Request::new(&cached));
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(10), reply.bytes()).await,
            Ok(Ok(_))
        );
        failures += usize::from(!ok || reply.error().is_some());
        from_cache.push(reply.source_is_from_cache());
    }
    println!(
        "cache:    2 x GET {cached}: from cache {:?}, requests that reached the server: {}",
        from_cache,
        server.requests_for("/bytes/65536")
    );

    // A cookie round trip: set by one response, sent with the next request.
    let set = server.url("/header?Set-Cookie=demo%3Dnetaccess");
    let echo = server.url("/echo");
    let first = manager.get(Request::new(&set));
    let _ = tokio::time::timeout(Duration::from_secs(10), first.bytes()).await;
    let second = manager.get(Request::new(&echo));
    let sent = match tokio::time::timeout(Duration::from_secs(10), second.bytes()).await {
        Ok(Ok(body)) => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["headers"]["cookie"].as_str().map(str::to_owned)),
        _ => None,
    };
    failures += usize::from(sent.as_deref() != Some("demo=netaccess"));
    println!(
        "cookies:  Set-Cookie from {set}, then {echo} sent Cookie: {}",
        sent.as_deref().unwrap_or("(none)")
    );

    println!();
    println!(
        "total {} ms, {} failed",
        all_started.elapsed().as_millis(),
        failures
    );
    i32::from(failures > 0)
}
