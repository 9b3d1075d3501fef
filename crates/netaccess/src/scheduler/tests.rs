//! The synchronous core driven event by event, with explicit `now` values and stand-in
//! connections: no sockets, no tasks, no clock.

use super::core::{Core, Decision, Handout, Lease};
use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// A stand-in connection. An HTTP/2 one counts its handles against a stream limit, as the
/// real one does: one per handle, the pool's included.
#[derive(Clone)]
pub(super) struct FakeConn {
    pub(super) id: u32,
    pub(super) open: Arc<AtomicBool>,
    streams: Option<Arc<()>>,
    max_streams: usize,
    h2: bool,
}

impl FakeConn {
    pub(super) fn h1(id: u32) -> Self {
        FakeConn {
            id,
            open: Arc::new(AtomicBool::new(true)),
            streams: None,
            max_streams: 0,
            h2: false,
        }
    }

    pub(super) fn h2(id: u32, max_streams: usize) -> Self {
        FakeConn {
            streams: Some(Arc::new(())),
            max_streams,
            h2: true,
            ..FakeConn::h1(id)
        }
    }

    pub(super) fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
    }
}

impl PoolConn for FakeConn {
    fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
    fn share(&self) -> Option<Self> {
        self.h2.then(|| self.clone())
    }
    fn has_stream_capacity(&self) -> bool {
        self.streams
            .as_ref()
            .is_none_or(|s| Arc::strong_count(s) - 1 < self.max_streams)
    }
    fn end_stream_slot(&mut self) {
        self.streams = None;
    }
}

pub(super) fn origin(host: &str, mode: Mode) -> Origin {
    Origin {
        scheme: "http",
        host: host.into(),
        port: 80,
        proxy: None,
        mode,
        tls: None,
    }
}

type TestCore = Core<FakeConn, &'static str>;
type Out = super::core::Decisions<FakeConn, &'static str>;

const MINUTE: Duration = Duration::from_secs(60);

fn core(limit: usize) -> TestCore {
    Core::new(limit, MINUTE)
}

/// A request named `name`: its handout now, or `None` when it was queued.
fn request(
    core: &mut TestCore,
    o: &Origin,
    priority: Priority,
    name: &'static str,
    now: Instant,
    out: &mut Out,
) -> Option<Handout<FakeConn>> {
    match core.try_acquire(o, priority, None, now, out) {
        Ok(handout) => Some(handout),
        Err(key) => {
            core.queue(o, key, name);
            None
        }
    }
}

