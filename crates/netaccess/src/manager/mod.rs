//! [`NetworkAccessManager`] (Qt's `QNetworkAccessManager`), the façade: the standard
//! functions (`get`, `post`, ...), the manager's signals and getters, and [`ManagerBuilder`].
//!
//! What requests share (configuration, connection pool, credential cache) is a `Context`
//! (`context.rs`), which the pipeline takes; nothing below the manager imports this file.
//! The manager is `Clone + Send + Sync`. A new HTTP request waits in its origin's queue as
//! data until the scheduler grants it a connection, and then runs as a task on the runtime
//! the manager was created in (or, created outside any tokio runtime, on a small runtime the
//! crate owns); `data:` and `file:` requests, and requests that consult a cache first, run as
//! a task at once.

use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use url::Url;

use crate::auth::AuthenticationRequest;
use crate::backend::http::HttpConn;
use crate::cache::Cache;
use crate::context::{Config, Context, ManagerSignals};
use crate::cookies::CookieJar;
use crate::error::{Error, NetworkError};
use crate::hsts::{HstsPolicy, HstsStore};

mod builder;
use crate::multipart::MultiPart;
use crate::pipeline;
use crate::proxy::{Proxy, ProxyFactory};
use crate::redirect::RedirectPolicy;
use crate::reply::{Reply, ReplyShared};
use crate::request::{Operation, Request};
use crate::scheduler::{Origin, Pool, Start};
use crate::signal::Signal;
use crate::transport::tls::SslError;
use crate::upload::Body;
pub use builder::ManagerBuilder;

pub use crate::context::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_HOST,
    DEFAULT_USER_AGENT,
};

/// Qt's `QNetworkAccessManager`: sends requests and returns [`Reply`]s at once; the work is
/// queued per origin (6 connections by default) and runs in the background.
///
/// ```no_run
/// # async fn demo() {
/// use netaccess::{NetworkAccessManager, Request};
/// let manager = NetworkAccessManager::new();
/// manager.finished().connect(|reply| println!("{} {:?}", reply.url(), reply.status()));
/// let reply = manager.get(Request::new("http://127.0.0.1:8080/"));
/// let body = reply.bytes().await;
/// # }
/// ```
#[doc(alias = "QNetworkAccessManager")]
#[derive(Clone)]
pub struct NetworkAccessManager {
    /// The current context; each request takes a snapshot of it when it starts.
    current: Arc<ArcSwap<Context>>,
    signals: Arc<ManagerSignals>,
}

impl std::fmt::Debug for NetworkAccessManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkAccessManager")
            .field(
                "max_connections_per_host",
                &self.current.load().config.max_connections_per_host,
            )
            .finish_non_exhaustive()
    }
}

impl Default for NetworkAccessManager {
    fn default() -> Self {
        Self::new()
    }
}

/// The URL a reply of an unparsable request shows.
#[allow(clippy::expect_used)] // a constant that parses
fn invalid_url() -> Url {
    Url::parse("invalid:").expect("static URL")
}

impl NetworkAccessManager {
    /// What the manager's requests share (for the pipeline's unit tests).
    #[cfg(test)]
    pub(crate) fn context(&self) -> Arc<Context> {
        self.current.load_full()
    }

    /// A reply for `request` that is not started (for the pipeline's unit tests).
    #[cfg(test)]
    pub(crate) fn unstarted_reply(&self, request: Request, operation: Operation) -> Reply {
        self.new_reply(&self.current.load(), request, operation)
    }

    /// A manager with the default configuration.
    pub fn new() -> Self {
        ManagerBuilder::default().build_checked()
    }

    /// A builder for a configured manager.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// GET (Qt's `get`).
    pub fn get(&self, request: Request) -> Reply {
        self.start(request, Operation::Get, Body::empty())
    }

    /// HEAD (Qt's `head`).
    pub fn head(&self, request: Request) -> Reply {
        self.start(request, Operation::Head, Body::empty())
    }

    /// POST with a body (Qt's `post`).
    pub fn post(&self, request: Request, body: impl Into<Body>) -> Reply {
        self.start(request, Operation::Post, body.into())
    }

