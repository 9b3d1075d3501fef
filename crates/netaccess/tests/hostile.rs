//! Hostile servers and bad input (issue 10), each against a real socket on loopback:
//! Content-Encoding chains, URLs HTTP cannot carry, panicking slots, body-size limits, the
//! absolute cap on decoded bytes, and passwords kept out of messages.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use netaccess::{NetworkAccessManager, NetworkError, Request};
use netaccess_testserver::TestServer;
use support::{done, done_within, response, ScriptedServer};
use tokio::io::AsyncReadExt;

async fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    async_compression::tokio::bufread::GzipEncoder::new(data)
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn content_encoding_chain_over_five_is_a_protocol_failure() {
    let one_byte = gzip(b"x").await;
    let body = one_byte.clone();
    let server = ScriptedServer::start(move |_, head| {
        let n = if head.contains("GET /six") { 6 } else { 80_000 };
        let codings = vec!["gzip"; n].join(",");
        response("200 OK", &[&format!("Content-Encoding: {codings}")], &body)
    })
    .await;
    let manager = NetworkAccessManager::new();
    for path in ["/six", "/eighty-thousand"] {
        let started = Instant::now();
        let reply = manager.get(Request::new(server.url(path)));
        done(&reply).await;
        let error = reply.error().expect("refused");
        assert_eq!(
            error.kind(),
            NetworkError::ProtocolFailure,
            "{path}: {error}"
        );
        assert!(error.message().contains("more than 5 codings"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    // Five stacked codings are still decoded.
    let mut five = b"hello".to_vec();
    for _ in 0..5 {
        five = gzip(&five).await;
    }
    let stacked = ScriptedServer::start(move |_, _| {
        response(
            "200 OK",
            &["Content-Encoding: gzip, gzip,gzip ,gzip,gzip"],
            &five,
        )
    })
    .await;
    let reply = manager.get(Request::new(stacked.url("/")));
    assert_eq!(&reply.bytes().await.expect("decoded")[..], b"hello");
}

#[tokio::test]
async fn a_redirect_to_a_70kb_location_finishes_with_invalid_operation() {
    let long = format!("/?{}", "a".repeat(70_000));
    let server = ScriptedServer::start(move |_, _| {
        response("302 Found", &[&format!("Location: {long}")], b"")
    })
    .await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/start")));
    done(&reply).await;
    let error = reply.error().expect("refused");
    assert_eq!(
        error.kind(),
        NetworkError::ProtocolInvalidOperationError,
        "{error}"
    );
    assert!(
        error.message().len() < 1024,
        "the message quotes a short URL"
    );
    assert_eq!(
        server.connections(),
        1,
        "the long URL never reached a socket"
    );
    // The manager keeps serving.
    let ok = TestServer::http1().await;
    assert_eq!(
        &manager
            .get(Request::new(ok.url("/hello")))
            .bytes()
            .await
            .unwrap()[..],
        b"hello"
    );
}

#[tokio::test]
async fn urls_the_http_crate_refuses_finish_with_invalid_operation() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let long = server.url(&format!("/{}", "b".repeat(70_000)));
    // A host with a character outside RFC 3986 that the URL parser keeps.
    let odd_host = format!("http://a{{b}}c:{}/", server.port());
    for url in [long.as_str(), odd_host.as_str()] {
        let reply = manager.get(Request::new(url));
        done(&reply).await;
        let error = reply.error().expect("refused");
        assert_eq!(
            error.kind(),
            NetworkError::ProtocolInvalidOperationError,
            "{error}"
        );
    }
    assert_eq!(server.stats().requests_total, 0);
}

#[tokio::test]
async fn a_redirect_to_a_host_http_cannot_carry_is_refused() {
    let server =
        ScriptedServer::start(|_, _| response("302 Found", &["Location: http://x{y}z/"], b""))
            .await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/")));
    done(&reply).await;
    let error = reply.error().expect("refused");
    assert_eq!(
        error.kind(),
        NetworkError::ProtocolInvalidOperationError,
        "{error}"
    );
}

#[tokio::test]
async fn through_a_proxy_in_absolute_form_a_bad_host_is_refused() {
    // The "proxy" is a scripted server: nothing must reach it.
    let proxy = ScriptedServer::start(|_, _| response("200 OK", &[], b"proxied")).await;
    let manager = NetworkAccessManager::builder()
        .proxy(netaccess::Proxy::parse(&format!("http://127.0.0.1:{}", proxy.port)).unwrap())
        .build()
        .unwrap();
    let reply = manager.get(Request::new("http://a{b}c/"));
    done(&reply).await;
    let error = reply.error().expect("refused");
    assert_eq!(
        error.kind(),
        NetworkError::ProtocolInvalidOperationError,
        "{error}"
    );
    assert_eq!(proxy.connections(), 0);
}

#[tokio::test]
async fn a_slot_that_panics_still_lets_the_reply_finish() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get_with(Request::new(server.url("/hello")), |reply| {
        reply
            .meta_data_changed()
            .connect(|_| panic!("a slot panicked on purpose"));
    });
    done_within(&reply, Duration::from_secs(5)).await;
    let error = reply.error().expect("finished with an error");
    assert!(error.message().contains("panic"), "{error}");
    // The manager keeps serving, on the same origin.
    let next = manager.get(Request::new(server.url("/hello")));
    assert_eq!(&next.bytes().await.expect("served")[..], b"hello");
}

#[tokio::test]
async fn a_reply_finishes_when_its_runtime_shuts_down() {
    let server = TestServer::http1().await;
    let url = server.url("/never-respond");
    let reply = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let manager = NetworkAccessManager::builder()
            .runtime(runtime.handle().clone())
            .build()
            .unwrap();
        let reply = runtime.block_on(async {
            let reply = manager.get(Request::new(url));
            // Let the request reach the server.
            tokio::time::sleep(Duration::from_millis(200)).await;
            reply
        });
        drop(runtime);
        reply
    })
    .join()
    .unwrap();
    assert!(reply.is_finished(), "the dropped task finished its reply");
    assert!(reply.error().is_some());
}

