//! [`ManagerBuilder`]: every setting of a [`NetworkAccessManager`], checked and turned into
//! its first `Context` by `build()`.
//!
//! Over 600 lines because each of the builder's settings is a documented method with an
//! example; the logic is `build_checked` alone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::runtime::{Handle, Runtime};

use super::{
    NetworkAccessManager, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS_PER_HOST, DEFAULT_USER_AGENT,
};
use crate::backend::http::Http2Options;
use crate::cache::Cache;
use crate::context::{Config, Context, ManagerSignals};
use crate::cookies::{CookieJar, DefaultCookieJar};
use crate::error::{Error, NetworkError};
use crate::hsts::HstsStore;
use crate::interceptor::Interceptor;
use crate::proxy::{Proxy, ProxyFactory};
use crate::redirect::RedirectPolicy;
use crate::retry::RetryPolicy;
use crate::scheduler::Pool;
use crate::transport::tls::{ClientIdentity, Pins, TlsConfig, TlsOptions};
use crate::transport::ResolveOverrides;

/// Builds a [`NetworkAccessManager`].
#[must_use = "a builder does nothing until build() is called"]
pub struct ManagerBuilder {
    max_connections_per_host: usize,
    max_connections_total: Option<usize>,
    idle_timeout: Duration,
    transfer_timeout: Option<Duration>,
    connect_timeout: Duration,
    http2: Http2Options,
    extra_roots: Vec<CertificateDer<'static>>,
    system_roots: bool,
    ignore_tls_errors: bool,
    runtime: Option<Handle>,
    resolve: ResolveOverrides,
    redirect_policy: RedirectPolicy,
    cookie_jar: Option<Arc<dyn CookieJar>>,
    hsts: Option<Arc<HstsStore>>,
    hsts_enabled: bool,
    cache: Option<Arc<dyn Cache>>,
    proxy: Option<Arc<dyn ProxyFactory>>,
    fixed_proxy: Option<Proxy>,
    pins: std::collections::HashMap<String, Pins>,
    platform_verifier: bool,
    client_identity: Option<ClientIdentity>,
    max_body_size: Option<u64>,
    user_agent: Option<http::HeaderValue>,
    interceptors: Vec<Arc<dyn Interceptor>>,
    retry_policy: RetryPolicy,
    max_download_rate: Option<u64>,
    max_download_rate_per_host: Option<u64>,
    event_listener: Option<Arc<dyn crate::events::EventListener>>,
    /// The first error a setting met, for `build()`.
    error: Option<Error>,
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("max_connections_per_host", &self.max_connections_per_host)
            .field("idle_timeout", &self.idle_timeout)
            .field("transfer_timeout", &self.transfer_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("redirect_policy", &self.redirect_policy)
            .field("hsts_enabled", &self.hsts_enabled)
            .finish_non_exhaustive()
    }
}

impl Default for ManagerBuilder {
    fn default() -> Self {
        ManagerBuilder {
            max_connections_per_host: DEFAULT_MAX_CONNECTIONS_PER_HOST,
            max_connections_total: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            transfer_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            http2: Http2Options::default(),
            extra_roots: Vec::new(),
            system_roots: true,
            ignore_tls_errors: false,
            runtime: None,
            resolve: ResolveOverrides::default(),
            redirect_policy: RedirectPolicy::default(),
            cookie_jar: None,
            hsts: None,
            hsts_enabled: false,
            cache: None,
            proxy: None,
            fixed_proxy: None,
            pins: Default::default(),
            platform_verifier: false,
            client_identity: None,
            max_body_size: None,
            user_agent: Some(http::HeaderValue::from_static(DEFAULT_USER_AGENT)),
            interceptors: Vec::new(),
            retry_policy: RetryPolicy::none(),
            max_download_rate: None,
            max_download_rate_per_host: None,
            event_listener: None,
            error: None,
        }
    }
}

impl ManagerBuilder {
    /// Parallel HTTP/1.1 connections per origin (Qt's
    /// `QHttp1Configuration::setNumberOfConnectionsPerHost`; default 6).
    pub fn max_connections_per_host(mut self, n: usize) -> Self {
        self.max_connections_per_host = n.max(1);
        self
    }

