//! The attempt loop: the only place that orders the stages of an HTTP request.
//!
//! A [`Target`] is what the request asks for as follow-ups (redirects) changed it. Each pass
//! builds one [`Attempt`] from it (the URL after the HSTS upgrade, the headers it sends with
//! the jar's cookies, the cache's validators and the credentials), sends it, and asks the
//! stages what the response head means: one [`Step`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use url::Url;

use super::exchange::{self, Exchange};
use super::{auth, cache, deliver, intercept, retry, session, Granted};
use crate::context::Context;
use crate::decode;
use crate::error::{url_for_message, Error, NetworkError};
use crate::events::Event;
use crate::redirect::{self, Hop, RedirectPolicy};
use crate::reply::ReplyShared;
use crate::request::{Operation, Request};
use crate::upload::Body;

/// What the request asks for: the application's, as redirects changed it.
pub(crate) struct Target {
    pub url: Url,
    pub operation: Operation,
    /// The application's headers (minus what a redirect stripped).
    pub headers: HeaderMap,
    pub body: Body,
}

/// One pass of the loop: a target and every header it goes out with, but `Host` (which the
/// backend adds for HTTP/1.1). Stages add headers by making a new attempt ([`Attempt::with`]);
/// once sent, an attempt does not change.
pub(crate) struct Attempt {
    pub target: Target,
    pub headers: HeaderMap,
}

/// A response head as the stages see it.
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
}

/// What a response head means.
pub(crate) enum Step {
    /// Deliver this response.
    Deliver,
    /// Send the same target again (an answered challenge, a validator the cache lost).
    Retry,
    /// Send the same target again after this wait (a retryable status).
    Wait(Duration),
    /// Follow a redirect (boxed, as the stored answer: a step is moved a few times on every
    /// request, and these two are rare and large).
    Follow(Box<Redirect>),
    /// Answer with a stored response (a 304, or a stale one instead of a 5xx).
    Stored(Box<cache::Stored>),
    /// End the reply with this error.
    Fail(Error),
}

/// A redirect to follow.
pub(crate) struct Redirect {
    pub target: Target,
    /// `RedirectPolicy::UserVerified`: wait for the application's permission.
    pub ask_first: bool,
}

/// What lasts across the attempts of one request.
pub(super) struct Journey {
    followed: u32,
    timeout: Option<Duration>,
    policy: RedirectPolicy,
    auth: auth::Progress,
    link: exchange::Link,
    /// Attempts made so far (the interceptors see the number).
    attempts: u32,
    /// Retries the interceptors asked for.
    interceptor_retries: u32,
    retries: retry::Retries,
}

/// Runs an HTTP request through as many attempts as its follow-ups need.
pub(super) async fn run(
    ctx: &Context,
    reply: &Arc<ReplyShared>,
    mut target: Target,
    granted: Option<Granted>,
) -> Result<Option<Error>, Error> {
    let request = reply.request();
    let mut journey = Journey::new(ctx, request, granted);
    loop {
        target = upgrade(ctx, reply, target);
        let cookies = session::cookies(ctx, request, &target.url);
        let attempt = Attempt::new(target, cookies, ctx.config.user_agent.as_ref())?;
        // The cache and interceptor stages are boxed, and skipped when there is no cache or
        // interceptor: an awaited future is copied into this loop's state, on every request.
        let before = match ctx.config.cache {
            None => cache::Before::Send(attempt, None),
            Some(_) => super::boxed(|| cache::before(ctx, reply, attempt)).await?,
        };
        let (attempt, revalidating) = match before {
            cache::Before::Hit(stored) => return answer(ctx, reply, stored, HIT).await,
            cache::Before::Completed(stored) => {
                return answer(ctx, reply, stored, CONDITIONAL).await
            }
            cache::Before::Send(attempt, revalidating) => (attempt, revalidating),
        };
        let attempt = journey.auth.before(ctx, reply, attempt);
        journey.attempts += 1;
        let intercepted = if ctx.config.interceptors.is_empty() {
            intercept::Before::Send(attempt)
        } else {
            super::boxed(|| intercept::before(ctx, attempt, journey.attempts)).await
        };
        let attempt = match intercepted {
            intercept::Before::Send(attempt) => attempt,
            intercept::Before::Respond(answer, url) => {
                return super::boxed(|| intercept::respond(reply, &url, answer)).await;
            }
        };
        let retry_policy = request.retry_policy().unwrap_or(&ctx.config.retry_policy);
        if journey.attempts == 1 {
            journey.retries.first_attempt(ctx, retry_policy, &attempt);
        }
        let exchange = exchange::send(ctx, reply, &attempt, journey.timeout, &mut journey.link);
        let exchange = match exchange.await {
            Ok(exchange) => exchange,
            Err(error) => {
                let retries = &mut journey.retries;
                let wait = match retries.after_failure(ctx, retry_policy, &attempt, error) {
                    Ok(wait) => wait,
                    // No answer at all: a stale copy may stand in (stale-if-error).
                    Err(e) => match cache::on_failure(ctx, &attempt, revalidating) {
                        Some(stored) => return answer(ctx, reply, stored, STALE).await,
                        None => return Err(e),
                    },
                };
                journey.wait_to_retry(ctx, reply, wait).await;
                target = attempt.target;
                continue;
            }
        };
        let head = exchange.head();
        let secure = exchange.secure_channel;
        session::remember(ctx, request, &attempt.target.url, head.headers, secure);
        let step =
            super::boxed(|| journey.decide(ctx, reply, &attempt, &exchange, revalidating)).await;
        let timeout = journey.timeout;
        target = match step? {
            Step::Deliver => {
                let writer = cache::writer(ctx, reply, &attempt, &exchange);
                let delivery = || deliver::network(ctx, reply, &attempt, exchange, timeout, writer);
                return super::boxed(delivery).await;
            }
            Step::Stored(stored) => {
                exchange.discard(ctx, reply, timeout).await;
                return answer(ctx, reply, *stored, CONDITIONAL).await;
            }
            Step::Retry => {
                exchange.discard(ctx, reply, timeout).await;
                attempt.target
            }
            Step::Wait(wait) => {
                exchange.discard(ctx, reply, timeout).await;
                journey.wait_to_retry(ctx, reply, wait).await;
                attempt.target
            }
            Step::Follow(redirect) => {
                exchange.discard(ctx, reply, timeout).await;
                journey.follow(ctx, reply, *redirect).await
            }
            Step::Fail(e) => return Err(e),
        };
    }
}

