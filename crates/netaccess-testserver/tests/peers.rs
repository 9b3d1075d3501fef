//! The third-party peers start on loopback and behave as the `netaccess` interop tests expect.
//! Each test talks to a peer with a hand-written exchange over a raw socket.
//!
//! A missing peer binary fails the test with the message saying how to install it.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use netaccess_testserver::peers::{
    Apache, ApacheOptions, Microsocks, Squid, SquidOptions, APACHE_BASIC_BODY, APACHE_DIGEST_BODY,
    SQUID_REALM,
};
use netaccess_testserver::{digest_hex, TestServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for one network step.
const STEP: Duration = Duration::from_secs(5);

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {STEP:?}"))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    bounded("connect", TcpStream::connect(addr))
        .await
        .expect("connect")
}

/// Writes `request`, then reads until the peer closes.
async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &str) -> String {
    bounded("exchange", async {
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut received = Vec::new();
        stream.read_to_end(&mut received).await.expect("read");
        String::from_utf8_lossy(&received).into_owned()
    })
    .await
}

async fn exchange(addr: SocketAddr, request: &str) -> String {
    exchange_on(&mut connect(addr).await, request).await
}

/// Reads a response head (through the blank line) and nothing more.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    bounded("response head", async {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = stream.read_u8().await.expect("head byte");
            head.push(byte);
        }
        String::from_utf8_lossy(&head).into_owned()
    })
    .await
}

/// The value of header `name` in a response (case-insensitive name).
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Polls `condition` for up to [`STEP`].
async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + STEP;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

fn proxied_get(origin: &TestServer, path: &str, extra_headers: &str) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{extra_headers}Connection: close\r\n\r\n",
        origin.url(path),
        origin.port()
    )
}

fn connect_request(origin: &TestServer, extra_headers: &str) -> String {
    format!(
        "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra_headers}\r\n",
        port = origin.port()
    )
}

const PLAIN_GET_HELLO: &str = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// squid

#[tokio::test]
async fn squid_forwards_absolute_form_requests_and_logs_them() {
    let origin = TestServer::http1().await;
    let squid = Squid::start(SquidOptions::default()).expect("squid");
    assert_eq!(squid.url(), format!("http://127.0.0.1:{}", squid.port()));
    let response = exchange(squid.addr(), &proxied_get(&origin, "/hello", "")).await;
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(body(&response), "hello");
    assert!(header(&response, "via").is_some_and(|via| via.contains("squid")));
    assert_eq!(origin.requests_for("/hello"), 1);
    let url = origin.url("/hello");
    assert!(
        eventually(|| squid.log().contains(&url)).await,
        "access log: {}",
        squid.log()
    );
}

#[tokio::test]
async fn squid_tunnels_connect_to_any_port() {
    let origin = TestServer::http1().await;
    let squid = Squid::start(SquidOptions::default()).expect("squid");
    let mut stream = connect(squid.addr()).await;
    bounded(
        "CONNECT",
        stream.write_all(connect_request(&origin, "").as_bytes()),
    )
    .await
    .expect("write CONNECT");
    let head = read_head(&mut stream).await;
    assert_eq!(status(&head), 200, "{head}");
    let response = exchange_on(&mut stream, PLAIN_GET_HELLO).await;
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(body(&response), "hello");
    assert_eq!(origin.stats().connections_accepted, 1);
}

