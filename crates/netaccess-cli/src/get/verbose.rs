//! `-v`: each request head as it goes out (`> `) and each response head as it comes in
//! (`< `), on stderr, as an interceptor, so redirects, authentication rounds and retries
//! all show. Credentials are never printed: `Authorization`, `Proxy-Authorization`,
//! `Cookie` and `Set-Cookie` values are shown as `[redacted]`.
//!
//! `-D FILE` is an interceptor too ([`DumpHeads`]): every response head, redirects, 401s and
//! retried attempts included, as `# URL`, `HTTP STATUS REASON`, the header lines (values as
//! received: this file is the user's own) and an empty line.

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

/// The `-D FILE` interceptor.
pub(super) struct DumpHeads {
    file: std::sync::Mutex<std::fs::File>,
}

impl DumpHeads {
    /// Creates (or truncates) FILE.
    pub(super) fn create(path: &std::path::Path) -> std::io::Result<DumpHeads> {
        Ok(DumpHeads {
            file: std::sync::Mutex::new(std::fs::File::create(path)?),
        })
    }
}

impl Interceptor for DumpHeads {
    fn after_head<'a>(&'a self, response: &'a InterceptedResponse<'a>) -> BoxFuture<'a, AfterHead> {
        Box::pin(async move {
            let status = response.status();
            let mut block = format!(
                "# {}\r\nHTTP {} {}\r\n",
                netaccess::display_url(response.url()),
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            for (name, value) in response.headers() {
                block.push_str(&format!(
                    "{name}: {}\r\n",
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
            block.push_str("\r\n");
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = file.write_all(block.as_bytes());
            AfterHead::Continue
        })
    }
}
