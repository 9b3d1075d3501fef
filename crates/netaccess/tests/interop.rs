//! netaccess against real third-party peers started on loopback with their own configuration:
//! squid (HTTP proxy, CONNECT, Basic proxy auth), microsocks (SOCKS5 with and without a
//! password) and Apache httpd (mod_auth_digest, MD5; Basic). `scripts/test` installs them; a
//! missing binary fails the test with the command that installs it.

mod support;

use support::done;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netaccess::{NetworkAccessManager, NetworkError, Proxy, Reply, Request};
#[cfg(feature = "socks")]
use netaccess_testserver::peers::Microsocks;
use netaccess_testserver::peers::{
    Apache, ApacheOptions, Squid, SquidOptions, APACHE_BASIC_BODY, APACHE_DIGEST_BODY,
};
use netaccess_testserver::TestServer;

fn kind(reply: &Reply) -> Option<NetworkError> {
    reply.error().map(|e| e.kind())
}

fn squid(auth: Option<(&str, &str)>) -> Squid {
    Squid::start(SquidOptions {
        basic_auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn proxy_url(url: &str) -> Proxy {
    Proxy::parse(url).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_through_squid_uses_absolute_form() {
    let server = TestServer::http1().await;
    let squid = squid(None);
    let manager = NetworkAccessManager::builder()
        .proxy(proxy_url(&squid.url()))
        .build()
        .unwrap();
    for _ in 0..3 {
        let reply = manager.get(Request::new(server.url("/hello")));
        assert_eq!(
            reply.text().await.unwrap(),
            "hello",
            "{}",
            squid.cache_log()
        );
    }
    assert!(
        squid.wait_for_log("/hello", Duration::from_secs(10)).await,
        "squid saw the requests: {}",
        squid.log()
    );
    // The origin saw squid's connections, not ours: at most a few, reused.
    assert_eq!(server.requests_for("/hello"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_http2_through_a_squid_connect_tunnel() {
    let tls = TestServer::tls().await;
    let squid = squid(None);
    let manager = NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap().as_bytes())
        .proxy(proxy_url(&squid.url()))
        .build()
        .unwrap();
    let replies: Vec<_> = (0..5)
        .map(|_| manager.get(Request::new(tls.url("/hello"))))
        .collect();
    for reply in &replies {
        assert_eq!(reply.text().await.unwrap(), "hello");
        assert!(reply.http2_was_used() && reply.is_encrypted());
    }
    assert_eq!(
        tls.stats().connections_accepted,
        1,
        "one tunnel, HTTP/2 inside"
    );
    // squid logs a tunnel when it closes.
    manager.clear_connection_cache();
    drop(replies);
    let logged = squid.wait_for_log("CONNECT", Duration::from_secs(5)).await;
    assert!(logged, "the tunnel went through squid: {}", squid.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_basic_proxy_auth_from_the_proxy_and_from_the_signal() {
    let server = TestServer::http1().await;
    let tls = TestServer::tls().await;
    let squid = squid(Some(("pxuser", "pxpass")));
    let url = squid.url();
    // Credentials in the proxy configuration.
    let with_creds = NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap().as_bytes())
        .proxy(proxy_url(&url).with_credentials("pxuser", "pxpass"))
        .build()
        .unwrap();
    assert_eq!(
        with_creds
            .get(Request::new(server.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    assert_eq!(
        with_creds
            .get(Request::new(tls.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    // None: the application is asked, for plain requests and for CONNECT.
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let manager = NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap().as_bytes())
        .proxy(proxy_url(&url))
        .build()
        .unwrap();
    manager
        .proxy_authentication_required()
        .connect(move |(proxy, request)| {
            assert_eq!(proxy.port(), proxy.port());
            count.fetch_add(1, Ordering::SeqCst);
            request.answer("pxuser", "pxpass");
        });
    assert_eq!(
        manager
            .get(Request::new(server.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    assert_eq!(
        manager
            .get(Request::new(tls.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    assert!(asked.load(Ordering::SeqCst) >= 2);
    // Nobody answers: ProxyAuthenticationRequiredError, for both kinds.
    let refused = NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap().as_bytes())
        .proxy(proxy_url(&url))
        .build()
        .unwrap();
    for target in [server.url("/hello"), tls.url("/hello")] {
        let reply = refused.get(Request::new(&target));
        done(&reply).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::ProxyAuthenticationRequiredError),
            "{target}"
        );
    }
}

#[cfg(feature = "socks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_through_microsocks_with_and_without_a_password() {
    let server = TestServer::http1().await;
    let tls = TestServer::tls().await;
    let open = Microsocks::start(None).unwrap_or_else(|e| panic!("{e}"));
    let manager = NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap().as_bytes())
        .proxy(proxy_url(&open.url()))
        .build()
        .unwrap();
    assert_eq!(
        manager
            .get(Request::new(server.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    let https = manager.get(Request::new(tls.url("/hello")));
    assert_eq!(https.text().await.unwrap(), "hello");
    assert!(https.http2_was_used());

    let locked = Microsocks::start(Some(("sock", "s3cret"))).unwrap_or_else(|e| panic!("{e}"));
    let good = NetworkAccessManager::builder()
        .proxy(proxy_url(&locked.url()).with_credentials("sock", "s3cret"))
        .build()
        .unwrap();
    assert_eq!(
        good.get(Request::new(server.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    let bad = NetworkAccessManager::builder()
        .proxy(proxy_url(&locked.url()).with_credentials("sock", "wrong"))
        .build()
        .unwrap();
    let reply = bad.get(Request::new(server.url("/hello")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProxyAuthenticationRequiredError),
        "{:?}",
        reply.error()
    );
    // socks5h: the proxy resolves the name (localhost here).
    let remote = NetworkAccessManager::builder()
        .proxy(proxy_url(&open.url().replace("socks5://", "socks5h://")))
        .build()
        .unwrap();
    let reply = remote.get(Request::new(format!(
        "http://localhost:{}/hello",
        server.port()
    )));
    assert_eq!(reply.text().await.unwrap(), "hello");
}

#[cfg(feature = "socks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_errors_are_qt_codes() {
    let server = TestServer::http1().await;
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for proxy in [
        format!("http://127.0.0.1:{dead_port}"),
        format!("socks5://127.0.0.1:{dead_port}"),
    ] {
        let manager = NetworkAccessManager::builder()
            .proxy(proxy_url(&proxy))
            .build()
            .unwrap();
        let reply = manager.get(Request::new(server.url("/hello")));
        done(&reply).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::ProxyConnectionRefusedError),
            "{proxy}"
        );
    }
    let manager = NetworkAccessManager::builder()
        .resolve("noproxy.test", [])
        .proxy(proxy_url("http://noproxy.test:3128"))
        .build()
        .unwrap();
    let reply = manager.get(Request::new(server.url("/hello")));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::ProxyNotFoundError));
    // A proxy that closes at once.
    let closing = TestServer::builder()
        .raw(netaccess_testserver::RawFault::CloseBeforeResponse)
        .start()
        .await;
    let manager = NetworkAccessManager::builder()
        .proxy(proxy_url(&closing.base_url()))
        .build()
        .unwrap();
    let reply = manager.get(Request::new("https://127.0.0.1:9/"));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProxyConnectionClosedError),
        "{:?}",
        reply.error()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_md5_and_basic_against_apache() {
    let apache = Apache::start(ApacheOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let manager = NetworkAccessManager::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    manager
        .authentication_required()
        .connect(move |(_reply, request)| {
            count.fetch_add(1, Ordering::SeqCst);
            assert_eq!(request.realm(), "netaccess-apache");
            request.answer("alice", "secret");
        });
    for _ in 0..3 {
        let reply = manager.get(Request::new(apache.url("/")));
        assert_eq!(
            reply.text().await.unwrap(),
            APACHE_DIGEST_BODY,
            "{}",
            apache.error_log()
        );
        assert_eq!(reply.status_code(), Some(200));
    }
    let basic = manager.get(Request::new(apache.url("/basic/")));
    assert_eq!(basic.text().await.unwrap(), APACHE_BASIC_BODY);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "one realm, asked once; later requests reuse it"
    );
    // A wrong password then the right one.
    let manager = NetworkAccessManager::new();
    let answers = std::sync::Mutex::new(vec![("alice", "wrong"), ("alice", "secret")].into_iter());
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    manager
        .authentication_required()
        .connect(move |(_reply, request)| {
            count.fetch_add(1, Ordering::SeqCst);
            let (user, password) = answers.lock().unwrap().next().unwrap_or(("", ""));
            request.answer(user, password);
        });
    let reply = manager.get(Request::new(apache.url("/")));
    assert_eq!(reply.text().await.unwrap(), APACHE_DIGEST_BODY);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "asked again after the wrong password"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caching_proxy_carries_http_only() {
    let server = TestServer::http1().await;
    let squid = squid(None);
    let caching = Proxy::new(
        netaccess::ProxyKind::HttpCachingProxy,
        "127.0.0.1",
        squid.port(),
    );
    let manager = NetworkAccessManager::builder()
        .proxy(caching)
        .build()
        .unwrap();
    assert_eq!(
        manager
            .get(Request::new(server.url("/hello")))
            .text()
            .await
            .unwrap(),
        "hello"
    );
    let logged = squid.wait_for_log("/hello", Duration::from_secs(10)).await;
    assert!(logged, "{}", squid.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_proxy_is_a_proxy_timeout() {
    let silent = TestServer::builder()
        .raw(netaccess_testserver::RawFault::AcceptAndSilence)
        .start()
        .await;
    let manager = NetworkAccessManager::builder()
        .connect_timeout(Duration::from_millis(300))
        .proxy(proxy_url(&silent.base_url()))
        .build()
        .unwrap();
    let reply = manager.get(Request::new("https://127.0.0.1:9/"));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProxyTimeoutError),
        "{:?}",
        reply.error()
    );
}
