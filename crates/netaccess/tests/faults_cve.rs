//! Known client CVEs of the HTTP/redirect/pool class, each as a named test against real
//! loopback sockets (issue 10). Each test cites its id.
//!
//! - CVE-2022-27776: credentials (Authorization, Cookie set by the application, URL user info,
//!   the credential cache) must not follow a redirect to the same host on another port or
//!   scheme.
//! - CVE-2022-27780: a percent-encoded `/` in a host name is refused, never decoded into a
//!   path that sends the request elsewhere.
//! - CVE-2021-22924 class: the connection pool never hands a connection made for one set of
//!   proxy credentials or TLS settings to a request with others.

use std::time::Duration;

use netaccess::url::Url;
use netaccess::{NetworkAccessManager, NetworkError, Proxy, Reply, Request};
use netaccess_testserver::{Recorded, ScriptServer, Step};

mod support;
use support::{done_within, kind};

const BOUND: Duration = Duration::from_secs(10);

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

fn ok(body: &str) -> Step {
    Step::write(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn redirect_to(location: &str) -> Step {
    Step::write(format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn unauthorized() -> Step {
    Step::write(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"shared\"\r\n\
         Content-Length: 0\r\n\r\n",
    )
}

/// No request `server` saw carried credentials.
fn assert_no_credentials(requests: &[Recorded], what: &str) {
    assert!(!requests.is_empty(), "{what}: the target was reached");
    for r in requests {
        assert_eq!(r.header("authorization"), None, "{what}: {}", r.head);
        assert_eq!(r.header("cookie"), None, "{what}: {}", r.head);
        assert_eq!(r.header("proxy-authorization"), None, "{what}: {}", r.head);
    }
}

/// The redirect target: always asks for credentials of the same realm.
async fn challenging_target(tls: bool) -> ScriptServer {
    let script = vec![vec![Step::Read, unauthorized(), Step::Read, unauthorized()]];
    if tls {
        ScriptServer::start_tls(script).await
    } else {
        ScriptServer::start(script).await
    }
}

#[tokio::test]
async fn cve_2022_27776_application_headers_and_user_info_stay_on_their_port() {
    for tls in [false, true] {
        let target = challenging_target(tls).await;
        let to = if tls {
            target.https_url("/landing")
        } else {
            target.url("/landing")
        };
        let origin = ScriptServer::start(vec![vec![Step::Read, redirect_to(&to)]]).await;
        let manager = NetworkAccessManager::builder()
            .add_root_certificate_pem(target.ca_cert_pem().as_bytes())
            .build()
            .unwrap();
        let start = format!("http://alice:s3cret@127.0.0.1:{}/start", origin.port());
        let request = Request::new(start)
            .with_header("Authorization", "Bearer app-token")
            .with_header("Cookie", "session=app-cookie");
        let reply = manager.get(request);
        done(&reply).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::AuthenticationRequiredError),
            "tls={tls}: the other port's 401 is not answered: {:?}",
            reply.error()
        );
        let first = &origin.requests()[0];
        assert_eq!(first.header("authorization"), Some("Bearer app-token"));
        assert_no_credentials(&target.requests(), &format!("tls={tls}"));
    }
}

/// The same host and the same port, another scheme: the server speaks plain HTTP on its first
/// connection (a redirect to `https://` on its own port) and TLS on the next.
#[tokio::test]
async fn cve_2022_27776_credentials_stay_on_their_scheme_on_the_same_port() {
    let server = ScriptServer::start_with(|port| {
        vec![
            vec![
                Step::Read,
                redirect_to(&format!("https://127.0.0.1:{port}/landing")),
            ],
            vec![
                Step::StartTls,
                Step::Read,
                unauthorized(),
                Step::Read,
                unauthorized(),
            ],
        ]
    })
    .await;
    let manager = NetworkAccessManager::builder()
        .add_root_certificate_pem(server.ca_cert_pem().as_bytes())
        .build()
        .unwrap();
    let start = format!("http://alice:s3cret@127.0.0.1:{}/start", server.port());
    let request = Request::new(start)
        .with_header("Authorization", "Bearer app-token")
        .with_header("Cookie", "session=app-cookie");
    let reply = manager.get(request);
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::AuthenticationRequiredError),
        "{:?}",
        reply.error()
    );
    assert_eq!(reply.url().scheme(), "https");
    let requests = server.requests();
    assert_eq!(requests[0].connection, 0);
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer app-token")
    );
    let on_tls: Vec<Recorded> = requests.into_iter().filter(|r| r.connection > 0).collect();
    assert_no_credentials(&on_tls, "https on the same port");
}

