//! Resuming a broken GET body with `Range` + `If-Range`, against scripted servers that cut
//! the connection mid-body: the whole body with the right sha256, a changed resource, a
//! wrong range, a weak validator, the limit, and resuming turned off.

mod support;

use netaccess::{limits, NetworkAccessManager, NetworkError, Request};
use sha2::{Digest, Sha256};
use support::{done, kind, ScriptedServer};

const LEN: usize = 4 << 20;

/// 4 MiB that no two offsets confuse.
fn body() -> Vec<u8> {
    (0..LEN as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// `Range: bytes=N-` in a request head: N.
fn range_start(head: &str) -> Option<usize> {
    let head = head.to_ascii_lowercase();
    let line = head.lines().find(|l| l.starts_with("range:"))?;
    let value = line.trim_start_matches("range:").trim();
    value
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

fn if_range(head: &str) -> Option<String> {
    let lower = head.to_ascii_lowercase();
    let at = lower.find("\r\nif-range:")?;
    let line = head[at + 2..].lines().next()?;
    Some(line["if-range:".len()..].trim().to_owned())
}

/// How each connection answers.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 with the whole length announced, but only this many bytes, then close.
    Cut(usize),
    /// Honour `Range` with a 206 (and the current ETag); without one, the whole body.
    Ranges,
    /// 206 that starts at 0 whatever was asked.
    WrongRange,
    /// The whole body again, with this ETag.
    Whole(&'static str),
    /// 206 from where `Range` asked, but only this many bytes, then close.
    CutRange(usize),
}

fn head(status: &str, headers: &[String], length: usize) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A server answering connection `i` with `answers[i]` (the last one from then on), every
/// 200 and 206 carrying `etag`.
async fn server(etag: &'static str, answers: Vec<Answer>) -> ScriptedServer {
    let data = body();
    ScriptedServer::start(move |index, request| {
        let answer = answers[index.min(answers.len() - 1)];
        let tag = format!("ETag: {etag}");
        match answer {
            Answer::Cut(n) => [head("200 OK", &[tag], LEN), data[..n].to_vec()].concat(),
            Answer::Whole(other) => {
                let tag = format!("ETag: {other}");
                [head("200 OK", &[tag], LEN), data.clone()].concat()
            }
            Answer::CutRange(n) => {
                let start = range_start(request).unwrap_or(0);
                let range = format!("Content-Range: bytes {start}-{}/{LEN}", LEN - 1);
                let head = head("206 Partial Content", &[tag, range], LEN - start);
                [head, data[start..start + n].to_vec()].concat()
            }
            Answer::Ranges | Answer::WrongRange => {
                let start = match (answer, range_start(request)) {
                    (Answer::WrongRange, _) => 0,
                    (_, Some(start)) if if_range(request).as_deref() == Some(etag) => start,
                    _ => return [head("200 OK", &[tag], LEN), data.clone()].concat(),
                };
                let range = format!("Content-Range: bytes {start}-{}/{LEN}", LEN - 1);
                let rest = &data[start..];
                [
                    head("206 Partial Content", &[tag, range], rest.len()),
                    rest.to_vec(),
                ]
                .concat()
            }
        }
    })
    .await
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

#[tokio::test]
async fn a_body_cut_at_40_percent_resumes_with_range_and_if_range() {
    let cut = LEN * 2 / 5;
    let server = server("\"v1\"", vec![Answer::Cut(cut), Answer::Ranges]).await;
    let reply = NetworkAccessManager::new().get(Request::new(server.url("/big")));
    let got = reply.bytes().await.expect("the body completes");
    assert_eq!(got.len(), LEN);
    assert_eq!(sha256(&got), sha256(&body()));
    assert_eq!(server.connections(), 2);
    let heads = server.heads();
    assert_eq!(range_start(&heads[1]), Some(cut));
    assert_eq!(if_range(&heads[1]).as_deref(), Some("\"v1\""));
    assert_eq!(reply.status(), Some(netaccess::http::StatusCode::OK));
    assert!(reply.error().is_none());
}

#[tokio::test]
async fn a_changed_etag_on_resume_is_an_error_and_no_byte_is_repeated() {
    let cut = LEN * 2 / 5;
    let server = server("\"v1\"", vec![Answer::Cut(cut), Answer::Whole("\"v2\"")]).await;
    let reply = NetworkAccessManager::new().get(Request::new(server.url("/big")));
    let mut received = Vec::new();
    let mut stream = reply.body_stream();
    let mut failure = None;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        match chunk {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(e) => failure = Some(e),
        }
    }
    let failure = failure.expect("a changed resource is an error");
    assert_eq!(failure.kind(), NetworkError::UnknownContentError);
    assert!(failure.message().contains("changed"), "{failure}");
    assert_eq!(received, body()[..cut], "only the first response's bytes");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_range_that_does_not_start_where_the_body_stopped_is_an_error() {
    let server = server("\"v1\"", vec![Answer::Cut(1000), Answer::WrongRange]).await;
    let reply = NetworkAccessManager::new().get(Request::new(server.url("/big")));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::UnknownContentError));
    assert!(reply.error().unwrap().message().contains("range"));
}

#[tokio::test]
async fn a_body_cut_before_any_byte_starts_over_with_a_200() {
    let server = server("\"v1\"", vec![Answer::Cut(0), Answer::Whole("\"v2\"")]).await;
    let reply = NetworkAccessManager::new().get(Request::new(server.url("/big")));
    let got = reply
        .bytes()
        .await
        .expect("nothing was delivered: a new 200 is fine");
    assert_eq!(sha256(&got), sha256(&body()));
}

#[tokio::test]
async fn a_weak_etag_is_not_resumed() {
    let server = server("W/\"v1\"", vec![Answer::Cut(1000), Answer::Ranges]).await;
    let reply = NetworkAccessManager::new().get(Request::new(server.url("/big")));
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::RemoteHostClosedError));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn resuming_can_be_turned_off_per_request() {
    let server = server("\"v1\"", vec![Answer::Cut(1000), Answer::Ranges]).await;
    let request = Request::new(server.url("/big")).with_resume(false);
    let reply = NetworkAccessManager::new().get(request);
    done(&reply).await;
    assert_eq!(kind(&reply), Some(NetworkError::RemoteHostClosedError));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_body_that_keeps_breaking_is_resumed_at_most_max_resumes_times() {
    // Every resumption is cut again after 1000 bytes.
    let answers = vec![Answer::Cut(1000), Answer::CutRange(1000)];
    let server = server("\"v1\"", answers).await;
    let reply = NetworkAccessManager::new().get(Request::new(server.url("/big")));
    done(&reply).await;
    assert!(reply.error().is_some());
    assert_eq!(server.connections() as u32, 1 + limits::MAX_RESUMES);
}