    /// The `User-Agent` of requests that set none (default [`DEFAULT_USER_AGENT`]); `None`
    /// sends none. A value that is not a valid header value is refused when the manager is
    /// built.
    ///
    /// ```
    /// use netaccess::NetworkAccessManager;
    /// let manager = NetworkAccessManager::builder()
    ///     .user_agent(Some("MyOwnBrowser 1.0"))
    ///     .build();
    /// ```
    pub fn user_agent(mut self, agent: Option<&str>) -> Self {
        match agent.map(http::HeaderValue::from_str) {
            None => self.user_agent = None,
            Some(Ok(value)) => self.user_agent = Some(value),
            Some(Err(_)) => {
                return self.fail(Error::new(
                    NetworkError::ProtocolInvalidOperationError,
                    format!("Invalid User-Agent {agent:?}: not a valid header value"),
                ))
            }
        }
        self
    }

    /// Adds an interceptor: its hooks run on every attempt of every request, after those
    /// added before it (see [`Interceptor`]).
    pub fn interceptor(mut self, interceptor: Arc<dyn Interceptor>) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Which failed attempts are sent again, how often and after how long (none by
    /// default; see [`RetryPolicy`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// At most `n` open connections across all origins (none by default; 0 counts as 1).
    /// At the limit, a request that needs a new connection first closes an idle connection
    /// of another origin; with none idle it waits, and freed room goes to the waiting
    /// requests of all origins in priority order.
    ///
    /// ```
    /// use netaccess::NetworkAccessManager;
    /// let manager = NetworkAccessManager::builder().max_connections_total(16).build();
    /// ```
    pub fn max_connections_total(mut self, n: usize) -> Self {
        self.max_connections_total = Some(n);
        self
    }

    /// How long an idle keep-alive connection is kept (default 120 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Transfer timeout for every request that sets none (Qt's `setTransferTimeout`):
    /// a reply fails with `TimeoutError` when no byte moves for this long. Default: none.
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.transfer_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Timeout for opening a connection, TCP and TLS (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Trusts the CA certificates in `pem` (one or more PEM blocks) besides the system's.
    /// PEM data without a valid certificate makes [`build`](Self::build) fail with
    /// `SslHandshakeFailedError`.
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        let mut found = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            match cert {
                Ok(cert) => found.push(cert),
                Err(e) => {
                    return self.fail(Error::new(
                        NetworkError::SslHandshakeFailedError,
                        format!("Invalid PEM certificate: {e}"),
                    ))
                }
            }
        }
        if found.is_empty() {
            return self.fail(Error::new(
                NetworkError::SslHandshakeFailedError,
                "No certificate in the PEM data",
            ));
        }
        self.extra_roots.extend(found);
        self
    }

    /// Records the first error a setting met; [`build`](Self::build) reports it.
    fn fail(mut self, error: Error) -> Self {
        self.error.get_or_insert(error);
        self
    }

    /// Trusts one DER-encoded CA certificate besides the system's.
    pub fn add_root_certificate_der(mut self, der: &[u8]) -> Self {
        self.extra_roots.push(CertificateDer::from(der.to_vec()));
        self
    }

    /// Whether the system's trust store is used (default true).
    pub fn use_system_roots(mut self, yes: bool) -> Self {
        self.system_roots = yes;
        self
    }

    /// Accepts any certificate (curl's `--insecure`). Errors are still reported by
    /// `ssl_errors`, but the handshake goes on.
    pub fn danger_ignore_tls_errors(mut self, yes: bool) -> Self {
        self.ignore_tls_errors = yes;
        self
    }

