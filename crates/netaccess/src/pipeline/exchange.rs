//! One attempt on one connection: a slot from the scheduler (or the one granted while the
//! request waited in its origin's queue), a connection from the connector when the slot
//! needs one, the request sent and its response head received. Retries only what is safe
//! to send again: an idempotent request on a reused connection that failed before any
//! response byte (once), and an HTTP/2 request the server did not process.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, HeaderValue};
use hyper::body::Incoming;

use super::attempt::{Attempt, Head};
use super::{auth, Granted};
use crate::backend::http::{self as wire, HttpConn, OnSent, Outgoing, Unprocessed};
use crate::context::Context;
use crate::error::{Error, NetworkError, ShownUrl};
use crate::events::Event;
use crate::proxy::Proxy;
use crate::reply::ReplyShared;
use crate::scheduler::{Checkout, Grant, Origin};
use crate::transport::connect::{ConnectEvents, Connector};
use crate::transport::tls::{IgnoreSsl, SslError, TlsSession};
use crate::upload::{Activity, ProgressFn};

/// How often an HTTP/2 request the server left unprocessed is sent again.
const MAX_UNPROCESSED_RETRIES: u32 = 4;

/// A response head on its connection, before the body is read.
pub(crate) struct Exchange {
    pub response: http::Response<Incoming>,
    pub checkout: Checkout<HttpConn>,
    pub encrypted: bool,
    pub http2: bool,
    pub tls_session: Option<TlsSession>,
    /// Encrypted, with no certificate error ignored: where HSTS may be learned.
    pub secure_channel: bool,
    /// When the request was sent (RFC 9111's `request_time`); read only with a cache.
    pub sent_at: Option<SystemTime>,
}

/// The request's relation to connections across its attempts.
pub(crate) struct Link {
    /// A slot granted while the request waited as data, for its first attempt.
    granted: Option<Granted>,
    /// `encrypted` was emitted already.
    announced_encrypted: bool,
}

impl Link {
    pub(super) fn new(granted: Option<Granted>) -> Self {
        Link {
            granted,
            announced_encrypted: false,
        }
    }
}

impl Exchange {
    /// The response head.
    pub(super) fn head(&self) -> Head<'_> {
        Head {
            status: self.response.status(),
            headers: self.response.headers(),
        }
    }

    /// Drops the body (a redirect's, a challenge's): the connection goes back to the pool
    /// when the body was short and whole, and is closed otherwise.
    pub(super) async fn discard(
        self,
        ctx: &Context,
        reply: &Arc<ReplyShared>,
        timeout: Option<Duration>,
    ) {
        let Exchange {
            response,
            mut checkout,
            ..
        } = self;
        if wire::discard_body(response.into_body(), timeout).await {
            let reusable = !checkout.conn().single_use;
            checkout.release(reusable);
        } else {
            drop(checkout);
        }
        ctx.event(reply, Event::ConnectionReleased);
    }
}