#[tokio::test]
async fn squid_with_basic_auth_wants_proxy_credentials() {
    let origin = TestServer::http1().await;
    let squid = Squid::start(SquidOptions {
        basic_auth: Some(("alice".into(), "s3cret pass".into())),
    })
    .expect("squid");

    let response = exchange(squid.addr(), &proxied_get(&origin, "/hello", "")).await;
    assert_eq!(status(&response), 407, "{response}");
    assert_eq!(
        header(&response, "proxy-authenticate"),
        Some(format!("Basic realm=\"{SQUID_REALM}\"").as_str())
    );

    let wrong = format!("Proxy-Authorization: Basic {}\r\n", basic("alice", "nope"));
    let response = exchange(squid.addr(), &proxied_get(&origin, "/hello", &wrong)).await;
    assert_eq!(status(&response), 407, "{response}");

    let right = format!(
        "Proxy-Authorization: Basic {}\r\n",
        basic("alice", "s3cret pass")
    );
    let response = exchange(squid.addr(), &proxied_get(&origin, "/hello", &right)).await;
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(body(&response), "hello");
    assert_eq!(origin.requests_for("/hello"), 1);

    // CONNECT needs the credentials too.
    let mut stream = connect(squid.addr()).await;
    bounded(
        "CONNECT",
        stream.write_all(connect_request(&origin, "").as_bytes()),
    )
    .await
    .expect("write CONNECT");
    let head = read_head(&mut stream).await;
    assert_eq!(status(&head), 407, "{head}");
    let mut stream = connect(squid.addr()).await;
    bounded(
        "CONNECT",
        stream.write_all(connect_request(&origin, &right).as_bytes()),
    )
    .await
    .expect("write CONNECT");
    let head = read_head(&mut stream).await;
    assert_eq!(status(&head), 200, "{head}");
    let response = exchange_on(&mut stream, PLAIN_GET_HELLO).await;
    assert_eq!(body(&response), "hello");
    assert!(
        eventually(|| squid.log().contains(" alice ")).await,
        "access log: {}",
        squid.log()
    );
}

// ---------------------------------------------------------------------------------------------
// microsocks

/// SOCKS5 greeting offering `methods`; returns the chosen method.
async fn socks_greet(stream: &mut TcpStream, methods: &[u8]) -> u8 {
    bounded("SOCKS5 greeting", async {
        let mut greeting = vec![5, methods.len() as u8];
        greeting.extend_from_slice(methods);
        stream.write_all(&greeting).await.expect("write greeting");
        let mut reply = [0u8; 2];
        stream.read_exact(&mut reply).await.expect("method reply");
        assert_eq!(reply[0], 5, "SOCKS version");
        reply[1]
    })
    .await
}

/// RFC 1929 username/password sub-negotiation; returns the status (0 = success).
async fn socks_login(stream: &mut TcpStream, user: &str, password: &str) -> u8 {
    bounded("SOCKS5 login", async {
        let mut login = vec![1, user.len() as u8];
        login.extend_from_slice(user.as_bytes());
        login.push(password.len() as u8);
        login.extend_from_slice(password.as_bytes());
        stream.write_all(&login).await.expect("write login");
        let mut reply = [0u8; 2];
        stream.read_exact(&mut reply).await.expect("login reply");
        assert_eq!(reply[0], 1, "sub-negotiation version");
        reply[1]
    })
    .await
}

/// CONNECT to `target` (an IPv4 address); returns the reply code (0 = succeeded).
async fn socks_connect(stream: &mut TcpStream, target: SocketAddr) -> u8 {
    let SocketAddr::V4(target) = target else {
        panic!("IPv4 target expected")
    };
    bounded("SOCKS5 CONNECT", async {
        let mut request = vec![5, 1, 0, 1];
        request.extend_from_slice(&target.ip().octets());
        request.extend_from_slice(&target.port().to_be_bytes());
        stream.write_all(&request).await.expect("write CONNECT");
        // VER REP RSV ATYP=1 ADDR(4) PORT(2)
        let mut reply = [0u8; 10];
        stream.read_exact(&mut reply).await.expect("CONNECT reply");
        assert_eq!((reply[0], reply[3]), (5, 1), "reply {reply:?}");
        reply[1]
    })
    .await
}

#[tokio::test]
async fn microsocks_without_auth_connects() {
    let origin = TestServer::http1().await;
    let socks = Microsocks::start(None).expect("microsocks");
    assert_eq!(socks.url(), format!("socks5://127.0.0.1:{}", socks.port()));
    let mut stream = connect(socks.addr()).await;
    assert_eq!(socks_greet(&mut stream, &[0]).await, 0);
    assert_eq!(socks_connect(&mut stream, origin.addr()).await, 0);
    let response = exchange_on(&mut stream, PLAIN_GET_HELLO).await;
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(body(&response), "hello");
}

