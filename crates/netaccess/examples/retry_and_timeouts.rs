//! Cookbook: retry and timeout settings. A manager-wide retry policy (3 retries of
//! connection failures and of 408/429/5xx, with backoff and `Retry-After`), a transfer
//! timeout (no byte for 10 s), a connect timeout, and a deadline on one request.
//!
//! ```sh
//! cargo run --example retry_and_timeouts -- http://127.0.0.1:8080/
//! ```

use std::time::Duration;

use netaccess::{NetworkAccessManager, Request, RetryPolicy};

#[tokio::main]
async fn main() {
    let base = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: retry_and_timeouts BASE_URL");
        std::process::exit(2);
    });
    let base = base.trim_end_matches('/');
    let manager = NetworkAccessManager::builder()
        .retry_policy(
            RetryPolicy::new(3).with_backoff(Duration::from_millis(10), Duration::from_millis(200)),
        )
        .transfer_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| {
            eprintln!("retry_and_timeouts: {e}");
            std::process::exit(2);
        });

    // A server that keeps failing: retried 3 times, then its last answer is the reply.
    let failing = manager.get(Request::new(format!("{base}/status/503")));
    failing.finished().await;
    println!("503: {:?}", failing.error().map(|e| e.kind()));

    // A body slower than the deadline allows: the whole request is bounded, not each read.
    let slow = Request::new(format!("{base}/trickle?bytes=100&interval_ms=50"))
        .with_deadline(Duration::from_millis(300));
    let slow = manager.get(slow);
    slow.finished().await;
    println!("deadline: {:?}", slow.error().map(|e| e.kind()));

    let fine = manager.get(Request::new(format!("{base}/hello")));
    println!("hello: {:?}", fine.text().await);
}
