//! The seed's second snippet, ported: a request with a raw `User-Agent: MyOwnBrowser 1.0`
//! header, and handlers on the reply's `ready_read`, `error_occurred` and `ssl_errors`.
//!
//! ```sh
//! cargo run --example involved -- https://127.0.0.1:8443/ [CA.pem]
//! ```
//! The optional second argument is a PEM file of a CA to trust besides the system's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use netaccess::{NetworkAccessManager, Request};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: involved URL [CA.pem]");
        std::process::exit(2);
    };
    let mut builder = NetworkAccessManager::builder();
    if let Some(ca) = args.next() {
        let pem = std::fs::read(&ca).unwrap_or_else(|e| panic!("cannot read {ca}: {e}"));
        builder = builder.add_root_certificate_pem(&pem);
    }
    let manager = builder.build().unwrap_or_else(|e| {
        eprintln!("involved: {e}");
        std::process::exit(2);
    });

    let request = Request::new(url).with_header("User-Agent", "MyOwnBrowser 1.0");

    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    // Qt connects right after get(): its signals wait for the event loop. Here the request
    // runs at once on the runtime, so the handlers are connected before it starts.
    let reply = manager.get_with(request, |reply| {
        reply.ready_read().connect(move |reply| {
            let chunk = reply.read_all(); // slotReadyRead
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        });
        reply.error_occurred().connect(|(_reply, error)| {
            eprintln!("error: {} ({})", error.kind(), error.message()); // slotError
        });
        reply.ssl_errors().connect(|(_reply, errors)| {
            for e in errors {
                eprintln!("ssl error: {:?}: {}", e.kind(), e.message()); // slotSslErrors
            }
        });
    });

    reply.finished().await;
    let read = received.load(Ordering::Relaxed) + reply.read_all().len() as u64;
    println!(
        "status {} read {read} bytes",
        reply.status_code().map_or("none".into(), |s| s.to_string())
    );
    std::process::exit(if reply.error().is_none() { 0 } else { 1 });
}
