//! Interceptors against a real server: headers changed on every attempt (redirects
//! included), a token refreshed after a 401 and the request sent again, answers made up
//! without a socket, the order they run in, and the bound on retries.
// The signing test reads JSON (`json` feature); without it, its interceptor goes unused.
#![cfg_attr(not(feature = "json"), allow(dead_code))]

mod support;

use std::sync::{Arc, Mutex};

use netaccess::{
    AfterHead, BeforeSend, BoxFuture, InterceptedRequest, InterceptedResponse, Interceptor,
    NetworkAccessManager, NetworkError, Request, SyntheticResponse,
};
use netaccess_testserver::TestServer;
use support::{done, kind};

/// Adds `x-signed: <method> <path>` to every attempt and counts them.
struct Signer(Mutex<Vec<String>>);

impl Interceptor for Signer {
    fn before_send<'a>(&'a self, request: &'a mut InterceptedRequest) -> BoxFuture<'a, BeforeSend> {
        Box::pin(async move {
            let signature = format!("{} {}", request.method(), request.url().path());
            assert!(request.set_header("x-signed", &signature));
            self.0.lock().unwrap().push(signature);
            BeforeSend::Send
        })
    }
}

#[cfg(feature = "json")]
#[tokio::test]
async fn an_interceptor_signs_every_attempt_redirects_included() {
    let server = TestServer::http1().await;
    let signer = Arc::new(Signer(Mutex::new(Vec::new())));
    let manager = NetworkAccessManager::builder()
        .interceptor(signer.clone())
        .build()
        .unwrap();
    let reply = manager.get(Request::new(server.url("/redirect-to?url=/echo")));
    let echo: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(echo["headers"]["x-signed"], "GET /echo");
    assert_eq!(
        *signer.0.lock().unwrap(),
        ["GET /redirect-to", "GET /echo"],
        "both attempts"
    );
}

/// Sends its token as Basic credentials; after a 401 on the first attempt it takes the
/// right one and asks for the request again.
struct Refresher {
    token: Mutex<&'static str>,
    refreshed: Mutex<u32>,
}

impl Interceptor for Refresher {
    fn before_send<'a>(&'a self, request: &'a mut InterceptedRequest) -> BoxFuture<'a, BeforeSend> {
        Box::pin(async move {
            let token = *self.token.lock().unwrap();
            request.set_header("authorization", &format!("Basic {token}"));
            BeforeSend::Send
        })
    }

    fn after_head<'a>(&'a self, response: &'a InterceptedResponse<'a>) -> BoxFuture<'a, AfterHead> {
        Box::pin(async move {
            if response.status() == 401 {
                *self.token.lock().unwrap() = "dXNlcjpwYXNz"; // user:pass
                *self.refreshed.lock().unwrap() += 1;
                return AfterHead::Retry;
            }
            AfterHead::Continue
        })
    }
}

#[tokio::test]
async fn an_interceptor_refreshes_a_token_after_a_401_and_retries() {
    let server = TestServer::http1().await;
    let refresher = Arc::new(Refresher {
        token: Mutex::new("d3Jvbmc6d3Jvbmc="), // wrong:wrong
        refreshed: Mutex::new(0),
    });
    let manager = NetworkAccessManager::builder()
        .interceptor(refresher.clone())
        .build()
        .unwrap();
    let reply = manager.get(Request::new(server.url("/basic-auth/user/pass")));
    done(&reply).await;
    assert_eq!(
        reply.status().map(|s| s.as_u16()),
        Some(200),
        "{:?}",
        reply.error()
    );
    assert_eq!(*refresher.refreshed.lock().unwrap(), 1);
    assert_eq!(server.requests_for("/basic-auth/user/pass"), 2);
}

/// Answers `/mock/...` itself.
struct Mock;

impl Interceptor for Mock {
    fn before_send<'a>(&'a self, request: &'a mut InterceptedRequest) -> BoxFuture<'a, BeforeSend> {
        Box::pin(async move {
            match request.url().path() {
                "/mock/ok" => BeforeSend::Respond(
                    SyntheticResponse::new(200, "mocked").with_header("x-mock", "1"),
                ),
                "/mock/down" => BeforeSend::Respond(SyntheticResponse::new(503, "")),
                _ => BeforeSend::Send,
            }
        })
    }
}

#[tokio::test]
async fn an_interceptor_answers_without_a_socket() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .interceptor(Arc::new(Mock))
        .build()
        .unwrap();
    let ok = manager.get(Request::new(server.url("/mock/ok")));
    assert_eq!(ok.text().await.unwrap(), "mocked");
    assert_eq!(ok.header("x-mock").unwrap(), "1");
    assert!(ok.is_success());
    let down = manager.get(Request::new(server.url("/mock/down")));
    done(&down).await;
    assert_eq!(kind(&down), Some(NetworkError::ServiceUnavailableError));
    assert_eq!(
        server.stats().connections_accepted,
        0,
        "no socket was opened"
    );
    let real = manager.get(Request::new(server.url("/hello")));
    assert_eq!(real.text().await.unwrap(), "hello");
}

/// Logs its name in both hooks; `retry` asks for every response again.
struct Named {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    retry: bool,
}

impl Interceptor for Named {
    fn before_send<'a>(
        &'a self,
        _request: &'a mut InterceptedRequest,
    ) -> BoxFuture<'a, BeforeSend> {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap()
                .push(format!("before {}", self.name));
            BeforeSend::Send
        })
    }

    fn after_head<'a>(
        &'a self,
        _response: &'a InterceptedResponse<'a>,
    ) -> BoxFuture<'a, AfterHead> {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap()
                .push(format!("after {}", self.name));
            if self.retry {
                AfterHead::Retry
            } else {
                AfterHead::Continue
            }
        })
    }
}

#[tokio::test]
async fn interceptors_run_in_order_and_their_retries_are_bounded() {
    let server = TestServer::http1().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let named = |name, retry| {
        Arc::new(Named {
            name,
            log: log.clone(),
            retry,
        })
    };
    let manager = NetworkAccessManager::builder()
        .interceptor(named("a", false))
        .interceptor(named("b", false))
        .build()
        .unwrap();
    let reply = manager.get(Request::new(server.url("/hello")));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert_eq!(
        *log.lock().unwrap(),
        ["before a", "before b", "after a", "after b"]
    );

    let looping = NetworkAccessManager::builder()
        .interceptor(named("always", true))
        .build()
        .unwrap();
    let reply = looping.get(Request::new(server.url("/status/500")));
    done(&reply).await;
    let limit = netaccess::limits::MAX_INTERCEPTOR_RETRIES as u64;
    assert_eq!(
        server.requests_for("/status/500"),
        limit + 1,
        "then delivered as it is"
    );
    assert_eq!(kind(&reply), Some(NetworkError::InternalServerError));
}
