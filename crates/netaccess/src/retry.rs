//! [`RetryPolicy`]: which failed attempts are sent again, how often and after how long, and
//! the per-origin budget that keeps retries from hammering a server that is down.
//!
//! Off by default, as in Qt and reqwest (netaccess always resends, on its own, what a server
//! provably did not process: a stale keep-alive connection's idempotent request, an HTTP/2
//! request refused or cut by GOAWAY). A policy adds, for idempotent methods unless
//! [`RetryPolicy::with_non_idempotent`] says otherwise:
//! - connection failures (refused, unreachable, reset) before any response byte;
//! - responses with a retryable status (408, 429, 500, 502, 503, 504 by default), waiting
//!   `Retry-After` when the server sends it (capped), else an exponential backoff with full
//!   jitter.
//!
//! A request whose body cannot be sent twice (a one-shot stream) is never retried; its error
//! says so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Which failures are retried, how many times, and how long to wait.
///
/// ```
/// use std::time::Duration;
/// use netaccess::{NetworkAccessManager, RetryPolicy};
/// let manager = NetworkAccessManager::builder()
///     .retry_policy(
///         RetryPolicy::new(3)
///             .with_backoff(Duration::from_millis(100), Duration::from_secs(5))
///             .with_statuses([429, 503]),
///     )
///     .build().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    statuses: Vec<u16>,
    non_idempotent: bool,
    max_retry_after: Duration,
    budget_ratio: f64,
    /// Waits are `initial_backoff` exactly (`with_fixed_delay`).
    fixed: bool,
}

/// The statuses retried by default: 408, 429, 500, 502, 503, 504.
pub const DEFAULT_RETRY_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

impl Default for RetryPolicy {
    /// No retries.
    fn default() -> Self {
        RetryPolicy::none()
    }
}

impl RetryPolicy {
    /// No retries beyond those that are always safe (the default).
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::new(0)
        }
    }

    /// Up to `max_retries` retries, with the defaults: backoff from 100 ms doubling up to
    /// 10 s, the [`DEFAULT_RETRY_STATUSES`], idempotent methods only, `Retry-After` honoured
    /// up to 60 s, and a budget of 20 % extra load per origin.
    pub fn new(max_retries: u32) -> Self {
        RetryPolicy {
            max_retries,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            statuses: DEFAULT_RETRY_STATUSES.to_vec(),
            non_idempotent: false,
            max_retry_after: Duration::from_secs(60),
            budget_ratio: 0.2,
            fixed: false,
        }
    }

    /// The backoff: retry `n` (from 0) waits a random time up to
    /// `min(max, initial × 2^n)` ("full jitter").
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self.fixed = false;
        self
    }

    /// Every retry waits exactly `delay` (curl's `--retry-delay`), instead of the backoff
    /// with jitter. A `Retry-After` still wins.
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = netaccess::RetryPolicy::new(3).with_fixed_delay(Duration::from_secs(2));
    /// # drop(policy);
    /// ```
    pub fn with_fixed_delay(mut self, delay: Duration) -> Self {
        self.initial_backoff = delay;
        self.max_backoff = delay;
        self.fixed = true;
        self
    }

    /// The response statuses that are retried (none: only connection failures are).
    pub fn with_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// Retries non-idempotent methods too (POST, PATCH, custom verbs): only when the
    /// application knows a repeat is harmless.
    pub fn with_non_idempotent(mut self, yes: bool) -> Self {
        self.non_idempotent = yes;
        self
    }

    /// The longest `Retry-After` waited for; a server asking for more gets its response
    /// delivered instead of a retry.
    pub fn with_max_retry_after(mut self, limit: Duration) -> Self {
        self.max_retry_after = limit;
        self
    }

    /// The retry budget per origin: retries may add at most this fraction of the origin's
    /// requests (plus a reserve of [`RETRY_BUDGET_RESERVE`]), so a server that is down is not
    /// hammered (reqwest's `max_extra_load`). Default 0.2.
    pub fn with_budget(mut self, extra_load: f64) -> Self {
        self.budget_ratio = extra_load.clamp(0.0, 1000.0);
        self
    }

    /// The most retries of one request.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    pub(crate) fn retries_status(&self, status: u16) -> bool {
        self.statuses.contains(&status)
    }

    pub(crate) fn allows_method(&self, idempotent: bool) -> bool {
        idempotent || self.non_idempotent
    }

    pub(crate) fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The wait before retry `n` (from 0), with full jitter.
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        if self.fixed {
            return self.initial_backoff;
        }
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
            .min(self.max_backoff);
        let mut random = [0u8; 8];
        // No randomness available: the full wait, which is still bounded.
        let fraction = match getrandom::getrandom(&mut random) {
            Ok(()) => u64::from_le_bytes(random) as f64 / u64::MAX as f64,
            Err(_) => 1.0,
        };
        ceiling.mul_f64(fraction)
    }

    pub(crate) fn budget_ratio(&self) -> f64 {
        self.budget_ratio
    }
}

