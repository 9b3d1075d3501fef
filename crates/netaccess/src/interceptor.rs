//! Interceptors: ordered async hooks a manager runs on every attempt of every request
//! (redirects, authentication rounds and retries included). Qt's `createRequest()` made
//! composable, with OkHttp's interceptors as the model.
//!
//! [`Interceptor::before_send`] sees each attempt just before it goes out: it may change its
//! headers (sign it, add a token) or answer it itself with a [`SyntheticResponse`] (tests,
//! offline modes). [`Interceptor::after_head`] sees each response head: it may ask for the
//! attempt to be sent again ([`AfterHead::Retry`]), e.g. after refreshing a token on a 401;
//! `before_send` then runs again. Interceptors run in the order they were added, both hooks.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use netaccess::{AfterHead, BeforeSend, BoxFuture, InterceptedRequest, InterceptedResponse,
//!     Interceptor, NetworkAccessManager};
//!
//! /// Sends the current token; on a 401, refreshes it once and tries again.
//! struct Token(Mutex<String>);
//!
//! impl Interceptor for Token {
//!     fn before_send<'a>(&'a self, request: &'a mut InterceptedRequest) -> BoxFuture<'a, BeforeSend> {
//!         Box::pin(async move {
//!             let token = format!("Bearer {}", self.0.lock().unwrap());
//!             request.set_header("authorization", &token);
//!             BeforeSend::Send
//!         })
//!     }
//!     fn after_head<'a>(&'a self, response: &'a InterceptedResponse<'a>) -> BoxFuture<'a, AfterHead> {
//!         Box::pin(async move {
//!             if response.status() == 401 && response.attempt() == 1 {
//!                 *self.0.lock().unwrap() = "fresh".into(); // a real one would ask its server
//!                 return AfterHead::Retry;
//!             }
//!             AfterHead::Continue
//!         })
//!     }
//! }
//!
//! let manager = NetworkAccessManager::builder()
//!     .interceptor(Arc::new(Token(Mutex::new("stale".into()))))
//!     .build().unwrap();
//! ```

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use url::Url;

/// A boxed future, as the interceptor hooks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`Interceptor::before_send`] decided.
#[derive(Debug)]
#[non_exhaustive]
pub enum BeforeSend {
    /// Send the attempt (with any changes made to it).
    Send,
    /// Answer it with this response; nothing is sent.
    Respond(SyntheticResponse),
}

/// What [`Interceptor::after_head`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterHead {
    /// Let the response go on (to authentication, the cache, redirects, the reply).
    Continue,
    /// Drop this response and send the attempt again (at most [`MAX_INTERCEPTOR_RETRIES`]
    /// times per request; then the response goes on).
    Retry,
}

/// How many times interceptors may ask for a request to be sent again.
pub const MAX_INTERCEPTOR_RETRIES: u32 = 3;

/// A hook on every attempt of a manager's requests. Both methods default to doing nothing.
pub trait Interceptor: Send + Sync + 'static {
    /// Runs just before an attempt is sent.
    fn before_send<'a>(&'a self, request: &'a mut InterceptedRequest) -> BoxFuture<'a, BeforeSend> {
        let _ = request;
        Box::pin(async { BeforeSend::Send })
    }

    /// Runs when a response head arrives, before the manager's own stages see it.
    fn after_head<'a>(&'a self, response: &'a InterceptedResponse<'a>) -> BoxFuture<'a, AfterHead> {
        let _ = response;
        Box::pin(async { AfterHead::Continue })
    }
}

/// An attempt about to be sent, as an interceptor sees it: its URL and method, and headers
/// it may change. `Host` is added later, by the connection.
#[derive(Debug)]
pub struct InterceptedRequest {
    pub(crate) url: Url,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) attempt: u32,
}

impl InterceptedRequest {
    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The headers that will be sent.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Sets a header, replacing any of that name. An invalid name or value is ignored and
    /// reported as `false`.
    pub fn set_header(&mut self, name: &str, value: &str) -> bool {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
                true
            }
            _ => false,
        }
    }

    /// Which attempt of the request this is, from 1 (redirects, authentication rounds and
    /// retries each add one).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// A response head, as an interceptor sees it.
#[derive(Debug)]
pub struct InterceptedResponse<'a> {
    pub(crate) url: &'a Url,
    pub(crate) method: &'a Method,
    pub(crate) status: StatusCode,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) attempt: u32,
}

impl InterceptedResponse<'_> {
    /// The URL the attempt went to.
    pub fn url(&self) -> &Url {
        self.url
    }

    /// The attempt's method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// Which attempt this answers, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// A response an interceptor makes up (for tests, offline modes, short-circuits). The reply
/// shows it as it would a server's: status, headers (a `Content-Length` is added), body.
///
/// ```
/// use netaccess::SyntheticResponse;
/// let canned = SyntheticResponse::new(200, "{\"ok\":true}")
///     .with_header("content-type", "application/json");
/// assert_eq!(canned.status(), 200);
/// ```
#[derive(Debug, Clone)]
pub struct SyntheticResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl SyntheticResponse {
    /// A response with this status (an invalid code becomes 500) and body.
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        SyntheticResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// With a header (an invalid name or value is left out).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.append(name, value);
        }
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}