    /// Resolves `host` to `addrs` instead of asking the system (curl's `--resolve`); an empty
    /// list makes the host unknown (`HostNotFoundError`). The URL, the `Host` header and the TLS
    /// server name keep `host`.
    pub fn resolve(
        mut self,
        host: &str,
        addrs: impl IntoIterator<Item = std::net::IpAddr>,
    ) -> Self {
        self.resolve
            .insert(host.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }

    /// Resolves host names with `resolver` instead of the system's (`getaddrinfo`); names
    /// given to [`resolve`](Self::resolve) still win.
    pub fn resolver(mut self, resolver: Arc<dyn crate::transport::dns::Resolve>) -> Self {
        self.resolve.set_resolver(resolver);
        self
    }

    /// How long a resolved name's addresses are reused (default
    /// [`DEFAULT_DNS_CACHE_TTL`](crate::limits::DEFAULT_DNS_CACHE_TTL), 60 s; at most
    /// [`DNS_CACHE_MAX_NAMES`](crate::limits::DNS_CACHE_MAX_NAMES) names). `Duration::ZERO` asks the
    /// resolver every time a connection is opened.
    pub fn dns_cache_ttl(mut self, ttl: Duration) -> Self {
        self.resolve.set_ttl(ttl);
        self
    }

    /// The redirect policy of requests that set none (default `NoLessSafe`, as Qt 6).
    pub fn redirect_policy(mut self, policy: RedirectPolicy) -> Self {
        self.redirect_policy = policy;
        self
    }

    /// The cookie jar (Qt's `setCookieJar`). Default: an in-memory [`DefaultCookieJar`], as Qt.
    #[doc(alias = "setCookieJar")]
    pub fn cookie_jar(mut self, jar: Arc<dyn CookieJar>) -> Self {
        self.cookie_jar = Some(jar);
        self
    }

    /// Qt's `setStrictTransportSecurityEnabled`: honour `Strict-Transport-Security` headers and
    /// upgrade requests to known hosts to https before any socket opens. Off by default, as Qt.
    #[doc(alias = "setStrictTransportSecurityEnabled")]
    pub fn strict_transport_security(mut self, enabled: bool) -> Self {
        self.hsts_enabled = enabled;
        self
    }

    /// The HSTS store (for example one loaded from a file with [`HstsStore::load`]).
    pub fn hsts_store(mut self, store: Arc<HstsStore>) -> Self {
        self.hsts = Some(store);
        self
    }

    /// The HTTP cache (Qt's `setCache`): a [`MemoryCache`](crate::MemoryCache), a
    /// [`DiskCache`](crate::DiskCache) or your own [`Cache`]. None by default, as in Qt.
    #[doc(alias = "setCache")]
    pub fn cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// One proxy for every request (Qt's `setProxy`); [`Proxy::no_proxy`] for none.
    #[doc(alias = "setProxy")]
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(Arc::new(proxy.clone()));
        self.fixed_proxy = Some(proxy);
        self
    }

    /// A proxy chosen per request (Qt's `setProxyFactory`), e.g. [`EnvProxyFactory`](crate::EnvProxyFactory) for
    /// `http_proxy`, `https_proxy`, `all_proxy` and `no_proxy`. Default: direct connections.
    #[doc(alias = "setProxyFactory")]
    pub fn proxy_factory(mut self, factory: Arc<dyn ProxyFactory>) -> Self {
        self.proxy = Some(factory);
        self.fixed_proxy = None;
        self
    }

    /// A client certificate (PEM chain, leaf first) and its private key (PEM, PKCS#8, PKCS#1
    /// or SEC1), presented to servers that ask for one (Qt's `QSslConfiguration::setLocalCertificate`
    /// and `setPrivateKey`).
    /// Invalid PEM data makes [`build`](Self::build) fail with `SslHandshakeFailedError`.
    pub fn client_certificate_pem(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Self {
        use rustls_pki_types::PrivateKeyDer;
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::new(
                NetworkError::SslHandshakeFailedError,
                format!("Invalid client {what}: {e}"),
            )
        };
        let chain = match CertificateDer::pem_slice_iter(chain_pem).collect::<Result<Vec<_>, _>>() {
            Ok(chain) if chain.is_empty() => {
                return self.fail(bad("certificate", &"no certificate in the PEM data"))
            }
            Ok(chain) => chain,
            Err(e) => return self.fail(bad("certificate", &e)),
        };
        match PrivateKeyDer::from_pem_slice(key_pem) {
            Ok(key) => self.client_identity = Some(ClientIdentity { chain, key }),
            Err(e) => return self.fail(bad("key", &e)),
        }
        self
    }

