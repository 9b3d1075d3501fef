//! Server authentication through the manager: URL user info, the `authentication_required`
//! signal (answered at once or later from another task), the credential cache and pre-emptive
//! reuse, a wrong password then the right one, Basic and Digest (SHA-256) against the test
//! server.

mod support;

use support::done;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netaccess::{NetworkAccessManager, NetworkError, Reply, Request};
use netaccess_testserver::TestServer;
use serde_json::Value;

async fn json(reply: &Reply) -> Value {
    let body = reply.bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// A manager whose slot answers with `answers` in turn and counts the questions.
fn answering(
    answers: Vec<(&'static str, &'static str)>,
) -> (NetworkAccessManager, Arc<AtomicUsize>) {
    let manager = NetworkAccessManager::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let answers = Mutex::new(answers.into_iter());
    manager
        .authentication_required()
        .connect(move |(_reply, request)| {
            count.fetch_add(1, Ordering::SeqCst);
            match answers.lock().unwrap().next() {
                Some((user, password)) => request.answer(user, password),
                None => request.refuse(),
            }
        });
    (manager, asked)
}

#[tokio::test]
async fn url_user_info_answers_basic() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let url = server
        .url("/basic-auth/alice/s3cret")
        .replace("http://", "http://alice:s3cret@");
    let reply = manager.get(Request::new(url));
    assert_eq!(json(&reply).await["user"], "alice");
    assert_eq!(reply.status_code(), Some(200));
}

#[tokio::test]
async fn a_slot_answers_and_the_answer_is_reused() {
    let server = TestServer::http1().await;
    let (manager, asked) = answering(vec![("bob", "pw")]);
    let reply = manager.get(Request::new(server.url("/basic-auth/bob/pw")));
    assert_eq!(json(&reply).await["authenticated"], true);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // Pre-emptive: the next request sends the credentials at once (one request, no 401).
    let before = server.requests_for("/basic-auth/bob/pw");
    let again = manager.get(Request::new(server.url("/basic-auth/bob/pw")));
    assert_eq!(json(&again).await["authenticated"], true);
    assert_eq!(server.requests_for("/basic-auth/bob/pw") - before, 1);
    assert_eq!(asked.load(Ordering::SeqCst), 1, "not asked again");
    // Without reuse: a 401 first, then the cache answers, still without asking.
    let manual = manager
        .get(Request::new(server.url("/basic-auth/bob/pw")).with_authentication_reuse(false));
    assert_eq!(json(&manual).await["authenticated"], true);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // clear_access_cache forgets them: the slot is asked again (and now refuses).
    manager.clear_access_cache();
    let forgotten = manager.get(Request::new(server.url("/basic-auth/bob/pw")));
    done(&forgotten).await;
    assert_eq!(
        forgotten.error().map(|e| e.kind()),
        Some(NetworkError::AuthenticationRequiredError)
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_wrong_password_is_asked_again_then_the_right_one_works() {
    let server = TestServer::http1().await;
    let (manager, asked) = answering(vec![("carol", "wrong"), ("carol", "right")]);
    let reply = manager.get(Request::new(server.url("/basic-auth/carol/right")));
    assert_eq!(json(&reply).await["authenticated"], true);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn no_answer_ends_with_authentication_required() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/basic-auth/dave/pw")));
    done(&reply).await;
    assert_eq!(reply.status_code(), Some(401));
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::AuthenticationRequiredError)
    );
    // An empty answer is no answer.
    let (manager, asked) = answering(vec![("", "")]);
    let reply = manager.get(Request::new(server.url("/basic-auth/dave/pw")));
    done(&reply).await;
    assert_eq!(
        reply.error().map(|e| e.kind()),
        Some(NetworkError::AuthenticationRequiredError)
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_async_handler_answers_later_without_blocking() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    manager
        .authentication_required()
        .connect(|(_reply, request)| {
            request.answer_later();
            let later = request.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await; // a password dialog
                later.answer("erin", "pw");
            });
        });
    // Meanwhile other requests run on the same manager.
    let reply = manager.get(Request::new(server.url("/basic-auth/erin/pw")));
    let other = manager.get(Request::new(server.url("/hello")));
    assert_eq!(other.text().await.unwrap(), "hello");
    assert!(reply.is_running());
    assert_eq!(json(&reply).await["user"], "erin");
}

#[tokio::test]
async fn digest_sha256_and_md5_against_the_test_server() {
    let server = TestServer::http1().await;
    for algorithm in ["MD5", "SHA-256", "SHA-512-256", "MD5-sess", "SHA-256-sess"] {
        let (manager, _) = answering(vec![("frank", "pw")]);
        let url = server.url(&format!("/digest-auth/auth/frank/pw/{algorithm}"));
        let reply = manager.get(Request::new(&url));
        let body = json(&reply).await;
        assert_eq!(body["authenticated"], true, "{algorithm}: {body}");
        assert_eq!(body["algorithm"], algorithm);
        // Pre-emptive Digest: the next request carries nc=00000002 and succeeds at once.
        let before = server.requests_for(&format!("/digest-auth/auth/frank/pw/{algorithm}"));
        let again = manager.get(Request::new(&url));
        assert_eq!(
            json(&again).await["authenticated"],
            true,
            "{algorithm} again"
        );
        assert_eq!(
            server.requests_for(&format!("/digest-auth/auth/frank/pw/{algorithm}")) - before,
            1
        );
    }
}

#[tokio::test]
async fn digest_auth_int_hashes_the_body_and_stale_nonces_retry_silently() {
    let server = TestServer::http1().await;
    let (manager, asked) = answering(vec![("gina", "pw")]);
    let reply = manager.post(
        Request::new(server.url("/digest-auth/auth-int/gina/pw/SHA-256")),
        "the body",
    );
    assert_eq!(json(&reply).await["qop"], "auth-int");
    // A nonce that goes stale after one use: the manager answers the stale challenge itself.
    let url = server.url("/digest-auth/auth/gina/pw/MD5?stale_after=1");
    for _ in 0..3 {
        let reply = manager.get(Request::new(&url));
        assert_eq!(json(&reply).await["authenticated"], true);
    }
    // One protection space (origin and realm): asked once in all, never for a stale nonce.
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}
