//! One request from start to finish: validate, dispatch on the scheme, then for HTTP a loop of
//! hops (HSTS upgrade and cookies, the cache, credentials, a connection slot from the
//! scheduler, connect through proxies and TLS, send, receive the head, then authentication,
//! the cache again, a redirect or delivery with content decoding), release the connection,
//! finish. [`drive`] makes sure the reply finishes whatever happens, a panic included.
//!
//! This file is still large (the request-path redesign of issue 11 splits it into stage
//! modules); its stages are the methods of `Hops`, called in order by `http_with_redirects`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;

use http::header::{self, HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use url::Url;

use crate::auth::{
    parse_challenges, respond, select_challenge, AuthState, AuthenticationRequest, Authenticator,
    ProtectionSpace,
};
use crate::backend;
use crate::backend::http::{map_hyper_error, HttpConn, ReqBody};
use crate::cache::policy::CacheRequest;
use crate::cache::{
    policy as cache_policy, CacheKey, CacheLoadControl, CacheMetadata, CacheWriter, CachedBody,
    CachedEntry,
};
use crate::decode::{self, Decoder};
use crate::error::{Error, NetworkError, ShownUrl};
use crate::manager::ManagerInner;
use crate::proxy::{Proxy, ProxyKind};
use crate::redirect::{self, Hop, RedirectPolicy};
use crate::reply::{http_status_error, Meta, ReplyShared};
use crate::request::{CookieControl, Operation, Request};
use crate::scheduler::{Checkout, Grant, Mode, Origin};
use crate::transport::tls::{IgnoreSsl, SslError, TlsSession};
use crate::transport::{self, Io};
use crate::upload::{Activity, Body, ProgressFn, UploadBody, PROGRESS_INTERVAL};

/// The schemes [`run`] handles.
pub(crate) const SUPPORTED_SCHEMES: &[&str] =
    &["http", "https", "data", "file", "unix+http", "local+http"];

/// Schemes of HTTP over a Unix domain socket (Qt 6.8).
fn is_local_http(scheme: &str) -> bool {
    matches!(scheme, "unix+http" | "local+http")
}

/// Runs the request of `reply` to its end. An `abort()` cancels this future at its next await
/// point; the reply was already finished by `abort()` itself. The future finishes the reply
/// even if it is dropped before it was first polled (a runtime shutting down).
pub(crate) fn run(
    mgr: Arc<ManagerInner>,
    reply: Arc<ReplyShared>,
    body: Body,
) -> impl std::future::Future<Output = ()> + Send {
    let guard = FinishGuard(reply.clone());
    async move {
        drive(&reply, execute(&mgr, &reply, body, None), guard).await;
    }
}

/// The origin whose queue a new request can wait in as data, before any task exists for it:
/// an HTTP request with no cache to consult first (a cache hit must not wait for a slot). `None`:
/// the request runs as a task from the start ([`run`]).
pub(crate) fn queue_origin(mgr: &ManagerInner, reply: &ReplyShared) -> Option<Origin> {
    let request = reply.request();
    if mgr.config.cache.is_some() || request.invalid_header().is_some() {
        return None;
    }
    let mut url = request.url()?.clone();
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    if mgr.config.hsts_enabled {
        if let Some(secure) = mgr.config.hsts.upgrade(&url) {
            url = secure;
        }
    }
    check_http_url(&url).ok()?;
    origin_for(&url, request, proxy_for(mgr, &url)).ok()
}

/// A request waiting in its origin's queue as data: what its task needs once a slot is
/// granted. Dropped without being started (its queue went away), it finishes the reply.
pub(crate) struct QueuedRequest {
    pub(crate) mgr: Arc<ManagerInner>,
    pub(crate) reply: Arc<ReplyShared>,
    pub(crate) body: Option<Body>,
}

impl QueuedRequest {
    /// Spawns the request's task on the slot granted for `origin`.
    pub(crate) fn start(mut self, origin: &Origin, granted: Grant<HttpConn>) {
        let body = self.body.take().unwrap_or_else(Body::empty);
        let task = run_granted(
            self.mgr.clone(),
            self.reply.clone(),
            body,
            origin.clone(),
            granted,
        );
        self.mgr.runtime.spawn(task);
    }
}

impl Drop for QueuedRequest {
    fn drop(&mut self) {
        if self.body.is_some() && !self.reply.is_finished() {
            self.reply.finish(
                Some(Error::new(
                    NetworkError::OperationCanceledError,
                    "The request was dropped while it waited for a connection",
                )),
                true,
            );
        }
    }
}

/// Runs a request that waited in `origin`'s queue as data on the slot it was `granted`.
pub(crate) fn run_granted(
    mgr: Arc<ManagerInner>,
    reply: Arc<ReplyShared>,
    body: Body,
    origin: Origin,
    granted: Grant<HttpConn>,
) -> impl std::future::Future<Output = ()> + Send {
    let guard = FinishGuard(reply.clone());
    reply.set_dequeue(None);
    async move {
        let work = execute(&mgr, &reply, body, Some((origin, granted)));
        drive(&reply, work, guard).await;
    }
}

/// Opens a connection to the reply's origin ahead of time and leaves it idle in the pool
/// (Qt's `connectToHost` / `connectToHostEncrypted`); the reply finishes when it is ready.
pub(crate) async fn preconnect(mgr: Arc<ManagerInner>, reply: Arc<ReplyShared>) {
    let guard = FinishGuard(reply.clone());
    drive(&reply, open_ahead(&mgr, &reply), guard).await;
}

/// Runs `work` for `reply` and finishes the reply with its outcome, unless `abort()` ended it.
///
/// A reply always finishes: a panic inside `work` (a user slot, a dependency) is caught here
/// and finishes the reply with an error, and [`FinishGuard`] finishes it if the task is dropped
/// before its end (the runtime shutting down). The manager's other requests go on.
async fn drive(
    reply: &Arc<ReplyShared>,
    work: impl std::future::Future<Output = Result<Option<Error>, Error>>,
    guard: FinishGuard,
) {
    use futures_util::FutureExt;
    let cancel = reply.cancel_token().clone();
    let work = std::panic::AssertUnwindSafe(work).catch_unwind();
    let outcome = tokio::select! {
        biased;
        _ = cancel.cancelled() => return,
        outcome = work => outcome,
    };
    match outcome {
        Ok(Ok(http_error)) => reply.finish(http_error, false),
        Ok(Err(e)) => reply.finish(Some(e), true),
        Err(panic) => reply.finish(Some(panicked(&*panic)), true),
    }
    drop(guard);
}

/// The error of a reply whose request task panicked.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic");
    tracing::error!(
        panic = what,
        "a request task panicked; its reply finishes with an error"
    );
    Error::new(
        NetworkError::UnknownNetworkError,
        format!("Internal error: the request stopped on a panic ({what})"),
    )
}

/// A connection slot granted to a request that waited in its origin's queue as data.
pub(crate) type Granted = (Origin, Grant<HttpConn>);

/// Finishes its reply with an error when dropped first: the request task went away unfinished.
struct FinishGuard(Arc<ReplyShared>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            self.0.finish(
                Some(Error::new(
                    NetworkError::OperationCanceledError,
                    "The request was dropped before it finished (the runtime shut down)",
                )),
                true,
            );
        }
    }
}

