//! Regression tests, against real sockets, for what the fuzz targets found in code that is not
//! a parser of its own (docs/fuzzing.md lists every finding; the parser ones are unit tests
//! next to their parsers).

use netaccess::{NetworkAccessManager, Reply, Request};
use netaccess_testserver::TestServer;
use serde_json::Value;

fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn echo(reply: &Reply) -> Value {
    let body = reply.bytes().await.expect("the request succeeds");
    serde_json::from_slice(&body).expect("echo JSON")
}

/// Fuzz target `cookie_jar_rules`: a cookie whose name or value holds UTF-8 (the parser keeps
/// it, as browsers do) made the `Cookie` header fail `HeaderValue::from_str`, so every later
/// request to the host failed. It is sent as bytes now, merged after the application's own.
#[tokio::test]
async fn a_utf8_cookie_does_not_break_later_requests() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let echo_url = server.url("/echo");
    let set = server.url(&format!(
        "/redirect-to?url={}&set_cookie={}",
        enc(&echo_url),
        enc("z\u{31c}6=caf\u{e9}")
    ));
    let json = echo(&manager.get(Request::new(set))).await;
    assert_eq!(json["headers"]["cookie"], "z\u{31c}6=caf\u{e9}", "{json}");

    let own = Request::new(&echo_url).with_header("Cookie", "own=1");
    let json = echo(&manager.get(own)).await;
    assert_eq!(
        json["headers"]["cookie"], "own=1; z\u{31c}6=caf\u{e9}",
        "{json}"
    );
}
