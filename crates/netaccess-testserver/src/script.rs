//! Scripted mode: a server whose every byte is stated by the test ([`ScriptServer`]).
//!
//! Each accepted connection plays one script, a list of [`Step`]s: read a request head (and
//! its body), write these bytes, sleep, close with FIN, reset, start TLS, write raw bytes under
//! TLS, … The n-th connection plays the n-th script; connections past the list replay the last
//! one. When a script runs out, the connection records any further request head and closes, so
//! a test sees every request a client sent, with the index of the connection it came on.
//!
//! Speaks no HTTP beyond finding a request head's end and skipping a `Content-Length` body:
//! the tests write status lines, headers and framing themselves, right or wrong.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::reset::arm_abortive_close;
use crate::tls::{self, TlsMaterial, Validity};

/// Largest request head a scripted connection reads.
const MAX_HEAD_LEN: usize = 64 * 1024;
/// How long a closing connection waits for the client's FIN before dropping.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long [`Step::ReadHead`] waits for a request before giving up on the connection.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// One action of a scripted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Reads one request head and its `Content-Length` body, and records the head. Ends the
    /// script when the client closes or sends no request within 20 s.
    Read,
    /// Reads and records one request head only; its body stays unread (see [`Step::ReadBody`]).
    ReadHead,
    /// Reads the `Content-Length` body of the last head.
    ReadBody,
    /// Writes these bytes (through TLS when the connection speaks TLS) and flushes.
    Write(Vec<u8>),
    /// Writes these bytes on the TCP socket itself, under any TLS layer (a forged record).
    WriteRaw(Vec<u8>),
    /// Waits this long.
    Sleep(Duration),
    /// Makes [`ScriptServer::reached`] resolve for this label.
    Mark(&'static str),
    /// Waits until the test calls [`ScriptServer::signal`] with this label.
    WaitFor(&'static str),
    /// Reads and discards until the client closes (at most 20 s), then records how many bytes
    /// that was ([`ScriptServer::drained`]).
    Drain,
    /// Answers a TLS handshake on this connection (after a CONNECT answer, say): from here on
    /// the connection speaks TLS with the server's certificate.
    StartTls,
    /// Closes: TLS `close_notify` first when speaking TLS, then FIN; waits (bounded) for the
    /// client to close so that no RST is provoked.
    Close,
    /// Closes the TCP connection with FIN without a TLS `close_notify` (a truncation attack).
    CloseWithoutNotify,
    /// Resets the connection (`SO_LINGER` 0, then close).
    Reset,
    /// Keeps the connection open, reading nothing, until the server stops.
    Hang,
}

impl Step {
    /// [`Step::Write`] of a string.
    pub fn write(text: impl AsRef<[u8]>) -> Step {
        Step::Write(text.as_ref().to_vec())
    }
}

/// A request head as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Index of the connection it came on (0 for the first accepted one).
    pub connection: usize,
    /// The head, request line to blank line, decoded as UTF-8 (lossy).
    pub head: String,
}

impl Recorded {
    /// The request line (`GET /x HTTP/1.1`).
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// The value of the first header named `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    connections: Mutex<usize>,
    marks: Mutex<HashSet<&'static str>>,
    signals: Mutex<HashSet<String>>,
    drained: Mutex<Vec<(usize, u64)>>,
    changed: Notify,
}

impl Shared {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A loopback server that plays scripts (see the module docs). Dropping it stops it and
/// closes every connection.
#[derive(Debug)]
pub struct ScriptServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    ca_cert_pem: String,
    task: JoinHandle<()>,
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptServer {
    /// Starts a plain TCP server on `127.0.0.1:0` playing `scripts`.
    ///
    /// # Panics
    /// If no loopback port can be bound or no certificate generated (test setup failures).
    pub async fn start(scripts: Vec<Vec<Step>>) -> ScriptServer {
        Self::launch(scripts, false).await
    }

    /// Like [`start`](Self::start), but every connection speaks TLS from its first byte
    /// (certificate for `localhost`, `127.0.0.1`, `example.test`; ALPN `http/1.1`).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_tls(scripts: Vec<Vec<Step>>) -> ScriptServer {
        Self::launch(scripts, true).await
    }

