//! The per-origin scheduler: connection slots, queues, the idle pool. No crate does this.
//!
//! For each [`Origin`] (scheme, host, port, proxy, protocol mode) it keeps a queue of waiting
//! requests ordered by (priority, arrival), the idle HTTP/1.1 connections, the count of open
//! sockets (idle + busy + connecting) and at most one multiplexed (HTTP/2) connection.
//!
//! [`Pool::acquire`] returns a [`Grant`]: a connection to reuse, or a permit to open a new one.
//! [`Pool::enqueue`] is the same for a request that has no task yet: the request waits in the
//! queue as data (a boxed start function), and its task is spawned only when it is granted
//! (OkHttp's `readyAsyncCalls` and `promoteAndExecute`).
//! A permit is only handed out while fewer than `limit` sockets are open, so the limit holds at
//! the socket level. A released reusable connection goes straight to the next waiter. For an
//! origin whose protocol is decided by ALPN, the first connection is opened alone and the others
//! wait until it is known: an HTTP/2 server gets one connection, not six.
//!
//! The pool is generic over the connection type, so it is tested here as a state machine
//! without sockets; it never connects or speaks HTTP itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::request::Priority;

mod origin;

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
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// The proxy the connections go through; `None` for direct connections.
    pub proxy: Option<crate::proxy::Proxy>,
    pub mode: Mode,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Unknown,
    Http1,
    Http2,
}

struct OriginState<C: PoolConn> {
    limit: usize,
    /// Sockets open or connecting, idle ones included (the shared h2 connection counts one).
    sockets: usize,
    idle: Vec<(C, Instant)>,
    shared: Option<C>,
    protocol: Protocol,
    /// A connection whose protocol will decide the others is being opened.
    probing: bool,
    queue: BTreeMap<(Priority, u64), Waiting<C>>,
    /// Requests granted under the lock, started by the caller once it is released.
    ready: Vec<(Start<C>, Grant<C>)>,
    /// Peak of `sockets`, for statistics and tests.
    peak_sockets: usize,
    opened: u64,
}

/// What starts a request queued as data when it is granted (it spawns the request's task).
/// It gets the origin it waited for (the queue's key, so the request need not keep a copy).
pub(crate) type Start<C> = Box<dyn FnOnce(&Origin, Grant<C>) + Send>;

/// A queued request: a task waiting for its grant, or a request with no task yet.
enum Waiting<C: PoolConn> {
    Task(oneshot::Sender<Grant<C>>),
    Data(Start<C>),
}

/// A queued request's key: (priority, arrival), unique in the pool.
type QueueKey = (Priority, u64);

/// Where a request queued as data waits, to take it out again ([`Pool::dequeue`]).
/// The key is unique in the pool, so no copy of the origin is needed.
pub(crate) struct QueueTicket<C: PoolConn> {
    pool: Weak<PoolInner<C>>,
    key: (Priority, u64),
}

struct PoolState<C: PoolConn> {
    origins: HashMap<Origin, OriginState<C>>,
    seq: u64,
}

pub(crate) struct PoolInner<C: PoolConn> {
    state: Mutex<PoolState<C>>,
    default_limit: usize,
    idle_timeout: Duration,
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
    multiplexed: bool,
    reused: bool,
}

/// Counters of one origin, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OriginStats {
    pub sockets: usize,
    pub peak_sockets: usize,
    pub idle: usize,
    pub queued: usize,
    pub opened: u64,
}

impl<C: PoolConn> Pool<C> {
    pub(crate) fn new(default_limit: usize, idle_timeout: Duration) -> Self {
        Pool {
            inner: Arc::new(PoolInner {
                state: Mutex::new(PoolState {
                    origins: HashMap::new(),
                    seq: 0,
                }),
                default_limit: default_limit.max(1),
                idle_timeout,
            }),
        }
    }

