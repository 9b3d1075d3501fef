//! Raw mode: a hand-written HTTP/1.1 responder (no hyper) that misbehaves in one
//! chosen way ([`RawFault`]) on every connection.
//!
//! The responder reads a request head (up to the blank line, at most 64 KiB), counts
//! it like the hyper modes do (`requests_total`, `requests_for`), skips a
//! `Content-Length` request body, then acts out the fault. Chunked request bodies are
//! not decoded; such connections are closed after the first response.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::reset::arm_abortive_close;
use crate::stats::Counters;

/// The misbehaviour of a raw-mode server (see [`ServerBuilder::raw`](crate::ServerBuilder::raw)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawFault {
    /// Answers `HTTP/1.1 abc Nope\r\n\r\n` (a non-numeric status code), then closes.
    MalformedStatusLine,
    /// Answers with a header line lacking a colon
    /// (`HTTP/1.1 200 OK`, `Bad Header Line Without Colon`, `Content-Length: 2`, body `ok`),
    /// then closes.
    MalformedHeader,
    /// Answers a `200` status line followed by about 1 MiB of `X-Big-N: aaa…` headers,
    /// then `Content-Length: 2` and body `ok`, then closes.
    OversizedHeaders,
    /// Reads the request head, then resets the connection (`SO_LINGER` 0 and close):
    /// the client sees `ECONNRESET` without any response byte.
    Reset,
    /// Reads the request head, then closes cleanly (FIN) without sending a byte.
    CloseBeforeResponse,
    /// Answers `200` with `Content-Length: 1000` but only 10 body bytes, then closes.
    WrongContentLength,
    /// Keep-alive server answering `200`, `Content-Length: 5`, body `hello` (never
    /// `Connection: close`) to the first N requests of each connection. When request
    /// N+1 arrives on that connection it is read (and counted) and the connection is
    /// closed with FIN without an answer, so the client must retry on a new connection.
    /// With N = 0 this behaves like [`RawFault::CloseBeforeResponse`].
    CloseAfterResponses(u32),
    /// Accepts the connection, never reads, never answers, keeps it open until shutdown.
    AcceptAndSilence,
}

/// Largest request head the responder reads before giving up on the connection.
const MAX_HEAD_LEN: usize = 64 * 1024;
/// How long a closing connection waits for the client's FIN before dropping.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

const MALFORMED_STATUS_LINE: &[u8] = b"HTTP/1.1 abc Nope\r\n\r\n";
const MALFORMED_HEADER: &[u8] =
    b"HTTP/1.1 200 OK\r\nBad Header Line Without Colon\r\nContent-Length: 2\r\n\r\nok";
const WRONG_CONTENT_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
const KEEP_ALIVE_HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
/// Number and value length of the `X-Big-N` headers of [`RawFault::OversizedHeaders`].
const OVERSIZED_HEADER_COUNT: usize = 1024;
const OVERSIZED_HEADER_VALUE_LEN: usize = 1000;

/// How a request's body is framed, as far as the raw responder cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestBody {
    Length(u64),
    /// Chunked (or otherwise undecodable): the connection cannot be reused.
    Unsupported,
}

/// The parts of a request head the responder uses.
#[derive(Debug)]
struct RequestHead {
    path: String,
    body: RequestBody,
}

/// Reads request heads and bodies from a connection, keeping pipelined leftovers.
#[derive(Debug)]
struct RequestReader {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RequestReader {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    /// The next request head, or `None` on EOF, I/O error or an oversized head.
    async fn read_head(&mut self) -> Option<RequestHead> {
        loop {
            if let Some(end) = find_head_end(&self.buffer) {
                let head: Vec<u8> = self.buffer.drain(..end).collect();
                return Some(parse_head(&head));
            }
            if self.buffer.len() >= MAX_HEAD_LEN || self.fill().await? == 0 {
                return None;
            }
        }
    }

    /// Reads more bytes into the buffer; `None` on error.
    async fn fill(&mut self) -> Option<usize> {
        let mut chunk = [0u8; 8192];
        let read = self.stream.read(&mut chunk).await.ok()?;
        self.buffer.extend_from_slice(&chunk[..read]);
        Some(read)
    }

    /// Discards `len` body bytes; `false` if the connection ended first.
    async fn skip_body(&mut self, mut len: u64) -> bool {
        loop {
            let buffered = (self.buffer.len() as u64).min(len);
            self.buffer.drain(..buffered as usize);
            len -= buffered;
            if len == 0 {
                return true;
            }
            if !matches!(self.fill().await, Some(read) if read > 0) {
                return false;
            }
        }
    }