/// Sends `attempt` and waits for its response head.
pub(super) async fn send(
    ctx: &Context,
    reply: &Arc<ReplyShared>,
    attempt: &Attempt,
    timeout: Option<Duration>,
    link: &mut Link,
) -> Result<Exchange, Error> {
    let request = reply.request();
    let url = &attempt.target.url;
    super::check_http_url(url)?;
    let proxy = ctx.proxy_for(url);
    // A slot granted while the request waited as data serves its first attempt, if the
    // origin is still the one it waited for; otherwise it goes back to the pool here.
    let (origin, mut granted) = match link.granted.take().map(|granted| *granted) {
        Some((waited, grant)) if waited.is_for(url, request, proxy.as_ref()) => {
            (waited, Some(grant))
        }
        _ => (Origin::for_url(url, request, proxy)?, None),
    };
    let mut retried = false;
    let mut unprocessed_retries = 0;
    loop {
        let sent_at = ctx.config.cache.is_some().then(SystemTime::now);
        let grant = match granted.take() {
            Some(grant) => grant,
            None => {
                let limit = request.max_connections_per_host();
                ctx.pool.acquire(&origin, request.priority(), limit).await
            }
        };
        ctx.event(reply, Event::Dispatched);
        let (mut checkout, reused) = match grant {
            Grant::Reuse(checkout) => (checkout, true),
            Grant::Connect(permit) => {
                // On failure the permit drops here and frees the slot for the next waiter.
                // Boxed: the connect path is large and rare.
                let conn = Box::pin(open_connection(ctx, reply, &origin)).await?;
                (permit.connected(conn), false)
            }
        };
        if checkout.was_reused() && !checkout.conn().ready_for_reuse().await {
            // Still sending the body of a request answered early: state unknown.
            tracing::debug!(url = %ShownUrl(url), "idle connection not ready for a new request; using another");
            continue;
        }
        let remote = checkout.conn().remote;
        ctx.event(reply, Event::ConnectionAcquired { reused, remote });
        let encrypted = checkout.conn().encrypted;
        let http2 = checkout.conn().is_http2();
        if encrypted && !link.announced_encrypted {
            link.announced_encrypted = true;
            reply.announce_encrypted();
        }
        let activity = Arc::new(Activity::default());
        let outgoing = Outgoing {
            method: attempt.target.operation.method(),
            url,
            headers: &attempt.headers,
            body: &attempt.target.body,
            absolute_form: origin.absolute_form(),
        };
        let progress = upload_progress(reply);
        let built = outgoing.build(http2, progress, activity.clone(), Some(on_sent(ctx, reply)))?;
        ctx.event(reply, Event::RequestHeadersSent);
        let sending = checkout.conn().send(built);
        let sent = super::boxed(|| wire::while_active(timeout, &activity, sending)).await?;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                // HTTP/2: a request the server left unprocessed (REFUSED_STREAM, above the
                // GOAWAY's last-stream-id) is sent again whatever its method, a few times.
                let unprocessed = http2.then(|| wire::unprocessed(&e)).flatten();
                if unprocessed == Some(Unprocessed::GoAway) {
                    checkout.conn().retire(); // no new request goes to a closing connection
                }
                if unprocessed.is_some()
                    && unprocessed_retries < MAX_UNPROCESSED_RETRIES
                    && attempt.target.body.is_replayable()
                {
                    tracing::debug!(url = %ShownUrl(url), error = %e, "HTTP/2 request left unprocessed by the server; sending it again");
                    drop(checkout);
                    if unprocessed == Some(Unprocessed::Refused) {
                        // A refusing server is busy: back off 10, 20, 40, 80 ms.
                        let pause = Duration::from_millis(10 << unprocessed_retries);
                        tokio::time::sleep(pause).await;
                    }
                    unprocessed_retries += 1;
                    continue;
                }
                let stream_error = http2 && wire::is_stream_error(&e);
                let retry = checkout.was_reused()
                    && !retried
                    && !stream_error
                    && unprocessed.is_none()
                    && attempt.target.operation.is_idempotent();
                drop(checkout); // broken: frees its slot
                if retry {
                    tracing::debug!(url = %ShownUrl(url), error = %e, "reused connection failed before the response; retrying once");
                    retried = true;
                    continue;
                }
                return Err(wire::map_hyper_error(e, true));
            }
        };
        checkout.response_head_received(); // HTTP/2: the stream slot goes to the next waiter
        let status = response.status();
        ctx.event(reply, Event::ResponseHeaders { status });
        if let Some(refused) = wire::refused_response(&response) {
            return Err(refused); // dropping the checkout closes the connection
        }
        let tls_session = checkout.conn().tls_session.clone();
        let secure_channel = encrypted && !checkout.conn().certificate_errors_ignored;
        return Ok(Exchange {
            response,
            checkout,
            encrypted,
            secure_channel,
            http2,
            tls_session,
            sent_at,
        });
    }
}

/// Emits the reply's `request_sent` (and the `RequestBodySent` event) once the connection
/// has taken the whole request.
fn on_sent(ctx: &Context, reply: &Arc<ReplyShared>) -> OnSent {
    let weak = Arc::downgrade(reply);
    let listener = ctx.config.event_listener.clone();
    Box::new(move || {
        if let Some(reply) = weak.upgrade() {
            crate::events::record(&reply, listener.as_ref(), Event::RequestBodySent);
            reply.signals.request_sent.emit(&reply.handle());
        }
    })
}

