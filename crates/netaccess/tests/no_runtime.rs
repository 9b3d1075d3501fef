//! A manager created with no tokio runtime around runs on its own runtime; replies are
//! observed from signal slots and a plain thread blocks on a channel.

use std::sync::mpsc;
use std::time::Duration;

use netaccess::{NetworkAccessManager, Request};
use netaccess_testserver::TestServer;

#[test]
fn works_without_a_caller_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(TestServer::http1());
    // The manager is created outside any runtime context.
    let manager = NetworkAccessManager::new();
    let (tx, rx) = mpsc::channel();
    let slot = manager.finished().connect(move |reply| {
        let _ = tx.send((reply.status_code(), reply.read_all()));
    });
    for _ in 0..3 {
        manager.get(Request::new(server.url("/hello")));
    }
    for _ in 0..3 {
        let (status, body) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!((status, &body[..]), (Some(200), &b"hello"[..]));
    }
    // The slot above drains every finished reply: disconnect it before reading one directly.
    slot.disconnect();
    // A future of the reply can be driven by any executor.
    let reply = manager.get(Request::new(server.url("/hello")));
    let body = rt.block_on(reply.text()).unwrap();
    assert_eq!(body, "hello");
    // Three parallel requests opened at most three connections; the fourth reused one.
    assert!(
        server.stats().connections_accepted <= 3,
        "{:?}",
        server.stats()
    );
}
