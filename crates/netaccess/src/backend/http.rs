//! HTTP over one connection with hyper 1.x's low-level client (`hyper::client::conn`): the
//! handshake that turns a byte stream into an [`HttpConn`] (HTTP/1.1 or HTTP/2), sending a
//! request on it, and the request body with upload progress.
//!
//! Pooling and limits are the scheduler's; this module never decides which connection to use.
//!
//! HTTP/2 connections get a keep-alive PING ([`Http2Options`]), flow-control windows sized so
//! that replies nobody reads cannot stall the other streams ([`H2_STREAM_WINDOW`]), and a
//! response header list limit ([`H2_MAX_HEADER_LIST`]). [`unprocessed`] tells which HTTP/2
//! failures left the request unprocessed by the server (safe to send again).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::backend::h2settings::{PeerSettings, SettingsTap};
use crate::error::{Error, NetworkError};
use crate::scheduler::PoolConn;
use crate::transport::Io;

/// Most header fields an HTTP/1 response head may carry (as curl and Qt); more is a
/// `ProtocolFailure`.
pub(crate) const MAX_RESPONSE_HEADERS: usize = 100;

/// The body type sent on connections.
pub(crate) type ReqBody = crate::upload::UploadBody;

/// The receive window of one HTTP/2 stream (1 MiB). Bytes a stream received but nobody read
/// stay counted against the connection window too, so the connection window is 16 times
/// larger: up to 15 streams whose replies are not read (bounded read buffers) leave the
/// connection room for the others.
pub(crate) const H2_STREAM_WINDOW: u32 = 1024 * 1024;
/// The receive window of one HTTP/2 connection (16 MiB): the most a connection buffers for
/// streams that are not read.
pub(crate) const H2_CONNECTION_WINDOW: u32 = 16 * H2_STREAM_WINDOW;
/// The largest HTTP/2 response header list accepted (64 KiB, decoded, as counted by RFC 9113
/// §6.5.2); a larger one fails the request with `ProtocolFailure`.
pub(crate) const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// The default HTTP/2 keep-alive: a PING after 30 s without a frame from the server, and the
/// connection is declared dead when its answer takes longer than 20 s.
pub(crate) const H2_KEEP_ALIVE_DEFAULT: (Duration, Duration) =
    (Duration::from_secs(30), Duration::from_secs(20));
/// The range keep-alive durations are clamped to (below 10 ms would flood the peer; far-future
/// deadlines would overflow the timer).
const H2_KEEP_ALIVE_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(24 * 3600));

/// HTTP/2 settings of a manager's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Http2Options {
    /// PING interval and the time allowed for its answer; `None`: no keep-alive PINGs.
    pub keep_alive: Option<(Duration, Duration)>,
    /// How long a new connection waits for the server's SETTINGS (its connection preface,
    /// RFC 9113 §3.4) before failing with `TimeoutError`: the manager's connect timeout.
    pub settings_timeout: Duration,
}

