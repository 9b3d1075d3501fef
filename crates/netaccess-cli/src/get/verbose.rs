//! `-v`: each request head as it goes out (`> `) and each response head as it comes in
//! (`< `), on stderr, as an interceptor, so redirects, authentication rounds and retries
//! all show. Credentials are never printed: `Authorization`, `Proxy-Authorization`,
//! `Cookie` and `Set-Cookie` values are shown as `[redacted]`.

use std::io::Write;

use netaccess::http::HeaderMap;
use netaccess::{
    AfterHead, BeforeSend, BoxFuture, InterceptedRequest, InterceptedResponse, Interceptor,
};

/// The `-v` interceptor.
pub(super) struct Verbose;

/// Header names whose values hold secrets.
const SECRET: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

fn write_headers(out: &mut String, prefix: &str, headers: &HeaderMap) {
    for (name, value) in headers {
        let value = if SECRET.contains(&name.as_str()) {
            "[redacted]".into()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        out.push_str(&format!("{prefix} {name}: {value}\n"));
    }
}

/// One block on stderr at once, so parallel requests do not interleave line by line.
fn print(block: &str) {
    let _ = std::io::stderr().lock().write_all(block.as_bytes());
}

impl Interceptor for Verbose {
    fn before_send<'a>(&'a self, request: &'a mut InterceptedRequest) -> BoxFuture<'a, BeforeSend> {
        Box::pin(async move {
            let url = request.url();
            let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
            let host = url.host_str().unwrap_or_default();
            let mut block = format!(
                "> {} {target} (to {host}, attempt {})\n",
                request.method(),
                request.attempt()
            );
            write_headers(&mut block, ">", request.headers());
            print(&block);
            BeforeSend::Send
        })
    }

    fn after_head<'a>(&'a self, response: &'a InterceptedResponse<'a>) -> BoxFuture<'a, AfterHead> {
        Box::pin(async move {
            let mut block = format!(
                "< {} (from {})\n",
                response.status(),
                netaccess::display_url(response.url())
            );
            write_headers(&mut block, "<", response.headers());
            print(&block);
            AfterHead::Continue
        })
    }
}
