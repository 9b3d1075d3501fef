//! [`Request`] (Qt's `QNetworkRequest`): the URL, headers, priority and per-request options of
//! one operation, plus [`Priority`] and [`Operation`]. The upload body is `upload.rs`'s `Body`;
//! the TLS setters (`with_ssl_configuration`, `with_peer_verify_name`) are in `tls_config.rs`.
//!
//! A request never panics on bad input: an unparsable URL or an invalid header is remembered
//! and the reply built from it finishes with a clear error.
//!
//! A request is small (it lives in its reply, also while the reply waits in a queue): the
//! URL, the priority and the HTTP/2 flags are inline; the headers and the options left at
//! their defaults take no allocation.
//!
//! This file stays over 600 lines for `Request`'s public API: one documented setter and getter
//! per `QNetworkRequest` member and attribute, each with an example.

use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;
use url::Url;

use crate::cache::CacheLoadControl;
use crate::redirect::RedirectPolicy;

/// Qt's `QNetworkRequest::Priority`: queued requests for one origin start in priority order,
/// then in the order they were made.
#[doc(alias = "QNetworkRequest::Priority")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Priority {
    /// Started before Normal and Low requests.
    High,
    /// The default.
    #[default]
    Normal,
    /// Started after High and Normal requests.
    Low,
}

/// Qt's `QNetworkRequest::LoadControl` for cookies: whether the manager's jar is used.
#[doc(alias = "QNetworkRequest::LoadControl")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CookieControl {
    /// The jar is used (the default): cookies are sent, or `Set-Cookie` is stored.
    #[default]
    Automatic,
    /// The jar is left alone; the application handles the headers itself.
    Manual,
}

/// Qt's `QNetworkAccessManager::Operation`.
#[doc(alias = "QNetworkAccessManager::Operation")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// HEAD.
    Head,
    /// GET.
    Get,
    /// PUT.
    Put,
    /// POST.
    Post,
    /// DELETE.
    Delete,
    /// Any other verb, sent as given.
    Custom(Method),
}

impl Operation {
    /// The operation for a verb: GET, HEAD, PUT, POST and DELETE in any case are the standard
    /// operations; anything else is [`Operation::Custom`]. `None` for a verb that is not a
    /// valid HTTP token.
    pub fn from_verb(verb: &str) -> Option<Operation> {
        let upper = verb.to_ascii_uppercase();
        Some(match upper.as_str() {
            "GET" => Operation::Get,
            "HEAD" => Operation::Head,
            "PUT" => Operation::Put,
            "POST" => Operation::Post,
            "DELETE" => Operation::Delete,
            _ => Operation::Custom(Method::from_bytes(verb.as_bytes()).ok()?),
        })
    }

    /// The HTTP method sent for this operation.
    pub fn method(&self) -> Method {
        match self {
            Operation::Head => Method::HEAD,
            Operation::Get => Method::GET,
            Operation::Put => Method::PUT,
            Operation::Post => Method::POST,
            Operation::Delete => Method::DELETE,
            Operation::Custom(m) => m.clone(),
        }
    }

    /// True for operations that may be retried transparently (RFC 9110 idempotent methods).
    pub fn is_idempotent(&self) -> bool {
        match self {
            Operation::Head | Operation::Get | Operation::Put | Operation::Delete => true,
            Operation::Post => false,
            Operation::Custom(m) => matches!(*m, Method::OPTIONS | Method::TRACE),
        }
    }
}

/// Qt's `QNetworkRequest`: what to fetch and how.
///
/// ```
/// use netaccess::{Priority, Request};
/// let request = Request::new("http://127.0.0.1:8080/index.html")
///     .with_header("User-Agent", "MyOwnBrowser 1.0")
///     .with_priority(Priority::High);
/// assert_eq!(request.url().unwrap().path(), "/index.html");
/// ```
#[doc(alias = "QNetworkRequest")]
#[derive(Clone)]
#[must_use = "a request does nothing until it is given to the manager"]
pub struct Request {
    /// The URL, or the text that did not parse and why.
    url: Result<Url, Box<(String, String)>>,
    /// `None`: no headers.
    headers: Option<Box<HeaderMap>>,
    priority: Priority,
    http2_allowed: bool,
    http2_direct: bool,
    /// `None`: every other option at its default.
    options: Option<Box<Options>>,
}

