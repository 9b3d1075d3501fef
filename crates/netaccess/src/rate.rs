//! Download rate limits: token buckets that pace how fast response bodies are read off their
//! connections.
//!
//! Three limits can apply to one body, each a [`TokenBucket`] counting bytes per second: the
//! request's own (`Request::with_max_rate`), its host's (`ManagerBuilder::max_download_rate_per_host`,
//! one bucket per `host:port`, shared by every body from it) and the manager's total
//! (`ManagerBuilder::max_download_rate`). A body waits for all of them after each chunk it
//! reads and before it reads the next ([`throttle`]): while it waits, nobody polls the
//! connection, so HTTP/1.1 stops reading the socket and HTTP/2 stops releasing flow-control
//! window. The server is slowed down by TCP (or HTTP/2) back-pressure; nothing is buffered
//! beyond the one chunk already read.
//!
//! The shared buckets ([`Limiter`]) serve waiting bodies in priority order, then in arrival
//! order: while a High request waits for bytes, Normal and Low ones get none; they take what
//! the higher ones leave (a High body the server sends slowly leaves the rest to them).
//!
//! A bucket holds at most an eighth of a second of bytes (a short burst) and may go into debt:
//! a chunk larger than what is in the bucket is taken whole, and the next one waits until the
//! debt is paid; at its end a body waits for its last debt. So chunk sizes (hyper's reads,
//! HTTP/2 frames) never stall a body, and the time a body takes is exact.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::Notify;
use tokio::time::Instant;
use url::Url;

use crate::request::Priority;

/// The largest burst, as a fraction of a second of the rate: 1/8 s.
const BURST_DIVISOR: u64 = 8;
/// Host buckets kept before the unused ones are dropped.
const HOST_MAP_PRUNE_AT: usize = 64;

/// A token bucket in bytes: refilled at `rate` bytes per second up to `burst`, and allowed
/// to go into debt by one take. Time comes in as explicit `now` values.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u64,
    burst: f64,
    /// Bytes available; negative: the debt the next take waits for.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` bytes per second (at least 1).
    pub(crate) fn new(rate: u64, now: Instant) -> Self {
        let rate = rate.max(1);
        let burst = (rate / BURST_DIVISOR).max(1) as f64;
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst);
    }

    /// How long from `now` until the bucket is out of debt: zero when a take may go ahead.
    pub(crate) fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // Rounded up to whole microseconds so that waiting this long always suffices.
            let micros = (-self.tokens * 1e6 / self.rate as f64).ceil();
            Duration::from_micros(micros as u64)
        }
    }

    /// Takes `bytes` (call when [`wait`](Self::wait) said zero); may leave a debt.
    pub(crate) fn take(&mut self, bytes: u64, now: Instant) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }
}

/// A bucket shared by many bodies, served in (priority, arrival) order.
pub(crate) struct Limiter {
    state: Mutex<Shared>,
    /// Wakes the waiters when the head of the queue changes.
    turn: Notify,
}

struct Shared {
    bucket: TokenBucket,
    /// The waiting takes, by (priority, arrival).
    queue: BTreeSet<(Priority, u64)>,
    seq: u64,
}

/// What a waiting take does next.
enum Step {
    Done,
    /// Another take is ahead: wait for the head to change.
    NotMyTurn,
    /// At the head: wait for the debt to be paid.
    Sleep(Duration),
}

