//! A scripted HTTP/2 server (cleartext, prior knowledge) built on the `h2` crate, for the
//! HTTP/2 fault tests: every connection acts out one [`H2Script`]. Frames `h2` will not send
//! (a GOAWAY with a chosen last-stream-id, a PUSH_PROMISE to a client that disabled push) are
//! written raw between two of `h2`'s frames by [`FrameTap`].
//!
//! It answers on `127.0.0.1:0` only, records the path of every request in arrival order
//! ([`H2ScriptServer::paths`]) and counts connections. Dropping the server stops it and closes
//! every connection.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Ping, Reason, RecvStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// How a connection of an [`H2ScriptServer`] behaves. Unless said otherwise, a request is
/// answered `200` with its path as the body (for `/size/N`: N bytes of `x`, at most 64 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum H2Script {
    /// Every request answered normally.
    Answer,
    /// The first connection waits until `streams` requests arrived (at most 10 s), then sends
    /// GOAWAY (NO_ERROR) whose last-stream-id is the first of them. With `answer_processed`
    /// it then answers that first request and waits for the client to close; without, it
    /// closes at once, answering none. Later connections answer normally.
    GoAwayBelowInFlight {
        /// Requests to wait for on the first connection.
        streams: usize,
        /// Answer the request at or below the last-stream-id before closing.
        answer_processed: bool,
    },
    /// The first `first` requests (over all connections) get RST_STREAM REFUSED_STREAM.
    Refuse {
        /// How many requests are refused.
        first: usize,
    },
    /// Every request gets headers with `Content-Length: len`, `before` body bytes, then
    /// RST_STREAM CANCEL.
    CancelMidBody {
        /// Announced body length.
        len: usize,
        /// Bytes sent before the reset.
        before: usize,
    },
    /// SETTINGS_MAX_CONCURRENT_STREAMS = `max`; each request is answered after `hold`.
    MaxConcurrentStreams {
        /// The advertised limit.
        max: u32,
        /// How long each request is held before its answer.
        hold: Duration,
    },
    /// Every response carries `X-Big: aaa…` of `size` bytes (a header list over the client's
    /// limit when `size` is large).
    HugeHeaderList {
        /// The header value's length.
        size: usize,
    },
    /// Before answering, a PUSH_PROMISE (promised stream 2, `GET /pushed`) on the request's
    /// stream, although the client's SETTINGS disabled push.
    PushPromise,
    /// Advertises a 16 KiB stream window and never reads request bodies (the window never
    /// opens again); never answers. The connection itself stays responsive (PINGs answered).
    StopReadingUploads,
    /// After the first request arrives, the connection is neither read nor written again
    /// (PINGs go unanswered), until the server is dropped.
    SilentAfterRequest,
    /// Headers with `Content-Length: len` and `before` body bytes; once they are written, the
    /// connection is neither read nor written again (PINGs go unanswered).
    SilentMidBody {
        /// Announced body length.
        len: usize,
        /// Bytes sent before the silence.
        before: usize,
    },
}

struct Shared {
    script: H2Script,
    paths: Mutex<Vec<String>>,
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// A scripted HTTP/2 server: see the module documentation.
pub struct H2ScriptServer {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

impl Drop for H2ScriptServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for H2ScriptServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2ScriptServer")
            .field("addr", &self.addr)
            .field("script", &self.shared.script)
            .finish_non_exhaustive()
    }
}