    /// PATCH with a body (Qt 6.7's `QRestAccessManager::patch`).
    ///
    /// ```no_run
    /// # use netaccess::{Body, NetworkAccessManager, Request};
    /// let manager = NetworkAccessManager::new();
    /// let reply = manager.patch(
    ///     Request::new("http://127.0.0.1:8080/items/7").with_header("Content-Type", "application/json"),
    ///     Body::json(&serde_json::json!({ "name": "renamed" })).unwrap(),
    /// );
    /// ```
    pub fn patch(&self, request: Request, body: impl Into<Body>) -> Reply {
        self.start(request, Operation::Custom(http::Method::PATCH), body.into())
    }

    /// PUT with a body (Qt's `put`).
    pub fn put(&self, request: Request, body: impl Into<Body>) -> Reply {
        self.start(request, Operation::Put, body.into())
    }

    /// DELETE (Qt's `deleteResource`).
    #[doc(alias = "deleteResource")]
    pub fn delete(&self, request: Request) -> Reply {
        self.start(request, Operation::Delete, Body::empty())
    }

    /// Any verb (Qt's `sendCustomRequest`). GET, HEAD, PUT, POST and DELETE in any case are
    /// the standard operations; an invalid verb gives a reply failing with
    /// `ProtocolInvalidOperationError`.
    #[doc(alias = "sendCustomRequest")]
    pub fn send_custom_request(
        &self,
        request: Request,
        verb: &str,
        body: impl Into<Body>,
    ) -> Reply {
        match Operation::from_verb(verb) {
            Some(op) => self.start(request, op, body.into()),
            None => {
                let e = Error::new(
                    NetworkError::ProtocolInvalidOperationError,
                    format!("Invalid HTTP verb {verb:?}"),
                );
                self.failed(request, Operation::Custom(http::Method::GET), e)
            }
        }
    }

    /// POST of a [`MultiPart`] (Qt's `post(request, QHttpMultiPart*)`): sets `Content-Type`
    /// with the boundary and `MIME-Version: 1.0` unless the request has them. An invalid part
    /// gives a reply failing with `ProtocolInvalidOperationError`.
    pub fn post_multipart(&self, request: Request, multipart: MultiPart) -> Reply {
        match multipart.apply(request.clone()) {
            Ok((request, body)) => self.post(request, body),
            Err(e) => self.failed(request, Operation::Post, e),
        }
    }

    /// PUT of a [`MultiPart`] (Qt's `put(request, QHttpMultiPart*)`).
    pub fn put_multipart(&self, request: Request, multipart: MultiPart) -> Reply {
        match multipart.apply(request.clone()) {
            Ok((request, body)) => self.put(request, body),
            Err(e) => self.failed(request, Operation::Put, e),
        }
    }

    /// A reply that finishes with `error` without doing anything.
    fn failed(&self, request: Request, operation: Operation, error: Error) -> Reply {
        let ctx = self.current.load_full();
        let reply = self.new_reply(&ctx, request, operation);
        let shared = reply.shared().clone();
        ctx.runtime
            .spawn(async move { shared.finish(Some(error), true) });
        reply
    }

    fn new_reply(&self, ctx: &Context, mut request: Request, operation: Operation) -> Reply {
        if let (None, Some(max)) = (request.max_body_size(), ctx.config.max_body_size) {
            request = request.with_max_body_size(max);
        }
        let url = request.url().cloned().unwrap_or_else(invalid_url);
        Reply::new(request, operation, url, self.signals.clone())
    }

    /// Like [`get`](Self::get), but runs `setup` on the reply before the request starts, so
    /// slots connected there see every signal.
    ///
    /// A slot connected after `get()` returns sees the current state of `finished`,
    /// `error_occurred`, `meta_data_changed`, `ready_read`, `encrypted` and the progress
    /// signals (state replay), but events without a state, such as `ssl_errors`,
    /// `socket_started_connecting` or `redirected`, may already have passed: connect those here.
    pub fn get_with(&self, request: Request, setup: impl FnOnce(&Reply)) -> Reply {
        self.start_with(request, Operation::Get, Body::empty(), setup)
    }

    /// [`send_custom_request`](Self::send_custom_request) with a `setup` run before the
    /// request starts (see [`get_with`](Self::get_with)).
    pub fn send_with(
        &self,
        request: Request,
        verb: &str,
        body: impl Into<Body>,
        setup: impl FnOnce(&Reply),
    ) -> Reply {
        match Operation::from_verb(verb) {
            Some(op) => self.start_with(request, op, body.into(), setup),
            None => {
                let reply = self.send_custom_request(request, verb, Body::empty());
                setup(&reply);
                reply
            }
        }
    }

