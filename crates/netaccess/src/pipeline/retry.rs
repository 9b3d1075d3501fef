//! The retry stage: whether a failed attempt is sent again under the request's
//! [`RetryPolicy`](crate::RetryPolicy) (its own, else the manager's), and after how long. A connection failure before any
//! response byte, or a response with a retryable status, becomes a wait and another pass of
//! the loop, within the policy's count and the origin's budget.

use std::time::{Duration, SystemTime};

use http::header;

use super::attempt::{Attempt, Head, Step};
use crate::context::Context;
use crate::error::{Error, NetworkError, ShownUrl};
use crate::retry::{retry_after, RetryPolicy};

/// Retries made for one request.
#[derive(Default)]
pub(crate) struct Retries {
    made: u32,
}

/// The budget key of the attempt's origin.
fn origin_key(attempt: &Attempt) -> String {
    let url = &attempt.target.url;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(0);
    format!("{}://{host}:{port}", url.scheme())
}

impl Retries {
    /// A first attempt: the origin's budget grows.
    pub(super) fn first_attempt(&self, ctx: &Context, policy: &RetryPolicy, attempt: &Attempt) {
        if policy.max_retries() > 0 {
            ctx.retry_budgets
                .deposit(&origin_key(attempt), policy.budget_ratio());
        }
    }

    /// Whether the policy, the method and the origin's budget allow one more retry.
    fn allowed(&mut self, ctx: &Context, policy: &RetryPolicy, attempt: &Attempt) -> bool {
        let idempotent = attempt.target.operation.is_idempotent();
        if self.made >= policy.max_retries() || !policy.allows_method(idempotent) {
            return false;
        }
        if !ctx.retry_budgets.withdraw(&origin_key(attempt)) {
            tracing::debug!(url = %ShownUrl(&attempt.target.url), "retry budget of the origin spent; not retrying");
            return false;
        }
        true
    }

    /// After an attempt failed before any response: the wait before sending it again, or
    /// the error to finish with.
    pub(super) fn after_failure(
        &mut self,
        ctx: &Context,
        policy: &RetryPolicy,
        attempt: &Attempt,
        error: Error,
    ) -> Result<Duration, Error> {
        let retryable = error.is_connect() || error.kind() == NetworkError::RemoteHostClosedError;
        if policy.max_retries() == 0 || !retryable {
            return Err(error);
        }
        if !attempt.target.body.is_replayable() {
            return Err(Error::new(
                error.kind(),
                format!("{error} (not retried: the request body is a one-shot stream)"),
            )
            .with_source(error));
        }
        if !self.allowed(ctx, policy, attempt) {
            return Err(error);
        }
        let wait = policy.backoff(self.made);
        self.made += 1;
        tracing::debug!(url = %ShownUrl(&attempt.target.url), %error, retry = self.made, ?wait, "retrying after a connection failure");
        Ok(wait)
    }

    /// After a response head: [`Step::Wait`] when its status is retried.
    pub(super) fn after_head(
        &mut self,
        ctx: &Context,
        policy: &RetryPolicy,
        attempt: &Attempt,
        head: Head<'_>,
    ) -> Option<Step> {
        if policy.max_retries() == 0 || !policy.retries_status(head.status.as_u16()) {
            return None;
        }
        if !attempt.target.body.is_replayable() {
            return None;
        }
        let asked = head
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        if asked.is_some_and(|wait| wait > policy.max_retry_after()) {
            return None; // the server asks for longer than allowed: deliver its answer
        }
        if !self.allowed(ctx, policy, attempt) {
            return None;
        }
        let wait = asked.unwrap_or_else(|| policy.backoff(self.made));
        self.made += 1;
        tracing::debug!(url = %ShownUrl(&attempt.target.url), status = head.status.as_u16(), retry = self.made, ?wait, "retrying after a retryable status");
        Some(Step::Wait(wait))
    }
}