async fn open_ahead(mgr: &ManagerInner, reply: &Arc<ReplyShared>) -> Result<Option<Error>, Error> {
    let url = reply
        .request()
        .url_result()
        .map_err(|m| Error::new(NetworkError::ProtocolUnknownError, m))?
        .clone();
    let origin = origin_for(&url, reply.request(), proxy_for(mgr, &url))?;
    let checkout = match mgr
        .pool
        .acquire(&origin, reply.request().priority(), None)
        .await
    {
        Grant::Reuse(checkout) => checkout,
        Grant::Connect(permit) => {
            reply
                .signals
                .socket_started_connecting
                .emit(&reply.handle());
            let conn = Box::pin(open_connection(mgr, reply, &origin)).await?;
            permit.connected(conn)
        }
    };
    checkout.release(true);
    Ok(None)
}

/// `Ok(Some(e))`: the exchange completed with an HTTP error status (the body is whole).
async fn execute(
    mgr: &ManagerInner,
    reply: &Arc<ReplyShared>,
    body: Body,
    granted: Option<Granted>,
) -> Result<Option<Error>, Error> {
    let request = reply.request();
    let url = request
        .url_result()
        .map_err(|m| Error::new(NetworkError::ProtocolUnknownError, m))?
        .clone();
    if let Some(bad) = request.invalid_header() {
        return Err(Error::new(
            NetworkError::ProtocolInvalidOperationError,
            format!("Invalid request: {bad}"),
        ));
    }
    match url.scheme() {
        "http" | "https" | "unix+http" | "local+http" => {
            http_with_redirects(mgr, reply, url, body, granted).await
        }
        // Local schemes are boxed so that the task of every queued HTTP request stays small.
        "data" => Box::pin(local_data(reply, &url)).await,
        "file" => Box::pin(local_file(reply, &url, body)).await,
        other => Err(Error::new(
            NetworkError::ProtocolUnknownError,
            format!("Protocol \"{other}\" is unknown"),
        )),
    }
}

/// The proxy for `url` from the manager's factory: `None` for a direct connection.
fn proxy_for(mgr: &ManagerInner, url: &Url) -> Option<Proxy> {
    if is_local_http(url.scheme()) {
        return None;
    }
    let factory = mgr.config.proxy.as_ref()?;
    factory
        .query(url)
        .into_iter()
        .find_map(|proxy| match proxy.kind() {
            ProxyKind::NoProxy | ProxyKind::DefaultProxy => Some(None),
            ProxyKind::HttpCachingProxy if !proxy.can_carry(url) => None,
            _ => Some(Some(proxy)),
        })?
}

/// Whether requests to this origin go to an HTTP proxy in absolute form (plain http through
/// an HTTP proxy; https goes through a CONNECT tunnel instead).
fn absolute_form(origin: &Origin) -> bool {
    origin.scheme == "http"
        && origin
            .proxy
            .as_ref()
            .is_some_and(|p| matches!(p.kind(), ProxyKind::HttpProxy | ProxyKind::HttpCachingProxy))
}

fn origin_for(url: &Url, request: &Request, proxy: Option<Proxy>) -> Result<Origin, Error> {
    if is_local_http(url.scheme()) {
        let socket = request.unix_socket().ok_or_else(|| {
            Error::new(
                NetworkError::ProtocolInvalidOperationError,
                format!(
                    "{url}: a {} URL needs the socket path (Request::with_unix_socket)",
                    url.scheme()
                ),
            )
        })?;
        return Ok(Origin {
            scheme: url.scheme().to_owned(),
            host: socket.to_string_lossy().into_owned(),
            port: 0,
            proxy: None,
            mode: Mode::Http1,
        });
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        Error::new(
            NetworkError::ProtocolInvalidOperationError,
            format!("URL {url} has no host"),
        )
    })?;
    let https = url.scheme() == "https";
    let through_http_proxy = !https
        && proxy
            .as_ref()
            .is_some_and(|p| p.kind() != ProxyKind::Socks5Proxy);
    let mode = if through_http_proxy {
        Mode::Http1
    } else if request.http2_direct() {
        Mode::Http2Direct
    } else if https && request.http2_allowed() {
        Mode::Negotiate
    } else {
        Mode::Http1
    };
    Ok(Origin {
        scheme: url.scheme().to_owned(),
        host: host.to_ascii_lowercase(),
        port: url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 }),
        proxy,
        mode,
    })
}

/// Like [`within`], for a step that moves bytes meanwhile (sending a request body): the
/// timeout restarts while `activity` changes.
async fn while_active<T>(
    timeout: Option<Duration>,
    activity: &Activity,
    step: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    let Some(limit) = timeout else {
        return Ok(step.await);
    };
    let mut step = std::pin::pin!(step);
    let mut seen = activity.mark();
    loop {
        if let Ok(done) = tokio::time::timeout(limit, &mut step).await {
            return Ok(done);
        }
        let now = activity.mark();
        if now == seen {
            return Err(timeout_error(limit));
        }
        seen = now;
    }
}

fn timeout_error(limit: Duration) -> Error {
    Error::new(
        NetworkError::TimeoutError,
        format!("No data transferred for {:.1} s", limit.as_secs_f64()),
    )
}

/// Inactivity timeout around one step of the transfer.
async fn within<T>(
    timeout: Option<Duration>,
    step: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    match timeout {
        None => Ok(step.await),
        Some(t) => tokio::time::timeout(t, step)
            .await
            .map_err(|_| timeout_error(t)),
    }
}

/// What the request of one hop carries: method, headers and body change across redirects.
struct Outgoing {
    operation: Operation,
    headers: HeaderMap,
    body: Body,
    /// The jar's `Cookie` header for this hop's URL (added to any the application set).
    jar_cookies: Option<String>,
    /// Headers for this hop only (cache validators, `Cache-Control: no-cache`).
    hop_headers: HeaderMap,
}

impl Outgoing {
    /// The headers the request goes out with, as far as a cache's `Vary` cares: the
    /// application's, this hop's, the jar's cookies (merged into `Cookie` as
    /// [`build_request`] does, so `Vary: Cookie` tells one logged-in user from another), and
    /// the default `Accept-Encoding`.
    fn sent_headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        for (name, value) in &self.hop_headers {
            headers.insert(name, value.clone());
        }
        if let Some(jar) = &self.jar_cookies {
            let merged = merge_cookie_header(headers.get(header::COOKIE), jar);
            // Not a valid header value (the request then fails in build_request): the cache
            // must not take it for "no cookie", so it sees a value no stored one has.
            let value = HeaderValue::from_bytes(&merged)
                .unwrap_or(HeaderValue::from_static("netaccess-invalid-cookie-header"));
            headers.insert(header::COOKIE, value);
        }
        if !headers.contains_key(header::ACCEPT_ENCODING) {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(decode::ACCEPT_ENCODING),
            );
        }
        headers
    }
}

/// A response head on its connection, before the body is read.
struct Exchange {
    response: http::Response<Incoming>,
    checkout: Checkout<HttpConn>,
    encrypted: bool,
    http2: bool,
    tls_session: Option<TlsSession>,
    /// Encrypted, with no certificate error ignored: where HSTS may be learned.
    secure_channel: bool,
}

