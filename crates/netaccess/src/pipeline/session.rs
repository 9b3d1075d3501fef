//! What the manager remembers across requests, as the attempt loop uses it: before an
//! attempt, the HSTS upgrade (before any socket opens) and the jar's cookies for its URL;
//! after a response head, the cookies it sets and its HSTS policy.

use http::header::{self, HeaderMap};
use url::Url;

use crate::context::Context;
use crate::error::ShownUrl;
use crate::request::{CookieControl, Request};

/// The https form of `url` when an HSTS policy covers its host (the URL an attempt then goes
/// to); `None`: `url` itself.
pub(super) fn upgrade(ctx: &Context, url: &Url) -> Option<Url> {
    let secure = ctx.hsts_upgrade(url)?;
    tracing::debug!(from = %ShownUrl(url), to = %ShownUrl(&secure), "HSTS upgrade");
    Some(secure)
}

/// The jar's `Cookie` header value for `url`, unless the request manages cookies itself.
pub(super) fn cookies(ctx: &Context, request: &Request, url: &Url) -> Option<String> {
    match request.cookie_load_control() {
        CookieControl::Automatic => ctx.config.cookie_jar.cookie_header(url),
        CookieControl::Manual => None,
    }
}

/// What a response teaches the manager whatever happens next (redirect or delivery): its
/// cookies (unless the request saves them itself) and its HSTS policy. HSTS is learned only
/// over a TLS connection without ignored certificate errors (RFC 6797 §8.1): a connection
/// made with `ignore_ssl_errors` (the CLI's `--insecure`) can neither set nor erase a policy.
pub(super) fn remember(
    ctx: &Context,
    request: &Request,
    url: &Url,
    headers: &HeaderMap,
    secure_channel: bool,
) {
    if request.cookie_save_control() == CookieControl::Automatic {
        let values: Vec<String> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if !values.is_empty() {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            ctx.config.cookie_jar.store_response_cookies(url, &values);
        }
    }
    if !ctx.config.hsts_enabled || url.scheme() != "https" {
        return;
    }
    // The first header counts (RFC 6797 §8.1).
    let Some(sts) = headers.get(header::STRICT_TRANSPORT_SECURITY) else {
        return;
    };
    if !secure_channel {
        tracing::debug!(url = %ShownUrl(url), "Strict-Transport-Security ignored: not a secure channel");
    } else if let Ok(sts) = sts.to_str() {
        ctx.config.hsts.process_header(url, sts);
    }
}