    pub(crate) fn from_inner(inner: Arc<PoolInner<C>>) -> Self {
        Pool { inner }
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
            let queued = self.grant_or_queue(origin, priority, limit, (), |()| {
                let (tx, rx) = oneshot::channel();
                (Waiting::Task(tx), rx)
            });
            let (key, rx) = match queued {
                Ok((grant, ())) => return grant,
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
    pub(crate) fn enqueue(
        &self,
        origin: &Origin,
        priority: Priority,
        limit: Option<usize>,
        start: Start<C>,
    ) -> Option<QueueTicket<C>> {
        let queued = self.grant_or_queue(origin, priority, limit, start, |start| {
            (Waiting::Data(start), ())
        });
        let (granted, start) = match queued {
            Ok(granted) => granted,
            Err((key, ())) => {
                return Some(QueueTicket {
                    pool: Arc::downgrade(&self.inner),
                    key,
                })
            }
        };
        start(origin, granted);
        None
    }

    /// Under the lock: a grant for `origin` now (with `request` given back), or `request`
    /// queued as the [`Waiting`] that `queue` makes of it, with its queue key. `limit` applies
    /// when this request creates the origin's entry.
    fn grant_or_queue<W, R>(
        &self,
        origin: &Origin,
        priority: Priority,
        limit: Option<usize>,
        request: W,
        queue: impl FnOnce(W) -> (Waiting<C>, R),
    ) -> Result<(Grant<C>, W), (QueueKey, R)> {
        let mut st = self.inner.lock();
        let seq = st.seq;
        st.seq += 1;
        let os = st
            .origins
            .entry(origin.clone())
            .or_insert_with(|| OriginState::new(limit.unwrap_or(self.inner.default_limit)));
        if let Some(grant) = self.inner.try_grant(origin, os) {
            return Ok((grant, request));
        }
        let (entry, extra) = queue(request);
        os.queue.insert((priority, seq), entry);
        Err(((priority, seq), extra))
    }

    /// Takes a request queued as data out of the queue (an abort); false if it was started
    /// already. Its start function is dropped here, outside the lock.
    pub(crate) fn dequeue(ticket: QueueTicket<C>) -> bool {
        let Some(pool) = ticket.pool.upgrade() else {
            return false;
        };
        let removed = {
            let mut st = pool.lock();
            st.origins
                .values_mut()
                .find_map(|os| os.queue.remove(&ticket.key))
        };
        removed.is_some()
    }

    /// Closes every idle connection and forgets the multiplexed ones (running requests keep
    /// theirs until they finish).
    pub(crate) fn clear_idle(&self) {
        let dropped: Vec<C> = {
            let mut st = self.inner.lock();
            let mut dropped = Vec::new();
            for os in st.origins.values_mut() {
                os.sockets -= os.idle.len();
                dropped.extend(os.idle.drain(..).map(|(c, _)| c));
                if let Some(shared) = os.shared.take() {
                    os.sockets -= 1;
                    os.protocol = Protocol::Unknown;
                    dropped.push(shared);
                }
            }
            dropped
        };
        drop(dropped);
    }

    /// Closes idle connections past the idle timeout or closed by the peer, and forgets origins
    /// with nothing left.
    pub(crate) fn expire_idle(&self) {
        let now = Instant::now();
        let mut dropped = Vec::new();
        {
            let mut st = self.inner.lock();
            for os in st.origins.values_mut() {
                prune_idle(os, now, self.inner.idle_timeout, &mut dropped);
            }
            st.origins
                .retain(|_, os| os.sockets > 0 || !os.queue.is_empty());
        }
        drop(dropped);
    }

    #[cfg(test)]
    pub(crate) fn stats(&self, origin: &Origin) -> OriginStats {
        let st = self.inner.lock();
        st.origins
            .get(origin)
            .map_or_else(OriginStats::default, |os| OriginStats {
                sockets: os.sockets,
                peak_sockets: os.peak_sockets,
                idle: os.idle.len(),
                queued: os.queue.len(),
                opened: os.opened,
            })
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        self.inner.idle_timeout
    }
}

fn prune_idle<C: PoolConn>(
    os: &mut OriginState<C>,
    now: Instant,
    timeout: Duration,
    dropped: &mut Vec<C>,
) {
    let before = os.idle.len();
    let mut kept = Vec::with_capacity(before);
    for (conn, since) in os.idle.drain(..) {
        if conn.is_open() && now.duration_since(since) < timeout {
            kept.push((conn, since));
        } else {
            dropped.push(conn);
        }
    }
    os.sockets -= before - kept.len();
    os.idle = kept;
    if os.shared.as_ref().is_some_and(|c| !c.is_open()) {
        dropped.extend(os.shared.take());
        os.sockets -= 1;
        os.protocol = Protocol::Unknown;
    }
}

impl<C: PoolConn> OriginState<C> {
    fn new(limit: usize) -> Self {
        OriginState {
            limit: limit.max(1),
            sockets: 0,
            idle: Vec::new(),
            shared: None,
            protocol: Protocol::Unknown,
            probing: false,
            queue: BTreeMap::new(),
            ready: Vec::new(),
            peak_sockets: 0,
            opened: 0,
        }
    }
}

impl<C: PoolConn> PoolInner<C> {
    fn lock(&self) -> MutexGuard<'_, PoolState<C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The grant for the next request of `origin`, if one can be given now. Connections found
    /// closed are dropped after the lock is released by the caller's scope (they are plain
    /// connections, never guards, so dropping them under the lock is safe).
    fn try_grant(self: &Arc<Self>, origin: &Origin, os: &mut OriginState<C>) -> Option<Grant<C>> {
        let mut dead = Vec::new();
        prune_idle(os, Instant::now(), self.idle_timeout, &mut dead);
        if let Some(shared) = &os.shared {
            if !shared.has_stream_capacity() {
                return None; // a released stream dispatches the queue
            }
            if let Some(handle) = shared.share() {
                return Some(Grant::Reuse(self.checkout(origin, handle, true, true)));
            }
        }
        if let Some((conn, _)) = os.idle.pop() {
            return Some(Grant::Reuse(self.checkout(origin, conn, false, true)));
        }
        let multiplexing_possible = origin.mode != Mode::Http1 && os.protocol != Protocol::Http1;
        if multiplexing_possible && os.probing {
            return None; // wait for the first connection's protocol
        }
        if os.sockets < os.limit {
            os.sockets += 1;
            os.opened += 1;
            os.peak_sockets = os.peak_sockets.max(os.sockets);
            if multiplexing_possible {
                os.probing = true;
            }
            return Some(Grant::Connect(Permit {
                pool: Arc::downgrade(self),
                origin: origin.clone(),
                armed: true,
            }));
        }
        None
    }

    fn checkout(
        self: &Arc<Self>,
        origin: &Origin,
        conn: C,
        multiplexed: bool,
        reused: bool,
    ) -> Checkout<C> {
        Checkout {
            pool: Arc::downgrade(self),
            origin: origin.clone(),
            conn: Some(conn),
            multiplexed,
            reused,
        }
    }

    /// Hands out grants to waiters while possible.
    fn dispatch(self: &Arc<Self>, origin: &Origin, os: &mut OriginState<C>) {
        while !os.queue.is_empty() {
            let Some(grant) = self.try_grant(origin, os) else {
                return;
            };
            let Some((_, waiting)) = os.queue.pop_first() else {
                return;
            };
            match waiting {
                // A queued waiter's receiver is alive: a waiter leaves the queue (under this
                // lock) before its receiver drops. So this send cannot fail and no guard drops
                // here.
                Waiting::Task(tx) => {
                    if let Err(grant) = tx.send(grant) {
                        std::mem::forget(grant);
                        debug_assert!(false, "a queued waiter had no receiver");
                    }
                }
                // Started by `with_origin` once the lock is released.
                Waiting::Data(start) => os.ready.push((start, grant)),
            }
        }
    }

    /// Runs `f` on the origin's state under the lock, then starts (outside the lock) the
    /// requests queued as data that `f` granted.
    fn with_origin(
        self: &Arc<Self>,
        origin: &Origin,
        f: impl FnOnce(&Arc<Self>, &mut OriginState<C>),
    ) {
        let ready = {
            let mut st = self.lock();
            let Some(os) = st.origins.get_mut(origin) else {
                return;
            };
            f(self, os);
            std::mem::take(&mut os.ready)
        };
        for (start, grant) in ready {
            start(origin, grant);
        }
    }
}

struct Waiter<'a, C: PoolConn> {
    pool: &'a Arc<PoolInner<C>>,
    origin: &'a Origin,
    key: (Priority, u64),
    rx: oneshot::Receiver<Grant<C>>,
}

impl<C: PoolConn> Waiter<'_, C> {
    async fn wait(mut self) -> Option<Grant<C>> {
        (&mut self.rx).await.ok()
    }
}

