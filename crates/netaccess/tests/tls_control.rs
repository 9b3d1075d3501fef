//! TLS the application controls (issue 13 §6), over real TLS on loopback with certificates
//! made here: a request's own roots, client certificate, peer verify name, minimum version and
//! ALPN list; the session on the reply (peer chain, ALPN, version); the certificate carried by
//! each `SslError`; public-key pins; and the pool keeping requests with different TLS settings
//! on different connections.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netaccess::{
    Certificate, NetworkAccessManager, NetworkError, Reply, Request, SslConfiguration, SslError,
    SslErrorKind, TlsVersion,
};
use netaccess_testserver::TestServer;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUND: Duration = Duration::from_secs(10);

async fn done(reply: &Reply) {
    support::done_within(reply, BOUND).await;
}

/// A CA and a leaf it signs for exactly `names` (no IP SAN unless named).
struct Pki {
    ca_der: Vec<u8>,
    leaf_der: Vec<u8>,
    leaf_key: KeyPair,
}

fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_der: ca.der().to_vec(),
        leaf_der: leaf.der().to_vec(),
        leaf_key,
    }
}

/// A TLS server on 127.0.0.1 answering every HTTP/1.1 request with `hello`, counting its
/// connections. `tls12_only` limits it to TLS 1.2.
struct SmallServer {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl SmallServer {
    async fn start(pki: &Pki, tls12_only: bool) -> SmallServer {
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(pki.leaf_key.serialize_der().into());
        let chain = vec![
            rustls_pki_types::CertificateDer::from(pki.leaf_der.clone()),
            rustls_pki_types::CertificateDer::from(pki.ca_der.clone()),
        ];
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 || head.len() > 64 * 1024 {
                            return;
                        }
                        head.extend_from_slice(&buf[..n]);
                        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            head.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
                            if tls.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        SmallServer { port, connections }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }
}

/// A manager without any trusted root.
fn trusting_nothing() -> NetworkAccessManager {
    NetworkAccessManager::builder()
        .use_system_roots(false)
        .build()
        .unwrap()
}

/// A manager trusting `ca_der` only.
fn trusting(ca_der: &[u8]) -> NetworkAccessManager {
    NetworkAccessManager::builder()
        .use_system_roots(false)
        .add_root_certificate_der(ca_der)
        .build()
        .unwrap()
}

/// Runs `request`, collecting the `SslError`s announced.
async fn run(manager: &NetworkAccessManager, request: Request) -> (Reply, Vec<SslError>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let reply = manager.get_with(request, |r| {
        r.ssl_errors()
            .connect(move |(_, errors)| s.lock().unwrap().extend(errors.iter().cloned()));
    });
    done(&reply).await;
    let errors = seen.lock().unwrap().clone();
    // Shown with --nocapture, and with a failing test.
    eprintln!(
        "{} -> {:?} {:?}",
        reply.url(),
        kinds(&errors),
        reply.error().map(|e| (e.kind(), e.message().to_owned()))
    );
    (reply, errors)
}

fn kinds(errors: &[SslError]) -> Vec<SslErrorKind> {
    errors.iter().map(|e| e.kind()).collect()
}

#[tokio::test]
async fn a_private_root_is_trusted_only_by_the_requests_that_add_it() {
    let server = TestServer::tls().await;
    let manager = trusting_nothing();
    let root = Certificate::from_der(server.ca_cert_der().unwrap());
    let with_root = || {
        Request::new(server.url("/hello"))
            .with_ssl_configuration(SslConfiguration::new().with_ca_certificate(root.clone()))
    };
    let (plain, errors) = run(&manager, Request::new(server.url("/hello"))).await;
    assert_eq!(
        kinds(&errors),
        [SslErrorKind::UnableToGetLocalIssuerCertificate]
    );
    assert_eq!(
        support::kind(&plain),
        Some(NetworkError::SslHandshakeFailedError)
    );
    assert_eq!(manager.get(with_root()).text().await.unwrap(), "hello");
    // Its connection (and TLS session) serves requests with the same settings only.
    let (plain, _) = run(&manager, Request::new(server.url("/hello"))).await;
    assert_eq!(
        support::kind(&plain),
        Some(NetworkError::SslHandshakeFailedError)
    );
    assert_eq!(manager.get(with_root()).text().await.unwrap(), "hello");
    // The PEM form, too.
    let pem = server.ca_cert_pem().unwrap();
    let tls = SslConfiguration::new().with_ca_certificates_pem(pem.as_bytes());
    let reply = manager.get(Request::new(server.url("/hello")).with_ssl_configuration(tls));
    assert_eq!(reply.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn a_client_certificate_set_on_the_request_is_presented() {
    let server = TestServer::builder()
        .tls()
        .tls_require_client_certificate()
        .start()
        .await;
    let manager = trusting(&server.ca_cert_der().unwrap());
    let (cert, key) = server.client_identity_pem().unwrap();
    let identity =
        SslConfiguration::new().with_client_certificate_pem(cert.as_bytes(), key.as_bytes());
    assert_eq!(identity.client_certificate_chain().len(), 1);
    let reply = manager.get(Request::new(server.url("/hello")).with_ssl_configuration(identity));
    assert_eq!(reply.text().await.unwrap(), "hello");
    // A request without it is refused by the server: neither the connection nor the TLS
    // session made with the certificate serves it.
    let (without, _) = run(&manager, Request::new(server.url("/hello"))).await;
    assert!(without.error().is_some(), "{:?}", without.meta().status);
    assert_eq!(server.requests_for("/hello"), 1);
    // Malformed PEM fails the request, naming the problem.
    let bad = SslConfiguration::new().with_client_certificate_pem(b"nope", b"nope");
    let (reply, _) = run(
        &manager,
        Request::new(server.url("/hello")).with_ssl_configuration(bad),
    )
    .await;
    let error = reply.error().unwrap();
    assert_eq!(error.kind(), NetworkError::SslHandshakeFailedError);
    assert!(error.message().contains("client certificate"), "{error}");
}

#[tokio::test]
async fn peer_verify_name_verifies_a_name_other_than_the_url_host() {
    let pki = pki(&["service.test"]);
    let server = SmallServer::start(&pki, false).await;
    let manager = trusting(&pki.ca_der);
    // The URL's host (127.0.0.1) is not in the certificate.
    let (reply, errors) = run(&manager, Request::new(server.url())).await;
    assert_eq!(kinds(&errors), [SslErrorKind::HostNameMismatch]);
    assert_eq!(
        support::kind(&reply),
        Some(NetworkError::SslHandshakeFailedError)
    );
    // Each error carries the certificate it is about.
    assert_eq!(errors[0].certificate().unwrap().der(), &pki.leaf_der[..]);
    let named = Request::new(server.url()).with_peer_verify_name("service.test");
    assert_eq!(named.peer_verify_name(), Some("service.test"));
    assert_eq!(manager.get(named).text().await.unwrap(), "hello");
    let other = Request::new(server.url()).with_peer_verify_name("other.test");
    let (reply, errors) = run(&manager, other).await;
    assert_eq!(kinds(&errors), [SslErrorKind::HostNameMismatch]);
    assert!(reply.error().is_some());
}

#[tokio::test]
async fn a_minimum_of_tls_1_3_refuses_a_tls_1_2_server() {
    let pki = pki(&["127.0.0.1"]);
    let server = SmallServer::start(&pki, true).await;
    let manager = trusting(&pki.ca_der);
    let reply = manager.get(Request::new(server.url()));
    assert_eq!(reply.text().await.unwrap(), "hello");
    let session = reply.ssl_session().unwrap();
    assert_eq!(session.protocol(), TlsVersion::Tls12);
    assert_eq!(reply.tls_version().as_deref(), Some("TLSv1.2"));
    let strict = SslConfiguration::new().with_minimum_version(TlsVersion::Tls13);
    let (reply, errors) = run(
        &manager,
        Request::new(server.url()).with_ssl_configuration(strict),
    )
    .await;
    assert!(errors.is_empty());
    let error = reply.error().unwrap();
    assert_eq!(error.kind(), NetworkError::SslHandshakeFailedError);
    assert!(error.message().contains("TLSv1.3 or later"), "{error}");
}

#[tokio::test]
async fn an_alpn_list_of_http1_forces_http1_on_an_h2_server() {
    let server = TestServer::tls().await;
    let manager = trusting(&server.ca_cert_der().unwrap());
    let reply = manager.get(Request::new(server.url("/hello")));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(reply.http2_was_used());
    assert_eq!(
        reply.ssl_session().unwrap().negotiated_protocol(),
        Some(&b"h2"[..])
    );
    let h1 = SslConfiguration::new().with_allowed_next_protocols(["http/1.1"]);
    let reply = manager.get(Request::new(server.url("/hello")).with_ssl_configuration(h1));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(!reply.http2_was_used());
    assert_eq!(reply.meta().version, Some(http::Version::HTTP_11));
    assert_eq!(
        reply.ssl_session().unwrap().negotiated_protocol(),
        Some(&b"http/1.1"[..])
    );
    assert_eq!(server.stats().h2_requests, 1);
    // A list naming h2 first, for a request that does not allow HTTP/2, offers only the rest.
    let h2_first = SslConfiguration::new().with_allowed_next_protocols(["h2", "http/1.1"]);
    let request = Request::new(server.url("/hello"))
        .with_http2_allowed(false)
        .with_ssl_configuration(h2_first);
    let reply = manager.get(request);
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(!reply.http2_was_used());
}

#[tokio::test]
async fn the_peer_chain_version_and_cipher_are_on_the_reply() {
    let server = TestServer::tls().await;
    let manager = trusting(&server.ca_cert_der().unwrap());
    let reply = manager.get(Request::new(server.url("/hello")));
    reply.bytes().await.unwrap();
    let session = reply.ssl_session().unwrap();
    let chain = session.peer_certificate_chain();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].der(), &server.leaf_cert_der().unwrap()[..]);
    assert_eq!(chain[1].der(), &server.ca_cert_der().unwrap()[..]);
    assert_eq!(session.peer_certificate(), Some(&chain[0]));
    assert_eq!(session.protocol(), TlsVersion::Tls13);
    assert_eq!(Some(session.cipher().to_owned()), reply.tls_cipher());
    assert_eq!(reply.meta().ssl_session, Some(session));
    let plain = TestServer::http1().await;
    let reply = manager.get(Request::new(plain.url("/hello")));
    reply.bytes().await.unwrap();
    assert!(reply.ssl_session().is_none());
}

#[tokio::test]
async fn public_key_pins_accept_the_pinned_key_and_refuse_others() {
    let pki = pki(&["127.0.0.1"]);
    let server = SmallServer::start(&pki, false).await;
    let key_pin: [u8; 32] = sha2::Sha256::digest(pki.leaf_key.public_key_der()).into();
    assert_eq!(
        Certificate::from_der(pki.leaf_der.clone()).public_key_sha256(),
        Some(key_pin)
    );
    let pinned = NetworkAccessManager::builder()
        .use_system_roots(false)
        .add_root_certificate_der(&pki.ca_der)
        .pin_public_key_sha256("127.0.0.1", key_pin)
        .build()
        .unwrap();
    assert_eq!(
        pinned.get(Request::new(server.url())).text().await.unwrap(),
        "hello"
    );
    // A certificate pin of the same host is an alternative: either kind may match.
    let either = NetworkAccessManager::builder()
        .use_system_roots(false)
        .add_root_certificate_der(&pki.ca_der)
        .pin_public_key_sha256("127.0.0.1", [1; 32])
        .pin_certificate_sha256(
            "127.0.0.1",
            Certificate::from_der(pki.leaf_der.clone()).sha256(),
        )
        .build()
        .unwrap();
    assert_eq!(
        either.get(Request::new(server.url())).text().await.unwrap(),
        "hello"
    );
    let other = NetworkAccessManager::builder()
        .use_system_roots(false)
        .add_root_certificate_der(&pki.ca_der)
        .pin_public_key_sha256("127.0.0.1", [9; 32])
        .build()
        .unwrap();
    let (reply, errors) = run(&other, Request::new(server.url())).await;
    assert_eq!(kinds(&errors), [SslErrorKind::CertificateNotPinned]);
    assert_eq!(errors[0].certificate().unwrap().der(), &pki.leaf_der[..]);
    let error = reply.error().unwrap();
    assert_eq!(error.kind(), NetworkError::SslHandshakeFailedError);
    assert!(error.message().contains("pinned"), "{error}");
}

#[tokio::test]
async fn requests_with_different_tls_settings_use_different_connections() {
    let pki = pki(&["127.0.0.1", "service.test"]);
    let server = SmallServer::start(&pki, false).await;
    let manager = trusting(&pki.ca_der);
    let named = || Request::new(server.url()).with_peer_verify_name("service.test");
    for request in [
        Request::new(server.url()),
        Request::new(server.url()),
        named(),
        named(),
        Request::new(server.url()),
    ] {
        assert_eq!(manager.get(request).text().await.unwrap(), "hello");
    }
    // One connection for the plain requests, one for those with the peer verify name; equal
    // settings made separately share theirs.
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    let h1 = || SslConfiguration::new().with_allowed_next_protocols(["http/1.1"]);
    for _ in 0..2 {
        let request = Request::new(server.url()).with_ssl_configuration(h1());
        assert_eq!(manager.get(request).text().await.unwrap(), "hello");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn invalid_tls_settings_fail_the_request_before_connecting() {
    let server = TestServer::tls().await;
    let manager = trusting(&server.ca_cert_der().unwrap());
    for tls in [
        SslConfiguration::new().with_allowed_next_protocols([""]),
        SslConfiguration::new().with_ca_certificates_pem(b"-----BEGIN CERTIFICATE-----\nzz"),
        SslConfiguration::new().with_peer_verify_name("not a name"),
    ] {
        assert!(tls.error().is_some());
        let reply = manager.get(Request::new(server.url("/hello")).with_ssl_configuration(tls));
        done(&reply).await;
        let error = reply.error().unwrap();
        assert_eq!(error.kind(), NetworkError::SslHandshakeFailedError);
        assert!(error.message().contains("TLS configuration"), "{error}");
    }
    assert_eq!(server.stats().connections_accepted, 0);
}

#[cfg(feature = "platform-verifier")]
#[tokio::test]
async fn the_platform_verifier_trusts_added_roots_and_names_unknown_issuers() {
    let pki = pki(&["127.0.0.1"]);
    let server = SmallServer::start(&pki, false).await;
    let platform = || NetworkAccessManager::builder().use_platform_verifier(true);
    let trusting = platform()
        .add_root_certificate_der(&pki.ca_der)
        .build()
        .unwrap();
    assert_eq!(
        trusting
            .get(Request::new(server.url()))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    let untrusting = platform().build().unwrap();
    let (reply, errors) = run(&untrusting, Request::new(server.url())).await;
    assert_eq!(
        kinds(&errors),
        [SslErrorKind::UnableToGetLocalIssuerCertificate]
    );
    assert!(reply.error().is_some());
    // A root added by the request is trusted by the platform verifier too.
    let tls =
        SslConfiguration::new().with_ca_certificate(Certificate::from_der(pki.ca_der.clone()));
    let reply = untrusting.get(Request::new(server.url()).with_ssl_configuration(tls));
    assert_eq!(reply.text().await.unwrap(), "hello");
}
