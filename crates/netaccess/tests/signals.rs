//! Replies and their signals: Qt's order, connection signals, streams and disconnecting, a
//! dropped handle, bounded read buffers, body streams, upload progress, use from other threads,
//! and the remaining request attributes (ranges, host names).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use netaccess::{NetworkAccessManager, NetworkError, Reply, Request};
use netaccess_testserver::TestServer;
use support::{done as finished, kind, tls_manager, LIMIT};

// ----- signals and body ----------------------------------------------------------------------

fn record(reply: &Reply, events: &Arc<Mutex<Vec<String>>>) {
    let e = events.clone();
    reply
        .meta_data_changed()
        .connect(move |_| e.lock().unwrap().push("meta".into()));
    let e = events.clone();
    reply.ready_read().connect(move |r| {
        let n = r.read_all().len();
        e.lock().unwrap().push(format!("ready_read {n}"));
    });
    let e = events.clone();
    reply
        .download_progress()
        .connect(move |(got, total)| e.lock().unwrap().push(format!("progress {got} {total:?}")));
    let e = events.clone();
    reply
        .error_occurred()
        .connect(move |(_, err)| e.lock().unwrap().push(format!("error {}", err.kind())));
    let e = events.clone();
    reply
        .finished()
        .connect(move |_| e.lock().unwrap().push("finished".into()));
}

#[tokio::test]
async fn signals_come_in_qt_order() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let reply = manager.get_with(
        Request::new(server.url("/trickle?bytes=6&interval_ms=60")),
        |r| record(r, &events),
    );
    finished(&reply).await;
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.first().map(String::as_str), Some("meta"), "{ev:?}");
    assert_eq!(ev.last().map(String::as_str), Some("finished"), "{ev:?}");
    assert_eq!(
        ev[ev.len() - 2],
        "progress 6 Some(6)",
        "final progress before finished: {ev:?}"
    );
    // Every progress report follows the ready_read of its bytes.
    let mut read = 0;
    for e in &ev {
        if let Some(n) = e.strip_prefix("ready_read ") {
            read += n.parse::<u64>().unwrap();
        }
        if let Some(p) = e.strip_prefix("progress ") {
            let got: u64 = p.split(' ').next().unwrap().parse().unwrap();
            assert!(got <= read, "{ev:?}");
        }
    }
    assert_eq!(read, 6);
    // Throttled: 6 bytes 60 ms apart give fewer than 6 intermediate reports.
    assert!(
        ev.iter().filter(|e| e.starts_with("progress")).count() <= 5,
        "{ev:?}"
    );

    let events = Arc::new(Mutex::new(Vec::new()));
    let reply = manager.get_with(Request::new(server.url("/status/404")), |r| {
        record(r, &events)
    });
    finished(&reply).await;
    let ev = events.lock().unwrap().clone();
    let n = ev.len();
    assert_eq!(
        &ev[n - 2..],
        ["error ContentNotFoundError", "finished"],
        "{ev:?}"
    );
    assert_eq!(ev.iter().filter(|e| e.starts_with("error")).count(), 1);
}

#[tokio::test]
async fn connection_signals_fire_for_new_and_encrypted_connections() {
    let server = TestServer::tls().await;
    let manager = tls_manager(&server);
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    manager
        .encrypted()
        .connect(move |_| e.lock().unwrap().push("manager encrypted"));
    let reply = manager.get_with(Request::new(server.url("/hello")), |reply| {
        for (signal, name) in [
            (reply.socket_started_connecting(), "connecting"),
            (reply.encrypted(), "encrypted"),
            (reply.request_sent(), "sent"),
            (reply.meta_data_changed(), "meta"),
            (reply.finished(), "finished"),
        ] {
            let e = events.clone();
            signal.connect(move |_| e.lock().unwrap().push(name));
        }
    });
    finished(&reply).await;
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            "connecting",
            "encrypted",
            "manager encrypted",
            "sent",
            "meta",
            "finished"
        ]
    );
}

