//! The HTTP/1 fault matrix (issue 10): each misbehaviour is stated byte for byte by a
//! [`ScriptServer`] on a real loopback socket. Each case ends in bounded time with the right
//! outcome (Qt's `NetworkError`), and a connection left in an unknown state is never reused:
//! the tests check which connection every request arrived on.

use std::time::Duration;

use netaccess::{NetworkAccessManager, NetworkError, Reply, Request};
use netaccess_testserver::{ScriptServer, Step};

mod support;
use support::{done_within, kind};

/// Every case must end well within this.
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

/// GETs `url` and waits for the end; the body as text (lossy) and the error.
async fn get(manager: &NetworkAccessManager, url: &str) -> (Reply, String) {
    get_request(manager, Request::new(url)).await
}

async fn get_request(manager: &NetworkAccessManager, request: Request) -> (Reply, String) {
    let reply = manager.get(request);
    done(&reply).await;
    let body = String::from_utf8_lossy(&reply.read_all()).into_owned();
    (reply, body)
}

fn ok(body: &str) -> Step {
    Step::write(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// The connection index of each request the server saw.
fn connections_of(server: &ScriptServer) -> Vec<usize> {
    server.requests().iter().map(|r| r.connection).collect()
}

#[tokio::test]
async fn informational_100_and_103_before_the_final_response_are_skipped() {
    let server = ScriptServer::start(vec![vec![
        Step::Read,
        Step::write(
            "HTTP/1.1 100 Continue\r\n\r\n\
             HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal",
        ),
        Step::Read,
        ok("again"),
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, body) = get(&manager, &server.url("/a")).await;
    assert_eq!(kind(&reply), None);
    assert_eq!(reply.status_code(), Some(200));
    assert_eq!(body, "final");
    assert_eq!(reply.header("x-final").unwrap(), "yes");
    assert!(reply.header("link").is_none(), "1xx headers are not merged");
    let (reply, body) = get(&manager, &server.url("/b")).await;
    assert_eq!((kind(&reply), body.as_str()), (None, "again"));
    assert_eq!(
        connections_of(&server),
        [0, 0],
        "the connection's state is known"
    );
}

#[tokio::test]
async fn expect_100_continue_upload_refused_with_417() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::write(
            "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ),
        Step::Close,
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    let request = Request::new(server.url("/upload")).with_header("Expect", "100-continue");
    let reply = manager.post(request, vec![b'x'; 256 * 1024]);
    done(&reply).await;
    assert_eq!(reply.status_code(), Some(417));
    assert_eq!(
        kind(&reply),
        Some(NetworkError::UnknownContentError),
        "{:?}",
        reply.error()
    );
    let head = &server.requests()[0];
    assert_eq!(head.header("expect"), Some("100-continue"));
}

#[tokio::test]
async fn expect_100_continue_upload_with_and_without_the_100() {
    let server = ScriptServer::start(vec![vec![
        // A server that sends 100 before reading the body.
        Step::ReadHead,
        Step::write("HTTP/1.1 100 Continue\r\n\r\n"),
        Step::ReadBody,
        ok("stored"),
        // A server that never sends 100 and answers once the body is in.
        Step::Read,
        ok("stored without 100"),
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    for expected in ["stored", "stored without 100"] {
        let request = Request::new(server.url("/upload")).with_header("Expect", "100-continue");
        let reply = manager.post(request, vec![b'x'; 100_000]);
        done(&reply).await;
        assert_eq!(kind(&reply), None, "{:?}", reply.error());
        assert_eq!(reply.read_all(), expected.as_bytes());
    }
    assert_eq!(connections_of(&server), [0, 0]);
}

#[tokio::test]
async fn an_unexpected_101_is_a_protocol_failure_and_drops_the_connection() {
    let server = ScriptServer::start(vec![
        vec![
            Step::Read,
            Step::write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
            ),
            Step::Hang,
        ],
        vec![Step::Read, ok("fresh")],
    ])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, _) = get(&manager, &server.url("/ws")).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::ProtocolFailure),
        "{:?}",
        reply.error()
    );
    let (reply, body) = get(&manager, &server.url("/next")).await;
    assert_eq!((kind(&reply), body.as_str()), (None, "fresh"));
    assert_eq!(connections_of(&server), [0, 1]);
}

/// A body longer than its `Content-Length` (or bytes after the last chunk): the surplus is a
/// complete forged response. It must never be taken as the answer to the next request on that
/// connection, whether it came in the same write as the body or in a write of its own just
/// after.
#[tokio::test]
async fn surplus_after_content_length_is_never_read_as_the_next_response() {
    const FORGED: &str = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged";
    let same_write = vec![
        Step::Read,
        Step::write(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello{FORGED}"
        )),
        Step::Read,
        ok("same connection"),
    ];
    let own_write = vec![
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        Step::write(FORGED),
        Step::Read,
        ok("same connection"),
    ];
    let after_chunked = vec![
        Step::Read,
        Step::write(format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{FORGED}"
        )),
        Step::Read,
        ok("same connection"),
    ];
    for (name, first) in [
        ("same write", same_write),
        ("own write", own_write),
        ("after a chunked body", after_chunked),
    ] {
        let server = ScriptServer::start(vec![first, vec![Step::Read, ok("fresh")]]).await;
        let manager = NetworkAccessManager::new();
        let (reply, body) = get(&manager, &server.url("/first")).await;
        assert_eq!((kind(&reply), body.as_str()), (None, "hello"), "{name}");
        let (reply, body) = get(&manager, &server.url("/second")).await;
        assert_eq!(kind(&reply), None, "{name}: {:?}", reply.error());
        assert_eq!(body, "fresh", "{name}: a new connection answers");
        assert_eq!(connections_of(&server), [0, 1], "{name}");
    }
}

#[tokio::test]
async fn two_different_content_lengths_are_a_protocol_failure() {
    let server = ScriptServer::start(vec![
        vec![
            Step::Read,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            Step::Hang,
        ],
        vec![
            Step::Read,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"),
            Step::Hang,
        ],
        // Equal repeated values are one length (RFC 9110 8.6).
        vec![
            Step::Read,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
            Step::Hang,
        ],
    ])
    .await;
    let manager = NetworkAccessManager::new();
    for _ in 0..2 {
        let (reply, body) = get(&manager, &server.url("/x")).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::ProtocolFailure),
            "{:?}",
            reply.error()
        );
        assert_eq!(body, "");
    }
    let (reply, body) = get(&manager, &server.url("/same")).await;
    assert_eq!((kind(&reply), body.as_str()), (None, "hello"));
    assert_eq!(connections_of(&server), [0, 1, 2]);
}

