//! The pool as a state machine, with stand-in connections (no sockets: the pool never has any).

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone)]
struct FakeConn {
    id: u32,
    open: Arc<AtomicBool>,
    h2: bool,
}

impl FakeConn {
    fn h1(id: u32) -> Self {
        FakeConn {
            id,
            open: Arc::new(AtomicBool::new(true)),
            h2: false,
        }
    }
    fn h2(id: u32) -> Self {
        FakeConn {
            id,
            open: Arc::new(AtomicBool::new(true)),
            h2: true,
        }
    }
}

impl PoolConn for FakeConn {
    fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
    fn share(&self) -> Option<Self> {
        self.h2.then(|| self.clone())
    }
}

fn origin(mode: Mode) -> Origin {
    Origin {
        scheme: "http".into(),
        host: "h".into(),
        port: 80,
        proxy: None,
        mode,
    }
}

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

impl Pool<FakeConn> {
    /// A grant that must be available at once (a free slot), without awaiting.
    fn acquire_now(&self, o: &Origin) -> Grant<FakeConn> {
        let granted = Arc::new(Mutex::new(None));
        let slot = granted.clone();
        let ticket = self.enqueue(
            o,
            Priority::Normal,
            None,
            Box::new(move |_: &Origin, grant| *slot.lock().unwrap() = Some(grant)),
        );
        assert!(ticket.is_none(), "a slot was free");
        let grant = granted.lock().unwrap().take();
        grant.expect("granted at once")
    }
}

async fn pending<F: std::future::Future>(f: F) -> bool {
    tokio::time::timeout(Duration::from_millis(20), f)
        .await
        .is_err()
}

#[tokio::test]
async fn limit_counts_sockets_not_requests() {
    let pool: Pool<FakeConn> = Pool::new(2, Duration::from_secs(60));
    let o = origin(Mode::Http1);
    let p1 = permit(pool.acquire(&o, Priority::Normal, None).await);
    let p2 = permit(pool.acquire(&o, Priority::Normal, None).await);
    assert!(pending(pool.acquire(&o, Priority::Normal, None)).await);
    assert_eq!(pool.stats(&o).sockets, 2);
    // A released connection goes straight to the next waiter, no new socket.
    let c1 = p1.connected(FakeConn::h1(1));
    let waiter = tokio::spawn({
        let pool = pool.clone();
        let o = o.clone();
        async move {
            reuse(pool.acquire(&o, Priority::Normal, None).await)
                .conn()
                .id
        }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    c1.release(true);
    assert_eq!(waiter.await.unwrap(), 1);
    assert_eq!(pool.stats(&o).peak_sockets, 2);
    assert_eq!(pool.stats(&o).opened, 2);
    // The waiter dropped its checkout without releasing it: that socket counts as closed.
    assert_eq!(pool.stats(&o).sockets, 1);
    drop(p2); // a failed connect frees its slot
    assert_eq!(pool.stats(&o).sockets, 0);
}

#[tokio::test]
async fn high_priority_waiters_go_first() {
    let pool: Pool<FakeConn> = Pool::new(1, Duration::from_secs(60));
    let o = origin(Mode::Http1);
    let c = permit(pool.acquire(&o, Priority::Normal, None).await).connected(FakeConn::h1(7));
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, prio) in [
        (0, Priority::Low),
        (1, Priority::Low),
        (2, Priority::High),
        (3, Priority::Normal),
    ] {
        let (pool, o, order) = (pool.clone(), o.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let c = reuse(pool.acquire(&o, prio, None).await);
            order.lock().unwrap().push(i);
            c.release(true);
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    c.release(true);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![2, 3, 0, 1]);
}

#[tokio::test]
async fn dropped_waiter_leaves_the_queue() {
    let pool: Pool<FakeConn> = Pool::new(1, Duration::from_secs(60));
    let o = origin(Mode::Http1);
    let p = permit(pool.acquire(&o, Priority::Normal, None).await);
    assert!(pending(pool.acquire(&o, Priority::Normal, None)).await);
    assert_eq!(pool.stats(&o).queued, 0);
    drop(p);
    assert_eq!(pool.stats(&o).sockets, 0);
}

#[tokio::test]
async fn alpn_origin_opens_one_connection_until_protocol_known() {
    let pool: Pool<FakeConn> = Pool::new(6, Duration::from_secs(60));
    let o = origin(Mode::Negotiate);
    let p = permit(pool.acquire(&o, Priority::Normal, None).await);
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (pool, o) = (pool.clone(), o.clone());
            tokio::spawn(async move {
                reuse(pool.acquire(&o, Priority::Normal, None).await)
                    .conn()
                    .id
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(pool.stats(&o).sockets, 1);
    let _c = p.connected(FakeConn::h2(42));
    for w in waiters {
        assert_eq!(w.await.unwrap(), 42);
    }
    assert_eq!(pool.stats(&o).opened, 1);
}

#[tokio::test]
async fn alpn_origin_that_speaks_http1_opens_up_to_the_limit() {
    let pool: Pool<FakeConn> = Pool::new(3, Duration::from_secs(60));
    let o = origin(Mode::Negotiate);
    let p = permit(pool.acquire(&o, Priority::Normal, None).await);
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (pool, o) = (pool.clone(), o.clone());
            tokio::spawn(async move {
                matches!(
                    pool.acquire(&o, Priority::Normal, None).await,
                    Grant::Connect(_)
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _c = p.connected(FakeConn::h1(1));
    for w in waiters {
        assert!(w.await.unwrap());
    }
}

#[tokio::test]
async fn idle_connections_expire_and_closed_ones_are_skipped() {
    let pool: Pool<FakeConn> = Pool::new(2, Duration::from_millis(30));
    let o = origin(Mode::Http1);
    let a = FakeConn::h1(1);
    let a_open = a.open.clone();
    permit(pool.acquire(&o, Priority::Normal, None).await)
        .connected(a)
        .release(true);
    a_open.store(false, Ordering::SeqCst);
    // The closed idle connection is not handed out: a new one is opened.
    let p = permit(pool.acquire(&o, Priority::Normal, None).await);
    p.connected(FakeConn::h1(2)).release(true);
    assert_eq!(pool.stats(&o).idle, 1);
    tokio::time::sleep(Duration::from_millis(40)).await;
    pool.expire_idle();
    assert_eq!(
        pool.stats(&o),
        OriginStats::default(),
        "expired origin forgotten"
    );
}

#[tokio::test]
async fn first_request_fixes_the_limit() {
    let pool: Pool<FakeConn> = Pool::new(6, Duration::from_secs(60));
    let o = origin(Mode::Http1);
    let _p1 = permit(pool.acquire(&o, Priority::Normal, Some(1)).await);
    assert!(pending(pool.acquire(&o, Priority::Normal, Some(4))).await);
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
    let o = origin(Mode::Http1);
    let started = Arc::new(Mutex::new(Vec::new()));
    // A free slot: started at once, no ticket.
    assert!(pool
        .enqueue(
            &o,
            Priority::Normal,
            None,
            recorder(&pool, &o, "first", &started)
        )
        .is_none());
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
    let o = origin(Mode::Http1);
    let started = Arc::new(Mutex::new(Vec::new()));
    let busy = permit(pool.acquire_now(&o));
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
    let o = origin(Mode::Http1);
    let started = Arc::new(Mutex::new(Vec::new()));
    let busy = permit(pool.acquire_now(&o));
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