/// The options of a request that are seldom changed, boxed together.
#[derive(Clone, Debug)]
struct Options {
    invalid_header: Option<String>,
    max_redirects: u32,
    transfer_timeout: Option<Duration>,
    max_connections_per_host: Option<usize>,
    redirect_policy: Option<RedirectPolicy>,
    decompressed_safety_check_threshold: Option<u64>,
    max_decoded_size: Option<u64>,
    max_body_size: Option<u64>,
    unix_socket: Option<std::path::PathBuf>,
    cookie_load_control: CookieControl,
    cookie_save_control: CookieControl,
    cache_load_control: CacheLoadControl,
    cache_save_control: bool,
    authentication_reuse: bool,
    deadline: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry_policy: Option<crate::retry::RetryPolicy>,
    max_rate: Option<u64>,
    resume: bool,
    tls: Option<std::sync::Arc<crate::tls_config::TlsSettings>>,
}

/// The options of a request nobody changed.
static DEFAULT_OPTIONS: Options = Options {
    invalid_header: None,
    max_redirects: 50,
    transfer_timeout: None,
    max_connections_per_host: None,
    redirect_policy: None,
    decompressed_safety_check_threshold: Some(
        crate::decode::DEFAULT_DECOMPRESSED_SAFETY_CHECK_THRESHOLD,
    ),
    max_decoded_size: Some(crate::decode::DEFAULT_MAX_DECODED_SIZE),
    max_body_size: None,
    unix_socket: None,
    cookie_load_control: CookieControl::Automatic,
    cookie_save_control: CookieControl::Automatic,
    cache_load_control: CacheLoadControl::PreferNetwork,
    cache_save_control: true,
    authentication_reuse: true,
    deadline: None,
    connect_timeout: None,
    retry_policy: None,
    max_rate: None,
    resume: true,
    tls: None,
};

/// Header values never printed by `Debug`: credentials and session cookies.
const REDACTED_HEADERS: [http::header::HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
];

