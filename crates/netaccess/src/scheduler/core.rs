//! The scheduler's synchronous core: every origin's queue and connections, the limits, and the
//! decisions that follow each event. No I/O, no locks, no clock, no tasks: an event is a method
//! that takes `now` and appends [`Decision`]s (start a waiter with a connection or a permit to
//! open one; close a connection) for the async shell in `mod.rs` to carry out after its lock.
//!
//! Per origin: a queue of waiters ordered by (priority, arrival), the idle HTTP/1.1 connections
//! with their idle-since times, the count of open sockets (idle, busy and connecting) and at most
//! one shared HTTP/2 connection with the count of requests on it. A request is given, in this
//! order: a stream on the shared HTTP/2 connection; the most recently idle HTTP/1.1 connection;
//! the right to open a connection while the origin has fewer than its limit of sockets (for an
//! origin whose protocol ALPN decides, one connection alone until the protocol is known).
//!
//! With a global limit ([`Core::set_max_total`]), a new connection also needs the total of open
//! sockets below it. When it is reached, an idle connection of another origin (closed ones first,
//! then the longest idle) is closed to make room; with none, the request waits, and freed room
//! goes to the waiters of all origins in (priority, arrival) order. Reusing a connection never
//! takes room, so a released connection goes to a waiter of its own origin first.
//!
//! An idle connection (an HTTP/1.1 one, or the HTTP/2 one with no request on it) expires at
//! exactly idle-since + idle timeout; [`Core::expire`] says when the next expiry can be.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::origin::{OriginState, Protocol, Shared};
use super::{Origin, PoolConn};
use crate::request::Priority;

/// A queued request's key: (priority, arrival), unique in the core, ordered across origins.
pub(crate) type QueueKey = (Priority, u64);

/// What a request is given.
pub(crate) enum Handout<C> {
    /// A connection to send on.
    Reuse(Lease<C>),
    /// The right to open a connection; its socket is counted from now on. Report the outcome
    /// with [`Core::connected`] or [`Core::connect_failed`].
    Connect,
}

/// A connection handed out.
pub(crate) struct Lease<C> {
    pub(crate) conn: C,
    /// For a handle to the shared HTTP/2 connection, the id to give [`Core::stream_done`];
    /// `None` for an HTTP/1.1 connection (given back with [`Core::release`]).
    pub(crate) stream: Option<u64>,
}

/// What the shell does after an event, in order, outside its lock.
/// The decisions of one event, in order: most events make none or one, kept inline.
pub(crate) type Decisions<C, W> = smallvec::SmallVec<[Decision<C, W>; 2]>;

pub(crate) enum Decision<C, W> {
    /// Start `waiter` (it left the queue) with `handout` for `origin`.
    Start {
        waiter: W,
        origin: Origin,
        handout: Handout<C>,
    },
    /// Close this connection (dropping it closes it).
    Close(C),
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

/// The state of every origin and the limits.
pub(crate) struct Core<C, W> {
    /// Keyed by foldhash (randomly seeded): a request looks its origin up about seven times,
    /// and SipHash of an origin cost about 600 instructions each (callgrind).
    origins: HashMap<Origin, OriginState<C, W>, foldhash::quality::RandomState>,
    /// Arrival counter (queue keys) and shared-connection ids.
    seq: u64,
    default_limit: usize,
    idle_timeout: Duration,
    max_total: Option<usize>,
    /// Open sockets over all origins.
    total: usize,
}

impl<C: PoolConn, W> Core<C, W> {
    /// `default_limit` sockets per origin unless the origin's first request sets its own.
    pub(crate) fn new(default_limit: usize, idle_timeout: Duration) -> Self {
        Core {
            origins: HashMap::default(),
            seq: 0,
            default_limit: default_limit.max(1),
            idle_timeout,
            max_total: None,
            total: 0,
        }
    }

    /// Sets the limit of open sockets over all origins (`None`: no global limit; at least 1).
    /// Sockets already open stay open; the limit applies to new connections.
    pub(crate) fn set_max_total(&mut self, max: Option<usize>) {
        self.max_total = max.map(|m| m.max(1));
    }

    /// A new request for `origin`: a handout now, or the key under which the caller queues it
    /// ([`Core::queue`], under the same lock). `limit` applies when this request creates the
    /// origin's entry; later requests share that limit. A request never overtakes waiters of its
    /// origin: while some wait, it waits too, in its place.
    pub(crate) fn try_acquire(
        &mut self,
        origin: &Origin,
        priority: Priority,
        limit: Option<usize>,
        now: Instant,
        out: &mut Decisions<C, W>,
    ) -> Result<Handout<C>, QueueKey> {
        let key = (priority, self.seq);
        self.seq += 1;
        match self.origins.get(origin) {
            None => {
                let limit = limit.unwrap_or(self.default_limit);
                self.origins.insert(origin.clone(), OriginState::new(limit));
            }
            Some(os) if !os.queue.is_empty() => {
                // Waiters first (one may be startable after a change the core was not told of,
                // such as a raised HTTP/2 stream limit).
                self.dispatch(origin, now, out);
                if self
                    .origins
                    .get(origin)
                    .is_some_and(|os| !os.queue.is_empty())
                {
                    return Err(key);
                }
            }
            Some(_) => {}
        }
        self.handout(origin, true, now, out).ok_or(key)
    }

