//! The scheduler: connection slots, queues and the idle pool of every origin. No crate does this.
//!
//! The decisions are taken by a synchronous state machine, [`core`] (see its docs for the
//! rules: priority order, the limit per origin and the optional global one, HTTP/2 streams, one
//! connection alone while ALPN decides the protocol, idle expiry), with one origin's state in
//! `origin`. This module is its async shell: a lock around the core; the handles requests hold
//! ([`Grant`], [`Permit`], [`Checkout`]: dropping one reports it); carrying out the core's
//! decisions once the lock is released (a oneshot send to a waiting task, or the start function
//! of a request queued as data, which spawns its task: OkHttp's `readyAsyncCalls` and
//! `promoteAndExecute`; closing connections); and the idle sweeper, which sleeps until the next
//! expiry the core reports.
//!
//! The pool is generic over the connection type: it never connects or speaks HTTP itself.

pub(crate) mod core;
mod key;
mod origin;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify};

use self::core::{Core, Decision, Handout, Lease, QueueKey};
use crate::request::Priority;

#[cfg(test)]
pub(crate) use self::core::OriginStats;

/// A connection the pool can hold.
pub(crate) trait PoolConn: Send + Sized + 'static {
    /// False once the peer closed it or it failed.
    fn is_open(&self) -> bool;
    /// For a multiplexed (HTTP/2) connection, another handle to it; `None` for HTTP/1.1.
    fn share(&self) -> Option<Self>;
    /// For a multiplexed connection: whether one more request may use it now (the server's
    /// stream limit). While it may not, requests wait in the queue, in priority order.
    fn has_stream_capacity(&self) -> bool {
        true
    }
    /// For a multiplexed connection: this handle's request got its response head and no longer
    /// counts against the stream limit (its body is the connection's own flow control's).
    fn end_stream_slot(&mut self) {}
}

/// How the protocol of an origin's connections is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Mode {
    /// HTTP/1.1 only.
    Http1,
    /// TLS with ALPN offering h2 and http/1.1.
    Negotiate,
    /// HTTP/2 by prior knowledge.
    Http2Direct,
}

/// The key of a pool: requests to the same origin share connections and one limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    /// `http`, `https`, `unix+http` or `local+http`.
    pub scheme: &'static str,
    /// Shared: an origin is cloned for each request it grants a slot to.
    pub host: std::sync::Arc<str>,
    pub port: u16,
    /// The proxy the connections go through; `None` for direct connections.
    pub proxy: Option<crate::proxy::Proxy>,
    pub mode: Mode,
    /// The request's own TLS settings (compared by fingerprint, see `key.rs`); `None`: the
    /// manager's.
    pub tls: Option<std::sync::Arc<crate::tls_config::TlsSettings>>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// What starts a request queued as data when it is granted (it spawns the request's task).
/// It gets the origin it waited for (the queue's key, so the request need not keep a copy).
pub(crate) type Start<C> = Box<dyn FnOnce(&Origin, Grant<C>) + Send>;

/// A queued request: a task waiting for its grant, or a request with no task yet.
enum Waiting<C: PoolConn> {
    Task(oneshot::Sender<Grant<C>>),
    Data(Start<C>),
}

type Decisions<C> = self::core::Decisions<C, Waiting<C>>;

/// Where a request queued as data waits, to take it out again ([`Pool::dequeue`]).
/// The key is unique in the pool, so no copy of the origin is needed.
pub(crate) struct QueueTicket<C: PoolConn> {
    pool: Weak<PoolInner<C>>,
    key: QueueKey,
}

pub(crate) struct PoolInner<C: PoolConn> {
    core: Mutex<Core<C, Waiting<C>>>,
    /// Wakes the idle sweeper when the pool goes, so that it ends.
    gone: Arc<Notify>,
}

impl<C: PoolConn> Drop for PoolInner<C> {
    fn drop(&mut self) {
        self.gone.notify_one();
    }
}

/// The pool: cheap to clone.
pub(crate) struct Pool<C: PoolConn> {
    inner: Arc<PoolInner<C>>,
}

impl<C: PoolConn> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

