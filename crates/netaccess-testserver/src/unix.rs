//! [`UnixTestServer`]: the same routes over HTTP/1.1 on a Unix domain socket, for clients that
//! speak HTTP to a local socket (Qt 6.8's `unix+http` URLs).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::task::AbortHandle;

use crate::auth::DigestNonces;
use crate::connection::{serve_http, WireProtocol};
use crate::reset::ResetSwitch;
use crate::routes::RequestContext;
use crate::shutdown::{shutdown_channel, ShutdownAwareExecutor, ShutdownTrigger};
use crate::stats::{Counters, Stats};

/// An HTTP/1.1 server on a Unix domain socket, serving the routes of
/// [`TestServer`](crate::TestServer). Dropping it stops the server and removes the socket file.
#[derive(Debug)]
pub struct UnixTestServer {
    path: PathBuf,
    counters: Arc<Counters>,
    shutdown: ShutdownTrigger,
    accept_task: AbortHandle,
}

impl UnixTestServer {
    /// Listens on a new socket at `path` (an existing file there is replaced).
    pub async fn start(path: impl AsRef<Path>) -> io::Result<UnixTestServer> {
        let path = path.as_ref().to_path_buf();
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        let counters = Arc::new(Counters::default());
        let (shutdown, signal) = shutdown_channel();
        let executor = ShutdownAwareExecutor::new(signal.clone());
        let accept_counters = Arc::clone(&counters);
        let digest_nonces = Arc::new(DigestNonces::default());
        let accept_task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = signal.clone().wait() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let open_guard = accept_counters.connection_opened();
                let context = RequestContext {
                    counters: Arc::clone(&accept_counters),
                    reset: ResetSwitch::default(),
                    digest_nonces: Arc::clone(&digest_nonces),
                };
                let executor = executor.clone();
                signal.spawn(async move {
                    let _open_guard = open_guard;
                    serve_http(stream, WireProtocol::Http1, context, executor).await;
                });
            }
        })
        .abort_handle();
        Ok(UnixTestServer {
            path,
            counters,
            shutdown,
            accept_task,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The counters (connections, requests, in flight).
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

impl Drop for UnixTestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.accept_task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}
