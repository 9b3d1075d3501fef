//! The connector: from an origin to a connected byte stream. Direct TCP, an HTTP proxy
//! (absolute-form requests follow), a CONNECT tunnel whose `407` answers come from a
//! credentials callback, SOCKS5, or a Unix domain socket; then TLS for https, where
//! certificate errors are announced through a callback and the handshake is made again
//! when the application chose to ignore them. The request's own TLS settings travel in the
//! origin (they are part of the pool key).
//!
//! It speaks no HTTP beyond CONNECT: the HTTP handshake on the stream is the backend's.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue};
use tokio::net::TcpStream;

use super::tls::{Handshake, IgnoreSsl, SslError, TlsConfig, TlsFailure, TlsSession};
use super::{proxy, Io, Observe, ResolveOverrides};
use crate::error::{Error, NetworkError};
use crate::events::Event;
use crate::proxy::{Proxy, ProxyKind};
use crate::scheduler::{Mode, Origin};

/// How many times a CONNECT is sent to a proxy that answers `407`.
const MAX_CONNECT_ROUNDS: usize = 4;

/// The settings the connector works with.
pub(crate) struct Connector<'a> {
    pub timeout: Duration,
    pub resolve: &'a ResolveOverrides,
    pub tls: &'a TlsConfig,
}

/// What the connector asks of the request it connects for.
pub(crate) trait ConnectEvents: Send + Sync {
    /// Certificate errors met in a TLS handshake, to announce (`ssl_errors` signals).
    fn ssl_errors(&self, errors: &[SslError]);
    /// Hears the connecting phases.
    fn observe(&self, event: Event<'_>);
    /// The certificate errors the application ignores now.
    fn ignored_ssl_errors(&self) -> IgnoreSsl;
    /// A proxy answered CONNECT with `407` and these headers: the `Proxy-Authorization` to
    /// send on the next CONNECT to `target`, or `None` to give up.
    fn proxy_challenge<'a>(
        &'a self,
        proxy: &'a Proxy,
        headers: &'a HeaderMap,
        target: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<HeaderValue>> + Send + 'a>>;
}

/// A connected stream, before any HTTP.
pub(crate) struct Connected {
    pub io: Io,
    /// Encrypted (https).
    pub encrypted: bool,
    /// HTTP/2 was chosen: by ALPN, or by prior knowledge.
    pub http2: bool,
    pub tls_session: Option<TlsSession>,
    /// Certificate errors that were met and ignored.
    pub ssl_errors: Vec<SslError>,
    /// The address the stream is connected to (the proxy's, through a proxy).
    pub remote: Option<std::net::SocketAddr>,
}

impl Connector<'_> {
    /// Connects to `origin`, through its proxy if it has one.
    pub(crate) async fn connect(
        &self,
        origin: &Origin,
        events: &dyn ConnectEvents,
    ) -> Result<Connected, Error> {
        let plain = |io, remote| Connected {
            io,
            encrypted: false,
            http2: origin.mode == Mode::Http2Direct,
            tls_session: None,
            ssl_errors: Vec::new(),
            remote,
        };
        if origin.is_local() {
            let stream = super::connect_unix(&origin.host, self.timeout).await?;
            return Ok(Connected {
                http2: false,
                ..plain(Io::Unix(stream), None)
            });
        }
        let https = origin.scheme == "https";
        if let Some(error) = origin
            .tls
            .as_ref()
            .and_then(|s| s.config.error())
            .filter(|_| https)
        {
            // Nothing is connected for a request whose TLS settings are invalid.
            return Err(Error::new(
                NetworkError::SslHandshakeFailedError,
                format!("Invalid TLS configuration of the request: {error}"),
            ));
        }
        let tcp = self.reach(origin, events).await?;
        let remote = tcp.peer_addr().ok();
        if !https {
            return Ok(plain(Io::Tcp(tcp), remote));
        }
        events.observe(Event::TlsStart);
        let (stream, h2, seen, session, announced) =
            match self.tls(tcp, origin, events.ignored_ssl_errors()).await {
                Ok((stream, h2, seen, session)) => (stream, h2, seen, session, false),
                Err(failure) if !failure.ssl_errors.is_empty() => {
                    events.ssl_errors(&failure.ssl_errors);
                    let ignore = events.ignored_ssl_errors();
                    if !ignore.covers_all(&failure.ssl_errors) {
                        return Err(failure.error);
                    }
                    // A slot chose to go on: connect again, accepting the errors it ignored.
                    let tcp = self.reach(origin, events).await?;
                    let (stream, h2, _, session) =
                        self.tls(tcp, origin, ignore).await.map_err(|f| f.error)?;
                    (stream, h2, failure.ssl_errors, session, true)
                }
                Err(failure) => return Err(failure.error),
            };
        events.observe(Event::TlsEnd);
        if !seen.is_empty() && !announced {
            events.ssl_errors(&seen);
        }
        Ok(Connected {
            io: Io::Tls(Box::new(stream)),
            encrypted: true,
            http2: h2 || origin.mode == Mode::Http2Direct,
            tls_session: session,
            ssl_errors: seen,
            remote,
        })
    }

    /// The TLS handshake within the connect timeout.
    async fn tls(
        &self,
        tcp: TcpStream,
        origin: &Origin,
        ignore: IgnoreSsl,
    ) -> Result<Handshake, TlsFailure> {
        let offer_h2 = origin.mode != Mode::Http1;
        let settings = origin.tls.as_deref();
        let done = self
            .tls
            .handshake(tcp, &origin.host, offer_h2, &ignore, settings);
        tokio::time::timeout(self.timeout, done)
            .await
            .unwrap_or_else(|_| {
                Err(TlsFailure {
                    error: Error::new(NetworkError::TimeoutError, "TLS handshake timed out"),
                    ssl_errors: Vec::new(),
                })
            })
    }

    /// A TCP stream to the origin: direct, to the HTTP proxy, or through a CONNECT tunnel or
    /// a SOCKS5 proxy.
    async fn reach(&self, origin: &Origin, events: &dyn ConnectEvents) -> Result<TcpStream, Error> {
        let (timeout, resolve) = (self.timeout, self.resolve);
        let observe: Observe<'_> = &|event| events.observe(event);
        let Some(proxy) = &origin.proxy else {
            let (host, port) = (&origin.host, origin.port);
            return super::connect_tcp(host, port, timeout, resolve, observe).await;
        };
        if proxy.kind() == ProxyKind::Socks5Proxy {
            let (host, port) = (&origin.host, origin.port);
            return proxy::connect_socks5(proxy, host, port, timeout, resolve, observe).await;
        }
        if origin.absolute_form() {
            return proxy::connect_proxy(proxy, timeout, resolve, observe).await;
        }
        let target = format!("{}:{}", origin.host, origin.port);
        let mut authorization: Option<HeaderValue> = None;
        for _round in 0..MAX_CONNECT_ROUNDS {
            let tunnel = proxy::connect_tunnel(
                proxy,
                &origin.host,
                origin.port,
                authorization.as_ref(),
                timeout,
                resolve,
                observe,
            )
            .await?;
            let headers = match tunnel {
                proxy::Tunnel::Open(stream) => return Ok(stream),
                proxy::Tunnel::AuthRequired(headers) => headers,
            };
            authorization = events.proxy_challenge(proxy, &headers, &target).await;
            if authorization.is_none() {
                break;
            }
        }
        Err(Error::new(
            NetworkError::ProxyAuthenticationRequiredError,
            format!(
                "The proxy {}:{} requires authentication",
                proxy.host(),
                proxy.port()
            ),
        ))
    }
}
