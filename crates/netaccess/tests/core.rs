//! Integration tests of the manager, the scheduler, replies and signals against the in-process
//! test servers: real sockets on 127.0.0.1, real TLS with a generated certificate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use netaccess::{NetworkAccessManager, NetworkError, Priority, Reply, Request};
use netaccess_testserver::{RawFault, TestServer};

const LIMIT: Duration = Duration::from_secs(30);

async fn finished(reply: &Reply) {
    tokio::time::timeout(LIMIT, reply.finished())
        .await
        .expect("reply finished in time");
}

async fn finish_all(replies: &[Reply]) {
    for r in replies {
        finished(r).await;
    }
}

fn tls_manager(server: &TestServer) -> NetworkAccessManager {
    NetworkAccessManager::builder()
        .add_root_certificate_pem(server.ca_cert_pem().expect("TLS server").as_bytes())
        .unwrap()
        .build()
}

fn kind(reply: &Reply) -> Option<NetworkError> {
    reply.error().map(|e| e.kind())
}

// ----- the scheduler ---------------------------------------------------------------------------

#[tokio::test]
async fn six_connections_and_six_in_flight_for_100_slow_requests() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let replies: Vec<_> = (0..100)
        .map(|_| manager.get(Request::new(server.url("/slow/100"))))
        .collect();
    finish_all(&replies).await;
    assert!(replies
        .iter()
        .all(|r| r.error().is_none() && r.status_code() == Some(200)));
    let stats = server.stats();
    assert_eq!(stats.peak_in_flight, 6, "{stats:?}");
    assert_eq!(stats.connections_accepted, 6, "{stats:?}");
    assert_eq!(stats.requests_total, 100);
}

#[tokio::test]
async fn six_per_origin_in_parallel_across_three_origins() {
    let servers = [
        TestServer::http1().await,
        TestServer::http1().await,
        TestServer::http1().await,
    ];
    let manager = NetworkAccessManager::new();
    let replies: Vec<_> = (0..90)
        .map(|i| manager.get(Request::new(servers[i % 3].url("/slow/150"))))
        .collect();
    let started = Instant::now();
    finish_all(&replies).await;
    for s in &servers {
        let stats = s.stats();
        assert_eq!(stats.peak_in_flight, 6, "{stats:?}");
        assert_eq!(stats.connections_accepted, 6, "{stats:?}");
    }
    // 30 requests per origin, 6 at a time, 150 ms each: about 5 rounds in parallel, not 15.
    assert!(
        started.elapsed() < Duration::from_millis(150 * 12),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn configured_limit_of_two_is_respected() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .max_connections_per_host(2)
        .build();
    assert_eq!(manager.max_connections_per_host(), 2);
    let replies: Vec<_> = (0..20)
        .map(|_| manager.get(Request::new(server.url("/slow/50"))))
        .collect();
    finish_all(&replies).await;
    let stats = server.stats();
    assert_eq!(
        (stats.peak_in_flight, stats.connections_accepted),
        (2, 2),
        "{stats:?}"
    );
}

#[tokio::test]
async fn per_request_limit_fixes_the_origin_limit() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let replies: Vec<_> = (0..12)
        .map(|_| manager.get(Request::new(server.url("/slow/50")).with_max_connections_per_host(3)))
        .collect();
    finish_all(&replies).await;
    let stats = server.stats();
    assert_eq!(
        (stats.peak_in_flight, stats.connections_accepted),
        (3, 3),
        "{stats:?}"
    );
}