#[tokio::test]
async fn signal_streams_and_disconnect() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let mut finished_stream = manager.finished().stream();
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    let connection = manager.finished().connect(move |_| *c.lock().unwrap() += 1);
    let first = manager.get(Request::new(server.url("/hello")));
    let got = tokio::time::timeout(LIMIT, finished_stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, first);
    assert!(connection.is_connected());
    assert!(connection.disconnect());
    assert!(!connection.is_connected());
    let second = manager.get(Request::new(server.url("/hello")));
    finished(&second).await;
    assert_eq!(*count.lock().unwrap(), 1);
    // Awaiting a finished signal after the fact resolves at once (latched).
    tokio::time::timeout(Duration::from_millis(100), first.finished())
        .await
        .unwrap();
}

#[tokio::test]
async fn dropped_reply_handle_still_runs_and_buffers() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    manager.finished().connect(move |reply| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(reply.read_all());
        }
    });
    drop(manager.get(Request::new(server.url("/bytes/100000"))));
    let body = tokio::time::timeout(LIMIT, rx).await.unwrap().unwrap();
    assert_eq!(body, netaccess_testserver::expected_bytes(0, 100_000));
}

#[tokio::test]
async fn bounded_read_buffer_applies_back_pressure() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get_with(Request::new(server.url("/bytes/8388608")), |r| {
        r.set_read_buffer_size(64 * 1024)
    });
    assert_eq!(reply.read_buffer_size(), 64 * 1024);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(reply.is_running(), "the transfer waits for the reader");
    let buffered = reply.bytes_available();
    assert!(buffered <= 64 * 1024 + 512 * 1024, "buffered {buffered}");
    let mut reader = reply.clone().into_async_read();
    let mut body = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut body)
        .await
        .unwrap();
    assert_eq!(body.len(), 8 * 1024 * 1024);
    assert!(body == netaccess_testserver::expected_bytes(0, body.len()));
}

#[tokio::test]
async fn body_stream_reads_everything_in_order() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/bytes/3000000?chunked=1")));
    let mut stream = reply.body_stream();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(got == netaccess_testserver::expected_bytes(0, 3_000_000));
    assert_eq!(reply.original_content_length(), None);
    assert_eq!(reply.read(10).len(), 0);
}

#[tokio::test]
async fn upload_progress_reports_the_body() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let progress = Arc::new(Mutex::new(Vec::new()));
    let p = progress.clone();
    let reply = manager.send_with(
        Request::new(server.url("/echo-body")),
        "POST",
        vec![7u8; 100_000],
        |r| {
            r.upload_progress()
                .connect(move |(sent, total)| p.lock().unwrap().push((*sent, *total)));
        },
    );
    assert_eq!(reply.bytes().await.unwrap().len(), 100_000);
    assert_eq!(
        progress.lock().unwrap().last(),
        Some(&(100_000, Some(100_000)))
    );
}

#[tokio::test]
async fn manager_is_usable_from_other_threads() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let url = server.url("/hello");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (m, u) = (manager.clone(), url.clone());
            std::thread::spawn(move || m.get(Request::new(u)))
        })
        .collect();
    for h in handles {
        let reply = h.join().unwrap();
        assert_eq!(reply.text().await.unwrap(), "hello");
    }
}

#[tokio::test]
async fn unknown_host_is_host_not_found() {
    let manager = NetworkAccessManager::builder()
        .resolve("nowhere.test", [])
        .build()
        .unwrap();
    let reply = manager.get(Request::new("http://nowhere.test/"));
    finished(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::HostNotFoundError));
    assert!(reply.error().unwrap().message().contains("nowhere.test"));
}

