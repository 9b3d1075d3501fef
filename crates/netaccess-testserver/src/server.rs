//! [`TestServer`]: the running server handle — binding, the accept loop, per-connection
//! task spawning, addresses/URLs, statistics and shutdown.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::builder::{Protocol, ServerBuilder};
use crate::connection::{serve_hyper_connection, HyperSettings, WireProtocol};
use crate::raw::{serve_raw, RawFault};
use crate::shutdown::{shutdown_channel, ShutdownAwareExecutor, ShutdownSignal, ShutdownTrigger};
use crate::stats::{Counters, Stats};
use crate::tls::{self, TlsMaterial};

/// Pause after a failed `accept` (e.g. out of file descriptors) before retrying.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Handle to a running in-process test server bound to `127.0.0.1`.
///
/// Cheap to clone; all clones share one server. Dropping the last handle, or calling
/// [`shutdown`](Self::shutdown), stops accepting and closes every connection.
#[derive(Clone)]
pub struct TestServer {
    inner: Arc<ServerInner>,
}

/// The CA a client has to trust to talk to a TLS-mode server.
#[derive(Debug)]
struct TrustAnchor {
    pem: String,
    der: Vec<u8>,
    leaf_der: Vec<u8>,
    client_identity: Option<(String, String)>,
}

struct ServerInner {
    addr: SocketAddr,
    trust_anchor: Option<TrustAnchor>,
    counters: Arc<Counters>,
    shutdown: ShutdownTrigger,
    accept_task: AbortHandle,
}

impl Drop for ServerInner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ServerInner {
    fn stop(&self) {
        self.accept_task.abort();
        self.shutdown.trigger();
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("base_url", &self.base_url())
            .field("stats", &self.stats())
            .finish()
    }
}

/// What the accept loop does with each accepted connection.
#[derive(Debug, Clone)]
enum ConnectionHandler {
    Hyper(Arc<HyperSettings>),
    Raw(RawFault),
}

impl TestServer {
    /// A builder; defaults to cleartext HTTP/1.1.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Starts a cleartext HTTP/1.1 server.
    pub async fn http1() -> TestServer {
        Self::builder().http1().start().await
    }

    /// Starts a cleartext server speaking HTTP/1.1 and prior-knowledge HTTP/2.
    pub async fn h2c() -> TestServer {
        Self::builder().h2c().start().await
    }

    /// Starts a TLS server offering `h2` and `http/1.1` via ALPN.
    pub async fn tls() -> TestServer {
        Self::builder().tls().start().await
    }