    /// Queues `waiter` under `key` (from [`Core::try_acquire`]).
    pub(crate) fn queue(&mut self, origin: &Origin, key: QueueKey, waiter: W) {
        if !self.origins.contains_key(origin) {
            let os = OriginState::new(self.default_limit);
            self.origins.insert(origin.clone(), os);
        }
        if let Some(os) = self.origins.get_mut(origin) {
            os.queue.insert(key, waiter);
        }
    }

    /// Takes a waiter out of the queue (an abort), wherever it waits.
    pub(crate) fn dequeue(&mut self, key: QueueKey) -> Option<W> {
        let origin = self
            .origins
            .iter()
            .find(|(_, os)| os.queue.contains_key(&key))
            .map(|(o, _)| o.clone())?;
        self.remove_waiter(&origin, key)
    }

    /// Takes a waiter of `origin` out of the queue.
    pub(crate) fn remove_waiter(&mut self, origin: &Origin, key: QueueKey) -> Option<W> {
        let waiter = self.origins.get_mut(origin)?.queue.remove(&key);
        self.forget_if_empty(origin);
        waiter
    }

    /// A connection opened under a permit. `shared` is another handle to it when it is
    /// multiplexed (HTTP/2): it becomes the origin's shared connection, this request's stream
    /// counted on it, and its id is returned. An HTTP/1.1 one settles the protocol, so waiters
    /// may open more.
    pub(crate) fn connected(
        &mut self,
        origin: &Origin,
        shared: Option<C>,
        now: Instant,
        out: &mut Decisions<C, W>,
    ) -> Option<u64> {
        let id = self.seq;
        self.seq += 1;
        let os = self.origins.get_mut(origin)?;
        os.probing = false;
        let stream = match shared {
            Some(conn) => {
                os.protocol = Protocol::Http2;
                let new = Shared {
                    conn,
                    id,
                    streams: 1,
                    idle_since: now,
                };
                if let Some(old) = os.shared.replace(new) {
                    os.sockets = os.sockets.saturating_sub(1);
                    self.total = self.total.saturating_sub(1);
                    out.push(Decision::Close(old.conn));
                }
                Some(id)
            }
            None => {
                os.protocol = Protocol::Http1;
                None
            }
        };
        self.dispatch(origin, now, out);
        stream
    }

    /// A permitted connection was not opened: its slot is free.
    pub(crate) fn connect_failed(
        &mut self,
        origin: &Origin,
        now: Instant,
        out: &mut Decisions<C, W>,
    ) {
        if let Some(os) = self.origins.get_mut(origin) {
            os.sockets = os.sockets.saturating_sub(1);
            os.probing = false;
            self.total = self.total.saturating_sub(1);
        }
        self.dispatch(origin, now, out);
    }

    /// An HTTP/1.1 connection comes back: to the next waiter of its origin, else idle, when
    /// `reusable` and open; closed otherwise.
    pub(crate) fn release(
        &mut self,
        origin: &Origin,
        conn: C,
        reusable: bool,
        now: Instant,
        out: &mut Decisions<C, W>,
    ) {
        let Some(os) = self.origins.get_mut(origin) else {
            out.push(Decision::Close(conn));
            return;
        };
        if reusable && conn.is_open() {
            os.idle.push((conn, now));
        } else {
            os.sockets = os.sockets.saturating_sub(1);
            self.total = self.total.saturating_sub(1);
            out.push(Decision::Close(conn));
        }
        self.dispatch(origin, now, out);
        // A connection that expires at once (a zero idle timeout) is not kept.
        if self.idle_timeout.is_zero() {
            if let Some(os) = self.origins.get_mut(origin) {
                let closed = os.prune(now, self.idle_timeout, out);
                self.total = self.total.saturating_sub(closed);
            }
            self.forget_if_empty(origin);
        }
    }

    /// A request on the shared HTTP/2 connection `stream` (its id) ended, and its handle was
    /// dropped: a stream is free for the next waiter.
    pub(crate) fn stream_done(
        &mut self,
        origin: &Origin,
        stream: u64,
        now: Instant,
        out: &mut Decisions<C, W>,
    ) {
        if let Some(shared) = self
            .origins
            .get_mut(origin)
            .and_then(|os| os.shared.as_mut())
            .filter(|s| s.id == stream)
        {
            shared.streams = shared.streams.saturating_sub(1);
            if shared.streams == 0 {
                shared.idle_since = now;
            }
        }
        self.dispatch(origin, now, out);
    }

