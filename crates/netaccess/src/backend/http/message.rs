//! One HTTP message on the wire: the hyper request built from what the pipeline decided to
//! send ([`Outgoing`]), its body telling when the connection took all of it
//! ([`TrackedBody`]), the response body as a stream of data chunks ([`body_chunks`]), a
//! body read and dropped so its connection can be reused ([`discard_body`]), and the
//! inactivity timeouts around each step ([`within`], [`while_active`]).

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use url::Url;

use super::{map_hyper_error, ReqBody};
use crate::error::{url_for_message, Error, NetworkError};
use crate::upload::{Activity, Body, ProgressFn, UploadBody};

/// A request as it goes out on a connection.
pub(crate) struct Outgoing<'a> {
    pub method: http::Method,
    pub url: &'a Url,
    /// Every header but `Host`, which [`Outgoing::build`] adds for HTTP/1.1.
    pub headers: &'a HeaderMap,
    pub body: &'a Body,
    /// Sent to an HTTP proxy: the request-target is the absolute URL.
    pub absolute_form: bool,
}

/// Hop-by-hop fields that HTTP/2 forbids (RFC 9113 §8.2.2), and `Host` (`:authority`).
const NOT_IN_HTTP2: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
];

impl Outgoing<'_> {
    /// The hyper request: the request-target in origin form (absolute form for HTTP/2 and
    /// proxies), `Host` for HTTP/1.1, `Content-Length` when the body's length is known. GET,
    /// HEAD and DELETE without a body send no `Content-Length`; a body of unknown length goes
    /// chunked.
    pub(crate) fn build(
        &self,
        http2: bool,
        progress: Option<ProgressFn>,
        activity: Arc<Activity>,
        on_sent: Option<OnSent>,
    ) -> Result<http::Request<ReqBody>, Error> {
        let url = self.url;
        let path_and_query = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let path_and_query = if path_and_query.is_empty() {
            "/"
        } else {
            path_and_query
        };
        // Host and port as the URL has them (IPv6 in brackets), without user info.
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let uri = if http2 || self.absolute_form {
            let scheme = if url.scheme() == "https" {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{authority}{path_and_query}")
        } else {
            path_and_query.to_owned()
        };
        let invalid = |e: &dyn std::fmt::Display| {
            Error::new(
                NetworkError::ProtocolInvalidOperationError,
                format!("Invalid request for {}: {e}", url_for_message(url)),
            )
        };
        let uri = http::Uri::try_from(uri.as_str()).map_err(|e| invalid(&e))?;
        let mut headers = self.headers.clone();
        if http2 {
            for name in NOT_IN_HTTP2 {
                headers.remove(name);
            }
        } else if !headers.contains_key(header::HOST) {
            let host = HeaderValue::from_str(authority).map_err(|e| invalid(&e))?;
            headers.insert(header::HOST, host);
        }
        let bodiless = matches!(
            self.method,
            http::Method::GET | http::Method::HEAD | http::Method::DELETE
        );
        let sends_length = !(self.body.is_absent() && bodiless);
        if sends_length && !headers.contains_key(header::CONTENT_LENGTH) {
            if let Some(len) = self.body.len() {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
        }
        let body = UploadBody::new(self.body, progress, activity)?;
        let mut request = http::Request::new(TrackedBody {
            inner: body,
            on_sent,
        });
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.version_mut() = if http2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// Runs once a request has been handed over whole (Qt's `requestSent`).
pub(crate) type OnSent = Box<dyn FnOnce() + Send>;

/// A request body that runs its [`OnSent`] when the connection has taken the last of it:
/// after the last frame, or, for a request without a body, when the connection accepts the
/// request ([`HttpConn::send`](super::HttpConn::send)).
pub(crate) struct TrackedBody {
    inner: UploadBody,
    on_sent: Option<OnSent>,
}

impl TrackedBody {
    /// The whole request is taken: run `on_sent` (once).
    fn taken(&mut self) {
        if let Some(on_sent) = self.on_sent.take() {
            on_sent();
        }
    }

    /// For a request without a body, accepted by the connection: it is taken.
    pub(crate) fn taken_if_empty(&mut self) {
        if http_body::Body::is_end_stream(&self.inner) {
            self.taken();
        }
    }
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if let std::task::Poll::Ready(frame) = &polled {
            if frame.is_none() || http_body::Body::is_end_stream(&this.inner) {
                this.taken();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The most of an unwanted body (a redirect's, a 401's) read to keep its connection.
const DISCARD_BUDGET: usize = 64 * 1024;
/// The longest wait for the rest of an unwanted body.
const DISCARD_WAIT: Duration = Duration::from_secs(5);

/// Reads and drops a body nobody wants (up to [`DISCARD_BUDGET`] bytes, waiting at most
/// [`DISCARD_WAIT`] or `timeout` for each chunk). `true`: it ended, and its connection can
/// carry another request; `false`: it was longer, slower or broken (close the connection).
pub(crate) async fn discard_body(mut incoming: Incoming, timeout: Option<Duration>) -> bool {
    let mut seen = 0;
    let wait = timeout.unwrap_or(DISCARD_WAIT).min(DISCARD_WAIT);
    loop {
        match tokio::time::timeout(wait, incoming.frame()).await {
            Ok(None) => return true,
            Ok(Some(Ok(frame))) => {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > DISCARD_BUDGET {
                    return false;
                }
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

/// The data frames of a response body, each read within the transfer timeout.
pub(crate) fn body_chunks(
    incoming: Incoming,
    timeout: Option<Duration>,
) -> impl futures_core::Stream<Item = Result<bytes::Bytes, Error>> + Send + 'static {
    futures_util::stream::unfold(Some(incoming), move |state| async move {
        let mut incoming = state?;
        loop {
            match within(timeout, incoming.frame()).await {
                Err(e) => return Some((Err(e), None)),
                Ok(None) => return None,
                Ok(Some(Err(e))) => return Some((Err(map_hyper_error(e, false)), None)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), Some(incoming)));
                    }
                }
            }
        }
    })
}

fn timeout_error(limit: Duration) -> Error {
    Error::new(
        NetworkError::TimeoutError,
        format!("No data transferred for {:.1} s", limit.as_secs_f64()),
    )
}

/// An inactivity timeout around one step of the transfer.
pub(crate) async fn within<T>(
    timeout: Option<Duration>,
    step: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    match timeout {
        None => Ok(step.await),
        Some(t) => tokio::time::timeout(t, step)
            .await
            .map_err(|_| timeout_error(t)),
    }
}

/// Like [`within`], for a step that moves bytes meanwhile (sending a request body): the
/// timeout restarts while `activity` changes.
pub(crate) async fn while_active<T>(
    timeout: Option<Duration>,
    activity: &Activity,
    step: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    let Some(limit) = timeout else {
        return Ok(step.await);
    };
    let mut step = std::pin::pin!(step);
    let mut seen = activity.mark();
    loop {
        if let Ok(done) = tokio::time::timeout(limit, &mut step).await {
            return Ok(done);
        }
        let now = activity.mark();
        if now == seen {
            return Err(timeout_error(limit));
        }
        seen = now;
    }
}
