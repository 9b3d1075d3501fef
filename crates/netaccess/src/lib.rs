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
//!
//! # Cookbook
//!
//! Runnable programs in `examples/`, each run by the tests against a local server:
//! - `rest_client`: a [`RequestFactory`] with a bearer token, [`Reply::json`] and
//!   [`Body::json`];
//! - `many_downloads`: 1,000 downloads through one manager, with progress and priorities;
//! - `ui_channel`: slots that hand results to a UI thread through a channel;
//! - `retry_and_timeouts`: a [`RetryPolicy`], transfer and connect timeouts, a deadline;
//! - `token_refresh`: an [`Interceptor`] that refreshes a token after a 401 and retries.
//!
//! # Cargo features
//!
//! All on by default; each one can be left out to build less. HTTP/1.1, HTTP/2, TLS, gzip and
//! deflate, proxies over HTTP, authentication, the [`Cache`] trait and [`MemoryCache`], the
//! in-memory [`DefaultCookieJar`] and [`HstsStore`] are always there.
//!
//! | feature | gives | brings | without it |
//! |---|---|---|---|
//! | `brotli` | `br` response bodies decoded | `brotli`, `brotli-decompressor` | `br` is not offered in `Accept-Encoding`; a `br` response fails with `ProtocolFailure` naming the feature |
//! | `zstd` | `zstd` response bodies decoded | `zstd`, `zstd-safe`, `zstd-sys` (the zstd C library, built with the C compiler: the slowest part of a build) | as `brotli`, for `zstd` |
//! | `socks` | SOCKS5 proxies ([`ProxyKind::Socks5Proxy`], `socks5://`, `socks5h://`) | `tokio-socks` (with `thiserror` 1, `either`) | a request through a SOCKS5 proxy fails with `UnknownProxyError` naming the feature, before anything is connected |
//! | `disk-cache` | `DiskCache` (`QNetworkDiskCache`), `cache::DEFAULT_DISK_CACHE_SIZE` | `crc32fast` | no disk cache; [`MemoryCache`] or an own [`Cache`] |
//! | `cookies` | `DefaultCookieJar::save`, `load`, `load_or_new`; Mozilla's public-suffix list for `Domain` | `psl`, `serde`, `serde_json` | the jar is in memory only, and a `Domain` cookie is kept to the host that set it (no cookie is shared across hosts without the list) |
//! | `hsts` | `HstsStore::save`, `load`, `load_or_new`, `load_preload_list` | `serde`, `serde_json` | the store is in memory only (headers, `add_policies`) |
//! | `blocking` | `netaccess::blocking`, the blocking facade | nothing | no blocking facade |
//! | `json` | `Body::json`, `Reply::json` | `serde`, `serde_json` | JSON bodies are serialised by the application ([`RequestFactory`] stays) |
//! | `hickory` (off) | `HickoryResolver`, an asynchronous DNS client resolver for [`ManagerBuilder::resolver`] | `hickory-resolver` (with `hickory-proto`) | the system's resolver (`getaddrinfo` on a blocking thread), or an own [`Resolve`] |
//! | `platform-verifier` (off) | `ManagerBuilder::use_platform_verifier`: the operating system verifies certificates (its trust store, revocation, user-installed CAs) | `rustls-platform-verifier` (and the platform's bindings) | webpki verifies against the system's root files and the roots added |
//! | `fuzzing` (off) | entry points for `fuzz/` | nothing | (not an API) |
//!
//! ```toml
//! [dependencies]
//! netaccess = { version = "0.1", default-features = false, features = ["cookies"] }
//! ```
//!
//! `docs/dependencies.md` lists every dependency, why it is there, and the build time and
//! dependency count of the default build against `--no-default-features`.

#![warn(missing_docs)]
// Nothing derived from input may panic: every `unwrap`/`expect` left is an invariant, allowed
// where it stands with the reason (see docs/reliability.md).
#![warn(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;
pub mod auth;
mod backend;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod cache;
mod context;
pub mod cookies;
mod decode;
mod error;
pub mod events;
mod hsts;
mod interceptor;
pub mod limits;
mod manager;
mod multipart;
#[cfg(any(feature = "cookies", feature = "hsts", feature = "disk-cache"))]
mod persist;
mod pipeline;
pub mod proxy;
mod rate;
mod redirect;
mod reply;
mod request;
mod rest;
mod retry;
mod scheduler;
mod signal;
mod tls_config;
mod transport;
mod upload;

// The Qt-named types; the machinery behind them (challenge parsing and answers, the cache
// rules and storage types, proxy rules, limits) stays in its module.
pub use auth::{AuthenticationRequest, Authenticator};
#[cfg(feature = "disk-cache")]
pub use cache::DiskCache;
pub use cache::{Cache, CacheLoadControl, MemoryCache};
pub use cookies::{Cookie, CookieJar, DefaultCookieJar, SameSite};
pub use error::{display_url, Error, NetworkError, Result};
pub use hsts::{HstsPolicy, HstsStore};
pub use interceptor::{
    AfterHead, BeforeSend, BoxFuture, InterceptedRequest, InterceptedResponse, Interceptor,
    SyntheticResponse,
};
pub use manager::{ManagerBuilder, NetworkAccessManager};
pub use multipart::{MultiPart, MultiPartKind, Part};
pub use proxy::{EnvProxyFactory, Proxy, ProxyFactory, ProxyKind};
pub use redirect::RedirectPolicy;
pub use reply::{BodyReader, BodyStream, Meta, Reply};
pub use request::{CookieControl, Operation, Priority, Request};
pub use rest::RequestFactory;
pub use retry::RetryPolicy;
pub use signal::{Connection, NextEmission, Signal, SignalStream};
pub use tls_config::{Certificate, SslConfiguration, SslSession, TlsVersion, MAX_ALPN_PROTOCOLS};
pub use transport::dns::{Resolve, SystemResolver};
#[cfg(feature = "hickory")]
pub use transport::hickory::HickoryResolver;
pub use transport::tls::{SslError, SslErrorKind};
pub use upload::Body;

// The crates whose types appear in this API, so users need not pin matching versions.
pub use bytes;
pub use http;
pub use url;
