//! [`Reply`] (Qt's `QNetworkReply`): the handle an application holds while a request runs, its
//! signals, metadata and attributes, and the body buffer shared with the request task.
//!
//! The request task writes into the reply ([`ReplyShared`]'s crate-private methods); the
//! application reads with [`Reply::read_all`], the body stream ([`Reply::body_stream`]), the
//! `AsyncRead` adapter or [`Reply::bytes`]. A reply runs to its end even when every handle is
//! dropped; only [`Reply::abort`] cancels it.
//!
//! A reply waiting in its origin's queue is small (issue 11): what most replies never use is
//! allocated on first use (the rarely connected signals, the response metadata, a second URL
//! after a redirect, the cancellation token, the `UserVerified` redirect permit, the SSL
//! exceptions), and the first body chunk is held without a queue of its own.

mod body;
mod chunks;
mod meta;

pub use body::{BodyReader, BodyStream};
pub use meta::Meta;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue};
use http::StatusCode;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::{Error, NetworkError};
use crate::manager::ManagerSignals;
use crate::request::{Operation, Request};
use crate::signal::{ReplaySource, Signal};
use crate::transport::tls::{IgnoreSsl, SslError};
use chunks::Chunks;

/// Read buffer used once the body is taken as a stream, when none was set (1 MiB).
pub const DEFAULT_STREAM_READ_BUFFER: usize = 1 << 20;

/// The signals of a reply. Each is a [`Signal`]; see the accessors on [`Reply`].
///
/// The five that most programs use are held inline; the others ([`RareSignals`]) are
/// allocated when one of them is first reached through its accessor on [`Reply`], or when the
/// request task starts (they share one allocation with the reply's cancellation token).
/// Reaching them through `Deref` (`signals.request_sent.emit(..)`) never allocates: before that
/// allocation it yields an inert, empty set, on which emitting does nothing and `receivers()`
/// is 0. Only emit through `Deref`; connect through [`ReplySignals::rare`].
pub(crate) struct ReplySignals {
    pub meta_data_changed: Signal<Reply>,
    pub ready_read: Signal<Reply>,
    pub download_progress: Signal<(u64, Option<u64>)>,
    pub error_occurred: Signal<(Reply, Error)>,
    pub finished: Signal<Reply>,
    started: OnceLock<Box<Started>>,
}

/// What a reply allocates when its request task starts or a rare signal is first reached.
struct Started {
    signals: RareSignals,
    /// Cancels the request task (`abort`).
    cancel: CancellationToken,
}

/// The signals of a reply that are seldom connected, allocated on first use.
pub(crate) struct RareSignals {
    pub upload_progress: Signal<(u64, Option<u64>)>,
    pub encrypted: Signal<Reply>,
    pub socket_started_connecting: Signal<Reply>,
    pub request_sent: Signal<Reply>,
    pub redirected: Signal<Url>,
    pub ssl_errors: Signal<(Reply, Vec<SslError>)>,
}

impl RareSignals {
    fn new() -> Self {
        RareSignals {
            upload_progress: Signal::new(),
            encrypted: Signal::new(),
            socket_started_connecting: Signal::new(),
            request_sent: Signal::new(),
            redirected: Signal::new(),
            ssl_errors: Signal::new(),
        }
    }

    fn clear(&self) {
        self.upload_progress.clear();
        self.encrypted.clear();
        self.socket_started_connecting.clear();
        self.request_sent.clear();
        self.redirected.clear();
        self.ssl_errors.clear();
    }
}

/// For emitting only: the rare signals if allocated, else an inert empty set (see
/// [`ReplySignals`]).
impl std::ops::Deref for ReplySignals {
    type Target = RareSignals;

    fn deref(&self) -> &RareSignals {
        static INERT: OnceLock<RareSignals> = OnceLock::new();
        match self.started.get() {
            Some(started) => &started.signals,
            None => INERT.get_or_init(RareSignals::new),
        }
    }
}

impl ReplySignals {
    fn new() -> Self {
        ReplySignals {
            meta_data_changed: Signal::new(),
            ready_read: Signal::new(),
            download_progress: Signal::new(),
            error_occurred: Signal::new(),
            finished: Signal::new(),
            started: OnceLock::new(),
        }
    }

    fn started(&self) -> &Started {
        self.started.get_or_init(|| {
            Box::new(Started {
                signals: RareSignals::new(),
                cancel: CancellationToken::new(),
            })
        })
    }

    /// The rare signals, allocated now if needed: the way to reach them to connect a slot.
    pub(crate) fn rare(&self) -> &RareSignals {
        &self.started().signals
    }

    fn clear(&self) {
        self.meta_data_changed.clear();
        self.ready_read.clear();
        self.download_progress.clear();
        self.error_occurred.clear();
        self.finished.clear();
        if let Some(started) = self.started.get() {
            started.signals.clear();
        }
    }
}

