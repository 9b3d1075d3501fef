//! What a request went through, as it happens and afterwards: the [`Event`]s an
//! [`EventListener`] on the manager hears (OkHttp's `EventListener`), the [`Timings`] every
//! reply keeps (curl's `-w` times), and the `tracing` span each request runs in.
//!
//! The request task records both through one function, `record`: each event sets the time
//! it stands for, goes to the listener if there is one, and becomes a `tracing` debug event
//! in the request's span when that level is on. Without a listener or a subscriber an event
//! costs a clock read and an uncontended lock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use url::Url;

use crate::error::Error;
use crate::reply::{Reply, ReplyShared};

/// One thing that happened to a request, in the order they happen.
///
/// A fresh HTTP request on a new connection goes: `CallStart`, `Dispatched`, `DnsStart`,
/// `DnsEnd`, `ConnectStart`, `ConnectEnd`, `TlsStart`, `TlsEnd` (https), `ConnectionAcquired`,
/// `RequestHeadersSent`, `RequestBodySent`, `ResponseHeaders`, `ResponseBodyEnd`,
/// `ConnectionReleased`, `CallEnd`. On a reused connection the DNS, connect and TLS events
/// are left out (`ConnectionAcquired { reused: true, .. }`). A redirect or a retry adds
/// `Redirect` or `Retry` and then the events of the next attempt; a cached answer adds
/// `CacheHit` (served without the network), `CacheMiss` or `CacheConditionalHit` (a 304, or
/// a stale response served instead of an error).
/// `Canceled` is an `abort()`; `CallFailed` ends a request that failed.
///
/// ```
/// use netaccess::events::Event;
/// let event = Event::Retry { attempt: 2, wait: std::time::Duration::from_millis(100) };
/// assert_eq!(event.name(), "retry");
/// ```
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The request started (it was handed to the manager).
    CallStart,
    /// The scheduler granted the request a connection slot: it left its origin's queue.
    Dispatched,
    /// A host name is being resolved (the DNS cache may answer).
    DnsStart {
        /// The name.
        host: &'a str,
    },
    /// The name resolved.
    DnsEnd {
        /// The name.
        host: &'a str,
        /// Its addresses, in the order they are tried.
        addrs: &'a [SocketAddr],
        /// No resolver was asked: an IP literal, a fixed address
        /// ([`ManagerBuilder::resolve`](crate::ManagerBuilder::resolve)), or the manager's
        /// DNS cache answered.
        resolver_spared: bool,
    },
    /// A TCP connection to one address started (Happy Eyeballs may start several).
    ConnectStart {
        /// The address.
        addr: SocketAddr,
    },
    /// The TCP connection to this address won.
    ConnectEnd {
        /// The address.
        addr: SocketAddr,
    },
    /// The TCP connection to this address failed.
    ConnectFailed {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: &'a std::io::Error,
    },
    /// The TLS handshake started.
    TlsStart,
    /// The TLS handshake finished.
    TlsEnd,
    /// The request has a connection for this attempt.
    ConnectionAcquired {
        /// An idle keep-alive connection (or a multiplexed HTTP/2 one) was used.
        reused: bool,
        /// The address it is connected to (the proxy's, through a proxy), when known.
        remote: Option<SocketAddr>,
    },
    /// The request head was handed to the connection.
    RequestHeadersSent,
    /// The connection took the whole request body (or the request has none).
    RequestBodySent,
    /// A response head arrived.
    ResponseHeaders {
        /// Its status.
        status: StatusCode,
    },
    /// The response body was delivered whole.
    ResponseBodyEnd {
        /// Its length as received (before content codings were undone).
        bytes: u64,
    },
    /// The connection went back to the pool (or was closed).
    ConnectionReleased,
    /// A failed attempt will be sent again after `wait`.
    Retry {
        /// The number of the attempt about to be made (2 for the first retry).
        attempt: u32,
        /// The wait before it.
        wait: Duration,
    },
    /// A redirect is followed.
    Redirect {
        /// The next URL.
        to: &'a Url,
    },
    /// A fresh stored response answers the request: no network.
    CacheHit,
    /// No stored response could answer: the request goes to the network.
    CacheMiss,
    /// A stored response answers after the network was asked: a 304 to its validators, or a
    /// stale response instead of an error (`stale-if-error`).
    CacheConditionalHit,
    /// `abort()` ended the request.
    Canceled,
    /// The request finished (an HTTP error status included).
    CallEnd,
    /// The request failed.
    CallFailed {
        /// The error.
        error: &'a Error,
    },
}

impl Event<'_> {
    /// The event's name in `snake_case` (`"dns_start"`), as in the `tracing` events.
    pub fn name(&self) -> &'static str {
        match self {
            Event::CallStart => "call_start",
            Event::Dispatched => "dispatched",
            Event::DnsStart { .. } => "dns_start",
            Event::DnsEnd { .. } => "dns_end",
            Event::ConnectStart { .. } => "connect_start",
            Event::ConnectEnd { .. } => "connect_end",
            Event::ConnectFailed { .. } => "connect_failed",
            Event::TlsStart => "tls_start",
            Event::TlsEnd => "tls_end",
            Event::ConnectionAcquired { .. } => "connection_acquired",
            Event::RequestHeadersSent => "request_headers_sent",
            Event::RequestBodySent => "request_body_sent",
            Event::ResponseHeaders { .. } => "response_headers",
            Event::ResponseBodyEnd { .. } => "response_body_end",
            Event::ConnectionReleased => "connection_released",
            Event::Retry { .. } => "retry",
            Event::Redirect { .. } => "redirect",
            Event::CacheHit => "cache_hit",
            Event::CacheMiss => "cache_miss",
            Event::CacheConditionalHit => "cache_conditional_hit",
            Event::Canceled => "canceled",
            Event::CallEnd => "call_end",
            Event::CallFailed { .. } => "call_failed",
        }
    }
}