/// The redirect loop: one exchange per hop, until a response is delivered or fails.
async fn http_with_redirects(
    mgr: &ManagerInner,
    reply: &Arc<ReplyShared>,
    url: Url,
    body: Body,
    mut granted: Option<Granted>,
) -> Result<Option<Error>, Error> {
    let request = reply.request();
    let mut hops = Hops {
        url,
        outgoing: Outgoing {
            operation: reply.operation().clone(),
            headers: request.headers().clone(),
            body,
            jar_cookies: None,
            hop_headers: HeaderMap::new(),
        },
        followed: 0,
        timeout: request.transfer_timeout().or(mgr.config.transfer_timeout),
        policy: request
            .redirect_policy()
            .unwrap_or(mgr.config.redirect_policy),
        announced_encrypted: false,
        revalidating: None,
        request_time: SystemTime::now(),
        auth: AuthProgress::default(),
    };
    loop {
        hops.prepare(mgr, reply);
        if let Some(outcome) = Box::pin(hops.consult_cache(mgr, reply)).await? {
            return Ok(outcome);
        }
        hops.apply_credentials(mgr, reply);
        hops.request_time = SystemTime::now();
        let exchange = http_exchange(
            mgr,
            reply,
            &hops.url,
            &hops.outgoing,
            hops.timeout,
            &mut hops.announced_encrypted,
            &mut granted,
        )
        .await?;
        remember_response_state(mgr, reply, &hops.url, &exchange);
        // Everything after the response head is boxed: while a request waits in the queue, its
        // task holds only the state above.
        if let Some(outcome) = Box::pin(hops.after_response(mgr, reply, exchange)).await? {
            return Ok(outcome);
        }
    }
}

/// What a response teaches the manager whatever happens next (redirect or delivery): its
/// cookies (unless the request saves them itself) and its HSTS policy. HSTS is learned only
/// over a TLS connection without ignored certificate errors (RFC 6797 §8.1): a connection
/// made with `ignore_ssl_errors` (the CLI's `--insecure`) can neither set nor erase a policy.
fn remember_response_state(
    mgr: &ManagerInner,
    reply: &ReplyShared,
    url: &Url,
    exchange: &Exchange,
) {
    let headers = exchange.response.headers();
    if reply.request().cookie_save_control() == CookieControl::Automatic {
        let values: Vec<String> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if !values.is_empty() {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            mgr.config.cookie_jar.store_response_cookies(url, &values);
        }
    }
    if mgr.config.hsts_enabled && url.scheme() == "https" && !exchange.secure_channel {
        if headers.contains_key(header::STRICT_TRANSPORT_SECURITY) {
            tracing::debug!(url = %ShownUrl(url), "Strict-Transport-Security ignored: not a secure channel");
        }
    } else if mgr.config.hsts_enabled && url.scheme() == "https" {
        // The first header counts (RFC 6797 8.1).
        if let Some(sts) = headers
            .get(header::STRICT_TRANSPORT_SECURITY)
            .and_then(|v| v.to_str().ok())
        {
            mgr.config.hsts.process_header(url, sts);
        }
    }
}

/// What the cache made of a response head.
enum AfterCache {
    /// The reply was answered (from the cache).
    Answered(Option<Error>),
    /// Send the same hop again (a 304 for a validator the cache no longer holds).
    Retry,
    /// Nothing to do: deliver or follow the response.
    Continue(Box<Exchange>),
}

/// The state of the redirect loop.
struct Hops {
    url: Url,
    outgoing: Outgoing,
    followed: u32,
    timeout: Option<Duration>,
    policy: RedirectPolicy,
    announced_encrypted: bool,
    /// The stale cache entry this hop revalidates.
    revalidating: Option<CachedEntry>,
    /// When this hop's request was sent (RFC 9111 `request_time`).
    request_time: SystemTime,
    /// Server authentication across the attempts of a hop.
    auth: AuthProgress,
}

/// Credentials as sent: their protection space, the credentials, the challenge state.
type SentCredentials = (ProtectionSpace, Authenticator, AuthState);

/// Where server authentication stands for the current URL.
#[derive(Default)]
struct AuthProgress {
    /// The `Authorization` to send on the next attempt (an answered challenge), with what
    /// produced it.
    pending: Option<(HeaderValue, SentCredentials)>,
    /// Credentials sent on this attempt, kept for the cache if they work.
    sent: Option<SentCredentials>,
    /// The URL's user info was offered already (it is tried once).
    used_userinfo: bool,
    /// Challenges answered for this URL (a bound against servers that never accept).
    rounds: u8,
    /// `Proxy-Authorization` for an HTTP proxy that asked (absolute-form requests).
    proxy_authorization: Option<HeaderValue>,
    /// Proxy challenges answered, and whether the proxy's own credentials were offered.
    proxy_rounds: u8,
    proxy_offered_configured: bool,
}

impl Hops {
    /// Before each hop: the HSTS upgrade (before any socket opens) and the jar's cookies for
    /// this URL.
    fn prepare(&mut self, mgr: &ManagerInner, reply: &ReplyShared) {
        if mgr.config.hsts_enabled {
            if let Some(secure) = mgr.config.hsts.upgrade(&self.url) {
                tracing::debug!(from = %ShownUrl(&self.url), to = %ShownUrl(&secure), "HSTS upgrade");
                reply.set_url(secure.clone());
                self.url = secure;
            }
        }
        self.outgoing.jar_cookies = match reply.request().cookie_load_control() {
            CookieControl::Automatic => mgr.config.cookie_jar.cookie_header(&self.url),
            CookieControl::Manual => None,
        };
    }
    /// Before each attempt: the `Authorization` of an answered challenge, or credentials that
    /// worked for this protection space (Qt's AuthenticationReuse), unless the application set
    /// its own.
    fn apply_credentials(&mut self, mgr: &ManagerInner, reply: &ReplyShared) {
        self.auth.sent = None;
        if let Some(proxy_authorization) = &self.auth.proxy_authorization {
            self.outgoing
                .hop_headers
                .insert(header::PROXY_AUTHORIZATION, proxy_authorization.clone());
        }
        if let Some((header, sent)) = self.auth.pending.take() {
            self.outgoing
                .hop_headers
                .insert(header::AUTHORIZATION, header);
            self.auth.sent = Some(sent);
            return;
        }
        if !reply.request().authentication_reuse()
            || self.outgoing.headers.contains_key(header::AUTHORIZATION)
        {
            return;
        }
        let Some(origin) = ProtectionSpace::for_url(&self.url, "") else {
            return;
        };
        let mut cache = mgr.credentials.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = cache.closest_mut(&origin, self.url.path()) else {
            return;
        };
        let (method, target, body) = self.auth_inputs();
        let authenticator = entry.authenticator.clone();
        if let Some(header) =
            entry
                .state
                .authorize(&authenticator, &method, &target, body.as_deref())
        {
            self.auth.sent = Some((entry.space.clone(), authenticator, entry.state.clone()));
            self.outgoing
                .hop_headers
                .insert(header::AUTHORIZATION, header);
        }
    }

    /// The method, request-target and (in-memory) body that Digest hashes.
    fn auth_inputs(&self) -> (String, String, Option<bytes::Bytes>) {
        let target = &self.url[url::Position::BeforePath..url::Position::AfterQuery];
        let target = if target.is_empty() { "/" } else { target };
        (
            self.outgoing.operation.method().to_string(),
            target.to_owned(),
            self.outgoing.body.in_memory(),
        )
    }

