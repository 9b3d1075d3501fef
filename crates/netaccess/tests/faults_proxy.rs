//! The proxy part of the fault matrix (issue 10): a [`ScriptServer`] plays an HTTP proxy that
//! answers CONNECT badly, dies inside the tunnel, or asks for credentials forever. The origin
//! behind the tunnel is the script itself (it answers the TLS handshake after its `200`), so
//! nothing but loopback is ever contacted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netaccess::{NetworkAccessManager, NetworkError, Proxy, Reply, Request};
use netaccess_testserver::{ScriptServer, Step};

mod support;
use support::{done_within, kind};

const BOUND: Duration = Duration::from_secs(10);
/// The origin behind the proxy: its name is on the script server's certificate and is never
/// resolved (the proxy "connects").
const ORIGIN: &str = "https://example.test/data";

async fn done(reply: &Reply) {
    done_within(reply, BOUND).await;
    // Shown with --nocapture, and with a failing test.
    eprintln!(
        "{} -> {:?}: {:?}",
        reply.url(),
        reply.status_code(),
        reply.error().map(|e| (e.kind(), e.message().to_owned()))
    );
}

fn through(proxy: &ScriptServer, credentials: Option<(&str, &str)>) -> NetworkAccessManager {
    let mut p = Proxy::http("127.0.0.1", proxy.port());
    if let Some((user, password)) = credentials {
        p = p.with_credentials(user, password);
    }
    NetworkAccessManager::builder()
        .add_root_certificate_pem(proxy.ca_cert_pem().as_bytes())
        .connect_timeout(Duration::from_secs(5))
        .proxy(p)
        .build()
        .unwrap()
}

const ESTABLISHED: &str = "HTTP/1.1 200 Connection established\r\n\r\n";

#[tokio::test]
async fn a_working_tunnel_is_the_baseline() {
    let proxy = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::write(ESTABLISHED),
        Step::StartTls,
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"),
        Step::Close,
    ]])
    .await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    assert_eq!(kind(&reply), None, "{:?}", reply.error());
    assert_eq!(reply.read_all(), "secret".as_bytes());
    let requests = proxy.requests();
    assert_eq!(
        requests[0].request_line(),
        "CONNECT example.test:443 HTTP/1.1"
    );
    assert_eq!(requests[1].request_line(), "GET /data HTTP/1.1");
}

#[tokio::test]
async fn a_502_to_connect_is_a_proxy_error() {
    let proxy = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::write("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad"),
        Step::Close,
    ]])
    .await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    let error = reply.error().expect("a 502 to CONNECT fails");
    assert_eq!(error.kind(), NetworkError::UnknownProxyError, "{error:?}");
    assert!(error.message().contains("502"), "{error}");
    assert_eq!(
        reply.status_code(),
        None,
        "the proxy's answer is not the origin's"
    );
    assert_eq!(proxy.connections(), 1, "not retried");
}

#[tokio::test]
async fn connect_200_then_garbage_fails_the_tls_handshake() {
    let proxy = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::write(format!(
            "{ESTABLISHED}HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
        )),
        Step::Hang,
    ]])
    .await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::SslHandshakeFailedError),
        "{:?}",
        reply.error()
    );
    assert!(
        reply.read_all().is_empty(),
        "nothing of the garbage is delivered"
    );
}

#[tokio::test]
async fn the_proxy_dying_right_after_connect_200_fails_cleanly() {
    let proxy = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::write(ESTABLISHED),
        Step::Reset,
    ]])
    .await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    let error = reply.error().expect("a dead tunnel fails");
    assert_eq!(
        error.kind(),
        NetworkError::RemoteHostClosedError,
        "{error:?}"
    );
}

#[tokio::test]
async fn the_proxy_dying_mid_tunnel_mid_body_is_a_remote_close() {
    let proxy = ScriptServer::start(vec![
        vec![
            Step::ReadHead,
            Step::write(ESTABLISHED),
            Step::StartTls,
            Step::Read,
            Step::write(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{}",
                "x".repeat(5000)
            )),
            Step::Sleep(Duration::from_millis(50)),
            Step::Reset,
        ],
        vec![
            Step::ReadHead,
            Step::write(ESTABLISHED),
            Step::StartTls,
            Step::Read,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"),
            Step::Close,
        ],
    ])
    .await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::RemoteHostClosedError),
        "{:?}",
        reply.error()
    );
    // The dead tunnel is not reused: the next request opens a new one.
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    assert_eq!(kind(&reply), None, "{:?}", reply.error());
    assert_eq!(reply.read_all(), "fresh".as_bytes());
    assert_eq!(proxy.connections(), 2);
}

