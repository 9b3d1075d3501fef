//! The authentication stage. Before an attempt: the `Authorization` answering the last
//! challenge, or credentials that worked for this protection space (Qt's
//! AuthenticationReuse), and a proxy's `Proxy-Authorization`. After a response head: a 401
//! or 407 that can be answered sends the request again; credentials that worked are cached.
//! [`answer_proxy`] is the one place proxy credentials are chosen, for absolute-form
//! requests here and for CONNECT tunnels through the connector.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::attempt::{Attempt, Head, Step};
use crate::auth::{
    parse_challenges, respond, select_challenge, AuthState, AuthenticationRequest, Authenticator,
    ProtectionSpace,
};
use crate::context::Context;
use crate::proxy::{Proxy, ProxyKind};
use crate::reply::ReplyShared;

/// Challenges answered for one URL before the response is delivered as it is.
const MAX_ROUNDS: u8 = 10;
/// Proxy challenges answered for one request.
const MAX_PROXY_ROUNDS: u8 = 4;

/// What Digest authentication hashes: the method, the request-target and the body (when it
/// is in memory).
pub(crate) struct DigestInput<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub body: Option<&'a [u8]>,
}

/// Credentials as sent: their protection space, the credentials, the challenge state.
type SentCredentials = (ProtectionSpace, Authenticator, AuthState);

/// Where authentication stands for the current URL (reset by a redirect).
#[derive(Default)]
pub(crate) struct Progress {
    /// The `Authorization` to send on the next attempt (an answered challenge), with what
    /// produced it.
    pending: Option<(HeaderValue, SentCredentials)>,
    /// Credentials sent on this attempt, kept for the cache if they work.
    sent: Option<SentCredentials>,
    /// The URL's user info was offered already (it is tried once).
    used_userinfo: bool,
    /// Challenges answered for this URL.
    rounds: u8,
    /// `Proxy-Authorization` for an HTTP proxy that asked (absolute-form requests).
    proxy_authorization: Option<HeaderValue>,
    /// Proxy challenges answered.
    proxy_rounds: u8,
    /// The proxy's own credentials were offered.
    proxy_offered_configured: AtomicBool,
}

impl Progress {
    /// Before an attempt: the headers carrying credentials, unless the application set its
    /// own `Authorization`.
    pub(super) fn before(
        &mut self,
        ctx: &Context,
        reply: &ReplyShared,
        attempt: Attempt,
    ) -> Attempt {
        self.sent = None;
        let mut attempt = attempt;
        if let Some(proxy_authorization) = &self.proxy_authorization {
            attempt = attempt.with(header::PROXY_AUTHORIZATION, proxy_authorization.clone());
        }
        if let Some((value, sent)) = self.pending.take() {
            self.sent = Some(sent);
            return attempt.with(header::AUTHORIZATION, value);
        }
        if !reply.request().authentication_reuse()
            || attempt.target.headers.contains_key(header::AUTHORIZATION)
        {
            return attempt;
        }
        let url = &attempt.target.url;
        let mut cache = ctx.credentials();
        if cache.is_empty() {
            return attempt;
        }
        let Some(origin) = ProtectionSpace::for_url(url, "") else {
            return attempt;
        };
        let Some(entry) = cache.closest_mut(&origin, url.path()) else {
            return attempt;
        };
        let (method, target, body) = attempt.digest_inputs();
        let authenticator = entry.authenticator.clone();
        let value = entry
            .state
            .authorize(&authenticator, &method, &target, body.as_deref());
        match value {
            Some(value) => {
                self.sent = Some((entry.space.clone(), authenticator, entry.state.clone()));
                drop(cache);
                attempt.with(header::AUTHORIZATION, value)
            }
            None => attempt,
        }
    }

