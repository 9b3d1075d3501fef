//! Cookies and HSTS through the manager, with the resolver hook mapping test host names to
//! 127.0.0.1 and the TLS test server (its certificate names example.test and sub.example.test).

use std::net::{IpAddr, Ipv4Addr};
#[cfg(feature = "cookies")]
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "cookies")]
use netaccess::DefaultCookieJar;
use netaccess::{CookieControl, NetworkAccessManager, Reply, Request};
use netaccess_testserver::TestServer;
use serde_json::Value;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn echo(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap()
}

async fn tls_server() -> TestServer {
    TestServer::builder()
        .tls()
        .tls_hostnames(&["example.test", "sub.example.test"])
        .start()
        .await
}

fn builder_for(tls: &TestServer) -> netaccess::ManagerBuilder {
    NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap().as_bytes())
        .resolve("example.test", [LOCAL])
        .resolve("sub.example.test", [LOCAL])
        .resolve("other.test", [LOCAL])
}

// ----- cookies -------------------------------------------------------------------------------

#[tokio::test]
async fn cookies_are_stored_and_sent_across_a_redirect_chain() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let echo_url = server.url("/echo");
    let second = server.url(&format!(
        "/redirect-to?url={}&set_cookie={}",
        enc(&echo_url),
        enc("b=2; Path=/")
    ));
    let first = server.url(&format!(
        "/redirect-to?url={}&set_cookie={}",
        enc(&second),
        enc("a=1")
    ));
    let json = echo(&manager.get(Request::new(first))).await;
    assert_eq!(json["headers"]["cookie"], "a=1; b=2", "{json}");
    assert_eq!(manager.cookie_jar().all_cookies().len(), 2);
}

#[tokio::test]
async fn jar_cookies_follow_their_host_not_the_redirect() {
    let a = TestServer::http1().await;
    let b = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .resolve("other.test", [LOCAL])
        .build()
        .unwrap();
    // Set on 127.0.0.1 (host-only), then redirected to other.test: not sent there.
    let target = format!("http://other.test:{}/echo", b.port());
    let url = a.url(&format!(
        "/redirect-to?url={}&set_cookie={}",
        enc(&target),
        enc("secret=1")
    ));
    let json = echo(&manager.get(Request::new(url))).await;
    assert!(json["headers"].get("cookie").is_none(), "{json}");
    // Back on 127.0.0.1 it is sent, merged with the application's own.
    let json =
        echo(&manager.get(Request::new(a.url("/echo")).with_header("Cookie", "mine=0"))).await;
    assert_eq!(json["headers"]["cookie"], "mine=0; secret=1");
}

#[tokio::test]
async fn manual_load_and_save_controls_leave_the_jar_alone() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let set = server.url(&format!("/header?Set-Cookie={}", enc("k=v")));
    manager
        .get(Request::new(&set).with_cookie_save_control(CookieControl::Manual))
        .bytes()
        .await
        .unwrap();
    assert!(
        manager.cookie_jar().all_cookies().is_empty(),
        "Manual save stores nothing"
    );
    manager.get(Request::new(&set)).bytes().await.unwrap();
    assert_eq!(manager.cookie_jar().all_cookies().len(), 1);
    let manual = manager
        .get(Request::new(server.url("/echo")).with_cookie_load_control(CookieControl::Manual));
    assert!(
        echo(&manual).await["headers"].get("cookie").is_none(),
        "Manual load sends none"
    );
    let automatic = manager.get(Request::new(server.url("/echo")));
    assert_eq!(echo(&automatic).await["headers"]["cookie"], "k=v");
}

#[tokio::test]
async fn secure_cookies_are_not_sent_over_http() {
    let tls = tls_server().await;
    let plain = TestServer::http1().await;
    let manager = builder_for(&tls).build().unwrap();
    let set = format!(
        "https://example.test:{}/header?Set-Cookie={}",
        tls.port(),
        enc("s=1; Secure")
    );
    manager.get(Request::new(set)).bytes().await.unwrap();
    let over_http = manager.get(Request::new(format!(
        "http://example.test:{}/echo",
        plain.port()
    )));
    assert!(echo(&over_http).await["headers"].get("cookie").is_none());
    let over_https = manager.get(Request::new(format!(
        "https://example.test:{}/echo",
        tls.port()
    )));
    assert_eq!(echo(&over_https).await["headers"]["cookie"], "s=1");
}

#[cfg(feature = "cookies")]
#[tokio::test]
async fn a_saved_jar_serves_a_new_manager() {
    let server = TestServer::http1().await;
    let jar = Arc::new(DefaultCookieJar::new());
    let manager = NetworkAccessManager::builder()
        .cookie_jar(jar.clone())
        .build()
        .unwrap();
    let set = server.url(&format!(
        "/header?Set-Cookie={}",
        enc("kept=yes; Max-Age=3600")
    ));
    manager.get(Request::new(set)).bytes().await.unwrap();
    let path = std::env::temp_dir().join(format!("netaccess-jar-{}.json", std::process::id()));
    jar.save(&path, false).unwrap();
    let loaded = Arc::new(DefaultCookieJar::load(&path).unwrap());
    let fresh = NetworkAccessManager::builder()
        .cookie_jar(loaded)
        .build()
        .unwrap();
    assert_eq!(
        echo(&fresh.get(Request::new(server.url("/echo")))).await["headers"]["cookie"],
        "kept=yes"
    );
    let _ = std::fs::remove_file(path);
}