pub(crate) struct ReplyState {
    /// `None` until the response head arrives.
    meta: Option<Box<Meta>>,
    buffer: Chunks,
    buffered: usize,
    read_buffer_size: usize,
    /// The body is incomplete because of `error` (transport failure or abort), as opposed to
    /// an HTTP error status whose body is whole.
    body_broken: bool,
    finished: bool,
    /// `finished` was delivered to the slots connected when it fired.
    finished_delivered: bool,
    reader: Option<Waker>,
    /// What late slots are shown (state replay): the head arrived, `encrypted` fired, and the
    /// latest progress values.
    head_seen: bool,
    encrypted: bool,
    /// Takes the request out of its origin's queue while it waits there as data.
    dequeue: Option<Box<dyn FnOnce() + Send>>,
    /// The latest `(received, total)` reported, as `(received, total or 0)` and whether none,
    /// an unknown total or a known one was reported ([`ReplyState::download_progress`]): 16
    /// bytes and one, where `Option<(u64, Option<u64>)>` takes 24.
    download_progress: (u64, u64),
    download_progress_kind: ProgressKind,
    /// What few replies use, allocated on first use.
    rare: Option<Box<RareState>>,
}

/// The part of a reply's state that few replies use.
#[derive(Default)]
struct RareState {
    /// The reply's URL when it is not the request's: the last redirect target followed, or
    /// what a request whose URL did not parse shows.
    url: Option<Url>,
    error: Option<Error>,
    ignore_ssl_errors: IgnoreSsl,
    upload_progress: Option<(u64, Option<u64>)>,
    /// Given by `redirect_allowed()` (the `UserVerified` redirect policy).
    redirect_permit: Option<Arc<Notify>>,
    /// Wakes the request task when a reader made room in a full bounded buffer; made when
    /// the buffer first fills.
    space: Option<Arc<Notify>>,
}

impl ReplyState {
    fn rare(&mut self) -> &mut RareState {
        self.rare.get_or_insert_with(Box::default)
    }

    fn meta(&self) -> Option<&Meta> {
        self.meta.as_deref()
    }

    fn error(&self) -> Option<&Error> {
        self.rare.as_ref().and_then(|rare| rare.error.as_ref())
    }

    fn download_progress(&self) -> Option<(u64, Option<u64>)> {
        let (received, total) = self.download_progress;
        match self.download_progress_kind {
            ProgressKind::None => None,
            ProgressKind::UnknownTotal => Some((received, None)),
            ProgressKind::Known => Some((received, Some(total))),
        }
    }

    /// Wakes the request task if it waits for room in the buffer (or stores the wake-up for
    /// its next wait).
    fn wake_writer(&self) {
        if let Some(space) = self.rare.as_ref().and_then(|rare| rare.space.as_ref()) {
            space.notify_one();
        }
    }
}

/// What a reply's latest download progress report was.
#[derive(Clone, Copy)]
enum ProgressKind {
    None,
    UnknownTotal,
    Known,
}

/// The operation of a reply: the standard ones need no storage of their own.
enum StoredOperation {
    Head,
    Get,
    Put,
    Post,
    Delete,
    Custom(Box<Operation>),
}

impl StoredOperation {
    fn new(operation: Operation) -> Self {
        match operation {
            Operation::Head => StoredOperation::Head,
            Operation::Get => StoredOperation::Get,
            Operation::Put => StoredOperation::Put,
            Operation::Post => StoredOperation::Post,
            Operation::Delete => StoredOperation::Delete,
            custom => StoredOperation::Custom(Box::new(custom)),
        }
    }

    fn get(&self) -> &Operation {
        static HEAD: Operation = Operation::Head;
        static GET: Operation = Operation::Get;
        static PUT: Operation = Operation::Put;
        static POST: Operation = Operation::Post;
        static DELETE: Operation = Operation::Delete;
        match self {
            StoredOperation::Head => &HEAD,
            StoredOperation::Get => &GET,
            StoredOperation::Put => &PUT,
            StoredOperation::Post => &POST,
            StoredOperation::Delete => &DELETE,
            StoredOperation::Custom(operation) => operation,
        }
    }
}

/// The state shared by the reply handles and the request task.
pub(crate) struct ReplyShared {
    request: Request,
    operation: StoredOperation,
    state: Mutex<ReplyState>,
    pub(crate) signals: ReplySignals,
    manager_signals: Arc<ManagerSignals>,
}