/// Upload progress reports for the reply, when a slot listens for them.
fn upload_progress(reply: &Arc<ReplyShared>) -> Option<ProgressFn> {
    (reply.signals.upload_progress.receivers() > 0).then(|| {
        let weak = Arc::downgrade(reply);
        Arc::new(move |sent: u64, total: Option<u64>| {
            if let Some(r) = weak.upgrade() {
                r.report_upload_progress((sent, total));
            }
        }) as ProgressFn
    })
}

/// A new connection to `origin` for `reply`: the connector, then the HTTP handshake.
async fn open_connection(
    ctx: &Context,
    reply: &Arc<ReplyShared>,
    origin: &Origin,
) -> Result<HttpConn, Error> {
    reply
        .signals
        .socket_started_connecting
        .emit(&reply.handle());
    let config = &ctx.config;
    let connect_timeout = reply.request().connect_timeout();
    let connector = Connector {
        timeout: connect_timeout.unwrap_or(config.connect_timeout),
        resolve: &config.resolve,
        tls: &config.tls,
    };
    let events = ReplyEvents {
        ctx,
        reply,
        offered_configured: AtomicBool::new(false),
    };
    let connected = connector.connect(origin, &events).await?;
    let (encrypted, ssl_errors) = (connected.encrypted, connected.ssl_errors);
    let mut conn =
        HttpConn::handshake(connected.io, connected.http2, encrypted, &config.http2).await?;
    conn.tls_session = connected.tls_session;
    conn.single_use = !ssl_errors.is_empty() && !config.tls.ignores_all();
    conn.certificate_errors_ignored = !ssl_errors.is_empty();
    conn.remote = connected.remote;
    Ok(conn)
}

/// Opens a connection to the reply's origin and leaves it idle in the pool (Qt's
/// `connectToHost`).
pub(super) async fn open_ahead(
    ctx: &Context,
    reply: &Arc<ReplyShared>,
) -> Result<Option<Error>, Error> {
    let url = reply
        .request()
        .url_result()
        .map_err(|m| Error::new(NetworkError::ProtocolUnknownError, m))?;
    let origin = Origin::for_url(url, reply.request(), ctx.proxy_for(url))?;
    let priority = reply.request().priority();
    let checkout = match ctx.pool.acquire(&origin, priority, None).await {
        Grant::Reuse(checkout) => checkout,
        Grant::Connect(permit) => {
            let conn = Box::pin(open_connection(ctx, reply, &origin)).await?;
            permit.connected(conn)
        }
    };
    checkout.release(true);
    Ok(None)
}

/// What the connector asks of a reply: its `ssl_errors` signals, the errors it ignores,
/// and proxy credentials for a CONNECT.
struct ReplyEvents<'a> {
    ctx: &'a Context,
    reply: &'a Arc<ReplyShared>,
    /// The proxy's own credentials were offered (they are tried once per connection).
    offered_configured: AtomicBool,
}

impl ConnectEvents for ReplyEvents<'_> {
    fn observe(&self, event: Event<'_>) {
        self.ctx.event(self.reply, event);
    }

    fn ssl_errors(&self, errors: &[SslError]) {
        let event = (self.reply.handle(), errors.to_vec());
        self.reply.signals.ssl_errors.emit(&event);
        self.reply.manager_signals().ssl_errors.emit(&event);
    }

    fn ignored_ssl_errors(&self) -> IgnoreSsl {
        self.reply.ssl_errors_ignored()
    }

    fn proxy_challenge<'a>(
        &'a self,
        proxy: &'a Proxy,
        headers: &'a HeaderMap,
        target: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<HeaderValue>> + Send + 'a>> {
        let digest = auth::DigestInput {
            method: "CONNECT",
            target,
            body: Some(b""),
        };
        Box::pin(auth::answer_proxy(
            self.reply,
            proxy,
            headers,
            digest,
            &self.offered_configured,
        ))
    }
}
