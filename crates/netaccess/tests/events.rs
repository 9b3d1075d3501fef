//! The event listener and each reply's timings, against real servers: the documented order
//! of events for a new connection, a redirect, a retry and a cache hit; timings that never
//! decrease; reuse, the remote address and the protocol; TLS phases; the request's span.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use netaccess::events::{Event, EventListener, Timings};
use netaccess::{MemoryCache, NetworkAccessManager, Reply, Request, RetryPolicy};
use netaccess_testserver::TestServer;
use support::{done, response, ScriptedServer};

/// Every event's name, per request path.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, &'static str)>>);

impl EventListener for Recorder {
    fn on_event(&self, reply: &Reply, event: &Event<'_>) {
        let path = reply.request().url().map(|u| u.path().to_owned());
        let path = path.unwrap_or_default();
        self.0.lock().unwrap().push((path, event.name()));
    }
}

impl Recorder {
    /// The names heard for requests to `path`, in order.
    fn names(&self, path: &str) -> Vec<&'static str> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, name)| *name)
            .collect()
    }
}

fn listening(builder: netaccess::ManagerBuilder) -> (NetworkAccessManager, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let manager = builder.event_listener(recorder.clone()).build().unwrap();
    (manager, recorder)
}

/// The timings in field order, each present, never decreasing.
fn assert_monotonic(t: &Timings, phases: &[Option<Duration>]) {
    let mut last = Duration::ZERO;
    for (i, phase) in phases.iter().enumerate() {
        let at = phase.unwrap_or_else(|| panic!("phase {i} missing in {t:?}"));
        assert!(at >= last, "phase {i} went back in {t:?}");
        last = at;
    }
}

const NEW_CONNECTION: [&str; 10] = [
    "dispatched",
    "dns_start",
    "dns_end",
    "connect_start",
    "connect_end",
    "connection_acquired",
    "request_headers_sent",
    "request_body_sent",
    "response_headers",
    "connection_released",
];

#[tokio::test]
async fn a_redirect_gives_the_documented_order_of_events() {
    let server = TestServer::http1().await;
    let (manager, recorder) = listening(NetworkAccessManager::builder());
    let reply = manager.get(Request::new(server.url("/redirect/1")));
    assert_eq!(reply.text().await.unwrap(), "hello");
    let mut expected = vec!["call_start"];
    expected.extend(NEW_CONNECTION);
    expected.extend([
        "redirect",
        "dispatched",
        "connection_acquired",
        "request_headers_sent",
        "request_body_sent",
        "response_headers",
        "response_body_end",
        "connection_released",
        "call_end",
    ]);
    assert_eq!(recorder.names("/redirect/1"), expected);
    let t = reply.timings();
    assert!(t.reused_connection, "the second hop reused the connection");
    assert_eq!(t.connects, 1);
    assert_eq!(t.protocol, Some(netaccess::http::Version::HTTP_11));
    assert_eq!(t.remote_addr, Some(server.addr()));
    assert_monotonic(
        &t,
        &[
            t.queued,
            t.dns_done,
            t.connected,
            t.request_sent,
            t.first_byte,
            t.total,
        ],
    );
    assert_eq!(t.tls_done, None);
}

#[tokio::test]
async fn a_retry_gives_the_documented_order_of_events() {
    let server = ScriptedServer::start(|index, _| {
        if index == 0 {
            response("503 Service Unavailable", &["Connection: close"], b"busy")
        } else {
            response("200 OK", &[], b"ok")
        }
    })
    .await;
    let policy =
        RetryPolicy::new(2).with_backoff(Duration::from_millis(1), Duration::from_millis(2));
    let (manager, recorder) = listening(NetworkAccessManager::builder().retry_policy(policy));
    let reply = manager.get(Request::new(server.url("/flaky")));
    assert_eq!(reply.text().await.unwrap(), "ok");
    let mut expected = vec!["call_start"];
    expected.extend(NEW_CONNECTION);
    expected.push("retry");
    expected.extend(&NEW_CONNECTION[..9]);
    expected.extend(["response_body_end", "connection_released", "call_end"]);
    assert_eq!(recorder.names("/flaky"), expected);
    let t = reply.timings();
    assert_eq!(t.connects, 2);
    assert!(!t.reused_connection);
    assert_eq!(reply.retries(), 1);
}

#[tokio::test]
async fn a_cache_hit_gives_the_documented_order_of_events() {
    let server = TestServer::http1().await;
    let builder = NetworkAccessManager::builder().cache(Arc::new(MemoryCache::default()));
    let (manager, recorder) = listening(builder);
    let url = server.url("/bytes/64?cache_control=max-age%3D60");
    let first = manager.get(Request::new(url.as_str()));
    assert_eq!(first.bytes().await.unwrap().len(), 64);
    let miss = recorder.names("/bytes/64");
    assert_eq!(miss[..2], ["call_start", "cache_miss"]);
    assert_eq!(miss.last(), Some(&"call_end"));
    recorder.0.lock().unwrap().clear();
    let second = manager.get(Request::new(url.as_str()));
    assert_eq!(second.bytes().await.unwrap().len(), 64);
    assert!(second.source_is_from_cache());
    assert_eq!(
        recorder.names("/bytes/64"),
        ["call_start", "cache_hit", "call_end"]
    );
    let t = second.timings();
    assert_eq!((t.connects, t.first_byte, t.remote_addr), (0, None, None));
    assert!(t.total.is_some());
}

