//! netaccess as a peer of the side-by-side HTTP client benchmark (`../shared/bench`).
//!
//! ```text
//! netaccess-bench-peer [--per-host N] [--streams N] [--insecure] [--http2] [--stream] (--urls FILE | --url URL --count N)
//! ```
//!
//! Every request goes to one [`NetworkAccessManager`] at once; the manager's per-origin queue
//! does the limiting (at most `--per-host` HTTP/1.1 connections per origin), as Qt's does. Each
//! body is read in a `ready_read` slot and dropped, and replies are counted in one slot on the
//! manager's `finished`, as the Qt peers do (1 MiB read buffer); with `--stream`, each body is
//! read with `body_stream()` in a task of its own. Prints one JSON line on stdout:
//! `{"requests":..,"bytes":..,"seconds":..,"errors":..}`. Exit 2 on bad arguments, 3 when the
//! workload cannot be run.
//!
//! The URLs are parsed before the clock starts and each [`Request`] is made as it is handed
//! to the manager, as the reqwest peer of the harness does (it parses every URL first, then
//! moves each into the task that sends it): the peer holds no list of requests of its own.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use netaccess::url::Url;
use netaccess::{BodyStream, NetworkAccessManager, Reply, Request};

const USAGE: &str =
    "usage: netaccess-bench-peer [--per-host N] [--streams N] [--insecure] [--http2] \
                     (--urls FILE | --url URL --count N)";

