//! The stages without sockets: each is given an attempt and a response head, and must
//! return the step the attempt loop expects.

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{HeaderMap, HeaderValue};
use http::StatusCode;
use url::Url;

use super::attempt::{Attempt, Head, Redirect, Step, Target};
use super::{auth, cache, session};
use crate::cache::{Cache, CacheKey, CacheLoadControl, CacheMetadata, MemoryCache};
use crate::context::Context;
use crate::error::NetworkError;
use crate::manager::NetworkAccessManager;
use crate::redirect::RedirectPolicy;
use crate::reply::ReplyShared;
use crate::request::{Operation, Request};
use crate::upload::Body;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

fn target(u: &str, operation: Operation) -> Target {
    Target {
        url: url(u),
        operation,
        headers: HeaderMap::new(),
        body: Body::empty(),
    }
}

fn attempt(u: &str) -> Attempt {
    Attempt::new(target(u, Operation::Get), None, None).unwrap()
}

/// A context and an unstarted reply for `request`.
fn setup(manager: &NetworkAccessManager, request: Request) -> (Arc<Context>, Arc<ReplyShared>) {
    let reply = manager.unstarted_reply(request, Operation::Get);
    (manager.context(), reply.shared().clone())
}

fn head(status: u16, h: &HeaderMap) -> Head<'_> {
    Head {
        status: StatusCode::from_u16(status).unwrap(),
        headers: h,
    }
}

#[test]
fn an_attempt_merges_the_jar_cookies_and_offers_the_codings() {
    let mut t = target("http://a.test/", Operation::Get);
    t.headers = headers(&[("cookie", "own=1")]);
    let agent = HeaderValue::from_static("netaccess/test");
    let a = Attempt::new(t, Some("jar=2".into()), Some(&agent)).unwrap();
    assert_eq!(a.headers["user-agent"], "netaccess/test");
    assert_eq!(a.headers["cookie"], "own=1; jar=2");
    assert_eq!(a.headers["accept-encoding"], crate::decode::ACCEPT_ENCODING);
    let bad = Attempt::new(
        target("http://a.test/", Operation::Get),
        Some("a=\n".into()),
        None,
    );
    let e = bad.err().unwrap();
    assert_eq!(e.kind(), NetworkError::ProtocolInvalidOperationError);
}

#[tokio::test]
async fn a_401_with_user_info_is_answered_and_the_credentials_are_then_reused() {
    let manager = NetworkAccessManager::new();
    let (ctx, reply) = setup(&manager, Request::new("http://u:p@a.test/x"));
    let mut progress = auth::Progress::default();
    let first = progress.before(&ctx, &reply, attempt("http://u:p@a.test/x"));
    assert!(!first.headers.contains_key("authorization"));
    let challenge = headers(&[("www-authenticate", "Basic realm=\"r\"")]);
    let step = progress
        .after(&ctx, &reply, &first, head(401, &challenge))
        .await;
    assert!(matches!(step, Some(Step::Retry)));
    let second = progress.before(&ctx, &reply, attempt("http://u:p@a.test/x"));
    assert_eq!(second.headers["authorization"], "Basic dTpw");
    let ok = HeaderMap::new();
    assert!(progress
        .after(&ctx, &reply, &second, head(200, &ok))
        .await
        .is_none());
    // A later request under the same path sends them at once (Qt's AuthenticationReuse).
    let mut fresh = auth::Progress::default();
    let reused = fresh.before(&ctx, &reply, attempt("http://a.test/x/y"));
    assert_eq!(reused.headers["authorization"], "Basic dTpw");
}

