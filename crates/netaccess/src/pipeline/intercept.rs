//! The interceptor stage: the manager's [`Interceptor`](crate::Interceptor)s, in order,
//! before each attempt is sent (change headers, or answer it) and after each response head
//! (ask for the attempt again, a bounded number of times).

use std::sync::Arc;

use http::header::{self, HeaderValue};

use super::attempt::{Attempt, Head, Step};
use super::deliver::{self, Decoding};
use crate::context::Context;
use crate::error::Error;
use crate::interceptor::{
    AfterHead, BeforeSend, InterceptedRequest, InterceptedResponse, SyntheticResponse,
    MAX_INTERCEPTOR_RETRIES,
};
use crate::reply::{Meta, ReplyShared};

/// What the interceptors made of an attempt.
pub(super) enum Before {
    /// Send it (as they changed it).
    Send(Attempt),
    /// Answer the attempt to this URL with this.
    Respond(SyntheticResponse, url::Url),
}

/// Runs every `before_send` hook on attempt number `number`.
pub(super) async fn before(ctx: &Context, attempt: Attempt, number: u32) -> Before {
    let interceptors = &ctx.config.interceptors;
    if interceptors.is_empty() {
        return Before::Send(attempt);
    }
    let Attempt { target, headers } = attempt;
    let mut seen = InterceptedRequest {
        url: target.url.clone(),
        method: target.operation.method(),
        headers,
        attempt: number,
    };
    for interceptor in interceptors.iter() {
        if let BeforeSend::Respond(response) = interceptor.before_send(&mut seen).await {
            return Before::Respond(response, target.url);
        }
    }
    let headers = seen.headers;
    Before::Send(Attempt { target, headers })
}

/// Runs every `after_head` hook: [`Step::Retry`] when one asks for it and fewer than
/// [`MAX_INTERCEPTOR_RETRIES`] retries were made (`retries` counts them).
pub(super) async fn after(
    ctx: &Context,
    attempt: &Attempt,
    head: Head<'_>,
    number: u32,
    retries: &mut u32,
) -> Option<Step> {
    let interceptors = &ctx.config.interceptors;
    if interceptors.is_empty() {
        return None;
    }
    let method = attempt.target.operation.method();
    let seen = InterceptedResponse {
        url: &attempt.target.url,
        method: &method,
        status: head.status,
        headers: head.headers,
        attempt: number,
    };
    for interceptor in interceptors.iter() {
        if interceptor.after_head(&seen).await == AfterHead::Retry {
            if *retries >= MAX_INTERCEPTOR_RETRIES {
                tracing::debug!(url = %crate::error::ShownUrl(&attempt.target.url), "an interceptor asked for another retry; the limit is reached");
                return None;
            }
            *retries += 1;
            return Some(Step::Retry);
        }
    }
    None
}

/// Delivers an interceptor's answer as the reply.
pub(super) async fn respond(
    reply: &Arc<ReplyShared>,
    url: &url::Url,
    response: SyntheticResponse,
) -> Result<Option<Error>, Error> {
    let SyntheticResponse {
        status,
        mut headers,
        body,
    } = response;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let meta = Meta {
        status: Some(status),
        reason: status.canonical_reason().map(str::to_owned),
        headers,
        version: Some(http::Version::HTTP_11),
        original_content_length: Some(body.len() as u64),
        ..Meta::default()
    };
    let body = futures_util::stream::iter((!body.is_empty()).then_some(Ok(body)));
    deliver::deliver(reply, url, meta, body, Decoding::None).await
}
