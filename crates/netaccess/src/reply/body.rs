//! The body of a reply read as it arrives: [`BodyStream`] (a `Stream` of chunks) and
//! [`BodyReader`] (`tokio::io::AsyncRead`). Reading frees room in the reply's bounded buffer,
//! which lets the request task read more from the socket (back-pressure).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;

use super::Reply;
use crate::error::Error;

/// The body of a [`Reply`] as a stream of chunks; see [`Reply::body_stream`].
pub struct BodyStream {
    reply: Reply,
}

impl BodyStream {
    pub(super) fn new(reply: Reply) -> Self {
        BodyStream { reply }
    }

    /// The reply this stream reads.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.reply.shared().poll_chunk(cx.waker()) {
            Some(item) => Poll::Ready(item),
            None => Poll::Pending,
        }
    }
}

type IoStream =
    futures_util::stream::Map<BodyStream, fn(Result<Bytes, Error>) -> std::io::Result<Bytes>>;

/// The body of a [`Reply`] as `tokio::io::AsyncRead` (and `AsyncBufRead`); see
/// [`Reply::into_async_read`]. A failed transfer reads as an `io::Error` wrapping the
/// reply's [`Error`].
pub type BodyReader = tokio_util::io::StreamReader<IoStream, Bytes>;

fn to_io(item: Result<Bytes, Error>) -> std::io::Result<Bytes> {
    item.map_err(std::io::Error::from)
}

pub(super) fn reader(stream: BodyStream) -> BodyReader {
    tokio_util::io::StreamReader::new(stream.map(to_io as fn(_) -> _))
}