impl Default for Http2Options {
    fn default() -> Self {
        Http2Options {
            keep_alive: Some(H2_KEEP_ALIVE_DEFAULT),
            settings_timeout: crate::manager::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl Http2Options {
    /// Keep-alive with both durations clamped to 10 ms ..= 24 h.
    pub(crate) fn with_keep_alive(interval: Duration, timeout: Duration) -> Self {
        let (lo, hi) = H2_KEEP_ALIVE_RANGE;
        Http2Options {
            keep_alive: Some((interval.clamp(lo, hi), timeout.clamp(lo, hi))),
            ..Http2Options::default()
        }
    }
}

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
    /// The TLS handshake accepted certificate errors (ignored by the application): the
    /// connection is not a secure channel for HSTS (RFC 6797 §8.1).
    pub certificate_errors_ignored: bool,
    /// HTTP/2: one clone per handle (the pool's, and each exchange's until its response head
    /// arrives), so the count of requests waiting for a head is the clone count less one.
    streams: Option<Arc<()>>,
    /// HTTP/2: the server's SETTINGS (its stream limit).
    peer: Option<Arc<PeerSettings>>,
    /// Set (for every handle of an HTTP/2 connection) once the server sent GOAWAY: no new
    /// request may use the connection, even before hyper notices it closing.
    retired: Arc<AtomicBool>,
    /// HTTP/1: stops the connection's driver task when this (only) handle goes.
    _driver: Option<DriverGuard>,
}

/// Aborts an HTTP/1 connection's driver task when the connection's handle goes. Nothing can use
/// the connection any more; a driver still writing the body of a request whose response came
/// early, to a server that stopped reading, would otherwise hold the socket open for ever.
struct DriverGuard(tokio::task::AbortHandle);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long a connection taken from the idle pool may take to accept a new request. An
/// HTTP/1 connection is ready at once, unless it is still sending the body of a request whose
/// response came early: its state is then unknown and it is not used.
pub(crate) const REUSE_READY_WAIT: Duration = Duration::from_millis(200);

impl PoolConn for HttpConn {
    fn is_open(&self) -> bool {
        match &self.sender {
            // HTTP/1: retired once a response's framing was ambiguous (transport::framing).
            Sender::H1(s) => !s.is_closed() && !self.retired.load(Ordering::Acquire),
            Sender::H2(s) => !s.is_closed() && !self.retired.load(Ordering::Acquire),
        }
    }

    fn has_stream_capacity(&self) -> bool {
        let (Some(peer), Some(streams)) = (&self.peer, &self.streams) else {
            return true;
        };
        // A limit of 0 ("no new streams for now") still lets one through: hyper queues it.
        let limit = usize::try_from(peer.max_streams().max(1)).unwrap_or(usize::MAX);
        Arc::strong_count(streams).saturating_sub(1) < limit
    }

    fn end_stream_slot(&mut self) {
        self.streams = None;
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
                certificate_errors_ignored: self.certificate_errors_ignored,
                retired: self.retired.clone(),
                streams: self.streams.clone(),
                peer: self.peer.clone(),
                _driver: None,
            }),
        }
    }
}

impl HttpConn {
    /// Speaks HTTP/1.1 (or HTTP/2 when `http2`) on `io`; the connection's driver runs as a
    /// task on the current runtime until the peer or the last handle closes it.
    pub(crate) async fn handshake(
        io: Io,
        http2: bool,
        encrypted: bool,
        options: &Http2Options,
    ) -> Result<HttpConn, Error> {
        let retired = Arc::new(AtomicBool::new(false));
        let mut driver = None;
        let mut peer = None;
        let sender = if http2 {
            let settings = PeerSettings::new();
            peer = Some(settings.clone());
            let io = TokioIo::new(SettingsTap::new(io, settings));
            let mut builder = http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .initial_stream_window_size(H2_STREAM_WINDOW)
                .initial_connection_window_size(H2_CONNECTION_WINDOW)
                .max_header_list_size(H2_MAX_HEADER_LIST);
            if let Some((interval, timeout)) = options.keep_alive {
                builder
                    .keep_alive_interval(interval)
                    .keep_alive_timeout(timeout)
                    .keep_alive_while_idle(true);
            }
            let (sender, conn) = builder
                .handshake(io)
                .await
                .map_err(|e| protocol_error("HTTP/2 handshake failed", e))?;
            let watch = peer.clone();
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/2 connection ended");
                }
                if let Some(settings) = watch {
                    settings.connection_ended();
                }
            });
            // The server's preface is a SETTINGS frame: with its stream limit known, the
            // scheduler starts queued requests in priority order. A connection that ends first
            // goes on (sending reports hyper's error); one that stays silent fails.
            if let Some(settings) = &peer {
                let limit = options.settings_timeout;
                let wait = tokio::time::timeout(limit, settings.first_settings()).await;
                if wait.is_err() && !settings.has_ended() {
                    return Err(Error::new(
                        NetworkError::TimeoutError,
                        format!("The server sent no HTTP/2 SETTINGS within {limit:?}"),
                    ));
                }
            }
            Sender::H2(sender)
        } else {
            let io = TokioIo::new(crate::transport::framing::FramingWatch::new(
                io,
                retired.clone(),
            ));
            let (sender, conn) = http1::Builder::new()
                // RFC 9112 5.2: a user agent replaces each obs-fold of a response with SP.
                .allow_obsolete_multiline_headers_in_responses(true)
                .max_headers(MAX_RESPONSE_HEADERS)
                .handshake(io)
                .await
                .map_err(|e| protocol_error("HTTP/1.1 handshake failed", e))?;
            let task = tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/1.1 connection ended");
                }
            });
            driver = Some(DriverGuard(task.abort_handle()));
            Sender::H1(sender)
        };
        Ok(HttpConn {
            sender,
            encrypted,
            tls_session: None,
            single_use: false,
            certificate_errors_ignored: false,
            retired,
            streams: Some(Arc::new(())),
            peer,
            _driver: driver,
        })
    }

    /// For a connection taken from the idle pool: whether it accepts a new request within
    /// [`REUSE_READY_WAIT`] (see there). `false`: drop it and use another.
    pub(crate) async fn ready_for_reuse(&mut self) -> bool {
        match &mut self.sender {
            Sender::H1(s) => {
                s.is_ready()
                    || matches!(
                        tokio::time::timeout(REUSE_READY_WAIT, s.ready()).await,
                        Ok(Ok(()))
                    )
            }
            Sender::H2(_) => true,
        }
    }

    /// Marks an HTTP/2 connection (all its handles) as closing: the pool stops handing it out.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
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

