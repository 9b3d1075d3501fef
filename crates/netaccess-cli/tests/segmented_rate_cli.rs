//! `netaccess get -x N` (segmented downloads) and `--limit-rate` against real servers: a small
//! range server written here (it logs every Range it is sent), the test server over HTTP/1.1
//! and HTTP/2, and nginx when it is installed; with `--checksum`, `-O`, an empty file, and an
//! interrupted split resumed with `--continue`. The one wall-clock test is the bound
//! for `--limit-rate 2M` on 8 MiB.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{code, files_in, output_of, read_range_request, sha256_hex, stderr, Seen};

use netaccess_testserver::{expected_bytes, TestServer};
use serde_json::Value;

const MIB: usize = 1024 * 1024;

fn command(args: &[&str]) -> Command {
    support::command(args, &support::fresh_cache_dir("segmented"))
}

async fn run(args: &[&str]) -> Output {
    output_of(command(args)).await
}

fn json_line(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let line = text.lines().next().expect("a JSON line");
    serde_json::from_str(line).unwrap()
}

/// How the range server answers.
#[derive(Clone, Copy, PartialEq)]
enum Ranges {
    /// `206` for `Range`, with a strong ETag.
    Strong,
    /// `206` for `Range`, with a weak ETag only.
    Weak,
    /// Ignores `Range`: always `200`.
    Ignored,
    /// Strong, but the ETag changes after the first request (the file was replaced).
    Changing,
}

/// What the range server was sent: the `Range` and `If-Range` of each request.
/// A threaded HTTP/1.1 server (one request per connection) serving `len` pattern bytes at
/// any path.
fn range_server(len: usize, mode: Ranges) -> (String, Seen) {
    range_server_failing(len, mode, Arc::default())
}

/// [`range_server`] that, while `fail_parts` is true, answers no part (a request with
/// `If-Range`): it waits until the client has read the whole probe response and closed its
/// connection, then closes the part's connection without a response.
fn range_server_failing(len: usize, mode: Ranges, fail_parts: Arc<AtomicBool>) -> (String, Seen) {
    let probe_done = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let body = Arc::new(expected_bytes(0, len));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let (log, body) = (log.clone(), body.clone());
            let (fail_parts, probe_done) = (fail_parts.clone(), probe_done.clone());
            std::thread::spawn(move || {
                let Some((range, if_range, count)) = read_range_request(&mut stream, &log) else {
                    return;
                };
                let failing = fail_parts.load(Ordering::SeqCst);
                if failing && if_range.is_some() {
                    let (done, changed) = &*probe_done;
                    let guard = done.lock().unwrap();
                    let _ = changed
                        .wait_timeout_while(guard, Duration::from_secs(10), |d| !*d)
                        .unwrap();
                    return; // closed without a response
                }
                let etag = match mode {
                    Ranges::Weak => "W/\"v1\"",
                    Ranges::Changing if count > 1 => "\"v2\"",
                    _ => "\"v1\"",
                };
                let span = range
                    .as_deref()
                    .filter(|_| mode != Ranges::Ignored)
                    .filter(|_| if_range.as_deref().is_none_or(|v| v == etag))
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(s, e)| {
                        let start: usize = s.parse().ok()?;
                        let end = if e.is_empty() {
                            len - 1
                        } else {
                            e.parse().ok()?
                        };
                        (start <= end && start < len).then_some((start, end.min(len - 1)))
                    });
                let (status, extra, part) = match span {
                    Some((s, e)) => (
                        "206 Partial Content",
                        format!("Content-Range: bytes {s}-{e}/{len}\r\n"),
                        &body[s..=e],
                    ),
                    None => ("200 OK", String::new(), &body[..]),
                };
                let accept = if mode == Ranges::Ignored {
                    ""
                } else {
                    "Accept-Ranges: bytes\r\n"
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: {etag}\r\n{accept}{extra}Connection: close\r\n\r\n",
                    part.len()
                );
                let _ = stream.write_all(response.as_bytes());
                let _ = stream.write_all(part);
                if failing && if_range.is_none() {
                    // The probe: wait for the client to close (it read everything).
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    let mut rest = [0u8; 1024];
                    while matches!(stream.read(&mut rest), Ok(n) if n > 0) {}
                    let (done, changed) = &*probe_done;
                    *done.lock().unwrap() = true;
                    changed.notify_all();
                }
            });
        }
    });
    (base, seen)
}

