//! `/basic-auth`, `/digest-auth` and `/proxy-auth-required` over real connections, with the
//! client side computed here (RFC 7617, RFC 7616).

mod common;

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use netaccess_testserver::{digest_hex, TestServer};

fn get_with(path: &str, authorization: Option<&str>) -> Request<Full<Bytes>> {
    request_with("GET", path, authorization, Bytes::new())
}

fn request_with(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Full::new(body)).expect("valid request")
}

/// Sends `request` on `sender`: status, `WWW-Authenticate`, body.
async fn send(
    sender: &mut Http1Sender,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Option<String>, String) {
    let response = tokio::time::timeout(STEP_TIMEOUT, sender.send_request(request))
        .await
        .expect("response within timeout")
        .expect("response");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = body_bytes(response).await.expect("body");
    (
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn basic_auth_challenges_then_accepts_utf8_credentials() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    let path = "/basic-auth/J%C3%BCrgen/p%C3%A4ss%20word?charset=UTF-8&realm=r%C3%A9alm";

    let (status, challenge, _) = send(&mut sender, get_with(path, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = challenge.expect("challenge");
    // A non-ASCII realm goes out as UTF-8.
    assert!(
        challenge.starts_with("Basic realm=\"r\u{e9}alm\""),
        "{challenge}"
    );
    assert!(challenge.ends_with(", charset=\"UTF-8\""), "{challenge}");

    let wrong = basic("J\u{fc}rgen", "nope");
    let (status, _, _) = send(&mut sender, get_with(path, Some(&wrong))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let right = basic("J\u{fc}rgen", "p\u{e4}ss word");
    let (status, _, body) = send(&mut sender, get_with(path, Some(&right))).await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({"authenticated": true, "user": "J\u{fc}rgen"})
    );

    let (_, challenge, _) = send(&mut sender, get_with("/basic-auth/a/b", None)).await;
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"netaccess\""));
}

#[tokio::test]
async fn proxy_auth_required_is_a_407() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    let response = sender
        .send_request(get("/proxy-auth-required"))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert_eq!(
        response.headers()["proxy-authenticate"],
        "Basic realm=\"proxy\""
    );
}

/// `name="value"` or `name=value` from a challenge (quoted values have no escapes here).
fn param(challenge: &str, name: &str) -> Option<String> {
    let mut rest = challenge.strip_prefix("Digest ")?;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"')?,
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if key.trim() == name {
            return Some(value.to_owned());
        }
        rest = next.trim_start_matches([',', ' ']);
    }
    None
}

/// A digest client for one challenge.
struct DigestClient {
    algorithm: String,
    realm: String,
    nonce: String,
    opaque: String,
    nc: u32,
}

impl DigestClient {
    fn new(challenge: &str) -> DigestClient {
        DigestClient {
            algorithm: param(challenge, "algorithm").expect("algorithm"),
            realm: param(challenge, "realm").expect("realm"),
            nonce: param(challenge, "nonce").expect("nonce"),
            opaque: param(challenge, "opaque").expect("opaque"),
            nc: 0,
        }
    }

    fn h(&self, data: &[u8]) -> String {
        digest_hex(&self.algorithm, data).expect("known algorithm")
    }

    /// The `Authorization` value for the next request (nonce count + 1).
    fn authorize(&mut self, user: &str, password: &str, auth: Auth<'_>) -> String {
        self.nc += 1;
        let nc = format!("{:08x}", self.nc);
        let cnonce = format!("cnonce{}", self.nc);
        let mut ha1 = self.h(format!("{user}:{}:{password}", self.realm).as_bytes());
        if self.algorithm.ends_with("-sess") {
            ha1 = self.h(format!("{ha1}:{}:{cnonce}", self.nonce).as_bytes());
        }
        let (qop, ha2) = match auth.body {
            Some(body) => (
                "auth-int",
                self.h(format!("{}:{}:{}", auth.method, auth.uri, self.h(body)).as_bytes()),
            ),
            None => (
                "auth",
                self.h(format!("{}:{}", auth.method, auth.uri).as_bytes()),
            ),
        };
        let response = self.h(format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce).as_bytes());
        let username = if auth.userhash {
            self.h(format!("{user}:{}", self.realm).as_bytes())
        } else {
            user.to_owned()
        };
        format!(
            "Digest username=\"{username}\", realm=\"{}\", uri=\"{}\", algorithm={}, \
             nonce=\"{}\", nc={nc}, cnonce=\"{cnonce}\", qop={qop}, response=\"{response}\", \
             opaque=\"{}\", userhash={}",
            self.realm, auth.uri, self.algorithm, self.nonce, self.opaque, auth.userhash
        )
    }
}

#[derive(Clone, Copy)]
struct Auth<'a> {
    method: &'a str,
    uri: &'a str,
    /// `Some(body)`: qop=auth-int over this body.
    body: Option<&'a [u8]>,
    userhash: bool,
}

fn auth_get(uri: &str) -> Auth<'_> {
    Auth {
        method: "GET",
        uri,
        body: None,
        userhash: false,
    }
}

