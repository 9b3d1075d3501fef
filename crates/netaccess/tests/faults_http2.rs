//! The HTTP/2 fault matrix, against real sockets: a scripted `h2` server
//! (`netaccess_testserver::h2script`) for GOAWAY, RST_STREAM, SETTINGS, header lists,
//! PUSH_PROMISE and stalled uploads; the test server's h2c and TLS modes for keep-alive and
//! flow control. Every case ends in a stated `NetworkError` (or success) in bounded time.

use std::time::{Duration, Instant};

use netaccess::{NetworkAccessManager, NetworkError, Priority, Reply, Request};
use netaccess_testserver::h2script::{H2Script, H2ScriptServer};
use netaccess_testserver::TestServer;

/// Hang guard: every reply here finishes well within this.
const GUARD: Duration = Duration::from_secs(20);

async fn done(reply: &Reply) {
    tokio::time::timeout(GUARD, reply.finished())
        .await
        .expect("the reply finished in time");
}

fn h2(url: String) -> Request {
    Request::new(url).with_http2_direct(true)
}

fn kind(reply: &Reply) -> Option<NetworkError> {
    reply.error().map(|e| e.kind())
}

fn message(reply: &Reply) -> String {
    reply.error().map(|e| e.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn http2_keep_alive_ping_fails_a_request_on_a_dead_connection() {
    let server = H2ScriptServer::start(H2Script::SilentAfterRequest).await;
    let manager = NetworkAccessManager::builder()
        .http2_keep_alive(Duration::from_millis(200), Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let reply = manager.get(h2(server.url("/silent")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::TimeoutError),
        "{}",
        message(&reply)
    );
    assert!(
        message(&reply).contains("keep-alive PING"),
        "{}",
        message(&reply)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "noticed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http2_keep_alive_durations_are_clamped_to_10_ms_and_24_h() {
    // Zero and Duration::MAX would flood the peer or overflow the timer: both are clamped.
    let server = TestServer::h2c().await;
    let huge = NetworkAccessManager::builder()
        .http2_keep_alive(Duration::MAX, Duration::MAX)
        .build()
        .unwrap();
    let reply = huge.get(h2(server.url("/hello")));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(reply.http2_was_used());

    let silent = H2ScriptServer::start(H2Script::SilentAfterRequest).await;
    let tiny = NetworkAccessManager::builder()
        .http2_keep_alive(Duration::ZERO, Duration::ZERO)
        .build()
        .unwrap();
    let started = Instant::now();
    let reply = tiny.get(h2(silent.url("/silent")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::TimeoutError),
        "{}",
        message(&reply)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn http2_keep_alive_ping_fails_a_body_stalled_on_a_dead_connection() {
    let server = H2ScriptServer::start(H2Script::SilentMidBody {
        len: 100_000,
        before: 1000,
    })
    .await;
    let manager = NetworkAccessManager::builder()
        .http2_keep_alive(Duration::from_millis(200), Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let reply = manager.get(h2(server.url("/stalled")));
    done(&reply).await;
    assert_eq!(reply.status_code(), Some(200));
    // hyper closes the dead connection; the body then ends short of its Content-Length.
    assert_eq!(
        kind(&reply),
        Some(NetworkError::RemoteHostClosedError),
        "{}",
        message(&reply)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "noticed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_never_sends_http2_settings_fails_within_the_connect_timeout() {
    let server = TestServer::builder()
        .raw(netaccess_testserver::RawFault::AcceptAndSilence)
        .start()
        .await;
    let manager = NetworkAccessManager::builder()
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let reply = manager.get(h2(server.url("/")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::TimeoutError),
        "{}",
        message(&reply)
    );
    assert!(message(&reply).contains("SETTINGS"), "{}", message(&reply));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http2_prior_knowledge_to_an_http1_server_fails_at_once() {
    // The server answers the preface with an HTTP/1.1 error and closes: no SETTINGS will
    // come, and the request fails without waiting for the (default 30 s) connect timeout.
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let started = Instant::now();
    let reply = manager.get(h2(server.url("/hello")));
    done(&reply).await;
    assert!(
        reply.error().is_some(),
        "an HTTP/1 answer is no HTTP/2 response"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http2_keep_alive_off_leaves_the_transfer_timeout_in_charge() {
    let server = H2ScriptServer::start(H2Script::SilentAfterRequest).await;
    let manager = NetworkAccessManager::builder()
        .http2_keep_alive_off()
        .transfer_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let reply = manager.get(h2(server.url("/silent")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::TimeoutError),
        "{}",
        message(&reply)
    );
    assert!(
        !message(&reply).contains("keep-alive"),
        "{}",
        message(&reply)
    );
}

/// Three 8 MiB replies with 64 KiB read buffers that nobody reads, then a fourth request on
/// the same connection: it must finish within 5 s.
async fn unread_replies_do_not_stall_the_connection(
    server: TestServer,
    manager: NetworkAccessManager,
) {
    const READ_BUFFER: usize = 64 * 1024;
    const BIG: usize = 8 * 1024 * 1024;
    let request = |path: &str| {
        let url = server.url(path);
        if server.is_tls() {
            Request::new(url)
        } else {
            h2(url)
        }
    };
    let stalled: Vec<Reply> = (0..3)
        .map(|_| {
            manager.get_with(request(&format!("/bytes/{BIG}")), |r| {
                r.set_read_buffer_size(READ_BUFFER)
            })
        })
        .collect();
    // Wait until each one's buffer is full: from then on, only h2's window takes data.
    let deadline = Instant::now() + Duration::from_secs(10);
    for r in &stalled {
        while r.bytes_available() < READ_BUFFER {
            assert!(
                Instant::now() < deadline,
                "the stalled replies got their first bytes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let started = Instant::now();
    let fourth = manager.get(request("/bytes/4194304"));
    let body = tokio::time::timeout(Duration::from_secs(5), fourth.bytes())
        .await
        .expect("the fourth request finished within 5 s")
        .expect("the fourth body");
    assert_eq!(body.len(), 4 * 1024 * 1024);
    assert!(fourth.http2_was_used());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        server.stats().connections_accepted,
        1,
        "one HTTP/2 connection carried all four"
    );
    // The stalled ones are intact: read them now.
    for r in &stalled {
        let body = tokio::time::timeout(GUARD, r.bytes())
            .await
            .expect("read in time")
            .expect("the stalled body");
        assert_eq!(body.len(), BIG);
        assert_eq!(&body[..], &netaccess_testserver::expected_bytes(0, BIG)[..]);
    }
}

#[tokio::test]
async fn three_unread_h2c_replies_do_not_freeze_a_fourth_stream() {
    let server = TestServer::h2c().await;
    unread_replies_do_not_stall_the_connection(server, NetworkAccessManager::new()).await;
}

#[tokio::test]
async fn three_unread_tls_h2_replies_do_not_freeze_a_fourth_stream() {
    let server = TestServer::tls().await;
    let manager = NetworkAccessManager::builder()
        .add_root_certificate_pem(server.ca_cert_pem().unwrap().as_bytes())
        .build()
        .unwrap();
    unread_replies_do_not_stall_the_connection(server, manager).await;
}

#[tokio::test]
async fn goaway_below_in_flight_streams_retries_unprocessed_posts_and_fails_the_processed_one() {
    let server = H2ScriptServer::start(H2Script::GoAwayBelowInFlight {
        streams: 3,
        answer_processed: false,
    })
    .await;
    let manager = NetworkAccessManager::new();
    // POST: never retried after processing, so only GOAWAY's "unprocessed" allows a resend.
    let replies: Vec<Reply> = ["/a", "/b", "/c"]
        .iter()
        .map(|p| manager.post(h2(server.url(p)), "payload"))
        .collect();
    for r in &replies {
        done(r).await;
    }
    let first_path = server.paths()[0].clone();
    for r in &replies {
        let path = r.url().path().to_owned();
        if path == first_path {
            // At or below the last-stream-id: processed, then the connection closed.
            assert_eq!(
                kind(r),
                Some(NetworkError::RemoteHostClosedError),
                "{path}: {}",
                message(r)
            );
        } else {
            assert_eq!(r.error().map(|e| e.to_string()), None, "{path}");
            assert_eq!(r.bytes().await.unwrap(), path.as_bytes());
        }
    }
    assert_eq!(
        server.connections(),
        2,
        "the unprocessed ones went on a new connection"
    );
    assert_eq!(
        server.paths().len(),
        5,
        "3 on the first connection, 2 resent"
    );
}

#[tokio::test]
async fn goaway_below_in_flight_streams_completes_the_processed_one_and_resends_the_rest() {
    let server = H2ScriptServer::start(H2Script::GoAwayBelowInFlight {
        streams: 3,
        answer_processed: true,
    })
    .await;
    let manager = NetworkAccessManager::new();
    let replies: Vec<Reply> = ["/a", "/b", "/c"]
        .iter()
        .map(|p| manager.post(h2(server.url(p)), "payload"))
        .collect();
    for r in &replies {
        done(r).await;
        let path = r.url().path().to_owned();
        assert_eq!(r.error().map(|e| e.to_string()), None, "{path}");
        assert_eq!(r.bytes().await.unwrap(), path.as_bytes());
    }
    assert_eq!(server.connections(), 2);
    let paths = server.paths();
    assert_eq!(
        paths.len(),
        5,
        "the processed one was not sent again: {paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| **p == paths[0]).count(),
        1,
        "{paths:?}"
    );
}

#[tokio::test]
async fn refused_stream_is_sent_again_whatever_the_method() {
    let server = H2ScriptServer::start(H2Script::Refuse { first: 2 }).await;
    let manager = NetworkAccessManager::new();
    let reply = manager.post(h2(server.url("/refused")), "body");
    done(&reply).await;
    assert_eq!(reply.error().map(|e| e.to_string()), None);
    assert_eq!(reply.bytes().await.unwrap(), &b"/refused"[..]);
    assert_eq!(server.paths(), vec!["/refused"; 3]);
}

#[tokio::test]
async fn a_stream_refused_every_time_fails_after_bounded_retries() {
    let server = H2ScriptServer::start(H2Script::Refuse { first: usize::MAX }).await;
    let manager = NetworkAccessManager::new();
    let started = Instant::now();
    let reply = manager.get(h2(server.url("/always")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProtocolFailure),
        "{}",
        message(&reply)
    );
    assert!(
        message(&reply).contains("REFUSED_STREAM"),
        "{}",
        message(&reply)
    );
    assert_eq!(server.paths().len(), 5, "the first try and 4 resends");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "resends back off 10 + 20 + 40 + 80 ms: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn rst_stream_cancel_mid_body_is_an_error_not_a_short_success() {
    let server = H2ScriptServer::start(H2Script::CancelMidBody {
        len: 100_000,
        before: 1000,
    })
    .await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(h2(server.url("/cancel")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::OperationCanceledError),
        "{}",
        message(&reply)
    );
    assert!(message(&reply).contains("CANCEL"), "{}", message(&reply));
    assert_eq!(reply.status_code(), Some(200));
    assert_eq!(
        server.paths().len(),
        1,
        "a cancelled stream is not sent again"
    );
    // A stream reset leaves the connection in a known state: the next request reuses it.
    let again = manager.get(h2(server.url("/cancel")));
    done(&again).await;
    assert_eq!(kind(&again), Some(NetworkError::OperationCanceledError));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn max_concurrent_streams_1_with_100_requests_all_finish_in_priority_order() {
    let server = H2ScriptServer::start(H2Script::MaxConcurrentStreams {
        max: 1,
        hold: Duration::from_millis(2),
    })
    .await;
    let manager = NetworkAccessManager::new();
    // This test runs on a current-thread runtime: the requests below only start at the first
    // `.await`, all together. The first opens the connection (and takes the one stream the
    // server allows); the 100 others queue in the scheduler and start as streams free up.
    let blocker = manager.get(h2(server.url("/blocker")));
    let priorities = [Priority::Low, Priority::Normal, Priority::High];
    let replies: Vec<Reply> = (0..100)
        .map(|i| {
            let p = priorities[i % 3];
            manager.get(h2(server.url(&format!("/{p:?}/{i}"))).with_priority(p))
        })
        .collect();
    done(&blocker).await;
    for r in &replies {
        done(r).await;
        assert_eq!(r.error().map(|e| e.to_string()), None);
        assert_eq!(r.bytes().await.unwrap(), r.url().path().as_bytes());
    }
    let paths = server.paths();
    let served: Vec<&str> = paths
        .iter()
        .filter(|p| p.matches('/').count() == 2)
        .map(String::as_str)
        .collect();
    assert_eq!(served.len(), 100, "each sent once: {paths:?}");
    assert_eq!(paths[0], "/blocker");
    let rank = |p: &str| {
        if p.starts_with("/High/") {
            0
        } else if p.starts_with("/Normal/") {
            1
        } else {
            2
        }
    };
    let ranks: Vec<u8> = served.iter().map(|p| rank(p)).collect();
    let mut sorted = ranks.clone();
    sorted.sort();
    assert_eq!(ranks, sorted, "served in priority order: {served:?}");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn an_unread_reply_does_not_hold_the_only_stream_a_server_allows() {
    // MAX_CONCURRENT_STREAMS=1 and a 200 KB reply read through a 16 KiB buffer that nobody
    // reads: its stream is complete at the HTTP/2 level (the body fits the stream window), so
    // the next request must not wait for the application to read the first.
    let server = H2ScriptServer::start(H2Script::MaxConcurrentStreams {
        max: 1,
        hold: Duration::ZERO,
    })
    .await;
    let manager = NetworkAccessManager::new();
    let unread = manager.get_with(h2(server.url("/size/200000")), |r| {
        r.set_read_buffer_size(16 * 1024)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while unread.bytes_available() < 16 * 1024 {
        assert!(
            Instant::now() < deadline,
            "the first reply got its first bytes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let next = manager.get(h2(server.url("/next")));
    let body = tokio::time::timeout(Duration::from_secs(5), next.bytes())
        .await
        .expect("the second request finished within 5 s")
        .expect("the second body");
    assert_eq!(body, &b"/next"[..]);
    let first = tokio::time::timeout(GUARD, unread.bytes())
        .await
        .expect("read in time")
        .expect("the first body");
    assert_eq!(first.len(), 200_000);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_response_header_list_over_the_limit_is_a_clear_error() {
    let server = H2ScriptServer::start(H2Script::HugeHeaderList { size: 100_000 }).await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(h2(server.url("/big")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProtocolFailure),
        "{}",
        message(&reply)
    );
    assert!(
        message(&reply).contains("header list over 64 KiB"),
        "{}",
        message(&reply)
    );
    assert_eq!(server.paths().len(), 1, "not sent again");
}

#[tokio::test]
async fn a_response_header_list_under_the_limit_is_accepted() {
    let server = H2ScriptServer::start(H2Script::HugeHeaderList { size: 32 * 1024 }).await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(h2(server.url("/big")));
    done(&reply).await;
    assert_eq!(reply.error().map(|e| e.to_string()), None);
    assert_eq!(reply.header("x-big").map(|v| v.len()), Some(32 * 1024));
}

#[tokio::test]
async fn push_promise_while_push_is_disabled_is_a_connection_protocol_error() {
    // hyper's SETTINGS say ENABLE_PUSH=0; h2 treats a PUSH_PROMISE as a connection error
    // (GOAWAY PROTOCOL_ERROR), so the request on that connection fails and nothing is pushed.
    let server = H2ScriptServer::start(H2Script::PushPromise).await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(h2(server.url("/pushy")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProtocolFailure),
        "{}",
        message(&reply)
    );
    assert!(
        message(&reply).contains("PROTOCOL_ERROR"),
        "{}",
        message(&reply)
    );
    assert_eq!(
        server.paths(),
        vec!["/pushy"],
        "not sent again, nothing pushed fetched"
    );
    // The connection died of the protocol error: the next request opens a new one.
    let again = manager.get(h2(server.url("/pushy")));
    done(&again).await;
    assert_eq!(kind(&again), Some(NetworkError::ProtocolFailure));
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_peer_that_stops_reading_an_upload_hits_the_transfer_timeout() {
    let server = H2ScriptServer::start(H2Script::StopReadingUploads).await;
    let manager = NetworkAccessManager::builder()
        .transfer_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    let reply = manager.post(h2(server.url("/upload")), vec![7u8; 1024 * 1024]);
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::TimeoutError),
        "{}",
        message(&reply)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.paths(), vec!["/upload"]);
}

/// The HTTP/2 settings of `ManagerBuilder` (windows at their smallest, the adaptive window,
/// a large frame size) all carry a 4 MiB body whole over h2c.
#[tokio::test]
async fn http2_window_and_frame_settings_carry_a_large_body() {
    let server = TestServer::h2c().await;
    let configured = [
        NetworkAccessManager::builder().http2_windows(0, 0),
        NetworkAccessManager::builder().http2_adaptive_window(true),
        NetworkAccessManager::builder().http2_max_frame_size(1 << 20),
    ];
    for builder in configured {
        let manager = builder.build().unwrap();
        let request = Request::new(server.url("/bytes/4194304")).with_http2_direct(true);
        let reply = manager.get(request);
        let body = tokio::time::timeout(Duration::from_secs(30), reply.bytes());
        let body = body.await.unwrap().unwrap();
        assert_eq!(body.len(), 4 << 20);
        assert!(reply.http2_was_used());
    }
}

/// Counts the requests between their head sent and their response head, and the most at once.
#[derive(Default)]
struct InFlight {
    now: std::sync::atomic::AtomicI64,
    most: std::sync::atomic::AtomicI64,
}

impl netaccess::events::EventListener for InFlight {
    fn on_event(&self, _: &Reply, event: &netaccess::events::Event<'_>) {
        use netaccess::events::Event;
        use std::sync::atomic::Ordering::SeqCst;
        match event {
            Event::RequestHeadersSent => {
                let now = self.now.fetch_add(1, SeqCst) + 1;
                self.most.fetch_max(now, SeqCst);
            }
            Event::ResponseHeaders { .. } => {
                self.now.fetch_sub(1, SeqCst);
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_client_s_own_stream_limit_keeps_the_rest_queued() {
    let server = TestServer::h2c().await;
    let in_flight = std::sync::Arc::new(InFlight::default());
    let manager = NetworkAccessManager::builder()
        .http2_max_concurrent_streams(2)
        .event_listener(in_flight.clone())
        .build()
        .unwrap();
    let replies: Vec<Reply> = (0..8)
        .map(|_| manager.get(h2(server.url("/delay/50"))))
        .collect();
    for reply in &replies {
        done(reply).await;
        assert!(reply.error().is_none(), "{:?}", reply.error());
        assert!(reply.http2_was_used());
    }
    let most = in_flight.most.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(most, 2, "at most two streams at once, and two were used");
    assert_eq!(server.stats().connections_accepted, 1);
}
