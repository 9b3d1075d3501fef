//! The seed's first snippet, ported: a manager, its `finished` signal connected to a handler,
//! one `get`. The handle `get` returns is dropped at once; the reply still runs to its end and
//! the handler reads the body (Qt's `replyFinished` slot).
//!
//! ```sh
//! cargo run --example simple_download -- http://127.0.0.1:8080/
//! ```
//! No tokio runtime here: the manager runs on one of its own.

use std::sync::mpsc;
use std::time::Duration;

use netaccess::{NetworkAccessManager, Reply, Request};

fn reply_finished(reply: &Reply) {
    let body = reply.read_all();
    match reply.error() {
        None => println!(
            "{} -> {} ({} bytes)",
            reply.url(),
            reply.status_code().unwrap_or(0),
            body.len()
        ),
        Some(e) => println!("{} -> error {} ({})", reply.url(), e.kind(), e.message()),
    }
}

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: simple_download URL");
        std::process::exit(2);
    };
    let manager = NetworkAccessManager::new();
    let (done_tx, done_rx) = mpsc::channel();
    manager.finished().connect(move |reply| {
        reply_finished(reply);
        let _ = done_tx.send(reply.error().is_none());
    });
    manager.get(Request::new(url));
    let ok = done_rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or(false);
    std::process::exit(if ok { 0 } else { 1 });
}
