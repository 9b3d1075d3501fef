//! Redirects through the manager: policies, method rewriting, limits, header hygiene.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::done;

use netaccess::{NetworkAccessManager, NetworkError, RedirectPolicy, Reply, Request};
use netaccess_testserver::TestServer;

fn kind(reply: &Reply) -> Option<NetworkError> {
    reply.error().map(|e| e.kind())
}

fn encode(url: &str) -> String {
    url.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn a_chain_is_followed_and_each_hop_announced() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let hops = Arc::new(Mutex::new(Vec::new()));
    let h = hops.clone();
    let reply = manager.get_with(Request::new(server.url("/redirect/3")), |r| {
        r.redirected()
            .connect(move |url| h.lock().unwrap().push(url.path().to_owned()));
    });
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert_eq!(reply.status_code(), Some(200));
    assert_eq!(reply.url().path(), "/redirect/0");
    assert_eq!(
        *hops.lock().unwrap(),
        ["/redirect/2", "/redirect/1", "/redirect/0"]
    );
    assert_eq!(
        server.stats().connections_accepted,
        1,
        "hops reuse the connection"
    );
}

#[tokio::test]
async fn too_many_redirects_fail() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/redirect/5")).with_max_redirects(2));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::TooManyRedirectsError));
    let reply = manager.get(Request::new(server.url("/redirect/60")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::TooManyRedirectsError),
        "default limit 50"
    );
}

#[tokio::test]
async fn manual_policy_delivers_the_3xx() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .redirect_policy(RedirectPolicy::Manual)
        .build()
        .unwrap();
    let reply = manager.get(Request::new(server.url("/redirect/2")));
    done(&reply).await;
    assert_eq!(reply.status_code(), Some(302));
    // Resolved against the reply's URL (issue 13); the text as sent stays in the metadata.
    let target = reply.redirection_target().unwrap();
    assert_eq!(target.as_str(), server.url("/redirect/1"));
    assert_eq!(
        reply.meta().redirection_target.as_deref(),
        Some("/redirect/1")
    );
    assert_eq!(kind(&reply), None);
    // A request may override the manager's policy.
    let reply = manager.get(
        Request::new(server.url("/redirect/2")).with_redirect_policy(RedirectPolicy::NoLessSafe),
    );
    assert_eq!(reply.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn methods_are_rewritten_as_qt_does() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let echo = encode(&server.url("/echo"));
    for (status, verb, expect_method, expect_body) in [
        (303, "PUT", "GET", 0),
        (302, "POST", "GET", 0),
        (301, "POST", "GET", 0),
        (307, "POST", "POST", 5),
        (308, "PUT", "PUT", 5),
    ] {
        let url = server.url(&format!("/redirect-to?url={echo}&status={status}"));
        let reply = manager.send_custom_request(
            Request::new(url).with_header("Content-Type", "text/plain"),
            verb,
            "hello",
        );
        let body = reply.bytes().await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["method"], expect_method, "{status} {verb}");
        assert_eq!(json["body_len"], expect_body, "{status} {verb}");
        if expect_body == 0 {
            assert!(
                json["headers"].get("content-type").is_none(),
                "{status}: body headers dropped"
            );
        }
    }
}

#[tokio::test]
async fn credentials_and_cookies_do_not_cross_origins() {
    let a = TestServer::http1().await;
    let b = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let to_b = a.url(&format!("/redirect-to?url={}", encode(&b.url("/echo"))));
    let reply = manager.get(
        Request::new(to_b)
            .with_header("Authorization", "Basic dTpw")
            .with_header("Cookie", "a=1")
            .with_header("X-Other", "kept"),
    );
    let json: serde_json::Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    let headers = &json["headers"];
    assert!(
        headers.get("authorization").is_none() && headers.get("cookie").is_none(),
        "{headers}"
    );
    assert_eq!(headers["x-other"], "kept");
    // Same origin keeps them.
    let same = a.url(&format!("/redirect-to?url={}", encode(&a.url("/echo"))));
    let reply = manager.get(Request::new(same).with_header("Authorization", "Basic dTpw"));
    let json: serde_json::Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    assert_eq!(json["headers"]["authorization"], "Basic dTpw");
}

#[tokio::test]
async fn https_to_http_is_refused_by_default() {
    let tls = TestServer::tls().await;
    let plain = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap().as_bytes())
        .build()
        .unwrap();
    let url = tls.url(&format!(
        "/redirect-to?url={}",
        encode(&plain.url("/hello"))
    ));
    let reply = manager.get(Request::new(url));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::InsecureRedirectError));
    assert_eq!(plain.stats().connections_accepted, 0);
}

#[tokio::test]
async fn same_origin_policy_refuses_other_origins() {
    let a = TestServer::http1().await;
    let b = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .redirect_policy(RedirectPolicy::SameOrigin)
        .build()
        .unwrap();
    let reply = manager.get(Request::new(
        a.url(&format!("/redirect-to?url={}", encode(&b.url("/hello")))),
    ));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::InsecureRedirectError));
    let reply = manager.get(Request::new(a.url("/redirect/1")));
    assert_eq!(reply.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn user_verified_waits_for_permission() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .redirect_policy(RedirectPolicy::UserVerified)
        .build()
        .unwrap();
    let reply = manager.get_with(Request::new(server.url("/redirect/1")), |reply| {
        let handle = reply.clone();
        reply.redirected().connect(move |url| {
            assert_eq!(url.path(), "/redirect/0");
            handle.redirect_allowed();
        });
    });
    assert_eq!(reply.text().await.unwrap(), "hello");

    // Nobody allows: the reply waits until aborted.
    let mut hop = None;
    let reply = manager.get_with(Request::new(server.url("/redirect/1")), |r| {
        hop = Some(r.redirected().next())
    });
    let _ = tokio::time::timeout(Duration::from_secs(10), hop.unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(reply.is_running());
    reply.abort();
    assert_eq!(kind(&reply), Some(NetworkError::OperationCanceledError));
    assert_eq!(server.requests_for("/redirect/0"), 1);
}

#[tokio::test]
async fn bad_redirect_targets_end_with_clear_errors() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(
        server.url(&format!("/redirect-to?url={}", encode("ftp://127.0.0.1/x"))),
    ));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ProtocolUnknownError));
    let reply = manager.get(Request::new(
        server.url(&format!("/redirect-to?url={}", encode("http://[::1"))),
    ));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ProtocolFailure));
    assert!(reply
        .error()
        .unwrap()
        .message()
        .contains("Invalid redirect target"));
}
