//! `netaccess demo`: starts the test servers on loopback (three HTTP/1.1 "hosts" and one
//! HTTPS host speaking HTTP/2, with a certificate generated at start and trusted here),
//! downloads from all of them through one manager, and prints what happened per host.

use std::time::{Duration, Instant};

use clap::Args;
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
}

/// Runs the demo; returns the exit status.
pub async fn run(args: DemoArgs) -> i32 {
    let tls = TestServer::tls().await;
    let manager = match NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap_or_default().as_bytes())
    {
        Ok(b) => b.build(),
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
        },
        Host {
            name: "slow server",
            server: TestServer::http1().await,
            replies: vec![],
            started: Instant::now(),
        },
        Host {
            name: "large files",
            server: TestServer::http1().await,
            replies: vec![],
            started: Instant::now(),
        },
        Host {
            name: "https + h2",
            server: tls,
            replies: vec![],
            started: Instant::now(),
        },
    ];
    let paths = [
        "/bytes/1024",
        "/slow/100?size=4096",
        "/bytes/4194304",
        "/bytes/65536",
    ];
    println!("netaccess demo: {} requests to each of {} local hosts, one manager, 6 connections per host", args.requests, hosts.len());
    let all_started = Instant::now();
    for (host, path) in hosts.iter_mut().zip(paths) {
        host.started = Instant::now();
        host.replies = (0..args.requests)
            .map(|_| manager.get(Request::new(host.server.url(path))))
            .collect();
    }
    let mut failures = 0;
    println!();
    println!(
        "{:<13} {:<26} {:>8} {:>11} {:>9} {:>8} {:>11} {:>8}",
        "host", "url", "requests", "connections", "peak par.", "version", "bytes", "time"
    );
    for host in &hosts {
        let mut bytes = 0usize;
        let mut version = "HTTP/1.1";
        for reply in &host.replies {
            match tokio::time::timeout(Duration::from_secs(60), reply.bytes()).await {
                Ok(Ok(body)) if reply.error().is_none() => bytes += body.len(),
                _ => failures += 1,
            }
            if reply.http2_was_used() {
                version = "HTTP/2";
            }
        }
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
            host.started.elapsed().as_millis()
        );
    }
    println!();
    println!(
        "total {} ms, {} failed",
        all_started.elapsed().as_millis(),
        failures
    );
    i32::from(failures > 0)
}
