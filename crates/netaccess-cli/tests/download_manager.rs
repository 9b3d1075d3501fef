//! `netaccess get` as a download manager (issue 14): partial downloads kept and resumed
//! (`.part` + sidecar, `--continue`, Ctrl-C), error bodies, `-i` lists read as a stream at
//! constant memory, `--checksum`, `-O`, `-D`, `-A`, the cache off by default, `.netrc` and
//! Netscape cookies.txt. Every test runs the real binary against real loopback servers: the
//! in-process test server, or a small thread server here when a test needs a server that
//! stops halfway or ignores ranges.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{
    code, files_in, json_lines, open_range_start, output_of, read_range_request, sha256_hex,
    stderr, Seen,
};

use netaccess_testserver::{expected_bytes, TestServer};
use serde_json::Value;

fn command(args: &[&str]) -> Command {
    // No user cache, no user .netrc, no proxies from the environment.
    let home = std::env::temp_dir().join(format!("netaccess-dm-home-{}", std::process::id()));
    let mut cmd = support::command(args, &home.join("cache"));
    cmd.env("HOME", &home).env_remove("NETRC");
    cmd
}

async fn run(args: &[&str]) -> Output {
    output_of(command(args)).await
}

// ----- a server that stops halfway, honours or ignores ranges ---------------------------------

const BODY_LEN: usize = 300_000;
const HALF: usize = 120_000;
const ETAG: &str = "\"e1\"";

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeMode {
    /// 206 for `Range: bytes=N-` when `If-Range` is the ETag.
    Honour,
    /// 200 with the whole body, whatever the request says.
    Ignore,
    /// 206 starting at byte 0, whatever was asked.
    WrongStart,
}

/// What the server was asked: `(range, if_range)` per request.
/// A thread server of the pattern body of `BODY_LEN` bytes with an ETag. With `stall`, a
/// request without `Range` gets the head and the first `HALF` bytes, then nothing more until
/// the client goes away.
fn halting_server(mode: RangeMode, stall: bool) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let Some((range, if_range, _)) = read_range_request(&mut stream, &log) else {
                    return;
                };
                let body = expected_bytes(0, BODY_LEN);
                let start = open_range_start(range.as_deref())
                    .filter(|_| if_range.as_deref() == Some(ETAG));
                let common = format!("ETag: {ETAG}\r\nAccept-Ranges: bytes\r\nConnection: close");
                let (status_head, from) = match (mode, start) {
                    (RangeMode::Honour, Some(s)) if s < BODY_LEN => (
                        format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{BODY_LEN}\r\nContent-Length: {}\r\n{common}\r\n\r\n",
                            BODY_LEN - 1,
                            BODY_LEN - s
                        ),
                        s,
                    ),
                    (RangeMode::WrongStart, Some(_)) => (
                        format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-{}/{BODY_LEN}\r\nContent-Length: {BODY_LEN}\r\n{common}\r\n\r\n",
                            BODY_LEN - 1
                        ),
                        0,
                    ),
                    _ => (
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY_LEN}\r\n{common}\r\n\r\n"),
                        0,
                    ),
                };
                let _ = stream.write_all(status_head.as_bytes());
                if stall && range.is_none() {
                    let _ = stream.write_all(&body[..HALF]);
                    let _ = stream.flush();
                    // Hold the connection until the client closes it.
                    let mut sink = [0u8; 64];
                    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                    return;
                }
                let _ = stream.write_all(&body[from..]);
            });
        }
    });
    (base, seen)
}