impl Limiter {
    pub(crate) fn new(rate: u64) -> Self {
        Limiter {
            state: Mutex::new(Shared {
                bucket: TokenBucket::new(rate, Instant::now()),
                queue: BTreeSet::new(),
                seq: 0,
            }),
            turn: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this take's turn and for the bucket to be out of debt, then takes `bytes`.
    pub(crate) async fn take(&self, bytes: u64, priority: Priority) {
        let key = {
            let mut shared = self.lock();
            let now = Instant::now();
            if shared.queue.is_empty() && shared.bucket.wait(now).is_zero() {
                shared.bucket.take(bytes, now);
                return;
            }
            shared.seq += 1;
            let key = (priority, shared.seq);
            shared.queue.insert(key);
            key
        };
        // Leaves the queue however this ends (a dropped future included).
        let _queued = Queued { limiter: self, key };
        loop {
            let turn = self.turn.notified();
            let mut turn = std::pin::pin!(turn);
            turn.as_mut().enable();
            let step = {
                let mut shared = self.lock();
                let now = Instant::now();
                if shared.queue.first() != Some(&key) {
                    Step::NotMyTurn
                } else {
                    match shared.bucket.wait(now) {
                        wait if wait.is_zero() => {
                            shared.bucket.take(bytes, now);
                            Step::Done
                        }
                        wait => Step::Sleep(wait),
                    }
                }
            };
            match step {
                Step::Done => return,
                Step::NotMyTurn => turn.await,
                Step::Sleep(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

impl Limiter {
    /// How long until the bucket is out of debt.
    fn debt(&self) -> Duration {
        self.lock().bucket.wait(Instant::now())
    }
}

/// A take in a [`Limiter`]'s queue; leaving it lets the next one go.
struct Queued<'a> {
    limiter: &'a Limiter,
    key: (Priority, u64),
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.limiter.lock().queue.remove(&self.key);
        self.limiter.turn.notify_waiters();
    }
}

/// A manager's download limits: the total and the per-host buckets.
#[derive(Default)]
pub(crate) struct Rates {
    total: Option<Arc<Limiter>>,
    per_host: Option<u64>,
    hosts: Mutex<HashMap<String, Weak<Limiter>>>,
}

impl Rates {
    /// Limits of `total` bytes per second across the manager and `per_host` per `host:port`
    /// (`None` or 0: no limit).
    pub(crate) fn new(total: Option<u64>, per_host: Option<u64>) -> Self {
        Rates {
            total: total.filter(|&r| r > 0).map(|r| Arc::new(Limiter::new(r))),
            per_host: per_host.filter(|&r| r > 0),
            hosts: Mutex::default(),
        }
    }

    /// The bucket of `url`'s host, made on first use; unused ones are dropped now and then.
    fn host(&self, url: &Url) -> Option<Arc<Limiter>> {
        let rate = self.per_host?;
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(limiter) = hosts.get(&key).and_then(Weak::upgrade) {
            return Some(limiter);
        }
        if hosts.len() >= HOST_MAP_PRUNE_AT {
            hosts.retain(|_, limiter| limiter.strong_count() > 0);
        }
        let limiter = Arc::new(Limiter::new(rate));
        hosts.insert(key, Arc::downgrade(&limiter));
        Some(limiter)
    }

    /// The limits for a body of `url` requested with `max_rate` (the request's own) at
    /// `priority`; `None` when none applies.
    pub(crate) fn throttle(
        &self,
        url: &Url,
        max_rate: Option<u64>,
        priority: Priority,
    ) -> Option<Throttle> {
        let own = max_rate
            .filter(|&r| r > 0)
            .map(|r| TokenBucket::new(r, Instant::now()));
        let host = self.host(url);
        let total = self.total.clone();
        (own.is_some() || host.is_some() || total.is_some()).then_some(Throttle {
            own,
            host,
            total,
            priority,
        })
    }
}

/// The limits one body is read under.
pub(crate) struct Throttle {
    own: Option<TokenBucket>,
    host: Option<Arc<Limiter>>,
    total: Option<Arc<Limiter>>,
    priority: Priority,
}

impl Throttle {
    /// Waits until every limit lets `bytes` through, and takes them.
    async fn pace(&mut self, bytes: u64) {
        if let Some(own) = &mut self.own {
            let wait = own.wait(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            own.take(bytes, Instant::now());
        }
        for limiter in [&self.host, &self.total].into_iter().flatten() {
            limiter.take(bytes, self.priority).await;
        }
    }
}

impl Throttle {
    /// Waits until the bytes taken are paid for: a body ends when its last chunk would have
    /// been let through, so it never finishes early by one chunk.
    async fn settle(&mut self) {
        let mut wait = self
            .own
            .as_mut()
            .map_or(Duration::ZERO, |own| own.wait(Instant::now()));
        for limiter in [&self.host, &self.total].into_iter().flatten() {
            wait = wait.max(limiter.debt());
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// `body` read under `throttle`: after each chunk, the next is not read before the limits
/// allow it. Without a throttle, `body` as it is.
pub(crate) fn throttle<'a, S, E>(
    body: S,
    throttle: Option<Throttle>,
) -> impl Stream<Item = Result<bytes::Bytes, E>> + Send + 'a
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'a,
    E: Send + 'a,
{
    use futures_util::StreamExt;
    match throttle {
        None => body.left_stream(),
        Some(throttle) => {
            let state = (Box::pin(body), throttle);
            futures_util::stream::unfold(state, |(mut body, mut throttle)| async move {
                let Some(chunk) = body.next().await else {
                    throttle.settle().await;
                    return None;
                };
                if let Ok(data) = &chunk {
                    throttle.pace(data.len() as u64).await;
                }
                Some((chunk, (body, throttle)))
            })
            .right_stream()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_new_bucket_holds_an_eighth_of_a_second() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(8000, t0);
        assert_eq!(bucket.wait(t0), Duration::ZERO);
        bucket.take(1000, t0);
        assert_eq!(
            bucket.wait(t0),
            Duration::ZERO,
            "exactly empty is not in debt"
        );
        bucket.take(1, t0);
        assert!(bucket.wait(t0) > Duration::ZERO);
    }

    #[test]
    fn a_debt_is_paid_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, t0);
        bucket.take(125, t0); // the burst
        bucket.take(500, t0); // a large chunk: 500 bytes of debt
        assert_eq!(bucket.wait(t0), 500 * MS);
        assert_eq!(bucket.wait(t0 + 200 * MS), 300 * MS);
        assert_eq!(bucket.wait(t0 + 500 * MS), Duration::ZERO);
    }

    #[test]
    fn an_idle_bucket_refills_only_to_its_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, t0);
        bucket.take(125, t0);
        let later = t0 + Duration::from_secs(60);
        bucket.take(125, later); // the burst again, not 60 s of bytes
        assert_eq!(bucket.wait(later), Duration::ZERO);
        bucket.take(100, later);
        assert_eq!(bucket.wait(later), 100 * MS);
    }

    #[test]
    fn the_long_run_rate_is_exact_whatever_the_chunk_size() {
        // 10 MB in chunks of 16 KiB through a 1 MB/s bucket, each chunk taken when the
        // bucket allows: the last is taken after 10 s less the burst.
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1_000_000, t0);
        let mut now = t0;
        let mut sent = 0u64;
        while sent < 10_000_000 {
            now += bucket.wait(now);
            bucket.take(16_384, now);
            sent += 16_384;
        }
        let expected = (sent - 16_384 - 125_000) as f64 / 1e6;
        let took = (now - t0).as_secs_f64();
        assert!((took - expected).abs() < 0.001, "{took} vs {expected}");
    }

    #[test]
    fn a_zero_rate_counts_as_one_byte_per_second() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(0, t0);
        bucket.take(3, t0);
        assert_eq!(bucket.wait(t0), Duration::from_secs(2));
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut bucket = TokenBucket::new(1000, t0);
        bucket.take(625, t0);
        assert_eq!(bucket.wait(t0 - 500 * MS), 500 * MS);
    }

    #[test]
    fn no_limit_means_no_throttle() {
        let url = Url::parse("http://127.0.0.1:1/").unwrap();
        let rates = Rates::new(None, Some(0));
        assert!(rates.throttle(&url, None, Priority::Normal).is_none());
        assert!(rates.throttle(&url, Some(0), Priority::Normal).is_none());
        assert!(rates.throttle(&url, Some(1), Priority::Normal).is_some());
    }

    #[test]
    fn each_host_and_port_has_one_shared_bucket_while_it_is_used() {
        let rates = Rates::new(None, Some(1000));
        let a = Url::parse("http://127.0.0.1:1/x").unwrap();
        let a2 = Url::parse("http://127.0.0.1:1/y").unwrap();
        let b = Url::parse("http://127.0.0.1:2/x").unwrap();
        let first = rates.host(&a).unwrap();
        assert!(Arc::ptr_eq(&first, &rates.host(&a2).unwrap()));
        assert!(!Arc::ptr_eq(&first, &rates.host(&b).unwrap()));
        // Unused buckets are dropped once the map is large.
        drop(first);
        for port in 10..(10 + HOST_MAP_PRUNE_AT as u16 + 1) {
            let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
            drop(rates.host(&url));
        }
        assert!(rates.hosts.lock().unwrap().len() <= HOST_MAP_PRUNE_AT + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_high_take_goes_before_a_low_one_that_waited_longer() {
        let limiter = Arc::new(Limiter::new(1000));
        limiter.take(1125, Priority::Normal).await; // burst + 1 s of debt
        let order = Arc::new(Mutex::new(Vec::new()));
        let low = {
            let (limiter, order) = (limiter.clone(), order.clone());
            tokio::spawn(async move {
                limiter.take(100, Priority::Low).await;
                order.lock().unwrap().push("low");
            })
        };
        tokio::task::yield_now().await;
        let high = {
            let (limiter, order) = (limiter.clone(), order.clone());
            tokio::spawn(async move {
                limiter.take(100, Priority::High).await;
                order.lock().unwrap().push("high");
            })
        };
        let t0 = Instant::now();
        high.await.unwrap();
        low.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["high", "low"]);
        // Low waited for the debt and for High's 100 bytes.
        assert_eq!(Instant::now() - t0, Duration::from_millis(1100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_take_lets_the_next_one_go() {
        let limiter = Arc::new(Limiter::new(1000));
        limiter.take(1125, Priority::Normal).await;
        let first = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.take(10, Priority::High).await })
        };
        tokio::task::yield_now().await;
        first.abort();
        let _ = first.await;
        let t0 = Instant::now();
        limiter.take(10, Priority::Low).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
        assert!(limiter.lock().queue.is_empty());
    }
}
