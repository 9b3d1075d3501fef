//! Route behaviour over HTTP/1.1, h2c and TLS.

mod common;

use common::*;
use http::StatusCode;
use netaccess_testserver::{expected_bytes, TestServer};

#[tokio::test]
async fn bytes_route_sends_pattern_with_content_length() {
    let server = TestServer::http1().await;
    let (head, body) = get_once(server.addr(), "/bytes/200003").await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["content-length"], "200003");
    assert_eq!(body.len(), 200_003);
    assert_eq!(body.as_ref(), expected_bytes(0, 200_003).as_slice());
}

#[tokio::test]
async fn bytes_route_can_be_chunked_with_small_chunks() {
    let server = TestServer::http1().await;
    let (head, body) = get_once(server.addr(), "/bytes/1000?chunked=1&chunk=7").await;
    assert!(head.headers.get("content-length").is_none());
    assert_eq!(head.headers["transfer-encoding"], "chunked");
    assert_eq!(body.as_ref(), expected_bytes(0, 1000).as_slice());
}

#[tokio::test]
async fn simple_routes_answer() {
    let server = TestServer::http1().await;
    let addr = server.addr();
    assert_eq!(get_once(addr, "/").await.1, "hello");
    assert_eq!(get_once(addr, "/hello").await.1, "hello");
    let (head, body) = get_once(addr, "/nope").await;
    assert_eq!(
        (head.status, body.as_ref()),
        (StatusCode::NOT_FOUND, b"not found".as_ref())
    );
    let (head, body) = get_once(addr, "/status/418").await;
    assert_eq!(
        (head.status.as_u16(), body.as_ref()),
        (418, b"status 418".as_ref())
    );
    let (head, body) = get_once(addr, "/header?X-One=1&X-Two=a%20b").await;
    assert_eq!(
        (
            head.headers["x-one"].as_ref(),
            head.headers["x-two"].as_ref()
        ),
        (b"1".as_ref(), b"a b".as_ref())
    );
    assert_eq!(body, "ok");
    assert_eq!(get_once(addr, "/delay/20").await.1, "delayed");
    assert_eq!(
        get_once(addr, "/slow/10?size=5").await.1.as_ref(),
        expected_bytes(0, 5).as_slice()
    );
    assert_eq!(
        get_once(addr, "/trickle?bytes=3&interval_ms=5")
            .await
            .1
            .as_ref(),
        expected_bytes(0, 3).as_slice()
    );
    let (head, _) = get_once(addr, "/redirect/2").await;
    assert_eq!(head.headers["location"], "/redirect/1");
}

#[tokio::test]
async fn bad_input_gets_400_not_a_panic() {
    let server = TestServer::http1().await;
    for path in [
        "/bytes/abc",
        "/status/99",
        "/status/1000",
        "/delay/-1",
        "/header?bad%20name=1",
        "/redirect-to?url=/x&status=200",
    ] {
        let (head, _) = get_once(server.addr(), path).await;
        assert_eq!(head.status, StatusCode::BAD_REQUEST, "{path}");
    }
    // The server still works afterwards.
    assert_eq!(get_once(server.addr(), "/hello").await.1, "hello");
}

#[tokio::test]
async fn echo_reports_request_and_echo_body_returns_it() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    let mut echo_request = request("POST", "/echo?x=1", "twelve bytes");
    echo_request
        .headers_mut()
        .append("x-multi", "a".parse().unwrap());
    echo_request
        .headers_mut()
        .append("x-multi", "b".parse().unwrap());
    let body = body_bytes(sender.send_request(echo_request).await.unwrap())
        .await
        .unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/echo");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["headers"]["x-multi"], "a, b");
    assert_eq!(echo["body_len"], 12);
    assert_eq!(echo["version"], "HTTP/1.1");

    let mut upload = request("PUT", "/echo-body", "payload");
    upload
        .headers_mut()
        .insert("content-type", "text/x-test".parse().unwrap());
    let response = sender.send_request(upload).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/x-test");
    assert_eq!(body_bytes(response).await.unwrap(), "payload");
}