#[tokio::test]
async fn high_priority_requests_queued_after_low_ones_start_first() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .max_connections_per_host(1)
        .build();
    let order = Arc::new(Mutex::new(Vec::new()));
    let log = order.clone();
    manager.finished().connect(move |r| {
        let tag = r
            .request()
            .headers()
            .get("x-tag")
            .map(|v| v.to_str().unwrap().to_owned());
        log.lock().unwrap().extend(tag);
    });
    let blocker = manager.get(Request::new(server.url("/delay/300")));
    let mut replies = vec![blocker];
    for i in 0..5 {
        let r = Request::new(server.url("/hello"))
            .with_priority(Priority::Low)
            .with_header("X-Tag", &format!("low{i}"));
        replies.push(manager.get(r));
    }
    for i in 0..5 {
        let r = Request::new(server.url("/hello"))
            .with_priority(Priority::High)
            .with_header("X-Tag", &format!("high{i}"));
        replies.push(manager.get(r));
    }
    finish_all(&replies).await;
    let order = order.lock().unwrap().clone();
    let expected: Vec<String> = (0..5)
        .map(|i| format!("high{i}"))
        .chain((0..5).map(|i| format!("low{i}")))
        .collect();
    assert_eq!(order, expected);
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn keep_alive_reuses_one_connection_for_100_sequential_requests() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    for _ in 0..100 {
        let reply = manager.get(Request::new(server.url("/hello")));
        assert_eq!(reply.text().await.unwrap(), "hello");
        assert!(reply.error().is_none());
    }
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn one_tls_connection_for_100_requests_to_an_h2_origin() {
    let server = TestServer::tls().await;
    let manager = tls_manager(&server);
    let replies: Vec<_> = (0..100)
        .map(|_| manager.get(Request::new(server.url("/bytes/1024"))))
        .collect();
    finish_all(&replies).await;
    for r in &replies {
        assert_eq!(r.error().map(|e| e.to_string()), None);
        assert!(r.http2_was_used() && r.is_encrypted());
        assert_eq!(r.read_all().len(), 1024);
    }
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert_eq!(stats.h2_requests, 100);
}

#[tokio::test]
async fn tls_http1_origin_gets_six_connections() {
    let server = TestServer::builder().tls_http1_only().start().await;
    let manager = tls_manager(&server);
    let replies: Vec<_> = (0..30)
        .map(|_| manager.get(Request::new(server.url("/slow/100"))))
        .collect();
    finish_all(&replies).await;
    assert!(replies
        .iter()
        .all(|r| r.error().is_none() && !r.http2_was_used() && r.is_encrypted()));
    let stats = server.stats();
    assert_eq!(
        (stats.connections_accepted, stats.peak_in_flight),
        (6, 6),
        "{stats:?}"
    );
}

#[tokio::test]
async fn h2c_by_prior_knowledge_multiplexes_on_one_connection() {
    let server = TestServer::h2c().await;
    let manager = NetworkAccessManager::new();
    let replies: Vec<_> = (0..100)
        .map(|_| manager.get(Request::new(server.url("/slow/50")).with_http2_direct(true)))
        .collect();
    finish_all(&replies).await;
    assert!(replies
        .iter()
        .all(|r| r.error().is_none() && r.http2_was_used() && !r.is_encrypted()));
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert!(stats.peak_in_flight > 6, "multiplexed: {stats:?}");
}

#[tokio::test]
async fn clear_connection_cache_closes_idle_connections() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    manager.clear_connection_cache();
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    manager.clear_access_cache();
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.stats().connections_accepted, 3);
}

#[tokio::test]
async fn idle_connections_expire() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .idle_timeout(Duration::from_millis(100))
        .build();
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        server.stats().connections_open,
        0,
        "the idle connection was closed"
    );
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.stats().connections_accepted, 2);
}

#[tokio::test]
async fn a_reused_connection_closed_by_the_server_is_retried_once() {
    let server = TestServer::builder()
        .raw(RawFault::CloseAfterResponses(1))
        .start()
        .await;
    let manager = NetworkAccessManager::new();
    for _ in 0..5 {
        let reply = manager.get(Request::new(server.url("/x")));
        assert_eq!(reply.text().await.unwrap(), "hello");
        assert_eq!(kind(&reply), None);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 5, "{stats:?}");
    // The server read each later request on the old connection, then closed it unanswered.
    assert_eq!(stats.requests_total, 9, "{stats:?}");
}