/// A stored response answers: a fresh hit (`CacheHit`, no request reached the server), a 304
/// or a completed range (`CacheConditionalHit`), or a stale copy standing in for an error.
async fn answer(
    ctx: &Context,
    reply: &Arc<ReplyShared>,
    stored: cache::Stored,
    (event, from_cache): (Event<'static>, bool),
) -> Result<Option<Error>, Error> {
    ctx.event(reply, event);
    Box::pin(stored.deliver(reply, from_cache)).await
}

/// How [`answer`] tells and marks a 304's or a completed range's answer, and a stale copy's.
const HIT: (Event<'static>, bool) = (Event::CacheHit, true);
const CONDITIONAL: (Event<'static>, bool) = (Event::CacheConditionalHit, false);
const STALE: (Event<'static>, bool) = (Event::CacheConditionalHit, true);

/// The target after the HSTS upgrade, which the reply's URL shows.
fn upgrade(ctx: &Context, reply: &ReplyShared, target: Target) -> Target {
    let Some(url) = session::upgrade(ctx, &target.url).filter(|url| *url != target.url) else {
        return target;
    };
    reply.set_url(url.clone());
    Target { url, ..target }
}

impl Journey {
    fn new(ctx: &Context, request: &Request, granted: Option<Granted>) -> Self {
        Journey {
            followed: 0,
            timeout: request
                .transfer_timeout()
                .filter(|t| !t.is_zero())
                .or(ctx.config.transfer_timeout),
            policy: request
                .redirect_policy()
                .unwrap_or(ctx.config.redirect_policy),
            auth: auth::Progress::default(),
            link: exchange::Link::new(granted),
            attempts: 0,
            interceptor_retries: 0,
            retries: retry::Retries::default(),
        }
    }

    /// Announces the next attempt (the `Retry` event, `retrying`) and waits `wait` for it.
    async fn wait_to_retry(&self, ctx: &Context, reply: &Arc<ReplyShared>, wait: Duration) {
        let attempt = self.attempts + 1;
        ctx.event(reply, Event::Retry { attempt, wait });
        reply.note_retry(wait);
        tokio::time::sleep(wait).await;
    }

    /// The stages after a response head, in order: interceptors, retries, authentication,
    /// the cache, redirects.
    async fn decide(
        &mut self,
        ctx: &Context,
        reply: &Arc<ReplyShared>,
        attempt: &Attempt,
        exchange: &Exchange,
        revalidating: Option<crate::cache::CachedEntry>,
    ) -> Result<Step, Error> {
        let head = exchange.head();
        let (number, retries) = (self.attempts, &mut self.interceptor_retries);
        if let Some(step) = intercept::after(ctx, attempt, head, number, retries).await {
            return Ok(step);
        }
        let retry_policy = reply.request().retry_policy();
        let retry_policy = retry_policy.unwrap_or(&ctx.config.retry_policy);
        if let Some(step) = self.retries.after_head(ctx, retry_policy, attempt, head) {
            return Ok(step);
        }
        if let Some(step) = self.auth.after(ctx, reply, attempt, head).await {
            return Ok(step);
        }
        let sent_at = exchange.sent_at.unwrap_or_else(SystemTime::now);
        if let Some(step) = cache::after(ctx, attempt, head, revalidating, sent_at).await {
            return Ok(step);
        }
        Ok(self.redirect(reply.request(), attempt, head))
    }

    /// The redirect stage: deliver, follow, or fail (policy, limit, bad target).
    pub(super) fn redirect(&self, request: &Request, attempt: &Attempt, head: Head<'_>) -> Step {
        let location = head
            .headers
            .get(header::LOCATION)
            .map(|v| redirect::location_text(v.as_bytes()));
        let target = &attempt.target;
        let hop = redirect::next_hop(
            self.policy,
            &target.url,
            head.status,
            location.as_deref(),
            &target.operation,
            self.followed,
            request.max_redirects(),
        );
        match hop {
            Hop::Deliver => Step::Deliver,
            Hop::Fail(e) => Step::Fail(e),
            Hop::Follow {
                url,
                operation,
                drop_body,
                ask_first,
            } => {
                let headers = target.headers.clone();
                let headers = redirect::headers_for_next_hop(headers, &target.url, &url, drop_body);
                let body = if drop_body {
                    Body::empty()
                } else {
                    target.body.clone()
                };
                let target = Target {
                    url,
                    operation,
                    headers,
                    body,
                };
                Step::Follow(Box::new(Redirect { target, ask_first }))
            }
        }
    }

    /// Takes a redirect: the `redirected` signal, the application's permission when the
    /// policy asks for it, the reply's new URL, a fresh start for authentication.
    pub(super) async fn follow(
        &mut self,
        ctx: &Context,
        reply: &Arc<ReplyShared>,
        redirect: Redirect,
    ) -> Target {
        self.followed += 1;
        let next = redirect.target;
        ctx.event(reply, Event::Redirect { to: &next.url });
        reply.signals.redirected.emit(&next.url);
        if redirect.ask_first {
            reply.redirect_permission().await;
        }
        reply.set_url(next.url.clone());
        self.auth = auth::Progress::default();
        next
    }
}

impl Attempt {
    /// The attempt for `target`: its headers with the jar's `cookies` merged into `Cookie`,
    /// and the default `Accept-Encoding`, `User-Agent` and the body's `Content-Type` (a JSON
    /// body's) unless the application set its own.
    pub(crate) fn new(
        target: Target,
        cookies: Option<String>,
        user_agent: Option<&HeaderValue>,
    ) -> Result<Attempt, Error> {
        let mut headers = target.headers.clone();
        if let Some(agent) = user_agent {
            if !headers.contains_key(header::USER_AGENT) {
                headers.insert(header::USER_AGENT, agent.clone());
            }
        }
        if let Some(jar) = cookies {
            let merged = merge_cookie_header(headers.get(header::COOKIE), &jar);
            let value = HeaderValue::from_bytes(&merged).map_err(|e| {
                Error::new(
                    NetworkError::ProtocolInvalidOperationError,
                    format!("Invalid request for {}: {e}", url_for_message(&target.url)),
                )
            })?;
            headers.insert(header::COOKIE, value);
        }
        if !headers.contains_key(header::ACCEPT_ENCODING) {
            let accept = HeaderValue::from_static(decode::ACCEPT_ENCODING);
            headers.insert(header::ACCEPT_ENCODING, accept);
        }
        if let Some(content_type) = target.body.content_type() {
            if !headers.contains_key(header::CONTENT_TYPE) {
                let value = HeaderValue::from_static(content_type);
                headers.insert(header::CONTENT_TYPE, value);
            }
        }
        Ok(Attempt { target, headers })
    }

    /// This attempt with one more header (replacing any of that name).
    pub(crate) fn with(mut self, name: HeaderName, value: HeaderValue) -> Attempt {
        self.headers.insert(name, value);
        self
    }

    /// The method, request-target and (in-memory) body that Digest authentication hashes.
    pub(crate) fn digest_inputs(&self) -> (String, String, Option<bytes::Bytes>) {
        let url = &self.target.url;
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let target = if target.is_empty() { "/" } else { target };
        (
            self.target.operation.method().to_string(),
            target.to_owned(),
            self.target.body.in_memory(),
        )
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

/// Refuses, before any socket opens, a URL that HTTP cannot carry: one the `http` crate's
/// `Uri` rejects (longer than 65,534 bytes, a host with characters outside RFC 3986), whether
/// the application gave it or a redirect did.
pub(crate) fn check_http_url(url: &Url) -> Result<(), Error> {
    let host = url.host_str().unwrap_or_default();
    // The common case needs no copy: a short URL whose host has only the characters every
    // parser accepts (the url crate already percent-encoded its path and query).
    let plain_host = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if plain_host && url.as_str().len() < 8 * 1024 {
        return Ok(());
    }
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
                url_for_message(url)
            ),
        )),
    }
}

/// What the stage tests need of the loop's private state.
#[cfg(test)]
pub(super) mod tests_support {
    use super::*;

    /// A journey for `request`, with no slot granted.
    pub(crate) fn journey(ctx: &Context, request: &Request) -> Journey {
        Journey::new(ctx, request, None)
    }
}