/// Shows the event's name and details; a URL without its password.
impl std::fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())?;
        match self {
            Event::DnsStart { host } => write!(f, " {host}"),
            Event::DnsEnd {
                host,
                addrs,
                resolver_spared,
            } => write!(f, " {host} {addrs:?} resolver_spared={resolver_spared}"),
            Event::ConnectStart { addr } | Event::ConnectEnd { addr } => write!(f, " {addr}"),
            Event::ConnectFailed { addr, error } => write!(f, " {addr}: {error}"),
            Event::ConnectionAcquired { reused, remote } => {
                write!(f, " reused={reused} remote={remote:?}")
            }
            Event::ResponseHeaders { status } => write!(f, " {status}"),
            Event::ResponseBodyEnd { bytes } => write!(f, " {bytes} bytes"),
            Event::Retry { attempt, wait } => write!(f, " attempt {attempt} after {wait:?}"),
            Event::Redirect { to } => write!(f, " {}", crate::error::ShownUrl(to)),
            Event::CallFailed { error } => write!(f, " {error}"),
            _ => Ok(()),
        }
    }
}

/// Hears every request's [`Event`]s (OkHttp's `EventListener`); set it with
/// [`ManagerBuilder::event_listener`](crate::ManagerBuilder::event_listener).
///
/// It is called on the request's task, in order, while the request waits for it: keep it
/// short (count, log, or send to a channel).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use netaccess::events::{Event, EventListener};
/// use netaccess::Reply;
///
/// #[derive(Default)]
/// struct Connects(AtomicU64);
///
/// impl EventListener for Connects {
///     fn on_event(&self, _reply: &Reply, event: &Event<'_>) {
///         if let Event::ConnectEnd { .. } = event {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
/// let manager = netaccess::NetworkAccessManager::builder()
///     .event_listener(std::sync::Arc::new(Connects::default()))
///     .build()
///     .unwrap();
/// ```
pub trait EventListener: Send + Sync + 'static {
    /// `event` happened to the request of `reply`.
    fn on_event(&self, reply: &Reply, event: &Event<'_>);
}

/// When each phase of a request ended, as the time since it started (`get()` and the other
/// verbs), the way curl's `-w` reports them; `None` for a phase the request did not go
/// through. With redirects and retries each field is the latest attempt's, except `queued`
/// (the first). The values never decrease in the order of the fields.
///
/// ```
/// let timings = netaccess::events::Timings::default();
/// assert_eq!(timings.total, None);
/// assert!(!timings.reused_connection);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// It left its origin's queue: a connection slot was granted.
    pub queued: Option<Duration>,
    /// The host name was resolved (curl's `time_namelookup`).
    pub dns_done: Option<Duration>,
    /// TCP connected (`time_connect`).
    pub connected: Option<Duration>,
    /// The TLS handshake finished (`time_appconnect`).
    pub tls_done: Option<Duration>,
    /// The request and its body were written (`time_pretransfer`, a little later).
    pub request_sent: Option<Duration>,
    /// The response head arrived (`time_starttransfer`).
    pub first_byte: Option<Duration>,
    /// The reply finished (`time_total`).
    pub total: Option<Duration>,
    /// The last attempt used a connection that was open already.
    pub reused_connection: bool,
    /// The number of connections this request opened (`num_connects`).
    pub connects: u32,
    /// The address of the last attempt's connection (the proxy's, through a proxy).
    pub remote_addr: Option<SocketAddr>,
    /// The HTTP version of the response.
    pub protocol: Option<http::Version>,
}

/// Records `event` for the request of `reply`: the time it stands for in the reply's
/// [`Timings`], then the listener (if any), then a `tracing` debug event (if that level is
/// on) in the request's span.
pub(crate) fn record(
    reply: &Arc<ReplyShared>,
    listener: Option<&Arc<dyn EventListener>>,
    event: Event<'_>,
) {
    if let Event::ConnectionAcquired { reused, remote } = event {
        reply.update_timings(|t| {
            t.reused_connection = reused;
            t.remote_addr = remote;
        });
    }
    let timed = matches!(
        event,
        Event::Dispatched
            | Event::DnsEnd { .. }
            | Event::ConnectEnd { .. }
            | Event::TlsEnd
            | Event::RequestBodySent
            | Event::ResponseHeaders { .. }
            | Event::CallEnd
            | Event::CallFailed { .. }
            | Event::Canceled
    );
    let traced = tracing::enabled!(tracing::Level::DEBUG);
    if !timed && listener.is_none() && !traced {
        return; // nothing to record: not even a clock read
    }
    let at = reply.with_timings(|at, t| match event {
        Event::Dispatched if t.queued.is_none() => t.queued = Some(at),
        Event::DnsEnd { .. } => t.dns_done = Some(at),
        Event::ConnectEnd { .. } => {
            t.connected = Some(at);
            t.connects += 1;
        }
        Event::TlsEnd => t.tls_done = Some(at),
        Event::RequestBodySent => t.request_sent = Some(at),
        Event::ResponseHeaders { .. } => t.first_byte = Some(at),
        Event::CallEnd | Event::CallFailed { .. } | Event::Canceled => t.total = Some(at),
        _ => {}
    });
    if let Some(listener) = listener {
        listener.on_event(&reply.handle(), &event);
    }
    if traced {
        let at_us = u64::try_from(at.as_micros()).unwrap_or(u64::MAX);
        tracing::debug!(at_us, "{event:?}");
    }
}
