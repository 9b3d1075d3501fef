//! One request from start to finish. [`start`] (through [`run`]; with a cache, polled once on
//! the calling thread first, so a hit needs no task) and [`QueuedRequest`] start it (the
//! latter on a connection slot granted while the request waited in its origin's queue as data);
//! [`drive`] makes sure the reply finishes whatever happens, a panic included; `execute`
//! dispatches on the scheme: `data:` and `file:` are delivered at once, HTTP goes through
//! the attempt loop.
//!
//! The stages live in their own modules, each a short function of the context, the attempt
//! and the response head that returns a named step; only [`attempt`]'s loop orders them:
//! - [`session`]: HSTS upgrade and cookies before an attempt, what a response teaches after;
//! - [`cache`]: a stored answer or validators before, a 304 or a stale fallback after;
//! - [`auth`]: credentials before, a 401 or 407 answered after, proxy credentials for both
//!   absolute-form requests and CONNECT;
//! - [`intercept`]: the manager's interceptors, before each attempt and after each head;
//! - [`retry`]: a failed attempt sent again after a wait, under the retry policy;
//! - [`exchange`]: a connection slot, the connector, sending, and the retries that are safe;
//! - [`deliver`]: the one way bodies (network, cached, local) reach the reply.

mod attempt;
mod auth;
mod cache;
mod deliver;
mod exchange;
mod intercept;
pub(crate) mod resume;
mod retry;
mod session;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::backend;
use crate::backend::http::HttpConn;
use crate::context::Context;
use crate::error::{Error, NetworkError};
use crate::events::Event;
use crate::reply::ReplyShared;
use crate::scheduler::{Grant, Origin};
use crate::upload::Body;

pub(crate) use attempt::check_http_url;

/// The schemes [`run`] handles.
pub(crate) const SUPPORTED_SCHEMES: &[&str] =
    &["http", "https", "data", "file", "unix+http", "local+http"];

/// A connection slot granted to a request that waited in its origin's queue as data (boxed:
/// it is moved through several futures' states before the first attempt takes it).
pub(crate) type Granted = Box<(Origin, Grant<HttpConn>)>;

/// Runs the request of `reply` to its end. An `abort()` cancels this future at its next await
/// point; the reply was already finished by `abort()` itself. The future finishes the reply
/// even if it is dropped before it was first polled (a runtime shutting down).
pub(crate) fn run(
    ctx: Arc<Context>,
    reply: Arc<ReplyShared>,
    body: Body,
) -> impl Future<Output = ()> + Send {
    let guard = FinishGuard(reply.clone());
    let created = Instant::now();
    async move {
        // Boxed: the spawned task stays small (tokio moves it a few times per request).
        let work = boxed(|| execute(&ctx, &reply, body, None));
        drive(&ctx, &reply, work, guard, created).await;
    }
}

/// Starts the request of `reply` on the manager's runtime. With a cache, the request is first
/// polled once on the calling thread (inside the runtime's context): a hit that needs no I/O
/// (a [`MemoryCache`](crate::MemoryCache) entry, a `DiskCache` entry it holds parsed) is
/// delivered and finished within that poll, with no task of its own. Anything else is spawned
/// as a task, as every request without a cache is.
///
/// A slot that starts a request from inside such a poll (a `finished` slot fetching the next
/// page) nests another one; past [`MAX_INLINE_DEPTH`] nested polls on a thread, requests are
/// spawned, so a chain of hits never grows the stack without bound.
pub(crate) fn start(ctx: Arc<Context>, reply: Arc<ReplyShared>, body: Body) {
    thread_local! {
        static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    let runtime = ctx.runtime.clone();
    let depth = DEPTH.with(|d| d.get());
    let inline = ctx.config.cache.is_some() && depth < MAX_INLINE_DEPTH;
    let mut work = boxed(|| run(ctx, reply, body));
    if inline {
        let _entered = runtime.enter();
        let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        DEPTH.with(|d| d.set(depth + 1));
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.as_mut().poll(&mut cx)));
        DEPTH.with(|d| d.set(depth));
        match polled {
            Ok(std::task::Poll::Ready(())) => return,
            Ok(std::task::Poll::Pending) => {}
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    runtime.spawn(work);
}

/// `Box::pin(make())`, with the future written straight into its heap slot.
///
/// `Box::pin(f)` builds `f` on the stack and then copies all of it, and an async state
/// machine is as large as its largest suspended state (a request's attempt loop is several
/// KiB): that copy was the largest single cost of a small request (`docs/performance.md`).
/// Allocating first lets the compiler build the future in place.
pub(crate) fn boxed<F: Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    let mut slot = Box::<F>::new_uninit();
    slot.write(make());
    // SAFETY: the slot was initialised by the write just above.
    Box::into_pin(unsafe { slot.assume_init() })
}

