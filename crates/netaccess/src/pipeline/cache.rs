//! The cache stage (RFC 9111, RFC 5861, with Qt's `CacheLoadControl`). Before an attempt:
//! answer from a usable stored response (a whole one, or a byte range cut from it as a 206),
//! serve a stale one inside its `stale-while-revalidate` window while a background request
//! revalidates it, complete a stored first part by asking for the rest, or add validators
//! (or `no-cache`) and go to the network. After a response
//! head: an unsafe method invalidates, a 304 serves the revalidated entry, an error status
//! serves the stale one inside its `stale-if-error` window (Qt's stale-on-5xx fallback is the
//! case without a window). When an attempt fails without a response, the same. For a response
//! about to be delivered: the writer that stores it as it arrives (206s combined with the
//! stored part of the same representation, RFC 9111 §3.4).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::StreamExt;
use http::header::{self, HeaderValue};
use url::Url;

use super::attempt::{Attempt, Head, Step};
use super::deliver::{self, Decoding};
use super::exchange::Exchange;
use crate::cache::policy::{self, CacheRequest, Freshness, StoredPolicy};
use crate::cache::range::{self, Slice};
use crate::cache::{
    Cache, CacheFuture, CacheKey, CacheLoadControl, CacheMetadata, CacheWriter, CachedBody,
    CachedEntry,
};
use crate::context::{Context, ManagerSignals};
use crate::error::{Error, NetworkError};
use crate::reply::{Meta, Reply, ReplyShared};
use crate::request::Operation;
use crate::upload::Body;

/// What the cache made of an attempt before it is sent.
pub(super) enum Before {
    /// A stored response answers it; no request goes out.
    Hit(Stored),
    /// Send it (with any validators added), revalidating this stale entry if there is one.
    Send(Attempt, Option<CachedEntry>),
    /// A stored part was completed by a request for the rest: the whole, now stored, answers
    /// (not "from the cache": the server was asked).
    Completed(Stored),
}

/// A stored response to deliver (whole, or the `slice` of it a Range request asked for).
pub(crate) struct Stored {
    url: Url,
    metadata: CacheMetadata,
    policy: Arc<StoredPolicy>,
    body: CachedBody,
    slice: Option<Slice>,
}

impl Stored {
    fn whole(url: &Url, mut entry: CachedEntry) -> Self {
        Stored {
            url: url.clone(),
            policy: entry.policy(),
            metadata: entry.metadata,
            body: entry.body,
            slice: None,
        }
    }
}

/// The stored keys being revalidated in the background (one request at a time per key and
/// cache), and the replies of those requests (which must not be answered stale themselves).
static BACKGROUND: Mutex<Option<(HashSet<String>, HashSet<usize>)>> = Mutex::new(None);

fn background<T>(f: impl FnOnce(&mut HashSet<String>, &mut HashSet<usize>) -> T) -> T {
    let mut guard = BACKGROUND.lock().unwrap_or_else(|e| e.into_inner());
    let (keys, replies) = guard.get_or_insert_with(Default::default);
    f(keys, replies)
}

/// The cache stage before an attempt: its answer, and the `CacheMiss` event when a cache is
/// configured and has nothing for it.
pub(super) async fn before(
    ctx: &Context,
    reply: &Arc<ReplyShared>,
    attempt: Attempt,
) -> Result<Before, Error> {
    let before = consult(ctx, reply, attempt).await?;
    if matches!(before, Before::Send(_, None)) && ctx.config.cache.is_some() {
        ctx.event(reply, crate::events::Event::CacheMiss);
    }
    Ok(before)
}

