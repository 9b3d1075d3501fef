//! HTTP over one connection with hyper 1.x's low-level client (`hyper::client::conn`): the
//! handshake that turns a byte stream into an [`HttpConn`] (HTTP/1.1 or HTTP/2), sending a
//! request on it, and the request body with upload progress.
//!
//! Pooling and limits are the scheduler's; this module never decides which connection to use.

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::error::{Error, NetworkError};
use crate::scheduler::PoolConn;
use crate::transport::Io;

/// The body type sent on connections.
pub(crate) type ReqBody = crate::upload::UploadBody;

enum Sender {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
}

/// A connection ready to carry requests.
pub(crate) struct HttpConn {
    sender: Sender,
    /// The connection runs over TLS.
    pub encrypted: bool,
    /// What TLS negotiated, for the replies' attributes.
    pub tls_session: Option<crate::transport::tls::TlsSession>,
    /// Made by accepting certificate errors for one reply: never pooled or shared, so that
    /// requests which did not ignore them never reuse it.
    pub single_use: bool,
}

impl PoolConn for HttpConn {
    fn is_open(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        }
    }

    fn share(&self) -> Option<Self> {
        match &self.sender {
            Sender::H1(_) => None,
            Sender::H2(_) if self.single_use => None,
            Sender::H2(s) => Some(HttpConn {
                sender: Sender::H2(s.clone()),
                encrypted: self.encrypted,
                tls_session: self.tls_session.clone(),
                single_use: false,
            }),
        }
    }
}

impl HttpConn {
    /// Speaks HTTP/1.1 (or HTTP/2 when `http2`) on `io`; the connection's driver runs as a
    /// task on the current runtime until the peer or the last handle closes it.
    pub(crate) async fn handshake(io: Io, http2: bool, encrypted: bool) -> Result<HttpConn, Error> {
        let io = TokioIo::new(io);
        let sender = if http2 {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(|e| protocol_error("HTTP/2 handshake failed", e))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/2 connection ended");
                }
            });
            Sender::H2(sender)
        } else {
            let (sender, conn) = http1::Builder::new()
                .handshake(io)
                .await
                .map_err(|e| protocol_error("HTTP/1.1 handshake failed", e))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/1.1 connection ended");
                }
            });
            Sender::H1(sender)
        };
        Ok(HttpConn {
            sender,
            encrypted,
            tls_session: None,
            single_use: false,
        })
    }

    /// True for an HTTP/2 connection.
    pub(crate) fn is_http2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    /// Sends `request` and waits for the response head.
    pub(crate) async fn send(
        &mut self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, hyper::Error> {
        match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(request).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(request).await
            }
        }
    }
}

fn protocol_error(what: &str, e: hyper::Error) -> Error {
    Error::new(NetworkError::ProtocolFailure, format!("{what}: {e}")).with_source(e)
}

/// Qt's code for a hyper error. `before_response`: no response byte was seen yet.
pub(crate) fn map_hyper_error(e: hyper::Error, before_response: bool) -> Error {
    use std::error::Error as _;
    let io_kind = {
        let mut src = e.source();
        let mut kind = None;
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                kind = Some(io.kind());
                break;
            }
            src = s.source();
        }
        kind
    };
    let (kind, message) = if e.is_user() {
        let cause = e.source().map_or_else(|| e.to_string(), |s| s.to_string());
        (
            NetworkError::ProtocolFailure,
            format!("Reading the request body failed: {cause}"),
        )
    } else if e.is_parse() || e.is_parse_status() {
        (
            NetworkError::ProtocolFailure,
            format!("Malformed HTTP response: {e}"),
        )
    } else if e.is_timeout() {
        (NetworkError::TimeoutError, format!("Timed out: {e}"))
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() || io_kind.is_some() {
        let what = if before_response {
            "Connection closed before the response was received"
        } else {
            "Connection closed before the response body was complete"
        };
        (NetworkError::RemoteHostClosedError, format!("{what}: {e}"))
    } else {
        (NetworkError::ProtocolFailure, format!("HTTP failure: {e}"))
    };
    Error::new(kind, message).with_source(e)
}
