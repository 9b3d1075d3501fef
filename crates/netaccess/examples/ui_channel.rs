//! Cookbook: an event-loop integration. Slots run on the runtime's threads; a UI toolkit
//! wants its own thread. Each slot sends a message down a channel, and the "UI thread" (here
//! a plain thread with a loop) receives them in order and updates its state.
//!
//! ```sh
//! cargo run --example ui_channel -- http://127.0.0.1:8080/hello http://127.0.0.1:8080/bytes/100
//! ```

use std::sync::mpsc;

use netaccess::{NetworkAccessManager, Request};

/// What the UI thread is told.
enum UiEvent {
    Finished {
        url: String,
        status: Option<u16>,
        bytes: usize,
    },
    AllDone,
}

fn main() {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        eprintln!("usage: ui_channel URL...");
        std::process::exit(2);
    }
    let (to_ui, events) = mpsc::channel::<UiEvent>();

    // The UI thread: the only one touching the "widgets".
    let ui = std::thread::spawn(move || {
        let mut rows = Vec::new();
        while let Ok(event) = events.recv() {
            match event {
                UiEvent::Finished { url, status, bytes } => {
                    rows.push(format!("{url}: {status:?}, {bytes} bytes"));
                }
                UiEvent::AllDone => break,
            }
        }
        for row in &rows {
            println!("ui: {row}");
        }
        rows.len()
    });

    // No runtime in main: the manager runs on one of its own.
    let manager = NetworkAccessManager::new();
    let remaining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(urls.len()));
    let sender = std::sync::Mutex::new(to_ui);
    manager.finished().connect(move |reply| {
        let event = UiEvent::Finished {
            url: reply.url().to_string(),
            status: reply.status().map(|s| s.as_u16()),
            bytes: reply.read_all().len(),
        };
        let sender = sender.lock().unwrap_or_else(|e| e.into_inner());
        let _ = sender.send(event);
        if remaining.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            let _ = sender.send(UiEvent::AllDone);
        }
    });
    let replies: Vec<_> = urls.iter().map(|u| manager.get(Request::new(u))).collect();
    let shown = ui.join().unwrap_or(0);
    println!("{shown} rows shown for {} replies", replies.len());
}