/// Qt's `QNetworkReply`: a request in progress or done.
///
/// A cheap handle (clone freely). Signals are reached through accessors returning
/// [`Signal`]s; the body through [`read_all`](Reply::read_all), [`body_stream`](Reply::body_stream),
/// [`into_async_read`](Reply::into_async_read) or [`bytes`](Reply::bytes).
///
/// ```no_run
/// # async fn demo() -> Result<(), netaccess::Error> {
/// use netaccess::{NetworkAccessManager, Request};
/// let manager = NetworkAccessManager::new();
/// let reply = manager.get(Request::new("http://127.0.0.1:8080/"));
/// reply.ready_read().connect(|r| println!("{} bytes", r.read_all().len()));
/// reply.finished().await;
/// println!("{:?} {:?}", reply.status(), reply.error());
/// # Ok(()) }
/// ```
#[doc(alias = "QNetworkReply")]
#[derive(Clone)]
pub struct Reply {
    shared: Arc<ReplyShared>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Reply")
            .field("url", &crate::error::display_url(self.shared.url(&st)))
            .field("status", &st.meta().and_then(|m| m.status))
            .field("finished", &st.finished)
            .field("error", &st.error())
            .finish()
    }
}

impl PartialEq for Reply {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}
impl Eq for Reply {}

impl std::hash::Hash for Reply {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.shared), state);
    }
}

