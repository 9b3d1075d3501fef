//! `netaccess get`: every URL to one manager at once; bodies to stdout in URL order, or one
//! JSON object per reply with `--json`. Exit 0 when every reply succeeded, 1 otherwise, 2 for
//! bad usage.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use netaccess::{NetworkAccessManager, Reply, Request};
use serde_json::{json, Map, Value};

/// Arguments of `netaccess get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// URLs to download
    #[arg(required = true)]
    urls: Vec<String>,
    /// Extra request header 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The verb (GET, HEAD, POST, PUT, DELETE or any custom verb)
    #[arg(short = 'X', long = "method")]
    method: Option<String>,
    /// Request body (POST unless -X says otherwise); @FILE reads a file
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    /// Parallel connections per host:port
    #[arg(long, default_value_t = 6)]
    max_per_host: usize,
    /// Transfer timeout in seconds: abort when no byte moves for that long
    #[arg(long)]
    timeout: Option<f64>,
    /// Extra trusted CA certificate (PEM)
    #[arg(long)]
    cacert: Option<std::path::PathBuf>,
    /// Ignore TLS certificate errors
    #[arg(long)]
    insecure: bool,
    /// One JSON object per finished reply on stdout, one per line (bodies are not written)
    #[arg(long)]
    json: bool,
}

fn usage(message: &str) -> i32 {
    eprintln!("netaccess: {message}");
    2
}

/// Runs `get`; returns the exit status.
pub async fn run(args: GetArgs) -> i32 {
    let mut builder = NetworkAccessManager::builder()
        .max_connections_per_host(args.max_per_host)
        .danger_ignore_tls_errors(args.insecure);
    if let Some(path) = &args.cacert {
        let pem = match std::fs::read(path) {
            Ok(p) => p,
            Err(e) => return usage(&format!("cannot read {}: {e}", path.display())),
        };
        builder = match builder.add_root_certificate_pem(&pem) {
            Ok(b) => b,
            Err(e) => return usage(&format!("{}: {}", path.display(), e.message())),
        };
    }
    if let Some(secs) = args.timeout {
        if !(secs.is_finite() && secs > 0.0) {
            return usage("--timeout must be a positive number of seconds");
        }
        builder = builder.transfer_timeout(Duration::from_secs_f64(secs));
    }
    let body = match &args.data {
        None => None,
        Some(d) => match d.strip_prefix('@') {
            Some(file) => match std::fs::read(file) {
                Ok(bytes) => Some(bytes),
                Err(e) => return usage(&format!("cannot read {file}: {e}")),
            },
            None => Some(d.clone().into_bytes()),
        },
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            return usage(&format!("bad header {h:?}: expected 'Name: value'"));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let verb = args
        .method
        .clone()
        .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_owned());

    let manager = builder.build();
    let started = Instant::now();
    let replies: Vec<Reply> = args
        .urls
        .iter()
        .map(|url| {
            let mut request = Request::new(url);
            for (n, v) in &headers {
                request.set_header(n, v);
            }
            manager.send_custom_request(request, &verb, body.clone().unwrap_or_default())
        })
        .collect();

    let mut failed = false;
    let mut stdout = std::io::stdout().lock();
    for (url, reply) in args.urls.iter().zip(&replies) {
        let body = reply.bytes().await;
        let error = reply.error();
        failed |= error.is_some();
        if args.json {
            let bytes = body.as_ref().map_or(0, |b| b.len());
            let line = json!({
                "url": url,
                "final_url": reply.url().as_str(),
                "status": reply.status_code(),
                "error": error.as_ref().map(|e| e.kind().name()),
                "error_message": error.as_ref().map(|e| e.message().to_owned()),
                "headers": headers_json(reply),
                "bytes": bytes,
                "http_version": if reply.http2_was_used() { "HTTP/2" } else { "HTTP/1.1" },
                "encrypted": reply.is_encrypted(),
                "from_cache": reply.source_is_from_cache(),
                "elapsed_ms": started.elapsed().as_millis() as u64,
            });
            let _ = writeln!(stdout, "{line}");
        } else {
            if let Ok(b) = &body {
                let _ = stdout.write_all(b);
            }
            if let Some(e) = &error {
                eprintln!("netaccess: {url}: {e}");
            }
        }
    }
    let _ = stdout.flush();
    i32::from(failed)
}

fn headers_json(reply: &Reply) -> Value {
    let mut map = Map::new();
    let headers = reply.headers();
    for name in headers.keys() {
        let joined: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        map.insert(name.as_str().to_owned(), Value::String(joined.join(", ")));
    }
    Value::Object(map)
}