#[tokio::test]
async fn max_body_size_refuses_a_long_content_length_before_the_body() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/bytes/100000")).with_max_body_size(1000));
    done(&reply).await;
    let error = reply.error().expect("too large");
    assert_eq!(error.kind(), NetworkError::UnknownContentError, "{error}");
    assert!(error.message().contains("1000-byte limit"), "{error}");
    assert_eq!(
        reply.read_all().len(),
        0,
        "nothing of the body was delivered"
    );
    // Exactly the limit is fine.
    let reply = manager.get(Request::new(server.url("/bytes/1000")).with_max_body_size(1000));
    assert_eq!(reply.bytes().await.expect("fits").len(), 1000);
}

#[tokio::test]
async fn max_body_size_stops_a_chunked_body_at_the_limit() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .max_body_size(50_000)
        .build()
        .unwrap();
    let reply = manager.get(Request::new(server.url("/bytes/300000?chunked=1")));
    done(&reply).await;
    let error = reply.error().expect("too large");
    assert_eq!(error.kind(), NetworkError::UnknownContentError, "{error}");
    assert!(reply.read_all().len() <= 50_000);
    // The request's own limit wins over the manager's.
    let reply = manager
        .get(Request::new(server.url("/bytes/300000?chunked=1")).with_max_body_size(400_000));
    assert_eq!(reply.bytes().await.expect("fits").len(), 300_000);
}

#[tokio::test]
async fn decoded_bytes_have_an_absolute_cap_besides_the_ratio() {
    // Random letters of a 16-letter alphabet (about 2:1), far below the 40:1 ratio: only the
    // absolute cap stops it.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let plain: Vec<u8> = (0..4_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"abcdefghijklmnop"[(state >> 60) as usize]
        })
        .collect();
    let encoded = Arc::new(gzip(&plain).await);
    let ratio = plain.len() / encoded.len();
    assert!(ratio < 40, "ratio {ratio}");
    let body = encoded.clone();
    let server =
        ScriptedServer::start(move |_, _| response("200 OK", &["Content-Encoding: gzip"], &body))
            .await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(
        Request::new(server.url("/"))
            .with_decompressed_safety_check_threshold(Some(1024))
            .with_max_decoded_size(Some(1 << 20)),
    );
    done(&reply).await;
    let error = reply.error().expect("capped");
    assert_eq!(error.kind(), NetworkError::ProtocolFailure, "{error}");
    assert!(error.message().contains("1048576-byte limit"), "{error}");
    // The default cap is 1 GiB; without a cap the body decodes whole.
    assert_eq!(
        Request::new("http://127.0.0.1/").max_decoded_size(),
        Some(1 << 30)
    );
    let reply = manager.get(Request::new(server.url("/")).with_max_decoded_size(None));
    assert_eq!(reply.bytes().await.expect("decoded").len(), plain.len());
}