/// What the cache has for an attempt.
async fn consult(ctx: &Context, reply: &ReplyShared, attempt: Attempt) -> Result<Before, Error> {
    let Some(cache) = &ctx.config.cache else {
        return Ok(Before::Send(attempt, None));
    };
    if !matches!(attempt.target.operation, Operation::Get | Operation::Head) {
        return Ok(Before::Send(attempt, None));
    }
    let control = reply.request().cache_load_control();
    if control == CacheLoadControl::AlwaysNetwork {
        let no_cache = HeaderValue::from_static("no-cache");
        return Ok(Before::Send(
            attempt.with(header::CACHE_CONTROL, no_cache),
            None,
        ));
    }
    let url = &attempt.target.url;
    let key = CacheKey::get(url);
    let entry = cache.lookup(&key, &attempt.headers).await;
    let not_found = || {
        Err(Error::new(
            NetworkError::ContentNotFoundError,
            format!("{url} is not in the cache (AlwaysCache)"),
        ))
    };
    let Some(mut entry) = entry else {
        return match control {
            CacheLoadControl::AlwaysCache => not_found(),
            _ => Ok(Before::Send(attempt, None)),
        };
    };
    let policy = entry.policy();
    let shared = cache.is_shared();
    let request = CacheRequest::new(&http::Method::GET, url, &attempt.headers).shared(shared);
    let freshness = policy.freshness(&entry.metadata, &request, SystemTime::now());
    let usable = matches!(
        (&freshness, control),
        (Freshness::Fresh | Freshness::StaleWhileRevalidate { .. }, _)
            | (Freshness::Stale { .. }, CacheLoadControl::AlwaysCache)
            | (
                Freshness::Stale {
                    must_revalidate: false,
                    ..
                },
                CacheLoadControl::PreferCache,
            )
    );
    if attempt.headers.contains_key(header::RANGE) {
        // A range of the stored response, when it holds the bytes and may be used as is.
        let asked = range::request_range(&attempt.headers)
            .filter(|_| !attempt.headers.contains_key(header::IF_RANGE));
        let slice = asked
            .filter(|_| usable && !policy.content_coded())
            .and_then(|asked| range::slice(&entry.metadata, entry.body.len(), asked));
        return match (slice, control) {
            (Some(slice), _) => Ok(Before::Hit(Stored {
                slice: Some(slice),
                ..Stored::whole(url, entry)
            })),
            (None, CacheLoadControl::AlwaysCache) => not_found(),
            (None, _) => Ok(Before::Send(attempt, None)),
        };
    }
    if entry.metadata.status == http::StatusCode::PARTIAL_CONTENT {
        // Part of the representation only: it cannot answer a request for all of it. A fresh
        // first part of a strong representation is completed by asking for the rest only.
        let rest = (control != CacheLoadControl::AlwaysCache && usable)
            .then(|| completion_request(reply, &attempt, &entry, &policy))
            .flatten();
        if let Some(rest) = rest {
            complete_the_part(ctx, rest).await;
            if let Some(whole) = cache.lookup(&key, &attempt.headers).await {
                if whole.metadata.status == http::StatusCode::OK {
                    return Ok(Before::Completed(Stored::whole(url, whole)));
                }
            }
        }
        return match control {
            CacheLoadControl::AlwaysCache => not_found(),
            _ => Ok(Before::Send(attempt, None)),
        };
    }
    let in_background = background(|_, replies| replies.contains(&reply_id(reply)));
    match freshness {
        Freshness::StaleWhileRevalidate { .. } if !in_background => {
            revalidate_in_background(ctx, reply, &attempt, cache, &key);
            Ok(Before::Hit(Stored::whole(url, entry)))
        }
        _ if usable && !(in_background && freshness != Freshness::Fresh) => {
            Ok(Before::Hit(Stored::whole(url, entry)))
        }
        _ if control == CacheLoadControl::AlwaysCache => not_found(),
        Freshness::Stale {
            revalidation_headers,
            ..
        }
        | Freshness::StaleWhileRevalidate {
            revalidation_headers,
        } => {
            let mut attempt = attempt;
            for (name, value) in &revalidation_headers {
                attempt = attempt.with(name.clone(), value.clone());
            }
            Ok(Before::Send(attempt, Some(entry)))
        }
        _ => Ok(Before::Send(attempt, None)),
    }
}

fn reply_id(reply: &ReplyShared) -> usize {
    reply as *const ReplyShared as usize
}