/// The waiters the decisions start, with what they got; the closed connections' ids.
fn split(out: Out) -> (Vec<(&'static str, Handout<FakeConn>)>, Vec<u32>) {
    let mut started = Vec::new();
    let mut closed = Vec::new();
    for decision in out {
        match decision {
            Decision::Start {
                waiter, handout, ..
            } => started.push((waiter, handout)),
            Decision::Close(conn) => closed.push(conn.id),
        }
    }
    (started, closed)
}

fn names(started: &[(&'static str, Handout<FakeConn>)]) -> Vec<&'static str> {
    started.iter().map(|(n, _)| *n).collect()
}

fn is_connect(h: &Handout<FakeConn>) -> bool {
    matches!(h, Handout::Connect)
}

fn lease(h: Handout<FakeConn>) -> Lease<FakeConn> {
    match h {
        Handout::Reuse(lease) => lease,
        Handout::Connect => panic!("expected a connection"),
    }
}

/// Opens an HTTP/1.1 connection `id` for `o` and gives it back idle at `now`.
fn idle_h1(core: &mut TestCore, o: &Origin, id: u32, now: Instant) -> FakeConn {
    let mut out = Out::new();
    let handout = request(core, o, Priority::Normal, "opener", now, &mut out);
    assert!(handout.as_ref().is_some_and(is_connect), "a slot was free");
    let conn = FakeConn::h1(id);
    assert_eq!(core.connected(o, None, now, &mut out), None);
    core.release(o, conn.clone(), true, now, &mut out);
    assert!(out.is_empty());
    conn
}

#[test]
fn the_limit_per_origin_counts_sockets_and_a_released_connection_goes_to_the_next_waiter() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http1));
    let mut core = core(2);
    let mut out = Out::new();
    assert!(request(&mut core, &o, Priority::Normal, "r1", t0, &mut out)
        .is_some_and(|h| is_connect(&h)));
    assert!(request(&mut core, &o, Priority::Normal, "r2", t0, &mut out)
        .is_some_and(|h| is_connect(&h)));
    assert!(request(&mut core, &o, Priority::Normal, "r3", t0, &mut out).is_none());
    assert_eq!(core.stats(&o).sockets, 2);
    assert_eq!(core.stats(&o).queued, 1);
    core.connected(&o, None, t0, &mut out);
    assert!(
        out.is_empty(),
        "an HTTP/1.1 connection serves only its own request"
    );
    core.release(&o, FakeConn::h1(1), true, t0, &mut out);
    let (started, closed) = split(std::mem::take(&mut out));
    assert_eq!(names(&started), ["r3"]);
    assert_eq!(lease(started.into_iter().next().unwrap().1).conn.id, 1);
    assert!(closed.is_empty());
    let stats = core.stats(&o);
    assert_eq!((stats.sockets, stats.peak_sockets, stats.opened), (2, 2, 2));
    core.connect_failed(&o, t0, &mut out); // r2's connect failed: its slot is free
    assert_eq!(core.stats(&o).sockets, 1);
    core.release(&o, FakeConn::h1(1), false, t0, &mut out); // broken
    assert_eq!(split(out).1, [1]);
    assert_eq!(core.stats(&o), OriginStats::default(), "origin forgotten");
    assert_eq!(core.total(), 0);
}

#[test]
fn waiters_start_in_priority_then_arrival_order() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http1));
    let mut core = core(1);
    let mut out = Out::new();
    request(&mut core, &o, Priority::Normal, "busy", t0, &mut out);
    core.connected(&o, None, t0, &mut out);
    for (name, priority) in [
        ("low1", Priority::Low),
        ("low2", Priority::Low),
        ("high", Priority::High),
        ("normal", Priority::Normal),
    ] {
        assert!(request(&mut core, &o, priority, name, t0, &mut out).is_none());
    }
    let mut order = Vec::new();
    for _ in 0..4 {
        core.release(&o, FakeConn::h1(1), true, t0, &mut out);
        let (started, _) = split(std::mem::take(&mut out));
        order.extend(names(&started));
    }
    assert_eq!(order, ["high", "normal", "low1", "low2"]);
    assert_eq!(core.stats(&o).opened, 1, "the one connection is handed on");
}

#[test]
fn a_new_request_does_not_overtake_waiters_of_its_origin() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http1));
    let mut core = core(1);
    let mut out = Out::new();
    request(&mut core, &o, Priority::Normal, "busy", t0, &mut out);
    core.connected(&o, None, t0, &mut out);
    assert!(request(&mut core, &o, Priority::Low, "waiting", t0, &mut out).is_none());
    assert!(request(&mut core, &o, Priority::High, "late", t0, &mut out).is_none());
    core.release(&o, FakeConn::h1(1), true, t0, &mut out);
    assert_eq!(
        names(&split(out).0),
        ["late"],
        "in priority order, not arrival"
    );
}

#[test]
fn the_first_request_fixes_the_origins_limit() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http1));
    let mut core = core(6);
    let mut out = Out::new();
    assert!(core
        .try_acquire(&o, Priority::Normal, Some(1), t0, &mut out)
        .is_ok());
    assert!(core
        .try_acquire(&o, Priority::Normal, Some(4), t0, &mut out)
        .is_err());
}

#[test]
fn under_the_global_limit_room_goes_to_waiters_in_priority_order_across_origins() {
    let t0 = Instant::now();
    let (a, b, c) = (
        origin("a", Mode::Http1),
        origin("b", Mode::Http1),
        origin("c", Mode::Http1),
    );
    let mut core = core(6);
    core.set_max_total(Some(2));
    let mut out = Out::new();
    assert!(request(&mut core, &a, Priority::Normal, "a1", t0, &mut out).is_some());
    assert!(request(&mut core, &b, Priority::Normal, "b1", t0, &mut out).is_some());
    // Both origins are under their own limit; the total is not.
    assert!(request(&mut core, &c, Priority::Low, "c1", t0, &mut out).is_none());
    assert!(request(&mut core, &a, Priority::High, "a2", t0, &mut out).is_none());
    assert!(request(&mut core, &b, Priority::Normal, "b2", t0, &mut out).is_none());
    assert!(request(&mut core, &c, Priority::High, "c2", t0, &mut out).is_none());
    assert_eq!(core.total(), 2);
    let mut order = Vec::new();
    // Each freed socket (a failed connect) is room for one new connection.
    for freed in [&a, &b, &a, &c] {
        core.connect_failed(freed, t0, &mut out);
        let (started, _) = split(std::mem::take(&mut out));
        assert!(started.iter().all(|(_, h)| is_connect(h)));
        order.extend(names(&started));
        assert_eq!(core.total(), 2);
    }
    assert_eq!(order, ["a2", "c2", "b2", "c1"]);
}

