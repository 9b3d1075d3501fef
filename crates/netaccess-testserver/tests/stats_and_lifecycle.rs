//! Counters, shutdown, and raw-mode faults.

mod common;

use common::*;
use netaccess_testserver::{RawFault, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn stats_count_connections_requests_and_peaks() {
    let server = TestServer::http1().await;
    let slow_requests = (0..3).map(|_| {
        let addr = server.addr();
        tokio::spawn(async move { get_once(addr, "/delay/300").await })
    });
    let slow_requests: Vec<_> = slow_requests.collect();
    assert!(eventually(|| server.stats().in_flight == 3).await);
    for request in slow_requests {
        request.await.unwrap();
    }

    let mut sender = http1_connect(server.addr()).await;
    for _ in 0..2 {
        body_bytes(sender.send_request(get("/hello?x=1")).await.unwrap())
            .await
            .unwrap();
    }
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 4);
    assert_eq!(stats.requests_total, 5);
    assert_eq!(stats.peak_in_flight, 3);
    assert!(stats.peak_connections_open >= 3);
    assert_eq!(stats.h2_requests, 0);
    assert_eq!(server.requests_for("/hello"), 2);
    assert_eq!(server.requests_for("/delay/300"), 3);
    assert!(eventually(|| server.stats().in_flight == 0).await);

    server.reset_stats();
    let stats = server.stats();
    assert_eq!(
        (
            stats.connections_accepted,
            stats.requests_total,
            stats.peak_in_flight
        ),
        (0, 0, 0)
    );
    assert_eq!(server.requests_for("/hello"), 0);
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_accepting() {
    let server = TestServer::http1().await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /never-respond HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(eventually(|| server.stats().in_flight == 1).await);
    let clone = server.clone();
    server.shutdown();
    let mut received = Vec::new();
    let read = tokio::time::timeout(STEP_TIMEOUT, stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "connection closed by shutdown");
    assert!(received.is_empty());
    assert!(
        eventually(|| clone.stats().in_flight == 0 && clone.stats().connections_open == 0).await
    );
    let addr = clone.addr();
    assert!(eventually(|| std::net::TcpStream::connect(addr).is_err()).await);
}

#[tokio::test]
async fn dropping_last_handle_stops_the_server() {
    let server = TestServer::http1().await;
    let addr = server.addr();
    drop(server);
    assert!(eventually(|| std::net::TcpStream::connect(addr).is_err()).await);
}

#[tokio::test]
async fn raw_malformed_status_line_writes_garbage() {
    let server = TestServer::builder()
        .raw(RawFault::MalformedStatusLine)
        .start()
        .await;
    let received = raw_exchange(server.addr(), b"GET /x?y HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(received, b"HTTP/1.1 abc Nope\r\n\r\n");
    assert_eq!(server.requests_for("/x"), 1);
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn raw_wrong_length_and_malformed_header() {
    let server = TestServer::builder()
        .raw(RawFault::WrongContentLength)
        .start()
        .await;
    let received = raw_exchange(server.addr(), b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(received.ends_with(b"Content-Length: 1000\r\n\r\n0123456789"));
    let server = TestServer::builder()
        .raw(RawFault::MalformedHeader)
        .start()
        .await;
    let received = raw_exchange(server.addr(), b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(received.windows(9).any(|w| w == b"Bad Heade"));
}

#[tokio::test]
async fn raw_reset_and_close_before_response() {
    let server = TestServer::builder().raw(RawFault::Reset).start().await;
    let error = raw_exchange(server.addr(), b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    let server = TestServer::builder()
        .raw(RawFault::CloseBeforeResponse)
        .start()
        .await;
    let received = raw_exchange(server.addr(), b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(received.is_empty());
}

#[tokio::test]
async fn raw_close_after_responses_serves_then_drops_the_next_request() {
    let server = TestServer::builder()
        .raw(RawFault::CloseAfterResponses(2))
        .start()
        .await;
    let mut sender = http1_connect(server.addr()).await;
    for _ in 0..2 {
        let response = sender.send_request(get("/a")).await.unwrap();
        assert_eq!(body_bytes(response).await.unwrap(), "hello");
    }
    let third = tokio::time::timeout(STEP_TIMEOUT, sender.send_request(get("/a")))
        .await
        .unwrap();
    assert!(third.is_err(), "connection closed without an answer");
    assert_eq!(server.requests_for("/a"), 3);
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn raw_oversized_headers_and_silence() {
    let server = TestServer::builder()
        .raw(RawFault::OversizedHeaders)
        .start()
        .await;
    let received = raw_exchange(server.addr(), b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(received.len() > 1_000_000 && received.ends_with(b"\r\n\r\nok"));

    let server = TestServer::builder()
        .raw(RawFault::AcceptAndSilence)
        .start()
        .await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        stream.read(&mut buffer),
    )
    .await;
    assert!(
        read.is_err(),
        "silence: nothing read, connection still open"
    );
    assert_eq!(server.stats().requests_total, 0);
}