#[tokio::test]
async fn a_401_without_a_challenge_or_after_ten_rounds_is_delivered() {
    let manager = NetworkAccessManager::new();
    let (ctx, reply) = setup(&manager, Request::new("http://u:p@a.test/"));
    let mut progress = auth::Progress::default();
    let bare = HeaderMap::new();
    let a = attempt("http://u:p@a.test/");
    assert!(progress
        .after(&ctx, &reply, &a, head(401, &bare))
        .await
        .is_none());
    // Digest answers again on a stale nonce: ten rounds at most.
    let stale = headers(&[(
        "www-authenticate",
        "Digest realm=\"r\", nonce=\"n\", stale=true",
    )]);
    let mut rounds = 0;
    loop {
        let a = progress.before(&ctx, &reply, attempt("http://u:p@a.test/"));
        match progress.after(&ctx, &reply, &a, head(401, &stale)).await {
            Some(Step::Retry) => rounds += 1,
            None => break,
            Some(_) => panic!("unexpected step"),
        }
        assert!(rounds <= 10, "never gave up");
    }
    assert_eq!(rounds, 10);
}

#[tokio::test]
async fn the_redirect_stage_follows_and_strips_what_must_not_cross() {
    let manager = NetworkAccessManager::new();
    let request = Request::new("http://a.test/form");
    let (ctx, reply) = setup(&manager, request.clone());
    let mut t = target("http://a.test/form", Operation::Post);
    t.headers = headers(&[("authorization", "Basic x"), ("content-type", "text/plain")]);
    t.body = Body::from("abc");
    let a = Attempt::new(t, None, None).unwrap();
    let location = headers(&[("location", "http://b.test/done")]);
    let mut journey = super::attempt::tests_support::journey(&ctx, &request);
    let Step::Follow(redirect) = journey.redirect(&request, &a, head(302, &location)) else {
        panic!("a 302 is followed");
    };
    let next = redirect.target;
    assert_eq!(next.url, url("http://b.test/done"));
    assert_eq!(
        next.operation,
        Operation::Get,
        "a POST after 302 becomes a GET"
    );
    assert!(next.body.is_absent());
    assert!(next.headers.is_empty(), "{:?}", next.headers);
    let followed = journey.follow(&ctx, &reply, redirect_to(next)).await;
    assert_eq!(followed.url, url("http://b.test/done"));
    assert_eq!(reply.handle().url(), url("http://b.test/done"));
}

/// A redirect to `target` that needs no permission.
fn redirect_to(target: Target) -> Redirect {
    Redirect {
        target,
        ask_first: false,
    }
}

#[tokio::test]
async fn the_redirect_stage_delivers_under_manual_and_fails_past_the_limit() {
    let manager = NetworkAccessManager::builder()
        .redirect_policy(RedirectPolicy::Manual)
        .build()
        .unwrap();
    let request = Request::new("http://a.test/");
    let (ctx, _reply) = setup(&manager, request.clone());
    let location = headers(&[("location", "/next")]);
    let journey = super::attempt::tests_support::journey(&ctx, &request);
    let a = attempt("http://a.test/");
    assert!(matches!(
        journey.redirect(&request, &a, head(301, &location)),
        Step::Deliver
    ));
    let request = Request::new("http://a.test/")
        .with_redirect_policy(RedirectPolicy::NoLessSafe)
        .with_max_redirects(0);
    let journey = super::attempt::tests_support::journey(&ctx, &request);
    let Step::Fail(e) = journey.redirect(&request, &a, head(301, &location)) else {
        panic!("over the limit");
    };
    assert_eq!(e.kind(), NetworkError::TooManyRedirectsError);
}

/// A memory cache holding a 200 for `u` with these response headers.
async fn cache_with(u: &str, response: &[(&str, &str)]) -> Arc<MemoryCache> {
    let cache = Arc::new(MemoryCache::new(1 << 20));
    let sent = attempt(u).headers;
    let now = SystemTime::now();
    let meta = CacheMetadata::new(StatusCode::OK, &headers(response), &sent, now, now);
    let mut writer = cache.begin_store(&CacheKey::get(&url(u)), meta);
    writer.write(b"stored").unwrap();
    writer.commit().await.unwrap();
    cache
}