#[test]
fn at_the_global_limit_an_idle_connection_of_another_origin_is_closed_for_room() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let (a, b, c) = (
        origin("a", Mode::Http1),
        origin("b", Mode::Http1),
        origin("c", Mode::Http1),
    );
    let mut core = core(6);
    core.set_max_total(Some(3));
    let mut out = Out::new();
    // Two idle connections of `a`: 1 since 0 s, 2 since 1 s.
    request(&mut core, &a, Priority::Normal, "a1", t0, &mut out);
    request(&mut core, &a, Priority::Normal, "a2", t0, &mut out);
    core.connected(&a, None, t0, &mut out);
    core.connected(&a, None, t0, &mut out);
    core.release(&a, FakeConn::h1(1), true, at(0), &mut out);
    let second = FakeConn::h1(2);
    core.release(&a, second.clone(), true, at(1), &mut out);
    let handout = request(&mut core, &b, Priority::Normal, "b1", at(2), &mut out);
    assert!(handout.is_some_and(|h| is_connect(&h)));
    assert!(out.is_empty(), "room was free");
    // Full: the longest idle connection (of `a`) is closed for `b`'s next one.
    let handout = request(&mut core, &b, Priority::Normal, "b2", at(2), &mut out);
    assert!(handout.is_some_and(|h| is_connect(&h)));
    assert_eq!(split(std::mem::take(&mut out)).1, [1]);
    assert_eq!(
        (core.stats(&a).sockets, core.stats(&a).idle, core.total()),
        (1, 1, 3)
    );
    // A connection the peer closed goes first, however recently idle: `b`'s, idle since 3 s.
    core.connected(&b, None, at(3), &mut out);
    let third = FakeConn::h1(3);
    core.release(&b, third.clone(), true, at(3), &mut out);
    third.close();
    let handout = request(&mut core, &c, Priority::Normal, "c1", at(4), &mut out);
    assert!(handout.is_some_and(|h| is_connect(&h)));
    assert_eq!(split(std::mem::take(&mut out)).1, [3]);
    assert!(second.is_open());
    assert_eq!((core.stats(&a).idle, core.total()), (1, 3));
    // With no idle connection left elsewhere, a request waits.
    let reused = request(&mut core, &a, Priority::Normal, "a3", at(5), &mut out);
    assert_eq!(
        lease(reused.unwrap()).conn.id,
        2,
        "its own idle connection first"
    );
    assert!(request(&mut core, &c, Priority::Normal, "c2", at(5), &mut out).is_none());
    assert!(out.is_empty());
    assert_eq!(core.total(), 3);
}

#[test]
fn a_connection_released_while_another_origin_waits_for_room_is_closed_for_it() {
    let t0 = Instant::now();
    let (a, b) = (origin("a", Mode::Http1), origin("b", Mode::Http1));
    let mut core = core(6);
    core.set_max_total(Some(1));
    let mut out = Out::new();
    request(&mut core, &a, Priority::Normal, "a1", t0, &mut out);
    core.connected(&a, None, t0, &mut out);
    assert!(request(&mut core, &b, Priority::Normal, "b1", t0, &mut out).is_none());
    // `a` has no waiter: its released connection would sit idle while `b` waits.
    core.release(&a, FakeConn::h1(1), true, t0, &mut out);
    let (started, closed) = split(out);
    assert_eq!(names(&started), ["b1"]);
    assert!(is_connect(&started[0].1));
    assert_eq!(closed, [1]);
    assert_eq!((core.stats(&a), core.total()), (OriginStats::default(), 1));
}

#[test]
fn a_released_connection_goes_to_its_own_origins_waiter_before_room_for_others() {
    let t0 = Instant::now();
    let (a, b) = (origin("a", Mode::Http1), origin("b", Mode::Http1));
    let mut core = core(1);
    core.set_max_total(Some(1));
    let mut out = Out::new();
    request(&mut core, &a, Priority::Normal, "a1", t0, &mut out);
    core.connected(&a, None, t0, &mut out);
    request(&mut core, &b, Priority::High, "b1", t0, &mut out);
    request(&mut core, &a, Priority::Low, "a2", t0, &mut out);
    core.release(&a, FakeConn::h1(1), true, t0, &mut out);
    let (started, closed) = split(std::mem::take(&mut out));
    assert_eq!(names(&started), ["a2"], "reuse takes no room");
    assert!(closed.is_empty());
    core.release(&a, FakeConn::h1(1), true, t0, &mut out);
    assert_eq!(names(&split(out).0), ["b1"]);
}