    /// After a response head: a 401 with a challenge we can answer sends the same request
    /// again (`Ok(None)`); anything else goes on (`Ok(Some)`), caching credentials that worked.
    async fn authenticate(
        &mut self,
        mgr: &ManagerInner,
        reply: &Arc<ReplyShared>,
        exchange: Exchange,
    ) -> Result<Option<Box<Exchange>>, Error> {
        let status = exchange.response.status();
        if status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            return self.authenticate_to_proxy(mgr, reply, exchange).await;
        }
        if status != http::StatusCode::UNAUTHORIZED {
            if let Some((space, authenticator, mut state)) = self.auth.sent.take() {
                if let Some(info) = exchange.response.headers().get("authentication-info") {
                    state.apply_authentication_info(info);
                }
                if !status.is_server_error() {
                    let mut cache = mgr.credentials.lock().unwrap_or_else(|e| e.into_inner());
                    cache.insert(space, self.url.path(), authenticator, state);
                }
            }
            return Ok(Some(Box::new(exchange)));
        }
        let challenges = parse_challenges(
            exchange
                .response
                .headers()
                .get_all(header::WWW_AUTHENTICATE),
        );
        const MAX_ROUNDS: u8 = 10;
        if challenges.is_empty() || self.auth.rounds >= MAX_ROUNDS {
            return Ok(Some(Box::new(exchange)));
        }
        let (method, target, body) = self.auth_inputs();
        let Some((challenge, scheme)) = select_challenge(&challenges, body.is_some()) else {
            return Ok(Some(Box::new(exchange)));
        };
        let Some(space) = ProtectionSpace::for_url(&self.url, challenge.realm()) else {
            return Ok(Some(Box::new(exchange)));
        };
        let stale = challenge.is_stale();
        let asked = Authenticator::for_challenge(challenge);
        let credentials = match self.auth.sent.take() {
            // A new nonce, or another scheme than the one sent pre-emptively: the same
            // credentials, answered again silently.
            Some((_, previous, state)) if stale || state.scheme() != Some(scheme) => Some(previous),
            sent => {
                if sent.is_some() {
                    // Those credentials were refused: never offer them again.
                    mgr.credentials
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&space);
                }
                self.credentials_for(mgr, reply, &space, asked).await
            }
        };
        let Some(credentials) = credentials else {
            return Ok(Some(Box::new(exchange)));
        };
        let mut state = AuthState::new();
        let Some(answer) = respond(
            &challenges,
            &credentials,
            &method,
            &target,
            body.as_deref(),
            &mut state,
        ) else {
            return Ok(Some(Box::new(exchange)));
        };
        self.auth.rounds += 1;
        discard_body(exchange, self.timeout).await;
        self.auth.pending = Some((answer.header, (space, credentials, state)));
        Ok(None)
    }

    /// A 407 from an HTTP proxy carrying absolute-form requests: answer with the proxy's own
    /// credentials (once), then ask the application; `Ok(None)` sends the request again.
    async fn authenticate_to_proxy(
        &mut self,
        mgr: &ManagerInner,
        reply: &Arc<ReplyShared>,
        exchange: Exchange,
    ) -> Result<Option<Box<Exchange>>, Error> {
        let proxy = proxy_for(mgr, &self.url).filter(|p| {
            self.url.scheme() == "http"
                && matches!(p.kind(), ProxyKind::HttpProxy | ProxyKind::HttpCachingProxy)
        });
        let Some(proxy) = proxy else {
            return Ok(Some(Box::new(exchange)));
        };
        if self.auth.proxy_rounds >= 4 {
            return Ok(Some(Box::new(exchange)));
        }
        let challenges = parse_challenges(
            exchange
                .response
                .headers()
                .get_all(header::PROXY_AUTHENTICATE),
        );
        let (method, _, body) = self.auth_inputs();
        let Some((challenge, _)) = select_challenge(&challenges, body.is_some()) else {
            return Ok(Some(Box::new(exchange)));
        };
        let credentials = if !self.auth.proxy_offered_configured && !proxy.user().is_empty() {
            self.auth.proxy_offered_configured = true;
            Some(Authenticator::with_credentials(
                proxy.user(),
                proxy.password(),
            ))
        } else {
            let request = AuthenticationRequest::new(Authenticator::for_challenge(challenge));
            reply
                .manager_signals()
                .proxy_authentication_required
                .emit(&(proxy.clone(), request.clone()));
            request.answered().await
        };
        let Some(credentials) = credentials else {
            return Ok(Some(Box::new(exchange)));
        };
        let target = self.url[..url::Position::AfterQuery].to_owned();
        let mut state = AuthState::new();
        let Some(answer) = respond(
            &challenges,
            &credentials,
            &method,
            &target,
            body.as_deref(),
            &mut state,
        ) else {
            return Ok(Some(Box::new(exchange)));
        };
        self.auth.proxy_rounds += 1;
        self.auth.proxy_authorization = Some(answer.header);
        discard_body(exchange, self.timeout).await;
        Ok(None)
    }

    /// Credentials for `space`: the URL's user info (once), then the cache, then the
    /// application through `authentication_required`.
    async fn credentials_for(
        &mut self,
        mgr: &ManagerInner,
        reply: &Arc<ReplyShared>,
        space: &ProtectionSpace,
        asked: Authenticator,
    ) -> Option<Authenticator> {
        if !self.auth.used_userinfo && !self.url.username().is_empty() {
            self.auth.used_userinfo = true;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let user = decode(self.url.username());
            let password = decode(self.url.password().unwrap_or(""));
            return Some(Authenticator::with_credentials(user, password));
        }
        let cached = mgr
            .credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(space, self.url.path())
            .map(|c| c.authenticator.clone());
        if cached.is_some() {
            return cached;
        }
        let request = AuthenticationRequest::new(asked);
        reply
            .manager_signals()
            .authentication_required
            .emit(&(reply.handle(), request.clone()));
        request.answered().await
    }

    /// The cache stage before a hop: serve a usable stored response (`Some`), or add
    /// validators / `no-cache` to the request and go to the network (`None`).
    async fn consult_cache(
        &mut self,
        mgr: &ManagerInner,
        reply: &Arc<ReplyShared>,
    ) -> Result<Option<Option<Error>>, Error> {
        self.revalidating = None;
        self.outgoing.hop_headers.clear();
        let Some(cache) = &mgr.config.cache else {
            return Ok(None);
        };
        if !matches!(self.outgoing.operation, Operation::Get | Operation::Head) {
            return Ok(None);
        }
        let control = reply.request().cache_load_control();
        if control == CacheLoadControl::AlwaysNetwork {
            self.outgoing
                .hop_headers
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return Ok(None);
        }
        let sent = self.outgoing.sent_headers();
        let entry = cache.lookup(&CacheKey::get(&self.url), &sent).await;
        let freshness = entry.as_ref().map(|e| {
            let request = CacheRequest::new(&http::Method::GET, &self.url, &sent);
            cache_policy::freshness(&e.metadata, &request, SystemTime::now())
        });
        use cache_policy::Freshness::{Fresh, Stale};
        match (entry, freshness, control) {
            (Some(entry), Some(Fresh), _)
            | (Some(entry), Some(Stale { .. }), CacheLoadControl::AlwaysCache)
            | (
                Some(entry),
                Some(Stale {
                    must_revalidate: false,
                    ..
                }),
                CacheLoadControl::PreferCache,
            ) => deliver_cached(reply, &self.url, entry.metadata, entry.body, true)
                .await
                .map(Some),
            (_, _, CacheLoadControl::AlwaysCache) => Err(Error::new(
                NetworkError::ContentNotFoundError,
                format!("{} is not in the cache (AlwaysCache)", self.url),
            )),
            (
                Some(entry),
                Some(Stale {
                    revalidation_headers,
                    ..
                }),
                _,
            ) => {
                self.outgoing.hop_headers = revalidation_headers;
                self.revalidating = Some(entry);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// The cache stage after a response head: a 304 serves the revalidated entry, a 5xx may
    /// serve the stale one (Qt's fallback), an unsafe method invalidates.
    async fn cache_after_response(
        &mut self,
        mgr: &ManagerInner,
        reply: &Arc<ReplyShared>,
        exchange: Exchange,
    ) -> Result<AfterCache, Error> {
        let Some(cache) = &mgr.config.cache else {
            return Ok(AfterCache::Continue(Box::new(exchange)));
        };
        let status = exchange.response.status();
        let method = self.outgoing.operation.method();
        if !matches!(
            method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::TRACE
        ) {
            for url in cache_policy::invalidated_urls(
                &method,
                &self.url,
                status,
                exchange.response.headers(),
            ) {
                cache.remove(&CacheKey::get(&url)).await;
            }
        }
        let Some(entry) = self.revalidating.take() else {
            return Ok(AfterCache::Continue(Box::new(exchange)));
        };
        let key = CacheKey::get(&self.url);
        if status == http::StatusCode::NOT_MODIFIED {
            let merged = cache_policy::merge_304(
                &entry.metadata,
                exchange.response.headers(),
                self.request_time,
                SystemTime::now(),
            );
            discard_body(exchange, self.timeout).await;
            return match merged {
                Some(metadata) => {
                    cache.update_metadata(&key, metadata.clone()).await;
                    deliver_cached(reply, &self.url, metadata, entry.body, false)
                        .await
                        .map(AfterCache::Answered)
                }
                // The validator changed: the stored body is useless; ask again without it.
                None => {
                    cache.remove(&key).await;
                    Ok(AfterCache::Retry)
                }
            };
        }
        if status.is_server_error() && cache_policy::may_serve_stale_on_error(&entry.metadata) {
            discard_body(exchange, self.timeout).await;
            return deliver_cached(reply, &self.url, entry.metadata, entry.body, false)
                .await
                .map(AfterCache::Answered);
        }
        Ok(AfterCache::Continue(Box::new(exchange)))
    }

    /// A cache writer for the response about to be delivered, when it may be stored.
    fn cache_writer(
        &self,
        mgr: &ManagerInner,
        reply: &ReplyShared,
        exchange: &Exchange,
    ) -> Option<Box<dyn CacheWriter>> {
        let cache = mgr.config.cache.as_ref()?;
        if !reply.request().cache_save_control() || self.outgoing.operation != Operation::Get {
            return None;
        }
        let sent = self.outgoing.sent_headers();
        let request = CacheRequest::new(&http::Method::GET, &self.url, &sent);
        let (status, headers) = (exchange.response.status(), exchange.response.headers());
        if !cache_policy::storable(&request, status, headers) {
            return None;
        }
        let metadata =
            CacheMetadata::new(status, headers, &sent, self.request_time, SystemTime::now());
        Some(cache.begin_store(&CacheKey::get(&self.url), metadata))
    }

    /// Delivers the response (`Some`), or prepares the next hop (`None`).
    async fn after_response(
        &mut self,
        mgr: &ManagerInner,
        reply: &Arc<ReplyShared>,
        exchange: Exchange,
    ) -> Result<Option<Option<Error>>, Error> {
        if let Some(exchange) = self.authenticate(mgr, reply, exchange).await? {
            return self.after_authentication(mgr, reply, *exchange).await;
        }
        Ok(None)
    }

    /// The rest of [`after_response`](Self::after_response), once authentication is settled.
    async fn after_authentication(
        &mut self,
        mgr: &ManagerInner,
        reply: &Arc<ReplyShared>,
        exchange: Exchange,
    ) -> Result<Option<Option<Error>>, Error> {
        let exchange = match self.cache_after_response(mgr, reply, exchange).await? {
            AfterCache::Answered(outcome) => return Ok(Some(outcome)),
            AfterCache::Retry => return Ok(None),
            AfterCache::Continue(exchange) => *exchange,
        };
        let location = exchange
            .response
            .headers()
            .get(header::LOCATION)
            .map(|v| redirect::location_text(v.as_bytes()));
        let hop = redirect::next_hop(
            self.policy,
            &self.url,
            exchange.response.status(),
            location.as_deref(),
            &self.outgoing.operation,
            self.followed,
            reply.request().max_redirects(),
        );
        let (next, operation, drop_body, ask_first) = match hop {
            Hop::Deliver => {
                let writer = self.cache_writer(mgr, reply, &exchange);
                return receive(reply, &self.url, exchange, self.timeout, writer)
                    .await
                    .map(Some);
            }
            Hop::Fail(e) => return Err(e),
            Hop::Follow {
                url,
                operation,
                drop_body,
                ask_first,
            } => (url, operation, drop_body, ask_first),
        };
        discard_body(exchange, self.timeout).await;
        let outgoing = &mut self.outgoing;
        if !redirect::same_origin(&self.url, &next) {
            for name in [
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
                header::HOST,
            ] {
                outgoing.headers.remove(name);
            }
        }
        if drop_body {
            outgoing.body = Body::empty();
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_ENCODING,
            ] {
                outgoing.headers.remove(name);
            }
        }
        outgoing.operation = operation;
        self.followed += 1;
        reply.signals.redirected.emit(&next);
        if ask_first {
            reply.redirect_permission().await;
        }
        reply.set_url(next.clone());
        self.url = next;
        self.auth = AuthProgress::default();
        Ok(None)
    }
}

/// Reads and drops a redirect's body (up to 64 KiB, so the connection can carry the next
/// hop); a longer or slower body closes the connection instead.
async fn discard_body(exchange: Exchange, timeout: Option<Duration>) {
    const BUDGET: usize = 64 * 1024;
    let Exchange {
        response,
        mut checkout,
        ..
    } = exchange;
    let mut incoming = response.into_body();
    let mut seen = 0;
    let limit = timeout
        .unwrap_or(Duration::from_secs(5))
        .min(Duration::from_secs(5));
    loop {
        match tokio::time::timeout(limit, incoming.frame()).await {
            Ok(None) => {
                let reusable = !checkout.conn().single_use;
                return checkout.release(reusable);
            }
            Ok(Some(Ok(frame))) => {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > BUDGET {
                    return; // dropping the checkout closes the connection
                }
            }
            Ok(Some(Err(_))) | Err(_) => return,
        }
    }
}

/// How often an HTTP/2 request the server left unprocessed is sent again.
const MAX_UNPROCESSED_RETRIES: u32 = 4;

/// One request on one connection: take a slot, connect if needed, send, wait for the head.
/// A reused connection that fails before any response byte is retried once on a fresh one
/// when the method is idempotent; an HTTP/2 request the server did not process (RST_STREAM
/// REFUSED_STREAM, GOAWAY below its stream) up to [`MAX_UNPROCESSED_RETRIES`] times.
async fn http_exchange(
    mgr: &ManagerInner,
    reply: &Arc<ReplyShared>,
    url: &Url,
    outgoing: &Outgoing,
    timeout: Option<Duration>,
    announced_encrypted: &mut bool,
    granted: &mut Option<Granted>,
) -> Result<Exchange, Error> {
    let request = reply.request();
    check_http_url(url)?;
    let origin = origin_for(url, request, proxy_for(mgr, url))?;
    // A slot granted while the request waited as data serves its first exchange, if the
    // origin is still the one it waited for; otherwise it goes back to the pool here.
    let mut granted = granted.take().filter(|(o, _)| *o == origin).map(|(_, g)| g);
    let mut retried = false;
    let mut unprocessed_retries = 0;
    loop {
        let grant = match granted.take() {
            Some(grant) => grant,
            None => {
                mgr.pool
                    .acquire(
                        &origin,
                        request.priority(),
                        request.max_connections_per_host(),
                    )
                    .await
            }
        };
        let mut checkout = match grant {
            Grant::Reuse(checkout) => checkout,
            Grant::Connect(permit) => {
                reply
                    .signals
                    .socket_started_connecting
                    .emit(&reply.handle());
                // On failure the permit drops here and frees the slot for the next waiter.
                // Boxed: the connect path is large and rare; every queued request's task stays small.
                let conn = Box::pin(open_connection(mgr, reply, &origin)).await?;
                permit.connected(conn)
            }
        };
        if checkout.was_reused() && !checkout.conn().ready_for_reuse().await {
            // Still sending the body of a request answered early: state unknown.
            tracing::debug!(url = %ShownUrl(url), "idle connection not ready for a new request; using another");
            drop(checkout);
            continue;
        }
        let encrypted = checkout.conn().encrypted;
        let http2 = checkout.conn().is_http2();
        if encrypted && !*announced_encrypted {
            *announced_encrypted = true;
            reply.announce_encrypted();
        }
        let activity = Arc::new(Activity::default());
        let built = build_request(reply, url, &origin, outgoing, http2, activity.clone())?;
        let sent = Box::pin(while_active(
            timeout,
            &activity,
            checkout.conn().send(built),
        ))
        .await?;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                // HTTP/2: a request the server left unprocessed (REFUSED_STREAM, above the
                // GOAWAY's last-stream-id) is sent again whatever its method, a few times.
                let unprocessed = http2.then(|| backend::http::unprocessed(&e)).flatten();
                if unprocessed == Some(backend::http::Unprocessed::GoAway) {
                    checkout.conn().retire(); // no new request goes to a closing connection
                }
                if unprocessed.is_some()
                    && unprocessed_retries < MAX_UNPROCESSED_RETRIES
                    && outgoing.body.is_replayable()
                {
                    tracing::debug!(url = %ShownUrl(url), error = %e, "HTTP/2 request left unprocessed by the server; sending it again");
                    drop(checkout);
                    if unprocessed == Some(backend::http::Unprocessed::Refused) {
                        // A refusing server is busy: back off 10, 20, 40, 80 ms.
                        let pause = Duration::from_millis(10 << unprocessed_retries);
                        tokio::time::sleep(pause).await;
                    }
                    unprocessed_retries += 1;
                    continue;
                }
                let stream_error = http2 && backend::http::is_stream_error(&e);
                let retry = checkout.was_reused()
                    && !retried
                    && !stream_error
                    && unprocessed.is_none()
                    && outgoing.operation.is_idempotent();
                drop(checkout); // broken: frees its slot
                if retry {
                    tracing::debug!(url = %ShownUrl(url), error = %e, "reused connection failed before the response; retrying once");
                    retried = true;
                    continue;
                }
                return Err(map_hyper_error(e, true));
            }
        };
        checkout.response_head_received(); // HTTP/2: the stream slot goes to the next waiter
        if let Some(refused) = backend::http::refused_response(&response) {
            return Err(refused); // dropping the checkout closes the connection
        }
        reply.signals.request_sent.emit(&reply.handle());
        let tls_session = checkout.conn().tls_session.clone();
        let secure_channel = encrypted && !checkout.conn().certificate_errors_ignored;
        return Ok(Exchange {
            response,
            checkout,
            encrypted,
            secure_channel,
            http2,
            tls_session,
        });
    }
}

