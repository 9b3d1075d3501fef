//! Connection and request counters shared by the accept loop, connection tasks and
//! request handlers, plus the RAII guards that keep the "open now" gauges honest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A snapshot of a server's counters, taken by [`TestServer::stats`](crate::TestServer::stats).
///
/// Cumulative counters count since start or the last
/// [`TestServer::reset_stats`](crate::TestServer::reset_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// TCP connections open right now.
    pub connections_open: u64,
    /// Highest number of simultaneously open connections observed.
    pub peak_connections_open: u64,
    /// Requests received (request heads parsed), over any protocol.
    pub requests_total: u64,
    /// Requests whose response body has not been fully sent or dropped yet.
    pub in_flight: u64,
    /// Highest number of simultaneously in-flight requests observed.
    pub peak_in_flight: u64,
    /// Requests served over HTTP/2.
    pub h2_requests: u64,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    peak_connections_open: AtomicU64,
    requests_total: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    h2_requests: AtomicU64,
    requests_by_path: Mutex<HashMap<String, u64>>,
}

impl Counters {
    /// Current values of all counters.
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            connections_accepted: self.connections_accepted.load(Ordering::SeqCst),
            connections_open: self.connections_open.load(Ordering::SeqCst),
            peak_connections_open: self.peak_connections_open.load(Ordering::SeqCst),
            requests_total: self.requests_total.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            peak_in_flight: self.peak_in_flight.load(Ordering::SeqCst),
            h2_requests: self.h2_requests.load(Ordering::SeqCst),
        }
    }

    /// Zeroes the cumulative counters; peaks restart from the current gauges.
    pub(crate) fn reset(&self) {
        self.connections_accepted.store(0, Ordering::SeqCst);
        self.requests_total.store(0, Ordering::SeqCst);
        self.h2_requests.store(0, Ordering::SeqCst);
        let open = self.connections_open.load(Ordering::SeqCst);
        self.peak_connections_open.store(open, Ordering::SeqCst);
        let in_flight = self.in_flight.load(Ordering::SeqCst);
        self.peak_in_flight.store(in_flight, Ordering::SeqCst);
        self.paths().clear();
    }

    /// Requests seen for exactly `path` (query excluded).
    pub(crate) fn requests_for(&self, path: &str) -> u64 {
        self.paths().get(path).copied().unwrap_or(0)
    }

    /// Records an accepted connection; the guard marks it closed when dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> OpenConnectionGuard {
        self.connections_accepted.fetch_add(1, Ordering::SeqCst);
        let open = self.connections_open.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_connections_open.fetch_max(open, Ordering::SeqCst);
        OpenConnectionGuard {
            counters: Arc::clone(self),
        }
    }

    /// Records a request for `path` (without counting it as in flight).
    pub(crate) fn record_request(&self, path: &str, is_h2: bool) {
        self.requests_total.fetch_add(1, Ordering::SeqCst);
        if is_h2 {
            self.h2_requests.fetch_add(1, Ordering::SeqCst);
        }
        *self.paths().entry(path.to_owned()).or_insert(0) += 1;
    }

    /// Marks a request in flight; the guard ends it when dropped.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlightGuard {
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        InFlightGuard {
            counters: Arc::clone(self),
        }
    }

    fn paths(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // A panic elsewhere must not turn every later lookup into a panic.
        self.requests_by_path
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Decrements `connections_open` when the connection task ends.
#[derive(Debug)]
pub(crate) struct OpenConnectionGuard {
    counters: Arc<Counters>,
}

impl Drop for OpenConnectionGuard {
    fn drop(&mut self) {
        self.counters
            .connections_open
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// Decrements `in_flight` when the response body finished or was dropped.
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    counters: Arc<Counters>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