/// Retries every origin may make beyond its budget's share (a small reserve for origins
/// with few requests).
pub const RETRY_BUDGET_RESERVE: f64 = 10.0;

/// The most a budget saves up: a long quiet success streak does not allow a later storm.
const RETRY_BUDGET_CAP: f64 = 100.0;

/// The retry budgets of one manager, per origin (`scheme://host:port`), in thousandths of a
/// retry (so that five requests at 20 % make exactly one).
#[derive(Debug, Default)]
pub(crate) struct RetryBudgets {
    balances: Mutex<HashMap<String, u64>>,
}

/// One retry, in budget units.
const ONE: u64 = 1000;
const RESERVE: u64 = RETRY_BUDGET_RESERVE as u64 * ONE;
const CAP: u64 = RETRY_BUDGET_CAP as u64 * ONE;

impl RetryBudgets {
    /// Most origins a manager keeps a budget for; past it, the fullest ones are forgotten
    /// (they start again from the reserve).
    const MAX_ORIGINS: usize = 4096;

    /// A first attempt to `origin`: its budget grows by `ratio`.
    pub(crate) fn deposit(&self, origin: &str, ratio: f64) {
        let mut balances = self.balances.lock().unwrap_or_else(|e| e.into_inner());
        if balances.len() >= Self::MAX_ORIGINS && !balances.contains_key(origin) {
            balances.retain(|_, b| *b < RESERVE);
        }
        let balance = balances.entry(origin.to_owned()).or_insert(RESERVE);
        let share = (ratio * ONE as f64).round() as u64;
        *balance = balance.saturating_add(share).min(CAP);
    }

    /// A retry to `origin`: allowed while its budget holds one.
    pub(crate) fn withdraw(&self, origin: &str) -> bool {
        let mut balances = self.balances.lock().unwrap_or_else(|e| e.into_inner());
        let balance = balances.entry(origin.to_owned()).or_insert(RESERVE);
        if *balance >= ONE {
            *balance -= ONE;
            true
        } else {
            false
        }
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delta-seconds (clamped at 2^31) or an HTTP-date after
/// `now`.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    use crate::cache::policy::{delta_seconds, MAX_DELTA_SECONDS};
    if let Some(seconds) = delta_seconds(value) {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value.trim()).ok()?;
    let wait = date.duration_since(now).unwrap_or_default();
    Some(wait.min(Duration::from_secs(MAX_DELTA_SECONDS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_its_ceiling() {
        let policy = RetryPolicy::new(5)
            .with_backoff(Duration::from_millis(100), Duration::from_millis(350));
        for n in 0..40 {
            let ceiling = [100, 200, 350][n.min(2) as usize];
            assert!(
                policy.backoff(n) <= Duration::from_millis(ceiling),
                "retry {n}"
            );
        }
    }

    #[test]
    fn a_fixed_delay_is_exact_every_time() {
        let policy = RetryPolicy::new(5).with_fixed_delay(Duration::from_millis(250));
        for n in 0..10 {
            assert_eq!(policy.backoff(n), Duration::from_millis(250));
        }
    }

    #[test]
    fn a_budget_allows_its_reserve_then_its_share_of_new_requests() {
        let budgets = RetryBudgets::default();
        let allowed = (0..100).filter(|_| budgets.withdraw("http://a:80")).count();
        assert_eq!(allowed, RETRY_BUDGET_RESERVE as usize);
        for _ in 0..50 {
            budgets.deposit("http://a:80", 0.2);
        }
        let allowed = (0..100).filter(|_| budgets.withdraw("http://a:80")).count();
        assert_eq!(allowed, 10, "50 requests at 20 % buy 10 retries");
        assert!(budgets.withdraw("http://b:80"), "each origin has its own");
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("soon", now), None);
    }
}