/// RFC 9112 6.3: Transfer-Encoding overrides Content-Length; such a response may be a
/// smuggling attempt, so its connection is not reused.
#[tokio::test]
async fn content_length_with_transfer_encoding_uses_chunked_and_drops_the_connection() {
    let server = ScriptServer::start(vec![
        vec![
            Step::Read,
            Step::write(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n0\r\n\r\n",
            ),
            Step::Read,
            ok("same connection"),
        ],
        vec![Step::Read, ok("fresh")],
    ])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, body) = get(&manager, &server.url("/te")).await;
    assert_eq!((kind(&reply), body.as_str()), (None, "hello"));
    let (reply, body) = get(&manager, &server.url("/next")).await;
    assert_eq!((kind(&reply), body.as_str()), (None, "fresh"));
    assert_eq!(connections_of(&server), [0, 1]);
}

#[tokio::test]
async fn bad_chunk_sizes_are_a_protocol_failure() {
    let bodies = [
        "zz\r\nhello\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
        " \r\n\r\n",
    ];
    let scripts = bodies
        .iter()
        .map(|body| {
            vec![
                Step::Read,
                Step::write(format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
                )),
                Step::Hang,
            ]
        })
        .collect();
    let server = ScriptServer::start(scripts).await;
    let manager = NetworkAccessManager::new();
    for body in bodies {
        let (reply, _) = get(&manager, &server.url("/chunks")).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::ProtocolFailure),
            "{body:?}: {:?}",
            reply.error()
        );
    }
    assert_eq!(connections_of(&server), [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn a_missing_last_chunk_then_close_is_not_a_short_success() {
    let server = ScriptServer::start(vec![vec![
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        Step::Close,
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, body) = get(&manager, &server.url("/cut")).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::RemoteHostClosedError),
        "{:?}",
        reply.error()
    );
    assert!(body.is_empty() || body == "hello");
}

/// RFC 9112 5.2: a user agent replaces each obs-fold of a response with SP (Qt accepts
/// continuation lines too); the connection stays usable.
#[tokio::test]
async fn obs_fold_in_a_response_header_is_unfolded() {
    let server = ScriptServer::start(vec![vec![
        Step::Read,
        Step::write(
            "HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\nContent-Length: 2\r\n\r\nok",
        ),
        Step::Read,
        ok("again"),
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, body) = get(&manager, &server.url("/fold")).await;
    assert_eq!(
        (kind(&reply), body.as_str()),
        (None, "ok"),
        "{:?}",
        reply.error()
    );
    let folded = reply.header("x-folded").unwrap();
    let folded = folded.to_str().unwrap();
    assert!(
        folded.starts_with("first") && folded.ends_with("second") && !folded.contains('\n'),
        "{folded:?}"
    );
    let (_, body) = get(&manager, &server.url("/b")).await;
    assert_eq!(body, "again");
    assert_eq!(connections_of(&server), [0, 0]);
}

fn many_headers(n: usize) -> String {
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    for i in 1..n {
        head.push_str(&format!("X-H{i}: v\r\n"));
    }
    head.push_str("\r\nok");
    head
}

#[tokio::test]
async fn more_than_100_header_fields_are_a_protocol_failure() {
    let server = ScriptServer::start(vec![
        vec![Step::Read, Step::write(many_headers(100)), Step::Close],
        vec![Step::Read, Step::write(many_headers(101)), Step::Hang],
    ])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, body) = get(&manager, &server.url("/100")).await;
    assert_eq!(
        (kind(&reply), body.as_str()),
        (None, "ok"),
        "{:?}",
        reply.error()
    );
    let (reply, _) = get(&manager, &server.url("/101")).await;
    let error = reply.error().expect("101 header fields fail");
    assert_eq!(error.kind(), NetworkError::ProtocolFailure, "{error:?}");
    assert!(error.message().contains("header"), "{error}");
}

#[tokio::test]
async fn http10_close_delimited_bodies_are_whole_and_never_reused() {
    let big = "x".repeat(200_000);
    let server = ScriptServer::start(vec![
        vec![
            Step::Read,
            Step::write(format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{big}"
            )),
            Step::Close,
        ],
        // HTTP/1.0 with a length but no keep-alive: still one request per connection.
        vec![
            Step::Read,
            Step::write("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\none"),
            Step::Read,
            ok("same connection"),
        ],
        vec![Step::Read, ok("fresh")],
    ])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, body) = get(&manager, &server.url("/10")).await;
    assert_eq!(kind(&reply), None, "{:?}", reply.error());
    assert_eq!(body.len(), big.len());
    let (_, body) = get(&manager, &server.url("/10-length")).await;
    assert_eq!(body, "one");
    let (_, body) = get(&manager, &server.url("/next")).await;
    assert_eq!(body, "fresh");
    assert_eq!(connections_of(&server), [0, 1, 2]);
}

#[tokio::test]
async fn a_close_delimited_body_cut_by_a_reset_is_an_error() {
    let server = ScriptServer::start(vec![vec![
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial"),
        Step::Sleep(Duration::from_millis(50)),
        Step::Reset,
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, _) = get(&manager, &server.url("/cut")).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::RemoteHostClosedError),
        "{:?}",
        reply.error()
    );
}

/// A body sent where none may be (HEAD, 204, 304) is surplus: the next request goes on a new
/// connection and never sees those bytes.
#[tokio::test]
async fn a_body_on_head_204_and_304_never_reaches_the_next_request() {
    let leak = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged";
    let cases = [
        (
            "HEAD",
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{leak}",
                leak.len()
            ),
        ),
        (
            "204",
            format!(
                "HTTP/1.1 204 No Content\r\nContent-Length: {}\r\n\r\n{leak}",
                leak.len()
            ),
        ),
        (
            "304",
            format!("HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n{leak}"),
        ),
    ];
    for (what, head) in cases {
        let server = ScriptServer::start(vec![
            vec![
                Step::Read,
                Step::write(head),
                Step::Read,
                ok("same connection"),
            ],
            vec![Step::Read, ok("fresh")],
        ])
        .await;
        let manager = NetworkAccessManager::new();
        let request = Request::new(server.url(&format!("/{what}")));
        let reply = if what == "HEAD" {
            manager.head(request)
        } else {
            manager.get(request)
        };
        done(&reply).await;
        assert!(
            !matches!(kind(&reply), Some(NetworkError::ProtocolFailure)),
            "{what}: {:?}",
            reply.error()
        );
        assert!(reply.read_all().is_empty(), "{what}: no body");
        let (reply, body) = get(&manager, &server.url("/after")).await;
        assert_eq!(
            (kind(&reply), body.as_str()),
            (None, "fresh"),
            "after {what}"
        );
        assert_eq!(connections_of(&server), [0, 1], "after {what}");
    }
}

