//! [`Context`]: what a request sees of its manager (the configuration, the connection pool,
//! the credential cache and the runtime), and the manager's signals, which replies share.
//!
//! It sits below the manager: the pipeline, the scheduler and the replies take a `Context`
//! and never import `manager.rs`, which keeps only the public façade and its builder.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use url::Url;

use crate::auth::{AuthenticationRequest, CredentialCache};
use crate::backend::http::{Http2Options, HttpConn};
use crate::cache::Cache;
use crate::cookies::CookieJar;
use crate::hsts::HstsStore;
use crate::proxy::{Proxy, ProxyFactory};
use crate::redirect::RedirectPolicy;
use crate::reply::Reply;
use crate::scheduler::Pool;
use crate::signal::Signal;
use crate::transport::tls::{SslError, TlsConfig};
use crate::transport::ResolveOverrides;

/// Qt's default: at most 6 parallel HTTP/1.1 connections per origin.
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: usize = 6;
/// The `User-Agent` sent by requests that set none: `netaccess/<version>`. Qt sends
/// `Mozilla/5.0`, which claims to be a browser; this names the client honestly, as curl and
/// wget do. Change it with [`ManagerBuilder::user_agent`](crate::ManagerBuilder::user_agent).
pub const DEFAULT_USER_AGENT: &str = concat!("netaccess/", env!("CARGO_PKG_VERSION"));
/// Idle keep-alive connections close after this long (Qt's 120 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default connect timeout (TCP and TLS), 30 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The manager's signals, shared with its replies.
pub(crate) struct ManagerSignals {
    pub finished: Signal<Reply>,
    pub encrypted: Signal<Reply>,
    pub ssl_errors: Signal<(Reply, Vec<SslError>)>,
    pub authentication_required: Signal<(Reply, AuthenticationRequest)>,
    pub proxy_authentication_required: Signal<(Proxy, AuthenticationRequest)>,
}

impl ManagerSignals {
    pub(crate) fn new() -> Self {
        ManagerSignals {
            finished: Signal::new(),
            encrypted: Signal::new(),
            ssl_errors: Signal::new(),
            authentication_required: Signal::new(),
            proxy_authentication_required: Signal::new(),
        }
    }
}

/// The configuration of a manager. Its setters (`set_proxy`, `set_cache`, ...) make a new one;
/// a request keeps the one it started with.
#[derive(Clone)]
pub(crate) struct Config {
    pub max_connections_per_host: usize,
    pub transfer_timeout: Option<Duration>,
    pub connect_timeout: Duration,
    /// HTTP/2 settings and keep-alive (see `ManagerBuilder::http2_keep_alive`).
    pub http2: Http2Options,
    pub tls: Arc<TlsConfig>,
    pub resolve: ResolveOverrides,
    pub redirect_policy: RedirectPolicy,
    pub cookie_jar: Arc<dyn CookieJar>,
    pub hsts: Arc<HstsStore>,
    pub hsts_enabled: bool,
    pub cache: Option<Arc<dyn Cache>>,
    pub proxy: Option<Arc<dyn ProxyFactory>>,
    /// The one proxy of `ManagerBuilder::proxy` / `set_proxy`, for the `proxy()` getter.
    pub fixed_proxy: Option<Proxy>,
    /// Which failed attempts are sent again.
    pub retry_policy: crate::retry::RetryPolicy,
    /// The interceptors, in the order they run.
    pub interceptors: Arc<[Arc<dyn crate::interceptor::Interceptor>]>,
    /// The `User-Agent` of requests that set none (`None`: send none).
    pub user_agent: Option<http::HeaderValue>,
    /// The default for `Request::max_body_size`.
    pub max_body_size: Option<u64>,
    /// The download rate limits (total and per host), shared by every config of a manager.
    pub rates: Arc<crate::rate::Rates>,
    /// Hears every request's events (`ManagerBuilder::event_listener`).
    pub event_listener: Option<Arc<dyn crate::events::EventListener>>,
}

/// What a request sees of its manager: a snapshot taken when the request starts. Cheap to
/// clone (shared parts are behind `Arc`s); a setter swaps in a new one with a new `config`.
#[derive(Clone)]
pub(crate) struct Context {
    pub config: Arc<Config>,
    /// Credentials that worked, per protection space (cleared by `clear_access_cache`).
    pub credentials: Arc<std::sync::Mutex<CredentialCache>>,
    /// The retry budget of each origin.
    pub retry_budgets: Arc<crate::retry::RetryBudgets>,
    pub pool: Pool<HttpConn>,
    pub runtime: Handle,
}

impl Context {
    /// The proxy for `url` from the manager's proxy factory: `None` for a direct connection.
    pub(crate) fn proxy_for(&self, url: &Url) -> Option<Proxy> {
        crate::proxy::choose(self.config.proxy.as_deref(), url)
    }

    /// Records `event` for the request of `reply` (its timings, the event listener,
    /// `tracing`).
    pub(crate) fn event(
        &self,
        reply: &Arc<crate::reply::ReplyShared>,
        event: crate::events::Event<'_>,
    ) {
        crate::events::record(reply, self.config.event_listener.as_ref(), event);
    }

    /// The credential cache, even if a thread panicked while holding it.
    pub(crate) fn credentials(&self) -> std::sync::MutexGuard<'_, CredentialCache> {
        self.credentials.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `url` upgraded to https when HSTS is on and a policy covers its host.
    pub(crate) fn hsts_upgrade(&self, url: &Url) -> Option<Url> {
        if self.config.hsts_enabled {
            self.config.hsts.upgrade(url)
        } else {
            None
        }
    }
}
