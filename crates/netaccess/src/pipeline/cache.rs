//! The cache stage (RFC 9111, with Qt's `CacheLoadControl`). Before an attempt: answer
//! from a usable stored response, or add validators (or `no-cache`) and go to the network.
//! After a response head: an unsafe method invalidates, a 304 serves the revalidated entry,
//! a 5xx may serve the stale one (Qt's fallback). For a response about to be delivered: the
//! writer that stores it as it arrives.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt;
use http::header::{self, HeaderValue};
use url::Url;

use super::attempt::{Attempt, Head, Step};
use super::deliver::{self, Decoding};
use super::exchange::Exchange;
use crate::cache::policy::{self, CacheRequest, Freshness};
use crate::cache::{
    CacheKey, CacheLoadControl, CacheMetadata, CacheWriter, CachedBody, CachedEntry,
};
use crate::context::Context;
use crate::error::{Error, NetworkError};
use crate::reply::{Meta, ReplyShared};
use crate::request::Operation;

/// What the cache made of an attempt before it is sent.
pub(super) enum Before {
    /// A stored response answers it; no request goes out.
    Hit(Stored),
    /// Send it (with any validators added), revalidating this stale entry if there is one.
    Send(Attempt, Option<CachedEntry>),
}

/// A stored response to deliver.
pub(crate) struct Stored {
    url: Url,
    metadata: CacheMetadata,
    body: CachedBody,
}

/// The cache stage before an attempt.
pub(super) async fn before(
    ctx: &Context,
    reply: &ReplyShared,
    attempt: Attempt,
) -> Result<Before, Error> {
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
    let entry = cache.lookup(&CacheKey::get(url), &attempt.headers).await;
    let freshness = entry.as_ref().map(|e| {
        let request = CacheRequest::new(&http::Method::GET, url, &attempt.headers);
        policy::freshness(&e.metadata, &request, SystemTime::now())
    });
    let stored = |entry: CachedEntry| Stored {
        url: url.clone(),
        metadata: entry.metadata,
        body: entry.body,
    };
    match (entry, freshness, control) {
        (Some(entry), Some(Freshness::Fresh), _)
        | (Some(entry), Some(Freshness::Stale { .. }), CacheLoadControl::AlwaysCache)
        | (
            Some(entry),
            Some(Freshness::Stale {
                must_revalidate: false,
                ..
            }),
            CacheLoadControl::PreferCache,
        ) => Ok(Before::Hit(stored(entry))),
        (_, _, CacheLoadControl::AlwaysCache) => Err(Error::new(
            NetworkError::ContentNotFoundError,
            format!("{url} is not in the cache (AlwaysCache)"),
        )),
        (
            Some(entry),
            Some(Freshness::Stale {
                revalidation_headers,
                ..
            }),
            _,
        ) => {
            let mut attempt = attempt;
            for (name, value) in &revalidation_headers {
                attempt = attempt.with(name.clone(), value.clone());
            }
            Ok(Before::Send(attempt, Some(entry)))
        }
        _ => Ok(Before::Send(attempt, None)),
    }
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
    let entry = revalidating?;
    let key = CacheKey::get(url);
    if head.status == http::StatusCode::NOT_MODIFIED {
        let merged = policy::merge_304(&entry.metadata, head.headers, sent_at, SystemTime::now());
        return Some(match merged {
            Some(metadata) => {
                cache.update_metadata(&key, metadata.clone()).await;
                Step::Stored(Stored {
                    url: url.clone(),
                    metadata,
                    body: entry.body,
                })
            }
            // The validator changed: the stored body is useless; ask again without it.
            None => {
                cache.remove(&key).await;
                Step::Retry
            }
        });
    }
    if head.status.is_server_error() && policy::may_serve_stale_on_error(&entry.metadata) {
        return Some(Step::Stored(Stored {
            url: url.clone(),
            metadata: entry.metadata,
            body: entry.body,
        }));
    }
    None
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
    let request = CacheRequest::new(&http::Method::GET, &target.url, &attempt.headers);
    let head = exchange.head();
    if !policy::storable(&request, head.status, head.headers) {
        return None;
    }
    let now = SystemTime::now();
    let metadata = CacheMetadata::new(
        head.status,
        head.headers,
        &attempt.headers,
        exchange.sent_at,
        now,
    );
    Some(cache.begin_store(&CacheKey::get(&target.url), metadata))
}

impl Stored {
    /// Delivers the stored status and headers (with `Age`) and the stored body, decoded as a
    /// network one would be. `from_cache`: no request reached the server (Qt's
    /// `SourceIsFromCacheAttribute`; a 304's answer is not).
    pub(super) async fn deliver(
        self,
        reply: &Arc<ReplyShared>,
        from_cache: bool,
    ) -> Result<Option<Error>, Error> {
        let status = self.metadata.status;
        let headers = policy::served_headers(&self.metadata, SystemTime::now());
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
        };
        // A HEAD answered from the cache: the stored body belongs to the GET.
        let head = *reply.operation() == Operation::Head;
        let body = self
            .body
            .into_stream()
            .take(if head { 0 } else { usize::MAX });
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