#[tokio::test]
async fn a_post_on_a_reused_connection_closed_by_the_server_is_not_retried() {
    let server = TestServer::builder()
        .raw(RawFault::CloseAfterResponses(1))
        .start()
        .await;
    let manager = NetworkAccessManager::new();
    let first = manager.get(Request::new(server.url("/x")));
    assert_eq!(first.text().await.unwrap(), "hello");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let post = manager.post(Request::new(server.url("/x")), "data");
    finished(&post).await;
    assert_eq!(kind(&post), Some(NetworkError::RemoteHostClosedError));
    assert_eq!(server.stats().connections_accepted, 1);
}

// ----- abort -----------------------------------------------------------------------------------

#[tokio::test]
async fn abort_of_a_queued_request_removes_it_from_the_queue() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .max_connections_per_host(1)
        .build();
    let running = manager.get(Request::new(server.url("/delay/300")));
    let queued = manager.get(Request::new(server.url("/hello")));
    let finished_count = Arc::new(Mutex::new(0));
    let c = finished_count.clone();
    queued.finished().connect(move |_| *c.lock().unwrap() += 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    queued.abort();
    queued.abort();
    assert!(queued.is_finished());
    assert_eq!(kind(&queued), Some(NetworkError::OperationCanceledError));
    assert!(matches!(queued.bytes().await, Err(e) if e.is_canceled()));
    finished(&running).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(*finished_count.lock().unwrap(), 1);
    assert_eq!(server.requests_for("/hello"), 0);
    // The slot is free again.
    let after = manager.get(Request::new(server.url("/hello")));
    assert_eq!(after.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn abort_of_a_running_request_finishes_it_once() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/stall-after-headers")));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (e1, e2) = (events.clone(), events.clone());
    reply
        .error_occurred()
        .connect(move |(_, e)| e1.lock().unwrap().push(format!("error {}", e.kind())));
    reply
        .finished()
        .connect(move |_| e2.lock().unwrap().push("finished".to_string()));
    tokio::time::timeout(LIMIT, reply.meta_data_changed().next())
        .await
        .unwrap();
    assert!(reply.is_running());
    reply.abort();
    assert!(!reply.is_running());
    reply.abort();
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            "error OperationCanceledError".to_string(),
            "finished".into()
        ]
    );
    // The aborted connection is closed, not reused.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.stats().connections_open, 0);
}

// ----- faults ----------------------------------------------------------------------------------

async fn fault(server: &TestServer, path: &str, timeout: Option<Duration>) -> Reply {
    let manager = NetworkAccessManager::new();
    let mut request = Request::new(server.url(path));
    if let Some(t) = timeout {
        request = request.with_transfer_timeout(t);
    }
    let reply = manager.get(request);
    finished(&reply).await;
    reply
}

#[tokio::test]
async fn stalled_body_times_out() {
    let server = TestServer::http1().await;
    let started = Instant::now();
    let reply = fault(
        &server,
        "/stall-after-headers",
        Some(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(kind(&reply), Some(NetworkError::TimeoutError));
    assert_eq!(reply.status_code(), Some(200));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    let server = TestServer::http1().await;
    let reply = fault(&server, "/never-respond", Some(Duration::from_millis(300))).await;
    assert_eq!(kind(&reply), Some(NetworkError::TimeoutError));
    let silent = TestServer::builder()
        .raw(RawFault::AcceptAndSilence)
        .start()
        .await;
    let reply = fault(&silent, "/", Some(Duration::from_millis(300))).await;
    assert_eq!(kind(&reply), Some(NetworkError::TimeoutError));
}

#[tokio::test]
async fn slow_trickle_under_the_timeout_succeeds() {
    let server = TestServer::http1().await;
    let reply = fault(
        &server,
        "/trickle?bytes=8&interval_ms=50",
        Some(Duration::from_millis(500)),
    )
    .await;
    assert_eq!(kind(&reply), None);
    assert_eq!(reply.read_all().len(), 8);
}

#[tokio::test]
async fn manager_transfer_timeout_applies_when_the_request_sets_none() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .transfer_timeout(Duration::from_millis(200))
        .build();
    let reply = manager.get(Request::new(server.url("/never-respond")));
    finished(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::TimeoutError));
}

