//! Retries under a `RetryPolicy`, against scripted servers: retryable statuses (with and
//! without `Retry-After`), connection failures, the method and body rules, the count, and
//! the per-origin budget.

mod support;

use std::time::Duration;

use netaccess::{Body, NetworkAccessManager, NetworkError, Request, RetryPolicy};
use support::{done, kind, response, ScriptedServer};

/// A manager retrying up to `n` times with 1-5 ms waits.
fn retrying(n: u32) -> NetworkAccessManager {
    NetworkAccessManager::builder()
        .retry_policy(
            RetryPolicy::new(n).with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .build()
        .unwrap()
}

/// Answers 503 to the first `failures` connections, then 200 "ok".
async fn flaky(failures: usize, extra: &'static [&'static str]) -> ScriptedServer {
    ScriptedServer::start(move |index, _| {
        if index < failures {
            response("503 Service Unavailable", extra, b"busy")
        } else {
            response("200 OK", &[], b"ok")
        }
    })
    .await
}

#[tokio::test]
async fn a_retryable_status_is_retried_until_it_succeeds() {
    let server = flaky(2, &[]).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let reply = retrying(3).get_with(Request::new(server.url("/")), move |reply| {
        reply
            .retrying()
            .connect(move |(n, wait)| record.lock().unwrap().push((*n, *wait)));
    });
    assert_eq!(reply.text().await.unwrap(), "ok");
    assert_eq!(server.connections(), 3);
    assert_eq!(reply.retries(), 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2]);
    assert!(seen
        .iter()
        .all(|(_, wait)| *wait <= Duration::from_millis(5)));
}

#[tokio::test]
async fn past_the_count_the_last_response_is_delivered() {
    let server = flaky(10, &[]).await;
    let reply = retrying(2).get(Request::new(server.url("/")));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ServiceUnavailableError));
    assert_eq!(reply.bytes().await.unwrap(), "busy");
    assert_eq!(server.connections(), 3, "the first try and two retries");
}

#[tokio::test]
async fn no_policy_means_no_retry() {
    let server = flaky(1, &[]).await;
    let reply = NetworkAccessManager::new().get(Request::new(server.url("/")));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ServiceUnavailableError));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn retry_after_is_waited_for_and_too_long_a_wait_is_not() {
    let server = flaky(1, &["Retry-After: 1"]).await;
    let started = std::time::Instant::now();
    let reply = retrying(1).get(Request::new(server.url("/")));
    assert_eq!(reply.text().await.unwrap(), "ok");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as asked"
    );

    let server = flaky(1, &["Retry-After: 3600"]).await;
    let reply = retrying(1).get(Request::new(server.url("/")));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ServiceUnavailableError));
    assert_eq!(server.connections(), 1, "an hour is past the 60 s cap");
}

#[tokio::test]
async fn two_503s_with_retry_after_1_then_200_take_exactly_3_requests_and_the_waits() {
    let server = flaky(2, &["Retry-After: 1"]).await;
    let waits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = waits.clone();
    let started = std::time::Instant::now();
    let reply = retrying(3).get_with(Request::new(server.url("/")), move |reply| {
        reply
            .retrying()
            .connect(move |(_, wait)| record.lock().unwrap().push(*wait));
    });
    assert_eq!(reply.text().await.unwrap(), "ok");
    assert_eq!(server.connections(), 3, "exactly three requests");
    assert_eq!(
        *waits.lock().unwrap(),
        [Duration::from_secs(1), Duration::from_secs(1)],
        "each wait is the server's Retry-After"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "both waits honoured"
    );
}