    /// A request on a multiplexed connection got its response head: its stream no longer
    /// counts against the server's limit, so a waiter may go.
    pub(crate) fn stream_slot_freed(
        &mut self,
        origin: &Origin,
        now: Instant,
        out: &mut Decisions<C, W>,
    ) {
        self.dispatch(origin, now, out);
    }

    /// Closes idle connections that expired at `now` or were closed by the peer, starts the
    /// waiters that this makes room for, and forgets origins with nothing left. Returns when
    /// to call again: the earliest expiry of the connections still idle, or with none idle,
    /// one idle timeout from `now` (a connection that goes idle later expires no sooner);
    /// `None` when nothing can ever expire.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Decisions<C, W>) -> Option<Instant> {
        let before = out.len();
        for os in self.origins.values_mut() {
            let closed = os.prune(now, self.idle_timeout, out);
            self.total = self.total.saturating_sub(closed);
        }
        if out.len() > before {
            self.dispatch_all(now, out);
        }
        self.origins
            .retain(|_, os| os.sockets > 0 || !os.queue.is_empty());
        self.next_expiry().or_else(|| {
            if self.idle_timeout.is_zero() {
                None
            } else {
                now.checked_add(self.idle_timeout)
            }
        })
    }

    /// The earliest expiry of the idle connections.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        self.origins
            .values()
            .filter_map(|os| os.next_expiry(timeout))
            .min()
    }

    /// Closes every idle connection and forgets the shared ones (requests on them finish).
    pub(crate) fn clear_idle(&mut self, now: Instant, out: &mut Decisions<C, W>) {
        for os in self.origins.values_mut() {
            let mut closed = os.idle.len();
            out.extend(os.idle.drain(..).map(|(c, _)| Decision::Close(c)));
            closed += os.drop_shared(out);
            os.sockets = os.sockets.saturating_sub(closed);
            self.total = self.total.saturating_sub(closed);
        }
        self.dispatch_all(now, out);
        self.origins
            .retain(|_, os| os.sockets > 0 || !os.queue.is_empty());
    }

    #[cfg(test)]
    pub(crate) fn stats(&self, origin: &Origin) -> OriginStats {
        self.origins
            .get(origin)
            .map_or_else(OriginStats::default, |os| OriginStats {
                sockets: os.sockets,
                peak_sockets: os.peak_sockets,
                idle: os.idle.len(),
                queued: os.queue.len(),
                opened: os.opened,
            })
    }

    /// Open sockets over all origins (and a check that the count adds up).
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        let sum: usize = self.origins.values().map(|os| os.sockets).sum();
        assert_eq!(
            sum, self.total,
            "the total is the sum of the origins' sockets"
        );
        self.total
    }

    /// The handout for the next request of `origin`, if one can be given now; a new connection
    /// only when `connect`.
    fn handout(
        &mut self,
        origin: &Origin,
        connect: bool,
        now: Instant,
        out: &mut Decisions<C, W>,
    ) -> Option<Handout<C>> {
        let os = self.origins.get_mut(origin)?;
        let closed = os.prune(now, self.idle_timeout, out);
        self.total = self.total.saturating_sub(closed);
        if let Some(shared) = os.shared.as_mut() {
            if !shared.conn.has_stream_capacity() {
                return None; // a freed stream dispatches the queue
            }
            if let Some(conn) = shared.conn.share() {
                shared.streams += 1;
                let stream = Some(shared.id);
                return Some(Handout::Reuse(Lease { conn, stream }));
            }
        }
        if let Some((conn, _)) = os.idle.pop() {
            return Some(Handout::Reuse(Lease { conn, stream: None }));
        }
        let multiplexing = os.multiplexing_possible(origin);
        if !connect || (multiplexing && os.probing) || os.sockets >= os.limit {
            return None;
        }
        if self.max_total.is_some_and(|max| self.total >= max) && !self.evict_idle(origin, out) {
            return None;
        }
        let os = self.origins.get_mut(origin)?;
        os.sockets += 1;
        os.opened += 1;
        os.peak_sockets = os.peak_sockets.max(os.sockets);
        if multiplexing {
            os.probing = true;
        }
        self.total += 1;
        Some(Handout::Connect)
    }

    /// Closes one idle connection of another origin with no waiters, to make room under the
    /// global limit: one the peer closed if any, else the longest idle.
    fn evict_idle(&mut self, except: &Origin, out: &mut Decisions<C, W>) -> bool {
        // (open, idle since, origin, index in `idle` or None for the shared connection)
        let mut best: Option<(bool, Instant, &Origin, Option<usize>)> = None;
        for (o, os) in &self.origins {
            if !os.queue.is_empty() || o == except {
                continue;
            }
            let idle = os.idle.iter().enumerate();
            let idle = idle.map(|(i, (c, since))| (c.is_open(), *since, Some(i)));
            let shared = os.shared.iter().filter(|s| s.streams == 0);
            let shared = shared.map(|s| (s.conn.is_open(), s.idle_since, None));
            for (open, since, at) in idle.chain(shared) {
                if best.is_none_or(|(b_open, b_since, _, _)| (open, since) < (b_open, b_since)) {
                    best = Some((open, since, o, at));
                }
            }
        }
        let Some((_, _, origin, at)) = best else {
            return false;
        };
        let origin = origin.clone();
        let Some(os) = self.origins.get_mut(&origin) else {
            return false;
        };
        match at {
            Some(i) => out.push(Decision::Close(os.idle.remove(i).0)),
            None => {
                os.drop_shared(out);
            }
        }
        os.sockets = os.sockets.saturating_sub(1);
        self.total = self.total.saturating_sub(1);
        self.forget_if_empty(&origin);
        true
    }

    /// Starts waiters of `origin` while it can serve them; with a global limit, new connections
    /// go to the waiters of all origins in (priority, arrival) order.
    fn dispatch(&mut self, origin: &Origin, now: Instant, out: &mut Decisions<C, W>) {
        let connect = self.max_total.is_none();
        while self
            .origins
            .get(origin)
            .is_some_and(|os| !os.queue.is_empty())
        {
            let Some(handout) = self.handout(origin, connect, now, out) else {
                break;
            };
            self.start_next(origin, handout, out);
        }
        if self.max_total.is_some() {
            self.dispatch_global(now, out);
        }
        self.forget_if_empty(origin);
    }

    /// Dispatches every origin with waiters (after connections were closed in bulk).
    fn dispatch_all(&mut self, now: Instant, out: &mut Decisions<C, W>) {
        let waiting: Vec<Origin> = self
            .origins
            .iter()
            .filter(|(_, os)| !os.queue.is_empty())
            .map(|(o, _)| o.clone())
            .collect();
        for origin in waiting {
            self.dispatch(&origin, now, out);
        }
    }

    /// Under a global limit: gives room for new connections to the first waiter, over all
    /// origins, that needs one, while there is room or an idle connection to close.
    fn dispatch_global(&mut self, now: Instant, out: &mut Decisions<C, W>) {
        loop {
            let first = self
                .origins
                .iter()
                .filter(|(o, os)| os.wants_connect(o))
                .filter_map(|(o, os)| os.queue.keys().next().map(|k| (*k, o)))
                .min_by_key(|(key, _)| *key)
                .map(|(_, o)| o.clone());
            let Some(origin) = first else {
                return;
            };
            let Some(handout) = self.handout(&origin, true, now, out) else {
                return;
            };
            self.start_next(&origin, handout, out);
        }
    }

    /// Hands `handout` to the first waiter of `origin` (there is one: callers checked).
    fn start_next(&mut self, origin: &Origin, handout: Handout<C>, out: &mut Decisions<C, W>) {
        let waiter = self
            .origins
            .get_mut(origin)
            .and_then(|os| os.queue.pop_first());
        match waiter {
            Some((_, waiter)) => out.push(Decision::Start {
                waiter,
                origin: origin.clone(),
                handout,
            }),
            // Unreachable; a connection would be closed, a permit's slot freed.
            None => self.undo(origin, handout, out),
        }
    }

    fn undo(&mut self, origin: &Origin, handout: Handout<C>, out: &mut Decisions<C, W>) {
        let Some(os) = self.origins.get_mut(origin) else {
            return;
        };
        match handout {
            Handout::Reuse(Lease {
                stream: Some(id), ..
            }) => {
                if let Some(shared) = os.shared.as_mut().filter(|s| s.id == id) {
                    shared.streams = shared.streams.saturating_sub(1);
                }
            }
            Handout::Reuse(Lease { conn, stream: None }) => {
                out.push(Decision::Close(conn));
                os.sockets = os.sockets.saturating_sub(1);
                self.total = self.total.saturating_sub(1);
            }
            Handout::Connect => {
                os.sockets = os.sockets.saturating_sub(1);
                os.probing = false;
                self.total = self.total.saturating_sub(1);
            }
        }
    }

    /// Forgets an origin with no socket and no waiter (its next request sets its limit anew).
    fn forget_if_empty(&mut self, origin: &Origin) {
        if self
            .origins
            .get(origin)
            .is_some_and(|os| os.sockets == 0 && os.queue.is_empty())
        {
            self.origins.remove(origin);
        }
    }
}
