//! The per-origin scheduler through the manager: connection limits per origin and per request,
//! priorities, keep-alive reuse, HTTP/2 multiplexing, idle expiry, the retry on a stale
//! connection, and aborting queued and running requests. Counted at the test server's sockets.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netaccess::{NetworkAccessManager, NetworkError, Priority, Request};
use netaccess_testserver::{RawFault, TestServer};
use support::{done as finished, finish_all, kind, tls_manager, LIMIT};

// ----- the scheduler ---------------------------------------------------------------------------

#[tokio::test]
async fn six_connections_and_six_in_flight_for_100_slow_requests() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let replies: Vec<_> = (0..100)
        .map(|_| manager.get(Request::new(server.url("/slow/100"))))
        .collect();
    finish_all(&replies).await;
    assert!(replies
        .iter()
        .all(|r| r.error().is_none() && r.status_code() == Some(200)));
    let stats = server.stats();
    assert_eq!(stats.peak_in_flight, 6, "{stats:?}");
    assert_eq!(stats.connections_accepted, 6, "{stats:?}");
    assert_eq!(stats.requests_total, 100);
}

#[tokio::test]
async fn six_per_origin_in_parallel_across_three_origins() {
    let servers = [
        TestServer::http1().await,
        TestServer::http1().await,
        TestServer::http1().await,
    ];
    let manager = NetworkAccessManager::new();
    let replies: Vec<_> = (0..90)
        .map(|i| manager.get(Request::new(servers[i % 3].url("/slow/150"))))
        .collect();
    let started = Instant::now();
    finish_all(&replies).await;
    for s in &servers {
        let stats = s.stats();
        assert_eq!(stats.peak_in_flight, 6, "{stats:?}");
        assert_eq!(stats.connections_accepted, 6, "{stats:?}");
    }
    // 30 requests per origin, 6 at a time, 150 ms each: about 5 rounds in parallel, not 15.
    assert!(
        started.elapsed() < Duration::from_millis(150 * 12),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn configured_limit_of_two_is_respected() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .max_connections_per_host(2)
        .build()
        .unwrap();
    assert_eq!(manager.max_connections_per_host(), 2);
    let replies: Vec<_> = (0..20)
        .map(|_| manager.get(Request::new(server.url("/slow/50"))))
        .collect();
    finish_all(&replies).await;
    let stats = server.stats();
    assert_eq!(
        (stats.peak_in_flight, stats.connections_accepted),
        (2, 2),
        "{stats:?}"
    );
}

#[tokio::test]
async fn per_request_limit_fixes_the_origin_limit() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let replies: Vec<_> = (0..12)
        .map(|_| manager.get(Request::new(server.url("/slow/50")).with_max_connections_per_host(3)))
        .collect();
    finish_all(&replies).await;
    let stats = server.stats();
    assert_eq!(
        (stats.peak_in_flight, stats.connections_accepted),
        (3, 3),
        "{stats:?}"
    );
}