/// Refuses, before any socket opens, a URL that HTTP cannot carry: one the `http` crate's
/// `Uri` rejects (longer than 65,534 bytes, a host with characters outside RFC 3986), whether
/// the application gave it or a redirect did.
fn check_http_url(url: &Url) -> Result<(), Error> {
    let host = url.host_str().unwrap_or_default();
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let absolute = match url.port() {
        Some(port) => format!("http://{host}:{port}{target}"),
        None => format!("http://{host}{target}"),
    };
    match http::Uri::try_from(absolute) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::new(
            NetworkError::ProtocolInvalidOperationError,
            format!(
                "The URL cannot be sent over HTTP ({e}): {}",
                crate::error::url_for_message(url)
            ),
        )),
    }
}

/// A TCP stream to the origin: direct, to the HTTP proxy (absolute-form requests follow), or
/// through a CONNECT tunnel or a SOCKS5 proxy.
async fn reach(
    mgr: &ManagerInner,
    reply: &Arc<ReplyShared>,
    origin: &Origin,
) -> Result<tokio::net::TcpStream, Error> {
    let timeout = mgr.config.connect_timeout;
    let resolve = &mgr.config.resolve;
    let Some(proxy) = &origin.proxy else {
        return transport::connect_tcp(&origin.host, origin.port, timeout, resolve).await;
    };
    if proxy.kind() == ProxyKind::Socks5Proxy {
        return transport::proxy::connect_socks5(
            proxy,
            &origin.host,
            origin.port,
            timeout,
            resolve,
        )
        .await;
    }
    if absolute_form(origin) {
        return transport::proxy::connect_proxy(proxy, timeout, resolve).await;
    }
    // https through an HTTP proxy: CONNECT, answering 407s with the proxy's credentials, the
    // credential cache or the application.
    let target = format!("{}:{}", origin.host, origin.port);
    let mut authorization: Option<HeaderValue> = None;
    let mut offered_configured = false;
    for _round in 0..4 {
        let tunnel = transport::proxy::connect_tunnel(
            proxy,
            &origin.host,
            origin.port,
            authorization.as_ref(),
            timeout,
            resolve,
        )
        .await?;
        let headers = match tunnel {
            transport::proxy::Tunnel::Open(stream) => return Ok(stream),
            transport::proxy::Tunnel::AuthRequired(headers) => headers,
        };
        let challenges = parse_challenges(headers.get_all(header::PROXY_AUTHENTICATE));
        let Some((challenge, _)) = select_challenge(&challenges, true) else {
            break;
        };
        let credentials = if !offered_configured && !proxy.user().is_empty() {
            offered_configured = true;
            Some(Authenticator::with_credentials(
                proxy.user(),
                proxy.password(),
            ))
        } else {
            let request = AuthenticationRequest::new(Authenticator::for_challenge(challenge));
            reply
                .manager_signals()
                .proxy_authentication_required
                .emit(&(proxy.clone(), request.clone()));
            request.answered().await
        };
        let Some(credentials) = credentials else {
            break;
        };
        let mut state = AuthState::new();
        authorization = respond(
            &challenges,
            &credentials,
            "CONNECT",
            &target,
            Some(b""),
            &mut state,
        )
        .map(|a| a.header);
        if authorization.is_none() {
            break;
        }
    }
    Err(Error::new(
        NetworkError::ProxyAuthenticationRequiredError,
        format!(
            "The proxy {}:{} requires authentication",
            proxy.host(),
            proxy.port()
        ),
    ))
}