#[test]
fn an_idle_connection_expires_exactly_at_the_reported_time() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http1));
    let mut core = core(6);
    let mut out = Out::new();
    // Nothing idle: the next sweep is one timeout away (nothing can expire sooner).
    assert_eq!(core.expire(t0, &mut out), Some(t0 + MINUTE));
    let since = t0 + Duration::from_secs(1);
    idle_h1(&mut core, &o, 1, since);
    let at = core.expire(since, &mut out).expect("an expiry");
    assert_eq!(at, since + MINUTE);
    assert_eq!(core.next_expiry(), Some(at));
    assert_eq!(
        core.expire(at - Duration::from_nanos(1), &mut out),
        Some(at)
    );
    assert!(out.is_empty(), "still idle a nanosecond before");
    assert_eq!(core.stats(&o).idle, 1);
    assert_eq!(core.expire(at, &mut out), Some(at + MINUTE));
    assert_eq!(split(out).1, [1], "closed at the reported time");
    assert_eq!(core.stats(&o), OriginStats::default(), "origin forgotten");
}

#[test]
fn with_a_zero_idle_timeout_nothing_stays_idle_and_the_sweeper_need_not_wake() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http1));
    let mut core: TestCore = Core::new(6, Duration::ZERO);
    let mut out = Out::new();
    request(&mut core, &o, Priority::Normal, "r", t0, &mut out);
    core.connected(&o, None, t0, &mut out);
    core.release(&o, FakeConn::h1(1), true, t0, &mut out);
    assert_eq!(split(std::mem::take(&mut out)).1, [1]);
    assert_eq!(core.expire(t0, &mut out), None);
}

#[test]
fn a_closed_idle_connection_is_not_handed_out() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http1));
    let mut core = core(6);
    idle_h1(&mut core, &o, 1, t0).close();
    let mut out = Out::new();
    let handout = request(&mut core, &o, Priority::Normal, "r", t0, &mut out);
    assert!(handout.is_some_and(|h| is_connect(&h)));
    assert_eq!(split(out).1, [1]);
    assert_eq!(core.stats(&o).sockets, 1);
}

#[test]
fn http2_waiters_wait_for_a_free_stream_not_for_a_second_connection() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http2Direct));
    let mut core = core(6);
    let mut out = Out::new();
    assert!(request(&mut core, &o, Priority::Normal, "r1", t0, &mut out).is_some());
    let conn = FakeConn::h2(1, 2);
    let id = core
        .connected(&o, conn.share(), t0, &mut out)
        .expect("shared");
    let r2 = lease(request(&mut core, &o, Priority::Normal, "r2", t0, &mut out).unwrap());
    assert_eq!(r2.stream, Some(id));
    // Two streams in use: the limit.
    assert!(request(&mut core, &o, Priority::Low, "r3", t0, &mut out).is_none());
    assert!(request(&mut core, &o, Priority::High, "r4", t0, &mut out).is_none());
    // r1's response head arrived: its stream no longer counts.
    let mut r1 = conn;
    r1.end_stream_slot();
    core.stream_slot_freed(&o, t0, &mut out);
    let (started, _) = split(std::mem::take(&mut out));
    assert_eq!(names(&started), ["r4"]);
    // r2 ends: its handle goes, then the core is told.
    drop(r2);
    core.stream_done(&o, id, t0, &mut out);
    let (started, _) = split(out);
    assert_eq!(names(&started), ["r3"]);
    assert_eq!(
        lease(started.into_iter().next().unwrap().1).stream,
        Some(id)
    );
    assert_eq!(core.stats(&o).opened, 1);
}