#[tokio::test]
async fn high_priority_requests_queued_after_low_ones_start_first() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .max_connections_per_host(1)
        .build()
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let log = order.clone();
    manager.finished().connect(move |r| {
        let tag = r
            .request()
            .headers()
            .get("x-tag")
            .map(|v| v.to_str().unwrap().to_owned());
        log.lock().unwrap().extend(tag);
    });
    let blocker = manager.get(Request::new(server.url("/delay/300")));
    let mut replies = vec![blocker];
    for i in 0..5 {
        let r = Request::new(server.url("/hello"))
            .with_priority(Priority::Low)
            .with_header("X-Tag", &format!("low{i}"));
        replies.push(manager.get(r));
    }
    for i in 0..5 {
        let r = Request::new(server.url("/hello"))
            .with_priority(Priority::High)
            .with_header("X-Tag", &format!("high{i}"));
        replies.push(manager.get(r));
    }
    finish_all(&replies).await;
    let order = order.lock().unwrap().clone();
    let expected: Vec<String> = (0..5)
        .map(|i| format!("high{i}"))
        .chain((0..5).map(|i| format!("low{i}")))
        .collect();
    assert_eq!(order, expected);
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn keep_alive_reuses_one_connection_for_100_sequential_requests() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    for _ in 0..100 {
        let reply = manager.get(Request::new(server.url("/hello")));
        assert_eq!(reply.text().await.unwrap(), "hello");
        assert!(reply.error().is_none());
    }
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn one_tls_connection_for_100_requests_to_an_h2_origin() {
    let server = TestServer::tls().await;
    let manager = tls_manager(&server);
    let replies: Vec<_> = (0..100)
        .map(|_| manager.get(Request::new(server.url("/bytes/1024"))))
        .collect();
    finish_all(&replies).await;
    for r in &replies {
        assert_eq!(r.error().map(|e| e.to_string()), None);
        assert!(r.http2_was_used() && r.is_encrypted());
        assert_eq!(r.read_all().len(), 1024);
    }
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert_eq!(stats.h2_requests, 100);
}

#[tokio::test]
async fn tls_http1_origin_gets_six_connections() {
    let server = TestServer::builder().tls_http1_only().start().await;
    let manager = tls_manager(&server);
    let replies: Vec<_> = (0..30)
        .map(|_| manager.get(Request::new(server.url("/slow/100"))))
        .collect();
    finish_all(&replies).await;
    assert!(replies
        .iter()
        .all(|r| r.error().is_none() && !r.http2_was_used() && r.is_encrypted()));
    let stats = server.stats();
    assert_eq!(
        (stats.connections_accepted, stats.peak_in_flight),
        (6, 6),
        "{stats:?}"
    );
}

#[tokio::test]
async fn h2c_by_prior_knowledge_multiplexes_on_one_connection() {
    let server = TestServer::h2c().await;
    let manager = NetworkAccessManager::new();
    let replies: Vec<_> = (0..100)
        .map(|_| manager.get(Request::new(server.url("/slow/50")).with_http2_direct(true)))
        .collect();
    finish_all(&replies).await;
    assert!(replies
        .iter()
        .all(|r| r.error().is_none() && r.http2_was_used() && !r.is_encrypted()));
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert!(stats.peak_in_flight > 6, "multiplexed: {stats:?}");
}

#[tokio::test]
async fn clear_connection_cache_closes_idle_connections() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    manager.clear_connection_cache();
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    manager.clear_access_cache();
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.stats().connections_accepted, 3);
}

#[tokio::test]
async fn idle_connections_expire() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .idle_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        server.stats().connections_open,
        0,
        "the idle connection was closed"
    );
    manager
        .get(Request::new(server.url("/hello")))
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.stats().connections_accepted, 2);
}

#[tokio::test]
async fn a_reused_connection_closed_by_the_server_is_retried_once() {
    let server = TestServer::builder()
        .raw(RawFault::CloseAfterResponses(1))
        .start()
        .await;
    let manager = NetworkAccessManager::new();
    for _ in 0..5 {
        let reply = manager.get(Request::new(server.url("/x")));
        assert_eq!(reply.text().await.unwrap(), "hello");
        assert_eq!(kind(&reply), None);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 5, "{stats:?}");
    // The server read each later request on the old connection, then closed it unanswered.
    assert_eq!(stats.requests_total, 9, "{stats:?}");
}

#[tokio::test]
async fn a_post_on_a_reused_connection_closed_by_the_server_is_not_retried() {
    let server = TestServer::builder()
        .raw(RawFault::CloseAfterResponses(1))
        .start()
        .await;
    let manager = NetworkAccessManager::new();
    let first = manager.get(Request::new(server.url("/x")));
    assert_eq!(first.text().await.unwrap(), "hello");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let post = manager.post(Request::new(server.url("/x")), "data");
    finished(&post).await;
    assert_eq!(kind(&post), Some(NetworkError::RemoteHostClosedError));
    assert_eq!(server.stats().connections_accepted, 1);
}