/// Credentials cached for one port (after a successful 401 exchange) are not offered to
/// another port of the same host with the same realm, pre-emptively or on its 401.
#[tokio::test]
async fn cve_2022_27776_cached_credentials_stay_on_their_port() {
    let target = challenging_target(false).await;
    let origin = ScriptServer::start(vec![vec![
        // First reply: the challenge, answered from the URL's user info, accepted.
        Step::Read,
        unauthorized(),
        Step::Read,
        ok("welcome"),
        // Second reply: a redirect to the other port.
        Step::Read,
        redirect_to(&target.url("/landing")),
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    let login = format!("http://alice:s3cret@127.0.0.1:{}/login", origin.port());
    let reply = manager.get(Request::new(login));
    done(&reply).await;
    assert_eq!(kind(&reply), None, "{:?}", reply.error());
    assert!(origin.requests()[1].header("authorization").is_some());

    let reply = manager.get(Request::new(origin.url("/go")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::AuthenticationRequiredError),
        "{:?}",
        reply.error()
    );
    assert_eq!(
        origin.requests()[2]
            .header("authorization")
            .map(|a| a.starts_with("Basic")),
        Some(true),
        "the cache answers for its own origin pre-emptively"
    );
    assert_no_credentials(&target.requests(), "cached credentials");
}

#[tokio::test]
async fn cve_2022_27780_a_percent_encoded_slash_in_a_host_is_refused() {
    let server = ScriptServer::start(vec![vec![Step::Read, ok("reached")]]).await;
    let manager = NetworkAccessManager::new();
    for host in [
        "127.0.0.1%2F.evil.test",
        "127.0.0.1%2f.evil.test",
        "evil.test%2F127.0.0.1",
    ] {
        let url = format!("http://{host}:{}/x", server.port());
        let reply = manager.get(Request::new(&url));
        done(&reply).await;
        let error = reply.error().expect("refused");
        assert_eq!(
            error.kind(),
            NetworkError::ProtocolUnknownError,
            "{url}: {error:?}"
        );
        assert!(error.message().contains("Invalid URL"), "{error}");
        assert!(error.message().contains("percent-encoded"), "{error}");
        assert!(
            Proxy::parse(&format!("http://{host}:3128")).is_err(),
            "{host}"
        );
    }
    assert_eq!(server.connections(), 0, "no socket was opened");

    // The same host in a redirect's Location.
    let origin = ScriptServer::start(vec![vec![
        Step::Read,
        redirect_to(&format!(
            "http://127.0.0.1%2F.evil.test:{}/x",
            server.port()
        )),
    ]])
    .await;
    let reply = manager.get(Request::new(origin.url("/start")));
    done(&reply).await;
    let error = reply.error().expect("refused");
    assert_eq!(error.kind(), NetworkError::ProtocolFailure, "{error:?}");
    assert!(
        error.message().contains("Invalid redirect target"),
        "{error}"
    );
    assert!(error.message().contains("percent-encoded"), "{error}");
    assert_eq!(server.connections(), 0, "no socket was opened");
}

/// A proxy script that opens a tunnel and serves every request on it.
fn tunnelling_proxy() -> Vec<Vec<Step>> {
    vec![vec![
        Step::ReadHead,
        Step::write("HTTP/1.1 200 Connection established\r\n\r\n"),
        Step::StartTls,
        Step::Read,
        ok("one"),
        Step::Read,
        ok("two"),
    ]]
}

/// A proxy script that serves absolute-form requests on a keep-alive connection.
fn forwarding_proxy() -> Vec<Vec<Step>> {
    vec![vec![
        Step::Read,
        ok("one"),
        Step::Read,
        ok("two"),
        Step::Read,
        ok("three"),
    ]]
}

/// Same origin, same proxy host and port, different proxy credentials: different connections,
/// for tunnels (https) and for absolute-form requests (http).
#[tokio::test]
async fn cve_2021_22924_connections_are_not_shared_across_proxy_credentials() {
    for https in [true, false] {
        let proxy = if https {
            ScriptServer::start(tunnelling_proxy()).await
        } else {
            ScriptServer::start(forwarding_proxy()).await
        };
        let port = proxy.port();
        let factory = move |url: &Url| {
            let user = if url.path().starts_with("/alice") {
                "alice"
            } else {
                "bob"
            };
            vec![Proxy::http("127.0.0.1", port).with_credentials(user, "pw")]
        };
        let manager = NetworkAccessManager::builder()
            .add_root_certificate_pem(proxy.ca_cert_pem().as_bytes())
            .proxy_factory(std::sync::Arc::new(factory))
            .build()
            .unwrap();
        let scheme = if https { "https" } else { "http" };
        for path in ["/alice/1", "/alice/2", "/bob/1"] {
            let reply = manager.get(Request::new(format!("{scheme}://example.test{path}")));
            done(&reply).await;
            assert_eq!(kind(&reply), None, "{scheme}{path}: {:?}", reply.error());
        }
        let connections: Vec<(String, usize)> = proxy
            .requests()
            .iter()
            .filter(|r| !r.request_line().starts_with("CONNECT"))
            .map(|r| (r.request_line().to_owned(), r.connection))
            .collect();
        assert_eq!(connections.len(), 3, "{connections:?}");
        assert_eq!(
            connections[0].1, connections[1].1,
            "{scheme}: the same credentials share: {connections:?}"
        );
        assert_ne!(
            connections[0].1, connections[2].1,
            "{scheme}: other credentials never share: {connections:?}"
        );
    }
}

/// A connection made by ignoring certificate errors for one reply is never handed to a reply
/// that did not ignore them (nor to another that did: it is single-use).
#[tokio::test]
async fn cve_2021_22924_connections_are_not_shared_across_tls_settings() {
    let server = ScriptServer::start_tls(vec![
        vec![Step::Read, ok("accepted"), Step::Read, ok("reused!")],
        // The handshake of the strict request fails on the client side; then a new one.
        vec![Step::Read, ok("fresh")],
    ])
    .await;
    // The manager does not trust the script server's CA.
    let manager = NetworkAccessManager::new();
    let url = server.https_url("/x");
    let lenient = manager.get_with(Request::new(&url), |r| r.ignore_ssl_errors());
    done(&lenient).await;
    assert_eq!(kind(&lenient), None, "{:?}", lenient.error());
    assert_eq!(lenient.read_all(), "accepted".as_bytes());

    let strict = manager.get(Request::new(&url));
    done(&strict).await;
    assert_eq!(
        kind(&strict),
        Some(NetworkError::SslHandshakeFailedError),
        "the lenient connection is not reused: {:?}",
        strict.error()
    );

    let lenient = manager.get_with(Request::new(&url), |r| r.ignore_ssl_errors());
    done(&lenient).await;
    assert_eq!(kind(&lenient), None, "{:?}", lenient.error());
    assert_eq!(
        lenient.read_all(),
        "fresh".as_bytes(),
        "single-use: a new connection"
    );
    assert!(server
        .requests()
        .iter()
        .all(|r| r.request_line() == "GET /x HTTP/1.1"));
    assert_eq!(server.requests().len(), 2);
}
