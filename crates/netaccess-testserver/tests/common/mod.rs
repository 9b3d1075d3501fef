//! Small clients for the integration tests: hyper HTTP/1.1 and HTTP/2 connections over
//! plain TCP or TLS, and raw-socket helpers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Upper bound for any single test step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

pub type Http1Sender = http1::SendRequest<Full<Bytes>>;
pub type Http2Sender = http2::SendRequest<Full<Bytes>>;

/// An HTTP/1.1 client connection over any stream.
pub async fn http1_over<I>(io: I) -> Http1Sender
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .expect("h1 handshake");
    tokio::spawn(connection);
    sender
}

/// A prior-knowledge HTTP/2 client connection over any stream.
pub async fn http2_over<I>(io: I) -> Http2Sender
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    sender
}

pub async fn http1_connect(addr: SocketAddr) -> Http1Sender {
    http1_over(TcpStream::connect(addr).await.expect("connect")).await
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    request("GET", path, Bytes::new())
}

pub fn request(method: &str, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .body(Full::new(body.into()))
        .expect("valid request")
}

/// HTTP/2 requests need an absolute URI.
pub fn get_h2(base_url: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri(format!("{base_url}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

pub async fn body_bytes(response: Response<Incoming>) -> Result<Bytes, hyper::Error> {
    tokio::time::timeout(STEP_TIMEOUT, response.into_body().collect())
        .await
        .expect("body within timeout")
        .map(|collected| collected.to_bytes())
}

/// One GET on a fresh HTTP/1.1 connection: response head and whole body.
pub async fn get_once(addr: SocketAddr, path: &str) -> (http::response::Parts, Bytes) {
    let mut sender = http1_connect(addr).await;
    let response = sender.send_request(get(path)).await.expect("response");
    let (parts, body) = response.into_parts();
    let bytes = body_bytes(Response::from_parts(parts.clone(), body))
        .await
        .expect("complete body");
    (parts, bytes)
}

/// TLS client trusting only `ca_der`, offering `alpn`.
pub async fn tls_connect(
    addr: SocketAddr,
    server_name: &str,
    ca_der: Vec<u8>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der))
        .expect("CA accepted");
    let provider = Arc::new(ring_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(server_name.to_owned()).expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// Writes `request` on a fresh socket and reads until EOF (or error).
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut received = Vec::new();
    tokio::time::timeout(STEP_TIMEOUT, stream.read_to_end(&mut received))
        .await
        .expect("raw read within timeout")?;
    Ok(received)
}

/// Polls `condition` until it holds or the step timeout passes.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// rustls's *ring* provider. rustls 0.23.48 deprecates it because *ring* has no post-quantum key
/// exchange; we keep *ring* (no C toolchain or cmake needed, unlike aws-lc-rs) until a pure-Rust
/// post-quantum provider is available, see docs/dependencies.md.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