impl std::fmt::Debug for Request {
    /// Prints the URL without its password and the headers with credential values redacted,
    /// so a request can be logged safely.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Headers<'a>(&'a HeaderMap);
        impl std::fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut map = f.debug_map();
                for (name, value) in self.0 {
                    if REDACTED_HEADERS.contains(name) {
                        map.entry(name, &"<redacted>");
                    } else {
                        map.entry(name, value);
                    }
                }
                map.finish()
            }
        }
        let url = match &self.url {
            Ok(url) => crate::error::display_url(url),
            Err(invalid) => crate::error::redact_passwords(&invalid.0).into_owned(),
        };
        f.debug_struct("Request")
            .field("url", &url)
            .field("headers", &Headers(self.headers()))
            .field("priority", &self.priority)
            .field("max_redirects", &self.max_redirects())
            .field("transfer_timeout", &self.transfer_timeout())
            .field("redirect_policy", &self.redirect_policy())
            .field("max_body_size", &self.max_body_size())
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request for `url`. An unparsable URL is kept as an error: the reply reports it.
    pub fn new(url: impl AsRef<str>) -> Self {
        let text = url.as_ref();
        let url = Url::parse(text).map_err(|e| {
            Box::new((
                text.to_owned(),
                crate::redirect::describe_url_error(text, e),
            ))
        });
        Self::with_url_result(url)
    }

    /// A request for an already parsed URL.
    pub fn from_url(url: Url) -> Self {
        Self::with_url_result(Ok(url))
    }

    fn with_url_result(url: Result<Url, Box<(String, String)>>) -> Self {
        Request {
            url,
            headers: None,
            priority: Priority::Normal,
            http2_allowed: true,
            http2_direct: false,
            options: None,
        }
    }

    /// The options, read.
    fn options(&self) -> &Options {
        self.options.as_deref().unwrap_or(&DEFAULT_OPTIONS)
    }

    /// The options, to change one (boxed on the first change).
    fn options_mut(&mut self) -> &mut Options {
        self.options
            .get_or_insert_with(|| Box::new(DEFAULT_OPTIONS.clone()))
    }

    /// The URL, or `None` if the text given to [`Request::new`] was not a valid URL.
    pub fn url(&self) -> Option<&Url> {
        self.url.as_ref().ok()
    }

    /// Replaces the URL.
    pub fn set_url(&mut self, url: Url) {
        self.url = Ok(url);
    }

    pub(crate) fn url_result(&self) -> Result<&Url, String> {
        self.url
            .as_ref()
            .map_err(|invalid| format!("Invalid URL {:?}: {}", invalid.0, invalid.1))
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        static NONE: std::sync::OnceLock<HeaderMap> = std::sync::OnceLock::new();
        match &self.headers {
            Some(headers) => headers,
            None => NONE.get_or_init(HeaderMap::new),
        }
    }

    /// The request headers, to change them.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers.get_or_insert_with(Box::default)
    }

    /// Sets a header (Qt's `setRawHeader`), replacing earlier values of the same name. An
    /// invalid name or value is remembered; the reply then fails with
    /// `ProtocolInvalidOperationError`.
    #[doc(alias = "setRawHeader")]
    pub fn set_header(&mut self, name: &str, value: &str) {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers_mut().insert(n, v);
            }
            (Err(_), _) => {
                self.options_mut().invalid_header = Some(format!("invalid header name {name:?}"))
            }
            (_, Err(_)) => {
                self.options_mut().invalid_header =
                    Some(format!("invalid value for header {name:?}: {value:?}"))
            }
        }
    }

    /// Builder form of [`Request::set_header`].
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.set_header(name, value);
        self
    }

    pub(crate) fn invalid_header(&self) -> Option<&str> {
        self.options().invalid_header.as_deref()
    }

    /// The priority in the origin's queue.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, priority: Priority) {
        self.priority = priority;
    }

    /// Builder form of [`Request::set_priority`].
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The most redirects followed (default 50, as Qt).
    pub fn max_redirects(&self) -> u32 {
        self.options().max_redirects
    }

    /// Builder: the most redirects followed.
    pub fn with_max_redirects(mut self, n: u32) -> Self {
        self.options_mut().max_redirects = n;
        self
    }

    /// The redirect policy of this request (Qt's `RedirectPolicyAttribute`); `None` uses the
    /// manager's.
    pub fn redirect_policy(&self) -> Option<RedirectPolicy> {
        self.options().redirect_policy
    }

    /// Builder: the redirect policy for this request.
    pub fn with_redirect_policy(mut self, policy: RedirectPolicy) -> Self {
        self.options_mut().redirect_policy = Some(policy);
        self
    }

    /// Qt's `decompressedSafetyCheckThreshold`: past this many decoded bytes, a body whose
    /// decoded/encoded ratio exceeds Qt's limit (40 for gzip and deflate, 100 for br and zstd)
    /// fails as a decompression bomb. Default 10 MiB; `None` disables the check.
    pub fn decompressed_safety_check_threshold(&self) -> Option<u64> {
        self.options().decompressed_safety_check_threshold
    }

    /// Builder: sets the decompression-bomb threshold (`None` disables the check).
    pub fn with_decompressed_safety_check_threshold(mut self, threshold: Option<u64>) -> Self {
        self.options_mut().decompressed_safety_check_threshold = threshold;
        self
    }

    /// The absolute cap on the decoded bytes of a compressed body, whatever the ratio:
    /// past it decoding stops with a `ProtocolFailure`. Default
    /// [`DEFAULT_MAX_DECODED_SIZE`](crate::limits::DEFAULT_MAX_DECODED_SIZE) (1 GiB); `None`
    /// removes the cap.
    pub fn max_decoded_size(&self) -> Option<u64> {
        self.options().max_decoded_size
    }

    /// Builder: sets the cap on decoded bytes (`None`: no cap).
    ///
    /// ```
    /// use netaccess::Request;
    /// let request = Request::new("http://127.0.0.1:8080/big.json").with_max_decoded_size(Some(1 << 20));
    /// assert_eq!(request.max_decoded_size(), Some(1 << 20));
    /// ```
    pub fn with_max_decoded_size(mut self, limit: Option<u64>) -> Self {
        self.options_mut().max_decoded_size = limit;
        self
    }

    /// The largest body this request accepts, in bytes as delivered (after decoding), as
    /// curl's `CURLOPT_MAXFILESIZE`: a larger `Content-Length` fails before the body is read,
    /// and a body that grows past it fails at that byte with `UnknownContentError`. `None`:
    /// the manager's ([`ManagerBuilder::max_body_size`](crate::ManagerBuilder::max_body_size)).
    pub fn max_body_size(&self) -> Option<u64> {
        self.options().max_body_size
    }

    /// Builder: sets the largest body accepted.
    ///
    /// ```
    /// use netaccess::Request;
    /// let request = Request::new("http://127.0.0.1:8080/").with_max_body_size(64 * 1024);
    /// assert_eq!(request.max_body_size(), Some(65536));
    /// ```
    pub fn with_max_body_size(mut self, bytes: u64) -> Self {
        self.options_mut().max_body_size = Some(bytes);
        self
    }

    /// The most bytes per second this request's response body is read at, if limited.
    pub fn max_rate(&self) -> Option<u64> {
        self.options().max_rate
    }

    /// Builder: reads the response body at most `bytes_per_sec` bytes per second (0: no limit
    /// of its own), as curl's `CURLOPT_MAX_RECV_SPEED_LARGE`. The manager's limits
    /// ([`ManagerBuilder::max_download_rate`](crate::ManagerBuilder::max_download_rate)) apply
    /// too. The connection is read no faster: nothing is buffered.
    ///
    /// ```
    /// use netaccess::Request;
    /// let request = Request::new("http://127.0.0.1:8080/big.iso").with_max_rate(1 << 20);
    /// assert_eq!(request.max_rate(), Some(1_048_576));
    /// ```
    pub fn with_max_rate(mut self, bytes_per_sec: u64) -> Self {
        self.options_mut().max_rate = (bytes_per_sec > 0).then_some(bytes_per_sec);
        self
    }

    /// Qt's `FullLocalServerNameAttribute`: the Unix domain socket that `unix+http` and
    /// `local+http` URLs are sent to (the URL's host still names the `Host` header).
    #[doc(alias = "FullLocalServerNameAttribute")]
    pub fn unix_socket(&self) -> Option<&std::path::Path> {
        self.options().unix_socket.as_deref()
    }

    /// Builder: the Unix domain socket for `unix+http` / `local+http` URLs.
    pub fn with_unix_socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.options_mut().unix_socket = Some(path.into());
        self
    }

    /// Qt's `CookieLoadControlAttribute`: whether the jar's cookies are sent (default
    /// Automatic; with Manual only a `Cookie` header set on the request goes).
    #[doc(alias = "CookieLoadControlAttribute")]
    pub fn cookie_load_control(&self) -> CookieControl {
        self.options().cookie_load_control
    }

    /// Builder: the cookie load control.
    pub fn with_cookie_load_control(mut self, control: CookieControl) -> Self {
        self.options_mut().cookie_load_control = control;
        self
    }

    /// Qt's `CookieSaveControlAttribute`: whether `Set-Cookie` headers go into the jar
    /// (default Automatic).
    #[doc(alias = "CookieSaveControlAttribute")]
    pub fn cookie_save_control(&self) -> CookieControl {
        self.options().cookie_save_control
    }

    /// Builder: the cookie save control.
    pub fn with_cookie_save_control(mut self, control: CookieControl) -> Self {
        self.options_mut().cookie_save_control = control;
        self
    }

    /// Qt's `CacheLoadControlAttribute` (default PreferNetwork): where the reply may come from
    /// when the manager has a cache.
    #[doc(alias = "CacheLoadControlAttribute")]
    pub fn cache_load_control(&self) -> CacheLoadControl {
        self.options().cache_load_control
    }

    /// Builder: the cache load control.
    pub fn with_cache_load_control(mut self, control: CacheLoadControl) -> Self {
        self.options_mut().cache_load_control = control;
        self
    }

    /// Qt's `CacheSaveControlAttribute` (default true): whether the response may be stored.
    #[doc(alias = "CacheSaveControlAttribute")]
    pub fn cache_save_control(&self) -> bool {
        self.options().cache_save_control
    }

    /// Builder: whether the response may be stored in the cache.
    pub fn with_cache_save_control(mut self, save: bool) -> Self {
        self.options_mut().cache_save_control = save;
        self
    }

    /// Qt's `AuthenticationReuseAttribute` (default true): credentials that worked for this
    /// protection space are sent at once, without waiting for a 401.
    #[doc(alias = "AuthenticationReuseAttribute")]
    pub fn authentication_reuse(&self) -> bool {
        self.options().authentication_reuse
    }

    /// Builder: whether cached credentials are sent pre-emptively.
    pub fn with_authentication_reuse(mut self, reuse: bool) -> Self {
        self.options_mut().authentication_reuse = reuse;
        self
    }

    /// The transfer timeout: the reply fails with `TimeoutError` when no byte moves, up or
    /// down, for this long. `None` (the default) uses the manager's.
    pub fn transfer_timeout(&self) -> Option<Duration> {
        self.options().transfer_timeout
    }

    /// Builder: sets the transfer timeout. `Duration::ZERO` means the manager's, as in Qt.
    pub fn with_transfer_timeout(mut self, timeout: Duration) -> Self {
        self.options_mut().transfer_timeout = Some(timeout);
        self
    }

    /// The total time the request may take, redirects, authentication rounds and retries
    /// included, counted from when it starts running; past it the reply fails with
    /// `TimeoutError`. `None` (the default): no deadline, only the inactivity
    /// [`transfer_timeout`](Self::transfer_timeout).
    pub fn deadline(&self) -> Option<Duration> {
        self.options().deadline
    }

    /// Builder: sets the [`deadline`](Self::deadline); `Duration::ZERO` means none.
    ///
    /// ```
    /// use std::time::Duration;
    /// let request = netaccess::Request::new("http://127.0.0.1:8080/")
    ///     .with_deadline(Duration::from_secs(10));
    /// assert_eq!(request.deadline(), Some(Duration::from_secs(10)));
    /// ```
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.options_mut().deadline = (!deadline.is_zero()).then_some(deadline);
        self
    }

    /// Whether a GET body that breaks off is continued where it stopped (on by default):
    /// when the response had a strong validator, the reply sends `Range: bytes=N-` with
    /// `If-Range`, and a `206` whose `Content-Range` starts at `N` continues the same body. A
    /// `200` instead means the resource changed: the reply fails (unless nothing had arrived).
    /// At most [`MAX_RESUMES`](crate::limits::MAX_RESUMES) times per reply.
    pub fn resume(&self) -> bool {
        self.options().resume
    }

    /// Builder: turns [`resume`](Self::resume) on or off.
    ///
    /// ```
    /// let request = netaccess::Request::new("http://127.0.0.1:8080/big").with_resume(false);
    /// assert!(!request.resume());
    /// ```
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.options_mut().resume = resume;
        self
    }

    /// The connect timeout (TCP and TLS) of connections opened for this request; `None`
    /// (the default): the manager's.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.options().connect_timeout
    }

    /// Builder: sets the [`connect_timeout`](Self::connect_timeout); `Duration::ZERO` means
    /// the manager's.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.options_mut().connect_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// The retry policy of this request; `None` (the default): the manager's.
    pub fn retry_policy(&self) -> Option<&crate::retry::RetryPolicy> {
        self.options().retry_policy.as_ref()
    }

    /// Builder: sets the [`retry_policy`](Self::retry_policy).
    ///
    /// ```
    /// use netaccess::{Request, RetryPolicy};
    /// let request = Request::new("http://127.0.0.1:8080/").with_retry_policy(RetryPolicy::new(2));
    /// assert_eq!(request.retry_policy().unwrap().max_retries(), 2);
    /// ```
    pub fn with_retry_policy(mut self, policy: crate::retry::RetryPolicy) -> Self {
        self.options_mut().retry_policy = Some(policy);
        self
    }

    /// Sets this request's TLS settings (the public setters are in `tls_config.rs`).
    pub(crate) fn set_tls_settings(
        &mut self,
        settings: Option<std::sync::Arc<crate::tls_config::TlsSettings>>,
    ) {
        if settings.is_some() || self.options.is_some() {
            self.options_mut().tls = settings;
        }
    }

    /// This request's own TLS settings; `None`: the manager's.
    pub(crate) fn tls_settings(&self) -> Option<&std::sync::Arc<crate::tls_config::TlsSettings>> {
        self.options().tls.as_ref()
    }

    /// Qt's `Http2AllowedAttribute` (default true): offer HTTP/2 by ALPN over TLS.
    pub fn http2_allowed(&self) -> bool {
        self.http2_allowed
    }

    /// Builder: allow or forbid HTTP/2.
    pub fn with_http2_allowed(mut self, allowed: bool) -> Self {
        self.http2_allowed = allowed;
        self
    }

    /// Qt's `Http2DirectAttribute`: speak HTTP/2 at once (prior knowledge; h2c over cleartext).
    pub fn http2_direct(&self) -> bool {
        self.http2_direct
    }

    /// Builder: HTTP/2 by prior knowledge.
    pub fn with_http2_direct(mut self, direct: bool) -> Self {
        self.http2_direct = direct;
        self
    }

    /// The per-request connection limit (Qt's `QHttp1Configuration` set on a request), if any.
    pub fn max_connections_per_host(&self) -> Option<usize> {
        self.options().max_connections_per_host
    }

    /// Builder: limit of parallel HTTP/1.1 connections for this request's origin. As in Qt, the
    /// first request that reaches an origin fixes its limit while it has connections.
    pub fn with_max_connections_per_host(mut self, n: usize) -> Self {
        self.options_mut().max_connections_per_host = Some(n.max(1));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_map_to_operations_in_any_case() {
        assert_eq!(Operation::from_verb("get"), Some(Operation::Get));
        assert_eq!(Operation::from_verb("Head"), Some(Operation::Head));
        assert_eq!(Operation::from_verb("pUt"), Some(Operation::Put));
        assert_eq!(Operation::from_verb("post"), Some(Operation::Post));
        assert_eq!(Operation::from_verb("DELETE"), Some(Operation::Delete));
        assert_eq!(
            Operation::from_verb("PATCH"),
            Some(Operation::Custom(Method::PATCH))
        );
        assert_eq!(Operation::from_verb("bad verb"), None);
        assert_eq!(Operation::from_verb(""), None);
    }

    #[test]
    fn bad_url_and_header_are_remembered_not_panicked() {
        let r = Request::new("http://[::1");
        assert!(r.url().is_none());
        assert!(r.url_result().unwrap_err().contains("Invalid URL"));
        let r = Request::new("http://x/").with_header("X-Bad", "a\nb");
        assert!(r.invalid_header().unwrap().contains("X-Bad"));
        let r = Request::new("http://x/").with_header("bad name", "v");
        assert!(r.invalid_header().is_some());
    }

    #[test]
    fn options_left_at_their_defaults_and_one_changed_keep_the_others() {
        let plain = Request::new("http://x/");
        assert!(plain.headers().is_empty());
        assert_eq!(plain.max_redirects(), 50);
        assert_eq!(
            plain.max_decoded_size(),
            Some(crate::decode::DEFAULT_MAX_DECODED_SIZE)
        );
        assert!(plain.cache_save_control() && plain.authentication_reuse());
        let changed = plain
            .clone()
            .with_max_redirects(3)
            .with_header("X-A", "1")
            .with_priority(Priority::High);
        assert_eq!(changed.max_redirects(), 3);
        assert_eq!(changed.headers().len(), 1);
        assert_eq!(changed.priority(), Priority::High);
        assert_eq!(
            changed.decompressed_safety_check_threshold(),
            plain.decompressed_safety_check_threshold()
        );
        assert_eq!(changed.max_body_size(), None);
        assert!(changed.invalid_header().is_none());
        assert!(plain.headers().is_empty() && plain.max_redirects() == 50);
    }

    #[test]
    fn priorities_order_high_first() {
        assert!(Priority::High < Priority::Normal && Priority::Normal < Priority::Low);
    }
}
