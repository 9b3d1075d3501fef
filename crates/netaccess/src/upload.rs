//! Request bodies: [`Body`] (bytes, a file, or any stream or `AsyncRead`) and the
//! `http_body::Body` that sends one while reporting upload progress and activity.
//!
//! Bytes and files can be sent again (a retry on a fresh connection, a 307/308 redirect); a
//! stream is sent once and never buffered (Qt's `DoNotBufferUploadDataAttribute`), so a second
//! send fails with `ContentReSendError`. A body of unknown length goes chunked (HTTP/1.1).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};
use tokio::io::AsyncRead;

use crate::error::{Error, NetworkError};

pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[derive(Clone)]
enum Source {
    Absent,
    Bytes(Bytes),
    File {
        path: PathBuf,
        len: u64,
    },
    /// Taken by the first send.
    Stream {
        stream: Arc<Mutex<Option<ByteStream>>>,
        len: Option<u64>,
    },
    /// Produces the chunks anew for each send (a multipart body). Behind one `Arc`, shared
    /// by the clones, so that a `Body` (kept by every request queued with one) stays small.
    Generator(Arc<GeneratedBody>),
}

struct GeneratedBody {
    open: Generator,
    len: Option<u64>,
    replayable: bool,
    opened: std::sync::atomic::AtomicBool,
}

type Generator = Arc<dyn Fn() -> Result<ByteStream, Error> + Send + Sync>;

/// A request body (Qt's `QByteArray` / `QIODevice` / `QHttpMultiPart` upload argument).
///
/// ```
/// use netaccess::Body;
/// let from_text = Body::from("hello");
/// assert_eq!(from_text.len(), Some(5));
/// let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from("a"))]);
/// let streamed = Body::from_stream(chunks, None); // sent chunked, once
/// assert!(!streamed.is_replayable());
/// ```
#[derive(Clone)]
pub struct Body {
    source: Source,
    /// Made by `Body::json`: sent with `Content-Type: application/json` unless the request
    /// has a `Content-Type`.
    json: bool,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Absent => f.write_str("Body(none)"),
            Source::Bytes(b) => write!(f, "Body({} bytes)", b.len()),
            Source::File { path, len } => write!(f, "Body(file {}, {len} bytes)", path.display()),
            Source::Stream { len, .. } => write!(f, "Body(stream, {len:?} bytes)"),
            Source::Generator(generated) => {
                write!(f, "Body(generated, {:?} bytes)", generated.len)
            }
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl Body {
    /// No body (GET, HEAD and DELETE send none; other verbs send `Content-Length: 0`).
    pub fn empty() -> Self {
        Body {
            source: Source::Absent,
            json: false,
        }
    }

    /// `application/json` for a body made by `Body::json`, to send as `Content-Type` when the
    /// request has none.
    pub(crate) fn content_type(&self) -> Option<&'static str> {
        self.json.then_some("application/json")
    }

    /// This body, marked as JSON (see [`content_type`](Self::content_type)).
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) fn marked_json(mut self) -> Self {
        self.json = true;
        self
    }

    /// The contents of a file, streamed from disk when sent (and re-read for a resend).
    /// The length is taken now, for `Content-Length`.
    pub fn from_file(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let meta = std::fs::metadata(&path)?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file", path.display()),
            ));
        }
        Ok(Body {
            source: Source::File {
                path,
                len: meta.len(),
            },
            json: false,
        })
    }

    /// A stream of chunks, sent once as it is produced (chunked when `len` is `None`).
    pub fn from_stream<S>(stream: S, len: Option<u64>) -> Self
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        Body {
            source: Source::Stream {
                stream: Arc::new(Mutex::new(Some(Box::pin(stream)))),
                len,
            },
            json: false,
        }
    }

    /// Anything readable, sent once as it is read (chunked when `len` is `None`).
    pub fn from_reader<R>(reader: R, len: Option<u64>) -> Self
    where
        R: AsyncRead + Send + 'static,
    {
        Self::from_stream(tokio_util::io::ReaderStream::new(reader), len)
    }

    /// A body whose chunks `open` produces for each send; `replayable` says whether a second
    /// `open` succeeds (it returns `ContentReSendError` otherwise).
    pub(crate) fn from_generator(
        len: Option<u64>,
        replayable: bool,
        open: impl Fn() -> Result<ByteStream, Error> + Send + Sync + 'static,
    ) -> Self {
        Body {
            source: Source::Generator(Arc::new(GeneratedBody {
                open: Arc::new(open),
                len,
                replayable,
                opened: Default::default(),
            })),
            json: false,
        }
    }

    /// The length in bytes, when known.
    pub fn len(&self) -> Option<u64> {
        match &self.source {
            Source::Absent => Some(0),
            Source::Bytes(b) => Some(b.len() as u64),
            Source::File { len, .. } => Some(*len),
            Source::Stream { len, .. } => *len,
            Source::Generator(generated) => generated.len,
        }
    }

    /// True for a body known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// True when the body can be sent again (bytes, files), false for streams.
    pub fn is_replayable(&self) -> bool {
        match &self.source {
            Source::Stream { .. } => false,
            Source::Generator(generated) => generated.replayable,
            _ => true,
        }
    }

    /// The whole body when it is in memory (what Digest `auth-int` hashes); `None` for files
    /// and streams.
    pub(crate) fn in_memory(&self) -> Option<Bytes> {
        match &self.source {
            Source::Absent => Some(Bytes::new()),
            Source::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }

    pub(crate) fn is_absent(&self) -> bool {
        matches!(self.source, Source::Absent)
    }

    /// The whole body in memory (for `file:` PUT).
    pub(crate) async fn collect(&self) -> Result<Bytes, Error> {
        if let Source::Bytes(b) = &self.source {
            return Ok(b.clone());
        }
        let mut stream = self.chunks()?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(upload_error)?);
        }
        Ok(out.into())
    }

    /// The body's chunks for one send: bytes as one chunk, a file read again from disk, a stream
    /// taken once (`ContentReSendError` after that).
    pub(crate) fn chunks(&self) -> Result<ByteStream, Error> {
        Ok(match self.open()? {
            Opened::Empty => Box::pin(futures_util::stream::empty()),
            Opened::Full(b) => Box::pin(futures_util::stream::iter([Ok(b)])),
            Opened::Stream(s) => s,
        })
    }

    /// The bytes to send now: a stream can be opened once only.
    fn open(&self) -> Result<Opened, Error> {
        Ok(match &self.source {
            Source::Absent => Opened::Empty,
            Source::Bytes(b) => Opened::Full(b.clone()),
            Source::File { path, .. } => Opened::Stream(open_file(path.clone())),
            Source::Generator(generated) => {
                if generated.opened.swap(true, Ordering::Relaxed) && !generated.replayable {
                    return Err(resend_error());
                }
                Opened::Stream((generated.open)()?)
            }
            Source::Stream { stream, .. } => {
                let taken = stream.lock().unwrap_or_else(|e| e.into_inner()).take();
                Opened::Stream(taken.ok_or_else(resend_error)?)
            }
        })
    }
}