fn always_407() -> Vec<Vec<Step>> {
    vec![vec![
        Step::ReadHead,
        Step::write(
            "HTTP/1.1 407 Proxy Authentication Required\r\n\
             Proxy-Authenticate: Basic realm=\"proxy\"\r\nContent-Length: 0\r\n\r\n",
        ),
        Step::Close,
    ]]
}

/// A proxy that refuses every answer: the configured credentials, then the application's,
/// round after round. The rounds are bounded and the reply ends with Qt's code.
#[tokio::test]
async fn a_407_loop_on_connect_is_bounded() {
    let proxy = ScriptServer::start(always_407()).await;
    let manager = through(&proxy, Some(("alice", "wrong")));
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    manager
        .proxy_authentication_required()
        .connect(move |(_, request)| {
            counter.fetch_add(1, Ordering::SeqCst);
            request.answer("alice", "still wrong");
        });
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProxyAuthenticationRequiredError),
        "{:?}",
        reply.error()
    );
    let rounds = proxy.connections();
    assert!((2..=5).contains(&rounds), "{rounds} CONNECT attempts");
    assert!(asked.load(Ordering::SeqCst) < rounds);
    let authorizations = proxy
        .requests()
        .iter()
        .filter(|r| r.header("proxy-authorization").is_some())
        .count();
    assert_eq!(
        authorizations,
        rounds - 1,
        "every round after the first answers"
    );
}

/// The same for plain http through the proxy (absolute-form requests).
#[tokio::test]
async fn a_407_loop_on_absolute_form_requests_is_bounded() {
    let proxy = ScriptServer::start(always_407()).await;
    let manager = through(&proxy, Some(("alice", "wrong")));
    manager
        .proxy_authentication_required()
        .connect(|(_, request)| request.answer("alice", "still wrong"));
    let reply = manager.get(Request::new("http://example.test/plain"));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProxyAuthenticationRequiredError),
        "{:?}",
        reply.error()
    );
    let requests = proxy.requests();
    assert!(
        (2..=6).contains(&requests.len()),
        "{} requests",
        requests.len()
    );
    assert_eq!(
        requests[0].request_line(),
        "GET http://example.test/plain HTTP/1.1"
    );
}

/// Nobody answers `proxy_authentication_required`: one round, then the error.
#[tokio::test]
async fn a_407_without_an_answer_ends_at_once() {
    let proxy = ScriptServer::start(always_407()).await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProxyAuthenticationRequiredError),
        "{:?}",
        reply.error()
    );
    assert_eq!(proxy.connections(), 1);
}

/// A CONNECT answer whose head never ends is cut at 64 KiB: a proxy error, in bounded time.
#[tokio::test]
async fn an_endless_connect_answer_is_bounded() {
    let mut endless = b"HTTP/1.1 200 Connection established\r\n".to_vec();
    while endless.len() < 200 * 1024 {
        endless.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let proxy =
        ScriptServer::start(vec![vec![Step::ReadHead, Step::Write(endless), Step::Hang]]).await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    let error = reply.error().expect("refused");
    assert_eq!(error.kind(), NetworkError::UnknownProxyError, "{error:?}");
    assert!(error.message().contains("too large"), "{error}");
}

/// A CONNECT answer that is not HTTP at all.
#[tokio::test]
async fn a_connect_answer_that_is_not_http_is_a_proxy_error() {
    let proxy = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::write("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        Step::Hang,
    ]])
    .await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::UnknownProxyError),
        "{:?}",
        reply.error()
    );
}

/// Interim answers (`100`, `103`) before the `200` are skipped; the tunnel works.
#[tokio::test]
async fn interim_answers_to_connect_are_skipped() {
    let proxy = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::write(format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n{ESTABLISHED}"
        )),
        Step::StartTls,
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        Step::Close,
    ]])
    .await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    assert_eq!(kind(&reply), None, "{:?}", reply.error());
    assert_eq!(reply.read_all(), "ok".as_bytes());
}

/// A proxy that answers `100` for ever: bounded, a proxy error.
#[tokio::test]
async fn endless_interim_answers_to_connect_are_bounded() {
    let proxy = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::write("HTTP/1.1 100 Continue\r\n\r\n".repeat(50)),
        Step::Hang,
    ]])
    .await;
    let manager = through(&proxy, None);
    let reply = manager.get(Request::new(ORIGIN));
    done(&reply).await;
    let error = reply.error().expect("refused");
    assert_eq!(error.kind(), NetworkError::UnknownProxyError, "{error:?}");
    assert!(error.message().contains("status 100"), "{error}");
}