impl<C: PoolConn> Drop for Waiter<'_, C> {
    fn drop(&mut self) {
        // Leave the queue before the receiver goes (see `dispatch`).
        let mut st = self.pool.lock();
        if let Some(os) = st.origins.get_mut(self.origin) {
            os.queue.remove(&self.key);
        }
    }
}

impl<C: PoolConn> Permit<C> {
    /// Reports the new connection: an HTTP/2 one becomes the origin's shared connection and
    /// serves every waiter; an HTTP/1.1 one settles the protocol so that waiters may open more.
    pub(crate) fn connected(mut self, conn: C) -> Checkout<C> {
        self.armed = false;
        let multiplexed = conn.share().is_some();
        let checkout = Checkout {
            pool: self.pool.clone(),
            origin: self.origin.clone(),
            conn: Some(conn),
            multiplexed,
            reused: false,
        };
        if let Some(pool) = self.pool.upgrade() {
            pool.with_origin(&self.origin, |pool, os| {
                os.probing = false;
                if multiplexed {
                    os.protocol = Protocol::Http2;
                    os.shared = checkout.conn.as_ref().and_then(|c| c.share());
                } else {
                    os.protocol = Protocol::Http1;
                }
                pool.dispatch(&self.origin, os);
            });
        }
        checkout
    }
}