#[test]
fn an_alpn_origin_opens_its_first_connection_alone() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Negotiate));
    let mut core = core(6);
    let mut out = Out::new();
    assert!(request(&mut core, &o, Priority::Normal, "probe", t0, &mut out).is_some());
    for name in ["w1", "w2", "w3", "w4", "w5"] {
        assert!(request(&mut core, &o, Priority::Normal, name, t0, &mut out).is_none());
    }
    assert_eq!(core.stats(&o).sockets, 1);
    let conn = FakeConn::h2(42, 100);
    let id = core.connected(&o, conn.share(), t0, &mut out);
    let (started, _) = split(out);
    assert_eq!(names(&started), ["w1", "w2", "w3", "w4", "w5"]);
    for (_, handout) in started {
        let lease = lease(handout);
        assert_eq!((lease.conn.id, lease.stream), (42, id));
    }
    assert_eq!(core.stats(&o).opened, 1);
}

#[test]
fn an_alpn_origin_that_speaks_http1_opens_up_to_its_limit() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Negotiate));
    let mut core = core(3);
    let mut out = Out::new();
    request(&mut core, &o, Priority::Normal, "probe", t0, &mut out);
    for name in ["w1", "w2", "w3"] {
        request(&mut core, &o, Priority::Normal, name, t0, &mut out);
    }
    core.connected(&o, None, t0, &mut out);
    let (started, _) = split(out);
    assert_eq!(names(&started), ["w1", "w2"]);
    assert!(started.iter().all(|(_, h)| is_connect(h)));
    assert_eq!(core.stats(&o).queued, 1);
}

#[test]
fn a_failed_probe_lets_the_next_waiter_probe() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Negotiate));
    let mut core = core(6);
    let mut out = Out::new();
    request(&mut core, &o, Priority::Normal, "probe", t0, &mut out);
    request(&mut core, &o, Priority::Normal, "w1", t0, &mut out);
    request(&mut core, &o, Priority::Normal, "w2", t0, &mut out);
    core.connect_failed(&o, t0, &mut out);
    let (started, _) = split(out);
    assert_eq!(names(&started), ["w1"], "one probe at a time");
    assert_eq!(core.stats(&o).sockets, 1);
}

#[test]
fn a_dequeued_waiter_never_starts() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http1));
    let mut core = core(1);
    let mut out = Out::new();
    request(&mut core, &o, Priority::Normal, "busy", t0, &mut out);
    let Err(aborted) = core.try_acquire(&o, Priority::High, None, t0, &mut out) else {
        panic!("the slot is busy");
    };
    core.queue(&o, aborted, "aborted");
    request(&mut core, &o, Priority::Low, "kept", t0, &mut out);
    assert_eq!(core.dequeue(aborted), Some("aborted"));
    assert_eq!(core.dequeue(aborted), None, "only once");
    assert_eq!(core.stats(&o).queued, 1);
    core.connect_failed(&o, t0, &mut out);
    assert_eq!(names(&split(out).0), ["kept"]);
}

#[test]
fn an_idle_http2_connection_expires_and_is_room_under_the_global_limit() {
    let t0 = Instant::now();
    let (a, b) = (origin("a", Mode::Http2Direct), origin("b", Mode::Http1));
    let mut core = core(6);
    core.set_max_total(Some(1));
    let mut out = Out::new();
    request(&mut core, &a, Priority::Normal, "r", t0, &mut out);
    let conn = FakeConn::h2(1, 100);
    let id = core.connected(&a, conn.share(), t0, &mut out).unwrap();
    assert_eq!(core.next_expiry(), None, "a stream is open");
    drop(conn);
    let since = t0 + Duration::from_secs(5);
    core.stream_done(&a, id, since, &mut out);
    assert_eq!(core.next_expiry(), Some(since + MINUTE));
    let handout = request(&mut core, &b, Priority::Normal, "b", since, &mut out);
    assert!(handout.is_some_and(|h| is_connect(&h)));
    assert_eq!(split(out).1, [1]);
    assert_eq!(core.total(), 1);
}

#[test]
fn clearing_idle_connections_lets_stream_waiters_open_a_new_one() {
    let (t0, o) = (Instant::now(), origin("a", Mode::Http2Direct));
    let mut core = core(6);
    let mut out = Out::new();
    request(&mut core, &o, Priority::Normal, "r1", t0, &mut out);
    let conn = FakeConn::h2(1, 1);
    core.connected(&o, conn.share(), t0, &mut out);
    assert!(request(&mut core, &o, Priority::Normal, "r2", t0, &mut out).is_none());
    core.clear_idle(t0, &mut out);
    let (started, closed) = split(out);
    assert_eq!(closed, [1]);
    assert_eq!(names(&started), ["r2"]);
    assert!(is_connect(&started[0].1));
    assert_eq!(core.total(), 1);
}