/// How many requests may be polled inline inside one another on a thread (see [`start`]).
pub(crate) const MAX_INLINE_DEPTH: u32 = 4;

/// The origin whose queue a new request can wait in as data, before any task exists for it:
/// an HTTP request with no cache to consult first (a cache hit must not wait for a slot).
/// `None`: the request runs as a task from the start ([`run`]).
pub(crate) fn queue_origin(ctx: &Context, reply: &ReplyShared) -> Option<Origin> {
    let request = reply.request();
    if ctx.config.cache.is_some() || request.invalid_header().is_some() {
        return None;
    }
    let url = request.url()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let upgraded = ctx.hsts_upgrade(url);
    let url = upgraded.as_ref().unwrap_or(url);
    check_http_url(url).ok()?;
    Origin::for_url(url, request, ctx.proxy_for(url)).ok()
}

/// A request waiting in its origin's queue as data: what its task needs once a slot is
/// granted. Dropped without being started (its queue went away), it finishes the reply.
pub(crate) struct QueuedRequest {
    pub(crate) ctx: Arc<Context>,
    pub(crate) reply: Arc<ReplyShared>,
    pub(crate) body: Option<Body>,
    /// When the request was handed to the manager (its timings count from there).
    pub(crate) created: Instant,
}

impl QueuedRequest {
    /// Spawns the request's task on the slot granted for `origin`.
    pub(crate) fn start(mut self, origin: &Origin, granted: Grant<HttpConn>) {
        let body = self.body.take().unwrap_or_else(Body::empty);
        let (ctx, reply) = (self.ctx.clone(), self.reply.clone());
        let guard = FinishGuard(reply.clone());
        reply.set_dequeue(None);
        let granted = Box::new((origin.clone(), granted));
        let created = self.created;
        self.ctx.runtime.spawn(async move {
            // Boxed: the spawned task stays small (tokio moves it a few times per request).
            let work = boxed(|| execute(&ctx, &reply, body, Some(granted)));
            drive(&ctx, &reply, work, guard, created).await;
        });
    }
}

impl Drop for QueuedRequest {
    fn drop(&mut self) {
        if self.body.is_some() && !self.reply.is_finished() {
            self.reply.finish(
                Some(Error::new(
                    NetworkError::OperationCanceledError,
                    "The request was dropped while it waited for a connection",
                )),
                true,
            );
        }
    }
}

/// Opens a connection to the reply's origin ahead of time and leaves it idle in the pool
/// (Qt's `connectToHost` / `connectToHostEncrypted`); the reply finishes when it is ready.
pub(crate) async fn preconnect(ctx: Arc<Context>, reply: Arc<ReplyShared>) {
    let guard = FinishGuard(reply.clone());
    let work = Box::pin(exchange::open_ahead(&ctx, &reply));
    drive(&ctx, &reply, work, guard, Instant::now()).await;
}

