//! The async shell: grants reach waiting tasks and requests queued as data, handles report back
//! when dropped, and the idle sweeper wakes when the core says. Driven by events (a future
//! polled once, a hand-driven timer), never by sleeps or the wall clock.

use super::tests::{origin, FakeConn};
use super::*;
use futures_util::FutureExt;
use std::pin::pin;
use tokio::sync::mpsc;

fn permit(g: Grant<FakeConn>) -> Permit<FakeConn> {
    match g {
        Grant::Connect(p) => p,
        Grant::Reuse(_) => panic!("expected a permit"),
    }
}

fn reuse(g: Grant<FakeConn>) -> Checkout<FakeConn> {
    match g {
        Grant::Reuse(c) => c,
        Grant::Connect(_) => panic!("expected a connection"),
    }
}

/// A grant that must be given at once.
fn now(pool: &Pool<FakeConn>, o: &Origin) -> Grant<FakeConn> {
    pool.acquire(o, Priority::Normal, None)
        .now_or_never()
        .expect("granted at once")
}

#[tokio::test]
async fn a_waiting_task_gets_the_released_connection() {
    let pool: Pool<FakeConn> = Pool::new(1, Duration::from_secs(60));
    let o = origin("a", Mode::Http1);
    let checkout = permit(now(&pool, &o)).connected(FakeConn::h1(1));
    let mut waiting = pin!(pool.acquire(&o, Priority::Normal, None));
    assert!(waiting.as_mut().now_or_never().is_none());
    assert_eq!(pool.stats(&o).queued, 1);
    checkout.release(true);
    let mut handed = reuse(waiting.await);
    assert!(handed.was_reused());
    assert_eq!(handed.conn().id, 1);
    drop(handed); // dropped unreleased: counts as broken
    assert_eq!(pool.stats(&o), OriginStats::default());
}

#[tokio::test]
async fn a_dropped_waiter_leaves_the_queue() {
    let pool: Pool<FakeConn> = Pool::new(1, Duration::from_secs(60));
    let o = origin("a", Mode::Http1);
    let p = permit(now(&pool, &o));
    {
        let mut waiting = pin!(pool.acquire(&o, Priority::Normal, None));
        assert!(waiting.as_mut().now_or_never().is_none());
        assert_eq!(pool.stats(&o).queued, 1);
    }
    assert_eq!(pool.stats(&o).queued, 0);
    drop(p); // a failed connect frees its slot
    assert_eq!(pool.stats(&o).sockets, 0);
}

#[tokio::test]
async fn a_waiter_gone_after_its_grant_was_sent_gives_the_connection_back() {
    let pool: Pool<FakeConn> = Pool::new(1, Duration::from_secs(60));
    let o = origin("a", Mode::Http1);
    let conn = FakeConn::h1(1);
    let open = conn.open.clone();
    let checkout = permit(now(&pool, &o)).connected(conn);
    {
        let mut waiting = pin!(pool.acquire(&o, Priority::Normal, None));
        assert!(waiting.as_mut().now_or_never().is_none());
        checkout.release(true); // sent to the waiter, which never looks again
        assert_eq!(pool.stats(&o).queued, 0);
    }
    let stats = pool.stats(&o);
    assert_eq!(
        (stats.idle, stats.sockets),
        (1, 1),
        "idle again, not closed"
    );
    assert_eq!(Arc::strong_count(&open), 2);
}

#[tokio::test]
async fn an_http2_connection_serves_the_tasks_that_waited_for_its_protocol() {
    let pool: Pool<FakeConn> = Pool::new(6, Duration::from_secs(60));
    let o = origin("a", Mode::Negotiate);
    let probe = permit(now(&pool, &o));
    let mut first = pin!(pool.acquire(&o, Priority::Normal, None));
    let mut second = pin!(pool.acquire(&o, Priority::Normal, None));
    assert!(first.as_mut().now_or_never().is_none());
    assert!(second.as_mut().now_or_never().is_none());
    let mut mine = probe.connected(FakeConn::h2(42, 100));
    for waiting in [first, second] {
        let mut handle = reuse(waiting.await);
        assert_eq!(handle.conn().id, 42);
        handle.response_head_received();
        handle.release(true);
    }
    mine.response_head_received();
    mine.release(true);
    let stats = pool.stats(&o);
    assert_eq!((stats.opened, stats.sockets), (1, 1));
}

