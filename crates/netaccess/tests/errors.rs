//! `Error`'s classification (`is_connect`, `is_tls`, `is_proxy`, `is_http_status`,
//! `is_redirect`) and `url()`, each from a real failure on loopback.

mod support;

use netaccess::{NetworkAccessManager, NetworkError, Proxy, Request};
use netaccess_testserver::TestServer;
use support::done;

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error_with_its_url() {
    let manager = NetworkAccessManager::new();
    let url = format!("http://127.0.0.1:{}/x", closed_port());
    let reply = manager.get(Request::new(&url));
    done(&reply).await;
    let e = reply.error().unwrap();
    assert!(e.is_connect(), "{e}");
    assert!(!e.is_http_status() && !e.is_tls() && !e.is_proxy() && !e.is_redirect());
    assert_eq!(e.url().map(|u| u.as_str()), Some(url.as_str()));
}

#[tokio::test]
async fn an_http_error_status_is_marked_with_the_status_and_the_last_hop() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let target = server.url("/status/404");
    let reply = manager.get(Request::new(
        server.url(&format!("/redirect-to?url={target}")),
    ));
    done(&reply).await;
    let e = reply.error().unwrap();
    assert!(e.is_http_status() && !e.is_connect(), "{e}");
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.kind(), NetworkError::ContentNotFoundError);
    assert_eq!(e.url().map(|u| u.as_str()), Some(target.as_str()));
}

#[tokio::test]
async fn too_many_redirects_is_a_redirect_error() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/redirect/5")).with_max_redirects(2));
    done(&reply).await;
    let e = reply.error().unwrap();
    assert!(e.is_redirect(), "{e}");
    assert!(!e.is_http_status());
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let server = TestServer::tls().await;
    let manager = NetworkAccessManager::builder()
        .use_system_roots(false)
        .build()
        .unwrap();
    let reply = manager.get(Request::new(server.url("/hello")));
    done(&reply).await;
    let e = reply.error().unwrap();
    assert!(e.is_tls(), "{e}");
    assert!(!e.is_connect());
}

#[tokio::test]
async fn a_refused_proxy_is_a_proxy_error() {
    let proxy = Proxy::parse(&format!("http://127.0.0.1:{}", closed_port())).unwrap();
    let manager = NetworkAccessManager::builder()
        .proxy(proxy)
        .build()
        .unwrap();
    let reply = manager.get(Request::new("http://127.0.0.1:9/x"));
    done(&reply).await;
    let e = reply.error().unwrap();
    assert!(e.is_proxy(), "{e}");
    assert!(!e.is_connect());
    assert_eq!(e.kind(), NetworkError::ProxyConnectionRefusedError);
}
