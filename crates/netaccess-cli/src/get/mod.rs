//! `netaccess get`: every URL to one manager at once (its per-host queue schedules them).
//!
//! Without `-o`, bodies go to stdout in the order of the URLs: the first streams straight
//! through, the later ones are read as they arrive into temporary files (never held in RAM)
//! and copied out in turn. With `-o DIR` or
//! `--json`, every reply is read as it arrives and its JSON line (if asked) is printed when it
//! finishes. Exit 0 when every reply succeeded, 1 otherwise, 2 for bad usage.

//!
//! The parts: [`args`] (the flags and the help text), [`setup`] (the manager, proxies, cache,
//! cookie and HSTS files, the request body), [`save`] (bodies into files, stdout or only a
//! digest), [`segmented`] (`-x N`: one file in N ranged requests), and here the loop that starts every request and reports each reply.

mod args;
mod save;
mod segmented;
mod setup;
mod verbose;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use netaccess::{Body, Priority, Reply, Request};
use serde_json::{json, Map, Value};

pub use args::GetArgs;
use args::{credentials, usage};
use save::{digest_only, resume_target, save, spool, to_stdout};
use setup::{build_manager, cache_load, origin_of, payload, shown_url, Payload, Stores};

use crate::output::OutputDir;
use crate::progress::{Line, Progress};

/// What is tracked of one reply from before it starts.
pub(super) struct Tracked {
    url: String,
    reply: Reply,
    redirects: Arc<AtomicU32>,
    finished_after: Arc<OnceLock<Duration>>,
    line: Line,
    /// `--continue`: the existing file and its length.
    resume: Option<(String, u64)>,
}

impl Tracked {
    fn elapsed_ms(&self, started: Instant) -> u64 {
        let elapsed = self
            .finished_after
            .get()
            .copied()
            .unwrap_or_else(|| started.elapsed());
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }
}

/// The result of reading one reply.
#[derive(Default)]
pub(super) struct Outcome {
    bytes: u64,
    sha256: String,
    output: Option<PathBuf>,
    /// A local failure (writing the file, an unexpected Content-Range): the reply was aborted.
    local_error: Option<String>,
    /// A 416 to a resume: the file was complete.
    resumed_complete: bool,
}

