//! Cookbook: 1,000 downloads through one manager, with progress and priorities. All are
//! queued at once; the manager's per-origin queue opens at most 6 connections and serves the
//! High requests first. Progress comes from each reply's `download_progress` signal.
//!
//! ```sh
//! cargo run --example many_downloads -- http://127.0.0.1:8080/bytes/1024 1000
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use netaccess::{NetworkAccessManager, Priority, Request};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), count) = (args.next(), args.next()) else {
        eprintln!("usage: many_downloads URL [COUNT]");
        std::process::exit(2);
    };
    let count: usize = count.and_then(|c| c.parse().ok()).unwrap_or(1000);
    let manager = NetworkAccessManager::new();
    let received = Arc::new(AtomicU64::new(0));
    let replies: Vec<_> = (0..count)
        .map(|i| {
            // The last ten are urgent: they overtake the Normal ones still queued.
            let priority = if i + 10 >= count {
                Priority::High
            } else {
                Priority::Normal
            };
            let request = Request::new(&url).with_priority(priority);
            let received = received.clone();
            manager.get_with(request, move |reply| {
                let last = Arc::new(AtomicU64::new(0));
                reply.download_progress().connect(move |(got, _total)| {
                    let before = last.swap(*got, Ordering::Relaxed);
                    received.fetch_add(got.saturating_sub(before), Ordering::Relaxed);
                });
            })
        })
        .collect();
    let mut failed = 0;
    for reply in &replies {
        reply.finished().await;
        failed += usize::from(reply.error().is_some());
    }
    println!(
        "{count} downloads, {failed} failed, {} bytes reported by progress",
        received.load(Ordering::Relaxed)
    );
    std::process::exit(i32::from(failed > 0));
}
