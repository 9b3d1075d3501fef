//! Settings that change at run time, as in Qt (`set_proxy`, `set_redirect_policy`,
//! `set_cache`, ...): later requests see the change, a request already started keeps what
//! it started with.

mod support;

use std::sync::Arc;

use netaccess::{MemoryCache, NetworkAccessManager, Proxy, RedirectPolicy, Request};
use netaccess_testserver::TestServer;
use support::{done, LIMIT};

#[tokio::test]
async fn a_queued_request_keeps_the_redirect_policy_it_started_with() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .max_connections_per_host(1)
        .build()
        .unwrap();
    // The only connection is taken: the next request waits in the queue.
    let blocker = manager.get(Request::new(server.url("/never-respond")));
    let queued = manager.get(Request::new(server.url("/redirect/1")));
    manager.set_redirect_policy(RedirectPolicy::Manual);
    blocker.abort();
    let body = tokio::time::timeout(LIMIT, queued.bytes()).await.unwrap();
    assert_eq!(body.unwrap(), "hello", "followed, as when it was made");
    // A request made after the change delivers the redirect itself.
    let later = manager.get(Request::new(server.url("/redirect/1")));
    done(&later).await;
    assert_eq!(later.status().map(|s| s.as_u16()), Some(302));
}

#[tokio::test]
async fn set_proxy_sends_later_requests_through_the_proxy() {
    let origin = TestServer::http1().await;
    let proxy = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    assert!(manager.proxy().is_none());
    let direct = manager.get(Request::new(origin.url("/hello")));
    assert_eq!(direct.text().await.unwrap(), "hello");
    manager.set_proxy(Proxy::http("127.0.0.1", proxy.port()));
    assert_eq!(manager.proxy().unwrap().port(), proxy.port());
    let proxied = manager.get(Request::new(origin.url("/hello")));
    assert_eq!(proxied.text().await.unwrap(), "hello");
    assert_eq!(
        origin.requests_for("/hello"),
        1,
        "the second went to the proxy"
    );
    assert_eq!(proxy.requests_for("/hello"), 1, "in absolute form");
    manager.set_proxy_factory(None);
    assert!(manager.proxy().is_none());
    let direct = manager.get(Request::new(origin.url("/hello")));
    assert_eq!(direct.text().await.unwrap(), "hello");
    assert_eq!(origin.requests_for("/hello"), 2);
}

#[tokio::test]
async fn set_cache_stores_later_responses_and_none_removes_it() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let cache = Arc::new(MemoryCache::new(1 << 20));
    manager.set_cache(Some(cache.clone()));
    let url = server.url("/bytes/100?cache_control=max-age%3D600");
    for _ in 0..2 {
        let reply = manager.get(Request::new(url.clone()));
        assert_eq!(reply.bytes().await.unwrap().len(), 100);
    }
    assert_eq!(
        server.requests_for("/bytes/100"),
        1,
        "the second came from the cache"
    );
    manager.set_cache(None);
    let reply = manager.get(Request::new(url));
    assert_eq!(reply.bytes().await.unwrap().len(), 100);
    assert!(!reply.source_is_from_cache());
    assert_eq!(server.requests_for("/bytes/100"), 2);
}

/// The `User-Agent` the server saw for one request.
async fn user_agent_seen(manager: &NetworkAccessManager, request: Request) -> serde_json::Value {
    let reply = manager.get(request);
    let echo: serde_json::Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    echo["headers"]["user-agent"].clone()
}

#[tokio::test]
async fn a_user_agent_is_sent_by_default_and_can_be_changed_or_removed() {
    let server = TestServer::http1().await;
    let default = NetworkAccessManager::new();
    let seen = user_agent_seen(&default, Request::new(server.url("/echo"))).await;
    assert_eq!(seen, netaccess::limits::DEFAULT_USER_AGENT);
    assert!(netaccess::limits::DEFAULT_USER_AGENT.starts_with("netaccess/"));
    let own = Request::new(server.url("/echo")).with_header("User-Agent", "MyOwnBrowser 1.0");
    assert_eq!(user_agent_seen(&default, own).await, "MyOwnBrowser 1.0");
    let custom = NetworkAccessManager::builder()
        .user_agent(Some("Custom/2"))
        .build()
        .unwrap();
    let seen = user_agent_seen(&custom, Request::new(server.url("/echo"))).await;
    assert_eq!(seen, "Custom/2");
    let none = NetworkAccessManager::builder()
        .user_agent(None)
        .build()
        .unwrap();
    let seen = user_agent_seen(&none, Request::new(server.url("/echo"))).await;
    assert!(seen.is_null(), "no User-Agent: {seen}");
}

#[tokio::test]
async fn a_zero_transfer_timeout_on_a_request_means_the_managers() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .transfer_timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    let request =
        Request::new(server.url("/never-respond")).with_transfer_timeout(std::time::Duration::ZERO);
    let reply = manager.get(request);
    support::done(&reply).await;
    assert_eq!(
        support::kind(&reply),
        Some(netaccess::NetworkError::TimeoutError)
    );
}