    fn start(&self, request: Request, operation: Operation, body: Body) -> Reply {
        self.start_with(request, operation, body, |_| {})
    }

    fn start_with(
        &self,
        request: Request,
        operation: Operation,
        body: Body,
        setup: impl FnOnce(&Reply),
    ) -> Reply {
        // The request keeps this snapshot of the settings, whatever setters do meanwhile.
        let ctx = self.current.load_full();
        let reply = self.new_reply(&ctx, request, operation);
        setup(&reply);
        let shared = reply.shared().clone();
        match pipeline::queue_origin(&ctx, &shared) {
            // Waits in its origin's queue as data; its task starts when a slot is granted.
            Some(origin) => Self::enqueue(ctx, origin, shared, body),
            None => pipeline::start(ctx, shared, body),
        }
        reply
    }

    /// Queues a request as data in `origin`'s queue (a task is spawned when it is granted).
    fn enqueue(ctx: Arc<Context>, origin: Origin, shared: Arc<ReplyShared>, body: Body) {
        let (priority, limit) = {
            let request = shared.request();
            (request.priority(), request.max_connections_per_host())
        };
        let pool = ctx.pool.clone();
        let created = std::time::Instant::now();
        let queued = pipeline::QueuedRequest {
            ctx,
            reply: shared.clone(),
            body: Some(body),
            created,
        };
        let start: Start<HttpConn> = Box::new(move |origin, granted| queued.start(origin, granted));
        if let Some(ticket) = pool.enqueue_at(created, &origin, priority, limit, start) {
            shared.set_dequeue(Some(Box::new(move || {
                Pool::dequeue(ticket);
            })));
        }
    }

    /// Opens a connection to `host:port` ahead of time (Qt's `connectToHost`); the next request
    /// there reuses it. The returned reply finishes when the connection is ready (or failed).
    #[doc(alias = "connectToHost")]
    pub fn connect_to_host(&self, host: &str, port: u16) -> Reply {
        self.open_ahead("http", host, port)
    }

    /// [`connect_to_host`](Self::connect_to_host) with TLS and ALPN (Qt's
    /// `connectToHostEncrypted`): an HTTP/2 server then serves later requests on it.
    #[doc(alias = "connectToHostEncrypted")]
    pub fn connect_to_host_encrypted(&self, host: &str, port: u16) -> Reply {
        self.open_ahead("https", host, port)
    }

    fn open_ahead(&self, scheme: &str, host: &str, port: u16) -> Reply {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let ctx = self.current.load_full();
        let request = Request::new(format!("{scheme}://{host}:{port}/"));
        let reply = self.new_reply(&ctx, request, Operation::Head);
        let shared = reply.shared().clone();
        let runtime = ctx.runtime.clone();
        runtime.spawn(pipeline::preconnect(ctx, shared));
        reply
    }

    /// Closes idle pooled connections; running requests finish on theirs (Qt's
    /// `clearConnectionCache`).
    #[doc(alias = "clearConnectionCache")]
    pub fn clear_connection_cache(&self) {
        self.current.load().pool.clear_idle();
    }

    /// Qt's `clearAccessCache`: the connection cache, and cached credentials once
    /// authentication exists.
    #[doc(alias = "clearAccessCache")]
    pub fn clear_access_cache(&self) {
        self.clear_connection_cache();
        self.current.load().credentials().clear();
    }