/// A response head this client cannot go on with: a `101 Switching Protocols` (no upgrade is
/// ever asked for; the connection now speaks something else). The caller drops the connection.
pub(crate) fn refused_response<B>(response: &http::Response<B>) -> Option<Error> {
    (response.status() == http::StatusCode::SWITCHING_PROTOCOLS).then(|| {
        let to = response
            .headers()
            .get(http::header::UPGRADE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        Error::new(
            NetworkError::ProtocolFailure,
            format!("Unexpected 101 Switching Protocols (to {to:?}): no upgrade was requested"),
        )
    })
}

fn protocol_error(what: &str, e: hyper::Error) -> Error {
    Error::new(NetworkError::ProtocolFailure, format!("{what}: {e}")).with_source(e)
}

/// Why the server did not process an HTTP/2 request, so that sending it again is safe
/// whatever its method (RFC 9113 §8.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unprocessed {
    /// The server answered RST_STREAM REFUSED_STREAM.
    Refused,
    /// The stream was above the last-stream-id of the server's GOAWAY, or was still waiting to
    /// be opened when the connection closed: it never reached the server's application.
    GoAway,
}

/// The HTTP/2 error behind a hyper error, if any.
fn h2_cause(e: &hyper::Error) -> Option<&h2::Error> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h2e) = s.downcast_ref::<h2::Error>() {
            return Some(h2e);
        }
        src = s.source();
    }
    None
}

/// For a request on an HTTP/2 connection that failed before its response head: whether the
/// server left it unprocessed (REFUSED_STREAM from the server, a stream above the GOAWAY's
/// last-stream-id, a request hyper never sent because the connection was closing).
pub(crate) fn unprocessed(e: &hyper::Error) -> Option<Unprocessed> {
    if let Some(h2e) = h2_cause(e) {
        if !h2e.is_remote() {
            return None;
        }
        if h2e.is_go_away() {
            return Some(Unprocessed::GoAway);
        }
        if h2e.is_reset() && h2e.reason() == Some(h2::Reason::REFUSED_STREAM) {
            return Some(Unprocessed::Refused);
        }
        return None;
    }
    // hyper fails requests it never handed to the connection with "canceled".
    e.is_canceled().then_some(Unprocessed::GoAway)
}

/// True when the error is an HTTP/2 stream reset (by either side): the connection is fine,
/// and the failure is about this request.
pub(crate) fn is_stream_error(e: &hyper::Error) -> bool {
    h2_cause(e).is_some_and(h2::Error::is_reset)
}

/// Qt's code and a message for an HTTP/2 stream or connection error.
fn map_h2_error(h2e: &h2::Error, before_response: bool) -> Option<(NetworkError, String)> {
    if let Some(io) = h2e.get_io() {
        // h2 fails the streams of a connection that ended (closed by the server, or closed by
        // hyper after an unanswered keep-alive PING) with an I/O error.
        let what = if before_response {
            "response was received"
        } else {
            "response body was complete"
        };
        let kind = match io.kind() {
            std::io::ErrorKind::TimedOut => NetworkError::TimeoutError,
            _ => NetworkError::RemoteHostClosedError,
        };
        return Some((
            kind,
            format!("The HTTP/2 connection ended before the {what} ({io}; closed by the server, or found dead by the keep-alive PING)"),
        ));
    }
    let reason = h2e.reason()?;
    let remote = h2e.is_remote();
    Some(if h2e.is_go_away() && remote {
        (
            NetworkError::RemoteHostClosedError,
            format!("The server closed the HTTP/2 connection (GOAWAY {reason:?})"),
        )
    } else if h2e.is_reset() && remote && reason == h2::Reason::CANCEL {
        // Qt maps a peer's CANCEL to OperationCanceledError ("Stream cancelled").
        (
            NetworkError::OperationCanceledError,
            "The server cancelled the HTTP/2 stream (RST_STREAM CANCEL)".to_owned(),
        )
    } else if h2e.is_reset() && remote && reason == h2::Reason::REFUSED_STREAM {
        (
            NetworkError::ProtocolFailure,
            "The server refused the HTTP/2 stream (RST_STREAM REFUSED_STREAM) every time it was sent"
                .to_owned(),
        )
    } else if h2e.is_reset() && remote {
        (
            NetworkError::ProtocolFailure,
            format!("The server reset the HTTP/2 stream (RST_STREAM {reason:?})"),
        )
    } else if h2e.is_reset() && before_response && reason == h2::Reason::PROTOCOL_ERROR {
        // h2 resets the stream itself for a response head it rejects, the header list over
        // the limit included.
        (
            NetworkError::ProtocolFailure,
            format!(
                "Invalid HTTP/2 response head (malformed, or a header list over {} KiB)",
                H2_MAX_HEADER_LIST / 1024
            ),
        )
    } else {
        (
            NetworkError::ProtocolFailure,
            format!("HTTP/2 protocol error ({reason:?}): {h2e}"),
        )
    })
}