/// What [`Pool::acquire`] gives: a connection, or the right to open one.
pub(crate) enum Grant<C: PoolConn> {
    /// A connection to send on (idle HTTP/1.1, or a handle to the HTTP/2 one).
    Reuse(Checkout<C>),
    /// Open a new connection, then report it with [`Permit::connected`] (dropping the permit
    /// frees the slot, as for a failed connect).
    Connect(Permit<C>),
}

/// The right to open one connection for an origin.
pub(crate) struct Permit<C: PoolConn> {
    pool: Weak<PoolInner<C>>,
    origin: Origin,
    armed: bool,
}

/// A connection taken from the pool. Hand it back with [`Checkout::release`]; dropping it
/// counts as broken (an HTTP/1.1 connection dropped mid-exchange is not reusable).
pub(crate) struct Checkout<C: PoolConn> {
    pool: Weak<PoolInner<C>>,
    origin: Origin,
    conn: Option<C>,
    /// On the shared HTTP/2 connection: the core's id for it.
    stream: Option<u64>,
    reused: bool,
}

impl<C: PoolConn> Pool<C> {
    /// `default_limit` sockets per origin (unless an origin's first request sets its own);
    /// idle connections close after `idle_timeout`. No global limit: see
    /// [`with_max_total`](Self::with_max_total).
    pub(crate) fn new(default_limit: usize, idle_timeout: Duration) -> Self {
        Pool {
            inner: Arc::new(PoolInner {
                core: Mutex::new(Core::new(default_limit, idle_timeout)),
                gone: Arc::new(Notify::new()),
            }),
        }
    }

    /// Limits the open sockets over all origins to `max` (at least 1; `None`: no limit, the
    /// default). At the limit, a request that needs a new connection closes an idle connection
    /// of another origin, or waits; room goes to waiters in priority order across origins.
    pub(crate) fn with_max_total(self, max: Option<usize>) -> Self {
        self.inner.lock().set_max_total(max);
        self
    }

    pub(crate) fn downgrade(&self) -> Weak<PoolInner<C>> {
        Arc::downgrade(&self.inner)
    }

    /// Waits for a connection or a permit for `origin`. `limit` (the request's own setting)
    /// applies when this request creates the origin's entry; later requests share that limit.
    /// Dropping the future leaves the queue.
    pub(crate) async fn acquire(
        &self,
        origin: &Origin,
        priority: Priority,
        limit: Option<usize>,
    ) -> Grant<C> {
        loop {
            let queued = self.inner.run(|core, now, out| {
                let key = match core.try_acquire(origin, priority, limit, now, out) {
                    Ok(handout) => return Ok(handout),
                    Err(key) => key,
                };
                let (tx, rx) = oneshot::channel();
                core.queue(origin, key, Waiting::Task(tx));
                Err((key, rx))
            });
            let (key, rx) = match queued {
                Ok(handout) => return self.inner.grant(origin.clone(), handout),
                Err(queued) => queued,
            };
            let waiter = Waiter {
                pool: &self.inner,
                origin,
                key,
                rx,
            };
            if let Some(grant) = waiter.wait().await {
                return grant;
            }
        }
    }

    /// Queues a request that has no task yet: `start` runs with its grant at once if one can be
    /// given now (`None` is returned), or later from whoever frees a slot (the ticket lets an
    /// abort take it out). `start` never runs under the pool's lock.
    #[cfg(test)]
    pub(crate) fn enqueue(
        &self,
        origin: &Origin,
        priority: Priority,
        limit: Option<usize>,
        start: Start<C>,
    ) -> Option<QueueTicket<C>> {
        self.enqueue_at(Instant::now(), origin, priority, limit, start)
    }

    /// [`enqueue`](Self::enqueue) at `now`, a clock reading the caller already has.
    pub(crate) fn enqueue_at(
        &self,
        now: Instant,
        origin: &Origin,
        priority: Priority,
        limit: Option<usize>,
        start: Start<C>,
    ) -> Option<QueueTicket<C>> {
        let queued = self.inner.run_at(now, |core, now, out| {
            match core.try_acquire(origin, priority, limit, now, out) {
                Ok(handout) => Ok((handout, start)),
                Err(key) => {
                    core.queue(origin, key, Waiting::Data(start));
                    Err(key)
                }
            }
        });
        match queued {
            Ok((handout, start)) => {
                start(origin, self.inner.grant(origin.clone(), handout));
                None
            }
            Err(key) => Some(QueueTicket {
                pool: Arc::downgrade(&self.inner),
                key,
            }),
        }
    }