/// TCP, then TLS for https (ALPN decides HTTP/2), then the HTTP handshake.
async fn open_connection(
    mgr: &ManagerInner,
    reply: &Arc<ReplyShared>,
    origin: &Origin,
) -> Result<HttpConn, Error> {
    let connect_timeout = mgr.config.connect_timeout;
    if is_local_http(&origin.scheme) {
        let stream = transport::connect_unix(&origin.host, connect_timeout).await?;
        return HttpConn::handshake(Io::Unix(stream), false, false, &mgr.config.http2).await;
    }
    let dial = || reach(mgr, reply, origin);
    let tcp = dial().await?;
    if origin.scheme != "https" {
        let h2 = origin.mode == Mode::Http2Direct;
        return HttpConn::handshake(Io::Tcp(tcp), h2, false, &mgr.config.http2).await;
    }
    let offer_h2 = origin.mode != Mode::Http1;
    let tls = &mgr.config.tls;
    let handshake = |tcp, ignore: IgnoreSsl| {
        let timed = async move {
            let done = tls.handshake(tcp, &origin.host, offer_h2, &ignore);
            tokio::time::timeout(connect_timeout, done).await
        };
        async move {
            timed.await.unwrap_or_else(|_| {
                Err(transport::tls::TlsFailure {
                    error: Error::new(NetworkError::TimeoutError, "TLS handshake timed out"),
                    ssl_errors: Vec::new(),
                })
            })
        }
    };
    let (stream, h2, seen, session, announced) =
        match handshake(tcp, reply.ssl_errors_ignored()).await {
            Ok((stream, h2, seen, session)) => (stream, h2, seen, session, false),
            Err(failure) if !failure.ssl_errors.is_empty() => {
                announce_ssl_errors(reply, &failure.ssl_errors);
                let ignore = reply.ssl_errors_ignored();
                if !ignore.covers_all(&failure.ssl_errors) {
                    return Err(failure.error);
                }
                // A slot chose to go on: connect again, accepting the errors it ignored.
                let tcp = dial().await?;
                let (stream, h2, _, session) = handshake(tcp, ignore).await.map_err(|f| f.error)?;
                (stream, h2, failure.ssl_errors, session, true)
            }
            Err(failure) => return Err(failure.error),
        };
    if !seen.is_empty() && !announced {
        announce_ssl_errors(reply, &seen);
    }
    let use_h2 = h2 || origin.mode == Mode::Http2Direct;
    let io = Io::Tls(Box::new(stream));
    let mut conn = HttpConn::handshake(io, use_h2, true, &mgr.config.http2).await?;
    conn.tls_session = session;
    conn.single_use = !seen.is_empty() && !tls.ignores_all();
    conn.certificate_errors_ignored = !seen.is_empty();
    Ok(conn)
}

