//! Delivery: the one way a body reaches its reply, whether it comes from the network, the
//! cache or a local scheme. The reply gets its metadata (with the content codings that will
//! be undone removed from it), then the body chunk by chunk through the decoder, under the
//! request's size limits, with Qt's throttled `download_progress`.

use std::sync::Arc;
use std::time::Instant;

use futures_core::Stream;
use http::header::{self, HeaderMap};
use url::Url;

use futures_util::StreamExt;

use super::attempt::Attempt;
use super::exchange::Exchange;
use super::resume::{resuming, Current, Resume};
use crate::backend::http::body_chunks;
use crate::cache::CacheWriter;
use crate::decode::{self, Decoder};
use crate::error::{Error, NetworkError};
use crate::reply::{http_status_error, Meta, ReplyShared};
use crate::request::Operation;
use crate::upload::PROGRESS_INTERVAL;

/// Whether the body's content codings are undone on the way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoding {
    /// A local body: delivered as it is, its length is `Meta::original_content_length`.
    None,
    /// An HTTP body (from the network or the cache): `Content-Encoding` is undone unless the
    /// application asked for an encoding itself.
    Http,
}

/// How a delivery ended.
pub(super) enum Delivered {
    /// The whole body is in the reply; the HTTP error status, if any.
    Complete(Option<Error>),
    /// The reply finished meanwhile (aborted): stop, the reply is already finished.
    Aborted,
}

impl Delivered {
    /// The outcome the reply finishes with.
    fn outcome(self) -> Option<Error> {
        match self {
            Delivered::Complete(e) => e,
            Delivered::Aborted => None,
        }
    }
}

/// Delivers a local reply (`data:`, `file:`).
pub(super) async fn deliver(
    reply: &Arc<ReplyShared>,
    url: &Url,
    meta: Meta,
    body: impl Stream<Item = Result<bytes::Bytes, Error>> + Send + 'static,
    decoding: Decoding,
) -> Result<Option<Error>, Error> {
    body_into_reply(reply, url, meta, body, decoding)
        .await
        .map(Delivered::outcome)
}

/// Sets the reply's metadata and moves `body` into it.
pub(super) async fn body_into_reply(
    reply: &Arc<ReplyShared>,
    url: &Url,
    mut meta: Meta,
    body: impl Stream<Item = Result<bytes::Bytes, Error>> + Send,
    decoding: Decoding,
) -> Result<Delivered, Error> {
    let head = *reply.operation() == Operation::Head;
    let (codings, total) = match (decoding, meta.status) {
        (Decoding::Http, Some(status)) => {
            let length = meta.original_content_length;
            let codings = decoding_for(reply, status, length, &meta.headers)?;
            if codings.is_some() {
                // The application sees the decoded body: these described the encoded one.
                meta.headers.remove(header::CONTENT_ENCODING);
                meta.headers.remove(header::CONTENT_LENGTH);
            }
            let total = match (head, &codings) {
                (true, _) => Some(0),
                (false, Some(_)) => None,
                (false, None) => length,
            };
            (codings, total)
        }
        _ => (None, meta.original_content_length),
    };
    let http_error = match meta.status {
        Some(status) => http_status_error(status, meta.reason.as_deref().unwrap_or(""), url),
        None => None,
    };
    if let Some(e) = &http_error {
        reply.set_http_error(e.clone());
    }
    reply.set_meta(meta);
    let mut download = Download::new(reply, total)?;
    let complete = match codings {
        Some(codings) => {
            let decoded = Decoder::new(body, &codings, decode_limits(reply));
            download.pump(reply, decoded).await?
        }
        None => download.pump(reply, std::pin::pin!(body)).await?,
    };
    if !complete {
        return Ok(Delivered::Aborted);
    }
    download.finish(reply);
    Ok(Delivered::Complete(http_error))
}

/// Body bytes on their way into a reply, with Qt's throttled `download_progress` and the
/// request's body-size limit.
struct Download {
    received: u64,
    total: Option<u64>,
    /// The largest body accepted (`Request::max_body_size`, or the manager's default filled
    /// in when the reply was made).
    max: Option<u64>,
    last_progress: Option<Instant>,
}

impl Download {
    /// Fails at once when the announced length (`total`) is over the limit.
    fn new(reply: &ReplyShared, total: Option<u64>) -> Result<Self, Error> {
        let max = reply.request().max_body_size();
        if let (Some(total), Some(max)) = (total, max) {
            if total > max {
                return Err(body_too_large(max, format!("Content-Length {total}")));
            }
        }
        Ok(Download {
            received: 0,
            total,
            max,
            last_progress: None,
        })
    }

    /// Appends a chunk (waiting for room in a bounded buffer). `Ok(false)` once the reply
    /// finished; an error when the body grows past the limit (nothing past it is delivered).
    async fn push(&mut self, reply: &Arc<ReplyShared>, chunk: bytes::Bytes) -> Result<bool, Error> {
        let received = self.received.saturating_add(chunk.len() as u64);
        if let Some(max) = self.max.filter(|&max| received > max) {
            return Err(body_too_large(
                max,
                format!("the body ({received} bytes so far)"),
            ));
        }
        self.received = received;
        if !reply.push_chunk(chunk).await {
            return Ok(false);
        }
        if self
            .last_progress
            .is_none_or(|t| t.elapsed() >= PROGRESS_INTERVAL)
        {
            self.last_progress = Some(Instant::now());
            reply.report_download_progress((self.received, self.total));
        }
        Ok(true)
    }