    /// Pins `host`'s certificate: its TLS handshakes accept only certificates whose SHA-256
    /// digest (of the DER) is one of those pinned, on top of the usual checks. Call again to
    /// pin several (e.g. the next certificate before a rotation). A mismatch is an `SslError`
    /// of kind `CertificateNotPinned`.
    /// [`Certificate::sha256`](crate::Certificate::sha256) gives the digest of a certificate.
    pub fn pin_certificate_sha256(mut self, host: &str, digest: [u8; 32]) -> Self {
        let pins = self.pins.entry(host.to_ascii_lowercase()).or_default();
        pins.certificates.push(digest);
        self
    }

    /// Pins `host`'s public key (RFC 7469's pin: the SHA-256 digest of the server
    /// certificate's SubjectPublicKeyInfo), which survives certificate renewals with the same
    /// key. Its handshakes accept only a certificate whose key, or whole certificate
    /// ([`pin_certificate_sha256`](Self::pin_certificate_sha256)), is pinned, on top of the
    /// usual checks; a mismatch fails with `SslHandshakeFailedError` after an `SslError` of
    /// kind `CertificateNotPinned`. Only the server's own certificate is compared, never the
    /// CAs it sends. [`Certificate::public_key_sha256`](crate::Certificate::public_key_sha256)
    /// gives the digest (as does `openssl x509 -pubkey | openssl pkey -pubin -outform der |
    /// sha256sum`).
    ///
    /// ```
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .pin_public_key_sha256("api.example.org", [0x5a; 32])
    ///     .build()
    ///     .unwrap();
    /// # drop(manager);
    /// ```
    pub fn pin_public_key_sha256(mut self, host: &str, digest: [u8; 32]) -> Self {
        let pins = self.pins.entry(host.to_ascii_lowercase()).or_default();
        pins.public_keys.push(digest);
        self
    }

    /// Verifies server certificates with the operating system's verifier
    /// (`rustls-platform-verifier`: its trust store, revocation checks and user-installed CAs
    /// where the platform has them) instead of webpki with the system's roots. Roots added with
    /// `add_root_certificate_*` or per request are trusted too; `use_system_roots` no longer
    /// applies. Default off. Needs the `platform-verifier` feature.
    ///
    /// ```
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .use_platform_verifier(true)
    ///     .build()
    ///     .unwrap();
    /// # drop(manager);
    /// ```
    #[cfg(feature = "platform-verifier")]
    pub fn use_platform_verifier(mut self, yes: bool) -> Self {
        self.platform_verifier = yes;
        self
    }