impl Reply {
    pub(crate) fn new(
        request: Request,
        operation: Operation,
        url: Url,
        manager_signals: Arc<ManagerSignals>,
    ) -> Reply {
        // The request's URL is not kept twice.
        let rare = (request.url() != Some(&url)).then(|| {
            Box::new(RareState {
                url: Some(url),
                ..RareState::default()
            })
        });
        Reply {
            shared: Arc::new(ReplyShared {
                request,
                operation: StoredOperation::new(operation),
                state: Mutex::new(ReplyState {
                    meta: None,
                    buffer: Chunks::default(),
                    buffered: 0,
                    read_buffer_size: 0,
                    body_broken: false,
                    finished: false,
                    finished_delivered: false,
                    reader: None,
                    head_seen: false,
                    encrypted: false,
                    dequeue: None,
                    download_progress: (0, 0),
                    download_progress_kind: ProgressKind::None,
                    rare,
                }),
                signals: ReplySignals::new(),
                manager_signals,
            }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<ReplyShared> {
        &self.shared
    }

    // ----- identity -------------------------------------------------------------------------

    /// The URL of the reply: the request's, or the last redirect target followed.
    pub fn url(&self) -> Url {
        let st = self.shared.lock();
        self.shared.url(&st).clone()
    }

    /// The request this reply was made for.
    pub fn request(&self) -> &Request {
        &self.shared.request
    }

    /// The operation (GET, POST, ...).
    pub fn operation(&self) -> &Operation {
        self.shared.operation.get()
    }

    // ----- metadata and attributes ----------------------------------------------------------

    /// The HTTP status, once the response headers arrived.
    pub fn status(&self) -> Option<StatusCode> {
        self.shared.lock().meta().and_then(|m| m.status)
    }

    /// Qt's `HttpStatusCodeAttribute`: the status as a number.
    #[doc(alias = "HttpStatusCodeAttribute")]
    pub fn status_code(&self) -> Option<u16> {
        self.status().map(|s| s.as_u16())
    }

    /// Qt's `HttpReasonPhraseAttribute`: the reason phrase the server sent (HTTP/1.x), or the
    /// standard one.
    #[doc(alias = "HttpReasonPhraseAttribute")]
    pub fn reason(&self) -> Option<String> {
        self.shared.lock().meta().and_then(|m| m.reason.clone())
    }

    /// The response headers (empty before [`meta_data_changed`](Reply::meta_data_changed)).
    pub fn headers(&self) -> HeaderMap {
        self.shared
            .lock()
            .meta()
            .map(|m| m.headers.clone())
            .unwrap_or_default()
    }

    /// One response header (Qt's `rawHeader`); repeated headers: the first value.
    #[doc(alias = "rawHeader")]
    pub fn header(&self, name: &str) -> Option<HeaderValue> {
        self.shared
            .lock()
            .meta()
            .and_then(|m| m.headers.get(name).cloned())
    }

    /// How long the server asks the client to wait (`Retry-After` of a 429, 503 or 3xx), in
    /// seconds or as an HTTP-date, clamped at 2^31 s; a date in the past is zero.
    ///
    /// ```no_run
    /// # async fn f(manager: netaccess::NetworkAccessManager) {
    /// let reply = manager.get(netaccess::Request::new("http://127.0.0.1:8080/busy"));
    /// reply.finished().await;
    /// if let Some(wait) = reply.retry_after() {
    ///     println!("try again in {} s", wait.as_secs());
    /// }
    /// # }
    /// ```
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        let value = self.header("retry-after")?;
        retry_after(value.to_str().ok()?, std::time::SystemTime::now())
    }

    /// A snapshot of all metadata and attributes.
    pub fn meta(&self) -> Meta {
        self.shared.lock().meta().cloned().unwrap_or_default()
    }

    /// Qt's `ConnectionEncryptedAttribute`: the response came over TLS.
    #[doc(alias = "ConnectionEncryptedAttribute")]
    pub fn is_encrypted(&self) -> bool {
        self.shared.lock().meta().is_some_and(|m| m.encrypted)
    }

    /// Qt's `Http2WasUsedAttribute`.
    #[doc(alias = "Http2WasUsedAttribute")]
    pub fn http2_was_used(&self) -> bool {
        self.shared.lock().meta().is_some_and(|m| m.http2)
    }

    /// Qt's `SourceIsFromCacheAttribute`.
    #[doc(alias = "SourceIsFromCacheAttribute")]
    pub fn source_is_from_cache(&self) -> bool {
        self.shared.lock().meta().is_some_and(|m| m.from_cache)
    }

    /// Qt's `RedirectionTargetAttribute`: the `Location` of a 3xx response, as sent (possibly
    /// relative).
    #[doc(alias = "RedirectionTargetAttribute")]
    pub fn redirection_target(&self) -> Option<String> {
        self.shared
            .lock()
            .meta()
            .and_then(|m| m.redirection_target.clone())
    }

    /// Qt's `OriginalContentLengthAttribute`: the `Content-Length` the server sent.
    #[doc(alias = "OriginalContentLengthAttribute")]
    pub fn original_content_length(&self) -> Option<u64> {
        self.shared
            .lock()
            .meta()
            .and_then(|m| m.original_content_length)
    }

    // ----- state ----------------------------------------------------------------------------

    /// The error, if the reply failed (transport failure, HTTP error status, abort).
    pub fn error(&self) -> Option<Error> {
        self.shared.lock().error().cloned()
    }

    /// True once `finished` was emitted.
    pub fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }

    /// True while the request is queued or transferring.
    pub fn is_running(&self) -> bool {
        !self.is_finished()
    }

    /// Cancels the request: a queued one leaves its queue, a running one closes its stream
    /// (HTTP/2) or its connection (HTTP/1.1). The reply finishes at once with
    /// `OperationCanceledError` (`error_occurred`, then `finished`); nothing happens if it had
    /// finished already.
    pub fn abort(&self) {
        self.shared.cancel_token().cancel();
        self.shared.finish(Some(Error::canceled()), true);
        // A request still queued as data leaves its origin's queue now.
        let dequeue = self.shared.lock().dequeue.take();
        if let Some(dequeue) = dequeue {
            dequeue();
        }
    }

    // ----- body -----------------------------------------------------------------------------

    /// Bytes buffered and not yet read (Qt's `bytesAvailable`).
    #[doc(alias = "bytesAvailable")]
    pub fn bytes_available(&self) -> usize {
        self.shared.lock().buffered
    }

    /// Takes everything buffered now (Qt's `readAll`); empty if nothing is buffered.
    #[doc(alias = "readAll")]
    pub fn read_all(&self) -> Bytes {
        self.shared.take_buffered(usize::MAX)
    }

    /// Takes at most `max` buffered bytes.
    pub fn read(&self, max: usize) -> Bytes {
        self.shared.take_buffered(max)
    }

    /// Qt's `setReadBufferSize`: at most this many bytes are buffered before the socket is no
    /// longer read (back-pressure). 0 means unlimited, the default until the body is taken as a
    /// stream, which sets [`DEFAULT_STREAM_READ_BUFFER`] unless a size was set.
    #[doc(alias = "setReadBufferSize")]
    pub fn set_read_buffer_size(&self, size: usize) {
        let mut st = self.shared.lock();
        st.read_buffer_size = size;
        st.wake_writer();
    }

    /// The read buffer size (0: unlimited).
    pub fn read_buffer_size(&self) -> usize {
        self.shared.lock().read_buffer_size
    }

    /// The body as a stream of chunks, read as it arrives, with back-pressure. Ends with
    /// `Err` when the transfer failed or was aborted; an HTTP error status still streams its
    /// body and ends normally (check [`error`](Reply::error)).
    pub fn body_stream(&self) -> BodyStream {
        {
            let mut st = self.shared.lock();
            if st.read_buffer_size == 0 {
                st.read_buffer_size = DEFAULT_STREAM_READ_BUFFER;
            }
        }
        BodyStream::new(self.clone())
    }

    /// The body as `tokio::io::AsyncRead` (a [`body_stream`](Reply::body_stream) adapter).
    pub fn into_async_read(self) -> BodyReader {
        body::reader(self.body_stream())
    }

    /// Waits for the end and returns the body not yet read. An HTTP error status returns its
    /// body (check [`error`](Reply::error)); a transport failure or an abort returns `Err`.
    pub async fn bytes(&self) -> Result<Bytes, Error> {
        use futures_util::StreamExt;
        let mut stream = self.body_stream();
        let mut out = BytesMut::new();
        let mut single: Option<Bytes> = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            match single.take() {
                None if out.is_empty() => single = Some(chunk),
                Some(first) => {
                    out.extend_from_slice(&first);
                    out.extend_from_slice(&chunk);
                }
                None => out.extend_from_slice(&chunk),
            }
        }
        Ok(single.unwrap_or_else(|| out.freeze()))
    }