    /// The URL schemes this manager handles (Qt's `supportedSchemes`).
    #[doc(alias = "supportedSchemes")]
    pub fn supported_schemes(&self) -> Vec<&'static str> {
        pipeline::SUPPORTED_SCHEMES.to_vec()
    }

    /// The per-origin connection limit of this manager.
    pub fn max_connections_per_host(&self) -> usize {
        self.current.load().config.max_connections_per_host
    }

    /// The HTTP cache, if any (Qt's `cache`).
    pub fn cache(&self) -> Option<Arc<dyn Cache>> {
        self.current.load().config.cache.clone()
    }

    /// Sets or removes the HTTP cache (Qt's `setCache`). Requests already running keep the
    /// cache they started with.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use netaccess::{MemoryCache, NetworkAccessManager};
    /// let manager = NetworkAccessManager::new();
    /// manager.set_cache(Some(Arc::new(MemoryCache::new(1 << 20))));
    /// assert!(manager.cache().is_some());
    /// manager.set_cache(None);
    /// assert!(manager.cache().is_none());
    /// ```
    #[doc(alias = "setCache")]
    pub fn set_cache(&self, cache: Option<Arc<dyn Cache>>) {
        self.update(|config| config.cache = cache.clone());
    }

    /// The cookie jar (Qt's `cookieJar`).
    #[doc(alias = "cookieJar")]
    pub fn cookie_jar(&self) -> Arc<dyn CookieJar> {
        self.current.load().config.cookie_jar.clone()
    }

    /// Replaces the cookie jar (Qt's `setCookieJar`); requests already running keep theirs.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use netaccess::{DefaultCookieJar, NetworkAccessManager};
    /// let manager = NetworkAccessManager::new();
    /// manager.set_cookie_jar(Arc::new(DefaultCookieJar::new()));
    /// ```
    #[doc(alias = "setCookieJar")]
    pub fn set_cookie_jar(&self, jar: Arc<dyn CookieJar>) {
        self.update(|config| config.cookie_jar = jar.clone());
    }

    /// The one proxy set by [`ManagerBuilder::proxy`] or [`set_proxy`](Self::set_proxy) (Qt's
    /// `proxy`); `None` with no proxy or a proxy factory.
    ///
    /// ```
    /// use netaccess::{NetworkAccessManager, Proxy};
    /// let manager = NetworkAccessManager::new();
    /// manager.set_proxy(Proxy::http("127.0.0.1", 3128));
    /// assert_eq!(manager.proxy().unwrap().port(), 3128);
    /// ```
    pub fn proxy(&self) -> Option<Proxy> {
        self.current.load().config.fixed_proxy.clone()
    }

    /// One proxy for every later request (Qt's `setProxy`); [`Proxy::no_proxy`] for none.
    #[doc(alias = "setProxy")]
    pub fn set_proxy(&self, proxy: Proxy) {
        self.update(|config| {
            config.proxy = Some(Arc::new(proxy.clone()));
            config.fixed_proxy = Some(proxy.clone());
        });
    }

    /// The proxy factory later requests use (Qt's `proxyFactory`), if any.
    #[doc(alias = "proxyFactory")]
    pub fn proxy_factory(&self) -> Option<Arc<dyn ProxyFactory>> {
        self.current.load().config.proxy.clone()
    }

    /// A proxy chosen per request from now on (Qt's `setProxyFactory`); `None` for direct
    /// connections.
    #[doc(alias = "setProxyFactory")]
    pub fn set_proxy_factory(&self, factory: Option<Arc<dyn ProxyFactory>>) {
        self.update(|config| {
            config.proxy = factory.clone();
            config.fixed_proxy = None;
        });
    }

    /// The HSTS store, whether or not HSTS is enabled.
    pub fn hsts_store(&self) -> Arc<HstsStore> {
        self.current.load().config.hsts.clone()
    }

    /// Qt's `isStrictTransportSecurityEnabled`.
    #[doc(alias = "isStrictTransportSecurityEnabled")]
    pub fn is_strict_transport_security_enabled(&self) -> bool {
        self.current.load().config.hsts_enabled
    }

    /// Turns HSTS on or off for later requests (Qt's `setStrictTransportSecurityEnabled`).
    ///
    /// ```
    /// use netaccess::NetworkAccessManager;
    /// let manager = NetworkAccessManager::new();
    /// manager.set_strict_transport_security_enabled(true);
    /// assert!(manager.is_strict_transport_security_enabled());
    /// ```
    #[doc(alias = "setStrictTransportSecurityEnabled")]
    pub fn set_strict_transport_security_enabled(&self, enabled: bool) {
        self.update(|config| config.hsts_enabled = enabled);
    }

    /// Qt's `addStrictTransportSecurityHosts`.
    #[doc(alias = "addStrictTransportSecurityHosts")]
    pub fn add_strict_transport_security_hosts(
        &self,
        policies: impl IntoIterator<Item = HstsPolicy>,
    ) {
        self.current.load().config.hsts.add_policies(policies);
    }

    /// Qt's `strictTransportSecurityHosts`: the known, unexpired policies.
    #[doc(alias = "strictTransportSecurityHosts")]
    pub fn strict_transport_security_hosts(&self) -> Vec<HstsPolicy> {
        self.current.load().config.hsts.policies()
    }

    /// The manager's redirect policy.
    pub fn redirect_policy(&self) -> RedirectPolicy {
        self.current.load().config.redirect_policy
    }

    /// The redirect policy of later requests that set none themselves (Qt's
    /// `setRedirectPolicy`).
    ///
    /// ```
    /// use netaccess::{NetworkAccessManager, RedirectPolicy};
    /// let manager = NetworkAccessManager::new();
    /// manager.set_redirect_policy(RedirectPolicy::Manual);
    /// assert_eq!(manager.redirect_policy(), RedirectPolicy::Manual);
    /// ```
    #[doc(alias = "setRedirectPolicy")]
    pub fn set_redirect_policy(&self, policy: RedirectPolicy) {
        self.update(|config| config.redirect_policy = policy);
    }

    /// The manager's transfer timeout; `None`: none.
    pub fn transfer_timeout(&self) -> Option<Duration> {
        self.current.load().config.transfer_timeout
    }

    /// The transfer timeout of later requests that set none themselves (Qt's
    /// `setTransferTimeout`): a transfer with no data moving for this long fails with
    /// `TimeoutError`. `Duration::ZERO` turns it off, as in Qt.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netaccess::NetworkAccessManager;
    /// let manager = NetworkAccessManager::new();
    /// manager.set_transfer_timeout(Duration::from_secs(30));
    /// assert_eq!(manager.transfer_timeout(), Some(Duration::from_secs(30)));
    /// manager.set_transfer_timeout(Duration::ZERO);
    /// assert_eq!(manager.transfer_timeout(), None);
    /// ```
    #[doc(alias = "setTransferTimeout")]
    pub fn set_transfer_timeout(&self, timeout: Duration) {
        let timeout = (!timeout.is_zero()).then_some(timeout);
        self.update(|config| config.transfer_timeout = timeout);
    }

    /// Swaps in a context whose configuration `change` made; requests already running keep
    /// the snapshot they took.
    fn update(&self, change: impl Fn(&mut Config)) {
        self.current.rcu(|ctx| {
            let mut config = Config::clone(&ctx.config);
            change(&mut config);
            Context {
                config: Arc::new(config),
                ..Context::clone(ctx)
            }
        });
    }

    /// Qt's `authenticationRequired`: a server asks for credentials the manager does not have
    /// (after the URL's user info and the credential cache). Answer in the slot, or call
    /// [`AuthenticationRequest::answer_later`] and answer from any task; with no answer the
    /// reply ends with `AuthenticationRequiredError`. Connect before making the request.
    #[doc(alias = "authenticationRequired")]
    pub fn authentication_required(&self) -> &Signal<(Reply, AuthenticationRequest)> {
        &self.signals.authentication_required
    }

    /// Qt's `proxyAuthenticationRequired`: a proxy asks for credentials that its
    /// configuration does not hold. Answer as for
    /// [`authentication_required`](Self::authentication_required); with no answer the reply
    /// ends with `ProxyAuthenticationRequiredError`.
    #[doc(alias = "proxyAuthenticationRequired")]
    pub fn proxy_authentication_required(&self) -> &Signal<(Proxy, AuthenticationRequest)> {
        &self.signals.proxy_authentication_required
    }

    /// Emitted for every reply when it finishes.
    pub fn finished(&self) -> &Signal<Reply> {
        &self.signals.finished
    }

    /// Emitted for every reply whose connection is encrypted, before its request is sent.
    pub fn encrypted(&self) -> &Signal<Reply> {
        &self.signals.encrypted
    }

    /// Emitted when a TLS handshake for a reply meets certificate errors (after the reply's own
    /// `ssl_errors`). Call [`Reply::ignore_ssl_errors`] in a slot to go on.
    #[doc(alias = "sslErrors")]
    pub fn ssl_errors(&self) -> &Signal<(Reply, Vec<SslError>)> {
        &self.signals.ssl_errors
    }
}
