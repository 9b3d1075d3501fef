//! Request bodies: files, streams and readers, chunked uploads, replay rules on redirects,
//! upload progress and the transfer timeout while uploading.

mod support;

use support::done;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use netaccess::{Body, NetworkAccessManager, NetworkError, Reply, Request};
use netaccess_testserver::TestServer;
use serde_json::Value;

async fn echo_json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap()
}

/// `count` chunks of `size` bytes, one every `gap`.
fn slow_stream(
    count: usize,
    size: usize,
    gap: Duration,
) -> impl futures_core::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(0, move |i| async move {
        if i == count {
            return None;
        }
        tokio::time::sleep(gap).await;
        Some((Ok(Bytes::from(vec![b'x'; size])), i + 1))
    })
}

fn temp_file(name: &str, len: usize) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("netaccess-upload-{}-{name}", std::process::id()));
    std::fs::write(&path, vec![b'f'; len]).unwrap();
    path
}

#[tokio::test]
async fn a_file_body_is_streamed_with_its_length() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let path = temp_file("file", 3_000_000);
    let body = Body::from_file(&path).unwrap();
    assert_eq!(body.len(), Some(3_000_000));
    assert!(body.is_replayable());
    let json = echo_json(&manager.post(Request::new(server.url("/echo")), body)).await;
    assert_eq!(json["body_len"], 3_000_000);
    assert_eq!(json["headers"]["content-length"], "3000000");
    assert!(
        Body::from_file(std::env::temp_dir()).is_err(),
        "a directory is not a body"
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_stream_of_unknown_length_goes_chunked() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let body = Body::from_stream(slow_stream(10, 1000, Duration::from_millis(1)), None);
    assert!(!body.is_replayable() && body.len().is_none());
    let json = echo_json(&manager.put(Request::new(server.url("/echo")), body)).await;
    assert_eq!(json["method"], "PUT");
    assert_eq!(json["body_len"], 10_000);
    assert_eq!(json["headers"]["transfer-encoding"], "chunked");
    assert!(json["headers"].get("content-length").is_none());

    let reader = Body::from_reader(&b"read from a reader"[..], Some(18));
    let json = echo_json(&manager.post(Request::new(server.url("/echo")), reader)).await;
    assert_eq!(
        (
            json["body_len"].as_u64(),
            json["headers"]["content-length"].as_str()
        ),
        (Some(18), Some("18"))
    );
}

fn encode(url: &str) -> String {
    url.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn a_307_resends_files_but_not_streams() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let target = server.url(&format!(
        "/redirect-to?url={}&status=307",
        encode(&server.url("/echo"))
    ));
    let path = temp_file("redirect", 50_000);
    let json =
        echo_json(&manager.post(Request::new(&target), Body::from_file(&path).unwrap())).await;
    assert_eq!(
        (json["method"].as_str(), json["body_len"].as_u64()),
        (Some("POST"), Some(50_000))
    );

    let stream = Body::from_stream(slow_stream(3, 10, Duration::from_millis(1)), None);
    let reply = manager.post(Request::new(&target), stream);
    done(&reply).await;
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::ContentReSendError)
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn upload_progress_is_throttled_and_ends_complete() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let progress = Arc::new(Mutex::new(Vec::new()));
    let p = progress.clone();
    let body = Body::from_stream(
        slow_stream(20, 500, Duration::from_millis(20)),
        Some(10_000),
    );
    let reply = manager.send_with(Request::new(server.url("/echo")), "POST", body, |r| {
        r.upload_progress()
            .connect(move |(sent, total)| p.lock().unwrap().push((*sent, *total)));
    });
    assert_eq!(echo_json(&reply).await["body_len"], 10_000);
    let progress = progress.lock().unwrap().clone();
    assert_eq!(progress.last(), Some(&(10_000, Some(10_000))));
    assert!(
        progress.len() < 20,
        "20 chunks 20 ms apart, throttled to 100 ms: {progress:?}"
    );
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[tokio::test]
async fn the_transfer_timeout_restarts_while_the_body_moves() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    // 1.2 s of uploading, a chunk every 100 ms, under a 400 ms inactivity timeout: fine.
    let body = Body::from_stream(slow_stream(12, 100, Duration::from_millis(100)), None);
    let reply = manager.post(
        Request::new(server.url("/echo")).with_transfer_timeout(Duration::from_millis(400)),
        body,
    );
    assert_eq!(echo_json(&reply).await["body_len"], 1200);
    assert_eq!(reply.error().map(|e| e.to_string()), None);

    // A body that stops moving times out.
    let stalled = futures_util::StreamExt::chain(
        slow_stream(1, 100, Duration::from_millis(1)),
        futures_util::stream::pending(),
    );
    let reply = manager.post(
        Request::new(server.url("/echo")).with_transfer_timeout(Duration::from_millis(300)),
        Body::from_stream(stalled, None),
    );
    done(&reply).await;
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::TimeoutError)
    );
}

#[tokio::test]
async fn a_failing_body_stream_fails_the_reply() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let failing = futures_util::stream::iter([
        Ok(Bytes::from_static(b"start")),
        Err(std::io::Error::other("disk on fire")),
    ]);
    let reply = manager.post(
        Request::new(server.url("/echo")),
        Body::from_stream(failing, None),
    );
    done(&reply).await;
    let error = reply.error().expect("an error");
    assert_eq!(error.kind(), NetworkError::ProtocolFailure, "{error}");
    assert!(
        error
            .message()
            .contains("Reading the request body failed: disk on fire"),
        "{error}"
    );
}

#[tokio::test]
async fn a_multipart_of_files_is_resent_on_a_307() {
    use netaccess::{MultiPart, MultiPartKind, Part};
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let path = temp_file("multipart", 300_000);
    let multipart = MultiPart::new(MultiPartKind::FormData)
        .with_part(Part::form_field("title", "report"))
        .with_part(Part::form_file(
            "upload",
            "data.bin",
            Body::from_file(&path).unwrap(),
        ));
    let target = server.url(&format!(
        "/redirect-to?url={}&status=307",
        encode(&server.url("/multipart"))
    ));
    let json = echo_json(&manager.post_multipart(Request::new(&target), multipart)).await;
    let parts = json["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{json}");
    assert_eq!(
        (parts[1]["file_name"].as_str(), parts[1]["len"].as_u64()),
        (Some("data.bin"), Some(300_000))
    );
    assert_eq!(json["mime_version"], "1.0");

    // With a stream part it cannot be sent twice.
    let stream = Body::from_stream(slow_stream(2, 10, Duration::from_millis(1)), Some(20));
    let multipart =
        MultiPart::new(MultiPartKind::FormData).with_part(Part::form_file("s", "s.bin", stream));
    let reply = manager.post_multipart(Request::new(&target), multipart);
    done(&reply).await;
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::ContentReSendError)
    );
    let _ = std::fs::remove_file(path);
}