    /// [`bytes`](Reply::bytes) decoded as UTF-8 (invalid sequences replaced).
    pub async fn text(&self) -> Result<String, Error> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    // ----- signals --------------------------------------------------------------------------
    //
    // A slot connected to `finished`, `error_occurred`, `meta_data_changed`, `ready_read`,
    // `encrypted` or a progress signal after its event sees the current state at once (state
    // replay, see `crate::signal`): connecting right after `get()` misses nothing.

    /// `signal` with its replay source installed.
    fn replaying<'a, T>(&'a self, signal: &'a Signal<T>, which: Replay) -> &'a Signal<T>
    where
        T: Clone + Send + 'static,
        ReplyShared: ReplaySource<T>,
    {
        signal.set_replay_source(
            || {
                let weak: Weak<dyn ReplaySource<T>> = Arc::downgrade(&self.shared) as Weak<_>;
                weak
            },
            which as u8,
        );
        signal
    }

    /// Emitted when the response headers (status, headers, attributes) are known.
    #[doc(alias = "metaDataChanged")]
    pub fn meta_data_changed(&self) -> &Signal<Reply> {
        self.replaying(
            &self.shared.signals.meta_data_changed,
            Replay::MetaDataChanged,
        )
    }

    /// Emitted when new body bytes can be read.
    #[doc(alias = "readyRead")]
    pub fn ready_read(&self) -> &Signal<Reply> {
        self.replaying(&self.shared.signals.ready_read, Replay::ReadyRead)
    }

    /// `(received, total)` body bytes, total `None` when unknown; at most every 100 ms, plus
    /// a final emission.
    #[doc(alias = "downloadProgress")]
    pub fn download_progress(&self) -> &Signal<(u64, Option<u64>)> {
        self.replaying(
            &self.shared.signals.download_progress,
            Replay::DownloadProgress,
        )
    }

    /// `(sent, total)` request body bytes.
    #[doc(alias = "uploadProgress")]
    pub fn upload_progress(&self) -> &Signal<(u64, Option<u64>)> {
        self.replaying(
            &self.shared.signals.rare().upload_progress,
            Replay::UploadProgress,
        )
    }

    /// Emitted once, before `finished`, when the reply fails.
    #[doc(alias = "errorOccurred")]
    pub fn error_occurred(&self) -> &Signal<(Reply, Error)> {
        self.replaying(&self.shared.signals.error_occurred, Replay::ErrorOccurred)
    }

    /// Emitted exactly once at the end (also after `abort`). Latched: `reply.finished().await`
    /// resolves at once if it already fired.
    pub fn finished(&self) -> &Signal<Reply> {
        self.replaying(&self.shared.signals.finished, Replay::Finished)
    }

    /// Emitted when the connection used by this reply is encrypted (before the request is sent).
    pub fn encrypted(&self) -> &Signal<Reply> {
        self.replaying(&self.shared.signals.rare().encrypted, Replay::Encrypted)
    }

    /// Emitted when a new socket starts connecting for this reply.
    #[doc(alias = "socketStartedConnecting")]
    pub fn socket_started_connecting(&self) -> &Signal<Reply> {
        &self.shared.signals.rare().socket_started_connecting
    }

    /// Emitted when the request (headers and body) was written.
    #[doc(alias = "requestSent")]
    pub fn request_sent(&self) -> &Signal<Reply> {
        &self.shared.signals.rare().request_sent
    }

    /// Emitted when the TLS handshake meets certificate errors. A slot that calls
    /// [`ignore_ssl_errors`](Reply::ignore_ssl_errors) lets the connection go on; otherwise the
    /// reply fails with `SslHandshakeFailedError`.
    #[doc(alias = "sslErrors")]
    pub fn ssl_errors(&self) -> &Signal<(Reply, Vec<SslError>)> {
        &self.shared.signals.rare().ssl_errors
    }

    /// Qt's `ignoreSslErrors()`: certificate errors of this reply's handshake do not fail it.
    /// Call it before the request starts or from an `ssl_errors` slot. The connection, once
    /// made, is pooled like any other (as in Qt).
    #[doc(alias = "ignoreSslErrors")]
    pub fn ignore_ssl_errors(&self) {
        self.shared.lock().rare().ignore_ssl_errors = IgnoreSsl::All;
    }

    /// Qt's `ignoreSslErrors(list)`: only these certificate errors (by kind) do not fail the
    /// handshake; any other still does.
    pub fn ignore_ssl_errors_list(&self, errors: &[SslError]) {
        self.shared.lock().rare().ignore_ssl_errors =
            IgnoreSsl::Kinds(errors.iter().map(|e| e.kind()).collect());
    }