#[tokio::test]
async fn post_is_retried_only_by_opt_in_and_a_stream_body_never() {
    let server = flaky(1, &[]).await;
    let reply = retrying(2).post(Request::new(server.url("/")), "data");
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ServiceUnavailableError));
    assert_eq!(server.connections(), 1, "POST is not idempotent");

    let server = flaky(1, &[]).await;
    let opted = NetworkAccessManager::builder()
        .retry_policy(
            RetryPolicy::new(2)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(1))
                .with_non_idempotent(true),
        )
        .build()
        .unwrap();
    let reply = opted.post(Request::new(server.url("/")), "data");
    assert_eq!(reply.text().await.unwrap(), "ok");
    assert_eq!(server.connections(), 2);

    let server = flaky(1, &[]).await;
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from("x"))]);
    let reply = opted.post(
        Request::new(server.url("/")),
        Body::from_stream(chunks, Some(1)),
    );
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ServiceUnavailableError));
    assert_eq!(
        server.connections(),
        1,
        "a one-shot body cannot be sent twice"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_the_error_stays_clear() {
    // A port with nothing listening: bind, read the port, close.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let reply = retrying(2).get(Request::new(url.as_str()));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ConnectionRefusedError));

    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from("x"))]);
    let opted = NetworkAccessManager::builder()
        .retry_policy(RetryPolicy::new(2).with_non_idempotent(true))
        .build()
        .unwrap();
    let reply = opted.post(
        Request::new(url.as_str()),
        Body::from_stream(chunks, Some(1)),
    );
    done(&reply).await;
    let error = reply.error().unwrap();
    assert_eq!(error.kind(), NetworkError::ConnectionRefusedError);
    assert!(error.to_string().contains("one-shot"), "{error}");
}

#[tokio::test]
async fn the_budget_stops_retries_to_an_origin_that_keeps_failing() {
    let server = flaky(usize::MAX, &[]).await;
    let manager = retrying(5);
    // 4 requests: the reserve (10) allows 10 retries in all, plus 20 % of 4 requests.
    for _ in 0..4 {
        let reply = manager.get(Request::new(server.url("/")));
        done(&reply).await;
    }
    let made = server.connections();
    assert_eq!(
        made,
        4 + 10,
        "4 first tries, 10.8 retries' worth of budget: {made}"
    );
}

#[tokio::test]
async fn a_request_can_carry_its_own_retry_policy() {
    let server = flaky(1, &[]).await;
    let policy =
        RetryPolicy::new(1).with_backoff(Duration::from_millis(1), Duration::from_millis(1));
    let request = Request::new(server.url("/")).with_retry_policy(policy);
    let reply = NetworkAccessManager::new().get(request);
    assert_eq!(reply.text().await.unwrap(), "ok");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_deadline_bounds_the_whole_request_retries_included() {
    // Bytes keep coming (no inactivity timeout), but slower than the deadline allows.
    let server = netaccess_testserver::TestServer::http1().await;
    let slow = server.url("/trickle?bytes=100&interval_ms=50");
    let request = Request::new(slow).with_deadline(Duration::from_millis(300));
    let reply = NetworkAccessManager::new().get(request);
    done(&reply).await;
    let error = reply.error().unwrap();
    assert_eq!(error.kind(), NetworkError::TimeoutError);
    assert!(error.to_string().contains("deadline"), "{error}");

    // A retry that would wait past the deadline does not outlive it.
    let busy = flaky(10, &["Retry-After: 30"]).await;
    let request = Request::new(busy.url("/")).with_deadline(Duration::from_millis(300));
    let reply = retrying(3).get(request);
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::TimeoutError));
    assert_eq!(busy.connections(), 1);
}

#[tokio::test]
async fn a_request_connect_timeout_applies_to_its_connections() {
    // A loopback address that never answers a SYN: a listener with a full accept queue.
    let hole = tokio::net::TcpSocket::new_v4().unwrap();
    hole.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let hole = hole.listen(0).unwrap();
    let port = hole.local_addr().unwrap().port();
    let _filler = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = Request::new(format!("http://127.0.0.1:{port}/"))
        .with_connect_timeout(Duration::from_millis(200));
    let reply = NetworkAccessManager::new().get(request);
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::TimeoutError));
    drop(hole);
}