    /// Binds, builds the connection handler and spawns the accept loop.
    pub(crate) async fn launch(builder: ServerBuilder) -> io::Result<TestServer> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let (shutdown, signal) = shutdown_channel();
        let tls_material = match builder.protocol {
            Protocol::Tls { offer_h2 } => Some(tls::generate(
                &builder.tls_hostnames,
                offer_h2,
                builder.tls_validity,
                builder.tls_client_auth,
            )?),
            _ => None,
        };
        let handler =
            connection_handler(builder.protocol, tls_material.as_ref(), &counters, &signal);
        let accept_task = tokio::spawn(accept_loop(
            listener,
            handler,
            Arc::clone(&counters),
            signal,
        ))
        .abort_handle();
        let trust_anchor = tls_material.map(|material| TrustAnchor {
            pem: material.ca_cert_pem,
            der: material.ca_cert_der,
            leaf_der: material.leaf_cert_der,
            client_identity: material.client_identity,
        });
        Ok(TestServer {
            inner: Arc::new(ServerInner {
                addr,
                trust_anchor,
                counters,
                shutdown,
                accept_task,
            }),
        })
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.inner.trust_anchor.is_some()
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` for TLS servers (the
    /// certificate has an IP SAN for `127.0.0.1`).
    pub fn base_url(&self) -> String {
        self.base_url_for_host("127.0.0.1")
    }

    /// Like [`base_url`](Self::base_url) with another host name, e.g. `localhost` to
    /// exercise DNS-name certificate validation. The host must resolve to 127.0.0.1.
    pub fn base_url_for_host(&self, host: &str) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{host}:{}", self.port())
    }

    /// [`base_url`](Self::base_url) followed by `path_and_query` (a leading `/` is added
    /// if missing).
    pub fn url(&self, path_and_query: &str) -> String {
        let separator = if path_and_query.starts_with('/') {
            ""
        } else {
            "/"
        };
        format!("{}{separator}{path_and_query}", self.base_url())
    }

    /// PEM of the CA certificate clients must trust; `None` for cleartext servers.
    pub fn ca_cert_pem(&self) -> Option<String> {
        self.inner
            .trust_anchor
            .as_ref()
            .map(|anchor| anchor.pem.clone())
    }

    /// DER of the CA certificate clients must trust; `None` for cleartext servers.
    /// `(certificate PEM, private key PEM)` of a client identity the server accepts, for a
    /// server built with `tls_require_client_certificate`.
    pub fn client_identity_pem(&self) -> Option<(String, String)> {
        self.inner
            .trust_anchor
            .as_ref()
            .and_then(|anchor| anchor.client_identity.clone())
    }

    /// DER of the server's own (leaf) certificate, e.g. to pin it; `None` for cleartext.
    pub fn leaf_cert_der(&self) -> Option<Vec<u8>> {
        self.inner
            .trust_anchor
            .as_ref()
            .map(|anchor| anchor.leaf_der.clone())
    }

    /// DER of the CA certificate a client must trust; `None` for cleartext.
    pub fn ca_cert_der(&self) -> Option<Vec<u8>> {
        self.inner
            .trust_anchor
            .as_ref()
            .map(|anchor| anchor.der.clone())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Zeroes the cumulative counters and per-path counts; the peaks restart from the
    /// current number of open connections and in-flight requests.
    pub fn reset_stats(&self) {
        self.inner.counters.reset();
    }

    /// Requests received whose path (query excluded) equals `path`, e.g. `"/hello"`.
    pub fn requests_for(&self, path: &str) -> u64 {
        self.inner.counters.requests_for(path)
    }

    /// Stops accepting and closes every open connection now (also done when the last
    /// handle is dropped). The port stays unusable for this server afterwards.
    pub fn shutdown(&self) {
        self.inner.stop();
    }
}

fn connection_handler(
    protocol: Protocol,
    tls_material: Option<&TlsMaterial>,
    counters: &Arc<Counters>,
    signal: &ShutdownSignal,
) -> ConnectionHandler {
    let cleartext_protocol = match protocol {
        Protocol::Raw(fault) => return ConnectionHandler::Raw(fault),
        Protocol::H2c => WireProtocol::Http1OrHttp2,
        Protocol::Http1 | Protocol::Tls { .. } => WireProtocol::Http1,
    };
    ConnectionHandler::Hyper(Arc::new(HyperSettings {
        cleartext_protocol,
        tls: tls_material.map(|material| Arc::clone(&material.server_config)),
        counters: Arc::clone(counters),
        digest_nonces: Arc::default(),
        executor: ShutdownAwareExecutor::new(signal.clone()),
    }))
}

/// Accepts until shutdown, spawning one shutdown-aware task per connection.
async fn accept_loop(
    listener: TcpListener,
    handler: ConnectionHandler,
    counters: Arc<Counters>,
    signal: ShutdownSignal,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = signal.clone().wait() => return,
        };
        match accepted {
            Ok((stream, _peer)) => spawn_connection(stream, &handler, &counters, &signal),
            Err(_) => tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await,
        }
    }
}

fn spawn_connection(
    stream: TcpStream,
    handler: &ConnectionHandler,
    counters: &Arc<Counters>,
    signal: &ShutdownSignal,
) {
    let open_guard = counters.connection_opened();
    let _ = stream.set_nodelay(true);
    let handler = handler.clone();
    let counters = Arc::clone(counters);
    signal.spawn(async move {
        let _open_guard = open_guard;
        match handler {
            ConnectionHandler::Hyper(settings) => serve_hyper_connection(stream, settings).await,
            ConnectionHandler::Raw(fault) => serve_raw(stream, fault, counters).await,
        }
    });
}