fn announce_ssl_errors(reply: &Arc<ReplyShared>, errors: &[SslError]) {
    let event = (reply.handle(), errors.to_vec());
    reply.signals.ssl_errors.emit(&event);
    reply.manager_signals().ssl_errors.emit(&event);
}

fn build_request(
    reply: &Arc<ReplyShared>,
    url: &Url,
    origin: &Origin,
    outgoing: &Outgoing,
    http2: bool,
    activity: Arc<Activity>,
) -> Result<http::Request<ReqBody>, Error> {
    let path_and_query = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let path_and_query = if path_and_query.is_empty() {
        "/"
    } else {
        path_and_query
    };
    let host = url.host_str().unwrap_or_default();
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let uri = if http2 || absolute_form(origin) {
        format!("{}://{}{}", origin.scheme, authority, path_and_query)
    } else {
        path_and_query.to_owned()
    };
    let invalid = |e: &dyn std::fmt::Display| {
        Error::new(
            NetworkError::ProtocolInvalidOperationError,
            format!(
                "Invalid request for {}: {e}",
                crate::error::url_for_message(url)
            ),
        )
    };
    let uri = http::Uri::try_from(uri.as_str()).map_err(|e| invalid(&e))?;
    let mut headers = outgoing.headers.clone();
    if http2 {
        for name in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
            "host",
        ] {
            headers.remove(name);
        }
    } else if !headers.contains_key(header::HOST) {
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&authority).map_err(|e| invalid(&e))?,
        );
    }
    for (name, value) in &outgoing.hop_headers {
        headers.insert(name, value.clone());
    }
    if let Some(jar) = &outgoing.jar_cookies {
        let merged = merge_cookie_header(headers.get(header::COOKIE), jar);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_bytes(&merged).map_err(|e| invalid(&e))?,
        );
    }
    if !headers.contains_key(header::ACCEPT_ENCODING) {
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static(decode::ACCEPT_ENCODING),
        );
    }
    // GET, HEAD and DELETE without a body send no Content-Length; other verbs say 0. A body of
    // unknown length goes chunked.
    let bodiless = matches!(
        outgoing.operation,
        Operation::Get | Operation::Head | Operation::Delete
    );
    let sends_length = !(outgoing.body.is_absent() && bodiless);
    if sends_length && !headers.contains_key(header::CONTENT_LENGTH) {
        if let Some(len) = outgoing.body.len() {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    let progress = (reply.signals.upload_progress.receivers() > 0).then(|| {
        let weak = Arc::downgrade(reply);
        Arc::new(move |sent: u64, total: Option<u64>| {
            if let Some(r) = weak.upgrade() {
                r.report_upload_progress((sent, total));
            }
        }) as ProgressFn
    });
    let body = UploadBody::new(&outgoing.body, progress, activity)?;
    let mut request = http::Request::new(body);
    *request.method_mut() = outgoing.operation.method();
    *request.uri_mut() = uri;
    *request.version_mut() = if http2 {
        http::Version::HTTP_2
    } else {
        http::Version::HTTP_11
    };
    *request.headers_mut() = headers;
    Ok(request)
}

async fn local_data(reply: &Arc<ReplyShared>, url: &Url) -> Result<Option<Error>, Error> {
    let (meta, data) = backend::data::fetch(url, reply.operation())?;
    deliver_local(reply, meta, futures_util::stream::iter([Ok(data)])).await
}

async fn local_file(
    reply: &Arc<ReplyShared>,
    url: &Url,
    body: Body,
) -> Result<Option<Error>, Error> {
    let (meta, stream) =
        backend::file::fetch(url, reply.operation(), body.collect().await?).await?;
    match stream {
        Some(stream) => deliver_local(reply, meta, stream).await,
        None => deliver_local(reply, meta, futures_util::stream::empty()).await,
    }
}

/// A local reply (`data:`, `file:`): metadata, the body into the reply, progress.
async fn deliver_local(
    reply: &Arc<ReplyShared>,
    meta: Meta,
    body: impl futures_core::Stream<Item = Result<bytes::Bytes, Error>>,
) -> Result<Option<Error>, Error> {
    let total = meta.original_content_length;
    reply.set_meta(meta);
    let mut download = Download::new(reply, total)?;
    if download.pump(reply, std::pin::pin!(body)).await? {
        download.finish(reply);
    }
    Ok(None)
}

/// Body bytes on their way into a reply, with Qt's throttled `download_progress` and the
/// request's body-size limit.
struct Download {
    received: u64,
    total: Option<u64>,
    /// The largest body accepted ([`Request::max_body_size`] or the manager's).
    max: Option<u64>,
    last_progress: Option<Instant>,
}

impl Download {
    /// Fails at once when the announced length (`total`) is over the limit.
    fn new(reply: &ReplyShared, total: Option<u64>) -> Result<Self, Error> {
        // The manager's default was filled in when the reply was made.
        let max = reply.request().max_body_size();
        if let (Some(total), Some(max)) = (total, max) {
            if total > max {
                return Err(body_too_large(max, format!("Content-Length {total}")));
            }
        }
        Ok(Download {
            received: 0,
            total,
            max,
            last_progress: None,
        })
    }

    /// Appends a chunk (waiting for room in a bounded buffer). `Ok(false)` once the reply
    /// finished; an error when the body grows past the limit (nothing past it is delivered).
    async fn push(&mut self, reply: &Arc<ReplyShared>, chunk: bytes::Bytes) -> Result<bool, Error> {
        let received = self.received.saturating_add(chunk.len() as u64);
        if let Some(max) = self.max.filter(|&max| received > max) {
            return Err(body_too_large(
                max,
                format!("the body ({received} bytes so far)"),
            ));
        }
        self.received = received;
        if !reply.push_chunk(chunk).await {
            return Ok(false);
        }
        if self
            .last_progress
            .is_none_or(|t| t.elapsed() >= PROGRESS_INTERVAL)
        {
            self.last_progress = Some(Instant::now());
            reply.report_download_progress((self.received, self.total));
        }
        Ok(true)
    }

    /// Moves every chunk of `body` into the reply. `Ok(false)`: the reply finished meanwhile
    /// (aborted).
    async fn pump(
        &mut self,
        reply: &Arc<ReplyShared>,
        body: impl futures_core::Stream<Item = Result<bytes::Bytes, Error>> + Unpin,
    ) -> Result<bool, Error> {
        use futures_util::StreamExt;
        let mut body = body;
        while let Some(chunk) = body.next().await {
            if !self.push(reply, chunk?).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The final progress report, never throttled.
    fn finish(&self, reply: &Arc<ReplyShared>) {
        let total = self.total.unwrap_or(self.received);
        reply.report_download_progress((self.received, Some(total)));
    }
}

fn body_too_large(max: u64, what: String) -> Error {
    Error::new(
        NetworkError::UnknownContentError,
        format!("The response body is larger than allowed: {what} exceeds the {max}-byte limit (Request::with_max_body_size)"),
    )
}

/// The response: metadata first, then the body into the reply, then the connection back to
/// the pool (before `finished`, so the next request can reuse it at once).
async fn receive(
    reply: &Arc<ReplyShared>,
    url: &Url,
    exchange: Exchange,
    timeout: Option<Duration>,
    cache_writer: Option<Box<dyn CacheWriter>>,
) -> Result<Option<Error>, Error> {
    let Exchange {
        response,
        mut checkout,
        encrypted,
        http2,
        tls_session,
        ..
    } = exchange;
    let (mut parts, incoming) = response.into_parts();
    let status = parts.status;
    let reason = parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| status.canonical_reason().map(str::to_owned));
    let content_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let redirection_target = status
        .is_redirection()
        .then(|| {
            parts
                .headers
                .get(header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        })
        .flatten();
    let http_error = http_status_error(status, reason.as_deref().unwrap_or(""), url);
    if let Some(e) = &http_error {
        reply.set_http_error(e.clone());
    }
    let codings = decoding_for(reply, status, content_length, &parts.headers)?;
    if codings.is_some() {
        // The application sees the decoded body: these described the encoded one.
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    let total = if *reply.operation() == Operation::Head {
        Some(0)
    } else if codings.is_some() {
        None
    } else {
        content_length
    };
    reply.set_meta(Meta {
        status: Some(status),
        reason,
        headers: parts.headers,
        version: Some(parts.version),
        encrypted,
        http2,
        from_cache: false,
        redirection_target,
        original_content_length: content_length,
        tls_version: tls_session.as_ref().map(|t| t.version.clone()),
        tls_cipher: tls_session.map(|t| t.cipher),
    });

    let mut download = Download::new(reply, total)?;
    // The raw body (still encoded) goes to the cache as it arrives; committed only if whole.
    let writer = Arc::new(std::sync::Mutex::new(cache_writer));
    let tee = writer.clone();
    let frames = body_chunks(incoming, timeout).inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            let mut slot = tee.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = slot.as_mut() {
                if let Err(e) = w.write(chunk) {
                    tracing::debug!(error = %e, "cache write failed; not storing this response");
                    *slot = None;
                }
            }
        }
    });
    let complete = match codings {
        Some(codings) => {
            download
                .pump(reply, Decoder::new(frames, &codings, decode_limits(reply)))
                .await?
        }
        None => download.pump(reply, std::pin::pin!(frames)).await?,
    };
    if !complete {
        return Ok(None); // aborted: the reply is finished already
    }
    let reusable = !checkout.conn().single_use;
    checkout.release(reusable);
    let finished_writer = writer.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(w) = finished_writer {
        if let Err(e) = w.commit().await {
            tracing::debug!(error = %e, "cache commit failed");
        }
    }
    download.finish(reply);
    Ok(http_error)
}

/// A reply answered from the cache: the stored status and headers (with `Age`), the stored
/// body decoded as a network one would be. `from_cache`: no request reached the server.
async fn deliver_cached(
    reply: &Arc<ReplyShared>,
    url: &Url,
    metadata: CacheMetadata,
    body: CachedBody,
    from_cache: bool,
) -> Result<Option<Error>, Error> {
    let status = metadata.status;
    let mut headers = cache_policy::served_headers(&metadata, SystemTime::now());
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let head = *reply.operation() == Operation::Head;
    let codings = if head {
        None
    } else {
        decoding_for(reply, status, content_length, &headers)?
    };
    if codings.is_some() {
        headers.remove(header::CONTENT_ENCODING);
        headers.remove(header::CONTENT_LENGTH);
    }
    let reason = status.canonical_reason().map(str::to_owned);
    let http_error = http_status_error(status, reason.as_deref().unwrap_or(""), url);
    if let Some(e) = &http_error {
        reply.set_http_error(e.clone());
    }
    reply.set_meta(Meta {
        status: Some(status),
        reason,
        headers,
        version: Some(http::Version::HTTP_11),
        encrypted: false,
        http2: false,
        from_cache,
        redirection_target: None,
        original_content_length: content_length,
        tls_version: None,
        tls_cipher: None,
    });
    let total = if head {
        Some(0)
    } else if codings.is_some() {
        None
    } else {
        content_length
    };
    let mut download = Download::new(reply, total)?;
    if !head {
        let raw = body.into_stream().map(|chunk| {
            chunk.map_err(|e| {
                Error::new(
                    NetworkError::ProtocolFailure,
                    format!("Reading the cached body failed: {e}"),
                )
                .with_source(e)
            })
        });
        let complete = match codings {
            Some(codings) => {
                download
                    .pump(reply, Decoder::new(raw, &codings, decode_limits(reply)))
                    .await?
            }
            None => download.pump(reply, raw).await?,
        };
        if !complete {
            return Ok(None);
        }
    }
    download.finish(reply);
    Ok(http_error)
}

/// The codings to undo for this response, if any. Not when the application asked for an
/// encoding itself (it gets the body as sent), nor for a response without a body. A chain
/// longer than [`decode::MAX_CODINGS`] is an error.
fn decoding_for(
    reply: &ReplyShared,
    status: http::StatusCode,
    content_length: Option<u64>,
    headers: &HeaderMap,
) -> Result<Option<Vec<decode::Coding>>, Error> {
    let no_body = *reply.operation() == Operation::Head
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED
        || content_length == Some(0);
    if no_body
        || reply
            .request()
            .headers()
            .contains_key(header::ACCEPT_ENCODING)
    {
        return Ok(None);
    }
    decode::codings(headers)
}

/// The decoder's limits for this reply's request.
fn decode_limits(reply: &ReplyShared) -> decode::Limits {
    let request = reply.request();
    decode::Limits {
        threshold: request.decompressed_safety_check_threshold(),
        max_decoded: request.max_decoded_size(),
    }
}

/// The application's own `Cookie` value (if any) and the jar's, joined with `"; "`, as bytes:
/// cookie names and values may hold UTF-8 (servers send it, the jar keeps it), which
/// `HeaderValue::from_str` refuses, so one such cookie would fail every later request to its
/// host (found by fuzz target `cookie_jar_rules`).
fn merge_cookie_header(own: Option<&HeaderValue>, jar: &str) -> Vec<u8> {
    match own.map(HeaderValue::as_bytes) {
        Some(own) if !own.is_empty() => [own, b"; ", jar.as_bytes()].concat(),
        _ => jar.as_bytes().to_vec(),
    }
}

/// The data frames of a response body, each read within the transfer timeout.
fn body_chunks(
    incoming: Incoming,
    timeout: Option<Duration>,
) -> impl futures_core::Stream<Item = Result<bytes::Bytes, Error>> + Send + 'static {
    futures_util::stream::unfold(Some(incoming), move |state| async move {
        let mut incoming = state?;
        loop {
            match within(timeout, incoming.frame()).await {
                Err(e) => return Some((Err(e), None)),
                Ok(None) => return None,
                Ok(Some(Err(e))) => return Some((Err(map_hyper_error(e, false)), None)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), Some(incoming)));
                    }
                }
            }
        }
    })
}