impl H2ScriptServer {
    /// Starts a server on `127.0.0.1:0` acting out `script` (needs a tokio runtime).
    pub async fn start(script: H2Script) -> H2ScriptServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let shared = Arc::new(Shared {
            script,
            paths: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone())).abort_handle();
        H2ScriptServer { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT` + `path` (use it with HTTP/2 by prior knowledge).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The paths of the requests received so far, in arrival order (refused ones included).
    pub fn paths(&self) -> Vec<String> {
        lock(&self.shared.paths).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // The connections live in this set: aborting the accept task drops (closes) them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let index = shared.connections.fetch_add(1, Ordering::SeqCst);
                connections.spawn(serve(tcp, index, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(tcp: TcpStream, index: usize, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    // A second handle on the socket, to close it with FIN while h2 still owns the stream.
    let handles = tcp
        .into_std()
        .and_then(|s| Ok((s.try_clone()?, TcpStream::from_std(s)?)));
    let Ok((closer, tcp)) = handles else { return };
    let tap = FrameTap::new(tcp);
    let injector = tap.injector();
    let mut builder = h2::server::Builder::new();
    match shared.script {
        H2Script::MaxConcurrentStreams { max, .. } => {
            builder.max_concurrent_streams(max);
        }
        H2Script::StopReadingUploads => {
            builder.initial_window_size(16 * 1024);
        }
        _ => {}
    }
    let Ok(mut conn) = builder.handshake::<_, Bytes>(tap).await else {
        return;
    };
    let mut ping_pong = conn.ping_pong();
    let mut tasks = JoinSet::new();
    let mut held: Vec<(u32, SendResponse<Bytes>, RecvStream)> = Vec::new();
    while let Some(accepted) = conn.accept().await {
        let Ok((request, respond)) = accepted else {
            break;
        };
        let path = request.uri().path().to_owned();
        lock(&shared.paths).push(path.clone());
        let nth = shared.requests.fetch_add(1, Ordering::SeqCst);
        let stream_id = u32::from(respond.stream_id());
        let body = request.into_body();
        match shared.script {
            H2Script::GoAwayBelowInFlight {
                streams,
                answer_processed,
            } if index == 0 => {
                held.push((stream_id, respond, body));
                if held.len() >= streams {
                    let last = held.iter().map(|h| h.0).min().unwrap_or(0);
                    let script = shared.script;
                    let processed = if answer_processed {
                        let first = held.iter().position(|h| h.0 == last);
                        first.map(|i| held.swap_remove(i))
                    } else {
                        None
                    };
                    let path = lock(&shared.paths).first().cloned().unwrap_or_default();
                    let answer =
                        processed.map(|(_, respond, body)| answer(respond, body, path, script));
                    go_away_and_close(conn, &injector, ping_pong.as_mut(), last, closer, answer)
                        .await;
                    return;
                }
            }
            H2Script::Refuse { first } if nth < first => {
                let mut respond = respond;
                respond.send_reset(Reason::REFUSED_STREAM);
            }
            H2Script::StopReadingUploads => held.push((stream_id, respond, body)),
            H2Script::SilentMidBody { len, before } => {
                let head = http::Response::builder()
                    .status(200)
                    .header("content-length", len.to_string())
                    .body(())
                    .unwrap_or_default();
                let mut respond = respond;
                let Ok(mut send) = respond.send_response(head, false) else {
                    return;
                };
                let _ = send.send_data(Bytes::from(vec![b'x'; before.min(len)]), false);
                let written = injector.data_written(before.min(len));
                tokio::select! {
                    _ = written => {}
                    _ = conn.accept() => {}
                }
                let _keep = (conn, send, body, closer);
                std::future::pending::<()>().await;
                return;
            }
            H2Script::SilentAfterRequest => {
                // Keep everything alive, poll nothing: the peer's PINGs go unanswered.
                let _keep = (conn, respond, body, closer);
                std::future::pending::<()>().await;
                return;
            }
            H2Script::PushPromise => {
                injector.push(push_promise_frame(stream_id, 2, "/pushed"));
                if let Some(pp) = ping_pong.as_mut() {
                    let _ = pp.send_ping(Ping::opaque());
                }
                tasks.spawn(answer(respond, body, path, shared.script));
            }
            H2Script::CancelMidBody { len, before } => {
                tasks.spawn(cancel_mid_body(respond, len, before, injector.clone()));
            }
            script => {
                tasks.spawn(answer(respond, body, path, script));
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    drop(held);
}

/// Sends GOAWAY (NO_ERROR, `last`) raw, waits until it is written, then closes the socket
/// with FIN and drains the peer until it closes too (at most 5 s).
async fn go_away_and_close(
    mut conn: h2::server::Connection<FrameTap, Bytes>,
    injector: &Injector,
    ping_pong: Option<&mut h2::PingPong>,
    last: u32,
    closer: std::net::TcpStream,
    answer_processed: Option<impl std::future::Future<Output = ()>>,
) {
    injector.push(go_away_frame(last, Reason::NO_ERROR));
    // h2 writes only when it has a frame of its own: a PING gets the injected frame out.
    if let Some(pp) = ping_pong {
        let _ = pp.send_ping(Ping::opaque());
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !injector.is_empty() {
            // Created before the connection is polled, so no notification is missed.
            let written = injector.written.notified();
            tokio::select! {
                _ = written => {}
                next = conn.accept() => if next.is_none() { return },
            }
        }
    })
    .await;
    if let Some(answer) = answer_processed {
        // Answer the processed request, then serve until the client closes (at most 10 s).
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::pin!(answer);
            let mut answered = false;
            loop {
                tokio::select! {
                    _ = &mut answer, if !answered => answered = true,
                    next = conn.accept() => if next.is_none() { return },
                }
            }
        })
        .await;
    }
    let _ = closer.shutdown(std::net::Shutdown::Write);
    drop(conn);
    let Ok(mut closer) = TcpStream::from_std(closer) else {
        return;
    };
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(n) = closer.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Answers one request as the script says (the scripts that answer at all).
async fn answer(
    mut respond: SendResponse<Bytes>,
    mut body: RecvStream,
    path: String,
    script: H2Script,
) {
    // Read the request body (releasing its flow-control window) before answering.
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let mut response = http::Response::builder().status(200);
    // `/size/N`: N bytes of `x` (at most 64 MiB); any other path: the path itself.
    let sized = path
        .strip_prefix("/size/")
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| n.min(64 << 20));
    let payload = match sized {
        Some(n) => Bytes::from(vec![b'x'; n]),
        None => Bytes::from(path.into_bytes()),
    };
    match script {
        H2Script::MaxConcurrentStreams { hold, .. } => tokio::time::sleep(hold).await,
        H2Script::HugeHeaderList { size } => {
            response = response.header("x-big", "a".repeat(size));
        }
        _ => {}
    }
    let response = response
        .header("content-length", payload.len().to_string())
        .body(())
        .unwrap_or_default();
    if let Ok(mut send) = respond.send_response(response, payload.is_empty()) {
        if !payload.is_empty() {
            let _ = send.send_data(payload, true);
        }
    }
}

/// Headers with `Content-Length: len`, `before` body bytes, and once they are written,
/// RST_STREAM CANCEL.
async fn cancel_mid_body(
    mut respond: SendResponse<Bytes>,
    len: usize,
    before: usize,
    injector: Injector,
) {
    let head = http::Response::builder()
        .status(200)
        .header("content-length", len.to_string())
        .body(())
        .unwrap_or_default();
    let Ok(mut send) = respond.send_response(head, false) else {
        return;
    };
    let before = before.min(len);
    let _ = send.send_data(Bytes::from(vec![b'x'; before]), false);
    // The connection task writes them; cancel only once they are out (at most 10 s).
    let _ = tokio::time::timeout(Duration::from_secs(10), injector.data_written(before)).await;
    send.send_reset(Reason::CANCEL);
}

/// A raw GOAWAY frame.
fn go_away_frame(last_stream_id: u32, reason: Reason) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8);
    payload.extend_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
    payload.extend_from_slice(&u32::from(reason).to_be_bytes());
    frame(0x7, 0, 0, &payload)
}

/// A raw PUSH_PROMISE frame on `stream_id` promising `promised` for `GET path`, its header
/// block in HPACK without touching the dynamic table.
fn push_promise_frame(stream_id: u32, promised: u32, path: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(promised & 0x7fff_ffff).to_be_bytes());
    // :method GET (static 2), :scheme http (static 6) as indexed fields.
    payload.extend_from_slice(&[0x82, 0x86]);
    // :path and :authority as literals without indexing (name indices 4 and 1).
    for (name_index, value) in [(4u8, path), (1u8, "127.0.0.1")] {
        payload.push(name_index);
        payload.push(u8::try_from(value.len()).unwrap_or(0x7f).min(0x7f));
        payload.extend_from_slice(&value.as_bytes()[..value.len().min(0x7f)]);
    }
    const END_HEADERS: u8 = 0x4;
    frame(0x5, END_HEADERS, stream_id, &payload)
}

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Raw frames waiting to be written by a [`FrameTap`].
#[derive(Clone, Default)]
struct Injector {
    queue: Arc<Mutex<VecDeque<Vec<u8>>>>,
    written: Arc<Notify>,
    /// DATA payload bytes written so far on this connection.
    data: Arc<AtomicUsize>,
}

impl Injector {
    fn push(&self, frame: Vec<u8>) {
        lock(&self.queue).push_back(frame);
    }

    fn is_empty(&self) -> bool {
        lock(&self.queue).is_empty()
    }

    /// Resolves once at least `bytes` DATA payload bytes were written on the connection.
    async fn data_written(&self, bytes: usize) {
        loop {
            let notified = self.written.notified();
            if self.data.load(Ordering::SeqCst) >= bytes {
                return;
            }
            notified.await;
        }
    }
}

/// The server's socket as `h2` sees it: reads pass through; writes are tracked frame by frame
/// (9-byte header, then the payload) so that injected frames go out only between two frames.
struct FrameTap {
    inner: TcpStream,
    injector: Injector,
    /// The injected frame being written and how much of it is out.
    current: Option<(Vec<u8>, usize)>,
    /// Header bytes seen of the frame h2 is writing, and payload bytes still to come.
    header: [u8; 9],
    header_seen: usize,
    payload_left: usize,
    /// The frame being written is a DATA frame.
    in_data: bool,
}

impl FrameTap {
    fn new(inner: TcpStream) -> Self {
        FrameTap {
            inner,
            injector: Injector::default(),
            current: None,
            header: [0; 9],
            header_seen: 0,
            payload_left: 0,
            in_data: false,
        }
    }

    fn injector(&self) -> Injector {
        self.injector.clone()
    }

    fn at_boundary(&self) -> bool {
        self.header_seen == 0 && self.payload_left == 0
    }

    /// Accounts for `data` written on h2's behalf.
    fn track(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(data.len());
                self.payload_left -= n;
                data = &data[n..];
                if self.in_data {
                    self.injector.data.fetch_add(n, Ordering::SeqCst);
                    self.injector.written.notify_waiters();
                }
                continue;
            }
            let n = (9 - self.header_seen).min(data.len());
            self.header[self.header_seen..self.header_seen + n].copy_from_slice(&data[..n]);
            self.header_seen += n;
            data = &data[n..];
            if self.header_seen == 9 {
                self.header_seen = 0;
                self.payload_left = usize::from(self.header[0]) << 16
                    | usize::from(self.header[1]) << 8
                    | usize::from(self.header[2]);
                self.in_data = self.header[3] == 0x0;
            }
        }
    }

    /// Writes injected frames while at a frame boundary; Ready once none is left to write.
    fn poll_inject(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.current.is_none() {
                if !self.at_boundary() {
                    return Poll::Ready(Ok(()));
                }
                let next = lock(&self.injector.queue).front().cloned();
                match next {
                    Some(frame) => self.current = Some((frame, 0)),
                    None => return Poll::Ready(Ok(())),
                }
            }
            let Some((frame, done)) = self.current.as_mut() else {
                continue;
            };
            while *done < frame.len() {
                let n =
                    std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &frame[*done..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *done += n;
            }
            self.current = None;
            lock(&self.injector.queue).pop_front();
            self.injector.written.notify_waiters();
        }
    }
}

impl AsyncRead for FrameTap {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FrameTap {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_inject(cx))?;
        let n = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.track(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_inject(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