enum Opened {
    Empty,
    Full(Bytes),
    Stream(ByteStream),
}

fn open_file(path: PathBuf) -> ByteStream {
    let opened = futures_util::stream::once(async move { tokio::fs::File::open(path).await });
    Box::pin(opened.flat_map(|file| match file {
        Ok(f) => tokio_util::io::ReaderStream::with_capacity(f, 64 * 1024).left_stream(),
        Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
    }))
}

fn resend_error() -> Error {
    Error::new(
        NetworkError::ContentReSendError,
        "The request body streams data that was already sent and cannot be sent again",
    )
}

fn upload_error(e: io::Error) -> Error {
    Error::new(
        NetworkError::ProtocolFailure,
        format!("Reading the request body failed: {e}"),
    )
    .with_source(e)
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body {
            source: Source::Bytes(b),
            json: false,
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Bytes::from(b).into()
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Bytes::from_static(s).into()
    }
}

/// Bytes moved up or down: the transfer timeout restarts whenever this changes.
#[derive(Default)]
pub(crate) struct Activity(AtomicU64);

impl Activity {
    pub(crate) fn record(&self, bytes: usize) {
        self.0.fetch_add(bytes as u64 + 1, Ordering::Relaxed);
    }

    pub(crate) fn mark(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Called with `(sent, total)`; throttled by [`UploadBody`].
pub(crate) type ProgressFn = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// Progress signals are throttled to one per this interval, plus the final one (as Qt).
pub(crate) const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// The `http_body::Body` sent on a connection.
pub(crate) struct UploadBody {
    data: UploadData,
    sent: u64,
    total: Option<u64>,
    progress: Option<ProgressFn>,
    last_progress: Option<Instant>,
    activity: Arc<Activity>,
}

enum UploadData {
    Done,
    Full(Bytes),
    Stream(ByteStream),
}

impl UploadBody {
    /// The body for one send of `body` (`None`: no body at all).
    pub(crate) fn new(
        body: &Body,
        progress: Option<ProgressFn>,
        activity: Arc<Activity>,
    ) -> Result<Self, Error> {
        let data = match body.open()? {
            Opened::Empty => UploadData::Done,
            Opened::Full(b) if b.is_empty() => UploadData::Done,
            Opened::Full(b) => UploadData::Full(b),
            Opened::Stream(s) => UploadData::Stream(s),
        };
        Ok(UploadBody {
            data,
            sent: 0,
            total: body.len(),
            progress,
            last_progress: None,
            activity,
        })
    }

    fn report(&mut self, last: bool) {
        let Some(progress) = &self.progress else {
            return;
        };
        if last
            || self
                .last_progress
                .is_none_or(|t| t.elapsed() >= PROGRESS_INTERVAL)
        {
            self.last_progress = Some(Instant::now());
            let total = if last {
                Some(self.total.unwrap_or(self.sent))
            } else {
                self.total
            };
            progress(self.sent, total);
        }
    }

    fn sent_chunk(&mut self, chunk: &Bytes) {
        self.sent += chunk.len() as u64;
        self.activity.record(chunk.len());
    }
}

impl http_body::Body for UploadBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        match &mut this.data {
            UploadData::Done => Poll::Ready(None),
            UploadData::Full(_) => {
                let UploadData::Full(chunk) = std::mem::replace(&mut this.data, UploadData::Done)
                else {
                    unreachable!("matched above")
                };
                this.sent_chunk(&chunk);
                this.report(true);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            UploadData::Stream(stream) => match stream.as_mut().poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.sent_chunk(&chunk);
                    let complete = this.total == Some(this.sent);
                    this.report(complete);
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
                Poll::Ready(Some(Err(e))) => {
                    this.data = UploadData::Done;
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Ready(None) => {
                    this.data = UploadData::Done;
                    if this.total != Some(this.sent) {
                        this.report(true);
                    }
                    Poll::Ready(None)
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.data, UploadData::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.data, self.total) {
            (UploadData::Done, _) => SizeHint::with_exact(0),
            (_, Some(total)) => SizeHint::with_exact(total.saturating_sub(self.sent)),
            (_, None) => SizeHint::default(),
        }
    }
}