/// Runs `work` for `reply` and finishes the reply with its outcome, unless `abort()` ended it.
/// The request's events start and end here, and it runs in a `tracing` span of its own.
///
/// A reply always finishes: a panic inside `work` (a user slot, a dependency) is caught here
/// and finishes the reply with an error, and [`FinishGuard`] finishes it if the task is dropped
/// before its end (the runtime shutting down). The manager's other requests go on.
async fn drive(
    ctx: &Context,
    reply: &Arc<ReplyShared>,
    work: impl Future<Output = Result<Option<Error>, Error>>,
    guard: FinishGuard,
    created: Instant,
) {
    use futures_util::FutureExt;
    reply.start_timings(created);
    use tracing::Instrument;
    let span = tracing::debug_span!("request", method = %reply.operation().method(), url = tracing::field::Empty);
    if !span.is_disabled() {
        let url = reply
            .request()
            .url()
            .map(|u| crate::error::ShownUrl(u).to_string());
        span.record("url", url.as_deref().unwrap_or("(invalid)"));
    }
    let cancel = reply.cancel_token().clone();
    let work = async {
        ctx.event(reply, Event::CallStart);
        std::panic::AssertUnwindSafe(work).catch_unwind().await
    };
    let outcome = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            ctx.event(reply, Event::Canceled);
            return;
        }
        outcome = work.instrument(span.clone()) => outcome,
    };
    let _entered = span.enter();
    let (error, broken) = match outcome {
        Ok(Ok(http_error)) => (http_error, false),
        Ok(Err(e)) => (Some(e), true),
        Err(panic) => (Some(panicked(&*panic)), true),
    };
    match &error {
        Some(e) if broken => ctx.event(reply, Event::CallFailed { error: e }),
        _ => ctx.event(reply, Event::CallEnd),
    }
    drop(_entered);
    reply.finish(error, broken);
    drop(guard);
}

/// The error of a reply whose request task panicked.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic");
    tracing::error!(
        panic = what,
        "a request task panicked; its reply finishes with an error"
    );
    Error::new(
        NetworkError::UnknownNetworkError,
        format!("Internal error: the request stopped on a panic ({what})"),
    )
}

/// Finishes its reply with an error when dropped first: the request task went away unfinished.
struct FinishGuard(Arc<ReplyShared>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            self.0.finish(
                Some(Error::new(
                    NetworkError::OperationCanceledError,
                    "The request was dropped before it finished (the runtime shut down)",
                )),
                true,
            );
        }
    }
}

/// `Ok(Some(e))`: the exchange completed with an HTTP error status (the body is whole).
async fn execute(
    ctx: &Context,
    reply: &Arc<ReplyShared>,
    body: Body,
    granted: Option<Granted>,
) -> Result<Option<Error>, Error> {
    let request = reply.request();
    let url = request
        .url_result()
        .map_err(|m| Error::new(NetworkError::ProtocolUnknownError, m))?
        .clone();
    if let Some(bad) = request.invalid_header() {
        return Err(Error::new(
            NetworkError::ProtocolInvalidOperationError,
            format!("Invalid request: {bad}"),
        ));
    }
    match url.scheme() {
        "http" | "https" | "unix+http" | "local+http" => {
            let target = attempt::Target {
                url,
                operation: reply.operation().clone(),
                headers: request.headers().clone(),
                body,
            };
            // Boxed where it is made: the attempt loop is most of a request's state, and a
            // future awaited in place is copied into its caller's (8 KiB on every request).
            let run = boxed(|| attempt::run(ctx, reply, target, granted));
            match request.deadline() {
                None => run.await,
                Some(deadline) => match tokio::time::timeout(deadline, run).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Error::new(
                        NetworkError::TimeoutError,
                        format!(
                            "The request did not finish within its deadline of {:.1} s",
                            deadline.as_secs_f64()
                        ),
                    )),
                },
            }
        }
        // Local schemes are boxed so that the task of every queued HTTP request stays small.
        "data" => Box::pin(local_data(reply, &url)).await,
        "file" => Box::pin(local_file(reply, &url, body)).await,
        other => Err(Error::new(
            NetworkError::ProtocolUnknownError,
            format!("Protocol \"{other}\" is unknown"),
        )),
    }
}

async fn local_data(reply: &Arc<ReplyShared>, url: &url::Url) -> Result<Option<Error>, Error> {
    let (meta, data) = backend::data::fetch(url, reply.operation())?;
    let body = futures_util::stream::iter([Ok(data)]);
    deliver::deliver(reply, url, meta, body, deliver::Decoding::None).await
}

async fn local_file(
    reply: &Arc<ReplyShared>,
    url: &url::Url,
    body: Body,
) -> Result<Option<Error>, Error> {
    let (meta, stream) =
        backend::file::fetch(url, reply.operation(), body.collect().await?).await?;
    match stream {
        Some(stream) => deliver::deliver(reply, url, meta, stream, deliver::Decoding::None).await,
        None => {
            let empty = futures_util::stream::empty();
            deliver::deliver(reply, url, meta, empty, deliver::Decoding::None).await
        }
    }
}
