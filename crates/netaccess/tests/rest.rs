//! The REST layer against a real server: a request factory's URLs, headers and credentials,
//! JSON both ways, PATCH, and what `is_success` says.
#![cfg(feature = "json")]

mod support;

use netaccess::{Body, NetworkAccessManager, NetworkError, RequestFactory};
use netaccess_testserver::TestServer;
use serde::Deserialize;

#[derive(Deserialize)]
struct Echo {
    method: String,
    path: String,
    query: String,
    headers: std::collections::HashMap<String, String>,
}

fn api(server: &TestServer) -> RequestFactory {
    let base = url::Url::parse(&server.url("/")).unwrap();
    RequestFactory::new(base)
}

#[tokio::test]
async fn a_factory_request_reaches_the_server_with_its_path_query_and_token() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let factory = api(&server)
        .with_bearer_token("t0ken")
        .with_header("Accept", "application/json")
        .with_query([("lang", "en")]);
    let reply = manager.get(factory.create_request("/echo"));
    let echo: Echo = reply.json().await.unwrap();
    assert_eq!(echo.method, "GET");
    assert_eq!(echo.path, "/echo");
    assert_eq!(echo.query, "lang=en");
    assert_eq!(echo.headers["authorization"], "Bearer t0ken");
    assert_eq!(echo.headers["accept"], "application/json");
    assert!(reply.is_success() && reply.is_http_status_success());
}

#[tokio::test]
async fn json_goes_up_with_patch_and_comes_back() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let request = netaccess::Request::new(server.url("/echo-body"))
        .with_header("Content-Type", "application/json");
    let sent = serde_json::json!({"name": "renamed", "tags": [1, 2]});
    let reply = manager.patch(request, Body::json(&sent).unwrap());
    let back: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(back, sent);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_error_and_an_error_page_says_its_status() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(api(&server).create_request("hello"));
    let e = reply.json::<serde_json::Value>().await.unwrap_err();
    assert_eq!(e.kind(), NetworkError::UnknownContentError, "{e}");
    let missing = manager.get(netaccess::Request::new(server.url("/status/404")));
    let e = missing.json::<serde_json::Value>().await.unwrap_err();
    assert_eq!(e.kind(), NetworkError::ContentNotFoundError, "{e}");
    assert!(!missing.is_success() && !missing.is_http_status_success());
}

#[tokio::test]
async fn a_json_body_says_so_unless_the_request_says_otherwise() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let body = || Body::json(&serde_json::json!({"a": 1})).unwrap();
    let reply = manager.post(api(&server).create_request("echo"), body());
    let echo: Echo = reply.json().await.unwrap();
    assert_eq!(echo.headers["content-type"], "application/json");
    let own = api(&server)
        .create_request("echo")
        .with_header("Content-Type", "application/merge-patch+json");
    let echo: Echo = manager.patch(own, body()).json().await.unwrap();
    assert_eq!(echo.headers["content-type"], "application/merge-patch+json");
    let plain = manager.post(api(&server).create_request("echo"), "x");
    let echo: Echo = plain.json().await.unwrap();
    assert!(!echo.headers.contains_key("content-type"));
}