#[tokio::test]
async fn a_close_after_the_head_on_a_reused_connection_fails_without_a_retry() {
    let server = ScriptServer::start(vec![vec![
        Step::Read,
        ok("first"),
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
        Step::Close,
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    let (_, body) = get(&manager, &server.url("/first")).await;
    assert_eq!(body, "first");
    let (reply, _) = get(&manager, &server.url("/second")).await;
    assert_eq!(reply.status_code(), Some(200));
    assert_eq!(
        kind(&reply),
        Some(NetworkError::RemoteHostClosedError),
        "{:?}",
        reply.error()
    );
    assert_eq!(
        server.requests().len(),
        2,
        "a response had started: the request is not sent again"
    );
}

/// A `Location` that is not UTF-8: its bytes are kept, percent-encoded (as curl does), never
/// a panic or a silently delivered 302.
#[tokio::test]
async fn a_non_utf8_location_is_followed_with_its_bytes_percent_encoded() {
    let mut redirect =
        b"HTTP/1.1 302 Found\r\nLocation: /caf\xe9?q=\xff\r\nContent-Length: 0\r\n\r\n".to_vec();
    redirect.shrink_to_fit();
    let server = ScriptServer::start(vec![vec![
        Step::Read,
        Step::Write(redirect),
        Step::Read,
        ok("landed"),
    ]])
    .await;
    let manager = NetworkAccessManager::new();
    let (reply, body) = get(&manager, &server.url("/start")).await;
    assert_eq!(
        (kind(&reply), body.as_str()),
        (None, "landed"),
        "{:?}",
        reply.error()
    );
    let requests = server.requests();
    assert_eq!(requests[1].request_line(), "GET /caf%E9?q=%FF HTTP/1.1");
    assert_eq!(reply.url().as_str(), server.url("/caf%E9?q=%FF"));
}

/// A server may not send the client to local resources: `file:`, `data:` and the local-socket
/// schemes are refused (Qt's ProtocolUnknownError), from http and from https alike, and
/// nothing is read or connected for them.
#[tokio::test]
async fn redirects_to_file_data_and_unix_http_are_refused() {
    let targets = [
        "file:///etc/passwd",
        "file:///proc/self/environ",
        "data:text/plain,forged",
        "unix+http://localhost/",
        "local+http://localhost/",
    ];
    for tls in [false, true] {
        let scripts = targets
            .iter()
            .map(|to| {
                vec![
                    Step::Read,
                    Step::write(format!(
                        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n"
                    )),
                    Step::Close,
                ]
            })
            .collect();
        let server = if tls {
            ScriptServer::start_tls(scripts).await
        } else {
            ScriptServer::start(scripts).await
        };
        let manager = NetworkAccessManager::builder()
            .add_root_certificate_pem(server.ca_cert_pem().as_bytes())
            .build()
            .unwrap();
        for to in targets {
            let url = if tls {
                server.https_url("/go")
            } else {
                server.url("/go")
            };
            let request = Request::new(url).with_unix_socket("/nonexistent/netaccess.sock");
            let (reply, body) = get_request(&manager, request).await;
            assert_eq!(
                kind(&reply),
                Some(NetworkError::ProtocolUnknownError),
                "{to}: {:?}",
                reply.error()
            );
            assert!(body.is_empty(), "{to}: nothing delivered");
            assert_eq!(
                reply.url().scheme(),
                if tls { "https" } else { "http" },
                "{to}"
            );
        }
        assert_eq!(server.requests().len(), targets.len());
    }
}

/// A final response while the request body is still being sent (a `413` the server sends
/// without reading the body, keeping the connection): the reply ends with the status; the
/// connection, busy with an unfinished upload, does not carry the next request, and it is
/// closed rather than left writing for ever (the server sees the close well before the whole
/// body).
#[tokio::test]
async fn an_early_response_during_an_upload_does_not_hand_the_connection_on() {
    const UPLOAD: usize = 64 << 20;
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadHead,
            Step::write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!"),
            Step::WaitFor("drain"),
            Step::Drain,
        ],
        vec![Step::Read, ok("fresh")],
    ])
    .await;
    let manager = NetworkAccessManager::new();
    let upload = manager.post(Request::new(server.url("/upload")), vec![b'u'; UPLOAD]);
    done(&upload).await;
    assert_eq!(upload.status_code(), Some(413));
    let (reply, body) = get(&manager, &server.url("/next")).await;
    assert_eq!(
        (kind(&reply), body.as_str()),
        (None, "fresh"),
        "{:?}",
        reply.error()
    );
    assert_eq!(connections_of(&server), [0, 1]);
    server.signal("drain");
    tokio::time::timeout(BOUND, server.drain_finished())
        .await
        .expect("the client closed the busy connection");
    let drained = server.drained();
    assert_eq!(drained.len(), 1);
    assert!(
        drained[0].1 < UPLOAD as u64,
        "closed after {} of {UPLOAD} body bytes",
        drained[0].1
    );
}

#[tokio::test]
async fn invalid_content_length_values_are_a_protocol_failure() {
    let values = ["-1", "0x10", "18446744073709551616", "5 5", "five", "+5"];
    let scripts = values
        .iter()
        .map(|v| {
            vec![
                Step::Read,
                Step::write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {v}\r\n\r\nhello"
                )),
                Step::Hang,
            ]
        })
        .collect();
    let server = ScriptServer::start(scripts).await;
    let manager = NetworkAccessManager::new();
    for v in values {
        let (reply, body) = get(&manager, &server.url("/len")).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::ProtocolFailure),
            "Content-Length: {v}: {:?}",
            reply.error()
        );
        assert_eq!(body, "", "{v}");
    }
    assert_eq!(connections_of(&server), [0, 1, 2, 3, 4, 5]);
}