/// The request that completes the stored first part `entry` (bytes `0..=k` of `n`, with a
/// strong `ETag`): `bytes=k+1-` with `If-Range`. `None` when `entry` is not such a part.
fn completion_request(
    reply: &ReplyShared,
    attempt: &Attempt,
    entry: &CachedEntry,
    policy: &StoredPolicy,
) -> Option<crate::Request> {
    let part = range::content_range(&entry.metadata.headers)?;
    let etag = entry
        .metadata
        .headers
        .get(header::ETAG)
        .filter(|tag| !tag.as_bytes().starts_with(b"W/"));
    let (etag, complete) = (etag?, part.complete?);
    if part.first != 0
        || part.last + 1 >= complete
        || part.len() != entry.body.len()
        || complete > range::MAX_COMBINED_LEN
        || policy.content_coded()
    {
        return None;
    }
    let rest = HeaderValue::from_str(&format!("bytes={}-", part.last + 1)).ok()?;
    let url = attempt.target.url.clone();
    let mut request = reply.request().clone();
    request.set_url(url.clone());
    *request.headers_mut() = attempt.target.headers.clone();
    request.headers_mut().insert(header::RANGE, rest);
    request.headers_mut().insert(header::IF_RANGE, etag.clone());
    Some(
        request
            .with_cache_load_control(CacheLoadControl::PreferNetwork)
            .with_cache_save_control(true)
            .with_max_body_size(range::MAX_COMBINED_LEN),
    )
}

/// Sends `request` (from [`completion_request`]) on a reply nobody sees and waits for it: its
/// 206 is combined with the stored part into a complete 200 (RFC 9111 §3.4), its 200 (the
/// representation changed) replaces the part.
async fn complete_the_part(ctx: &Context, request: crate::Request) {
    let Some(url) = request.url().cloned() else {
        return;
    };
    let hidden = Reply::new(
        request,
        Operation::Get,
        url,
        Arc::new(ManagerSignals::new()),
    );
    let task = ctx.runtime.spawn(super::run(
        Arc::new(ctx.clone()),
        hidden.shared().clone(),
        Body::empty(),
    ));
    let _ = task.await;
}

/// Starts a request that revalidates `key` (served stale meanwhile) with the headers of
/// `attempt`, unless one is running already. It goes through the whole pipeline (its 304
/// refreshes the entry, its 200 replaces it) on a reply nobody sees.
fn revalidate_in_background(
    ctx: &Context,
    reply: &ReplyShared,
    attempt: &Attempt,
    cache: &Arc<dyn Cache>,
    key: &CacheKey,
) {
    let cache_id = Arc::as_ptr(cache) as *const () as usize;
    let slot = format!("{cache_id:x} {}", key.as_str());
    if !background(|keys, _| keys.insert(slot.clone())) {
        return;
    }
    let url = attempt.target.url.clone();
    let mut request = reply.request().clone();
    request.set_url(url.clone());
    *request.headers_mut() = attempt.target.headers.clone();
    let request = request.with_cache_load_control(CacheLoadControl::PreferNetwork);
    let hidden = Reply::new(
        request,
        Operation::Get,
        url,
        Arc::new(ManagerSignals::new()),
    );
    let shared = hidden.shared().clone();
    let id = reply_id(&shared);
    background(|_, replies| replies.insert(id));
    let ctx = Arc::new(ctx.clone());
    let runtime = ctx.runtime.clone();
    runtime.spawn(async move {
        super::run(ctx, shared, Body::empty()).await;
        background(|keys, replies| {
            keys.remove(&slot);
            replies.remove(&id);
        });
        drop(hidden);
    });
}