    /// After a response head: [`Step::Retry`] when a 401 or 407 was answered; `None` to let
    /// the later stages decide (caching the credentials that worked).
    pub(super) async fn after(
        &mut self,
        ctx: &Context,
        reply: &Arc<ReplyShared>,
        attempt: &Attempt,
        head: Head<'_>,
    ) -> Option<Step> {
        match head.status {
            StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
                self.proxy(ctx, reply, attempt, head).await
            }
            StatusCode::UNAUTHORIZED => self.server(ctx, reply, attempt, head).await,
            status => {
                self.worked(ctx, attempt, head, status);
                None
            }
        }
    }

    /// The response was not a 401: credentials sent with it worked (unless the server
    /// failed), and go to the cache.
    fn worked(&mut self, ctx: &Context, attempt: &Attempt, head: Head<'_>, status: StatusCode) {
        let Some((space, authenticator, mut state)) = self.sent.take() else {
            return;
        };
        if let Some(info) = head.headers.get("authentication-info") {
            state.apply_authentication_info(info);
        }
        if !status.is_server_error() {
            let path = attempt.target.url.path();
            ctx.credentials().insert(space, path, authenticator, state);
        }
    }

    /// A 401 with a challenge: the credentials to answer it with (the same ones again for a
    /// stale nonce; otherwise the URL's user info, the cache, or the application).
    async fn server(
        &mut self,
        ctx: &Context,
        reply: &Arc<ReplyShared>,
        attempt: &Attempt,
        head: Head<'_>,
    ) -> Option<Step> {
        let challenges = parse_challenges(head.headers.get_all(header::WWW_AUTHENTICATE));
        if challenges.is_empty() || self.rounds >= MAX_ROUNDS {
            return None;
        }
        let (method, target, body) = attempt.digest_inputs();
        let (challenge, scheme) = select_challenge(&challenges, body.is_some())?;
        let url = &attempt.target.url;
        let space = ProtectionSpace::for_url(url, challenge.realm())?;
        let stale = challenge.is_stale();
        let asked = Authenticator::for_challenge(challenge);
        let credentials = match self.sent.take() {
            // A new nonce, or another scheme than the one sent pre-emptively: the same
            // credentials, answered again silently.
            Some((_, previous, state)) if stale || state.scheme() != Some(scheme) => previous,
            sent => {
                if sent.is_some() {
                    // Those credentials were refused: never offer them again.
                    ctx.credentials().remove(&space);
                }
                self.credentials_for(ctx, reply, attempt, &space, asked)
                    .await?
            }
        };
        let mut state = AuthState::new();
        let answer = respond(
            &challenges,
            &credentials,
            &method,
            &target,
            body.as_deref(),
            &mut state,
        )?;
        self.rounds += 1;
        self.pending = Some((answer.header, (space, credentials, state)));
        Some(Step::Retry)
    }

    /// Credentials for `space`: the URL's user info (once), then the cache, then the
    /// application through `authentication_required`.
    async fn credentials_for(
        &mut self,
        ctx: &Context,
        reply: &Arc<ReplyShared>,
        attempt: &Attempt,
        space: &ProtectionSpace,
        asked: Authenticator,
    ) -> Option<Authenticator> {
        let url = &attempt.target.url;
        if !self.used_userinfo && !url.username().is_empty() {
            self.used_userinfo = true;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let user = decode(url.username());
            let password = decode(url.password().unwrap_or(""));
            return Some(Authenticator::with_credentials(user, password));
        }
        let cached = ctx
            .credentials()
            .get(space, url.path())
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

    /// A 407 from an HTTP proxy carrying absolute-form requests.
    async fn proxy(
        &mut self,
        ctx: &Context,
        reply: &Arc<ReplyShared>,
        attempt: &Attempt,
        head: Head<'_>,
    ) -> Option<Step> {
        let url = &attempt.target.url;
        let proxy = ctx.proxy_for(url).filter(|p| {
            url.scheme() == "http"
                && matches!(p.kind(), ProxyKind::HttpProxy | ProxyKind::HttpCachingProxy)
        })?;
        if self.proxy_rounds >= MAX_PROXY_ROUNDS {
            return None;
        }
        let (method, _, body) = attempt.digest_inputs();
        let digest = DigestInput {
            method: &method,
            target: &url[..url::Position::AfterQuery],
            body: body.as_deref(),
        };
        let offered = &self.proxy_offered_configured;
        let answer = answer_proxy(reply, &proxy, head.headers, digest, offered).await?;
        self.proxy_rounds += 1;
        self.proxy_authorization = Some(answer);
        Some(Step::Retry)
    }
}

/// The `Proxy-Authorization` answering a proxy's `407` (its `headers`): with the proxy's own
/// credentials the first time (`offered_configured` records it), then with the
/// application's, asked through `proxy_authentication_required`. `None`: no challenge this
/// client can answer, or no credentials.
pub(crate) async fn answer_proxy(
    reply: &Arc<ReplyShared>,
    proxy: &Proxy,
    headers: &HeaderMap,
    digest: DigestInput<'_>,
    offered_configured: &AtomicBool,
) -> Option<HeaderValue> {
    let challenges = parse_challenges(headers.get_all(header::PROXY_AUTHENTICATE));
    let (challenge, _) = select_challenge(&challenges, digest.body.is_some())?;
    let credentials =
        if !proxy.user().is_empty() && !offered_configured.swap(true, Ordering::Relaxed) {
            Authenticator::with_credentials(proxy.user(), proxy.password())
        } else {
            let request = AuthenticationRequest::new(Authenticator::for_challenge(challenge));
            reply
                .manager_signals()
                .proxy_authentication_required
                .emit(&(proxy.clone(), request.clone()));
            request.answered().await?
        };
    let mut state = AuthState::new();
    let answer = respond(
        &challenges,
        &credentials,
        digest.method,
        digest.target,
        digest.body,
        &mut state,
    )?;
    Some(answer.header)
}
