//! Resuming a GET body that broke off (issue 12 §2): when the response had a strong
//! validator, the body stream asks for the rest with `Range: bytes=N-` and `If-Range`, and
//! continues with a `206` whose `Content-Range` starts at `N`, so the reader never sees a gap
//! or a duplicate. A `200` means the resource changed (an error unless nothing had arrived);
//! anything else ends the body with the original error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::attempt::{Attempt, Target};
use super::exchange::{self, Link};
use crate::backend::http::HttpConn;
use crate::context::Context;
use crate::error::{url_for_message, Error, NetworkError};
use crate::reply::ReplyShared;
use crate::request::Operation;
use crate::scheduler::Checkout;
use crate::upload::Body;
use hyper::body::Incoming;

/// How many times one reply's body is resumed at most.
pub const MAX_RESUMES: u32 = 3;

/// The connection a body is read from: the first response's, then each resumption's.
pub(super) type Current = Mutex<Option<Checkout<HttpConn>>>;

/// What resuming needs, for a response that can be resumed.
pub(super) struct Resume<'a> {
    ctx: &'a Context,
    reply: &'a Arc<ReplyShared>,
    attempt: &'a Attempt,
    timeout: Option<Duration>,
    /// The `If-Range` value: the strong ETag, or a strong `Last-Modified`.
    validator: HeaderValue,
    /// The length the first response announced.
    total: Option<u64>,
    current: &'a Current,
    received: u64,
    resumes: u32,
}