#[tokio::test]
async fn broken_bodies_end_in_client_errors() {
    let server = TestServer::http1().await;
    for path in ["/close-mid-body?size=300000", "/wrong-length"] {
        let mut sender = http1_connect(server.addr()).await;
        let response = sender
            .send_request(get(path))
            .await
            .expect("headers arrive");
        assert!(body_bytes(response).await.is_err(), "{path}");
    }
}

#[tokio::test]
async fn reset_route_resets_the_connection() {
    let server = TestServer::http1().await;
    let result = raw_exchange(server.addr(), b"GET /reset HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let error = result.expect_err("connection reset");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn stalled_body_counts_in_flight_until_client_leaves() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    let response = sender
        .send_request(get("/stall-after-headers"))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(server.stats().in_flight, 1);
    drop(response);
    drop(sender);
    assert!(eventually(|| server.stats().in_flight == 0).await);
    assert!(eventually(|| server.stats().connections_open == 0).await);
}

#[tokio::test]
async fn h2c_serves_prior_knowledge_http2_and_http1() {
    let server = TestServer::h2c().await;
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut sender = http2_over(stream).await;
    let response = sender
        .send_request(get_h2(&server.base_url(), "/bytes/100000"))
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(
        body_bytes(response).await.unwrap().as_ref(),
        expected_bytes(0, 100_000).as_slice()
    );
    let echo = body_bytes(
        sender
            .send_request(get_h2(&server.base_url(), "/echo"))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&echo).unwrap();
    assert_eq!(echo["version"], "HTTP/2");
    assert_eq!(get_once(server.addr(), "/hello").await.1, "hello");
    let stats = server.stats();
    assert_eq!((stats.h2_requests, stats.requests_total), (2, 3));
}

#[tokio::test]
async fn tls_negotiates_h2_with_a_client_trusting_the_ca() {
    let server = TestServer::tls().await;
    assert!(server.base_url().starts_with("https://127.0.0.1:"));
    assert!(server
        .ca_cert_pem()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let ca = server.ca_cert_der().unwrap();
    let tls = tls_connect(server.addr(), "127.0.0.1", ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let mut sender = http2_over(tls).await;
    let response = sender
        .send_request(get_h2(&server.base_url(), "/hello"))
        .await
        .unwrap();
    assert_eq!(body_bytes(response).await.unwrap(), "hello");
    assert_eq!(server.stats().h2_requests, 1);
}

#[tokio::test]
async fn tls_http1_only_uses_http1_and_custom_names() {
    let server = TestServer::builder()
        .tls_http1_only()
        .tls_hostnames(&["custom.test"])
        .start()
        .await;
    let ca = server.ca_cert_der().unwrap();
    let tls = tls_connect(server.addr(), "custom.test", ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(b"http/1.1".as_slice())
    );
    let mut sender = http1_over(tls).await;
    let response = sender.send_request(get("/bytes/10")).await.unwrap();
    assert_eq!(
        body_bytes(response).await.unwrap().as_ref(),
        expected_bytes(0, 10).as_slice()
    );
}

#[tokio::test]
async fn huge_bytes_body_is_streamed_not_allocated() {
    use http_body_util::BodyExt;

    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    let response = sender.send_request(get("/bytes/1073741824")).await.unwrap();
    assert_eq!(response.headers()["content-length"], "1073741824");
    let mut body = response.into_body();
    let mut received = Vec::new();
    while received.len() < 200_000 {
        let frame = body.frame().await.expect("more frames").expect("frame");
        if let Ok(data) = frame.into_data() {
            received.extend_from_slice(&data);
        }
    }
    assert_eq!(received, expected_bytes(0, received.len()));
    drop(body);
    assert!(eventually(|| server.stats().in_flight == 0).await);
}