    /// The TLS version negotiated (`"TLSv1.3"`), for a reply that came over TLS.
    pub fn tls_version(&self) -> Option<String> {
        self.shared
            .lock()
            .meta()
            .and_then(|m| m.tls_version.clone())
    }

    /// The TLS cipher suite negotiated (`"TLS13_AES_256_GCM_SHA384"`).
    pub fn tls_cipher(&self) -> Option<String> {
        self.shared.lock().meta().and_then(|m| m.tls_cipher.clone())
    }

    /// Qt's `redirectAllowed()`: with the `UserVerified` policy, lets the reply follow the
    /// redirect announced by [`redirected`](Reply::redirected). (To refuse, call `abort()`.)
    #[doc(alias = "redirectAllowed")]
    pub fn redirect_allowed(&self) {
        self.shared.redirect_permit().notify_one();
    }

    /// Emitted for each redirect followed, with the new URL.
    pub fn redirected(&self) -> &Signal<Url> {
        &self.shared.signals.rare().redirected
    }
}

impl ReplyShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ReplyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn handle(self: &Arc<Self>) -> Reply {
        Reply {
            shared: self.clone(),
        }
    }

    pub(crate) fn request(&self) -> &Request {
        &self.request
    }

    pub(crate) fn operation(&self) -> &Operation {
        self.operation.get()
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.signals.started().cancel
    }

    /// The reply's URL: the last redirect target followed, else the request's.
    fn url<'a>(&'a self, st: &'a ReplyState) -> &'a Url {
        let own = st.rare.as_ref().and_then(|rare| rare.url.as_ref());
        match (own, self.request.url()) {
            (Some(url), _) | (None, Some(url)) => url,
            // `Reply::new` keeps a URL of its own when the request has none.
            (None, None) => placeholder_url(),
        }
    }

    fn redirect_permit(&self) -> Arc<Notify> {
        self.lock()
            .rare()
            .redirect_permit
            .get_or_insert_with(Default::default)
            .clone()
    }

    pub(crate) fn manager_signals(&self) -> &ManagerSignals {
        &self.manager_signals
    }

    fn take_buffered(&self, max: usize) -> Bytes {
        let mut st = self.lock();
        let taken = take_from(&mut st, max);
        if !taken.is_empty() {
            st.wake_writer();
        }
        taken
    }

    /// Records the response metadata and emits `meta_data_changed`.
    pub(crate) fn set_meta(self: &Arc<Self>, meta: Meta) {
        let handle = self.handle();
        let prepared = {
            let mut st = self.lock();
            if st.finished {
                return;
            }
            st.meta = Some(Box::new(meta));
            st.head_seen = true;
            self.signals.meta_data_changed.prepare(&handle)
        };
        prepared.deliver(&handle);
    }

    /// While the request waits in its origin's queue as data: how to take it out (`abort`).
    /// `None` once it started.
    pub(crate) fn set_dequeue(&self, dequeue: Option<Box<dyn FnOnce() + Send>>) {
        self.lock().dequeue = dequeue;
    }

    /// Records that the connection is encrypted and emits `encrypted` (once per reply).
    pub(crate) fn announce_encrypted(self: &Arc<Self>) {
        let handle = self.handle();
        let prepared = {
            let mut st = self.lock();
            if st.finished || st.encrypted {
                return;
            }
            st.encrypted = true;
            self.signals.encrypted.prepare(&handle)
        };
        prepared.deliver(&handle);
        self.manager_signals.encrypted.emit(&handle);
    }

    /// Records and emits `(received, total)` body bytes.
    pub(crate) fn report_download_progress(&self, progress: (u64, Option<u64>)) {
        let prepared = {
            let mut st = self.lock();
            st.download_progress = (progress.0, progress.1.unwrap_or(0));
            st.download_progress_kind = match progress.1 {
                Some(_) => ProgressKind::Known,
                None => ProgressKind::UnknownTotal,
            };
            self.signals.download_progress.prepare(&progress)
        };
        prepared.deliver(&progress);
    }

    /// Records and emits `(sent, total)` request body bytes.
    pub(crate) fn report_upload_progress(&self, progress: (u64, Option<u64>)) {
        let prepared = {
            let mut st = self.lock();
            st.rare().upload_progress = Some(progress);
            self.signals.upload_progress.prepare(&progress)
        };
        prepared.deliver(&progress);
    }

    /// Appends a body chunk, waiting while a bounded read buffer is full. Returns false if the
    /// reply finished meanwhile (aborted): the caller stops.
    pub(crate) async fn push_chunk(self: &Arc<Self>, chunk: Bytes) -> bool {
        if chunk.is_empty() {
            return !self.is_finished();
        }
        let handle = self.handle();
        let prepared = loop {
            let space = {
                let mut st = self.lock();
                if st.finished {
                    return false;
                }
                if st.read_buffer_size == 0 || st.buffered < st.read_buffer_size {
                    st.buffered += chunk.len();
                    st.buffer.push_back(chunk);
                    if let Some(w) = st.reader.take() {
                        w.wake();
                    }
                    break self.signals.ready_read.prepare(&handle);
                }
                st.rare().space.get_or_insert_with(Default::default).clone()
            };
            // A reader that made room after the check above left a wake-up in `space`.
            tokio::select! {
                _ = space.notified() => {}
                _ = self.cancel_token().cancelled() => return false,
            }
        };
        prepared.deliver(&handle);
        true
    }

    pub(crate) fn set_url(&self, url: Url) {
        self.lock().rare().url = Some(url);
    }

    /// Waits for `redirect_allowed()` (an abort cancels the request task instead).
    pub(crate) async fn redirect_permission(&self) {
        let permit = self.redirect_permit();
        permit.notified().await;
    }

    pub(crate) fn ssl_errors_ignored(&self) -> IgnoreSsl {
        let st = self.lock();
        st.rare
            .as_ref()
            .map(|rare| rare.ignore_ssl_errors.clone())
            .unwrap_or_default()
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// Ends the reply: records `error` (if any), emits `error_occurred` then `finished`, on
    /// the reply and on the manager, exactly once. `body_broken` says the body is incomplete.
    pub(crate) fn finish(self: &Arc<Self>, mut error: Option<Error>, body_broken: bool) {
        let reply = self.handle();
        // Both emissions are prepared under the state lock, so that a slot connecting at the
        // same time sees `finished` exactly once: live here, or replayed by `connect`.
        let (failed, finished) = {
            let mut st = self.lock();
            if st.finished {
                return;
            }
            st.finished = true;
            if let Some(e) = error.take() {
                let e = e.with_url(self.url(&st));
                error = Some(e.clone());
                st.rare().error = Some(e);
                st.body_broken = body_broken;
            }
            if let Some(w) = st.reader.take() {
                w.wake();
            }
            let failed = error.map(|e| {
                let event = (reply.clone(), e);
                let prepared = self.signals.error_occurred.prepare(&event);
                (event, prepared)
            });
            let finished = self.signals.finished.prepare(&reply);
            st.wake_writer();
            (failed, finished)
        };
        if let Some((event, prepared)) = failed {
            tracing::debug!(url = %crate::error::ShownUrl(&reply.url()), error = %event.1, "reply failed");
            prepared.deliver(&event);
        }
        finished.deliver(&reply);
        // From here on a future awaiting `finished` resolves at once (`fired`), after the
        // slots above ran.
        self.lock().finished_delivered = true;
        self.signals.finished.latch(&reply);
        self.manager_signals.finished.emit(&reply);
        // No signal fires after finished: drop the slots so closures holding handles go.
        self.signals.clear();
    }

    /// Records an HTTP error status as the reply's error without breaking the body.
    pub(crate) fn set_http_error(&self, error: Error) {
        let mut st = self.lock();
        if !st.finished {
            let error = error.with_url(self.url(&st));
            st.rare().error = Some(error);
        }
    }

    /// Poll side of the body stream: a chunk, the end, or the transport error.
    pub(crate) fn poll_chunk(&self, waker: &Waker) -> Option<Option<Result<Bytes, Error>>> {
        let mut st = self.lock();
        if let Some(chunk) = st.buffer.pop_front() {
            st.buffered -= chunk.len();
            st.wake_writer();
            return Some(Some(Ok(chunk)));
        }
        if st.finished {
            if st.body_broken {
                st.body_broken = false; // report the failure once
                return Some(st.error().cloned().map(Err));
            }
            return Some(None);
        }
        st.reader = Some(waker.clone());
        None
    }
}