#[tokio::test]
async fn digest_auth_with_every_algorithm() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    for algorithm in ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256"] {
        let uri = format!("/digest-auth/auth/user/pass%20word/{algorithm}");
        let (status, challenge, _) = send(&mut sender, get_with(&uri, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let challenge = challenge.expect("challenge");
        assert!(
            challenge.starts_with(&format!(
                "Digest realm=\"netaccess\", qop=\"auth\", algorithm={algorithm}, nonce=\""
            )),
            "{challenge}"
        );
        let mut client = DigestClient::new(&challenge);
        assert_eq!(client.nonce.len(), 32);
        for expected_nc in 1..=2 {
            let authorization = client.authorize("user", "pass word", auth_get(&uri));
            let (status, _, body) = send(&mut sender, get_with(&uri, Some(&authorization))).await;
            assert_eq!(status, StatusCode::OK, "{algorithm}: {body}");
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(json["authenticated"], true);
            assert_eq!(json["user"], "user");
            assert_eq!(json["algorithm"], algorithm);
            assert_eq!(json["qop"], "auth");
            assert_eq!(json["nc"], expected_nc);
        }
        // A wrong password gets a fresh challenge.
        let authorization = client.authorize("user", "wrong", auth_get(&uri));
        let (status, challenge, _) = send(&mut sender, get_with(&uri, Some(&authorization))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_ne!(
            param(&challenge.expect("challenge"), "nonce"),
            Some(client.nonce)
        );
    }
}

#[tokio::test]
async fn digest_nonce_count_must_grow() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    let uri = "/digest-auth/auth/u/p/SHA-256";
    let (_, challenge, _) = send(&mut sender, get_with(uri, None)).await;
    let mut client = DigestClient::new(&challenge.expect("challenge"));
    let first = client.authorize("u", "p", auth_get(uri));
    let (status, _, _) = send(&mut sender, get_with(uri, Some(&first))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&mut sender, get_with(uri, Some(&first))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a replayed nonce count");
    // The nonce is shared by the server's connections.
    let mut other = http1_connect(server.addr()).await;
    let second = client.authorize("u", "p", auth_get(uri));
    let (status, _, _) = send(&mut other, get_with(uri, Some(&second))).await;
    assert_eq!(status, StatusCode::OK);
    // Another server does not know the nonce.
    let stranger = TestServer::http1().await;
    let mut sender = http1_connect(stranger.addr()).await;
    let third = client.authorize("u", "p", auth_get(uri));
    let (status, challenge, _) = send(&mut sender, get_with(uri, Some(&third))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!challenge.expect("challenge").contains("stale"));
}

#[tokio::test]
async fn digest_auth_int_hashes_the_body() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    let uri = "/digest-auth/auth,auth-int/u/p/SHA-256?realm=body";
    let (_, challenge, _) = send(&mut sender, get_with(uri, None)).await;
    let challenge = challenge.expect("challenge");
    assert_eq!(param(&challenge, "qop").as_deref(), Some("auth, auth-int"));
    assert_eq!(param(&challenge, "realm").as_deref(), Some("body"));
    let mut client = DigestClient::new(&challenge);
    let body: &[u8] = b"the request body";
    let auth = Auth {
        method: "POST",
        uri,
        body: Some(body),
        userhash: false,
    };
    let authorization = client.authorize("u", "p", auth);
    let (status, _, response) = send(
        &mut sender,
        request_with("POST", uri, Some(&authorization), Bytes::from_static(body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert!(response.contains("\"qop\":\"auth-int\""), "{response}");
    // The same credentials over another body fail.
    let authorization = client.authorize("u", "p", auth);
    let (status, _, _) = send(
        &mut sender,
        request_with(
            "POST",
            uri,
            Some(&authorization),
            Bytes::from_static(b"other"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn digest_userhash_and_stale_nonces() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    let uri = "/digest-auth/auth/J%C3%A4s%C3%B8n%20Doe/pw/SHA-512-256?userhash=true&stale_after=1";
    let (_, challenge, _) = send(&mut sender, get_with(uri, None)).await;
    let challenge = challenge.expect("challenge");
    assert!(challenge.ends_with(", userhash=true"), "{challenge}");
    let mut client = DigestClient::new(&challenge);
    let auth = Auth {
        userhash: true,
        ..auth_get(uri)
    };
    let authorization = client.authorize("J\u{e4}s\u{f8}n Doe", "pw", auth);
    let (status, _, body) = send(&mut sender, get_with(uri, Some(&authorization))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"userhash\":true"), "{body}");
    // Second use of a nonce that goes stale after one: 401 with stale=true and a new nonce.
    let authorization = client.authorize("J\u{e4}s\u{f8}n Doe", "pw", auth);
    let (status, challenge, _) = send(&mut sender, get_with(uri, Some(&authorization))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = challenge.expect("challenge");
    assert!(challenge.ends_with(", stale=true"), "{challenge}");
    let mut renewed = DigestClient::new(&challenge);
    assert_ne!(renewed.nonce, client.nonce);
    let authorization = renewed.authorize("J\u{e4}s\u{f8}n Doe", "pw", auth);
    let (status, _, _) = send(&mut sender, get_with(uri, Some(&authorization))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn digest_route_rejects_bad_paths_and_malformed_credentials() {
    let server = TestServer::http1().await;
    let mut sender = http1_connect(server.addr()).await;
    for path in [
        "/digest-auth/auth/u",
        "/digest-auth/auth-conf/u/p",
        "/digest-auth/auth/u/p/SHA-1",
        "/digest-auth/auth/u/p?stale_after=x",
    ] {
        let (status, _, body) = send(&mut sender, get_with(path, None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
    }
    let (status, _, body) = send(
        &mut sender,
        get_with("/digest-auth/auth/u/p", Some("Digest username=\"u\"")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Another scheme is simply challenged.
    let (status, challenge, _) = send(
        &mut sender,
        get_with("/digest-auth/auth/u/p", Some(&basic("u", "p"))),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.expect("challenge").starts_with("Digest "));
}