impl<'a> Resume<'a> {
    /// Resuming for this response, if it can be resumed: a `200` to a GET without a `Range`
    /// of the application's, with a strong validator, and resuming on for the request.
    pub(super) fn new(
        ctx: &'a Context,
        reply: &'a Arc<ReplyShared>,
        attempt: &'a Attempt,
        (status, headers): (StatusCode, &HeaderMap),
        timeout: Option<Duration>,
        current: &'a Current,
    ) -> Option<Resume<'a>> {
        let eligible = status == StatusCode::OK
            && attempt.target.operation == Operation::Get
            && reply.request().resume()
            && !attempt.headers.contains_key(header::RANGE);
        if !eligible {
            return None;
        }
        Some(Resume {
            ctx,
            reply,
            attempt,
            timeout,
            validator: strong_validator(headers)?,
            total: super::deliver::content_length(headers),
            current,
            received: 0,
            resumes: 0,
        })
    }

    /// The rest of the body after `error` broke it at `self.received`: a new body stream, or
    /// the error that ends the reply.
    async fn resume(&mut self, error: Error) -> Result<Incoming, Error> {
        let transport = matches!(
            error.kind(),
            NetworkError::RemoteHostClosedError
                | NetworkError::TimeoutError
                | NetworkError::UnknownNetworkError
        );
        if !transport || self.resumes >= MAX_RESUMES || self.reply.is_finished() {
            return Err(error);
        }
        self.resumes += 1;
        drop(self.lock().take()); // broken: closed, its slot freed
        let attempt = self.ranged()?;
        let mut link = Link::new(None);
        let exchange = exchange::send(self.ctx, self.reply, &attempt, self.timeout, &mut link);
        let exchange = match exchange.await {
            Ok(exchange) => exchange,
            Err(e) => {
                tracing::debug!(error = %e, "resuming the body failed");
                return Err(error);
            }
        };
        let (parts, incoming) = exchange.response.into_parts();
        let url = url_for_message(&attempt.target.url);
        match parts.status {
            StatusCode::PARTIAL_CONTENT => {
                let range = parts.headers.get(header::CONTENT_RANGE);
                let fits = range.and_then(|v| content_range(v.as_bytes())).is_some_and(
                    |(start, total)| {
                        start == self.received && (self.total.is_none() || total == self.total)
                    },
                );
                if !fits {
                    return Err(Error::new(
                        NetworkError::UnknownContentError,
                        format!("Resuming {url} at byte {}: the server answered with a different range ({range:?})", self.received),
                    ));
                }
            }
            StatusCode::OK if self.received == 0 => {}
            StatusCode::OK => {
                return Err(Error::new(
                    NetworkError::UnknownContentError,
                    format!("{url} changed while it was downloaded: resuming at byte {} got the whole new resource (200), after: {error}", self.received),
                ));
            }
            other => {
                tracing::debug!(status = %other, "resuming the body was refused");
                return Err(error);
            }
        }
        *self.lock() = Some(exchange.checkout);
        tracing::debug!(url, at = self.received, "body resumed");
        Ok(incoming)
    }

    /// The attempt for the rest: the same request with `Range` and `If-Range`.
    fn ranged(&self) -> Result<Attempt, Error> {
        let target = &self.attempt.target;
        let mut headers = self.attempt.headers.clone();
        let range = format!("bytes={}-", self.received);
        let range = HeaderValue::from_str(&range)
            .map_err(|e| Error::new(NetworkError::ProtocolInvalidOperationError, e.to_string()))?;
        headers.insert(header::RANGE, range);
        headers.insert(header::IF_RANGE, self.validator.clone());
        Ok(Attempt {
            target: Target {
                url: target.url.clone(),
                operation: Operation::Get,
                headers: target.headers.clone(),
                body: Body::empty(),
            },
            headers,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Checkout<HttpConn>>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The body stream `first`, continued after a break by `resume` when it has one, with the
/// body `chunks` makes of the resumed response.
pub(super) fn resuming<'a, S>(
    first: S,
    resume: Option<Resume<'a>>,
    chunks: impl Fn(Incoming, Option<Duration>) -> S + Send + 'a,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'a
where
    S: Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'a,
{
    futures_util::stream::unfold(Some((first, resume, chunks)), |state| async move {
        let (mut body, mut resume, chunks) = state?;
        loop {
            match body.next().await {
                None => return None,
                Some(Ok(chunk)) => {
                    if let Some(r) = resume.as_mut() {
                        r.received += chunk.len() as u64;
                    }
                    return Some((Ok(chunk), Some((body, resume, chunks))));
                }
                Some(Err(error)) => {
                    let Some(r) = resume.as_mut() else {
                        return Some((Err(error), None));
                    };
                    // Boxed: resuming is rare and large, and the body stream of every
                    // response would otherwise carry its state inline.
                    match Box::pin(r.resume(error)).await {
                        Ok(rest) => body = chunks(rest, r.timeout),
                        Err(error) => return Some((Err(error), None)),
                    }
                }
            }
        }
    })
}

/// The validator `If-Range` may carry (RFC 9110 §13.1.5): a strong ETag, else a
/// `Last-Modified` at least a second before the response's `Date` (§8.8.2.2).
pub(crate) fn strong_validator(headers: &HeaderMap) -> Option<HeaderValue> {
    if let Some(etag) = headers.get(header::ETAG) {
        // `"` *etagc `"`: not weak (`W/`), and not a malformed tag sent back as if it were one.
        let strong = matches!(etag.as_bytes(), [b'"', tag @ .., b'"']
            if tag.iter().all(|&b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80));
        return strong.then(|| etag.clone());
    }
    let date = |name| -> Option<SystemTime> {
        let value = headers.get(name)?.to_str().ok()?;
        httpdate::parse_http_date(value.trim()).ok()
    };
    let modified = date(header::LAST_MODIFIED)?;
    let sent = date(header::DATE)?;
    (sent.duration_since(modified).ok()? >= Duration::from_secs(1))
        .then(|| headers.get(header::LAST_MODIFIED).cloned())
        .flatten()
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`): the start and the total.
pub(crate) fn content_range(value: &[u8]) -> Option<(u64, Option<u64>)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let rest = text.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end) = (digits(start)?, digits(end)?);
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        n => {
            let total = digits(n)?;
            if total <= end {
                return None;
            }
            Some(total)
        }
    };
    Some((start, total))
}

/// `1*DIGIT` (white space around it allowed) as a `u64`: no sign, unlike `str::parse`.
fn digits(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(content_range(b"bytes 5-9/10"), Some((5, Some(10))));
        assert_eq!(content_range(b"bytes 5-9/*"), Some((5, None)));
        assert_eq!(content_range(b"bytes 5-9/9"), None, "end past the total");
        assert_eq!(content_range(b"bytes 9-5/10"), None);
        assert_eq!(content_range(b"items 0-1/2"), None);
        assert_eq!(content_range(b"bytes -1/2"), None);
        assert_eq!(content_range(b"bytes 0-18446744073709551616/1"), None);
    }

    #[test]
    fn content_range_numbers_have_no_sign() {
        // Found writing the resume_headers fuzz target's model: `str::parse` takes a `+`.
        assert_eq!(content_range(b"bytes +5-9/10"), None);
        assert_eq!(content_range(b"bytes 5-+9/10"), None);
        assert_eq!(content_range(b"bytes 5-9/+10"), None);
        assert_eq!(content_range(b"bytes 5 - 9 / 10"), Some((5, Some(10))));
    }

    #[test]
    fn a_malformed_etag_is_no_validator() {
        // Found writing the resume_headers fuzz target: an ETag that only starts with a quote was
        // sent back in If-Range as a strong validator.
        for bad in ["\"abc", "\"a\"b\"", "\"a b\"", "\"\"\""] {
            let mut h = HeaderMap::new();
            h.insert(header::ETAG, HeaderValue::from_static(bad));
            assert_eq!(strong_validator(&h), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::ETAG, HeaderValue::from_static("\"\""));
        assert_eq!(strong_validator(&h).unwrap(), "\"\"");
    }

    #[test]
    fn only_strong_validators_resume() {
        let mut h = HeaderMap::new();
        h.insert(header::ETAG, HeaderValue::from_static("W/\"weak\""));
        assert_eq!(strong_validator(&h), None);
        h.insert(header::ETAG, HeaderValue::from_static("\"strong\""));
        assert_eq!(strong_validator(&h).unwrap(), "\"strong\"");
        let mut h = HeaderMap::new();
        let modified = "Sun, 06 Nov 1994 08:49:37 GMT";
        h.insert(header::LAST_MODIFIED, HeaderValue::from_static(modified));
        assert_eq!(strong_validator(&h), None, "no Date to compare with");
        h.insert(header::DATE, HeaderValue::from_static(modified));
        assert_eq!(
            strong_validator(&h),
            None,
            "modified in the second it was sent"
        );
        let later = "Sun, 06 Nov 1994 08:49:39 GMT";
        h.insert(header::DATE, HeaderValue::from_static(later));
        assert_eq!(strong_validator(&h).unwrap(), modified);
    }
}