    /// Consumes the request body if it can; `false` if the connection must close.
    async fn consume_body(&mut self, head: &RequestHead) -> bool {
        match head.body {
            RequestBody::Length(len) => self.skip_body(len).await,
            RequestBody::Unsupported => false,
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Sends FIN, then waits (bounded) for the client to close so no RST is provoked.
    async fn close_gracefully(mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 8192];
        let drain = async {
            while let Ok(read) = self.stream.read(&mut sink).await {
                if read == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_DRAIN_TIMEOUT, drain).await;
    }

    /// Closes with RST.
    fn reset(self) {
        arm_abortive_close(&self.stream);
    }
}

/// Index just past the `\r\n\r\n` ending the head, if the buffer holds one.
fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|start| start + 4)
}

/// Extracts the path and body framing; anything unparsable degrades to defaults.
fn parse_head(head: &[u8]) -> RequestHead {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .and_then(|request_line| request_line.split(' ').nth(1))
        .unwrap_or("");
    let mut body = RequestBody::Length(0);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            body = value
                .parse()
                .map_or(RequestBody::Unsupported, RequestBody::Length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            body = RequestBody::Unsupported;
        }
    }
    RequestHead {
        path: path_of_target(target).to_owned(),
        body,
    }
}

/// The path of an origin-form or absolute-form request target, without the query.
fn path_of_target(target: &str) -> &str {
    let without_scheme = target
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map_or("/", |slash| &rest[slash..]))
        .unwrap_or(target);
    without_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or(without_scheme)
}

fn oversized_headers_response() -> Vec<u8> {
    let value = "a".repeat(OVERSIZED_HEADER_VALUE_LEN);
    let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
    for index in 0..OVERSIZED_HEADER_COUNT {
        response.extend_from_slice(format!("X-Big-{index}: {value}\r\n").as_bytes());
    }
    response.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
    response
}

/// Serves one raw-mode connection until the fault is acted out.
pub(crate) async fn serve_raw(stream: TcpStream, fault: RawFault, counters: Arc<Counters>) {
    if fault == RawFault::AcceptAndSilence {
        let _silent = stream;
        return std::future::pending().await;
    }
    let mut reader = RequestReader::new(stream);
    if let RawFault::CloseAfterResponses(limit) = fault {
        return serve_then_close(reader, limit, &counters).await;
    }
    let Some(head) = reader.read_head().await else {
        return;
    };
    counters.record_request(&head.path, false);
    match fault {
        RawFault::Reset => return reader.reset(),
        RawFault::CloseBeforeResponse => return reader.close_gracefully().await,
        _ => {}
    }
    reader.consume_body(&head).await;
    let response = match fault {
        RawFault::MalformedStatusLine => MALFORMED_STATUS_LINE.to_vec(),
        RawFault::MalformedHeader => MALFORMED_HEADER.to_vec(),
        RawFault::OversizedHeaders => oversized_headers_response(),
        _ => WRONG_CONTENT_LENGTH.to_vec(),
    };
    if reader.write(&response).await.is_ok() {
        reader.close_gracefully().await;
    }
}

/// [`RawFault::CloseAfterResponses`]: `limit` good answers, then close on the next request.
async fn serve_then_close(mut reader: RequestReader, limit: u32, counters: &Counters) {
    for _ in 0..limit {
        let Some(head) = reader.read_head().await else {
            return;
        };
        counters.record_request(&head.path, false);
        let reusable = reader.consume_body(&head).await;
        if reader.write(KEEP_ALIVE_HELLO).await.is_err() {
            return;
        }
        if !reusable {
            return reader.close_gracefully().await;
        }
    }
    if let Some(head) = reader.read_head().await {
        counters.record_request(&head.path, false);
    }
    reader.close_gracefully().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_length() {
        let head = parse_head(b"POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\ncontent-length: 12\r\n\r\n");
        assert_eq!(head.path, "/a/b");
        assert_eq!(head.body, RequestBody::Length(12));
    }

    #[test]
    fn odd_heads_do_not_panic() {
        assert_eq!(parse_head(b"\r\n\r\n").path, "");
        assert_eq!(
            parse_head(b"GET http://h:1/p?q HTTP/1.1\r\n\r\n").path,
            "/p"
        );
        assert_eq!(parse_head(b"GET http://h HTTP/1.1\r\n\r\n").path, "/");
        let chunked = parse_head(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.body, RequestBody::Unsupported);
    }

    #[test]
    fn oversized_response_is_about_a_mebibyte() {
        let len = oversized_headers_response().len();
        assert!((1_000_000..1_200_000).contains(&len), "{len}");
    }
}
