//! Connections opened ahead of time (`connect_to_host`) and HTTP over Unix domain sockets.

mod support;

use std::time::Duration;
use support::done;

use netaccess::{NetworkAccessManager, NetworkError, Request};
use netaccess_testserver::{TestServer, UnixTestServer};

#[tokio::test]
async fn connect_to_host_opens_the_connection_the_next_request_uses() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let ready = manager.connect_to_host("127.0.0.1", server.port());
    done(&ready).await;
    assert_eq!(ready.error().map(|e| e.to_string()), None);
    assert_eq!(server.stats().connections_accepted, 1);
    assert_eq!(server.stats().requests_total, 0, "no request was sent");

    let connecting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = connecting.clone();
    let reply = manager.get_with(Request::new(server.url("/hello")), |r| {
        r.socket_started_connecting()
            .connect(move |_| flag.store(true, std::sync::atomic::Ordering::SeqCst));
    });
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(
        !connecting.load(std::sync::atomic::Ordering::SeqCst),
        "the request reused the connection"
    );
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn connect_to_host_encrypted_gets_the_h2_connection_ready() {
    let server = TestServer::tls().await;
    let manager = NetworkAccessManager::builder()
        .add_root_certificate_pem(server.ca_cert_pem().unwrap().as_bytes())
        .build()
        .unwrap();
    let ready = manager.connect_to_host_encrypted("127.0.0.1", server.port());
    done(&ready).await;
    assert_eq!(ready.error().map(|e| e.to_string()), None);
    let replies: Vec<_> = (0..10)
        .map(|_| manager.get(Request::new(server.url("/hello"))))
        .collect();
    for r in &replies {
        assert_eq!(r.text().await.unwrap(), "hello");
        assert!(r.http2_was_used());
    }
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn connect_to_host_reports_failures() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let manager = NetworkAccessManager::new();
    let ready = manager.connect_to_host("127.0.0.1", port);
    done(&ready).await;
    assert_eq!(
        ready.error().map(|e| e.kind()),
        Some(NetworkError::ConnectionRefusedError)
    );
}

fn socket_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("netaccess-{}-{name}.sock", std::process::id()))
}

#[tokio::test]
async fn http_over_a_unix_socket() {
    let server = UnixTestServer::start(socket_path("http")).await.unwrap();
    let manager = NetworkAccessManager::new();
    assert!(manager.supported_schemes().contains(&"unix+http"));
    for scheme in ["unix+http", "local+http"] {
        let request =
            Request::new(format!("{scheme}://example.test/echo")).with_unix_socket(server.path());
        let reply = manager.get(request);
        let json: serde_json::Value =
            serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
        assert_eq!(json["path"], "/echo");
        assert_eq!(
            json["headers"]["host"], "example.test",
            "Host comes from the URL"
        );
        assert!(!reply.is_encrypted());
    }
    // Keep-alive over the socket, and redirects within the scheme.
    let reply = manager
        .get(Request::new("unix+http://localhost/redirect/2").with_unix_socket(server.path()));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert_eq!(reply.url().as_str(), "unix+http://localhost/redirect/0");
    // One connection per scheme (the pool keys by scheme), each kept alive across requests.
    assert_eq!(server.stats().connections_accepted, 2);
}

#[tokio::test]
async fn unix_socket_errors_are_clear() {
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new("unix+http://localhost/"));
    done(&reply).await;
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::ProtocolInvalidOperationError)
    );
    let reply = manager
        .get(Request::new("unix+http://localhost/").with_unix_socket(socket_path("missing")));
    done(&reply).await;
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::HostNotFoundError)
    );
}

#[tokio::test]
async fn a_tls_handshake_that_never_ends_hits_the_connect_timeout() {
    let silent = TestServer::builder()
        .raw(netaccess_testserver::RawFault::AcceptAndSilence)
        .start()
        .await;
    let manager = NetworkAccessManager::builder()
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let reply = manager.get(Request::new(format!(
        "https://127.0.0.1:{}/",
        silent.port()
    )));
    done(&reply).await;
    let error = reply.error().expect("an error");
    assert_eq!(error.kind(), NetworkError::TimeoutError, "{error}");
    assert!(
        error.message().contains("TLS handshake timed out"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Happy Eyeballs through the manager: a host whose first address never answers a SYN (a
/// loopback listener whose accept queue is full) and whose second one serves. The request
/// succeeds well inside the connect timeout instead of spending it on the first address.
#[tokio::test]
async fn a_black_holed_first_address_is_raced_by_the_next_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hole = tokio::net::TcpSocket::new_v4().unwrap();
    hole.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let hole = hole.listen(0).unwrap();
    let port = hole.local_addr().unwrap().port();
    let _filler = std::net::TcpStream::connect(("127.0.0.2", port)).unwrap();
    let good = tokio::net::TcpListener::bind(("127.0.0.3", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = good.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    let manager = NetworkAccessManager::builder()
        .resolve(
            "dual.test",
            ["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()],
        )
        .connect_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let reply = manager.get(Request::new(format!("http://dual.test:{port}/")));
    assert_eq!(reply.text().await.unwrap(), "ok");
    drop(hole);
}