    /// Takes a request queued as data out of the queue (an abort); false if it was started
    /// already. Its start function is dropped here, outside the lock.
    pub(crate) fn dequeue(ticket: QueueTicket<C>) -> bool {
        let Some(pool) = ticket.pool.upgrade() else {
            return false;
        };
        let removed = pool.lock().dequeue(ticket.key);
        removed.is_some()
    }

    /// Closes every idle connection and forgets the multiplexed ones (running requests keep
    /// theirs until they finish).
    pub(crate) fn clear_idle(&self) {
        self.inner.run(|core, now, out| core.clear_idle(now, out));
    }

    /// Starts the idle sweeper on `runtime`: a task that closes idle connections when they
    /// expire, sleeping until the next expiry the core reports. It holds the pool weakly and
    /// ends when the pool goes.
    pub(crate) fn spawn_sweeper(&self, runtime: &tokio::runtime::Handle) {
        runtime.spawn(sweep(self.downgrade(), self.inner.gone.clone(), TokioTimer));
    }

    #[cfg(test)]
    pub(crate) fn stats(&self, origin: &Origin) -> OriginStats {
        self.inner.lock().stats(origin)
    }
}

impl<C: PoolConn> PoolInner<C> {
    fn lock(&self) -> MutexGuard<'_, Core<C, Waiting<C>>> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one event on the core under the lock, then carries out its decisions.
    fn run<R>(
        self: &Arc<Self>,
        event: impl FnOnce(&mut Core<C, Waiting<C>>, Instant, &mut Decisions<C>) -> R,
    ) -> R {
        self.run_at(Instant::now(), event)
    }

    /// [`run`](Self::run) at `now`.
    fn run_at<R>(
        self: &Arc<Self>,
        now: Instant,
        event: impl FnOnce(&mut Core<C, Waiting<C>>, Instant, &mut Decisions<C>) -> R,
    ) -> R {
        let mut out = Decisions::new();
        let result = event(&mut self.lock(), now, &mut out);
        self.carry_out(out);
        result
    }

    fn expire_at(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        let mut out = Decisions::new();
        let next = self.lock().expire(now, &mut out);
        self.carry_out(out);
        next
    }

    /// Carries out decisions, outside the lock: starting a waiter may re-enter the pool.
    fn carry_out(self: &Arc<Self>, decisions: Decisions<C>) {
        for decision in decisions {
            match decision {
                Decision::Start {
                    waiter,
                    origin,
                    handout,
                } => match waiter {
                    Waiting::Task(tx) => {
                        // A waiter that went between leaving the queue and this send: the
                        // grant goes back (a connection to the pool, a permit's slot freed).
                        if let Err(grant) = tx.send(self.grant(origin, handout)) {
                            grant.give_back();
                        }
                    }
                    Waiting::Data(start) => {
                        let grant = self.grant(origin.clone(), handout);
                        start(&origin, grant);
                    }
                },
                Decision::Close(conn) => drop(conn),
            }
        }
    }

    fn grant(self: &Arc<Self>, origin: Origin, handout: Handout<C>) -> Grant<C> {
        let pool = Arc::downgrade(self);
        match handout {
            Handout::Reuse(Lease { conn, stream }) => Grant::Reuse(Checkout {
                pool,
                origin,
                conn: Some(conn),
                stream,
                reused: true,
            }),
            Handout::Connect => Grant::Connect(Permit {
                pool,
                origin,
                armed: true,
            }),
        }
    }
}

impl<C: PoolConn> Grant<C> {
    /// Returns an unused grant: a connection to the pool as reusable, a permit's slot freed.
    fn give_back(self) {
        match self {
            Grant::Reuse(checkout) => checkout.release(true),
            Grant::Connect(permit) => drop(permit),
        }
    }
}

/// A task's place in the queue; dropping it leaves the queue.
struct Waiter<'a, C: PoolConn> {
    pool: &'a Arc<PoolInner<C>>,
    origin: &'a Origin,
    key: QueueKey,
    rx: oneshot::Receiver<Grant<C>>,
}