/// Waits (polling the file system, up to 20 s) until `path` has `len` bytes.
fn wait_for_size(path: &Path, len: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size == len {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} has {size} bytes, not {len}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `get -o DIR URL` against a server that stops halfway, sends `signal` once the
/// `.part` holds that half, and returns the run's output; then checks the kept state and that
/// `--continue` finishes the file byte-exact with `Range` and the stored ETag.
async fn interrupt_then_continue(signal: &'static str) -> Output {
    let (base, seen) = halting_server(RangeMode::Honour, true);
    let url = format!("{base}/files/data.bin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let mut cmd = command(&["get", "-o", &d, &url]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let part = dir.path().join("data.bin.part");
    let interrupted = tokio::task::spawn_blocking(move || {
        wait_for_size(&part, HALF as u64);
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        files_in(dir.path()),
        ["data.bin.part", "data.bin.part.json"]
    );
    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data.bin.part.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["url"], url.as_str());
    assert_eq!(sidecar["etag"], ETAG);
    assert_eq!(sidecar["length"], BODY_LEN);

    let out = run(&["get", "--json", "--continue", "-o", &d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], 206);
    assert_eq!(line["bytes"], BODY_LEN - HALF);
    let full = std::fs::read(dir.path().join("data.bin")).unwrap();
    assert_eq!(sha256_hex(&full), sha256_hex(&expected_bytes(0, BODY_LEN)));
    assert_eq!(files_in(dir.path()), ["data.bin"]);
    assert_eq!(
        seen.lock().unwrap().last().cloned().unwrap(),
        (Some(format!("bytes={HALF}-")), Some(ETAG.to_owned())),
        "Range from the .part's length, If-Range with the stored ETag"
    );
    interrupted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_keeps_the_part_and_continue_finishes_it_byte_exact() {
    let out = interrupt_then_continue("-INT").await;
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert!(stderr(&out).contains("--continue"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_leaves_a_resumable_state() {
    use std::os::unix::process::ExitStatusExt;
    let out = interrupt_then_continue("-KILL").await;
    assert_eq!(out.status.signal(), Some(9));
}

/// A `.part` of the right URL with a sidecar naming `etag`, holding `len` wrong bytes.
fn plant_part(dir: &Path, name: &str, url: &str, len: usize) {
    std::fs::write(dir.join(format!("{name}.part")), vec![b'x'; len]).unwrap();
    let sidecar = serde_json::json!({
        "format": "netaccess-partial-download",
        "url": url,
        "etag": ETAG,
        "last_modified": null,
        "length": BODY_LEN,
    });
    std::fs::write(dir.join(format!("{name}.part.json")), sidecar.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_the_range_restarts_cleanly() {
    for mode in [RangeMode::Ignore, RangeMode::WrongStart] {
        let (base, seen) = halting_server(mode, false);
        let url = format!("{base}/data.bin");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        plant_part(dir.path(), "data.bin", &url, 5000);
        let out = run(&["get", "--continue", "-o", d, &url]).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let full = std::fs::read(dir.path().join("data.bin")).unwrap();
        assert_eq!(full.len(), BODY_LEN);
        assert_eq!(sha256_hex(&full), sha256_hex(&expected_bytes(0, BODY_LEN)));
        assert_eq!(files_in(dir.path()), ["data.bin"]);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen[0],
            (Some("bytes=5000-".to_owned()), Some(ETAG.to_owned()))
        );
        if mode == RangeMode::WrongStart {
            // The wrong 206 was dropped and the download sent again without a range.
            assert_eq!(seen.len(), 2, "{seen:?}");
            assert_eq!(seen[1], (None, None));
            assert!(stderr(&out).contains("starting again"), "{}", stderr(&out));
        } else {
            assert_eq!(seen.len(), 1, "{seen:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_with_the_test_server_uses_its_etag() {
    let server = TestServer::http1().await;
    let url = server.url("/bytes/200000");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // The first half of a download, as a broken connection would leave it.
    let out = run(&[
        "get",
        "--json",
        "-o",
        d,
        &server.url("/close-mid-body?size=200000"),
    ])
    .await;
    assert_eq!(code(&out), 1);
    let line = &json_lines(&out)[0];
    let kept = line["kept"].as_str().expect("the partial file is kept");
    assert!(kept.ends_with("close-mid-body.part"), "{kept}");
    assert!(files_in(dir.path()).contains(&"close-mid-body.part.json".to_owned()));

    // Against /bytes: a part and a sidecar with the server's ETag.
    let full = expected_bytes(0, 200_000);
    std::fs::write(dir.path().join("200000.part"), &full[..77_000]).unwrap();
    let etag = {
        let out = run(&["get", "--json", "-X", "HEAD", &url]).await;
        json_lines(&out)[0]["headers"]["etag"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let sidecar = serde_json::json!({
        "format": "netaccess-partial-download",
        "url": url,
        "etag": etag,
        "length": 200_000,
    });
    std::fs::write(dir.path().join("200000.part.json"), sidecar.to_string()).unwrap();
    let out = run(&["get", "--json", "--continue", "-o", d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], 206);
    assert_eq!(std::fs::read(dir.path().join("200000")).unwrap(), full);
    assert!(!dir.path().join("200000.part.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_body_never_becomes_the_output() {
    let server = TestServer::http1().await;
    let missing = server.url("/status/404");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // Files: nothing under the name.
    let out = run(&["get", "-o", d, &missing]).await;
    assert_eq!(code(&out), 1);
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    // stdout: not a byte of it.
    let out = run(&["get", &missing]).await;
    assert_eq!(code(&out), 1);
    assert!(out.stdout.is_empty());
    // --fail-with-body keeps it as NAME.error, and says so.
    let out = run(&["get", "--fail-with-body", "-o", d, &missing]).await;
    assert_eq!(code(&out), 1);
    assert_eq!(files_in(dir.path()), ["404.error"]);
    assert!(!std::fs::read(dir.path().join("404.error"))
        .unwrap()
        .is_empty());
    assert!(stderr(&out).contains("404.error"), "{}", stderr(&out));
}

// ----- -i lists ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_lists_carry_names_priorities_and_checksums() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let good = sha256_hex(&expected_bytes(0, 1000));
    let list = format!(
        "# a comment\n\n{} out=\"first file.bin\" priority=high checksum=sha256={good}\n{} checksum=sha256={}\n{} out=third.bin\nnot a url at=all\n",
        server.url("/bytes/1000"),
        server.url("/bytes/2000"),
        "00".repeat(32),
        server.url("/bytes/3000"),
    );
    let list_path = dir.path().join("list.txt");
    std::fs::write(&list_path, list).unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        "get",
        "--json",
        "-o",
        out_dir.to_str().unwrap(),
        "-i",
        list_path.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code(&out), 1, "a bad line and a bad checksum fail the run");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(files_in(&out_dir), ["first file.bin", "third.bin"]);
    let mismatch = lines
        .iter()
        .find(|l| {
            l["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/bytes/2000"))
        })
        .unwrap();
    assert!(
        mismatch["error_message"]
            .as_str()
            .unwrap()
            .contains("sha256 mismatch"),
        "{mismatch}"
    );
    assert!(lines.iter().any(|l| l["error_message"]
        .as_str()
        .is_some_and(|m| m.contains("list.txt:6"))));
    let _ = d;
}

/// Runs `netaccess` with `stdin_lines` written to its stdin by a thread, stdout to a file;
/// returns the exit status and the peak RSS in KiB.
async fn run_with_stdin(args: Vec<String>, lines: usize, url: String) -> (i32, i64, String) {
    let cmd = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // Measured by time(1): see support::under_time.
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = support::under_time(&cmd, report.path());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let mut out = std::io::BufWriter::new(&mut stdin);
            for n in 0..lines {
                writeln!(out, "{url}?n={n}").unwrap();
            }
        });
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut count = 0usize;
            let mut buf = [0u8; 65536];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return count,
                    Ok(n) => count += buf[..n].iter().filter(|&&b| b == b'\n').count(),
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        writer.join().unwrap();
        let status = child.wait().unwrap();
        let lines_out = reader.join().unwrap();
        let err = err_reader.join().unwrap();
        (
            status.code().expect("an exit code"),
            support::peak_rss_kib(report.path()),
            format!("{lines_out} JSON lines; stderr: {err}"),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100000_line_list_on_stdin_runs_in_constant_memory() {
    const LINES: usize = 100_000;
    let server = TestServer::h2c().await;
    let args: Vec<String> = ["get", "--json", "--max-queued", "32", "-i", "-"]
        .map(str::to_owned)
        .to_vec();
    let url = server.url("/hello");
    let (code_small, small_kib, note) = run_with_stdin(args.clone(), 1000, url.clone()).await;
    assert_eq!(code_small, 0, "{note}");
    let (code_big, big_kib, note) = run_with_stdin(args, LINES, url).await;
    assert_eq!(code_big, 0, "{note}");
    assert!(note.starts_with(&format!("{LINES} JSON lines")), "{note}");
    eprintln!("-i -: peak RSS {small_kib} KiB for 1,000 lines, {big_kib} KiB for {LINES}");
    assert!(
        big_kib < small_kib + 16 * 1024 && big_kib < 64 * 1024,
        "peak RSS {big_kib} KiB for {LINES} lines, {small_kib} KiB for 1,000"
    );
    assert_eq!(server.requests_for("/hello"), (LINES + 1000) as u64);
}

// ----- checksums, names, heads, user agent ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checksum_mismatch_publishes_nothing() {
    let server = TestServer::http1().await;
    let url = server.url("/bytes/5000");
    let right = format!("sha256={}", sha256_hex(&expected_bytes(0, 5000)));
    let wrong = format!("sha256={}", "ab".repeat(32));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["get", "-o", d, &url, "--checksum", &wrong]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("sha256 mismatch"), "{}", stderr(&out));
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    let out = run(&[
        "get",
        "--fsync",
        "-o",
        d,
        &url,
        "--checksum",
        &right.to_uppercase(),
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(files_in(dir.path()), ["5000"]);
    // stdout: the body is checked before any byte of it is written.
    let hello = server.url("/hello");
    let out = run(&["get", &hello, &url, "--checksum", &wrong]).await;
    assert_eq!(code(&out), 1);
    assert_eq!(out.stdout, b"hello");
    let out = run(&["get", &url, "--checksum", &right]).await;
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout, expected_bytes(0, 5000));
    // A checksum before any URL is bad usage.
    let out = run(&["get", "--checksum", &right, &url]).await;
    assert_eq!(code(&out), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_names_follow_their_url() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let a = server.url("/bytes/100");
    let b = server.url("/bytes/200");
    // Without -o, -O writes in the current directory; the other URL goes to stdout.
    let mut cmd = command(&["get", &a, "-O", "a.bin", &b]);
    cmd.current_dir(dir.path());
    let out = output_of(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, expected_bytes(0, 200));
    assert_eq!(
        std::fs::read(dir.path().join("a.bin")).unwrap(),
        expected_bytes(0, 100)
    );
    // With -o, both are files; -O names one, the other is named from its URL.
    let sub = dir.path().join("sub");
    let out = run(&["get", "-o", sub.to_str().unwrap(), &a, &b, "-O", "b.bin"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(files_in(&sub), ["100", "b.bin"]);
    // A name with a directory in it is refused.
    let out = run(&["get", "-o", sub.to_str().unwrap(), &a, "-O", "../x"]).await;
    assert_eq!(code(&out), 1);
    assert!(!dir.path().join("x").exists());
    // -O before any URL is bad usage.
    let out = run(&["get", "-O", "x", &a]).await;
    assert_eq!(code(&out), 2);
    // Two URLs of one run never write one name at once: the second one fails.
    let slow = server.url("/slow/300?size=1000");
    let out = run(&[
        "get",
        "--json",
        "-o",
        sub.to_str().unwrap(),
        &slow,
        "-O",
        "same.bin",
        &a,
        "-O",
        "same.bin",
    ])
    .await;
    assert_eq!(code(&out), 1);
    let lines = json_lines(&out);
    assert!(
        lines.iter().any(|l| l["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("being saved as same.bin"))),
        "{lines:?}"
    );
    assert_eq!(std::fs::read(sub.join("same.bin")).unwrap().len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_header_writes_every_head() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let heads = dir.path().join("heads.txt");
    let out = run(&[
        "get",
        "-D",
        heads.to_str().unwrap(),
        &server.url("/redirect/1"),
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&heads).unwrap();
    assert!(text.contains("HTTP 302 Found\r\n"), "{text}");
    assert!(text.contains("location: "), "{text}");
    assert!(text.contains("HTTP 200 OK\r\n"), "{text}");
    assert!(text.contains("content-type: text/plain"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_agent_is_netaccess_unless_a_is_given() {
    let server = TestServer::http1().await;
    let echo = server.url("/echo");
    let out = run(&["get", &echo]).await;
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        seen["headers"]["user-agent"],
        format!("netaccess/{}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["get", "-A", "Agent 007", &echo]).await;
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["headers"]["user-agent"], "Agent 007");
}

// ----- defaults and interop ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_cache_is_off_unless_asked_for() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/bytes/64?cache_control=max-age%3D600");
    let with_home = |args: &[&str]| {
        let mut cmd = command(args);
        cmd.env("XDG_CACHE_HOME", dir.path());
        cmd
    };
    for _ in 0..2 {
        let out = output_of(with_home(&["get", "--json", &url])).await;
        assert_eq!(json_lines(&out)[0]["from_cache"], false);
    }
    assert_eq!(server.requests_for("/bytes/64"), 2);
    assert!(files_in(dir.path()).is_empty(), "nothing was cached");
    let first = output_of(with_home(&["get", "--cache", "--json", &url])).await;
    let second = output_of(with_home(&["get", "--cache", "--json", &url])).await;
    assert_eq!(json_lines(&first)[0]["from_cache"], false);
    assert_eq!(json_lines(&second)[0]["from_cache"], true);
    assert_eq!(files_in(dir.path()), ["netaccess"]);
}

/// A server on `ip` answering 401 with a Basic challenge unless Authorization is sent;
/// records every Authorization it gets.
fn basic_challenger(ip: &str) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let auth = head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case("authorization")
                    .then(|| v.trim().to_owned())
            });
            log.lock().unwrap().push(auth.clone());
            let response = match auth {
                Some(_) => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                None => "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netrc_credentials_go_to_their_host_and_never_after_a_cross_host_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    // 127.0.0.2 is loopback too, and another host.
    let (direct, direct_seen) = basic_challenger("127.0.0.1");
    let (other, other_seen) = basic_challenger("127.0.0.2");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login alice password pw1\nmachine 127.0.0.2 login bob password pw2\n",
    )
    .unwrap();
    let netrc_arg = netrc.to_str().unwrap();
    let out = run(&["get", "--netrc-file", netrc_arg, &format!("{direct}/x")]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"ok");
    // Basic alice:pw1.
    assert_eq!(
        direct_seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .flatten()
            .as_deref(),
        Some("Basic YWxpY2U6cHcx")
    );
    // Without the flag, no .netrc is read.
    let out = run(&["get", &format!("{direct}/x")]).await;
    assert_eq!(code(&out), 1);

    // A redirect from the test server (127.0.0.1) to 127.0.0.2: the target asks, and gets
    // nothing, although the file names it.
    let server = TestServer::http1().await;
    let target = format!("{other}/secret");
    let redirect = server.url(&format!("/redirect-to?url={}", percent_encode(&target)));
    let out = run(&["get", "--json", "--netrc-file", netrc_arg, &redirect]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], 401);
    let seen = other_seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(Option::is_none), "{seen:?}");
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netscape_cookies_are_imported_and_exported() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("in.txt");
    std::fs::write(
        &import,
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n\
         #HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t4102444800\tlasting\txyz\n\
         other.example\tTRUE\t/\tFALSE\t0\tforeign\tno\n",
    )
    .unwrap();
    let export = dir.path().join("out.txt");
    let out = run(&[
        "get",
        "--load-cookies",
        import.to_str().unwrap(),
        "--save-cookies",
        export.to_str().unwrap(),
        &server.url("/echo"),
        &server.url("/header?Set-Cookie=fresh%3D1%3B%20Path%3D%2F"),
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let echo: Value = serde_json::from_str(text.trim_end_matches("ok")).unwrap();
    let cookie = echo["headers"]["cookie"].as_str().unwrap();
    assert!(
        cookie.contains("session=abc") && cookie.contains("lasting=xyz"),
        "{cookie}"
    );
    assert!(!cookie.contains("foreign"), "{cookie}");
    let saved = std::fs::read_to_string(&export).unwrap();
    assert!(saved.starts_with("# Netscape HTTP Cookie File"), "{saved}");
    for line in [
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc",
        "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t4102444800\tlasting\txyz",
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tfresh\t1",
        ".other.example\tTRUE\t/\tFALSE\t0\tforeign\tno",
    ] {
        assert!(saved.lines().any(|l| l == line), "{line:?} not in {saved}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_hold_the_bytes_the_server_sent() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // Files are asked for without a content coding (so a Range counts their bytes).
    let out = run(&["get", "-o", d, &server.url("/echo")]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("echo")).unwrap()).unwrap();
    assert_eq!(seen["headers"]["accept-encoding"], "identity");
    // A server that codes the body anyway: the file is what it sent (gzip), length-checked.
    let out = run(&["get", "--json", "-o", d, &server.url("/gzip/50000")]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let saved = std::fs::read(dir.path().join("50000")).unwrap();
    assert_eq!(&saved[..2], [0x1f, 0x8b]);
    assert_eq!(json_lines(&out)[0]["bytes"], saved.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_state_files_are_refused_or_ignored() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/bytes/100");
    // A 2 MiB .netrc and a 17 MiB cookies.txt (sparse): bad usage, nothing is sent.
    let netrc = dir.path().join("netrc");
    std::fs::File::create(&netrc)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let out = run(&["get", "--netrc-file", netrc.to_str().unwrap(), &url]).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    let cookies = dir.path().join("cookies.txt");
    std::fs::File::create(&cookies)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    let out = run(&["get", "--load-cookies", cookies.to_str().unwrap(), &url]).await;
    assert_eq!(code(&out), 2);
    assert_eq!(server.requests_for("/bytes/100"), 0);
    // A sidecar over 64 KiB is not ours: --continue leaves that .part alone and downloads
    // under another name.
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(out_dir.join("100.part"), b"keep me").unwrap();
    std::fs::File::create(out_dir.join("100.part.json"))
        .unwrap()
        .set_len(65 * 1024)
        .unwrap();
    let out = run(&["get", "--continue", "-o", out_dir.to_str().unwrap(), &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(out_dir.join("100.1")).unwrap(),
        expected_bytes(0, 100)
    );
    assert_eq!(std::fs::read(out_dir.join("100.part")).unwrap(), b"keep me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_file_gives_defaults_the_command_line_overrides() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "# defaults\nuser-agent = \"from-config/1\"\nheader = [\"X-From: config\"]\nmax_per_host = 2\nquiet = true\n",
    )
    .unwrap();
    let echo = server.url("/echo");
    let with_config = |args: &[&str]| {
        let mut cmd = command(args);
        cmd.env("NETACCESS_CONFIG", &config);
        cmd
    };
    let seen = |out: &Output| -> Value {
        assert_eq!(code(out), 0, "{}", stderr(out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let out = output_of(with_config(&["get", &echo])).await;
    let headers = &seen(&out)["headers"];
    assert_eq!(headers["user-agent"], "from-config/1");
    assert_eq!(headers["x-from"], "config");
    // The command line wins for single flags and adds to repeatable ones.
    let out = output_of(with_config(&[
        "get",
        "-A",
        "cli/2",
        "-H",
        "X-Cli: yes",
        &echo,
    ]))
    .await;
    let headers = &seen(&out)["headers"];
    assert_eq!(headers["user-agent"], "cli/2");
    assert_eq!(headers["x-from"], "config");
    assert_eq!(headers["x-cli"], "yes");
    // --no-config skips it.
    let out = output_of(with_config(&["get", "--no-config", &echo])).await;
    assert_eq!(
        seen(&out)["headers"]["user-agent"],
        format!("netaccess/{}", env!("CARGO_PKG_VERSION"))
    );
    // Unknown keys, per-URL flags and wrong kinds are bad usage, before any request.
    let before = server.requests_for("/echo");
    for (text, said) in [
        ("outptu = \"x\"", "outptu"),
        ("output = \"x\"", "output"),
        ("quiet = \"yes\"", "quiet wants true or false"),
        ("retry = true", "retry wants a string or a number"),
        ("retry = [", "config"),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = output_of(with_config(&["get", &echo])).await;
        assert_eq!(code(&out), 2, "{text}");
        assert!(stderr(&out).contains(said), "{text}: {}", stderr(&out));
    }
    assert_eq!(server.requests_for("/echo"), before);
}

// ----- a real nginx ----------------------------------------------------------------------------

/// An nginx serving `root` on 127.0.0.1, in the foreground, one process; a body requested
/// without `Range` is sent at 512 KiB/s (so a test can interrupt it), ranged ones at full
/// speed. Killed on drop.
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// `None` (after a note) when nginx is not installed.
    fn start(root: &Path) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/t1;\n  proxy_temp_path {p}/t2;\n\
             fastcgi_temp_path {p}/t3;\n  uwsgi_temp_path {p}/t4;\n  scgi_temp_path {p}/t5;\n\
             server {{\n    listen 127.0.0.1:{port};\n    root {};\n\
             location / {{ if ($http_range = \"\") {{ set $limit_rate 512k; }} }}\n  }}\n}}\n",
            root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(binary)
            .args(["-p", &p.to_string(), "-c", conf_path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx {
            child,
            port,
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_an_interrupted_download_resumes_byte_exact_and_a_changed_file_restarts() {
    const LEN: usize = 4 << 20;
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), expected_bytes(0, LEN)).unwrap();
    let Some(nginx) = Nginx::start(root.path()) else {
        eprintln!("skipped: nginx is not installed");
        return;
    };
    let url = nginx.url("/big.bin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();

    // Interrupted with Ctrl-C once 256 KiB are on disk, then resumed.
    let interrupt = |d: String, url: String, part: std::path::PathBuf| async move {
        let mut cmd = command(&["get", "-o", &d, &url]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::fs::metadata(&part).map_or(0, |m| m.len()) < 256 * 1024 {
                assert!(std::time::Instant::now() < deadline, "no progress");
                std::thread::sleep(Duration::from_millis(10));
            }
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    };
    let part = dir.path().join("big.bin.part");
    let out = interrupt(d.clone(), url.clone(), part.clone()).await;
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && (kept as usize) < LEN, "{kept}");
    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("big.bin.part.json")).unwrap())
            .unwrap();
    assert!(sidecar["etag"].as_str().is_some_and(|e| e.starts_with('"')));
    let out = run(&["get", "--json", "--continue", "-o", &d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], 206);
    assert_eq!(line["bytes"], LEN as u64 - kept);
    let got = std::fs::read(dir.path().join("big.bin")).unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&expected_bytes(0, LEN)));

    // Interrupted again, then the file changes on the server: its ETag no longer matches,
    // nginx answers the resume with 200 and the download starts again from byte 0.
    std::fs::remove_file(dir.path().join("big.bin")).unwrap();
    let out = interrupt(d.clone(), url.clone(), part.clone()).await;
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    let changed = expected_bytes(7, LEN - 1000);
    std::fs::write(root.path().join("big.bin"), &changed).unwrap();
    let out = run(&["get", "--json", "--continue", "-o", &d, &url]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], 200);
    let got = std::fs::read(dir.path().join("big.bin")).unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&changed));
    assert_eq!(files_in(dir.path()), ["big.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_stops_the_run_with_status_1() {
    let server = TestServer::http1().await;
    let big = server.url("/bytes/50000000");
    let mut cmd = command(&["get", &big, &big]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 10];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout); // as `| head -c 10` does
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write to stdout"),
        "{}",
        stderr(&out)
    );
}
