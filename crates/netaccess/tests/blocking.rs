//! The blocking facade from plain `#[test]` functions, with no async code in the test (the test
//! server runs on a runtime of its own thread).
#![cfg(feature = "blocking")]

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use netaccess::blocking::NetworkAccessManager;
use netaccess::{NetworkError, Request};
use netaccess_testserver::{expected_bytes, TestServer};

/// A test server on a background runtime, kept alive for the test.
fn server() -> (TestServer, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(TestServer::http1());
    (server, rt)
}

#[test]
fn get_text_status_and_errors() {
    let (server, _rt) = server();
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/hello")));
    assert_eq!(reply.text().unwrap(), "hello");
    assert_eq!(reply.status_code(), Some(200));
    assert!(reply.is_finished());

    let missing = manager.get(Request::new(server.url("/status/404")));
    missing.wait();
    assert_eq!(
        missing.error().map(|e| e.kind()),
        Some(NetworkError::ContentNotFoundError)
    );
    assert_eq!(missing.text().unwrap(), "status 404");
}

#[test]
fn read_streams_the_body() {
    let (server, _rt) = server();
    let manager = NetworkAccessManager::new();
    let mut reply = manager.get(Request::new(server.url("/bytes/3000000")));
    let mut body = Vec::new();
    reply.read_to_end(&mut body).unwrap();
    assert!(body == expected_bytes(0, 3_000_000));
}

#[test]
fn uploads_and_signals() {
    let (server, _rt) = server();
    let manager = NetworkAccessManager::new();
    let reply = manager.post(Request::new(server.url("/echo-body")), "uploaded");
    assert_eq!(reply.text().unwrap(), "uploaded");

    let chunks = Arc::new(AtomicUsize::new(0));
    let seen = chunks.clone();
    let reply = manager.get_with(Request::new(server.url("/bytes/100000")), |r| {
        r.ready_read().connect(move |r| {
            seen.fetch_add(r.read_all().len(), Ordering::SeqCst);
        });
    });
    reply.wait();
    assert_eq!(chunks.load(Ordering::SeqCst), 100_000);
    assert_eq!(manager.as_async().max_connections_per_host(), 6);
}