#[tokio::test]
async fn truncated_bodies_are_errors_not_short_bodies() {
    let server = TestServer::http1().await;
    for path in ["/close-mid-body?size=100000", "/wrong-length"] {
        let reply = fault(&server, path, None).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::RemoteHostClosedError),
            "{path}"
        );
        assert!(
            reply.bytes().await.is_err(),
            "{path}: the stream ends with the error"
        );
    }
    let raw = TestServer::builder()
        .raw(RawFault::WrongContentLength)
        .start()
        .await;
    let reply = fault(&raw, "/", None).await;
    assert_eq!(kind(&reply), Some(NetworkError::RemoteHostClosedError));
}

#[tokio::test]
async fn malformed_responses_are_protocol_failures() {
    for f in [
        RawFault::MalformedStatusLine,
        RawFault::MalformedHeader,
        RawFault::OversizedHeaders,
    ] {
        let server = TestServer::builder().raw(f).start().await;
        let reply = fault(&server, "/", Some(Duration::from_secs(10))).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::ProtocolFailure),
            "{f:?}: {:?}",
            reply.error()
        );
    }
}

#[tokio::test]
async fn reset_and_close_before_response_are_remote_host_closed() {
    for f in [RawFault::Reset, RawFault::CloseBeforeResponse] {
        let server = TestServer::builder().raw(f).start().await;
        let reply = fault(&server, "/", Some(Duration::from_secs(10))).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::RemoteHostClosedError),
            "{f:?}: {:?}",
            reply.error()
        );
    }
}

#[tokio::test]
async fn refused_connection_is_connection_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(format!("http://127.0.0.1:{port}/")));
    finished(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ConnectionRefusedError));
    assert!(reply.error().unwrap().message().contains("refused"));
}

#[tokio::test]
async fn untrusted_certificate_fails_the_handshake_with_ssl_errors() {
    let server = TestServer::tls().await;
    let manager = NetworkAccessManager::builder()
        .use_system_roots(false)
        .build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    manager
        .ssl_errors()
        .connect(move |(_, errors)| s.lock().unwrap().extend(errors.iter().map(|e| e.kind())));
    let reply = manager.get(Request::new(server.url("/hello")));
    finished(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::SslHandshakeFailedError));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![netaccess::SslErrorKind::UnableToGetLocalIssuerCertificate]
    );
}

#[tokio::test]
async fn ignoring_ssl_errors_in_the_slot_lets_the_request_go_on() {
    let server = TestServer::tls().await;
    let manager = NetworkAccessManager::builder()
        .use_system_roots(false)
        .build();
    let reply = manager.get_with(Request::new(server.url("/hello")), |r| {
        r.ssl_errors()
            .connect(|(reply, _errors)| reply.ignore_ssl_errors());
    });
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert_eq!(kind(&reply), None);
    assert!(reply.is_encrypted());
}