#[tokio::test]
async fn microsocks_with_auth_wants_username_and_password() {
    let origin = TestServer::http1().await;
    let socks = Microsocks::start(Some(("bob", "hunter2"))).expect("microsocks");

    // Offering only "no authentication" is refused.
    let mut stream = connect(socks.addr()).await;
    assert_eq!(socks_greet(&mut stream, &[0]).await, 0xff);

    // A wrong password fails the sub-negotiation.
    let mut stream = connect(socks.addr()).await;
    assert_eq!(socks_greet(&mut stream, &[0, 2]).await, 2);
    assert_ne!(socks_login(&mut stream, "bob", "wrong").await, 0);

    let mut stream = connect(socks.addr()).await;
    assert_eq!(socks_greet(&mut stream, &[0, 2]).await, 2);
    assert_eq!(socks_login(&mut stream, "bob", "hunter2").await, 0);
    assert_eq!(socks_connect(&mut stream, origin.addr()).await, 0);
    let response = exchange_on(&mut stream, PLAIN_GET_HELLO).await;
    assert_eq!(body(&response), "hello");
}

// ---------------------------------------------------------------------------------------------
// Apache

/// The auth-params of a challenge, unquoted (no escapes in Apache's values).
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    challenge.split_once(' ')?.1.split(',').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        (key == name).then(|| value.trim_matches('"').to_owned())
    })
}

fn apache_get(path: &str, authorization: Option<&str>) -> String {
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}Connection: close\r\n\r\n")
}

/// An MD5 `Authorization: Digest` value answering `challenge` for `GET uri`.
fn digest_md5(challenge: &str, user: &str, password: &str, uri: &str) -> String {
    let realm = challenge_param(challenge, "realm").expect("realm");
    let nonce = challenge_param(challenge, "nonce").expect("nonce");
    let md5 = |data: String| digest_hex("MD5", data.as_bytes()).expect("MD5");
    let ha1 = md5(format!("{user}:{realm}:{password}"));
    let ha2 = md5(format!("GET:{uri}"));
    let (nc, cnonce) = ("00000001", "0a4f113b");
    let response = md5(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
    )
}

#[tokio::test]
async fn apache_digest_md5_challenge_and_success() {
    let options = ApacheOptions {
        digest_user: ("carol".into(), "digest pass".into()),
        realm: "apache realm".into(),
    };
    let apache = Apache::start(options).expect("apache2");
    assert_eq!(
        apache.url("index.html"),
        format!("http://127.0.0.1:{}/index.html", apache.port())
    );

    let response = exchange(apache.addr(), &apache_get("/", None)).await;
    assert_eq!(status(&response), 401, "{response}");
    let challenge = header(&response, "www-authenticate").expect("challenge");
    assert!(challenge.starts_with("Digest "), "{challenge}");
    assert_eq!(
        challenge_param(challenge, "realm").as_deref(),
        Some("apache realm")
    );
    assert_eq!(
        challenge_param(challenge, "algorithm").as_deref(),
        Some("MD5")
    );
    assert_eq!(challenge_param(challenge, "qop").as_deref(), Some("auth"));

    let wrong = digest_md5(challenge, "carol", "wrong", "/");
    let denied = exchange(apache.addr(), &apache_get("/", Some(&wrong))).await;
    assert_eq!(status(&denied), 401, "{denied}");

    let right = digest_md5(challenge, "carol", "digest pass", "/");
    let ok = exchange(apache.addr(), &apache_get("/", Some(&right))).await;
    assert_eq!(status(&ok), 200, "{ok}\nerror log: {}", apache.error_log());
    assert_eq!(body(&ok), APACHE_DIGEST_BODY);
    assert!(
        eventually(|| apache.log().contains("carol")).await,
        "access log: {}",
        apache.log()
    );
}

#[tokio::test]
async fn apache_basic_area() {
    let apache = Apache::start(ApacheOptions::default()).expect("apache2");
    let (user, password) = ApacheOptions::default().digest_user;
    let response = exchange(apache.addr(), &apache_get("/basic/", None)).await;
    assert_eq!(status(&response), 401, "{response}");
    assert_eq!(
        header(&response, "www-authenticate"),
        Some("Basic realm=\"netaccess-apache\"")
    );
    let credentials = format!("Basic {}", basic(&user, &password));
    let response = exchange(apache.addr(), &apache_get("/basic/", Some(&credentials))).await;
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(body(&response), APACHE_BASIC_BODY);
}

#[test]
fn peers_stop_on_drop() {
    let socks = Microsocks::start(None).expect("microsocks");
    let addr = socks.addr();
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(socks);
    assert!(std::net::TcpStream::connect(addr).is_err());
}
