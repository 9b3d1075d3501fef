//! What the CLI tests share: the `netaccess` binary run in isolation (its own cache directory,
//! no config file, no proxy from the environment) on a blocking thread, and reading what it
//! printed and wrote.
//!
//! Each test file includes it with `mod support;`; not every file uses every item.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The proxy variables of the environment, all removed from every run.
pub const PROXY_VARIABLES: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
];

static NEXT_CACHE: AtomicUsize = AtomicUsize::new(0);

/// A cache directory no other run uses (`tag` names the test file): a user's cache must
/// neither serve nor store the tests' responses.
pub fn fresh_cache_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "netaccess-{tag}-cache-{}-{}",
        std::process::id(),
        NEXT_CACHE.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `netaccess ARGS` with `cache_home` as `XDG_CACHE_HOME`, no config file and no proxy
/// variables.
pub fn command(args: &[&str], cache_home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netaccess"));
    cmd.args(args);
    cmd.env("XDG_CACHE_HOME", cache_home)
        .env("NETACCESS_CONFIG", "");
    for var in PROXY_VARIABLES {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs the command on a blocking thread (the test servers keep running meanwhile).
pub async fn output_of(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the netaccess binary runs"))
        .await
        .expect("the blocking task")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("an exit code")
}

/// The JSON lines of stdout.
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("UTF-8 JSON")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `cmd` run under GNU time(1), which writes the command's own peak RSS (KiB) to `rss_file`;
/// the exit status is the command's.
///
/// `wait4`'s `ru_maxrss` of a child spawned from the test process is no measure of the
/// child: spawning shares or copies this process's memory until `exec`, and Linux keeps the
/// larger high-water mark, so the child "peaks" at the test binary's own RSS (other tests
/// in the binary make it 120 MiB). time(1) is a small process that forks the command from
/// itself.
pub fn under_time(cmd: &Command, rss_file: &Path) -> Command {
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss_file)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => timed.env(name, value),
            None => timed.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    timed
}

/// The peak RSS in KiB that [`under_time`] wrote to `rss_file`.
pub fn peak_rss_kib(rss_file: &Path) -> i64 {
    let text = std::fs::read_to_string(rss_file).expect("time(1) wrote its report");
    text.lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no peak RSS in time(1)'s report: {text:?}"))
}

/// What a range server of the tests was sent: `(Range, If-Range)` per request, in order.
pub type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// Reads one request head from `stream` (byte by byte, so nothing after it is consumed),
/// logs its `Range` and `If-Range` in `seen` and returns them with the number of requests
/// logged so far; `None` when the client went away before the head ended.
pub fn read_range_request(
    stream: &mut impl Read,
    seen: &Seen,
) -> Option<(Option<String>, Option<String>, usize)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let (range, if_range) = (header("range"), header("if-range"));
    let mut log = seen.lock().unwrap();
    log.push((range.clone(), if_range.clone()));
    Some((range, if_range, log.len()))
}

/// N of an open range `bytes=N-`; `None` for no range or any other form.
pub fn open_range_start(range: Option<&str>) -> Option<usize> {
    range?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}