fn take_from(st: &mut ReplyState, max: usize) -> Bytes {
    if st.buffered == 0 || max == 0 {
        return Bytes::new();
    }
    let single = st.buffer.len() == 1;
    if let Some(front) = st.buffer.front_mut() {
        if front.len() >= max || single {
            let n = front.len().min(max);
            let out = front.split_to(n);
            if front.is_empty() {
                st.buffer.pop_front();
            }
            st.buffered -= out.len();
            return out;
        }
    }
    let mut out = BytesMut::with_capacity(st.buffered.min(max));
    while out.len() < max {
        let Some(mut chunk) = st.buffer.pop_front() else {
            break;
        };
        let want = max - out.len();
        if chunk.len() > want {
            let rest = chunk.split_off(want);
            st.buffer.push_front(rest);
        }
        out.extend_from_slice(&chunk);
    }
    st.buffered -= out.len();
    out.freeze()
}

/// What a reply shows as its URL if it had none: never reached, as `Reply::new` keeps the URL
/// it is given when the request has none.
#[allow(clippy::expect_used)] // a constant that parses
fn placeholder_url() -> &'static Url {
    static INVALID: OnceLock<Url> = OnceLock::new();
    INVALID.get_or_init(|| Url::parse("invalid:").expect("static URL"))
}