#[derive(Debug)]
struct Args {
    per_host: usize,
    streams: usize,
    insecure: bool,
    http2: bool,
    /// Read bodies with `body_stream()` in a task per reply instead of `ready_read` slots.
    stream: bool,
    urls: Vec<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut per_host = 6usize;
    let mut streams = 100usize;
    let mut insecure = false;
    let mut http2 = false;
    let mut stream = false;
    let mut urls_file: Option<String> = None;
    let mut url: Option<String> = None;
    let mut count: Option<usize> = None;
    fn value(it: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, String> {
        it.next().ok_or_else(|| format!("{flag} needs a value"))
    }
    fn number(s: String, flag: &str) -> Result<usize, String> {
        s.parse()
            .map_err(|_| format!("{flag}: not a number: {s:?}"))
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--per-host" => per_host = number(value(&mut it, &arg)?, &arg)?,
            "--streams" => streams = number(value(&mut it, &arg)?, &arg)?,
            "--insecure" => insecure = true,
            "--http2" => http2 = true,
            "--stream" => stream = true,
            "--urls" => urls_file = Some(value(&mut it, &arg)?),
            "--url" => url = Some(value(&mut it, &arg)?),
            "--count" => count = Some(number(value(&mut it, &arg)?, &arg)?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let urls = match (urls_file, url, count) {
        (Some(file), None, None) => std::fs::read_to_string(&file)
            .map_err(|e| format!("--urls {file}: {e}"))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        (None, Some(url), Some(n)) => vec![url; n],
        _ => {
            return Err(format!(
                "give either --urls FILE or --url URL --count N\n{USAGE}"
            ))
        }
    };
    Ok(Args {
        per_host: per_host.max(1),
        streams: streams.max(1),
        insecure,
        http2,
        stream,
        urls,
    })
}

/// What one reply contributed: body bytes, and whether it counts as a success.
async fn drain(reply: Reply, mut stream: BodyStream) -> (u64, bool) {
    let mut bytes = 0u64;
    let mut ok = true;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => bytes += chunk.len() as u64,
            Err(e) => {
                eprintln!("netaccess-bench-peer: {}: {e}", reply.url());
                ok = false;
                break;
            }
        }
    }
    if ok {
        if let Some(e) = reply.error() {
            eprintln!("netaccess-bench-peer: {}: {e}", reply.url());
            ok = false;
        } else if !matches!(reply.status_code(), Some(200..=299)) {
            eprintln!(
                "netaccess-bench-peer: {}: status {:?}",
                reply.url(),
                reply.status_code()
            );
            ok = false;
        }
    }
    (bytes, ok)
}

/// The request for `url`, made when it is sent.
fn request_for(url: Url, http2: bool) -> Request {
    let h2c = http2 && url.scheme() == "http";
    let request = Request::from_url(url);
    if h2c {
        request.with_http2_direct(true) // h2c by prior knowledge
    } else {
        request // https: ALPN offers h2 (HTTP/2 allowed by default)
    }
}

/// Reads every body in a `ready_read` slot and counts replies in one slot on the manager's
/// `finished`, as the Qt peers do: the bytes are taken on the request's own task, with no
/// reader task per reply.
async fn run_with_signals(
    manager: &NetworkAccessManager,
    urls: Vec<Url>,
    http2: bool,
) -> (u64, u64, u64) {
    let total = urls.len() as u64;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(tokio::sync::Notify::new());
    let counting = {
        let (ok, failed, bytes, all_done) =
            (ok.clone(), failed.clone(), bytes.clone(), all_done.clone());
        // One counter of replies seen, so that exactly the last one notifies (two replies
        // finishing at once on two threads could each miss the other's count).
        let seen = AtomicU64::new(0);
        manager.finished().connect(move |r| {
            bytes.fetch_add(r.read_all().len() as u64, Ordering::Relaxed);
            let good = r.error().is_none() && matches!(r.status_code(), Some(200..=299));
            if !good {
                eprintln!(
                    "netaccess-bench-peer: {}: {:?} {:?}",
                    r.url(),
                    r.status_code(),
                    r.error()
                );
            }
            let counter = if good { &ok } else { &failed };
            counter.fetch_add(1, Ordering::Relaxed);
            if seen.fetch_add(1, Ordering::AcqRel) + 1 == total {
                all_done.notify_one();
            }
        })
    };
    for url in urls {
        let counter = bytes.clone();
        manager.get_with(request_for(url, http2), move |reply| {
            reply.set_read_buffer_size(1 << 20);
            reply.ready_read().connect(move |r| {
                counter.fetch_add(r.read_all().len() as u64, Ordering::Relaxed);
            });
        });
    }
    if total > 0 {
        all_done.notified().await;
    }
    counting.disconnect();
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
    )
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    if args.urls.is_empty() {
        eprintln!("netaccess-bench-peer: no URLs");
        return ExitCode::from(3);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netaccess-bench-peer: runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let streams = u32::try_from(args.streams).unwrap_or(u32::MAX);
    let use_stream = args.stream;
    let http2 = args.http2;
    // Parsed before the clock starts, as the reqwest peer does; the texts stay alive too.
    let mut urls = Vec::with_capacity(args.urls.len());
    for text in &args.urls {
        match Url::parse(text) {
            Ok(url) => urls.push(url),
            Err(e) => {
                eprintln!("netaccess-bench-peer: bad URL {text}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let (requests, errors, bytes, seconds) = runtime.block_on(async move {
        let manager = NetworkAccessManager::builder()
            .max_connections_per_host(args.per_host)
            // The client's own HTTP/2 stream limit, below the server's (nginx: 128).
            .http2_max_concurrent_streams(streams)
            .danger_ignore_tls_errors(args.insecure)
            .build()
            .unwrap();
        let start = Instant::now();
        if !use_stream {
            let (ok, failed, bytes) = run_with_signals(&manager, urls, http2).await;
            return (ok, failed, bytes, start.elapsed().as_secs_f64());
        }
        let tasks: Vec<_> = urls
            .into_iter()
            .map(|url| {
                let reply = manager.get(request_for(url, http2));
                // Taken before the task runs, so the bounded stream buffer applies from the
                // first byte.
                let stream = reply.body_stream();
                tokio::spawn(drain(reply, stream))
            })
            .collect();
        let (mut ok, mut failed, mut bytes) = (0u64, 0u64, 0u64);
        for task in tasks {
            match task.await {
                Ok((n, true)) => {
                    ok += 1;
                    bytes += n;
                }
                Ok((n, false)) => {
                    failed += 1;
                    bytes += n;
                }
                Err(e) => {
                    eprintln!("netaccess-bench-peer: reader task: {e}");
                    failed += 1;
                }
            }
        }
        (ok, failed, bytes, start.elapsed().as_secs_f64())
    });
    println!(
        "{{\"requests\": {requests}, \"bytes\": {bytes}, \"seconds\": {seconds:.6}, \"errors\": {errors}}}"
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn args(s: &str) -> Result<super::Args, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn url_and_count() {
        let a = args("--per-host 4 --streams 100 --insecure --http2 --url http://h/x --count 3")
            .unwrap();
        assert_eq!(
            (a.per_host, a.streams, a.insecure, a.http2),
            (4, 100, true, true)
        );
        assert_eq!(a.urls, vec!["http://h/x"; 3]);
    }

    #[test]
    fn defaults_and_errors() {
        let a = args("--url http://h/ --count 1").unwrap();
        assert_eq!((a.per_host, a.insecure, a.http2), (6, false, false));
        assert!(args("--url http://h/").is_err());
        assert!(args("--per-host x --url http://h/ --count 1").is_err());
        assert!(args("--bogus").is_err());
    }
}
