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

/// A gzip body of about 100 KiB that would inflate to 4 GiB: gzip over 64 identical gzip
/// members of 64 MiB of zeros each (multi-member gzip is valid and decoded).
async fn four_gib_bomb() -> Vec<u8> {
    use async_compression::tokio::bufread::GzipEncoder;
    use tokio::io::AsyncReadExt;
    let zeros = vec![0u8; 64 << 20];
    let mut member = Vec::new();
    GzipEncoder::with_quality(&zeros[..], async_compression::Level::Best)
        .read_to_end(&mut member)
        .await
        .unwrap();
    let inner = member.repeat(64);
    let mut outer = Vec::new();
    GzipEncoder::with_quality(&inner[..], async_compression::Level::Best)
        .read_to_end(&mut outer)
        .await
        .unwrap();
    outer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_fails_in_bounded_memory_and_time() {
    let bomb = four_gib_bomb().await;
    println!(
        "bomb: {} KiB of gzip, gzip inflating to 4 GiB",
        bomb.len() / 1024
    );
    assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let started = std::time::Instant::now();
    let reply = manager.post(
        Request::new(server.url("/echo-body"))
            .with_header("X-Response-Content-Encoding", "gzip, gzip"),
        bomb,
    );
    let result = reply.bytes().await;
    let error = reply.error().expect("the bomb is refused");
    assert!(result.is_err());
    assert_eq!(error.kind(), netaccess::NetworkError::ProtocolFailure);
    assert!(error.message().contains("Decompression bomb"), "{error}");
    let peak = peak_rss_kib() / 1024;
    println!(
        "refused after {:?}; process peak RSS {peak} MiB",
        started.elapsed()
    );
    assert!(peak < 128, "peak RSS {peak} MiB");
}
