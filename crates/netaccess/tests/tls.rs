//! TLS control: every certificate error the test server can produce, the ignore paths (all,
//! or a list), pinning, and the negotiated version and cipher on the reply.

mod support;

use support::done;

use std::sync::{Arc, Mutex};

use netaccess::{NetworkAccessManager, NetworkError, Reply, Request, SslErrorKind};
use netaccess_testserver::TestServer;
use sha2::Digest;

fn trusting(server: &TestServer) -> netaccess::ManagerBuilder {
    NetworkAccessManager::builder()
        .use_system_roots(false)
        .add_root_certificate_pem(server.ca_cert_pem().unwrap().as_bytes())
}

/// The kinds reported by `ssl_errors` for one request, and the reply.
async fn errors_of(manager: &NetworkAccessManager, url: String) -> (Vec<SslErrorKind>, Reply) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let reply = manager.get_with(Request::new(url), |r| {
        r.ssl_errors()
            .connect(move |(_, errors)| s.lock().unwrap().extend(errors.iter().map(|e| e.kind())));
    });
    done(&reply).await;
    let kinds = seen.lock().unwrap().clone();
    (kinds, reply)
}

#[tokio::test]
async fn each_certificate_problem_is_named() {
    let expired = TestServer::builder().tls().tls_expired().start().await;
    let (kinds, reply) =
        errors_of(&trusting(&expired).build().unwrap(), expired.url("/hello")).await;
    assert_eq!(kinds, [SslErrorKind::CertificateExpired]);
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::SslHandshakeFailedError)
    );

    let future = TestServer::builder()
        .tls()
        .tls_not_yet_valid()
        .start()
        .await;
    let (kinds, _) = errors_of(&trusting(&future).build().unwrap(), future.url("/hello")).await;
    assert_eq!(kinds, [SslErrorKind::CertificateNotYetValid]);

    let unknown = TestServer::tls().await;
    let manager = NetworkAccessManager::builder()
        .use_system_roots(false)
        .build()
        .unwrap();
    let (kinds, _) = errors_of(&manager, unknown.url("/hello")).await;
    assert_eq!(kinds, [SslErrorKind::UnableToGetLocalIssuerCertificate]);

    let (kinds, _) = errors_of(
        &trusting(&unknown)
            .resolve("elsewhere.test", [std::net::Ipv4Addr::LOCALHOST.into()])
            .build()
            .unwrap(),
        format!("https://elsewhere.test:{}/hello", unknown.port()),
    )
    .await;
    assert_eq!(kinds, [SslErrorKind::HostNameMismatch]);
}

#[tokio::test]
async fn ignoring_a_list_accepts_only_those_errors() {
    let expired = TestServer::builder().tls().tls_expired().start().await;
    let manager = trusting(&expired).build().unwrap();
    // The slot ignores exactly what it was shown: the request goes on.
    let reply = manager.get_with(Request::new(expired.url("/hello")), |r| {
        r.ssl_errors()
            .connect(|(reply, errors)| reply.ignore_ssl_errors_list(errors));
    });
    assert_eq!(reply.text().await.unwrap(), "hello");
    // Ignoring another kind does not cover an expired certificate (and the connection the
    // first reply accepted is not reused: it was made for that reply only).
    let reply = manager.get_with(Request::new(expired.url("/hello")), |r| {
        r.ignore_ssl_errors_list(&[]);
        r.ssl_errors()
            .connect(|(reply, _)| reply.ignore_ssl_errors_list(&[]));
    });
    done(&reply).await;
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::SslHandshakeFailedError)
    );
    // Ignoring all, set before the request starts.
    let reply = manager.get_with(Request::new(expired.url("/hello")), |r| {
        r.ignore_ssl_errors()
    });
    assert_eq!(reply.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn pinned_certificates() {
    let server = TestServer::tls().await;
    let digest: [u8; 32] = sha2::Sha256::digest(server.leaf_cert_der().unwrap()).into();
    let pinned = trusting(&server)
        .pin_certificate_sha256("127.0.0.1", digest)
        .build()
        .unwrap();
    assert_eq!(
        pinned
            .get(Request::new(server.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );

    let other = trusting(&server)
        .pin_certificate_sha256("127.0.0.1", [7; 32])
        .build()
        .unwrap();
    let (kinds, reply) = errors_of(&other, server.url("/hello")).await;
    assert_eq!(kinds, [SslErrorKind::CertificateNotPinned]);
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::SslHandshakeFailedError)
    );
}

#[tokio::test]
async fn version_and_cipher_are_visible() {
    let server = TestServer::tls().await;
    let manager = trusting(&server).build().unwrap();
    let reply = manager.get(Request::new(server.url("/hello")));
    reply.bytes().await.unwrap();
    assert_eq!(reply.tls_version().as_deref(), Some("TLSv1.3"));
    assert!(
        reply.tls_cipher().is_some_and(|c| c.starts_with("TLS13_")),
        "{:?}",
        reply.tls_cipher()
    );
    let plain = TestServer::http1().await;
    let reply = manager.get(Request::new(plain.url("/hello")));
    reply.bytes().await.unwrap();
    assert_eq!(reply.tls_version(), None);
}

#[tokio::test]
async fn client_certificates_are_presented_when_the_server_asks() {
    let server = TestServer::builder()
        .tls()
        .tls_require_client_certificate()
        .start()
        .await;
    let (cert, key) = server.client_identity_pem().unwrap();
    let with_identity = trusting(&server)
        .client_certificate_pem(cert.as_bytes(), key.as_bytes())
        .build()
        .unwrap();
    assert_eq!(
        with_identity
            .get(Request::new(server.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    // Without one, the server ends the handshake.
    let without = trusting(&server).build().unwrap();
    let reply = without.get(Request::new(server.url("/hello")));
    done(&reply).await;
    assert!(reply.error().is_some());
    assert_eq!(server.requests_for("/hello"), 1);
    // Bad PEM is refused when the manager is built.
    assert!(NetworkAccessManager::builder()
        .client_certificate_pem(b"nope", b"nope")
        .build()
        .is_err());
}