    /// Moves every chunk of `body` into the reply. `Ok(false)`: the reply finished meanwhile.
    async fn pump(
        &mut self,
        reply: &Arc<ReplyShared>,
        body: impl Stream<Item = Result<bytes::Bytes, Error>> + Unpin,
    ) -> Result<bool, Error> {
        use futures_util::StreamExt;
        let mut body = body;
        while let Some(chunk) = body.next().await {
            if !self.push(reply, chunk?).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The final progress report, never throttled.
    fn finish(&self, reply: &Arc<ReplyShared>) {
        let total = self.total.unwrap_or(self.received);
        reply.report_download_progress((self.received, Some(total)));
    }
}

fn body_too_large(max: u64, what: String) -> Error {
    Error::new(
        NetworkError::UnknownContentError,
        format!("The response body is larger than allowed: {what} exceeds the {max}-byte limit (Request::with_max_body_size)"),
    )
}

/// The codings to undo for this response, if any. Not when the application asked for an
/// encoding itself (it gets the body as sent), nor for a response without a body. A chain
/// longer than [`decode::MAX_CODINGS`] is an error.
fn decoding_for(
    reply: &ReplyShared,
    status: http::StatusCode,
    content_length: Option<u64>,
    headers: &HeaderMap,
) -> Result<Option<Vec<decode::Coding>>, Error> {
    let no_body = *reply.operation() == Operation::Head
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED
        || content_length == Some(0);
    if no_body
        || reply
            .request()
            .headers()
            .contains_key(header::ACCEPT_ENCODING)
    {
        return Ok(None);
    }
    decode::codings(headers)
}

/// The decoder's limits for this reply's request.
fn decode_limits(reply: &ReplyShared) -> decode::Limits {
    let request = reply.request();
    decode::Limits {
        threshold: request.decompressed_safety_check_threshold(),
        max_decoded: request.max_decoded_size(),
    }
}

/// The content length a response head announces.
pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Delivers a network response: metadata, then the body into the reply while the raw
/// (still encoded) bytes go to the cache `writer`, then the connection back to the pool and
/// the cache entry committed (before `finished`, so the next request can reuse the
/// connection at once).
pub(super) async fn network(
    ctx: &crate::context::Context,
    reply: &Arc<ReplyShared>,
    attempt: &Attempt,
    exchange: Exchange,
    timeout: Option<std::time::Duration>,
    writer: Option<Box<dyn CacheWriter>>,
) -> Result<Option<Error>, Error> {
    let Exchange {
        response,
        checkout,
        encrypted,
        http2,
        tls_session,
        ..
    } = exchange;
    let (parts, incoming) = response.into_parts();
    let status = parts.status;
    // The connection the body comes from: this one, or a resumption's.
    let current: Current = std::sync::Mutex::new(Some(checkout));
    let head = (status, &parts.headers);
    let resume = Resume::new(ctx, reply, attempt, head, timeout, &current);
    let reason = parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| status.canonical_reason().map(str::to_owned));
    let redirection_target = status
        .is_redirection()
        .then(|| parts.headers.get(header::LOCATION))
        .flatten()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let meta = Meta {
        status: Some(status),
        reason,
        original_content_length: content_length(&parts.headers),
        headers: parts.headers,
        version: Some(parts.version),
        encrypted,
        http2,
        from_cache: false,
        redirection_target,
        tls_version: tls_session.as_ref().map(|t| t.protocol().name().to_owned()),
        tls_cipher: tls_session.as_ref().map(|t| t.cipher().to_owned()),
        ssl_session: tls_session,
        timings: Default::default(),
    };
    reply.with_timings(|_, t| t.protocol = Some(parts.version));
    // Committed only if the body arrives whole; beside it, the bytes received.
    let writer = Arc::new(std::sync::Mutex::new((writer, 0u64)));
    let tee = writer.clone();
    let request = reply.request();
    let (max_rate, priority) = (request.max_rate(), request.priority());
    let throttle = ctx
        .config
        .rates
        .throttle(&attempt.target.url, max_rate, priority);
    let chunks = |incoming, timeout| Box::pin(body_chunks(incoming, timeout));
    let first = chunks(incoming, timeout);
    // Paced after resumption, so a resumed body's bytes count against the same limits.
    let body = resuming(first, resume, chunks);
    let body = crate::rate::throttle(body, throttle).inspect(move |chunk| {
        let Ok(chunk) = chunk else { return };
        let mut guard = tee.lock().unwrap_or_else(|e| e.into_inner());
        let (slot, received) = &mut *guard;
        *received += chunk.len() as u64;
        if let Some(w) = slot.as_mut() {
            if let Err(e) = w.write(chunk) {
                tracing::debug!(error = %e, "cache write failed; not storing this response");
                *slot = None;
            }
        }
    });
    let url = &attempt.target.url;
    let delivered = body_into_reply(reply, url, meta, body, Decoding::Http).await?;
    let Delivered::Complete(http_error) = delivered else {
        return Ok(None); // aborted: the reply is finished already
    };
    let (finished_writer, bytes) = {
        let mut guard = writer.lock().unwrap_or_else(|e| e.into_inner());
        (guard.0.take(), guard.1)
    };
    ctx.event(reply, crate::events::Event::ResponseBodyEnd { bytes });
    if let Some(mut checkout) = current.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let reusable = !checkout.conn().single_use;
        checkout.release(reusable);
        ctx.event(reply, crate::events::Event::ConnectionReleased);
    }
    if let Some(w) = finished_writer {
        if let Err(e) = w.commit().await {
            tracing::debug!(error = %e, "cache commit failed");
        }
    }
    Ok(http_error)
}
