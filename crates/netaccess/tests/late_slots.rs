//! State replay: a slot connected after `get()` returns, at once or after other work, still
//! sees every event exactly once, as a slot connected in Qt before the event loop runs.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netaccess::{NetworkAccessManager, Request};
use netaccess_testserver::TestServer;
use support::{done, tls_manager};

#[derive(Default)]
struct Seen {
    finished: AtomicUsize,
    meta: AtomicUsize,
    error: AtomicUsize,
    ready_read: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_connected_after_get_miss_nothing_in_10000_replies() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let mut missed = Vec::new();
    for batch in 0..50 {
        let mut replies = Vec::new();
        for i in 0..200 {
            let n = batch * 200 + i;
            let path = if n % 10 == 0 { "/status/404" } else { "/hello" };
            let reply = manager.get(Request::new(server.url(path)));
            if n % 40 == 1 {
                // Other work between get() and connect(): the request may be over by now.
                std::thread::sleep(Duration::from_millis(1));
            }
            let seen = Arc::new(Seen::default());
            let s = seen.clone();
            reply.finished().connect(move |_| {
                s.finished.fetch_add(1, Ordering::SeqCst);
            });
            let s = seen.clone();
            reply.meta_data_changed().connect(move |_| {
                s.meta.fetch_add(1, Ordering::SeqCst);
            });
            let s = seen.clone();
            reply.error_occurred().connect(move |_| {
                s.error.fetch_add(1, Ordering::SeqCst);
            });
            let s = seen.clone();
            reply.ready_read().connect(move |r| {
                s.ready_read.fetch_add(1, Ordering::SeqCst);
                r.read_all();
            });
            replies.push((n, path, reply, seen));
        }
        for (n, path, reply, seen) in replies {
            done(&reply).await;
            let errors = usize::from(path == "/status/404");
            let counts = (
                seen.finished.load(Ordering::SeqCst),
                seen.meta.load(Ordering::SeqCst),
                seen.error.load(Ordering::SeqCst),
            );
            if counts != (1, 1, errors) || seen.ready_read.load(Ordering::SeqCst) == 0 {
                missed.push((n, counts, seen.ready_read.load(Ordering::SeqCst)));
            }
        }
    }
    assert!(
        missed.is_empty(),
        "{} of 10000 replies missed or repeated an event: {:?}",
        missed.len(),
        &missed[..missed.len().min(10)]
    );
}

#[tokio::test]
async fn a_finished_reply_replays_its_state_to_new_slots() {
    let server = TestServer::tls().await;
    let manager = tls_manager(&server);
    let reply = manager.get(Request::new(server.url("/bytes/5000")));
    done(&reply).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(std::sync::Mutex::new(None));
    let c = calls.clone();
    let connection = reply.finished().connect(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1, "finished ran at once");
    assert!(
        !connection.is_connected(),
        "nothing fires after finished: the slot is not kept"
    );
    let c = calls.clone();
    reply.encrypted().connect(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let c = calls.clone();
    reply.meta_data_changed().connect(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let p = progress.clone();
    reply.download_progress().connect(move |value| {
        *p.lock().unwrap() = Some(*value);
    });
    let c = calls.clone();
    reply.error_occurred().connect(move |_| {
        c.fetch_add(100, Ordering::SeqCst);
    });
    let c = calls.clone();
    reply.ready_read().connect(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    // finished, encrypted, meta_data_changed, ready_read (5000 bytes wait); no error.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(*progress.lock().unwrap(), Some((5000, Some(5000))));
    reply.read_all();
    let c = calls.clone();
    reply.ready_read().connect(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 4, "no bytes wait any more");
}

#[tokio::test]
async fn a_failed_reply_replays_its_error() {
    let manager = NetworkAccessManager::new();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let reply = manager.get(Request::new(format!("http://127.0.0.1:{closed}/")));
    done(&reply).await;
    let got = Arc::new(std::sync::Mutex::new(None));
    let g = got.clone();
    reply.error_occurred().connect(move |(_, e)| {
        *g.lock().unwrap() = Some(e.kind());
    });
    assert_eq!(
        *got.lock().unwrap(),
        Some(netaccess::NetworkError::ConnectionRefusedError)
    );
}