impl<C: PoolConn> Waiter<'_, C> {
    async fn wait(mut self) -> Option<Grant<C>> {
        (&mut self.rx).await.ok()
    }
}

impl<C: PoolConn> Drop for Waiter<'_, C> {
    fn drop(&mut self) {
        let removed = self.pool.lock().remove_waiter(self.origin, self.key);
        drop(removed);
        // A grant sent before the waiter went: the connection goes back to the pool as it
        // came (a healthy one is not closed), a permit's slot is freed.
        if let Ok(grant) = self.rx.try_recv() {
            grant.give_back();
        }
    }
}

impl<C: PoolConn> Permit<C> {
    /// Reports the new connection: an HTTP/2 one becomes the origin's shared connection and
    /// serves every waiter; an HTTP/1.1 one settles the protocol so that waiters may open more.
    pub(crate) fn connected(mut self, conn: C) -> Checkout<C> {
        self.armed = false;
        let shared = conn.share();
        let stream = match self.pool.upgrade() {
            Some(pool) => pool.run(|core, now, out| core.connected(&self.origin, shared, now, out)),
            None => None,
        };
        Checkout {
            pool: self.pool.clone(),
            origin: self.origin.clone(),
            conn: Some(conn),
            stream,
            reused: false,
        }
    }
}

impl<C: PoolConn> Drop for Permit<C> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.run(|core, now, out| core.connect_failed(&self.origin, now, out));
        }
    }
}

impl<C: PoolConn> Checkout<C> {
    /// The connection.
    #[allow(clippy::expect_used)] // present from checkout until `release` consumes `self`
    pub(crate) fn conn(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .expect("checkout holds its connection until released")
    }

    /// The response head arrived. On a multiplexed connection the request's stream slot goes
    /// to the next waiter (a body nobody reads must not hold back the queue; the server's
    /// stream limit for bodies still in flight is enforced by the HTTP/2 layer itself).
    pub(crate) fn response_head_received(&mut self) {
        if self.stream.is_none() {
            return;
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.end_stream_slot();
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.run(|core, now, out| core.stream_slot_freed(&self.origin, now, out));
        }
    }

    /// True when the connection had served an earlier request (idle reuse or shared h2).
    pub(crate) fn was_reused(&self) -> bool {
        self.reused
    }

    /// Gives the connection back: `reusable` if the exchange completed and the connection
    /// can carry another request.
    pub(crate) fn release(mut self, reusable: bool) {
        if let Some(conn) = self.conn.take() {
            self.give_back(conn, reusable);
        }
    }

    fn give_back(&mut self, conn: C, reusable: bool) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let origin = &self.origin;
        match self.stream {
            // The shared handle stays in the pool; this one goes, freeing a stream.
            Some(stream) => {
                drop(conn);
                pool.run(|core, now, out| core.stream_done(origin, stream, now, out));
            }
            None => pool.run(|core, now, out| core.release(origin, conn, reusable, now, out)),
        }
    }
}

impl<C: PoolConn> Drop for Checkout<C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.give_back(conn, false);
        }
    }
}

/// The idle sweeper's clock and timer: tokio's in the manager, a hand-driven one in tests.
trait Timer: Send + 'static {
    fn now(&self) -> Instant;
    /// Completes at `deadline`; never for `None`.
    fn sleep_until(&self, deadline: Option<Instant>) -> impl Future<Output = ()> + Send;
}

struct TokioTimer;

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep_until(&self, deadline: Option<Instant>) {
        match deadline {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    }
}

/// The idle sweeper: expires idle connections, then sleeps until the next expiry the core
/// reports (or until the pool goes). It holds the pool only while it sweeps.
async fn sweep<C: PoolConn, T: Timer>(pool: Weak<PoolInner<C>>, gone: Arc<Notify>, timer: T) {
    loop {
        let next = {
            let Some(inner) = pool.upgrade() else {
                return;
            };
            inner.expire_at(timer.now())
        };
        tokio::select! {
            () = timer.sleep_until(next) => {}
            () = gone.notified() => {}
        }
    }
}

#[cfg(test)]
mod shell_tests;
#[cfg(test)]
mod tests;