/// The cache stage after a response head (sent at `sent_at`): `None` lets the later stages
/// decide.
pub(super) async fn after(
    ctx: &Context,
    attempt: &Attempt,
    head: Head<'_>,
    revalidating: Option<CachedEntry>,
    sent_at: SystemTime,
) -> Option<Step> {
    let cache = ctx.config.cache.as_ref()?;
    let url = &attempt.target.url;
    let method = attempt.target.operation.method();
    if !matches!(
        method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::TRACE
    ) {
        for url in policy::invalidated_urls(&method, url, head.status, head.headers) {
            cache.remove(&CacheKey::get(&url)).await;
        }
    }
    let mut entry = revalidating?;
    let key = CacheKey::get(url);
    if head.status == http::StatusCode::NOT_MODIFIED {
        let merged = policy::merge_304(&entry.metadata, head.headers, sent_at, SystemTime::now());
        return Some(match merged {
            Some(metadata) => {
                cache.update_metadata(&key, metadata.clone()).await;
                let refreshed = CachedEntry::new(metadata, entry.body, SystemTime::now());
                Step::Stored(Box::new(Stored::whole(url, refreshed)))
            }
            // The validator changed: the stored body is useless; ask again without it.
            None => {
                cache.remove(&key).await;
                Step::Retry
            }
        });
    }
    let policy = entry.policy();
    let shared = cache.is_shared();
    if policy::is_error_status(head.status)
        && policy.may_serve_on_error(&attempt.headers, shared, SystemTime::now())
    {
        return Some(Step::Stored(Box::new(Stored::whole(url, entry))));
    }
    None
}

/// When an attempt that revalidated `entry` failed without a response (the connection
/// refused or reset): the stored copy, if `stale-if-error` (or Qt's fallback) allows it.
pub(super) fn on_failure(
    ctx: &Context,
    attempt: &Attempt,
    entry: Option<CachedEntry>,
) -> Option<Stored> {
    let cache = ctx.config.cache.as_ref()?;
    let mut entry = entry?;
    let policy = entry.policy();
    policy
        .may_serve_on_error(&attempt.headers, cache.is_shared(), SystemTime::now())
        .then(|| Stored::whole(&attempt.target.url, entry))
}

/// A writer storing the response about to be delivered, when it may be stored.
pub(super) fn writer(
    ctx: &Context,
    reply: &ReplyShared,
    attempt: &Attempt,
    exchange: &Exchange,
) -> Option<Box<dyn CacheWriter>> {
    let cache = ctx.config.cache.as_ref()?;
    let target = &attempt.target;
    if !reply.request().cache_save_control() || target.operation != Operation::Get {
        return None;
    }
    let request = CacheRequest::new(&http::Method::GET, &target.url, &attempt.headers)
        .shared(cache.is_shared());
    let head = exchange.head();
    if !policy::storable(&request, head.status, head.headers) {
        return None;
    }
    let now = SystemTime::now();
    let metadata = CacheMetadata::new(
        head.status,
        head.headers,
        &attempt.headers,
        exchange.sent_at.unwrap_or(now),
        now,
    );
    let key = CacheKey::get(&target.url);
    if head.status == http::StatusCode::PARTIAL_CONTENT {
        return Some(Box::new(PartialWriter {
            cache: cache.clone(),
            key,
            request_headers: attempt.headers.clone(),
            metadata,
            body: Vec::new(),
            too_large: false,
        }));
    }
    Some(cache.begin_store(&key, metadata))
}

/// Stores a 206 (RFC 9111 §3.4): combined with a stored part of the same representation
/// (same strong `ETag`) when the two overlap or touch, which becomes a complete 200 once it
/// covers everything; stored alone otherwise. A stored complete response is never replaced
/// by a part of itself.
struct PartialWriter {
    cache: Arc<dyn Cache>,
    key: CacheKey,
    request_headers: http::HeaderMap,
    metadata: CacheMetadata,
    body: Vec<u8>,
    too_large: bool,
}

