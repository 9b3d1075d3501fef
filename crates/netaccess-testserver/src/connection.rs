//! Serving one accepted TCP connection in a hyper mode: optional TLS handshake,
//! protocol choice (HTTP/1.1, prior-knowledge HTTP/2, or ALPN), and the abortive
//! close requested by the `/reset` route.

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::auth::DigestNonces;
use crate::reset::{ResetSwitch, ResettableStream};
use crate::routes::{handle, RequestContext};
use crate::shutdown::ShutdownAwareExecutor;
use crate::stats::Counters;

/// Which HTTP versions a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireProtocol {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (TLS connections that negotiated `h2`).
    Http2,
    /// HTTP/1.1, or HTTP/2 if the client starts with the prior-knowledge preface.
    Http1OrHttp2,
}

/// How the connections of one hyper-mode server are served.
#[derive(Debug)]
pub(crate) struct HyperSettings {
    /// Protocol for cleartext connections (ignored when `tls` is set).
    pub(crate) cleartext_protocol: WireProtocol,
    /// TLS configuration; connections pick HTTP/2 or HTTP/1.1 from ALPN.
    pub(crate) tls: Option<Arc<ServerConfig>>,
    pub(crate) counters: Arc<Counters>,
    /// Digest nonces issued by this server.
    pub(crate) digest_nonces: Arc<DigestNonces>,
    pub(crate) executor: ShutdownAwareExecutor,
}

/// Serves `stream` until the client leaves, hyper gives up, or `/reset` is requested.
pub(crate) async fn serve_hyper_connection(stream: TcpStream, settings: Arc<HyperSettings>) {
    let reset = ResetSwitch::default();
    let context = RequestContext {
        counters: Arc::clone(&settings.counters),
        reset: reset.clone(),
        digest_nonces: Arc::clone(&settings.digest_nonces),
    };
    let io = ResettableStream::new(stream, reset.clone());
    let serve = serve_stream(io, &settings, context);
    tokio::select! {
        _ = serve => {}
        // Dropping `serve` drops the stream, which then closes with RST.
        _ = reset.requested() => {}
    }
}

async fn serve_stream(io: ResettableStream, settings: &HyperSettings, context: RequestContext) {
    let executor = settings.executor.clone();
    let Some(tls_config) = &settings.tls else {
        return serve_http(io, settings.cleartext_protocol, context, executor).await;
    };
    let acceptor = TlsAcceptor::from(Arc::clone(tls_config));
    let Ok(tls_stream) = acceptor.accept(io).await else {
        return;
    };
    let negotiated_h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let protocol = if negotiated_h2 {
        WireProtocol::Http2
    } else {
        WireProtocol::Http1
    };
    serve_http(tls_stream, protocol, context, executor).await;
}

/// Runs hyper over `io`; connection errors (client gone, aborted bodies) are expected.
pub(crate) async fn serve_http<I>(
    io: I,
    protocol: WireProtocol,
    context: RequestContext,
    executor: ShutdownAwareExecutor,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let service = service_fn(move |request| handle(request, context.clone()));
    let mut builder = auto::Builder::new(executor);
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = match protocol {
        WireProtocol::Http1 => builder.http1_only(),
        WireProtocol::Http2 => builder.http2_only(),
        WireProtocol::Http1OrHttp2 => builder,
    };
    let _ = builder.serve_connection(io, service).await;
}
