//! One origin's state in the scheduler's core: its queue, idle connections, shared HTTP/2
//! connection and socket count, with the rules that need only this origin (pruning closed and
//! expired connections, the earliest expiry, whether a waiter needs a new connection).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::core::{Decision, QueueKey};
use super::{Mode, Origin, PoolConn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    Unknown,
    Http1,
    Http2,
}

/// The origin's HTTP/2 connection.
pub(super) struct Shared<C> {
    pub(super) conn: C,
    pub(super) id: u64,
    /// Handles handed out and not given back.
    pub(super) streams: usize,
    /// When `streams` last fell to 0.
    pub(super) idle_since: Instant,
}

pub(super) struct OriginState<C, W> {
    pub(super) limit: usize,
    /// Sockets open or connecting, idle ones included (the shared connection counts one).
    pub(super) sockets: usize,
    /// Most recently idle last.
    pub(super) idle: Vec<(C, Instant)>,
    pub(super) shared: Option<Shared<C>>,
    pub(super) protocol: Protocol,
    /// A connection whose protocol decides the others' is being opened.
    pub(super) probing: bool,
    pub(super) queue: BTreeMap<QueueKey, W>,
    pub(super) peak_sockets: usize,
    pub(super) opened: u64,
}

/// When an idle connection idle since `since` expires (never, if that overflows).
pub(super) fn expiry(since: Instant, timeout: Duration) -> Option<Instant> {
    since.checked_add(timeout)
}

pub(super) fn expired(since: Instant, timeout: Duration, now: Instant) -> bool {
    expiry(since, timeout).is_some_and(|at| now >= at)
}

impl<C: PoolConn, W> OriginState<C, W> {
    pub(super) fn new(limit: usize) -> Self {
        OriginState {
            limit: limit.max(1),
            sockets: 0,
            idle: Vec::new(),
            shared: None,
            protocol: Protocol::Unknown,
            probing: false,
            queue: BTreeMap::new(),
            peak_sockets: 0,
            opened: 0,
        }
    }

    /// Whether a new connection could carry the next request of `origin`, limits aside.
    pub(super) fn multiplexing_possible(&self, origin: &Origin) -> bool {
        origin.mode != Mode::Http1 && self.protocol != Protocol::Http1
    }

    /// The next waiter needs a new connection and this origin allows one (the global limit
    /// aside).
    pub(super) fn wants_connect(&self, origin: &Origin) -> bool {
        !self.queue.is_empty()
            && self.shared.is_none()
            && !(self.probing && self.multiplexing_possible(origin))
            && self.sockets < self.limit
    }

    /// Closes the idle connections that expired or were closed by the peer, and the shared one
    /// when closed or expired. Returns the number of sockets closed.
    pub(super) fn prune(
        &mut self,
        now: Instant,
        timeout: Duration,
        out: &mut super::core::Decisions<C, W>,
    ) -> usize {
        let mut closed = 0;
        let mut i = 0;
        while i < self.idle.len() {
            let (conn, since) = &self.idle[i];
            if conn.is_open() && !expired(*since, timeout, now) {
                i += 1;
                continue;
            }
            let (conn, _) = self.idle.remove(i);
            out.push(Decision::Close(conn));
            closed += 1;
        }
        let shared_gone = self.shared.as_ref().is_some_and(|s| {
            !s.conn.is_open() || (s.streams == 0 && expired(s.idle_since, timeout, now))
        });
        if shared_gone {
            closed += self.drop_shared(out);
        }
        self.sockets = self.sockets.saturating_sub(closed);
        closed
    }

    /// Forgets the shared connection (its socket is no longer counted; requests on it finish).
    pub(super) fn drop_shared(&mut self, out: &mut super::core::Decisions<C, W>) -> usize {
        let Some(shared) = self.shared.take() else {
            return 0;
        };
        self.protocol = Protocol::Unknown;
        out.push(Decision::Close(shared.conn));
        1
    }

    /// The earliest expiry of this origin's idle connections.
    pub(super) fn next_expiry(&self, timeout: Duration) -> Option<Instant> {
        let idle = self.idle.iter().filter_map(|(_, s)| expiry(*s, timeout));
        let shared = self
            .shared
            .iter()
            .filter(|s| s.streams == 0)
            .filter_map(|s| expiry(s.idle_since, timeout));
        idle.chain(shared).min()
    }
}