impl CacheWriter for PartialWriter {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if self.too_large || (self.body.len() + chunk.len()) as u64 > range::MAX_COMBINED_LEN {
            self.too_large = true;
            self.body = Vec::new();
            return Err(std::io::Error::other(
                "partial response too large to combine",
            ));
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    fn commit(self: Box<Self>) -> CacheFuture<'static, std::io::Result<()>> {
        Box::pin(async move {
            let this = *self;
            let new_range = range::content_range(&this.metadata.headers)
                .filter(|r| r.len() == this.body.len() as u64 && !this.too_large)
                .ok_or_else(|| std::io::Error::other("the 206 body does not match its range"))?;
            let stored = this.cache.lookup(&this.key, &this.request_headers).await;
            let (metadata, body) = match stored {
                Some(old)
                    if range::same_representation(
                        &old.metadata.headers,
                        &this.metadata.headers,
                    ) =>
                {
                    if old.metadata.status == http::StatusCode::OK {
                        return Ok(()); // the stored complete response holds this part
                    }
                    let old_body = old.body.bytes().await?;
                    let combined = range::content_range(&old.metadata.headers)
                        .filter(|r| r.len() == old_body.len() as u64)
                        .and_then(|r| range::combine((r, &old_body), (new_range, &this.body)));
                    match combined {
                        Some((r, body)) => (
                            range::combined_metadata(&old.metadata, &this.metadata, r),
                            body,
                        ),
                        None => (this.metadata, this.body),
                    }
                }
                Some(old) if old.metadata.status == http::StatusCode::OK => return Ok(()),
                _ => (this.metadata, this.body),
            };
            let mut writer = this.cache.begin_store(&this.key, metadata);
            writer.write(&body)?;
            writer.commit().await
        })
    }
}

impl Stored {
    /// Delivers the stored status and headers (with `Age`) and the stored body, decoded as a
    /// network one would be (a range of it as a 206). `from_cache`: no request reached the
    /// server (Qt's `SourceIsFromCacheAttribute`; a 304's answer is not).
    pub(super) async fn deliver(
        self,
        reply: &Arc<ReplyShared>,
        from_cache: bool,
    ) -> Result<Option<Error>, Error> {
        let now = SystemTime::now();
        let mut headers = self.metadata.headers;
        headers.insert(
            header::AGE,
            HeaderValue::from(self.policy.current_age(now).as_secs()),
        );
        let status = match &self.slice {
            Some(slice) => {
                headers = range::slice_headers(headers, slice);
                http::StatusCode::PARTIAL_CONTENT
            }
            None => self.metadata.status,
        };
        let meta = Meta {
            status: Some(status),
            reason: status.canonical_reason().map(str::to_owned),
            original_content_length: deliver::content_length(&headers),
            headers,
            version: Some(http::Version::HTTP_11),
            encrypted: false,
            http2: false,
            from_cache,
            redirection_target: None,
            tls_version: None,
            tls_cipher: None,
            ssl_session: None,
            timings: Default::default(),
        };
        // A HEAD answered from the cache: the stored body belongs to the GET.
        let head = *reply.operation() == Operation::Head;
        let (skip, take) = match (&self.slice, head) {
            (_, true) => (0, 0),
            (Some(slice), false) => (slice.offset, slice.len),
            (None, false) => (0, u64::MAX),
        };
        let body = cut(self.body, skip, take);
        let body = body.map(|chunk| {
            chunk.map_err(|e| {
                Error::new(
                    NetworkError::ProtocolFailure,
                    format!("Reading the cached body failed: {e}"),
                )
                .with_source(e)
            })
        });
        deliver::deliver(reply, &self.url, meta, body, Decoding::Http).await
    }
}

/// The bytes `skip..skip + take` of `body`, as a stream (no copy of an in-memory body).
fn cut(
    body: CachedBody,
    skip: u64,
    take: u64,
) -> impl futures_core::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    body.into_stream()
        .scan((skip, take), |(skip, take), chunk| {
            if *take == 0 {
                return std::future::ready(None);
            }
            let out = match chunk {
                Err(e) => Some(Err(e)),
                Ok(bytes) => {
                    let n = bytes.len() as u64;
                    if *skip >= n {
                        *skip -= n;
                        None
                    } else {
                        let start = *skip as usize;
                        *skip = 0;
                        let end = (start as u64).saturating_add(*take).min(n) as usize;
                        *take -= (end - start) as u64;
                        Some(Ok(bytes.slice(start..end)))
                    }
                }
            };
            std::future::ready(Some(out))
        })
        .filter_map(std::future::ready)
}
