//! How replies fail: timeouts, truncated and malformed responses, resets, refused connections,
//! certificate errors, bad input from the application, HTTP error statuses mapped to Qt's
//! codes. Each against a real server on 127.0.0.1.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netaccess::{NetworkAccessManager, NetworkError, Reply, Request};
use netaccess_testserver::{RawFault, TestServer};
use support::{done as finished, kind};

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
        .build()
        .unwrap();
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
        .build()
        .unwrap();
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
        .build()
        .unwrap();
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

#[tokio::test]
async fn repeated_headers_are_joined_and_text_follows_the_charset() {
    // Latin-1 "café" (0xE9), a repeated header, and UTF-16LE with a BOM.
    let server = support::ScriptedServer::start(|index, _| match index {
        0 => support::response(
            "200 OK",
            &[
                "Content-Type: text/plain; charset=\"ISO-8859-1\"",
                "X-Tag: a",
                "X-Tag: b",
            ],
            b"caf\xe9",
        ),
        _ => support::response(
            "200 OK",
            &["Content-Type: text/plain"],
            b"\xff\xfeh\x00i\x00",
        ),
    })
    .await;
    let manager = NetworkAccessManager::new();
    let latin1 = manager.get(Request::new(server.url("/latin1")));
    assert_eq!(latin1.text().await.unwrap(), "café");
    assert_eq!(
        latin1.header("x-tag").unwrap(),
        "a, b",
        "joined as Qt's rawHeader"
    );
    let utf16 = manager.get(Request::new(server.url("/utf16")));
    assert_eq!(
        utf16.text().await.unwrap(),
        "hi",
        "the byte-order mark decides"
    );
}
