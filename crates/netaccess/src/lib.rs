//! # netaccess
//!
//! Qt's Network Access API (`QNetworkAccessManager`, `QNetworkRequest`, `QNetworkReply`)
//! rebuilt for async Rust: one [`NetworkAccessManager`] per application, requests queued per
//! origin (at most 6 HTTP/1.1 connections each, by priority, keep-alive reuse, one multiplexed
//! HTTP/2 connection where ALPN offers it), replies with Qt's signals *and* `async` forms.
//!
//! ```no_run
//! use netaccess::{NetworkAccessManager, Priority, Request};
//!
//! # async fn demo() -> Result<(), netaccess::Error> {
//! let manager = NetworkAccessManager::new();
//! manager.finished().connect(|reply| println!("{} {:?}", reply.url(), reply.status()));
//!
//! let reply = manager.get(
//!     Request::new("https://example.org/")
//!         .with_header("User-Agent", "MyOwnBrowser 1.0")
//!         .with_priority(Priority::High),
//! );
//! reply.error_occurred().connect(|(_reply, error)| eprintln!("{error}"));
//! let body = reply.bytes().await?; // the same reply, awaited
//! # Ok(()) }
//! ```
//!
//! Without a tokio runtime, a manager runs its requests on a small runtime of its own; replies
//! can still be awaited from any executor, or read from signal slots.
//!
//! The mapping of every Qt class, function, signal, attribute and error code is in
//! `docs/qt-mapping.md`.

#![warn(missing_docs)]
// Nothing derived from input may panic: every `unwrap`/`expect` left is an invariant, allowed
// where it stands with the reason (see docs/reliability.md).
#![warn(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;
mod auth;
mod backend;
pub mod blocking;
mod cache;
mod context;
mod cookies;
mod decode;
mod error;
mod hsts;
mod interceptor;
mod manager;
mod multipart;
mod persist;
mod pipeline;
mod proxy;
mod redirect;
mod reply;
mod request;
mod rest;
mod retry;
mod scheduler;
mod signal;
mod transport;
mod upload;

pub use auth::{
    parse_challenge_str, parse_challenges, respond, select_challenge, AuthResponse, AuthScheme,
    AuthState, AuthTarget, AuthenticationRequest, Authenticator, CachedCredentials, Challenge,
    CredentialCache, DigestAlgorithm, ProtectionSpace,
};
pub use cache::{
    policy as cache_policy, vary_matches, Cache, CacheFuture, CacheKey, CacheLoadControl,
    CacheMetadata, CacheWriter, CachedBody, CachedBodyStream, CachedEntry, DiskCache, MemoryCache,
    DEFAULT_CACHE_SAVE_CONTROL, DEFAULT_DISK_CACHE_SIZE, DEFAULT_MEMORY_CACHE_SIZE,
};
pub use cookies::{Cookie, CookieJar, CookieParseError, DefaultCookieJar, SameSite};
pub use decode::{
    DEFAULT_DECOMPRESSED_SAFETY_CHECK_THRESHOLD, DEFAULT_MAX_DECODED_SIZE, MAX_CODINGS,
};
pub use error::{display_url, Error, NetworkError, Result};
pub use hsts::{HstsPolicy, HstsStore};
pub use interceptor::{
    AfterHead, BeforeSend, BoxFuture, InterceptedRequest, InterceptedResponse, Interceptor,
    SyntheticResponse, MAX_INTERCEPTOR_RETRIES,
};

// The crates whose types appear in this API, so users need not pin matching versions.
pub use bytes;
pub use http;
pub use manager::{
    ManagerBuilder, NetworkAccessManager, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS_PER_HOST, DEFAULT_USER_AGENT,
};
pub use multipart::{MultiPart, MultiPartKind, Part};
pub use proxy::{
    EnvProxyFactory, NoProxyRules, Proxy, ProxyFactory, ProxyKind, ProxyParseError,
    DEFAULT_HTTP_PROXY_PORT, DEFAULT_SOCKS5_PORT,
};
pub use redirect::RedirectPolicy;
pub use reply::{BodyReader, BodyStream, Meta, Reply, DEFAULT_STREAM_READ_BUFFER};
pub use request::{CookieControl, Operation, Priority, Request};
pub use rest::RequestFactory;
pub use retry::{RetryPolicy, DEFAULT_RETRY_STATUSES, RETRY_BUDGET_RESERVE};
pub use signal::{Connection, NextEmission, Signal, SignalStream};
pub use transport::dns::{Resolve, SystemResolver, DEFAULT_DNS_CACHE_TTL, DNS_CACHE_MAX_NAMES};
pub use transport::tls::{SslError, SslErrorKind};
pub use upload::Body;
pub use url;