/// Runs `get`; returns the exit status. `priorities` has one entry per URL.
pub async fn run(args: GetArgs, priorities: Vec<Priority>) -> i32 {
    let stores = match Stores::load(&args) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let manager = match build_manager(&args, &stores) {
        Ok(m) => m,
        Err(e) => return usage(&e),
    };
    let deadline = match args.max_time.map(|secs| setup::seconds(secs, "--max-time")) {
        None => None,
        Some(Ok(deadline)) => Some(deadline),
        Some(Err(e)) => return usage(&e),
    };
    if let Some(user) = &args.user {
        let (user, password) = match credentials(user, "--user") {
            Ok(c) => c,
            Err(e) => return usage(&e),
        };
        // Given once per reply, and only to the origin of the URL the user gave: never to a
        // redirect target (curl's rule without --location-trusted; CVE-2018-1000007). Asked
        // again means they were refused.
        let answered = std::sync::Mutex::new(std::collections::HashSet::new());
        manager
            .authentication_required()
            .connect(move |(reply, request)| {
                let given = reply.request().url().map(origin_of);
                let same_origin = given.is_some() && given == Some(origin_of(&reply.url()));
                if same_origin
                    && answered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(reply.clone())
                {
                    request.answer(&user, &password);
                } else {
                    request.refuse();
                }
            });
    }
    let payload = match payload(&args) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        match h.split_once(':') {
            Some((name, value)) if http_token(name.trim()) => {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            _ => return usage(&format!("bad header {h:?}: expected 'Name: value'")),
        }
    }
    let verb = args.method.clone().unwrap_or_else(|| {
        match payload {
            Payload::None => "GET",
            _ => "POST",
        }
        .to_owned()
    });
    let out_dir = match &args.output_dir {
        Some(dir) => match OutputDir::create(dir) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                return usage(&format!(
                    "cannot use {} as output directory: {e}",
                    dir.display()
                ))
            }
        },
        None => None,
    };

    let progress = Progress::new(
        !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        args.urls.len(),
    );
    // -x N: a GET into DIR (not a resume) goes out as the probe of a segmented download.
    let segmenting = args.split > 1
        && out_dir.is_some()
        && verb.eq_ignore_ascii_case("GET")
        && matches!(payload, Payload::None);
    let started = Instant::now();
    let mut tracked = Vec::with_capacity(args.urls.len());
    for (index, url) in args.urls.iter().enumerate() {
        let mut request = Request::new(url)
            .with_priority(priorities.get(index).copied().unwrap_or(Priority::Normal))
            .with_max_redirects(args.max_redirects)
            .with_cache_load_control(cache_load(args.cache_load));
        if let Some(deadline) = deadline {
            request = request.with_deadline(deadline);
        }
        for (n, v) in &headers {
            request.set_header(n, v);
        }
        let resume = match (&out_dir, args.resume) {
            (Some(dir), true) => resume_target(dir, url),
            _ => None,
        };
        if let Some((name, len)) = &resume {
            let path = out_dir.as_ref().expect("resume needs -o").path(name);
            request.set_header("Range", &format!("bytes={len}-"));
            request.set_header("Accept-Encoding", "identity");
            if let Ok(mtime) = std::fs::metadata(&path).and_then(|m| m.modified()) {
                request.set_header("If-Range", &httpdate::fmt_http_date(mtime));
            }
        }
        if segmenting && resume.is_none() {
            segmented::probe(&mut request);
        }
        let body = match &payload {
            Payload::None => Body::empty(),
            Payload::Body(b) => b.clone(),
            Payload::Form(mp) => match mp.clone().apply(request.clone()) {
                Ok((r, b)) => {
                    request = r;
                    b
                }
                Err(e) => return usage(&format!("bad form: {}", e.message())),
            },
        };
        let shown = shown_url(url);
        let line = progress.add(index, &shown);
        let redirects = Arc::new(AtomicU32::new(0));
        let finished_after = Arc::new(OnceLock::new());
        let reply = manager.send_with(request, &verb, body, |reply| {
            let counter = redirects.clone();
            reply.redirected().connect(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            });
            let done = finished_after.clone();
            reply.finished().connect(move |_| {
                let _ = done.set(started.elapsed());
            });
            line.connect(reply);
        });
        tracked.push(Tracked {
            url: shown,
            reply,
            redirects,
            finished_after,
            line,
            resume,
        });
    }
    let replies: Vec<Reply> = tracked.iter().map(|t| t.reply.clone()).collect();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            for reply in &replies {
                reply.abort();
            }
        }
    });

    let mut failed = false;
    let quiet = args.quiet;
    let mut report = |t: &Tracked, outcome: Outcome, stdout: &mut dyn Write| {
        let reply = &t.reply;
        let error = if outcome.resumed_complete {
            None
        } else {
            reply.error()
        };
        let error_message = outcome
            .local_error
            .clone()
            .or_else(|| error.as_ref().map(|e| e.message().to_owned()));
        failed |= error.is_some() || outcome.local_error.is_some();
        t.line.finish(error_message.as_deref());
        progress.download_done();
        if args.json {
            let line = json!({
                "url": t.url,
                "final_url": netaccess::display_url(&reply.url()),
                "status": reply.status_code(),
                "error": error.as_ref().map(|e| e.kind().name()),
                "error_message": error_message,
                "headers": headers_json(reply),
                "bytes": outcome.bytes,
                "sha256": outcome.sha256,
                "from_cache": reply.source_is_from_cache(),
                "http_version": if reply.http2_was_used() { "HTTP/2" } else { "HTTP/1.1" },
                "redirects": t.redirects.load(Ordering::Relaxed),
                "encrypted": reply.is_encrypted(),
                "elapsed_ms": t.elapsed_ms(started),
                "output": outcome.output.as_ref().map(|p| p.display().to_string()),
            });
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
        if let Some(message) = &error_message {
            progress.println(&format!("netaccess: {}: {message}", t.url));
        } else if let (Some(path), false, false) = (&outcome.output, quiet, args.json) {
            let note = if outcome.resumed_complete {
                " (already complete)"
            } else {
                ""
            };
            progress.println(&format!("{} -> {}{note}", t.url, path.display()));
        }
    };

    let mut stdout = std::io::stdout().lock();
    match &out_dir {
        None if !args.json => {
            // Bodies to stdout, in URL order. The first streams straight through; the later
            // ones are read as they arrive into temporary files, so a large body behind a
            // slow one is never held in memory.
            let mut spools: Vec<_> = tracked
                .iter()
                .skip(1)
                .map(|t| Some(tokio::spawn(spool(t.reply.clone()))))
                .collect();
            for (index, t) in tracked.iter().enumerate() {
                let outcome = match index.checked_sub(1).and_then(|i| spools[i].take()) {
                    None => to_stdout(&t.reply, &mut stdout).await,
                    Some(spooled) => match spooled.await {
                        Ok(spooled) => spooled.copy_to(&t.reply, &mut stdout),
                        Err(e) => Outcome {
                            local_error: Some(format!("reading the body failed: {e}")),
                            ..Outcome::default()
                        },
                    },
                };
                let broken = outcome.local_error.is_some();
                report(t, outcome, &mut stdout);
                if broken {
                    // stdout is gone (a closed pipe): nothing more can be delivered.
                    for t in &tracked {
                        t.reply.abort();
                    }
                    failed = true;
                    break;
                }
            }
        }
        _ => {
            // Every reply read as it arrives (into its file, or only hashed); JSON lines as
            // they finish.
            let mut pending = FuturesUnordered::new();
            let head = verb.eq_ignore_ascii_case("HEAD");
            let (manager, split, json) = (&manager, args.split, args.json);
            for (index, t) in tracked.iter().enumerate() {
                let dir = out_dir.clone();
                pending.push(async move {
                    let outcome = match dir {
                        Some(dir) if segmenting && t.resume.is_none() => {
                            segmented::save(t, index, &dir, manager, split, json).await
                        }
                        Some(dir) if !head => save(t, index, &dir).await,
                        _ => digest_only(&t.reply).await,
                    };
                    (t, outcome)
                });
            }
            while let Some((t, outcome)) = pending.next().await {
                report(t, outcome, &mut stdout);
            }
        }
    }
    interrupt.abort();
    progress.finish();
    let _ = stdout.flush();
    failed |= !stores.save();
    i32::from(failed)
}

/// RFC 9110 token characters (a header name).
fn http_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
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
