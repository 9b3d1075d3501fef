//! Opening connections: name resolution and TCP with Happy Eyeballs ([`tcp`]), TLS
//! ([`tls`]), proxies ([`proxy`]), Unix sockets, all put together by the connector
//! ([`connect`]).
//! Maps every failure to Qt's codes (refused, host not found, timeout, handshake failed).
//!
//! Speaks no HTTP: that is [`crate::backend`] ([`framing`] only watches HTTP/1 response heads
//! for ambiguous framing).

pub(crate) mod connect;
pub(crate) mod dns;
pub(crate) mod framing;
#[cfg(feature = "hickory")]
pub(crate) mod hickory;
pub(crate) use tcp::connect_tcp;
pub(crate) mod proxy;
pub(crate) mod tcp;
pub(crate) mod tls;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{Error, NetworkError};

/// A connected byte stream: plain TCP or TLS over TCP.
pub(crate) enum Io {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// HTTP over a Unix domain socket (`unix+http` URLs).
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Io::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Io::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Io::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Io::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Io::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Tcp(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
            Io::Unix(s) => s.is_write_vectored(),
        }
    }
}

/// A manager's name resolution (fixed addresses, cache, resolver): see [`dns`].
pub(crate) type ResolveOverrides = dns::Dns;

/// Hears the connecting phases (DNS, TCP, TLS) as [`Event`](crate::events::Event)s.
pub(crate) type Observe<'a> = &'a (dyn Fn(crate::events::Event<'_>) + Send + Sync);

/// An [`Observe`] that hears nothing.
#[cfg(test)]
pub(crate) fn unobserved(_: crate::events::Event<'_>) {}

/// Connects to the Unix domain socket at `path` within `timeout`.
pub(crate) async fn connect_unix(
    path: &str,
    timeout: Duration,
) -> Result<tokio::net::UnixStream, Error> {
    match tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => {
            let kind = match e.kind() {
                io::ErrorKind::NotFound => NetworkError::HostNotFoundError,
                io::ErrorKind::ConnectionRefused => NetworkError::ConnectionRefusedError,
                io::ErrorKind::PermissionDenied => NetworkError::ContentAccessDenied,
                _ => NetworkError::UnknownNetworkError,
            };
            Err(Error::new(
                kind,
                format!("Cannot connect to the local socket {path}: {e}"),
            )
            .with_source(e))
        }
        Err(_) => Err(Error::new(
            NetworkError::TimeoutError,
            format!("Connecting to the local socket {path} timed out after {timeout:?}"),
        )),
    }
}

/// Qt's code for a failed connect.
pub(crate) fn connect_error(host: &str, e: &io::Error) -> Error {
    let kind = match e.kind() {
        io::ErrorKind::ConnectionRefused => NetworkError::ConnectionRefusedError,
        io::ErrorKind::TimedOut => NetworkError::TimeoutError,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            NetworkError::RemoteHostClosedError
        }
        io::ErrorKind::NotFound => NetworkError::HostNotFoundError,
        _ => NetworkError::UnknownNetworkError,
    };
    let what = match kind {
        NetworkError::ConnectionRefusedError => "Connection refused".to_string(),
        _ => e.to_string(),
    };
    Error::new(kind, format!("{what} ({host})"))
}