    /// HTTP/2 keep-alive: when no frame came from the server for `interval`, a PING is sent;
    /// when its answer takes longer than `timeout`, the connection is dead: it is closed and
    /// its requests fail (`TimeoutError` while waiting for the response head) instead of
    /// hanging. Both are clamped to 10 ms ..= 24 h. Default: on, 30 s and 20 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .http2_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
    ///     .build();
    /// # drop(manager);
    /// ```
    pub fn http2_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.http2 = Http2Options {
            keep_alive: Http2Options::with_keep_alive(interval, timeout).keep_alive,
            ..self.http2
        };
        self
    }

    /// No HTTP/2 keep-alive PINGs (a dead connection is then noticed only by the transfer
    /// timeout or the operating system).
    pub fn http2_keep_alive_off(mut self) -> Self {
        self.http2.keep_alive = None;
        self
    }

    /// HTTP/2 receive windows (Qt's `QHttp2Configuration::setStreamReceiveWindowSize` and
    /// `setSessionReceiveWindowSize`): of one stream (default 8 MiB, for links up to about
    /// 160 MB/s at a 50 ms round trip) and of the whole connection (default 64 MiB). Both are
    /// clamped to 64 KiB ..= 2^31 - 1, and the connection's is at least the stream's. Bytes
    /// received but not read count against both: the default leaves room for 7 replies nobody
    /// reads before other streams stall.
    ///
    /// ```
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .http2_windows(4 << 20, 64 << 20) // a long fat link
    ///     .build();
    /// # drop(manager);
    /// ```
    #[doc(alias = "setStreamReceiveWindowSize")]
    #[doc(alias = "setSessionReceiveWindowSize")]
    pub fn http2_windows(mut self, stream: u32, connection: u32) -> Self {
        const MIN: u32 = 65_535;
        const MAX: u32 = (1 << 31) - 1;
        self.http2.stream_window = stream.clamp(MIN, MAX);
        self.http2.connection_window = connection.clamp(self.http2.stream_window, MAX);
        self
    }

    /// Sizes the HTTP/2 windows by measuring the link's bandwidth-delay product (hyper's
    /// adaptive window) instead of [`http2_windows`](Self::http2_windows). Off by default: it
    /// starts from 64 KiB windows that grow only as data is read, so a reply nobody reads can
    /// stall the other streams of its connection; and on a 50 ms link it reached 0.63-0.85x
    /// HTTP/1.1's rate where the fixed default windows reach 0.85-0.94x
    /// (`benches/long_link.rs`).
    pub fn http2_adaptive_window(mut self, enabled: bool) -> Self {
        self.http2.adaptive_window = enabled;
        self
    }

    /// The most requests run at once on one HTTP/2 connection (Qt's
    /// `QHttp2Configuration::setMaxConcurrentStreams`), below the server's own
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`; more wait in the origin's queue, by priority.
    /// Default: the server's limit alone. `0` counts as 1.
    ///
    /// ```
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .http2_max_concurrent_streams(16)
    ///     .build();
    /// # drop(manager);
    /// ```
    #[doc(alias = "setMaxConcurrentStreams")]
    pub fn http2_max_concurrent_streams(mut self, streams: u32) -> Self {
        self.http2.max_concurrent_streams = Some(streams.max(1));
        self
    }

    /// The largest HTTP/2 frame the server may send (Qt's `setMaxFrameSize`; default 16 KiB,
    /// clamped to 16 KiB ..= 16 MiB - 1 as RFC 9113 allows).
    #[doc(alias = "setMaxFrameSize")]
    pub fn http2_max_frame_size(mut self, size: u32) -> Self {
        self.http2.max_frame_size = size.clamp(1 << 14, (1 << 24) - 1);
        self
    }

    /// Runs requests on this runtime instead of the current one.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// The largest response body accepted by requests that set no limit of their own
    /// ([`Request::with_max_body_size`](crate::Request::with_max_body_size)); default: no limit (as curl). A reply whose body is
    /// larger fails with `UnknownContentError` at the first byte past the limit, or before the
    /// body when `Content-Length` announces it.
    ///
    /// ```
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .max_body_size(512 * 1024 * 1024)
    ///     .build();
    /// # drop(manager);
    /// ```
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.max_body_size = Some(bytes);
        self
    }

    /// At most `bytes_per_sec` of response bodies per second across the manager (curl's
    /// `--limit-rate` for all transfers together; 0: no limit, the default), counted as they
    /// arrive (before content decoding); bodies from the cache are not paced. Bodies are read
    /// off their connections no faster (the server is slowed down by TCP or HTTP/2 flow
    /// control; nothing is buffered), with a burst of at most 1/8 s. Waiting bodies are served
    /// by priority: Low requests get only what High and Normal ones leave.
    ///
    /// ```
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .max_download_rate(2 * 1024 * 1024)
    ///     .build();
    /// # drop(manager);
    /// ```
    pub fn max_download_rate(mut self, bytes_per_sec: u64) -> Self {
        self.max_download_rate = Some(bytes_per_sec);
        self
    }

    /// At most `bytes_per_sec` of response bodies per second from each `host:port`, shared by
    /// all requests to it (0: no limit, the default); priorities apply as in
    /// [`max_download_rate`](Self::max_download_rate), which also applies.
    ///
    /// ```
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .max_download_rate_per_host(512 * 1024)
    ///     .build();
    /// # drop(manager);
    /// ```
    pub fn max_download_rate_per_host(mut self, bytes_per_sec: u64) -> Self {
        self.max_download_rate_per_host = Some(bytes_per_sec);
        self
    }

    /// Hears every request's [`Event`](crate::events::Event)s, in order, on the request's
    /// task (OkHttp's `EventListener`). Each reply also keeps its
    /// [`timings`](crate::Reply::timings), with or without a listener.
    ///
    /// ```
    /// use netaccess::events::{Event, EventListener};
    /// struct Log;
    /// impl EventListener for Log {
    ///     fn on_event(&self, reply: &netaccess::Reply, event: &Event<'_>) {
    ///         eprintln!("{} {}", reply.url(), event.name());
    ///     }
    /// }
    /// let manager = netaccess::NetworkAccessManager::builder()
    ///     .event_listener(std::sync::Arc::new(Log))
    ///     .build();
    /// # drop(manager);
    /// ```
    pub fn event_listener(mut self, listener: Arc<dyn crate::events::EventListener>) -> Self {
        self.event_listener = Some(listener);
        self
    }

    /// Builds the manager.
    ///
    /// Fails with the first error a setting met (invalid PEM data, an invalid `User-Agent`).
    ///
    /// ```
    /// use netaccess::{NetworkAccessManager, NetworkError};
    /// let bad = NetworkAccessManager::builder()
    ///     .add_root_certificate_pem(b"not a certificate")
    ///     .build();
    /// assert_eq!(bad.unwrap_err().kind(), NetworkError::SslHandshakeFailedError);
    /// ```
    pub fn build(self) -> Result<NetworkAccessManager, Error> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.build_checked()),
        }
    }

    /// Builds a manager from settings without an error.
    pub(crate) fn build_checked(self) -> NetworkAccessManager {
        let runtime = self
            .runtime
            .or_else(|| Handle::try_current().ok())
            .unwrap_or_else(|| own_runtime().handle().clone());
        let pool = Pool::new(self.max_connections_per_host, self.idle_timeout)
            .with_max_total(self.max_connections_total);
        pool.spawn_sweeper(&runtime);
        let fixed_proxy = self.fixed_proxy;
        let config = Config {
            max_connections_per_host: self.max_connections_per_host,
            transfer_timeout: self.transfer_timeout,
            connect_timeout: self.connect_timeout,
            http2: Http2Options {
                settings_timeout: self.connect_timeout,
                ..self.http2
            },
            tls: Arc::new(TlsConfig::new(TlsOptions {
                extra_roots: self.extra_roots,
                use_system_roots: self.system_roots,
                platform_verifier: self.platform_verifier,
                ignore_all_errors: self.ignore_tls_errors,
                pins: self.pins,
                client_identity: self.client_identity,
            })),
            resolve: self.resolve,
            redirect_policy: self.redirect_policy,
            cookie_jar: self
                .cookie_jar
                .unwrap_or_else(|| Arc::new(DefaultCookieJar::new())),
            hsts: self.hsts.unwrap_or_default(),
            hsts_enabled: self.hsts_enabled,
            cache: self.cache,
            proxy: self.proxy,
            fixed_proxy,
            max_body_size: self.max_body_size,
            user_agent: self.user_agent,
            interceptors: self.interceptors.into(),
            retry_policy: self.retry_policy,
            rates: Arc::new(crate::rate::Rates::new(
                self.max_download_rate,
                self.max_download_rate_per_host,
            )),
            event_listener: self.event_listener,
        };
        let signals = Arc::new(ManagerSignals::new());
        let context = Context {
            config: Arc::new(config),
            credentials: Arc::default(),
            retry_budgets: Arc::default(),
            pool,
            runtime,
        };
        NetworkAccessManager {
            current: Arc::new(ArcSwap::from_pointee(context)),
            signals,
        }
    }
}

/// The runtime used by managers created outside any tokio runtime.
// A runtime that cannot start (no threads) leaves nothing to run requests on.
#[allow(clippy::expect_used)]
fn own_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("netaccess")
            .enable_all()
            .build()
            .expect("netaccess could not start its runtime")
    })
}