/// The error for an HTTP status, with Qt's message shape.
pub(crate) fn http_status_error(status: StatusCode, reason: &str, url: &Url) -> Option<Error> {
    NetworkError::from_http_status(status.as_u16()).map(|kind| {
        Error::new(
            kind,
            format!(
                "Error transferring {} - server replied: {}",
                url.as_str(),
                if reason.is_empty() {
                    status.as_str()
                } else {
                    reason
                }
            ),
        )
        .with_status(status.as_u16())
    })
}

/// `Retry-After` (RFC 9110 §10.2.3): delta-seconds (clamped at 2^31) or an HTTP-date after `now`.
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<std::time::Duration> {
    use std::time::Duration;
    if let Some(seconds) = crate::cache::policy::delta_seconds(value) {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value.trim()).ok()?;
    let wait = date.duration_since(now).unwrap_or_default();
    Some(wait.min(Duration::from_secs(crate::cache::policy::MAX_DELTA_SECONDS)))
}

#[cfg(test)]
mod retry_after_tests {
    use super::retry_after;
    use std::time::{Duration, SystemTime};

    #[test]
    fn retry_after_seconds_and_dates_are_clamped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("18446744073709551616", now),
            Some(Duration::from_secs(1 << 31))
        );
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(Duration::from_secs(1 << 31))
        );
        let soon = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&soon, now), Some(Duration::from_secs(30)));
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("-5", now), None);
        assert_eq!(retry_after("soon", now), None);
    }
}

/// Which reply signal a replay serves (the selector given to [`ReplaySource::replay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Replay {
    Finished,
    ErrorOccurred,
    MetaDataChanged,
    ReadyRead,
    Encrypted,
    DownloadProgress,
    UploadProgress,
}

impl Replay {
    fn from_u8(which: u8) -> Option<Replay> {
        [
            Replay::Finished,
            Replay::ErrorOccurred,
            Replay::MetaDataChanged,
            Replay::ReadyRead,
            Replay::Encrypted,
            Replay::DownloadProgress,
            Replay::UploadProgress,
        ]
        .into_iter()
        .find(|r| *r as u8 == which)
    }
}

/// The replay source of a reply's signals is the reply: its state, read under the state lock
/// under which its emissions are prepared. Once the reply finished, slots are not kept (no
/// signal fires any more) but still see the final state.
impl ReplyShared {
    /// Runs `decide` on the state under its lock, adding the slot first unless finished.
    fn replay_with<T>(
        &self,
        add: &mut dyn FnMut(),
        decide: impl FnOnce(&ReplyState) -> Option<T>,
    ) -> Option<T> {
        let st = self.lock();
        if !st.finished {
            add();
        }
        decide(&st)
    }
}

impl ReplaySource<Reply> for ReplyShared {
    fn replay(self: Arc<Self>, which: u8, add: &mut dyn FnMut()) -> Option<Reply> {
        let now = self.replay_with(add, |st| {
            Some(match Replay::from_u8(which)? {
                Replay::Finished => st.finished,
                Replay::MetaDataChanged => st.head_seen,
                Replay::ReadyRead => st.buffered > 0,
                Replay::Encrypted => st.encrypted,
                _ => false,
            })
        });
        now.filter(|now| *now).map(|_| Reply { shared: self })
    }

    fn fired(self: Arc<Self>, which: u8) -> Option<Reply> {
        let delivered =
            Replay::from_u8(which) == Some(Replay::Finished) && self.lock().finished_delivered;
        delivered.then_some(Reply { shared: self })
    }
}

impl ReplaySource<(Reply, Error)> for ReplyShared {
    fn replay(self: Arc<Self>, _which: u8, add: &mut dyn FnMut()) -> Option<(Reply, Error)> {
        let error = self.replay_with(add, |st| st.error().cloned().filter(|_| st.finished))?;
        Some((Reply { shared: self }, error))
    }
}

impl ReplaySource<(u64, Option<u64>)> for ReplyShared {
    fn replay(self: Arc<Self>, which: u8, add: &mut dyn FnMut()) -> Option<(u64, Option<u64>)> {
        self.replay_with(add, |st| match Replay::from_u8(which)? {
            Replay::DownloadProgress => st.download_progress(),
            Replay::UploadProgress => st.rare.as_ref().and_then(|rare| rare.upload_progress),
            _ => None,
        })
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod size_tests {
    /// A reply waiting in its origin's queue holds its request and its shared state; both
    /// stay small until a slot is connected or the body starts (issue 11: 100,000 queued
    /// requests in at most 100 MiB).
    #[test]
    fn a_queued_reply_and_its_request_stay_small() {
        use std::mem::size_of;
        assert!(size_of::<crate::request::Request>() <= 112);
        assert!(size_of::<super::ReplyShared>() <= 360);
    }
}
