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
//!
//! Parts: `signals` (the reply's signals, their accessors, the reply as their replay source),
//! `state` (what the lock guards), `chunks` (the body buffer), `body` (stream and reader),
//! `meta` ([`Meta`]). This file stays over 600 lines for `Reply`'s public API: one documented
//! accessor per `QNetworkReply` member.

mod body;
mod chunks;
mod meta;
mod signals;
mod state;

pub use body::{BodyReader, BodyStream};
pub use meta::Meta;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue};
use http::StatusCode;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::context::ManagerSignals;
use crate::error::{Error, NetworkError};
use crate::request::{Operation, Request};
use crate::transport::tls::{IgnoreSsl, SslError};
use chunks::Chunks;
use signals::ReplySignals;
use state::{take_from, ProgressKind, RareState, ReplyState, StoredOperation};

/// Read buffer used once the body is taken as a stream, when none was set (1 MiB).
pub const DEFAULT_STREAM_READ_BUFFER: usize = 1 << 20;

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
/// [`Signal`](crate::Signal)s; the body through [`read_all`](Reply::read_all), [`body_stream`](Reply::body_stream),
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

    /// When each phase of the request ended, counted from when it was handed to the
    /// manager (curl's `-w` times; see [`Timings`](crate::events::Timings)). Complete once
    /// the reply finished; all `None` for a request that never started.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// let manager = netaccess::NetworkAccessManager::new();
    /// let reply = manager.get(netaccess::Request::new("http://127.0.0.1:8080/"));
    /// reply.finished().await;
    /// let t = reply.timings();
    /// println!("first byte after {:?}, total {:?}", t.first_byte, t.total);
    /// # }
    /// ```
    pub fn timings(&self) -> crate::events::Timings {
        self.shared
            .signals
            .started_if_any()
            .map(|s| s.timings.lock().unwrap_or_else(|e| e.into_inner()).1)
            .unwrap_or_default()
    }

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
        let state = self.shared.lock();
        let mut values = state.meta()?.headers.get_all(name).iter();
        let first = values.next()?;
        let mut joined = first.as_bytes().to_vec();
        let mut repeated = false;
        for value in values {
            repeated = true;
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(value.as_bytes());
        }
        if !repeated {
            return Some(first.clone());
        }
        // Joined from valid values with ", ": still a valid value.
        HeaderValue::from_bytes(&joined).ok()
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

    /// A snapshot of all metadata and attributes, the [`timings`](Reply::timings) included.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// let manager = netaccess::NetworkAccessManager::new();
    /// let reply = manager.get(netaccess::Request::new("http://127.0.0.1:8080/"));
    /// reply.finished().await;
    /// let meta = reply.meta();
    /// println!("{:?} in {:?}", meta.status, meta.timings.total);
    /// # }
    /// ```
    pub fn meta(&self) -> Meta {
        let mut meta = self.shared.lock().meta().cloned().unwrap_or_default();
        meta.timings = self.timings();
        meta
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

    /// Qt's `SourceIsFromCacheAttribute`: the reply was answered from the cache without a
    /// request reaching the server. Unlike Qt, a reply served from the cache after a `304 Not
    /// Modified` is `false`: the server was asked (its status and headers are the stored
    /// ones, merged with the 304's).
    #[doc(alias = "SourceIsFromCacheAttribute")]
    pub fn source_is_from_cache(&self) -> bool {
        self.shared.lock().meta().is_some_and(|m| m.from_cache)
    }

    /// Qt's `RedirectionTargetAttribute`: the `Location` of a 3xx response, resolved against
    /// the reply's URL (`Meta::redirection_target` keeps the text as sent). `None` without a
    /// `Location`, or with one that is not a valid URL reference.
    ///
    /// ```no_run
    /// # async fn f(manager: netaccess::NetworkAccessManager) {
    /// let reply = manager.get(
    ///     netaccess::Request::new("http://127.0.0.1:8080/a/b")
    ///         .with_redirect_policy(netaccess::RedirectPolicy::Manual),
    /// );
    /// reply.finished().await;
    /// // `Location: ../c` is http://127.0.0.1:8080/c
    /// println!("{:?}", reply.redirection_target());
    /// # }
    /// ```
    #[doc(alias = "RedirectionTargetAttribute")]
    pub fn redirection_target(&self) -> Option<url::Url> {
        let sent = self.shared.lock().meta()?.redirection_target.clone()?;
        let text = crate::redirect::location_text(sent.as_bytes()).into_owned();
        self.url().join(text.trim()).ok()
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

    /// [`bytes`](Reply::bytes) decoded as text: in the `charset` of `Content-Type` (any
    /// WHATWG encoding label: `iso-8859-1`, `shift_jis`, `utf-16le`, ...), or a byte-order
    /// mark's, else UTF-8; invalid sequences are replaced (Qt's `QRestReply::readText`).
    pub async fn text(&self) -> Result<String, Error> {
        let bytes = self.bytes().await?;
        let charset = self
            .header("content-type")
            .and_then(|ct| charset_of(ct.as_bytes()));
        let encoding = charset
            .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
            .unwrap_or(encoding_rs::UTF_8);
        let (text, _, _) = encoding.decode(&bytes);
        Ok(text.into_owned())
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

    /// Qt's `sslConfiguration()`: what the TLS handshake of this reply's connection
    /// negotiated (the peer's certificate chain, the ALPN protocol, the version and cipher);
    /// `None` before the response head, and for a reply not over TLS.
    ///
    /// ```no_run
    /// # async fn demo(manager: netaccess::NetworkAccessManager) {
    /// let reply = manager.get(netaccess::Request::new("https://example.org/"));
    /// reply.bytes().await.ok();
    /// let alpn = reply.ssl_session().and_then(|s| s.negotiated_protocol().map(<[u8]>::to_vec));
    /// # }
    /// ```
    #[doc(alias = "sslConfiguration")]
    pub fn ssl_session(&self) -> Option<crate::SslSession> {
        self.shared
            .lock()
            .meta()
            .and_then(|m| m.ssl_session.clone())
    }

    /// Qt's `redirectAllowed()`: with the `UserVerified` policy, lets the reply follow the
    /// redirect announced by [`redirected`](Reply::redirected). (To refuse, call `abort()`.)
    #[doc(alias = "redirectAllowed")]
    pub fn redirect_allowed(&self) {
        self.shared.redirect_permit().notify_one();
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

    /// Sets when the request was handed to the manager: where its timings count from.
    pub(crate) fn start_timings(&self, created: std::time::Instant) {
        self.signals.started_at(created);
    }

    /// Changes the reply's timings without reading the clock.
    pub(crate) fn update_timings(&self, change: impl FnOnce(&mut crate::events::Timings)) {
        let started = self.signals.started();
        change(&mut started.timings.lock().unwrap_or_else(|e| e.into_inner()).1);
    }

    /// Changes the reply's timings; `change` gets the time since the request was handed to
    /// the manager, which this returns.
    pub(crate) fn with_timings(
        &self,
        change: impl FnOnce(std::time::Duration, &mut crate::events::Timings),
    ) -> std::time::Duration {
        let started = self.signals.started();
        let mut guard = started.timings.lock().unwrap_or_else(|e| e.into_inner());
        let (created, timings) = &mut *guard;
        let age = created.elapsed();
        change(age, timings);
        age
    }

    /// Counts a retry and announces it (`retrying`).
    pub(crate) fn note_retry(&self, wait: std::time::Duration) {
        let started = self.signals.started();
        let n = started
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        started.signals.retrying.emit(&(n, wait));
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

#[cfg(all(test, target_pointer_width = "64"))]
mod size_tests {
    /// A reply waiting in its origin's queue holds its request and its shared state; both
    /// stay small until a slot is connected or the body starts (issue 11: 100,000 queued
    /// requests in at most 100 MiB).
    #[test]
    fn a_queued_reply_and_its_request_stay_small() {
        use std::mem::size_of;
        assert!(size_of::<crate::request::Request>() <= 112);
        assert!(size_of::<super::ReplyShared>() <= 328);
    }
}

/// The `charset` parameter of a `Content-Type` value, unquoted.
fn charset_of(content_type: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(content_type);
    text.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}
