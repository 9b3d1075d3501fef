//! Integration tests of the `netaccess` binary: every built flag of `get`, the JSON fields,
//! exit codes, output-name sanitising, duplicates, `--continue` of files without a sidecar,
//! the progress display in a pseudo-terminal, and `demo` (the download-manager features of
//! issue 14 are in `download_manager.rs`). The child process runs on a blocking
//! thread while the in-process test servers run on the test's runtime.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use support::{
    code, files_in, json_lines, open_range_start, output_of, read_range_request, sha256_hex,
    stderr, Seen,
};

use netaccess_testserver::{expected_bytes, TestServer};
use serde_json::Value;

fn command(args: &[&str]) -> Command {
    support::command(args, &support::fresh_cache_dir("cli"))
}

async fn run(args: &[&str]) -> Output {
    output_of(command(args)).await
}

/// The JSON line of `url`.
fn line_for<'a>(lines: &'a [Value], url: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["url"] == url)
        .unwrap_or_else(|| panic!("no line for {url} in {lines:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_go_to_stdout_in_url_order() {
    let server = TestServer::http1().await;
    let urls = [
        server.url("/slow/200?size=3000"),
        server.url("/hello"),
        server.url("/bytes/70000?chunked=1"),
    ];
    let out = run(&["get", &urls[0], &urls[1], &urls[2]]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut expected = expected_bytes(0, 3000);
    expected.extend_from_slice(b"hello");
    expected.extend(expected_bytes(0, 70000));
    assert_eq!(out.stdout, expected);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_has_every_field() {
    let server = TestServer::http1().await;
    let url = server.url("/header?X-Multi=a&X-Multi=b&ETag=%22v1%22");
    let bytes_url = server.url("/bytes/12345");
    let out = run(&["get", "--json", &url, &bytes_url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    let line = line_for(&lines, &url);
    let keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "url",
        "final_url",
        "status",
        "error",
        "error_message",
        "headers",
        "bytes",
        "sha256",
        "from_cache",
        "http_version",
        "redirects",
        "encrypted",
        "elapsed_ms",
        "output",
        "kept",
        "timings",
    ] {
        assert!(keys.contains(&key), "{key} missing from {line}");
    }
    assert_eq!(keys.len(), 16, "{line}");
    assert_eq!(line["final_url"], url);
    assert_eq!(line["status"], 200);
    assert_eq!(line["error"], Value::Null);
    assert_eq!(line["error_message"], Value::Null);
    assert_eq!(line["headers"]["x-multi"], "a, b");
    assert_eq!(line["headers"]["etag"], "\"v1\"");
    assert_eq!(line["bytes"], 2);
    assert_eq!(line["sha256"], sha256_hex(b"ok"));
    assert_eq!(line["from_cache"], false);
    assert_eq!(line["http_version"], "HTTP/1.1");
    assert_eq!(line["redirects"], 0);
    assert_eq!(line["encrypted"], false);
    assert!(line["elapsed_ms"].is_u64());
    assert_eq!(line["output"], Value::Null);
    let bytes = line_for(&lines, &bytes_url);
    assert_eq!(bytes["bytes"], 12345);
    assert_eq!(bytes["sha256"], sha256_hex(&expected_bytes(0, 12345)));
    assert_eq!(bytes["headers"]["content-length"], "12345");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elapsed_ms_is_per_reply() {
    let server = TestServer::http1().await;
    let fast = server.url("/hello");
    let slow = server.url("/delay/600");
    // The slow URL comes first: the fast one's time must not include the wait for it.
    let out = run(&["get", "--json", &slow, &fast]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    let slow_ms = line_for(&lines, &slow)["elapsed_ms"].as_u64().unwrap();
    let fast_ms = line_for(&lines, &fast)["elapsed_ms"].as_u64().unwrap();
    assert!(slow_ms >= 550, "{slow_ms}");
    assert!(fast_ms < slow_ms, "{fast_ms} vs {slow_ms}");
    // Printed as they finish.
    assert_eq!(lines[0]["url"], fast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_counted_and_limited() {
    let server = TestServer::http1().await;
    let other = TestServer::http1().await;
    let url = server.url("/redirect/2");
    let out = run(&["get", "--json", &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["redirects"], 2);
    assert_eq!(line["final_url"], server.url("/redirect/0"));
    assert_eq!(line["status"], 200);

    let out = run(&["get", "--json", "--max-redirects", "1", &url]).await;
    assert_eq!(code(&out), 1);
    let line = &json_lines(&out)[0];
    assert_eq!(line["error"], "TooManyRedirectsError");
    assert!(line["error_message"].is_string());

    let out = run(&["get", "--json", "--redirect-policy", "manual", &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], 302);
    assert_eq!(line["redirects"], 0);
    assert_eq!(line["headers"]["location"], "/redirect/1");

    let cross = server.url(&format!("/redirect-to?url={}", other.url("/hello")));
    let out = run(&["get", "--json", "--redirect-policy", "same-origin", &cross]).await;
    assert_eq!(code(&out), 1);
    assert_eq!(json_lines(&out)[0]["error"], "InsecureRedirectError");
    let out = run(&["get", "--redirect-policy", "no-less-safe", &cross]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_status_one_when_any_reply_fails() {
    let server = TestServer::http1().await;
    let ok = server.url("/hello");
    let missing = server.url("/status/404");
    let out = run(&["get", "--json", &ok, &missing]).await;
    assert_eq!(code(&out), 1);
    let lines = json_lines(&out);
    assert_eq!(line_for(&lines, &ok)["error"], Value::Null);
    let line = line_for(&lines, &missing);
    assert_eq!(line["error"], "ContentNotFoundError");
    assert_eq!(line["status"], 404);

    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = format!("http://127.0.0.1:{port}/");
    let out = run(&["get", "--json", &refused]).await;
    assert_eq!(code(&out), 1);
    let line = &json_lines(&out)[0];
    assert_eq!(line["error"], "ConnectionRefusedError");
    assert_eq!(line["status"], Value::Null);

    let out = run(&["get", "--json", "gopher://127.0.0.1/"]).await;
    assert_eq!(code(&out), 1);
    assert_eq!(json_lines(&out)[0]["error"], "ProtocolUnknownError");

    // Without --json, the error goes to stderr.
    let out = run(&["get", &missing]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains(&missing), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_exits_two() {
    let server = TestServer::http1().await;
    let url = server.url("/hello");
    let missing_file = "/nonexistent/netaccess-test-file";
    let cases: Vec<Vec<&str>> = vec![
        vec!["get"],
        vec!["get", "--no-such-flag", &url],
        vec!["get", "-H", "no colon", &url],
        vec!["get", "-H", "bad name: x", &url],
        vec!["get", "--max-per-host", "0", &url],
        vec!["get", "--max-per-host", "x", &url],
        vec!["get", "--timeout", "-1", &url],
        vec!["get", "--priority", "urgent", &url],
        vec!["get", "--redirect-policy", "sometimes", &url],
        vec!["get", "--cacert", missing_file, &url],
        vec!["get", "-d", "@/nonexistent/netaccess-test-file", &url],
        vec!["get", "-F", "novalue", &url],
        vec!["get", "-F", "f=@/nonexistent/netaccess-test-file", &url],
        vec!["get", "-d", "x", "-F", "a=b", &url],
        vec!["get", "--continue", &url],
        vec!["nonsense"],
    ];
    for args in cases {
        let out = run(&args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
    assert_eq!(server.stats().requests_total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proxy_and_credential_flags_are_usage_errors() {
    let server = TestServer::http1().await;
    let url = server.url("/hello");
    for flags in [
        &["--proxy", "ftp://127.0.0.1:21"][..],
        &["--proxy", "socks4://127.0.0.1:1080"][..],
        &["-u", "no-colon"][..],
        &["--proxy-user", "no-colon"][..],
    ] {
        let mut args = vec!["get"];
        args.extend_from_slice(flags);
        args.push(&url);
        let out = run(&args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    assert_eq!(server.stats().requests_total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_proxies_are_used_unless_no_proxy_says_otherwise() {
    let server = TestServer::http1().await;
    let url = server.url("/hello");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    for var in ["http_proxy", "HTTP_PROXY", "all_proxy"] {
        let mut cmd = command(&["get", "--json", &url]);
        cmd.env(var, &dead);
        let out = output_of(cmd).await;
        assert_eq!(code(&out), 1, "{var}: {}", stderr(&out));
        assert_eq!(
            json_lines(&out)[0]["error"],
            "ProxyConnectionRefusedError",
            "{var}"
        );
    }
    // no_proxy exempts the host; --no-proxy ignores the environment.
    let mut cmd = command(&["get", &url]);
    cmd.env("http_proxy", &dead).env("no_proxy", "127.0.0.1");
    let out = output_of(cmd).await;
    assert_eq!(
        (code(&out), out.stdout.as_slice()),
        (0, &b"hello"[..]),
        "{}",
        stderr(&out)
    );
    let mut cmd = command(&["get", "--no-proxy", &url]);
    cmd.env("http_proxy", &dead);
    let out = output_of(cmd).await;
    assert_eq!(out.stdout, b"hello");
    // --proxy wins over the environment.
    let out = run(&["get", "--json", "--proxy", &dead, &url]).await;
    assert_eq!(json_lines(&out)[0]["error"], "ProxyConnectionRefusedError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_and_data() {
    let server = TestServer::http1().await;
    let echo = server.url("/echo");
    let out = run(&[
        "get",
        "-X",
        "PUT",
        "-H",
        "X-One: 1",
        "-H",
        "X-Two:  two ",
        "-d",
        "hello",
        &echo,
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["headers"]["x-one"], "1");
    assert_eq!(body["headers"]["x-two"], "two");
    assert_eq!(body["body_len"], 5);

    // -d alone means POST; @FILE sends the file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let data = format!("@{}", file.display());
    let out = run(&["get", "-d", &data, &echo]).await;
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["body_len"], 100_000);

    // The body reaches the server intact.
    let out = run(&["get", "-d", &data, &server.url("/echo-body")]).await;
    assert_eq!(out.stdout, vec![7u8; 100_000]);

    // Custom verbs, DELETE and HEAD.
    for verb in ["PATCH", "DELETE", "PROPFIND"] {
        let out = run(&["get", "-X", verb, &echo]).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(body["method"], verb);
    }
    let out = run(&["get", "-X", "HEAD", "--json", &server.url("/bytes/1000")]).await;
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], 0);
    assert_eq!(line["headers"]["content-length"], "1000");
    let out = run(&["get", "-X", "BAD VERB", "--json", &echo]).await;
    assert_eq!(code(&out), 1);
    assert_eq!(
        json_lines(&out)[0]["error"],
        "ProtocolInvalidOperationError"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_parts_are_multipart_form_data() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("photo.jpg");
    std::fs::write(&file, vec![1u8; 5000]).unwrap();
    let upload = format!("upload=@{}", file.display());
    let out = run(&[
        "get",
        "-F",
        "name=value",
        "-F",
        &upload,
        &server.url("/multipart"),
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(body["content_type"]
        .as_str()
        .unwrap()
        .starts_with("multipart/form-data"));
    let parts = body["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["name"], "name");
    assert_eq!(parts[0]["len"], 5);
    assert_eq!(parts[1]["name"], "upload");
    assert_eq!(parts[1]["file_name"], "photo.jpg");
    assert_eq!(parts[1]["len"], 5000);
    // -F means POST unless -X says otherwise; every URL gets the form.
    let echo = server.url("/echo");
    let out = run(&["get", "--json", "-F", "a=b", &echo, &echo]).await;
    assert_eq!(code(&out), 0);
    let out = run(&["get", "-X", "PUT", "-F", "a=b", &echo]).await;
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["method"], "PUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_per_host_limits_connections() {
    let server = TestServer::http1().await;
    let url = server.url("/slow/100?size=10");
    let urls = vec![url.as_str(); 8];
    let mut args = vec!["get", "-q", "--json", "--max-per-host", "2"];
    args.extend(urls);
    let out = run(&args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), 8);
    let stats = server.stats();
    assert_eq!(stats.requests_total, 8);
    assert!(stats.peak_in_flight <= 2, "{stats:?}");
    assert!(stats.connections_accepted <= 2, "{stats:?}");

    // The default is 6, as Qt.
    let server = TestServer::http1().await;
    let url = server.url("/slow/100?size=10");
    let mut args = vec!["get", "--json"];
    args.extend(vec![url.as_str(); 12]);
    let out = run(&args).await;
    assert_eq!(code(&out), 0);
    assert_eq!(server.stats().peak_in_flight, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_applies_to_the_urls_after_it() {
    let server = TestServer::http1().await;
    let first = server.url("/delay/300");
    let low = server.url("/delay/1?low");
    let high = server.url("/delay/1?high");
    // Without the disk cache: its lookups run before a request reaches the scheduler's queue,
    // so they could change which request arrives first at the single free connection.
    let out = run(&[
        "get",
        "--json",
        "--no-cache",
        "--max-per-host",
        "1",
        &first,
        "--priority",
        "low",
        &low,
        "--priority",
        "high",
        &high,
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let order: Vec<String> = json_lines(&out)
        .iter()
        .map(|l| l["url"].as_str().unwrap().to_owned())
        .collect();
    let at = |u: &str| order.iter().position(|o| o == u).unwrap();
    assert!(at(&high) < at(&low), "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_files_do_not_wait_for_earlier_urls() {
    // With one connection, the high-priority URL is sent before the low one given earlier:
    // saving it must not wait for the earlier URL (which needs the connection it holds).
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let first = server.url("/delay/200");
    let low = server.url("/bytes/3000000?low");
    let high = server.url("/bytes/3000000?high");
    let out = run(&[
        "get",
        "-q",
        "--json",
        "--timeout",
        "5",
        "--max-per-host",
        "1",
        "-o",
        dir.path().to_str().unwrap(),
        &first,
        "--priority",
        "low",
        &low,
        "--priority",
        "high",
        &high,
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_aborts_a_stalled_transfer() {
    let server = TestServer::http1().await;
    let url = server.url("/stall-after-headers");
    let started = std::time::Instant::now();
    let out = run(&["get", "--json", "--timeout", "0.5", &url]).await;
    assert_eq!(code(&out), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
    let line = &json_lines(&out)[0];
    assert_eq!(line["error"], "TimeoutError", "{line}");
    assert_eq!(line["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_the_ca_or_insecure() {
    let server = TestServer::tls().await;
    let url = server.url("/bytes/1000");
    let out = run(&["get", "--json", &url]).await;
    assert_eq!(code(&out), 1);
    assert_eq!(json_lines(&out)[0]["error"], "SslHandshakeFailedError");

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.ca_cert_pem().unwrap()).unwrap();
    let out = run(&["get", "--json", "--cacert", ca.to_str().unwrap(), &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["encrypted"], true);
    assert_eq!(line["http_version"], "HTTP/2");
    assert_eq!(line["bytes"], 1000);

    let out = run(&["get", "--insecure", &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, expected_bytes(0, 1000));

    // A file that is not a certificate is bad usage.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let out = run(&["get", "--cacert", bad.to_str().unwrap(), &url]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_dir_names_files_from_the_url_and_numbers_duplicates() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("new/sub");
    let d = out_dir.to_str().unwrap();
    let url = server.url("/bytes/5000");
    let root = server.url("/");
    let out = run(&["get", "-q", "--json", "-o", d, &url, &url, &root, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        files_in(&out_dir),
        ["5000", "5000.1", "5000.2", "index.html"]
    );
    for name in ["5000", "5000.1", "5000.2"] {
        assert_eq!(
            std::fs::read(out_dir.join(name)).unwrap(),
            expected_bytes(0, 5000)
        );
    }
    assert_eq!(std::fs::read(out_dir.join("index.html")).unwrap(), b"hello");
    // The JSON says where each body went.
    let outputs: Vec<String> = json_lines(&out)
        .iter()
        .filter(|l| l["url"] == url)
        .map(|l| l["output"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outputs.len(), 3);
    let mut sorted = outputs.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["5000", "5000.1", "5000.2"].map(|n| out_dir.join(n).display().to_string())
    );

    // An existing file is never overwritten.
    let out = run(&["get", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out_dir.join("5000.3").exists());
    assert!(stderr(&out).contains("5000.3"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_disposition_never_escapes_the_directory() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let d = out_dir.to_str().unwrap();
    let cd = |value: &str| {
        let encoded: String = value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        server.url(&format!("/header?Content-Disposition={encoded}"))
    };
    let cases = [
        (cd("attachment; filename=\"../../escape.txt\""), "escape.txt"),
        (cd("attachment; filename=\"/etc/passwd\""), "passwd"),
        (cd("attachment; filename=\"..\\\\..\\\\win.ini\""), "win.ini"),
        (cd("attachment; filename=\"..\""), "header"),
        (cd("attachment; filename=\".hidden\""), "hidden"),
        (cd("attachment; filename=\"a:b?.txt\""), "a_b_.txt"),
        (cd("attachment; filename=\"nul.txt\""), "_nul.txt"),
        (
            cd("attachment; filename=\"fallback.txt\"; filename*=UTF-8''%C3%A9t%C3%A9%2F..%2Fx.txt"),
            "x.txt",
        ),
        (cd("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"), "résumé.pdf"),
    ];
    let mut args = vec!["get", "-q", "--json", "-o", d];
    args.extend(cases.iter().map(|(url, _)| url.as_str()));
    let out = run(&args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    for (url, name) in &cases {
        let output = line_for(&lines, url)["output"].as_str().unwrap().to_owned();
        assert_eq!(Path::new(&output), out_dir.join(name), "{url}");
        assert_eq!(std::fs::read(&output).unwrap(), b"ok");
    }
    // Nothing outside DIR; no temporary file left inside.
    assert_eq!(files_in(dir.path()), ["out"]);
    let mut expected: Vec<String> = cases.iter().map(|(_, n)| n.to_string()).collect();
    expected.sort();
    assert_eq!(files_in(&out_dir), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_downloads_publish_nothing_and_keep_what_came() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&[
        "get",
        "--json",
        "-o",
        d,
        &server.url("/status/404"),
        &server.url("/close-mid-body?size=200000"),
        &server.url("/wrong-length"),
    ])
    .await;
    assert_eq!(code(&out), 1);
    for line in json_lines(&out) {
        assert!(line["error"].is_string(), "{line}");
        assert_eq!(line["output"], Value::Null);
    }
    // Nothing under a final name; the bytes that came are kept for --continue.
    assert_eq!(
        files_in(dir.path()),
        [
            "close-mid-body.part",
            "close-mid-body.part.json",
            "wrong-length.part",
            "wrong-length.part.json"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_jar_is_loaded_before_and_saved_after() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("sub/cookies.json");
    std::fs::create_dir_all(jar.parent().unwrap()).unwrap();
    let jar_arg = jar.to_str().unwrap();
    let set = server.url("/header?Set-Cookie=kept%3D1%3B%20Max-Age%3D3600&Set-Cookie=session%3D2");
    let out = run(&["get", "--cookie-jar", jar_arg, &set]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let saved = std::fs::read_to_string(&jar).expect("the jar is created");
    assert!(
        saved.contains("kept") && saved.contains("session"),
        "{saved}"
    );

    // The next run sends them.
    let out = run(&["get", "--cookie-jar", jar_arg, &server.url("/echo")]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cookie = echo["headers"]["cookie"].as_str().unwrap();
    assert!(
        cookie.contains("kept=1") && cookie.contains("session=2"),
        "{cookie}"
    );

    // Without the jar, none.
    let out = run(&["get", &server.url("/echo")]).await;
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(echo["headers"]["cookie"], Value::Null);

    // A file that is not a jar is bad usage, and is left alone.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "not json").unwrap();
    let out = run(&[
        "get",
        "--cookie-jar",
        bad.to_str().unwrap(),
        &server.url("/"),
    ])
    .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), "not json");
    assert_eq!(server.requests_for("/"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_store_upgrades_known_hosts() {
    let server = TestServer::tls().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.ca_cert_pem().unwrap()).unwrap();
    let store = dir.path().join("hsts.json");
    let (ca_arg, store_arg) = (ca.to_str().unwrap(), store.to_str().unwrap());
    let https = format!(
        "{}/header?Strict-Transport-Security=max-age%3D3600",
        server.base_url_for_host("localhost")
    );
    let out = run(&["get", "--cacert", ca_arg, "--hsts-store", store_arg, &https]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let saved = std::fs::read_to_string(&store).expect("the store is created");
    assert!(saved.contains("localhost"), "{saved}");

    // http:// to that host now goes over https (plain http to a TLS port would fail).
    let http = format!("http://localhost:{}/hello", server.port());
    let args = [
        "get",
        "--json",
        "--cacert",
        ca_arg,
        "--hsts-store",
        store_arg,
        &http,
    ];
    let out = run(&args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["encrypted"], true);
    assert!(
        line["final_url"]
            .as_str()
            .unwrap()
            .starts_with("https://localhost:"),
        "{line}"
    );
    let out = run(&["get", "--json", "--cacert", ca_arg, &http]).await;
    assert_eq!(
        code(&out),
        1,
        "without the store, plain http to a TLS port fails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_keeps_the_partial_file_and_exits_130() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/trickle?bytes=1000&interval_ms=20");
    let mut cmd = command(&["get", "--json", "-o", dir.path().to_str().unwrap(), &url]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let path = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        // Wait until some bytes are in the partial file, then interrupt.
        let part = path.join("trickle.part");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&part).map_or(0, |m| m.len()) == 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["error"], "OperationCanceledError");
    assert_eq!(files_in(dir.path()), ["trickle.part", "trickle.part.json"]);
}

// ----- --continue ----------------------------------------------------------------------------

const RANGE_BODY_LEN: usize = 100_000;
const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

/// A minimal HTTP/1.1 server (one request per connection) serving the pattern body of
/// `RANGE_BODY_LEN` bytes with `Last-Modified`, honouring `Range: bytes=N-` and `If-Range`
/// (the test server's `/bytes/N` does not support ranges yet).
fn range_server() -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Some((range, if_range, _)) = read_range_request(&mut stream, &log) else {
                continue;
            };
            let body = expected_bytes(0, RANGE_BODY_LEN);
            let start = open_range_start(range.as_deref())
                .filter(|_| if_range.as_deref().is_none_or(|v| v == LAST_MODIFIED));
            let response = match start {
                Some(start) if start >= RANGE_BODY_LEN => format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{RANGE_BODY_LEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .into_bytes(),
                Some(start) => {
                    let mut r = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{RANGE_BODY_LEN}\r\nContent-Length: {}\r\nLast-Modified: {LAST_MODIFIED}\r\nConnection: close\r\n\r\n",
                        RANGE_BODY_LEN - 1,
                        RANGE_BODY_LEN - start
                    )
                    .into_bytes();
                    r.extend_from_slice(&body[start..]);
                    r
                }
                None => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {RANGE_BODY_LEN}\r\nLast-Modified: {LAST_MODIFIED}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
                    )
                    .into_bytes();
                    r.extend_from_slice(&body);
                    r
                }
            };
            let _ = stream.write_all(&response);
        }
    });
    (base, seen)
}

fn last_modified() -> SystemTime {
    httpdate::parse_http_date(LAST_MODIFIED).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_resumes_with_range_and_if_range() {
    let (base, seen) = range_server();
    let url = format!("{base}/files/data.bin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let file = dir.path().join("data.bin");
    let full = expected_bytes(0, RANGE_BODY_LEN);

    // A fresh download: 200, and the file gets Last-Modified as its mtime.
    let out = run(&["get", "--json", "--continue", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&file).unwrap(), full);
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        last_modified()
    );
    assert_eq!(seen.lock().unwrap().pop().unwrap(), (None, None));

    // A partial file with the right validator: 206, appended.
    std::fs::write(&file, &full[..40_000]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(last_modified())
        .unwrap();
    let out = run(&["get", "--json", "--continue", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], 206);
    assert_eq!(line["bytes"], RANGE_BODY_LEN - 40_000);
    assert_eq!(line["output"], file.display().to_string());
    assert_eq!(std::fs::read(&file).unwrap(), full);
    assert_eq!(
        seen.lock().unwrap().pop().unwrap(),
        (
            Some("bytes=40000-".to_owned()),
            Some(LAST_MODIFIED.to_owned())
        )
    );

    // Complete already: 416, exit 0, the file untouched.
    let out = run(&["get", "--json", "--continue", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], 416);
    assert_eq!(line["error"], Value::Null);
    assert_eq!(line["output"], file.display().to_string());
    assert_eq!(std::fs::read(&file).unwrap(), full);
    assert_eq!(files_in(dir.path()), ["data.bin"]);

    // A partial file whose validator no longer matches: 200, rewritten from scratch.
    std::fs::write(&file, b"stale partial content").unwrap();
    let out = run(&["get", "--json", "--continue", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], 200);
    assert_eq!(std::fs::read(&file).unwrap(), full);
    let (range, if_range) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(range.as_deref(), Some("bytes=21-"));
    assert_ne!(if_range.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(files_in(dir.path()), ["data.bin"]);

    // Without --continue, the existing file is kept and a numbered one is written.
    let out = run(&["get", "-q", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(files_in(dir.path()), ["data.1.bin", "data.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn continue_against_the_test_server() {
    let server = TestServer::http1().await;
    let url = server.url("/bytes/100000");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "--continue", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let file = dir.path().join("100000");
    let full = std::fs::read(&file).unwrap();
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, &full[..30_000]).unwrap();
    // An interrupted download keeps the server's Last-Modified as its mtime (the validator
    // sent in If-Range); truncating it here must not change that.
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = run(&["get", "--json", "--continue", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], 206);
    assert_eq!(std::fs::read(&file).unwrap(), expected_bytes(0, 100_000));
    let out = run(&["get", "--json", "--continue", "-o", d, &url]).await;
    assert_eq!(json_lines(&out)[0]["status"], 416);
}

// ----- progress, help, demo ------------------------------------------------------------------

/// Removes ANSI escape sequences (CSI and two-byte escapes).
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next_if_eq(&'[').is_some() {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

/// The display lines of one frame: each starts with `[N] ` or `total ` (up to the next one).
fn bar_lines(frame: &str) -> Vec<String> {
    let starts: Vec<usize> = frame
        .char_indices()
        .filter(|&(i, _)| {
            let rest = &frame[i..];
            rest.starts_with("total ")
                || rest.strip_prefix('[').is_some_and(|r| {
                    let digits = r.chars().take_while(char::is_ascii_digit).count();
                    digits > 0 && r[digits..].starts_with("] ")
                })
        })
        .map(|(i, _)| i)
        .collect();
    let mut lines = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(frame.len());
        let line = frame[start..end].trim().to_owned();
        let is_total = line.starts_with("total ");
        lines.push(line);
        if is_total {
            break;
        }
    }
    lines
}

/// `script` running a shell command in a pseudo-terminal (a terminal type indicatif draws on,
/// whatever the environment of the test has).
fn in_pty(shell: &str) -> Command {
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", shell, "/dev/null"])
        .env("TERM", "xterm")
        .env("NETACCESS_CONFIG", "");
    for var in support::PROXY_VARIABLES {
        cmd.env_remove(var);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_bars_in_a_pseudo_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let urls = [
        server.url("/slow/300?size=3000000"),
        server.url("/bytes/2000000"),
        server.url("/trickle?bytes=20&interval_ms=20"),
    ];
    let shell = format!(
        "stty rows 40 cols 200 2>/dev/null; exec '{}' get --max-per-host 1 -o '{}' {}",
        env!("CARGO_BIN_EXE_netaccess"),
        dir.path().display(),
        urls.iter()
            .map(|u| format!("'{u}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = output_of(in_pty(&shell)).await;
    let screen = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "{screen}\n{}", stderr(&out));
    assert!(screen.contains("queued"), "{screen}");
    assert!(screen.contains("B/s"), "no rate: {screen}");
    assert!(screen.contains("ETA"), "{screen}");
    // The last frame: every bar and the total at 100%. Lines fill the terminal's width, so
    // they are found by their start (`[N] ` or `total `) rather than by newlines.
    let last = screen.rfind("[1] http").expect("a bar for the first URL");
    let frame = bar_lines(&screen[last..]);
    assert_eq!(frame.len(), 4, "{frame:#?}");
    for line in &frame {
        assert!(line.contains("100%"), "{line:?} in {frame:#?}");
    }
    assert!(frame[3].starts_with("total 3/3"), "{frame:#?}");
    assert!(
        frame[3].contains("0 queued, 0 retries, 0 failed"),
        "{frame:#?}"
    );
    assert!(
        screen.contains("netaccess: 3 files, 5000020 bytes in "),
        "the summary: {screen}"
    );
    for (line, url) in frame.iter().zip(&urls) {
        assert!(line.contains(url.as_str()), "{url}: {frame:#?}");
        assert!(line.contains("done"), "{line}");
    }
    assert_eq!(files_in(dir.path()).len(), 3);

    // -q draws nothing, even on a terminal.
    let shell = format!(
        "exec '{}' get -q -o '{}' '{}'",
        env!("CARGO_BIN_EXE_netaccess"),
        dir.path().display(),
        urls[1]
    );
    let out = output_of(in_pty(&shell)).await;
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains('%'));
}

/// `-x 4`: the URL's line and the total count the bytes of every part (8 MiB, paced so that
/// frames are drawn while it runs), not only the first request's 1 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_progress_counts_the_bytes_of_every_part() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/bytes/8388608");
    let shell = format!(
        "stty rows 40 cols 200 2>/dev/null; exec '{}' get -x 4 --limit-rate 8M -o '{}' '{url}'",
        env!("CARGO_BIN_EXE_netaccess"),
        dir.path().display(),
    );
    let out = output_of(in_pty(&shell)).await;
    let screen = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "{screen}\n{}", stderr(&out));
    assert_eq!(
        server.requests_for("/bytes/8388608"),
        5,
        "split in 4 after the probe"
    );
    let last = screen.rfind("[1] http").expect("a bar for the URL");
    let frame = bar_lines(&screen[last..]);
    assert_eq!(frame.len(), 2, "{frame:#?}");
    // While it runs (about 1 s at 8 MiB/s), the URL's length is the file's once the first
    // response has said it: never more than 1 MiB counted out of the first request's 1 MiB.
    let beyond = screen.matches(" MiB/1.00 MiB").count();
    assert_eq!(
        beyond,
        screen.matches("1.00 MiB/1.00 MiB").count(),
        "{screen}"
    );
    for line in &frame {
        assert!(line.contains("8.00 MiB/8.00 MiB"), "{line:?} in {frame:#?}");
        assert!(line.contains("100%"), "{line:?} in {frame:#?}");
    }
    assert!(
        screen.contains("netaccess: 1 files, 8388608 bytes in "),
        "the summary: {screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_line_counts_retries_and_failures() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let server = TestServer::http1().await;
    let shell = format!(
        "stty rows 40 cols 200 2>/dev/null; exec '{}' get --retry 2 '{}' '{}'",
        env!("CARGO_BIN_EXE_netaccess"),
        server.url("/status/503"),
        server.url("/hello"),
    );
    let out = output_of(in_pty(&shell)).await;
    let screen = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{screen}");
    assert!(screen.contains("2 retries, 1 failed"), "{screen}");
    // Bytes are all the bytes received (the error bodies' included).
    let summary = screen
        .lines()
        .find(|l| l.contains("netaccess: 1 files, "))
        .unwrap_or_else(|| panic!("no summary: {screen}"));
    assert!(summary.trim_end().ends_with(", 1 failed"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_progress_when_stderr_is_not_a_terminal() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "get",
        "-o",
        dir.path().to_str().unwrap(),
        &server.url("/bytes/100"),
    ])
    .await;
    assert_eq!(code(&out), 0);
    let err = stderr(&out);
    assert!(!err.contains('%') && !err.contains('\u{1b}'), "{err}");
}

#[test]
fn help_documents_every_flag_with_examples() {
    let out = command(&["get", "--help"]).output().unwrap();
    assert_eq!(code(&out), 0);
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--output-dir",
        "--continue",
        "--header",
        "--method",
        "--data",
        "--form",
        "--max-per-host",
        "--priority",
        "--cache-dir",
        "--no-cache",
        "--cache-load",
        "--cookie-jar",
        "--hsts-store",
        "--proxy",
        "--no-proxy",
        "--user",
        "--proxy-user",
        "--redirect-policy",
        "--max-redirects",
        "--timeout",
        "--connect-timeout",
        "--max-time",
        "--retry",
        "--verbose",
        "--cacert",
        "--insecure",
        "--json",
        "--quiet",
        "--input-file",
        "--max-queued",
        "--output",
        "--checksum",
        "--fail-with-body",
        "--dump-header",
        "--user-agent",
        "--cache",
        "--netrc",
        "--netrc-file",
        "--load-cookies",
        "--save-cookies",
        "NAME.part",
        "NAME.error",
        "Ctrl-C",
        "50 MiB",
        "--no-config",
        "Config file",
        "--fsync",
        "--limit-rate",
        "--limit-rate-per-host",
        "--split",
        "Rates and segments:",
        "Examples:",
        "Exit status",
    ] {
        assert!(help.contains(flag), "{flag} not in --help");
    }
    let out = command(&["--help"]).output().unwrap();
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8(out.stdout).unwrap().contains("demo"));
}

/// Words that say a feature is missing. Every feature the help, the README or docs/ name is
/// built: none of them may say otherwise (a limit that is real is worded as a limit).
#[test]
fn help_and_docs_never_call_a_built_feature_missing() {
    let stale = [
        "not supported yet",
        "not yet",
        "pending",
        "planned",
        "not built",
        "[not supported",
    ];
    let mut texts = Vec::new();
    for args in [
        &["get", "--help"][..],
        &["--help"][..],
        &["demo", "--help"][..],
    ] {
        let out = command(args).output().unwrap();
        texts.push((
            format!("netaccess {}", args.join(" ")),
            String::from_utf8(out.stdout).unwrap(),
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    for file in files {
        texts.push((
            file.display().to_string(),
            std::fs::read_to_string(&file).unwrap(),
        ));
    }
    for (name, text) in texts {
        for (number, line) in text.lines().enumerate() {
            let lower = line.to_ascii_lowercase();
            for word in stale {
                assert!(
                    !lower.contains(word),
                    "{name}:{}: {line:?} says {word:?}",
                    number + 1
                );
            }
        }
    }
}

#[test]
fn demo_runs_and_shows_a_redirect() {
    let started = std::time::Instant::now();
    let out = command(&["demo", "--requests", "6"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "small files",
        "https + h2",
        "HTTP/2",
        "redirect",
        "0 failed",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_cache_answers_a_second_run() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let url = server.url("/bytes/2048?cache_control=max-age%3D60");
    let first = run(&["get", "--json", "--cache-dir", cache_arg, &url]).await;
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(json_lines(&first)[0]["from_cache"], false);
    let second = run(&["get", "--json", "--cache-dir", cache_arg, &url]).await;
    assert_eq!(json_lines(&second)[0]["from_cache"], true);
    assert_eq!(
        json_lines(&second)[0]["sha256"],
        json_lines(&first)[0]["sha256"]
    );
    assert_eq!(
        server.requests_for("/bytes/2048"),
        1,
        "no request reached the server"
    );
    // --no-cache and --cache-load always-network go to the network.
    let no_cache = run(&["get", "--json", "--no-cache", &url]).await;
    assert_eq!(json_lines(&no_cache)[0]["from_cache"], false);
    let network = run(&[
        "get",
        "--json",
        "--cache-dir",
        cache_arg,
        "--cache-load",
        "always-network",
        &url,
    ])
    .await;
    assert_eq!(json_lines(&network)[0]["from_cache"], false);
    assert_eq!(server.requests_for("/bytes/2048"), 3);
    // always-cache: offline from the cache, a miss is ContentNotFoundError.
    let offline = run(&[
        "get",
        "--json",
        "--cache-dir",
        cache_arg,
        "--cache-load",
        "always-cache",
        &url,
    ])
    .await;
    assert_eq!(json_lines(&offline)[0]["from_cache"], true);
    let other = server.url("/bytes/4096");
    let miss = run(&[
        "get",
        "--json",
        "--cache-dir",
        cache_arg,
        "--cache-load",
        "always-cache",
        &other,
    ])
    .await;
    assert_eq!(code(&miss), 1);
    assert_eq!(json_lines(&miss)[0]["error"], "ContentNotFoundError");
    assert_eq!(server.requests_for("/bytes/3"), 0);
    // --no-cache with --cache-dir is a usage error.
    let both = run(&["get", "--no-cache", "--cache-dir", cache_arg, &url]).await;
    assert_eq!(code(&both), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_credentials_answer_a_server_once() {
    let server = TestServer::http1().await;
    let url = server.url("/basic-auth/cli/pw");
    let ok = run(&["get", "-u", "cli:pw", &url]).await;
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("\"authenticated\":true"));
    let wrong = run(&["get", "--json", "-u", "cli:nope", &url]).await;
    assert_eq!(code(&wrong), 1);
    assert_eq!(
        json_lines(&wrong)[0]["error"],
        "AuthenticationRequiredError"
    );
    let none = run(&["get", "--json", &url]).await;
    assert_eq!(json_lines(&none)[0]["status"], 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_user_answers_squid() {
    use netaccess_testserver::peers::{Squid, SquidOptions};
    let server = TestServer::http1().await;
    let squid = Squid::start(SquidOptions {
        basic_auth: Some(("cliuser".into(), "clipass".into())),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let url = server.url("/hello");
    let proxy = squid.url();
    let ok = run(&[
        "get",
        "--proxy",
        &proxy,
        "--proxy-user",
        "cliuser:clipass",
        &url,
    ])
    .await;
    assert_eq!(
        (code(&ok), ok.stdout.as_slice()),
        (0, &b"hello"[..]),
        "{}",
        stderr(&ok)
    );
    let refused = run(&["get", "--json", "--proxy", &proxy, &url]).await;
    assert_eq!(
        json_lines(&refused)[0]["error"],
        "ProxyAuthenticationRequiredError"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_numbers_are_usage_errors() {
    let server = TestServer::http1().await;
    let url = server.url("/hello");
    for value in ["1e300", "-5", "NaN", "inf", "0", "-0", "1e-300x"] {
        let out = run(&["get", "--timeout", value, &url]).await;
        assert_eq!(code(&out), 2, "--timeout {value}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    for (flag, value) in [
        ("--max-redirects", "-1"),
        ("--max-per-host", "99999999999999999999999"),
    ] {
        let out = run(&["get", flag, value, &url]).await;
        assert_eq!(code(&out), 2, "{flag} {value}: {}", stderr(&out));
    }
    assert_eq!(server.stats().requests_total, 0);
}

/// A server on 127.0.0.1 that answers every request `401` with a Basic challenge and records
/// whether any request carried an `Authorization` header.
async fn basic_challenger() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"other\"\r\n\
                          Content-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    (port, heads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_credentials_never_reach_a_redirect_target() {
    // CVE-2018-1000007, CVE-2022-27774: another port on the same host is another origin.
    let server = TestServer::http1().await;
    let (port, heads) = basic_challenger().await;
    let target = format!("http://127.0.0.1:{port}/private");
    let start = server.url(&format!("/redirect-to?url={target}"));
    let out = run(&["get", "--json", "-u", "alice:s3cret", &start]).await;
    assert_eq!(
        code(&out),
        1,
        "the target's 401 fails the run: {}",
        stderr(&out)
    );
    let lines = json_lines(&out);
    assert_eq!(lines[0]["error"], "AuthenticationRequiredError");
    let heads = heads.lock().unwrap().clone();
    assert!(!heads.is_empty(), "the redirect was followed");
    for head in &heads {
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "credentials crossed origins: {head}"
        );
    }
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_passwords_never_appear_in_output() {
    let server = TestServer::http1().await;
    let url = format!(
        "http://carol:pw4cache99@127.0.0.1:{}/status/404",
        server.port()
    );
    for json in [true, false] {
        let mut args = vec!["get"];
        if json {
            args.push("--json");
        }
        args.push(&url);
        let out = run(&args).await;
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(!shown.contains("pw4cache99"), "{shown}");
        assert!(shown.contains("carol@127.0.0.1"), "{shown}");
    }
}

/// Runs `netaccess` with stdout into `stdout` and returns its exit code and peak RSS in KiB
/// (measured by time(1): see [`support::under_time`]).
async fn run_measured(args: Vec<String>, stdout: std::fs::File) -> (i32, i64) {
    let cmd = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut timed = support::under_time(&cmd, report.path());
    timed.stdout(stdout);
    tokio::task::spawn_blocking(move || {
        let status = timed.status().expect("time(1) runs the netaccess binary");
        (
            status.code().expect("an exit code"),
            support::peak_rss_kib(report.path()),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_mode_never_holds_a_later_body_in_memory() {
    const BIG: u64 = 256 << 20;
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let args = vec![
        "get".to_owned(),
        "-q".to_owned(),
        server.url("/delay/1500"),
        server.url(&format!("/bytes/{BIG}")),
    ];
    let (code, peak_kib) = run_measured(args, std::fs::File::create(&out_path).unwrap()).await;
    assert_eq!(code, 0);
    let written = std::fs::metadata(&out_path).unwrap().len();
    assert_eq!(
        written,
        "delayed".len() as u64 + BIG,
        "every byte, in order"
    );
    let mut head = [0u8; 7];
    std::fs::File::open(&out_path)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert_eq!(&head, b"delayed");
    eprintln!("stdout mode, 256 MiB behind a slow URL: peak RSS {peak_kib} KiB");
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB with 256 MiB behind a slow URL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_shows_each_head_and_never_a_credential() {
    let server = TestServer::http1().await;
    let url = server.url("/basic-auth/user/s3cret");
    let out = run(&["get", "-v", "-u", "user:s3cret", &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("> GET /basic-auth/user/s3cret"), "{err}");
    assert!(
        err.contains("attempt 2"),
        "the answered challenge shows too: {err}"
    );
    assert!(err.contains("< 401") && err.contains("< 200"), "{err}");
    assert!(err.contains("authorization: [redacted]"), "{err}");
    // The password is in the URL path here, never in a header value.
    let encoded = "dXNlcjpzM2NyZXQ="; // base64 of user:s3cret
    assert!(!err.contains(encoded), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_sends_a_failed_request_again_and_connect_timeout_is_checked() {
    let server = TestServer::http1().await;
    let url = server.url("/status/503");
    let out = run(&["get", "--retry", "2", "--json", &url]).await;
    assert_eq!(code(&out), 1);
    assert_eq!(
        server.requests_for("/status/503"),
        3,
        "one try and two retries"
    );
    let slow = server.url("/trickle?bytes=100&interval_ms=50");
    let out = run(&["get", "--max-time", "0.3", "--json", &slow]).await;
    assert_eq!(code(&out), 1);
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["error"], "TimeoutError");
    let out = run(&["get", "--connect-timeout", "0", &url]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--connect-timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_out_and_json_carry_the_timings() {
    let server = TestServer::http1().await;
    let url = server.url("/hello");
    let template = "%{http_code} %{num_connects} %{remote_ip} %{time_namelookup} %{time_connect} %{time_starttransfer} %{time_total} %{nosuch}\\n";
    let out = run(&["get", "-w", template, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.strip_prefix("hello").unwrap_or(&text);
    let fields: Vec<&str> = line.trim_end().split(' ').collect();
    assert_eq!(fields[..3], ["200", "1", "127.0.0.1"], "{text}");
    let times: Vec<f64> = fields[3..7].iter().map(|f| f.parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "monotonic: {text}");
    assert!(
        fields[3].contains('.') && fields[3].len() == 8,
        "six decimals: {text}"
    );
    assert_eq!(fields[7], "%{nosuch}", "unknown variables stay as written");
    assert!(text.ends_with('\n'));

    let out = run(&["get", "-w", "%{json}", &url]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let json: Value = serde_json::from_str(text.strip_prefix("hello").unwrap()).unwrap();
    assert_eq!(json["http_code"], 200);
    assert!(json["time_total"].as_f64().unwrap() > 0.0);

    let out = run(&["get", "--json", &url]).await;
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    let timings = &line["timings"];
    let order = [
        "time_namelookup",
        "time_connect",
        "time_pretransfer",
        "time_starttransfer",
        "time_total",
    ];
    let values: Vec<f64> = order.iter().map(|k| timings[k].as_f64().unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{timings}");
    assert_eq!(timings["num_connects"], 1);
    assert_eq!(timings["time_appconnect"], 0.0, "no TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_time_2_ends_a_10_s_trickle_in_about_2_s() {
    let server = TestServer::http1().await;
    let slow = server.url("/trickle?bytes=200&interval_ms=50");
    let started = std::time::Instant::now();
    let out = run(&["get", "--max-time", "2", "--json", &slow]).await;
    let took = started.elapsed();
    assert_eq!(code(&out), 1);
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["error"], "TimeoutError");
    assert!(
        took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(5),
        "took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_delay_waits_between_retries() {
    let server = TestServer::http1().await;
    let url = server.url("/status/503");
    let started = std::time::Instant::now();
    let out = run(&[
        "get",
        "--retry",
        "2",
        "--retry-delay",
        "0.4",
        "--json",
        &url,
    ])
    .await;
    assert_eq!(code(&out), 1);
    assert_eq!(server.requests_for("/status/503"), 3);
    assert!(started.elapsed() >= std::time::Duration::from_millis(800));
    let out = run(&["get", "--retry-delay", "1", &url]).await;
    assert_eq!(code(&out), 2, "--retry-delay needs --retry");
}