#[tokio::test]
async fn certificate_for_another_name_is_a_host_name_mismatch() {
    let server = TestServer::tls().await;
    let ip = server.addr().ip();
    let pem = server.ca_cert_pem().unwrap();
    let manager = NetworkAccessManager::builder()
        .add_root_certificate_pem(pem.as_bytes())
        .resolve("example.test", [ip])
        .resolve("wrong.test", [ip])
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    manager
        .ssl_errors()
        .connect(move |(_, errors)| s.lock().unwrap().extend(errors.iter().map(|e| e.kind())));
    // The certificate names example.test: that works through the resolver override.
    let ok = manager.get(Request::new(format!(
        "https://example.test:{}/hello",
        server.port()
    )));
    assert_eq!(ok.text().await.unwrap(), "hello");
    let wrong = manager.get(Request::new(format!(
        "https://wrong.test:{}/hello",
        server.port()
    )));
    finished(&wrong).await;
    assert_eq!(kind(&wrong), Some(NetworkError::SslHandshakeFailedError));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![netaccess::SslErrorKind::HostNameMismatch]
    );
}

#[tokio::test]
async fn range_requests_get_partial_content() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply =
        manager.get(Request::new(server.url("/bytes/1000")).with_header("Range", "bytes=900-"));
    let body = reply.bytes().await.unwrap();
    assert_eq!(reply.status_code(), Some(206));
    assert_eq!(reply.header("content-range").unwrap(), "bytes 900-999/1000");
    assert_eq!(
        body.to_vec(),
        netaccess_testserver::expected_bytes(900, 100)
    );
    let etag = reply.header("etag").unwrap().to_str().unwrap().to_owned();
    // A stale validator gets the whole body; an unsatisfiable range a 416.
    let stale = manager.get(
        Request::new(server.url("/bytes/1000"))
            .with_header("Range", "bytes=900-")
            .with_header("If-Range", "\"other\""),
    );
    assert_eq!(stale.bytes().await.unwrap().len(), 1000);
    let fresh = manager.get(
        Request::new(server.url("/bytes/1000"))
            .with_header("Range", "bytes=10-19")
            .with_header("If-Range", &etag),
    );
    assert_eq!(
        fresh.bytes().await.unwrap().to_vec(),
        netaccess_testserver::expected_bytes(10, 10)
    );
    let beyond =
        manager.get(Request::new(server.url("/bytes/1000")).with_header("Range", "bytes=1000-"));
    finished(&beyond).await;
    assert_eq!(beyond.status_code(), Some(416));
}

/// A server that reads one request (head and `body_len` body bytes), then answers only once
/// `go` fires.
async fn answer_when_told(body_len: usize) -> (u16, tokio::sync::oneshot::Sender<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, told) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before sending the request");
            seen.extend_from_slice(&buf[..n]);
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                if seen.len() >= end + 4 + body_len {
                    break;
                }
            }
        }
        let _ = told.await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await;
    });
    (port, go)
}

#[tokio::test]
async fn request_sent_fires_when_the_request_is_written_not_when_the_answer_comes() {
    for body in [None, Some("x".repeat(100_000))] {
        let (port, go) = answer_when_told(body.as_ref().map_or(0, String::len)).await;
        let manager = NetworkAccessManager::new();
        let request = Request::new(format!("http://127.0.0.1:{port}/"));
        let (sent_tx, sent_rx) = tokio::sync::oneshot::channel::<bool>();
        let sent_tx = Mutex::new(Some(sent_tx));
        let setup = |reply: &Reply| {
            reply.request_sent().connect(move |reply| {
                // No response head yet: the server has not answered.
                let head_seen = reply.status().is_some();
                if let Some(tx) = sent_tx.lock().unwrap().take() {
                    let _ = tx.send(head_seen);
                }
            });
        };
        let reply = match &body {
            None => manager.get_with(request, setup),
            Some(body) => manager.send_with(request, "POST", body.clone(), setup),
        };
        let head_seen = tokio::time::timeout(LIMIT, sent_rx)
            .await
            .expect("request_sent fired while the server held its answer")
            .unwrap();
        assert!(!head_seen, "request_sent came after the response head");
        go.send(()).unwrap();
        assert_eq!(reply.bytes().await.unwrap(), "ok");
    }
}
