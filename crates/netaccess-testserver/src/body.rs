//! The response body type of the hyper modes: full, generated, stalled, truncated
//! or trickled bodies, each carrying the request's in-flight guard so the
//! `in_flight` gauge drops exactly when the body is finished or dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::pattern::PatternSource;
use crate::stats::InFlightGuard;

/// Pause between the last byte of a truncated body and the abort: hyper only flushes
/// its write buffer while the body is pending, and an abort discards unflushed data.
const FLUSH_GRACE: Duration = Duration::from_millis(100);

/// Error a body yields on purpose so hyper aborts the connection mid-body.
#[derive(Debug)]
pub(crate) struct AbortConnection(&'static str);

impl fmt::Display for AbortConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "test server aborts the connection: {}", self.0)
    }
}

impl std::error::Error for AbortConnection {}

/// What a [`ResponseBody`] sends.
#[derive(Debug)]
enum BodyKind {
    /// One in-memory chunk (already taken once sent).
    Full(Option<Bytes>),
    /// Generated pattern bytes; `advertise_length` controls the exact size hint
    /// (and with it `Content-Length` vs chunked encoding).
    Pattern {
        source: PatternSource,
        advertise_length: bool,
    },
    /// Claims `declared_len` bytes, never sends any.
    Stall { declared_len: u64 },
    /// Claims `declared_len` bytes, sends `source`, waits [`FLUSH_GRACE`] so hyper
    /// flushes what it buffered, then fails.
    Truncated {
        source: PatternSource,
        declared_len: u64,
        grace: Option<Pin<Box<Sleep>>>,
    },
    /// Sends `source` one byte per `interval`.
    Trickle {
        source: PatternSource,
        interval: Duration,
        timer: Option<Pin<Box<Sleep>>>,
    },
}

/// Response body used by every hyper route.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    kind: BodyKind,
    in_flight: Option<InFlightGuard>,
}

impl ResponseBody {
    fn new(kind: BodyKind) -> Self {
        Self {
            kind,
            in_flight: None,
        }
    }

    /// An in-memory body.
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        Self::new(BodyKind::Full(Some(data.into())))
    }

    /// `len` pattern bytes in chunks of `chunk_size`.
    pub(crate) fn pattern(len: u64, chunk_size: usize, advertise_length: bool) -> Self {
        Self::new(BodyKind::Pattern {
            source: PatternSource::new(len, chunk_size),
            advertise_length,
        })
    }

    /// Pattern bytes `start..start + len` of a larger pattern body (a 206 range).
    pub(crate) fn pattern_range(start: u64, len: u64, chunk_size: usize) -> Self {
        Self::new(BodyKind::Pattern {
            source: PatternSource::new(len, chunk_size).starting_at(start),
            advertise_length: true,
        })
    }

    /// Declares `declared_len` bytes and never sends one.
    pub(crate) fn stall(declared_len: u64) -> Self {
        Self::new(BodyKind::Stall { declared_len })
    }

    /// Declares `declared_len` bytes, sends the first `sent_len`, then aborts.
    pub(crate) fn truncated(declared_len: u64, sent_len: u64, chunk_size: usize) -> Self {
        Self::new(BodyKind::Truncated {
            source: PatternSource::new(sent_len.min(declared_len), chunk_size),
            declared_len,
            grace: None,
        })
    }

    /// `len` pattern bytes, one every `interval`.
    pub(crate) fn trickle(len: u64, interval: Duration) -> Self {
        Self::new(BodyKind::Trickle {
            source: PatternSource::new(len, 1),
            interval,
            timer: None,
        })
    }

    /// Attaches the request's in-flight guard, released when the body ends or drops.
    pub(crate) fn with_in_flight(mut self, guard: InFlightGuard) -> Self {
        self.in_flight = Some(guard);
        self
    }

    fn poll_kind(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, AbortConnection>>> {
        match &mut self.kind {
            BodyKind::Full(data) => Poll::Ready(data.take().map(Ok)),
            BodyKind::Pattern { source, .. } => Poll::Ready(source.next_chunk().map(Ok)),
            BodyKind::Stall { .. } => Poll::Pending,
            BodyKind::Truncated { source, grace, .. } => poll_truncated(source, grace, cx),
            BodyKind::Trickle {
                source,
                interval,
                timer,
            } => poll_trickle(source, *interval, timer, cx),
        }
    }
}

fn poll_truncated(
    source: &mut PatternSource,
    grace: &mut Option<Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Bytes, AbortConnection>>> {
    if let Some(chunk) = source.next_chunk() {
        return Poll::Ready(Some(Ok(chunk)));
    }
    let sleep = grace.get_or_insert_with(|| Box::pin(tokio::time::sleep(FLUSH_GRACE)));
    if sleep.as_mut().poll(cx).is_pending() {
        return Poll::Pending;
    }
    Poll::Ready(Some(Err(AbortConnection("body cut short on purpose"))))
}

fn poll_trickle(
    source: &mut PatternSource,
    interval: Duration,
    timer: &mut Option<Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Bytes, AbortConnection>>> {
    if source.remaining() == 0 {
        return Poll::Ready(None);
    }
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
    if sleep.as_mut().poll(cx).is_pending() {
        return Poll::Pending;
    }
    *timer = None;
    Poll::Ready(source.next_chunk().map(Ok))
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = AbortConnection;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, AbortConnection>>> {
        let this = self.get_mut();
        let polled = this.poll_kind(cx);
        if let Poll::Ready(None) = polled {
            // Fully sent: the request is no longer in flight.
            this.in_flight = None;
        }
        polled.map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Full(data) => match data {
                Some(chunk) => chunk.is_empty(),
                None => true,
            },
            BodyKind::Pattern { source, .. } => source.remaining() == 0,
            BodyKind::Trickle { source, .. } => source.remaining() == 0,
            BodyKind::Stall { .. } | BodyKind::Truncated { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            BodyKind::Pattern {
                source,
                advertise_length: true,
            } => SizeHint::with_exact(source.remaining()),
            BodyKind::Pattern { .. } => SizeHint::default(),
            BodyKind::Stall { declared_len } | BodyKind::Truncated { declared_len, .. } => {
                SizeHint::with_exact(*declared_len)
            }
            BodyKind::Trickle { source, .. } => SizeHint::with_exact(source.remaining()),
        }
    }
}