#[tokio::test]
async fn the_cache_stage_answers_fresh_and_revalidates_stale() {
    let fresh = cache_with("http://a.test/f", &[("cache-control", "max-age=600")]).await;
    let manager = NetworkAccessManager::builder()
        .cache(fresh)
        .build()
        .unwrap();
    let (ctx, reply) = setup(&manager, Request::new("http://a.test/f"));
    let before = cache::before(&ctx, &reply, attempt("http://a.test/f"))
        .await
        .unwrap();
    assert!(matches!(before, cache::Before::Hit(_)));

    let stale = cache_with(
        "http://a.test/s",
        &[("cache-control", "max-age=0"), ("etag", "\"v1\"")],
    )
    .await;
    let manager = NetworkAccessManager::builder()
        .cache(stale)
        .build()
        .unwrap();
    let (ctx, reply) = setup(&manager, Request::new("http://a.test/s"));
    let before = cache::before(&ctx, &reply, attempt("http://a.test/s"))
        .await
        .unwrap();
    let cache::Before::Send(sent, Some(entry)) = before else {
        panic!("a stale entry with a validator is revalidated");
    };
    assert_eq!(sent.headers["if-none-match"], "\"v1\"");
    let not_modified = headers(&[("etag", "\"v1\"")]);
    let now = SystemTime::now();
    let step = cache::after(&ctx, &sent, head(304, &not_modified), Some(entry), now).await;
    assert!(
        matches!(step, Some(Step::Stored(_))),
        "a 304 serves the stored body"
    );
}

#[tokio::test]
async fn always_network_asks_caches_not_to_answer_and_always_cache_never_sends() {
    let cache = cache_with("http://a.test/f", &[("cache-control", "max-age=600")]).await;
    let manager = NetworkAccessManager::builder()
        .cache(cache)
        .build()
        .unwrap();
    let request =
        Request::new("http://a.test/f").with_cache_load_control(CacheLoadControl::AlwaysNetwork);
    let (ctx, reply) = setup(&manager, request);
    let before = cache::before(&ctx, &reply, attempt("http://a.test/f"))
        .await
        .unwrap();
    let cache::Before::Send(sent, None) = before else {
        panic!("AlwaysNetwork goes to the network");
    };
    assert_eq!(sent.headers["cache-control"], "no-cache");

    let request = Request::new("http://a.test/missing")
        .with_cache_load_control(CacheLoadControl::AlwaysCache);
    let (ctx, reply) = setup(&manager, request);
    let missing = cache::before(&ctx, &reply, attempt("http://a.test/missing")).await;
    let e = missing.err().expect("nothing stored");
    assert_eq!(e.kind(), NetworkError::ContentNotFoundError);
}

#[tokio::test]
async fn an_unsafe_method_invalidates_the_stored_response() {
    let cache = cache_with("http://a.test/r", &[("cache-control", "max-age=600")]).await;
    let manager = NetworkAccessManager::builder()
        .cache(cache.clone())
        .build()
        .unwrap();
    let (ctx, _reply) = setup(&manager, Request::new("http://a.test/r"));
    let post = Attempt::new(target("http://a.test/r", Operation::Post), None, None).unwrap();
    let ok = HeaderMap::new();
    let step = cache::after(&ctx, &post, head(200, &ok), None, SystemTime::now()).await;
    assert!(step.is_none());
    let sent = attempt("http://a.test/r").headers;
    let key = CacheKey::get(&url("http://a.test/r"));
    assert!(cache.lookup(&key, &sent).await.is_none(), "invalidated");
}

#[test]
fn hsts_is_learned_only_over_a_secure_channel() {
    let manager = NetworkAccessManager::builder()
        .strict_transport_security(true)
        .build()
        .unwrap();
    let ctx = &manager.context();
    let request = Request::new("https://a.test/");
    let sts = headers(&[("strict-transport-security", "max-age=600")]);
    session::remember(ctx, &request, &url("https://a.test/"), &sts, false);
    assert!(ctx.hsts_upgrade(&url("http://a.test/")).is_none());
    session::remember(ctx, &request, &url("https://a.test/"), &sts, true);
    let upgraded = ctx.hsts_upgrade(&url("http://a.test/")).unwrap();
    assert_eq!(upgraded.scheme(), "https");
}