fn ranged(seen: &Seen) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(r, _)| r.is_some())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_4_on_32_mib_makes_ranged_requests_and_the_right_file() {
    let (base, seen) = range_server(32 * MIB, Ranges::Strong);
    let url = format!("{base}/big.bin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "--json", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let expected = sha256_hex(&expected_bytes(0, 32 * MIB));
    let file = dir.path().join("big.bin");
    assert_eq!(sha256_hex(&std::fs::read(&file).unwrap()), expected);
    let line = json_line(&out);
    assert_eq!(line["sha256"], expected);
    assert_eq!(line["bytes"], 32 * MIB);
    assert_eq!(line["output"], file.display().to_string());
    // The probe and 4 parts, every one ranged; the parts carry If-Range.
    let requests = seen.lock().unwrap().clone();
    assert!(ranged(&seen) >= 4, "{requests:?}");
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert_eq!(requests[0].0.as_deref(), Some("bytes=0-1048575"));
    for (range, if_range) in &requests[1..] {
        assert!(range.is_some());
        assert_eq!(if_range.as_deref(), Some("\"v1\""));
    }
    assert_eq!(files_in(dir.path()), ["big.bin"], "no temporary is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_against_a_server_without_ranges_gives_the_whole_file_in_one_request() {
    let (base, seen) = range_server(8 * MIB, Ranges::Ignored);
    let url = format!("{base}/plain.bin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "--json", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body = std::fs::read(dir.path().join("plain.bin")).unwrap();
    assert_eq!(body, expected_bytes(0, 8 * MIB));
    assert_eq!(json_line(&out)["status"], 200);
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(files_in(dir.path()), ["plain.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_without_a_strong_etag_fetches_the_file_again_in_one_request() {
    let (base, seen) = range_server(4 * MIB, Ranges::Weak);
    let url = format!("{base}/weak.bin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "-q", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body = std::fs::read(dir.path().join("weak.bin")).unwrap();
    assert_eq!(body, expected_bytes(0, 4 * MIB));
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[1],
        (None, None),
        "the second request is a plain GET"
    );
    // With -O NAME: the name held by the first request is taken again by the second.
    let out = run(&["get", "-q", "-x", "4", "-o", d, &url, "-O", "given.bin"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body = std::fs::read(dir.path().join("given.bin")).unwrap();
    assert_eq!(body, expected_bytes(0, 4 * MIB));
    assert_eq!(files_in(dir.path()), ["given.bin", "weak.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_of_a_changed_file_fails_the_download_and_leaves_no_file() {
    let (base, _seen) = range_server(4 * MIB, Ranges::Changing);
    let url = format!("{base}/moving.bin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "-q", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the file changed"),
        "{}",
        stderr(&out)
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_against_the_test_server_over_http1() {
    let server = TestServer::http1().await;
    let url = server.url(&format!("/bytes/{}", 16 * MIB));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "-q", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body = std::fs::read(dir.path().join(format!("{}", 16 * MIB))).unwrap();
    assert_eq!(sha256_hex(&body), sha256_hex(&expected_bytes(0, 16 * MIB)));
    assert_eq!(server.requests_for(&format!("/bytes/{}", 16 * MIB)), 5);
    // The parts went out at once: each on a connection of its own (HTTP/1.1).
    assert!(
        server.stats().connections_accepted >= 2,
        "{:?}",
        server.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_over_http2_is_one_connection_with_many_streams() {
    let server = TestServer::tls().await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), server.ca_cert_pem().unwrap()).unwrap();
    let url = server.url(&format!("/bytes/{}", 16 * MIB));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let cacert = ca.path().to_str().unwrap();
    let out = run(&[
        "get", "--json", "--cacert", cacert, "-x", "4", "-o", d, &url,
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_line(&out)["http_version"], "HTTP/2");
    let body = std::fs::read(dir.path().join(format!("{}", 16 * MIB))).unwrap();
    assert_eq!(sha256_hex(&body), sha256_hex(&expected_bytes(0, 16 * MIB)));
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert_eq!(stats.h2_requests, 5, "{stats:?}");
}

/// nginx on a free loopback port serving `root`, logging each request's Range; stopped (by
/// its pid) when dropped. `None` when nginx is not installed.
struct Nginx {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(root: &Path) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = dir.path().display();
        let log = dir.path().join("ranges.log");
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            "{user}\ndaemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ log_format ranges '$status \"$http_range\" \"$http_if_range\"';\n\
             access_log {log} ranges;\n\
             client_body_temp_path {p}/body; proxy_temp_path {p}/proxy; fastcgi_temp_path {p}/fcgi;\n\
             uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;\n\
             server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }} }}\n",
            log = log.display(),
            root = root.display()
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary)
            .args(["-p", &p.to_string(), "-e", &format!("{p}/error.log"), "-c"])
            .arg(dir.path().join("nginx.conf"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        // Bounded wait for the port.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Nginx {
                    child,
                    port,
                    log,
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master (it stops its worker), then a bounded wait; SIGKILL after.
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this process runs as root (nginx then needs `user root;` to read a temp dir).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_against_nginx() {
    let www = tempfile::tempdir().unwrap();
    let data = expected_bytes(0, 32 * MIB);
    std::fs::write(www.path().join("data.bin"), &data).unwrap();
    let Some(nginx) = Nginx::start(www.path()) else {
        eprintln!("nginx is not installed: skipped");
        return;
    };
    let url = format!("http://127.0.0.1:{}/data.bin", nginx.port);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "--json", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_line(&out)["sha256"], sha256_hex(&data));
    assert_eq!(
        sha256_hex(&std::fs::read(dir.path().join("data.bin")).unwrap()),
        sha256_hex(&data)
    );
    // nginx writes its log line when each response is done.
    let log = std::fs::read_to_string(&nginx.log).unwrap();
    let ranged: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("206 \"bytes="))
        .collect();
    assert!(ranged.len() >= 4, "{log}");
    assert_eq!(log.lines().count(), 5, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_rate_2m_takes_8_mib_in_3_5_to_5_5_seconds() {
    let server = TestServer::http1().await;
    let url = server.url(&format!("/bytes/{}", 8 * MIB));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let started = Instant::now();
    let out = run(&["get", "-q", "--limit-rate", "2M", "-o", d, &url]).await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body = std::fs::read(dir.path().join(format!("{}", 8 * MIB))).unwrap();
    assert_eq!(body.len(), 8 * MIB);
    assert!((3.5..=5.5).contains(&took), "took {took} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rates_and_splits_are_usage_errors() {
    for args in [
        ["get", "--limit-rate", "0", "http://127.0.0.1:1/"],
        ["get", "--limit-rate", "2X", "http://127.0.0.1:1/"],
        ["get", "--limit-rate", "fast", "http://127.0.0.1:1/"],
        ["get", "--limit-rate-per-host", "-1", "http://127.0.0.1:1/"],
        ["get", "-x", "0", "http://127.0.0.1:1/"],
        ["get", "-x", "17", "http://127.0.0.1:1/"],
    ] {
        let out = run(&args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    let help = command(&["get", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in ["--limit-rate", "--limit-rate-per-host", "--split"] {
        assert!(help.contains(flag), "{flag} not in --help");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_of_an_empty_file_saves_an_empty_file() {
    let server = TestServer::http1().await;
    let url = server.url("/bytes/0");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "--json", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let file = dir.path().join("0");
    assert_eq!(std::fs::read(&file).unwrap(), b"");
    let line = json_line(&out);
    assert_eq!(line["bytes"], 0);
    assert_eq!(line["sha256"], sha256_hex(b""));
    assert_eq!(line["output"], file.display().to_string());
    assert_eq!(line["error"], Value::Null);
    assert_eq!(files_in(dir.path()), ["0"], "no .part is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_file_is_published_only_with_the_right_checksum() {
    let (base, seen) = range_server(4 * MIB, Ranges::Strong);
    let url = format!("{base}/sum.bin");
    let right = format!("sha256={}", sha256_hex(&expected_bytes(0, 4 * MIB)));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&[
        "get",
        "-q",
        "-x",
        "4",
        "-o",
        d,
        &url,
        "-O",
        "named.bin",
        "--checksum",
        &right,
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("named.bin")).unwrap(),
        expected_bytes(0, 4 * MIB)
    );
    assert_eq!(files_in(dir.path()), ["named.bin"]);
    assert!(ranged(&seen) >= 2, "it was split");

    let wrong = format!("sha256={}", "0".repeat(64));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "-q", "-x", "4", "-o", d, &url, "--checksum", &wrong]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("sha256 mismatch"), "{}", stderr(&out));
    assert!(
        files_in(dir.path()).is_empty(),
        "no file, no .part: {:?}",
        files_in(dir.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_split_download_resumes_its_tail_in_one_request_with_continue() {
    let fail = Arc::new(AtomicBool::new(true));
    let total = 8 * MIB;
    let (base, seen) = range_server_failing(total, Ranges::Strong, fail.clone());
    let url = format!("{base}/cut.bin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "-q", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!dir.path().join("cut.bin").exists(), "nothing published");
    let part = dir.path().join("cut.bin.part");
    let kept = part.exists();
    let expected = expected_bytes(0, total);
    if kept {
        // The bytes complete from the start, with a sidecar naming the URL and the ETag.
        let bytes = std::fs::read(&part).unwrap();
        assert!(!bytes.is_empty() && bytes.len() < total, "{}", bytes.len());
        assert!(bytes == expected[..bytes.len()], "a byte-exact prefix");
        let sidecar: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("cut.bin.part.json")).unwrap())
                .unwrap();
        assert_eq!(sidecar["url"], url);
        assert_eq!(sidecar["etag"], "\"v1\"");
        assert_eq!(sidecar["length"], total);
        assert!(stderr(&out).contains("--continue"), "{}", stderr(&out));
    } else {
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
    }

    fail.store(false, Ordering::SeqCst);
    let len = if kept {
        std::fs::metadata(&part).unwrap().len()
    } else {
        0
    };
    eprintln!("kept a .part: {kept} ({len} bytes)");
    seen.lock().unwrap().clear();
    let out = run(&["get", "-q", "--continue", "-x", "4", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read(dir.path().join("cut.bin")).unwrap() == expected);
    assert_eq!(files_in(dir.path()), ["cut.bin"]);
    let requests = seen.lock().unwrap().clone();
    if kept {
        assert_eq!(
            requests,
            [(Some(format!("bytes={len}-")), Some("\"v1\"".to_owned()))],
            "the tail in one ranged request"
        );
    }
}