/// Qt's code for a hyper error. `before_response`: no response byte was seen yet.
pub(crate) fn map_hyper_error(e: hyper::Error, before_response: bool) -> Error {
    use std::error::Error as _;
    if let Some((kind, message)) = h2_cause(&e).and_then(|h| map_h2_error(h, before_response)) {
        return Error::new(kind, message).with_source(e);
    }
    let keep_alive_timeout = e
        .source()
        .is_some_and(|s| s.to_string() == "keep-alive timed out");
    if e.is_timeout() && keep_alive_timeout {
        return Error::new(
            NetworkError::TimeoutError,
            "The HTTP/2 connection did not answer a keep-alive PING in time: it is dead".to_owned(),
        )
        .with_source(e);
    }
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
    let tls = tls_error(&e);
    let (kind, message) = if let Some(tls) = tls {
        // Qt reports a TLS failure after the handshake (an alert, a bad record) as
        // SslInternalError, which a reply sees as UnknownNetworkError.
        (
            NetworkError::UnknownNetworkError,
            format!("TLS failure while reading the response: {tls}"),
        )
    } else if e.is_user() {
        let cause = e.source().map_or_else(|| e.to_string(), |s| s.to_string());
        (
            NetworkError::ProtocolFailure,
            format!("Reading the request body failed: {cause}"),
        )
    } else if e.is_parse() && e.to_string().contains("too large") {
        // hyper's `is_parse_too_large` needs its server feature; its message is stable.
        (
            NetworkError::ProtocolFailure,
            format!(
                "Malformed HTTP response: the head is too large (more than \
                 {MAX_RESPONSE_HEADERS} header fields, or too many bytes)"
            ),
        )
    } else if e.is_parse() || e.is_parse_status() {
        (
            NetworkError::ProtocolFailure,
            format!("Malformed HTTP response: {e}"),
        )
    } else if matches!(
        io_kind,
        Some(std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput)
    ) {
        // Framing errors in the body (a bad chunk size line, a chunk without its CRLF).
        let cause = io_source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        (
            NetworkError::ProtocolFailure,
            format!("Malformed HTTP response body: {cause}"),
        )
    } else if e.is_timeout() {
        (NetworkError::TimeoutError, format!("Timed out: {e}"))
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() || io_kind.is_some() {
        let what = if before_response {
            "Connection closed before the response was received"
        } else {
            "Connection closed before the response body was complete"
        };
        // The I/O cause says more than hyper's summary (a reset, a TLS close without
        // close_notify, an end of stream inside a chunk).
        let cause = io_source(&e).map_or_else(|| e.to_string(), |io| format!("{e}: {io}"));
        (
            NetworkError::RemoteHostClosedError,
            format!("{what}: {cause}"),
        )
    } else {
        (NetworkError::ProtocolFailure, format!("HTTP failure: {e}"))
    };
    Error::new(kind, message).with_source(e)
}

/// The first I/O error in `e`'s source chain.
fn io_source(e: &hyper::Error) -> Option<&std::io::Error> {
    use std::error::Error as _;
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        src = s.source();
    }
    None
}

/// The TLS error (an alert received, a record that does not decrypt) behind `e`, if any.
fn tls_error(e: &hyper::Error) -> Option<&rustls::Error> {
    io_source(e)?.get_ref()?.downcast_ref::<rustls::Error>()
}
