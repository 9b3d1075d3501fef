//! Cookbook: an interceptor that refreshes an auth token. It puts the current token on every
//! attempt; when a response is a 401, it gets a new token (here: a fixed one; a real client
//! would call its identity provider) and asks for the same request again, once.
//!
//! ```sh
//! cargo run --example token_refresh -- http://127.0.0.1:8080/basic-auth/user/pass
//! ```

use std::sync::{Arc, Mutex};

use netaccess::{
    AfterHead, BeforeSend, BoxFuture, InterceptedRequest, InterceptedResponse, Interceptor,
    NetworkAccessManager, Request,
};

struct TokenRefresher {
    token: Mutex<String>,
}

impl TokenRefresher {
    /// Stands for a call to an identity provider.
    fn fetch_new_token(&self) -> String {
        "Basic dXNlcjpwYXNz".to_owned() // user:pass
    }
}

impl Interceptor for TokenRefresher {
    fn before_send<'a>(&'a self, request: &'a mut InterceptedRequest) -> BoxFuture<'a, BeforeSend> {
        Box::pin(async move {
            let token = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
            request.set_header("authorization", &token);
            BeforeSend::Send
        })
    }

    fn after_head<'a>(&'a self, response: &'a InterceptedResponse<'a>) -> BoxFuture<'a, AfterHead> {
        Box::pin(async move {
            if response.status() != 401 || response.attempt() > 1 {
                return AfterHead::Continue;
            }
            let fresh = self.fetch_new_token();
            *self.token.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
            println!("401 on attempt {}: token refreshed", response.attempt());
            AfterHead::Retry
        })
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: token_refresh URL");
        std::process::exit(2);
    });
    let refresher = Arc::new(TokenRefresher {
        token: Mutex::new("Bearer expired".to_owned()),
    });
    let manager = NetworkAccessManager::builder()
        .interceptor(refresher)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("token_refresh: {e}");
            std::process::exit(2);
        });
    let reply = manager.get(Request::new(url));
    reply.finished().await;
    println!("status {:?}", reply.status().map(|s| s.as_u16()));
}