/// The requests started so far, with their grants.
type Started = Arc<Mutex<Vec<(&'static str, Grant<FakeConn>)>>>;

/// A start function that records which request got which grant, and asserts that it runs
/// outside the pool's lock (it reads the pool's statistics, which takes the lock).
fn recorder(
    pool: &Pool<FakeConn>,
    o: &Origin,
    name: &'static str,
    started: &Started,
) -> Start<FakeConn> {
    let (pool, o, started) = (pool.clone(), o.clone(), started.clone());
    Box::new(move |waited: &Origin, grant| {
        assert_eq!(*waited, o);
        let _ = pool.stats(&o); // would deadlock if called under the lock
        started.lock().unwrap().push((name, grant));
    })
}

#[test]
fn requests_queued_as_data_start_in_priority_order_without_a_task() {
    let pool: Pool<FakeConn> = Pool::new(1, Duration::from_secs(60));
    let o = origin("a", Mode::Http1);
    let started = Arc::new(Mutex::new(Vec::new()));
    // A free slot: started at once, no ticket.
    let ticket = pool.enqueue(
        &o,
        Priority::Normal,
        None,
        recorder(&pool, &o, "first", &started),
    );
    assert!(ticket.is_none());
    let (name, grant) = started.lock().unwrap().pop().unwrap();
    assert_eq!(name, "first");
    let checkout = permit(grant).connected(FakeConn::h1(1));
    // The slot is busy: the next ones wait as data, in (priority, arrival) order.
    for (name, priority) in [
        ("low", Priority::Low),
        ("normal", Priority::Normal),
        ("high", Priority::High),
    ] {
        let ticket = pool.enqueue(&o, priority, None, recorder(&pool, &o, name, &started));
        assert!(ticket.is_some());
    }
    assert_eq!(pool.stats(&o).queued, 3);
    assert!(started.lock().unwrap().is_empty());
    // Each release hands the connection to the next one, started outside the lock.
    checkout.release(true);
    for expected in ["high", "normal", "low"] {
        let (name, grant) = started.lock().unwrap().pop().expect("started");
        assert_eq!(name, expected);
        let checkout = reuse(grant);
        assert_eq!(pool.stats(&o).opened, 1, "the one connection is reused");
        checkout.release(true);
    }
    assert_eq!(pool.stats(&o).queued, 0);
}

#[test]
fn a_dequeued_request_never_starts_and_frees_nothing() {
    let pool: Pool<FakeConn> = Pool::new(1, Duration::from_secs(60));
    let o = origin("a", Mode::Http1);
    let started = Arc::new(Mutex::new(Vec::new()));
    let busy = permit(now(&pool, &o));
    let ticket = pool
        .enqueue(
            &o,
            Priority::Normal,
            None,
            recorder(&pool, &o, "aborted", &started),
        )
        .expect("queued");
    let _kept = pool
        .enqueue(
            &o,
            Priority::Low,
            None,
            recorder(&pool, &o, "kept", &started),
        )
        .expect("queued");
    assert!(Pool::dequeue(ticket), "taken out of the queue");
    assert_eq!(pool.stats(&o).queued, 1);
    drop(busy); // the failed connect frees the slot: the next queued request gets it
    let (name, _grant) = started.lock().unwrap().pop().expect("started");
    assert_eq!(name, "kept");
    assert!(started.lock().unwrap().is_empty());
}

#[test]
fn a_dequeue_after_the_start_is_a_no_op() {
    let pool: Pool<FakeConn> = Pool::new(1, Duration::from_secs(60));
    let o = origin("a", Mode::Http1);
    let started = Arc::new(Mutex::new(Vec::new()));
    let busy = permit(now(&pool, &o));
    let ticket = pool
        .enqueue(
            &o,
            Priority::Normal,
            None,
            recorder(&pool, &o, "late", &started),
        )
        .expect("queued");
    drop(busy);
    assert_eq!(started.lock().unwrap().len(), 1);
    assert!(!Pool::dequeue(ticket));
}

#[test]
fn the_global_limit_closes_an_idle_connection_of_another_origin() {
    let pool: Pool<FakeConn> = Pool::new(6, Duration::from_secs(60)).with_max_total(Some(1));
    let (a, b) = (origin("a", Mode::Http1), origin("b", Mode::Http1));
    let idle = FakeConn::h1(1);
    let open = idle.open.clone();
    permit(now(&pool, &a)).connected(idle).release(true);
    drop(permit(now(&pool, &b)));
    assert_eq!(
        Arc::strong_count(&open),
        1,
        "a's idle connection was dropped"
    );
    assert_eq!(pool.stats(&a), OriginStats::default());
}

/// A timer driven by hand: it reports each deadline the sweeper asks for and completes a
/// sleep when told, with the clock set to the deadline.
struct HandTimer {
    clock: Arc<Mutex<Instant>>,
    asked: mpsc::UnboundedSender<Option<Instant>>,
    fire: Arc<Notify>,
}

impl Timer for HandTimer {
    fn now(&self) -> Instant {
        *self.clock.lock().unwrap()
    }

    async fn sleep_until(&self, deadline: Option<Instant>) {
        let _ = self.asked.send(deadline);
        self.fire.notified().await;
    }
}

#[tokio::test]
async fn the_sweeper_sleeps_until_the_next_expiry_and_ends_with_the_pool() {
    let timeout = Duration::from_secs(60);
    let pool: Pool<FakeConn> = Pool::new(6, timeout);
    let o = origin("a", Mode::Http1);
    // The hand clock starts a moment before the pool's idle times (the wall clock), so the
    // connection released below expires strictly after the sweeper's first deadline.
    let t0 = Instant::now()
        .checked_sub(Duration::from_millis(1))
        .unwrap();
    let clock = Arc::new(Mutex::new(t0));
    let fire = Arc::new(Notify::new());
    let (asked, mut deadlines) = mpsc::unbounded_channel();
    let timer = HandTimer {
        clock: clock.clone(),
        asked,
        fire: fire.clone(),
    };
    let sweeper = tokio::spawn(sweep(pool.downgrade(), pool.inner.gone.clone(), timer));
    // Nothing idle: one timeout from now.
    assert_eq!(deadlines.recv().await, Some(Some(t0 + timeout)));
    let conn = FakeConn::h1(1);
    let open = conn.open.clone();
    permit(now(&pool, &o)).connected(conn).release(true);
    let expiry = pool
        .inner
        .lock()
        .next_expiry()
        .expect("one idle connection");
    // Woken at its deadline, the sweeper asks for the idle connection's expiry.
    *clock.lock().unwrap() = t0 + timeout;
    fire.notify_one();
    assert_eq!(deadlines.recv().await, Some(Some(expiry)));
    assert_eq!(pool.stats(&o).idle, 1);
    // At the expiry, the connection closes.
    *clock.lock().unwrap() = expiry;
    fire.notify_one();
    assert_eq!(deadlines.recv().await, Some(Some(expiry + timeout)));
    assert_eq!(Arc::strong_count(&open), 1, "closed");
    assert_eq!(pool.stats(&o), OriginStats::default());
    // The sweeper holds the pool only weakly, and ends when it goes.
    let weak = pool.downgrade();
    drop(pool);
    assert!(weak.upgrade().is_none());
    sweeper.await.unwrap();
}