impl<C: PoolConn> Drop for Permit<C> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.with_origin(&self.origin, |pool, os| {
                os.sockets -= 1;
                os.probing = false;
                pool.dispatch(&self.origin, os);
            });
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
        if !self.multiplexed {
            return;
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.end_stream_slot();
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.with_origin(&self.origin, |pool, os| pool.dispatch(&self.origin, os));
        }
    }

    /// True when the connection had served an earlier request (idle reuse or shared h2).
    pub(crate) fn was_reused(&self) -> bool {
        self.reused
    }

    /// Gives the connection back: `reusable` if the exchange completed and the connection
    /// can carry another request.
    pub(crate) fn release(mut self, reusable: bool) {
        let conn = self.conn.take();
        self.give_back(conn, reusable);
    }

    fn give_back(&mut self, conn: Option<C>, reusable: bool) {
        if self.multiplexed {
            // The shared handle stays in the pool; this clone goes, freeing a stream for the
            // next waiter.
            drop(conn);
            if let Some(pool) = self.pool.upgrade() {
                pool.with_origin(&self.origin, |pool, os| pool.dispatch(&self.origin, os));
            }
            return;
        }
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut broken = None;
        pool.with_origin(&self.origin, |pool, os| match conn {
            Some(conn) if reusable && conn.is_open() => {
                os.idle.push((conn, Instant::now()));
                pool.dispatch(&self.origin, os);
            }
            conn => {
                broken = conn;
                os.sockets -= 1;
                pool.dispatch(&self.origin, os);
            }
        });
        drop(broken);
    }
}

impl<C: PoolConn> Drop for Checkout<C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.give_back(Some(conn), false);
        }
    }
}

#[cfg(test)]
mod tests;