// ----- abort -----------------------------------------------------------------------------------

#[tokio::test]
async fn abort_of_a_queued_request_removes_it_from_the_queue() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .max_connections_per_host(1)
        .build()
        .unwrap();
    let running = manager.get(Request::new(server.url("/delay/300")));
    let queued = manager.get(Request::new(server.url("/hello")));
    let finished_count = Arc::new(Mutex::new(0));
    let c = finished_count.clone();
    queued.finished().connect(move |_| *c.lock().unwrap() += 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    queued.abort();
    queued.abort();
    assert!(queued.is_finished());
    assert_eq!(kind(&queued), Some(NetworkError::OperationCanceledError));
    assert!(matches!(queued.bytes().await, Err(e) if e.is_canceled()));
    finished(&running).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(*finished_count.lock().unwrap(), 1);
    assert_eq!(server.requests_for("/hello"), 0);
    // The slot is free again.
    let after = manager.get(Request::new(server.url("/hello")));
    assert_eq!(after.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn abort_of_a_running_request_finishes_it_once() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/stall-after-headers")));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (e1, e2) = (events.clone(), events.clone());
    reply
        .error_occurred()
        .connect(move |(_, e)| e1.lock().unwrap().push(format!("error {}", e.kind())));
    reply
        .finished()
        .connect(move |_| e2.lock().unwrap().push("finished".to_string()));
    tokio::time::timeout(LIMIT, reply.meta_data_changed().next())
        .await
        .unwrap();
    assert!(reply.is_running());
    reply.abort();
    assert!(!reply.is_running());
    reply.abort();
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            "error OperationCanceledError".to_string(),
            "finished".into()
        ]
    );
    // The aborted connection is closed, not reused.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.stats().connections_open, 0);
}

/// A manager whose hosts `a.test` and `b.test` are both `server` (two origins, one socket
/// count), with at most `total` connections over all origins.
fn two_origins(total: usize) -> NetworkAccessManager {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    NetworkAccessManager::builder()
        .resolve("a.test", [loopback])
        .resolve("b.test", [loopback])
        .max_connections_total(total)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_limit_bounds_sockets_across_origins() {
    let server = TestServer::http1().await;
    let manager = two_origins(3);
    let port = server.port();
    let replies: Vec<_> = (0..20)
        .map(|i| {
            let host = if i % 2 == 0 { "a.test" } else { "b.test" };
            manager.get(Request::new(format!("http://{host}:{port}/delay/30")))
        })
        .collect();
    finish_all(&replies).await;
    for reply in &replies {
        assert!(reply.error().is_none(), "{:?}", reply.error());
    }
    // The server sees a socket the client closed (to make room for the other origin) until
    // it reads the end of it, so its open count can lag; the requests it serves at once
    // cannot: at most 3, one per socket the client may have.
    let stats = server.stats();
    assert_eq!(
        stats.peak_in_flight, 3,
        "3 at once over both origins: {stats:?}"
    );
    assert!(stats.connections_open <= 3, "{stats:?}");
    assert_eq!(stats.requests_total, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_global_limit_an_idle_connection_of_another_origin_makes_room() {
    let server = TestServer::http1().await;
    let manager = two_origins(1);
    let port = server.port();
    let a = manager.get(Request::new(format!("http://a.test:{port}/hello")));
    assert_eq!(a.text().await.unwrap(), "hello");
    // a.test's connection is idle; b.test needs the one slot.
    let b = manager.get(Request::new(format!("http://b.test:{port}/hello")));
    let body = tokio::time::timeout(LIMIT, b.text()).await.unwrap();
    assert_eq!(body.unwrap(), "hello");
    assert_eq!(server.stats().connections_accepted, 2);
}