#[tokio::test]
async fn timings_cover_tls_and_reuse() {
    let server = TestServer::tls().await;
    let manager = support::tls_manager(&server);
    let first = manager.get(Request::new(server.url("/hello")));
    assert_eq!(first.text().await.unwrap(), "hello");
    let t = first.timings();
    assert!(!t.reused_connection);
    // The same timings, read with the other attributes.
    assert_eq!(first.meta().timings, t);
    assert_monotonic(
        &t,
        &[
            t.queued,
            t.dns_done,
            t.connected,
            t.tls_done,
            t.request_sent,
            t.first_byte,
            t.total,
        ],
    );
    let second = manager.get(Request::new(server.url("/hello")));
    done(&second).await;
    let t = second.timings();
    assert!(t.reused_connection);
    assert_eq!(
        (t.dns_done, t.connected, t.tls_done, t.connects),
        (None, None, None, 0)
    );
    assert_monotonic(&t, &[t.queued, t.request_sent, t.first_byte, t.total]);
}

#[tokio::test]
async fn a_refused_address_is_a_connect_failed_event_and_the_call_fails() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (manager, recorder) = listening(NetworkAccessManager::builder());
    let reply = manager.get(Request::new(format!("http://{closed}/gone")));
    done(&reply).await;
    assert!(reply.error().is_some());
    assert_eq!(
        recorder.names("/gone"),
        [
            "call_start",
            "dispatched",
            "dns_start",
            "dns_end",
            "connect_start",
            "connect_failed",
            "call_failed"
        ]
    );
    assert!(reply.timings().total.is_some());
}

#[tokio::test]
async fn an_abort_is_a_canceled_event() {
    let server = TestServer::http1().await;
    let (manager, recorder) = listening(NetworkAccessManager::builder());
    let reply = manager.get(Request::new(server.url("/never-respond")));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let _c = reply.meta_data_changed().connect(|_| {});
    // Wait until the request is on the wire, then abort.
    let sent = reply.request_sent().connect(move |_| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
    });
    rx.await.unwrap();
    drop(sent);
    reply.abort();
    done(&reply).await;
    // The task hears the cancellation on its next poll.
    for _ in 0..100 {
        if recorder.names("/never-respond").last() == Some(&"canceled") {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(recorder.names("/never-respond").last(), Some(&"canceled"));
}

#[test]
fn events_go_to_the_request_span_without_passwords() {
    let recorded = Recorded::default();
    let _guard = tracing::subscriber::set_default(recorded.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = TestServer::http1().await;
        let manager = NetworkAccessManager::new();
        let url = server
            .url("/redirect/1")
            .replace("http://", "http://dave:s3cret77@");
        let reply = manager.get(Request::new(url));
        done(&reply).await;
    });
    let lines = recorded.0.lock().unwrap().clone();
    let all = lines.join("\n");
    assert!(all.contains("span request"), "{all}");
    assert!(
        lines.iter().any(|l| l.contains("redirect http://")),
        "{all}"
    );
    assert!(lines.iter().any(|l| l.contains("call_end")), "{all}");
    assert!(!all.contains("s3cret77"), "{all}");
}

/// Spans and events as text lines.
#[derive(Default, Clone)]
struct Recorded(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Recorded {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut line = format!("span {} ", attrs.metadata().name());
        attrs.record(&mut Text(&mut line));
        self.0.lock().unwrap().push(line);
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = String::from("record ");
        values.record(&mut Text(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = String::new();
        event.record(&mut Text(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Text<'a>(&'a mut String);

impl tracing::field::Visit for Text<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

/// Counts `DnsEnd` events by whether a resolver was asked.
#[derive(Default)]
struct DnsCount {
    asked: std::sync::atomic::AtomicUsize,
    spared: std::sync::atomic::AtomicUsize,
}

impl EventListener for DnsCount {
    fn on_event(&self, _: &Reply, event: &Event<'_>) {
        use std::sync::atomic::Ordering::SeqCst;
        if let Event::DnsEnd {
            resolver_spared, ..
        } = event
        {
            let counter = if *resolver_spared {
                &self.spared
            } else {
                &self.asked
            };
            counter.fetch_add(1, SeqCst);
        }
    }
}

/// Every name is loopback.
struct Loopback;

impl netaccess::Resolve for Loopback {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
    ) -> netaccess::BoxFuture<'a, std::io::Result<Vec<std::net::IpAddr>>> {
        Box::pin(async { Ok(vec![std::net::IpAddr::from([127, 0, 0, 1])]) })
    }
}

#[tokio::test]
async fn the_dns_cache_is_hit_and_counted() {
    use std::sync::atomic::Ordering::SeqCst;
    let server = TestServer::http1().await;
    let count = Arc::new(DnsCount::default());
    let manager = NetworkAccessManager::builder()
        .resolver(Arc::new(Loopback))
        .event_listener(count.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        let url = format!("http://cached.test:{}/hello", server.port());
        let reply = manager.get(Request::new(url));
        assert_eq!(reply.text().await.unwrap(), "hello");
        manager.clear_connection_cache(); // the next request resolves again
    }
    assert_eq!(count.asked.load(SeqCst), 1);
    assert_eq!(count.spared.load(SeqCst), 2, "two answers from the cache");
}