// ----- bad input -------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_gives_clear_errors_not_panics() {
    let manager = NetworkAccessManager::new();
    let cases = [
        (
            manager.get(Request::new("not a url")),
            NetworkError::ProtocolUnknownError,
        ),
        (
            manager.get(Request::new("http://[::1")),
            NetworkError::ProtocolUnknownError,
        ),
        (
            manager.get(Request::new("ftp://127.0.0.1/x")),
            NetworkError::ProtocolUnknownError,
        ),
        (
            manager.get(Request::new("gopher://127.0.0.1/")),
            NetworkError::ProtocolUnknownError,
        ),
        (
            manager.get(Request::new("http://127.0.0.1:1/").with_header("X-Bad", "line\r\nbreak")),
            NetworkError::ProtocolInvalidOperationError,
        ),
        (
            manager.get(Request::new("http://127.0.0.1:1/").with_header("Bad Name", "v")),
            NetworkError::ProtocolInvalidOperationError,
        ),
        (
            manager.send_custom_request(Request::new("http://127.0.0.1:1/"), "BAD VERB", ""),
            NetworkError::ProtocolInvalidOperationError,
        ),
    ];
    for (reply, expected) in cases {
        finished(&reply).await;
        let error = reply.error().expect("an error");
        assert_eq!(error.kind(), expected, "{error}");
        assert!(!error.message().is_empty());
    }
}

#[tokio::test]
async fn custom_verbs_equal_to_standard_ones_are_those_operations() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.send_custom_request(Request::new(server.url("/echo")), "get", "");
    assert_eq!(*reply.operation(), netaccess::Operation::Get);
    let echo: serde_json::Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    assert_eq!(echo["method"], "GET");
    let reply = manager.send_custom_request(Request::new(server.url("/echo")), "PATCH", "abc");
    let echo: serde_json::Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (echo["method"].as_str(), echo["body_len"].as_u64()),
        (Some("PATCH"), Some(3))
    );
    for (reply, method) in [
        (
            manager.post(Request::new(server.url("/echo")), "hello"),
            "POST",
        ),
        (
            manager.put(Request::new(server.url("/echo")), "hello"),
            "PUT",
        ),
        (manager.delete(Request::new(server.url("/echo"))), "DELETE"),
    ] {
        let echo: serde_json::Value =
            serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
        assert_eq!(echo["method"], method);
    }
    let head = manager.head(Request::new(server.url("/bytes/5000")));
    assert!(head.bytes().await.unwrap().is_empty());
    assert_eq!(head.original_content_length(), Some(5000));
}

#[tokio::test]
async fn raw_header_reaches_the_server() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager
        .get(Request::new(server.url("/echo")).with_header("User-Agent", "MyOwnBrowser 1.0"));
    let echo: serde_json::Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    assert_eq!(echo["headers"]["user-agent"], "MyOwnBrowser 1.0");
}

// ----- HTTP status codes ------------------------------------------------------------------------

#[tokio::test]
async fn http_error_statuses_map_to_qt_codes_and_keep_their_body() {
    use NetworkError::*;
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let table = [
        (400, Some(ProtocolInvalidOperationError)),
        (401, Some(AuthenticationRequiredError)),
        (403, Some(ContentAccessDenied)),
        (404, Some(ContentNotFoundError)),
        (405, Some(ContentOperationNotPermittedError)),
        (407, Some(ProxyAuthenticationRequiredError)),
        (409, Some(ContentConflictError)),
        (410, Some(ContentGoneError)),
        (418, Some(ProtocolInvalidOperationError)),
        (429, Some(UnknownContentError)),
        (500, Some(InternalServerError)),
        (501, Some(OperationNotImplementedError)),
        (502, Some(UnknownServerError)),
        (503, Some(ServiceUnavailableError)),
        (504, Some(UnknownServerError)),
        (200, None),
        (204, None),
        (302, None),
    ];
    for (status, expected) in table {
        let reply = manager.get(Request::new(server.url(&format!("/status/{status}"))));
        let body = reply.bytes().await.unwrap();
        assert_eq!(reply.status_code(), Some(status));
        assert_eq!(kind(&reply), expected, "{status}");
        if expected.is_some() {
            assert_eq!(&body[..], format!("status {status}").as_bytes());
            assert!(reply.error().unwrap().message().contains("server replied"));
        }
    }
}

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
        .build();
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
        .unwrap()
        .resolve("example.test", [ip])
        .resolve("wrong.test", [ip])
        .build();
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