    /// Like [`start`](Self::start), with scripts made once the port is known (for bytes that
    /// name the server itself, such as a redirect to another scheme on the same port).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_with(make: impl FnOnce(u16) -> Vec<Vec<Step>>) -> ScriptServer {
        Self::launch_with(make, false).await
    }

    async fn launch(scripts: Vec<Vec<Step>>, tls_first: bool) -> ScriptServer {
        Self::launch_with(|_| scripts, tls_first).await
    }

    async fn launch_with(
        make: impl FnOnce(u16) -> Vec<Vec<Step>>,
        tls_first: bool,
    ) -> ScriptServer {
        let names: Vec<String> = tls::DEFAULT_HOSTNAMES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let material = tls::generate(&names, false, Validity::Current, false)
            .expect("test TLS material can be generated");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port can be bound");
        let addr = listener.local_addr().expect("bound socket has an address");
        let scripts = make(addr.port());
        let shared = Arc::new(Shared::default());
        let ca_cert_pem = material.ca_cert_pem.clone();
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(scripts),
            Arc::new(material),
            tls_first,
            shared.clone(),
        ));
        ScriptServer {
            addr,
            shared,
            ca_cert_pem,
            task,
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` + `path` (`https://` for a TLS server is the caller's choice).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    /// `https://127.0.0.1:PORT` + `path`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// PEM of the CA that signed the certificate served on TLS connections.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// Every request head received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        Shared::lock(&self.shared.requests).clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        *Shared::lock(&self.shared.connections)
    }

    /// Resolves once a connection played [`Step::Mark`] with `label`.
    pub async fn reached(&self, label: &str) {
        loop {
            let changed = self.shared.changed.notified();
            if Shared::lock(&self.shared.marks).contains(label) {
                return;
            }
            changed.await;
        }
    }

    /// Lets connections waiting in [`Step::WaitFor`] for `label` go on (now and later).
    pub fn signal(&self, label: &str) {
        Shared::lock(&self.shared.signals).insert(label.to_owned());
        self.shared.changed.notify_waiters();
    }

    /// For each connection that played [`Step::Drain`]: its index and the bytes it discarded
    /// before the client closed.
    pub fn drained(&self) -> Vec<(usize, u64)> {
        Shared::lock(&self.shared.drained).clone()
    }

    /// Resolves once a connection finished a [`Step::Drain`].
    pub async fn drain_finished(&self) {
        loop {
            let changed = self.shared.changed.notified();
            if !Shared::lock(&self.shared.drained).is_empty() {
                return;
            }
            changed.await;
        }
    }

    /// Resolves once at least `n` request heads were recorded.
    pub async fn requests_received(&self, n: usize) {
        loop {
            let changed = self.shared.changed.notified();
            if Shared::lock(&self.shared.requests).len() >= n {
                return;
            }
            changed.await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    scripts: Arc<Vec<Vec<Step>>>,
    material: Arc<TlsMaterial>,
    tls_first: bool,
    shared: Arc<Shared>,
) {
    // Owned here: aborting this task drops the set, which aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let index = {
                    let mut count = Shared::lock(&shared.connections);
                    *count += 1;
                    *count - 1
                };
                let script = scripts
                    .get(index)
                    .or_else(|| scripts.last())
                    .cloned()
                    .unwrap_or_default();
                let material = material.clone();
                let own = shared.clone();
                connections.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let conn = if tls_first {
                        match Conn::Tcp(stream).start_tls(&material).await {
                            Ok(conn) => conn,
                            Err(_) => return,
                        }
                    } else {
                        Conn::Tcp(stream)
                    };
                    play(conn, index, script, &material, &own).await;
                });
                shared.changed.notify_waiters();
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A scripted connection's stream.
enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    async fn start_tls(self, material: &TlsMaterial) -> io::Result<Conn> {
        match self {
            Conn::Tcp(stream) => {
                let acceptor = TlsAcceptor::from(material.server_config.clone());
                Ok(Conn::Tls(Box::new(acceptor.accept(stream).await?)))
            }
            Conn::Tls(_) => Err(io::Error::other("already speaking TLS")),
        }
    }

    fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Conn::Tcp(s) => s,
            Conn::Tls(s) => s.get_mut().0,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A connection with its unread bytes.
struct Player<'a> {
    conn: Conn,
    buffer: Vec<u8>,
    index: usize,
    shared: &'a Shared,
    /// `Content-Length` of the last head read.
    pending_body: u64,
}

