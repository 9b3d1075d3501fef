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
pub(crate) type ReqBody = message::TrackedBody;

/// The receive window of one HTTP/2 stream (8 MiB): enough for a 50 ms round trip at about
/// 160 MB/s (`benches/long_link.rs`: 0.85-0.94x HTTP/1.1's rate, where 1 MiB gave 0.28x).
/// Bytes a stream received but nobody read stay counted against the connection window too,
/// so the connection window is 8 times larger: up to 7 streams whose replies are not read
/// (bounded read buffers) leave the connection room for the others.
pub(crate) const H2_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// The receive window of one HTTP/2 connection (64 MiB): the most a connection buffers for
/// streams that are not read.
pub(crate) const H2_CONNECTION_WINDOW: u32 = 8 * H2_STREAM_WINDOW;
/// The largest HTTP/2 frame accepted by default (RFC 9113's initial 16 KiB).
pub(crate) const H2_DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024;
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
    /// Receive windows (of one stream, of the connection) and the largest frame accepted.
    pub stream_window: u32,
    pub connection_window: u32,
    pub max_frame_size: u32,
    /// Flow-control windows sized by measuring the bandwidth-delay product (BDP) of the link,
    /// instead of the fixed windows.
    pub adaptive_window: bool,
    /// The most requests this client runs at once on one HTTP/2 connection, below the
    /// server's own limit (`None`: the server's limit alone).
    pub max_concurrent_streams: Option<u32>,
}

impl Default for Http2Options {
    fn default() -> Self {
        Http2Options {
            keep_alive: Some(H2_KEEP_ALIVE_DEFAULT),
            settings_timeout: crate::context::DEFAULT_CONNECT_TIMEOUT,
            stream_window: H2_STREAM_WINDOW,
            connection_window: H2_CONNECTION_WINDOW,
            max_frame_size: H2_DEFAULT_MAX_FRAME_SIZE,
            // Off by default: hyper's BDP mode starts from 64 KiB windows and grows them only
            // as data is read, so a few replies nobody reads would stall every other stream
            // of their connection (tests/faults_http2.rs `*_unread_*`).
            adaptive_window: false,
            max_concurrent_streams: None,
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
    /// The address the connection goes to (the proxy's, through a proxy), when known.
    pub remote: Option<std::net::SocketAddr>,
    /// HTTP/2: one clone per handle (the pool's, and each exchange's until its response head
    /// arrives), so the count of requests waiting for a head is the clone count less one.
    streams: Option<Arc<()>>,
    /// HTTP/2: the server's SETTINGS (its stream limit).
    peer: Option<Arc<PeerSettings>>,
    /// HTTP/2: the client's own limit of concurrent streams (`u32::MAX`: none).
    stream_cap: u32,
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
        let limit = peer.max_streams().min(self.stream_cap).max(1);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
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
                remote: self.remote,
                retired: self.retired.clone(),
                streams: self.streams.clone(),
                peer: self.peer.clone(),
                stream_cap: self.stream_cap,
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
                .initial_stream_window_size(options.stream_window)
                .initial_connection_window_size(options.connection_window)
                .max_frame_size(options.max_frame_size)
                .adaptive_window(options.adaptive_window)
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
            remote: None,
            retired,
            streams: Some(Arc::new(())),
            peer,
            stream_cap: options.max_concurrent_streams.unwrap_or(u32::MAX),
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

    /// Sends `request` and waits for the response head. The body's `on_sent` runs once the
    /// connection has taken the whole request (see `message::TrackedBody`).
    pub(crate) async fn send(
        &mut self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, hyper::Error> {
        let mut request = request;
        match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                request.body_mut().taken_if_empty();
                s.send_request(request).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                request.body_mut().taken_if_empty();
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

mod errors;
mod message;
use errors::protocol_error;
pub(crate) use errors::{is_stream_error, map_hyper_error, unprocessed, Unprocessed};
pub(crate) use message::{body_chunks, discard_body, while_active, OnSent, Outgoing};
