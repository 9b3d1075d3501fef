//! In-process HTTP test servers for the `netaccess` integration tests and CLI demo.
//!
//! A [`TestServer`] binds `127.0.0.1:0`, serves the routes below over HTTP/1.1 or
//! HTTP/2 (cleartext prior knowledge or TLS with ALPN), or answers every connection
//! with a hand-written faulty responder ([`RawFault`]). It counts connections and
//! requests ([`Stats`]) so tests can assert on connection reuse and parallelism.
//!
//! # Routes (hyper modes: `http1`, `h2c`, `tls`, `tls_http1_only`)
//!
//! Any method is accepted. Unparsable numbers or headers give `400`; unknown paths
//! give `404` with body `not found`.
//!
//! | Route | Response |
//! |---|---|
//! | `/`, `/hello` | `200`, `text/plain` body `hello` |
//! | `/bytes/N[?chunked=1&chunk=K&cache_control=CC&vary=V]` | `200`, N [pattern](pattern_byte) bytes in K-byte chunks (default 64 KiB, max 1 MiB); `Content-Length: N` unless `chunked=1`; `Range`/`If-Range` (206, 416), `ETag: "bytes-N"`, a fixed `Last-Modified`, 304 on `If-None-Match`/`If-Modified-Since`; `cache_control` and `vary` set those headers; `fail_revalidation=1` answers conditional requests with 503 |
//! | `/gzip/N[?cache_control=CC]` | N pattern bytes, gzip-encoded (`Content-Encoding: gzip`) |
//! | `/status/CODE` | that status, body `status CODE` (empty for 204/304; 1xx rejected with 400) |
//! | `/delay/MS` | waits MS ms before the headers, then `200` `delayed` |
//! | `/slow/MS[?size=N]` | waits MS ms before the headers, then N pattern bytes (default 16) |
//! | `/redirect/N` | `302` to `/redirect/N-1`; `/redirect/0` answers `hello` |
//! | `/redirect-to?url=U[&status=S][&set_cookie=V]` | redirect (default `302`) with `Location: U`; each `set_cookie` adds a `Set-Cookie` |
//! | `/echo` | `200` JSON `{method, path, query, authority, headers, body_len, version}`; header names lowercase, repeats joined with `", "`; `query` is `""` when absent; `version` is `"HTTP/1.1"` or `"HTTP/2"` |
//! | `/echo-body` | `200`, the request body, `Content-Type` copied; `X-Response-Content-Encoding: C` becomes `Content-Encoding: C` |
//! | `/multipart` | parses a `multipart/*` body as it streams in (`multer`); `200` JSON `{content_type, mime_version, request_headers, parts: [{name, file_name, content_type, headers, len, fnv1a64}]}` (`null` when absent; `fnv1a64` is 16 hex digits; header names lowercase as in `/echo`), or `400` with the parse error |
//! | `/header?Name=Value&…` | `200` `ok` with those response headers (percent-decoded; repeats appended) |
//! | `/stall-after-headers` | `200`, `Content-Length: 1000`, then no body byte ever |
//! | `/close-mid-body[?size=N]` | `Content-Length: N` (default 100000), N/2 bytes, then the connection is aborted |
//! | `/wrong-length` | `Content-Length: 1000`, 10 bytes, then the connection is aborted |
//! | `/trickle[?bytes=N&interval_ms=I]` | `Content-Length: N` (default 16), one byte every I ms (default 50) |
//! | `/never-respond` | never sends headers |
//! | `/reset` | the whole connection is reset (TCP RST) without a response; over HTTP/2 this kills every stream of that connection |
//! | `/basic-auth/USER/PASS[?realm=R&charset=UTF-8]` | `200` JSON `{"authenticated": true, "user": USER}` when `Authorization: Basic` decodes (as UTF-8) to `USER:PASS` (both percent-decoded from the path); otherwise `401` with `WWW-Authenticate: Basic realm="R"` (default `netaccess`), plus `, charset="UTF-8"` when asked |
//! | `/digest-auth/QOP/USER/PASS[/ALG][?realm=R&stale_after=N&userhash=true]` | RFC 7616 Digest: QOP is `auth`, `auth-int` or `auth,auth-int`; ALG is `MD5` (default), `MD5-sess`, `SHA-256`, `SHA-256-sess`, `SHA-512-256` or `SHA-512-256-sess`. Without valid credentials `401` with `WWW-Authenticate: Digest realm="R", qop="…", algorithm=ALG, nonce="…", opaque="…"` (`, userhash=true` when asked) and a fresh random nonce remembered by this server. Valid credentials (right response for the method, `uri`, body for `auth-int`, known nonce and its opaque, nonce count above the last one for that nonce, hashed user name when `userhash=true` is sent) give `200` JSON `{"authenticated": true, "user", "algorithm", "qop" (the client's), "userhash", "nc"}`. After N successful uses (`stale_after=N`) a nonce is stale: a valid response with it gets `401` with a new nonce and `stale=true`. Malformed credentials give `400` |
//! | `/respond/ID?status=S&body=B&Name=Value&N:Name=V&N+:Name=V[&validate=1&ranges=1&fail=reset]` | for cache tests: status S (default 200), body B, the other parameters as response headers; `N:` applies a parameter to the Nth request to this path only, `N+:` (written `N%2B:`) to the Nth and later; `validate=1` answers a matching `If-None-Match` (the `etag` parameter) or `If-Modified-Since` (`last-modified`) with `304`; `ranges=1` serves a single `Range` as `206`; `fail=reset` resets the connection; the request's `Range`, `If-None-Match`, `If-Modified-Since`, `Authorization`, `Cache-Control` come back as `X-Saw-…` headers (see `respond.rs`) |
//! | `/proxy-auth-required` | always `407` with `Proxy-Authenticate: Basic realm="proxy"` |
//!
//! Aborted bodies wait ~100 ms after their last byte so it reaches the client first.
//! Over HTTP/2 an aborted body resets its stream rather than the connection.
//!
//! ```no_run
//! # async fn demo() {
//! use netaccess_testserver::TestServer;
//!
//! let server = TestServer::builder().tls().start().await;
//! let url = server.url("/bytes/1024");
//! let ca_pem = server.ca_cert_pem().expect("TLS servers have a CA");
//! // ... point the client at `url`, trusting `ca_pem` ...
//! assert_eq!(server.requests_for("/bytes/1024"), 0);
//! # let _ = (url, ca_pem);
//! # }
//! ```
//!
//! [`ScriptServer`] plays connection scripts whose every byte the test states (fault
//! matrices: framing errors, TLS truncation, misbehaving proxies).
//!
//! The [`peers`] module starts third-party servers (squid, microsocks, Apache httpd) on
//! loopback for interoperability tests.
//!
//! Dropping the last [`TestServer`] handle (or calling [`TestServer::shutdown`]) stops
//! accepting and closes every open connection.

mod auth;
mod body;
mod builder;
mod connection;
pub mod h2script;
mod pattern;
pub mod peers;
mod query;
mod raw;
mod reset;
mod respond;
mod routes;
mod script;
mod server;
mod shutdown;
mod stats;
mod tls;
mod unix;

pub use builder::ServerBuilder;
pub use pattern::{expected_bytes, pattern_byte};
pub use raw::RawFault;
pub use script::{Recorded, ScriptServer, Step};
pub use server::TestServer;
pub use stats::Stats;
pub use unix::UnixTestServer;

/// `H(data)` of an HTTP Digest algorithm (RFC 7616) as lowercase hex, for tests that compute
/// digest responses themselves: `MD5`, `SHA-256`, `SHA-512-256` and their `-sess` names (which
/// hash alike), case-insensitive; `None` for any other name.
pub fn digest_hex(algorithm: &str, data: &[u8]) -> Option<String> {
    auth::Algorithm::from_name(algorithm).map(|algorithm| algorithm.hash(data))
}