#[tokio::test]
async fn url_passwords_never_appear_in_errors_or_debug() {
    let manager = NetworkAccessManager::new();
    // A closed port: the connection is refused and the error quotes the URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://carol:pw4cache99@127.0.0.1:{closed}/x");
    let reply = manager.get(Request::new(&url).with_header("Authorization", "Basic c2VjcmV0"));
    done(&reply).await;
    let error = reply.error().expect("refused");
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{:?}", reply.request()),
        format!("{reply:?}"),
    ] {
        assert!(!shown.contains("pw4cache99"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
    let debug = format!(
        "{:?}",
        Request::new("http://u:hunter2@127.0.0.1/")
            .with_header("Cookie", "session=abc123")
            .with_header("Proxy-Authorization", "Basic eHh4")
            .with_header("Accept", "text/plain")
    );
    assert!(
        !debug.contains("hunter2") && !debug.contains("abc123") && !debug.contains("eHh4"),
        "{debug}"
    );
    assert!(
        debug.contains("text/plain") && debug.contains("<redacted>"),
        "{debug}"
    );
    let unparsable = format!("{:?}", Request::new("http://u:hunter2@[bad/"));
    assert!(!unparsable.contains("hunter2"), "{unparsable}");
}

#[tokio::test]
async fn a_content_length_near_two_to_the_64_fails_cleanly() {
    let server = ScriptedServer::start(|_, head| {
        let length = if head.contains("/over") {
            "18446744073709551616"
        } else if head.contains("/big") {
            "9223372036854775807"
        } else {
            "18446744073709551615"
        };
        format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\nabc").into_bytes()
    })
    .await;
    let manager = NetworkAccessManager::new();
    for path in ["/max", "/over", "/big"] {
        let progress = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = progress.clone();
        let reply = manager.get_with(Request::new(server.url(path)), move |reply| {
            reply
                .download_progress()
                .connect(move |p| seen.lock().unwrap().push(*p));
        });
        done(&reply).await;
        let error = reply.error().expect("a short body is an error");
        assert!(!error.message().is_empty(), "{path}: {error}");
        for (received, _total) in progress.lock().unwrap().iter() {
            assert!(*received <= 3);
        }
    }
    // With a size limit it fails before reading the body.
    let reply = manager.get(Request::new(server.url("/big")).with_max_body_size(1 << 30));
    done(&reply).await;
    assert_eq!(
        reply.error().unwrap().kind(),
        NetworkError::UnknownContentError
    );
}

#[tokio::test]
async fn huge_freshness_numbers_from_a_server_do_not_overflow() {
    let server = ScriptedServer::start(|_, head| {
        let headers: &[&str] = if head.contains("/age") {
            &["Cache-Control: max-age=60", "Age: 18446744073709551616"]
        } else if head.contains("/max-age") {
            &["Cache-Control: max-age=99999999999999999999999, s-maxage=18446744073709551615"]
        } else if head.contains("/expires") {
            &["Expires: Fri, 31 Dec 9999 23:59:59 GMT"]
        } else {
            &["Retry-After: 18446744073709551616"]
        };
        response("200 OK", headers, b"body")
    })
    .await;
    let manager = NetworkAccessManager::builder()
        .cache(Arc::new(netaccess::MemoryCache::default()))
        .build()
        .unwrap();
    for path in ["/age", "/max-age", "/expires", "/retry-after"] {
        for _ in 0..2 {
            let reply = manager.get(Request::new(server.url(path)));
            assert_eq!(&reply.bytes().await.expect(path)[..], b"body");
            if path == "/retry-after" {
                assert_eq!(reply.retry_after(), Some(Duration::from_secs(1 << 31)));
            }
        }
    }
}

/// Every `tracing` event's fields and message, as text.
#[derive(Default, Clone)]
struct Recorded(Arc<std::sync::Mutex<Vec<String>>>);

impl tracing::Subscriber for Recorded {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Text<'a>(&'a mut String);
        impl tracing::field::Visit for Text<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut line = String::new();
        event.record(&mut Text(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn url_passwords_never_reach_tracing() {
    let recorded = Recorded::default();
    let _guard = tracing::subscriber::set_default(recorded.clone());
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // Runs on this (current-thread) runtime, so the events reach the subscriber above.
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(format!(
        "http://carol:pw4cache99@127.0.0.1:{closed}/x"
    )));
    done(&reply).await;
    let lines = recorded.0.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("reply failed")),
        "{lines:?}"
    );
    for line in &lines {
        assert!(!line.contains("pw4cache99"), "{line}");
    }
}