impl Player<'_> {
    /// Reads and records one head; `false` on EOF, error, timeout or an oversized head.
    async fn read_head(&mut self) -> bool {
        let found = tokio::time::timeout(READ_TIMEOUT, async {
            loop {
                if let Some(end) = head_end(&self.buffer) {
                    return Some(end);
                }
                if self.buffer.len() >= MAX_HEAD_LEN || !self.fill().await {
                    return None;
                }
            }
        })
        .await;
        let Ok(Some(end)) = found else {
            return false;
        };
        let head: Vec<u8> = self.buffer.drain(..end).collect();
        let head = String::from_utf8_lossy(&head).into_owned();
        self.pending_body = content_length(&head);
        Shared::lock(&self.shared.requests).push(Recorded {
            connection: self.index,
            head,
        });
        self.shared.changed.notify_waiters();
        true
    }

    /// Reads the pending body; `false` if the connection ended first.
    async fn read_body(&mut self) -> bool {
        while self.pending_body > 0 {
            if self.buffer.is_empty() && !self.fill().await {
                return false;
            }
            let take = (self.buffer.len() as u64).min(self.pending_body);
            self.buffer.drain(..take as usize);
            self.pending_body -= take;
        }
        true
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.conn.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        self.conn.write_all(bytes).await.is_ok() && self.conn.flush().await.is_ok()
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> bool {
        let tcp = self.conn.tcp();
        tcp.write_all(bytes).await.is_ok() && tcp.flush().await.is_ok()
    }

    /// Sends FIN (after `close_notify` unless `notify` is false), then drains until the client
    /// closes, bounded.
    async fn close(mut self, notify: bool) {
        let shut = if notify {
            self.conn.shutdown().await
        } else {
            self.conn.tcp().shutdown().await
        };
        if shut.is_err() {
            return;
        }
        let tcp = self.conn.tcp();
        let mut sink = [0u8; 8192];
        let drain = async {
            while let Ok(n) = tcp.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_DRAIN_TIMEOUT, drain).await;
    }
}

/// Plays `script` on `conn`, then records what else arrives and closes.
async fn play(
    conn: Conn,
    index: usize,
    script: Vec<Step>,
    material: &TlsMaterial,
    shared: &Shared,
) {
    let mut player = Player {
        conn,
        buffer: Vec::new(),
        index,
        shared,
        pending_body: 0,
    };
    for step in script {
        let went_on = match step {
            Step::Read => player.read_head().await && player.read_body().await,
            Step::ReadHead => player.read_head().await,
            Step::ReadBody => player.read_body().await,
            Step::Write(bytes) => player.write(&bytes).await,
            Step::WriteRaw(bytes) => player.write_raw(&bytes).await,
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                true
            }
            Step::Mark(label) => {
                Shared::lock(&shared.marks).insert(label);
                shared.changed.notify_waiters();
                true
            }
            Step::WaitFor(label) => {
                loop {
                    let changed = shared.changed.notified();
                    if Shared::lock(&shared.signals).contains(label) {
                        break;
                    }
                    changed.await;
                }
                true
            }
            Step::Drain => {
                let mut total = player.buffer.len() as u64;
                player.buffer.clear();
                let mut sink = vec![0u8; 64 * 1024];
                let drain = async {
                    while let Ok(n) = player.conn.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                        total += n as u64;
                    }
                };
                let _ = tokio::time::timeout(READ_TIMEOUT, drain).await;
                Shared::lock(&shared.drained).push((index, total));
                shared.changed.notify_waiters();
                return;
            }
            Step::StartTls => match player.conn.start_tls(material).await {
                Ok(conn) => {
                    player.conn = conn;
                    true
                }
                Err(_) => return,
            },
            Step::Close => return player.close(true).await,
            Step::CloseWithoutNotify => return player.close(false).await,
            Step::Reset => {
                arm_abortive_close(player.conn.tcp());
                return;
            }
            Step::Hang => return std::future::pending().await,
        };
        if !went_on {
            return;
        }
    }
    // Past the script: record whatever else the client asks, then close.
    if player.read_head().await {
        player.close(true).await;
    }
}

/// Index just past the blank line ending a head.
fn head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|start| start + 4)
}

/// The `Content-Length` of a request head (0 when absent or unparsable).
fn content_length(head: &str) -> u64 {
    head.lines()
        .skip(1)
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_heads_expose_line_and_headers() {
        let r = Recorded {
            connection: 0,
            head: "GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eA==\r\n\r\n".into(),
        };
        assert_eq!(r.request_line(), "GET /x HTTP/1.1");
        assert_eq!(r.header("authorization"), Some("Basic eA=="));
        assert_eq!(r.header("cookie"), None);
        assert_eq!(
            content_length("POST / HTTP/1.1\r\ncontent-length: 7\r\n\r\n"),
            7
        );
        assert_eq!(
            content_length("POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n"),
            0
        );
    }
}
