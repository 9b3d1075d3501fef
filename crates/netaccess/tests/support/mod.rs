//! What the integration tests share: waiting for a reply with a hang guard, and a scripted
//! HTTP/1 server on loopback that answers each connection with the bytes a test gives.
//!
//! Each test file includes it with `mod support;`; not every file uses every item.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netaccess::Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The hang guard for one awaited event.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Waits for `reply` to finish; a reply that hangs fails the test after 60 s.
pub async fn done(reply: &Reply) {
    done_within(reply, Duration::from_secs(60)).await
}

/// Waits for `reply` to finish within `limit`.
pub async fn done_within(reply: &Reply, limit: Duration) {
    tokio::time::timeout(limit, reply.finished())
        .await
        .expect("the reply finished in time");
}

/// Waits for every reply of `replies`.
pub async fn finish_all(replies: &[Reply]) {
    for r in replies {
        done(r).await;
    }
}

/// A manager that trusts the certificate authority of the TLS test `server`.
pub fn tls_manager(server: &netaccess_testserver::TestServer) -> netaccess::NetworkAccessManager {
    netaccess::NetworkAccessManager::builder()
        .add_root_certificate_pem(server.ca_cert_pem().expect("TLS server").as_bytes())
        .build()
        .unwrap()
}

/// The error code of a finished reply.
pub fn kind(reply: &Reply) -> Option<netaccess::NetworkError> {
    reply.error().map(|e| e.kind())
}

/// A loopback server whose answer to each request is computed by a script from the request
/// head (the connection index, from 0, and the head as text). After the answer the
/// connection is closed.
pub struct ScriptedServer {
    pub port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl ScriptedServer {
    pub async fn start<F>(script: F) -> ScriptedServer
    where
        F: Fn(usize, &str) -> Vec<u8> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let (h, c) = (heads.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let index = c.fetch_add(1, Ordering::SeqCst);
                let (script, heads) = (script.clone(), h.clone());
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut stream).await else {
                        return;
                    };
                    heads.lock().unwrap().push(head.clone());
                    let answer = script(index, &head);
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        ScriptedServer {
            port,
            heads,
            connections,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A folder of its own under the system's temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "netaccess-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads up to the end of a request head (at most 1 MiB).
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// A response head and body as bytes: `status` line text, extra header lines, body.
pub fn response(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}
