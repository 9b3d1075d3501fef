//! What a hyper or h2 failure means: Qt's error code and message ([`map_hyper_error`]),
//! and whether an HTTP/2 request was left unprocessed by the server ([`unprocessed`]).

use super::{H2_MAX_HEADER_LIST, MAX_RESPONSE_HEADERS};
use crate::error::{Error, NetworkError};

pub(crate) fn protocol_error(what: &str, e: hyper::Error) -> Error {
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
