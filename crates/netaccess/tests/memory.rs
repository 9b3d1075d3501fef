//! A 256 MiB download read as a stream stays in bounded memory (this file is its own test
//! binary, so the process's peak RSS belongs to this test alone).

use futures_util::StreamExt;
use netaccess::{NetworkAccessManager, Request};
use netaccess_testserver::{pattern_byte, TestServer};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_stream_stays_in_bounded_memory() {
    const SIZE: u64 = 256 * 1024 * 1024;
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let before = peak_rss_kib();
    let reply = manager.get(Request::new(server.url(&format!("/bytes/{SIZE}"))));
    let mut stream = reply.body_stream();
    let mut offset: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        // Spot-check the content without slowing the test down.
        assert_eq!(chunk[0], pattern_byte(offset));
        assert_eq!(
            chunk[chunk.len() - 1],
            pattern_byte(offset + chunk.len() as u64 - 1)
        );
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, SIZE);
    assert!(reply.error().is_none());
    let growth_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    println!(
        "peak RSS grew by {growth_mib} MiB for a {} MiB download",
        SIZE >> 20
    );
    assert!(growth_mib < 32, "peak RSS grew by {growth_mib} MiB");
}