// ----- HSTS ----------------------------------------------------------------------------------

fn sts(tls: &TestServer, host: &str, value: &str) -> String {
    format!(
        "https://{host}:{}/header?Strict-Transport-Security={}",
        tls.port(),
        enc(value)
    )
}

#[tokio::test]
async fn a_policy_learned_over_https_upgrades_later_http_requests() {
    let tls = tls_server().await;
    let manager = builder_for(&tls)
        .strict_transport_security(true)
        .build()
        .unwrap();
    assert!(manager.is_strict_transport_security_enabled());
    manager
        .get(Request::new(sts(&tls, "example.test", "max-age=1000")))
        .bytes()
        .await
        .unwrap();
    assert_eq!(manager.strict_transport_security_hosts().len(), 1);
    // http:// to the TLS port: only an upgraded request can succeed there.
    let reply = manager.get(Request::new(format!(
        "http://example.test:{}/hello",
        tls.port()
    )));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(reply.is_encrypted());
    assert_eq!(reply.url().scheme(), "https");
    // To a plain server the upgraded request fails its TLS handshake: not one plaintext
    // request reaches the plain port.
    let plain = TestServer::http1().await;
    let refused = manager.get(Request::new(format!(
        "http://example.test:{}/hello",
        plain.port()
    )));
    tokio::time::timeout(Duration::from_secs(30), refused.finished())
        .await
        .unwrap();
    assert!(refused.error().is_some());
    assert_eq!(refused.url().scheme(), "https");
    assert_eq!(plain.stats().requests_total, 0);
    // No subdomains without includeSubDomains.
    let sub = manager.get(Request::new(format!(
        "http://sub.example.test:{}/hello",
        plain.port()
    )));
    assert_eq!(sub.text().await.unwrap(), "hello");
    assert!(!sub.is_encrypted());
}

#[tokio::test]
async fn include_subdomains_and_redirect_targets_are_upgraded() {
    let tls = tls_server().await;
    let plain = TestServer::http1().await;
    let manager = builder_for(&tls)
        .strict_transport_security(true)
        .build()
        .unwrap();
    manager
        .get(Request::new(sts(
            &tls,
            "example.test",
            "max-age=1000; includeSubDomains",
        )))
        .bytes()
        .await
        .unwrap();
    let sub = manager.get(Request::new(format!(
        "http://sub.example.test:{}/hello",
        tls.port()
    )));
    assert_eq!(sub.text().await.unwrap(), "hello");
    assert!(sub.is_encrypted());
    // A plain server redirecting to http://example.test: the hop is upgraded.
    let target = format!("http://example.test:{}/hello", tls.port());
    let reply = manager.get(Request::new(
        plain.url(&format!("/redirect-to?url={}", enc(&target))),
    ));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(reply.is_encrypted());
}

#[tokio::test]
async fn headers_that_must_be_ignored_are_ignored() {
    let tls = tls_server().await;
    let plain = TestServer::http1().await;
    let manager = builder_for(&tls)
        .strict_transport_security(true)
        .build()
        .unwrap();
    // Over http, from an IP literal, or without max-age: ignored.
    let over_http = format!(
        "http://example.test:{}/header?Strict-Transport-Security=max-age%3D1000",
        plain.port()
    );
    manager.get(Request::new(over_http)).bytes().await.unwrap();
    manager
        .get(Request::new(sts(&tls, "127.0.0.1", "max-age=1000")))
        .bytes()
        .await
        .unwrap();
    manager
        .get(Request::new(sts(&tls, "example.test", "includeSubDomains")))
        .bytes()
        .await
        .unwrap();
    assert!(manager.strict_transport_security_hosts().is_empty());
    // Off by default, as Qt.
    let off = builder_for(&tls).build().unwrap();
    off.get(Request::new(sts(&tls, "example.test", "max-age=1000")))
        .bytes()
        .await
        .unwrap();
    assert!(off.strict_transport_security_hosts().is_empty());
}

#[tokio::test]
async fn max_age_zero_deletes_and_policies_expire() {
    let tls = tls_server().await;
    let plain = TestServer::http1().await;
    let manager = builder_for(&tls)
        .strict_transport_security(true)
        .build()
        .unwrap();
    manager
        .get(Request::new(sts(&tls, "example.test", "max-age=1000")))
        .bytes()
        .await
        .unwrap();
    manager
        .get(Request::new(sts(&tls, "example.test", "max-age=0")))
        .bytes()
        .await
        .unwrap();
    assert!(manager.strict_transport_security_hosts().is_empty());
    manager
        .get(Request::new(sts(&tls, "example.test", "max-age=1")))
        .bytes()
        .await
        .unwrap();
    assert_eq!(manager.strict_transport_security_hosts().len(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(manager.strict_transport_security_hosts().is_empty());
    let reply = manager.get(Request::new(format!(
        "http://example.test:{}/hello",
        plain.port()
    )));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(
        !reply.is_encrypted(),
        "the expired policy no longer upgrades"
    );
}
