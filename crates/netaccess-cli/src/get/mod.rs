//! `netaccess get`: URLs through one manager (its per-host queue schedules them), at most
//! `--max-queued` started ahead of the finished ones, so a list of any length runs in bounded
//! memory.
//!
//! Bodies go to files (`-o DIR`, or `-O NAME` for one URL; written as `NAME.part` and renamed
//! when complete), to stdout in the order of the URLs (the first in line streams straight
//! through, later ones are read as they arrive into temporary files, never held in RAM, and
//! copied out in turn; one with a checksum is always spooled and checked first), or nowhere
//! (`--json` without `-o`: only a digest). A JSON line (if asked) is printed as each reply
//! finishes. Exit 0 when every reply succeeded, 1 otherwise, 2 for bad usage, 130 after
//! Ctrl-C (which aborts every transfer and keeps what was written as `.part` for
//! `--continue`).
//!
//! The parts: [`args`] (the flags and the help text), [`jobs`] (URLs and their own options,
//! from the command line and `-i` lists), [`setup`] (the manager, proxies, cache, cookie and
//! HSTS files, the request body), [`save`] (bodies into files, stdout or only a digest),
//! [`partial`] (`.part` sidecars and resuming), [`segmented`] (`-x N`: one file in N ranged
//! requests), [`netrc`], [`cookies_txt`], [`verbose`] (`-v` and `-D`), [`report`] (progress,
//! JSON and stderr lines, the summary), and here the loop that starts requests and hands each
//! finished reply to [`report`].

mod args;
mod cookies_txt;
mod jobs;
mod netrc;
mod partial;
mod report;
mod save;
mod segmented;
mod setup;
mod verbose;
mod writeout;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::ArgMatches;
use futures_util::stream::{FuturesUnordered, StreamExt};
use netaccess::{Body, NetworkAccessManager, Reply, Request};

pub use args::GetArgs;
use args::{credentials, usage};
use jobs::{Job, Jobs};
use partial::{PartIndex, Resume};
use report::{emit_json_error, report, report_error, RunState, Summary};
use save::{digest_only, save, spool, to_stdout, ErrorBodies, Spooled};
use setup::{build_manager, cache_load, connect_credentials, payload, shown_url, Payload, Stores};

use crate::output::OutputDir;
use crate::progress::{Line, Progress};

/// At most this much of a body is buffered before the socket is no longer read.
const READ_BUFFER: usize = 1 << 20;

/// The exit status after Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: i32 = 130;

/// What is tracked of one reply from before it starts.
pub(super) struct Tracked {
    job: Job,
    /// The URL as shown (without a password).
    url: String,
    reply: Reply,
    redirects: Arc<AtomicU32>,
    finished_after: Arc<OnceLock<Duration>>,
    line: Line,
    /// `--continue`: what is resumed.
    resume: Option<Resume>,
    /// Sent again without a range after a resume went wrong.
    restarted: bool,
    /// `-x`: this request is the probe of a segmented download.
    segmented: bool,
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
    /// A local failure (writing the file, an unexpected Content-Range, a checksum): the
    /// reply was aborted or its file not published.
    local_error: Option<String>,
    /// A 416 to a resume whose length was complete.
    resumed_complete: bool,
    /// A resume was answered with the wrong range: send again from byte 0.
    restart: bool,
    /// A partial download kept for `--continue`.
    kept: Option<PathBuf>,
    /// `--fail-with-body`: where the error body went.
    error_body: Option<PathBuf>,
    /// The name this download reserved in the output directory (given back at its end).
    held: Option<String>,
    /// The reply's HTTP error status is no failure: `-x`'s probe of an empty file (416).
    status_accepted: bool,
}

/// Where one URL's body goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    File,
    Stdout,
    Digest,
}

/// Everything a started request needs, shared by the loop.
struct Ctx {
    manager: NetworkAccessManager,
    verb: String,
    payload: Payload,
    headers: Vec<(String, String)>,
    deadline: Option<Duration>,
    max_redirects: u32,
    cache_load: netaccess::CacheLoadControl,
    /// `-o DIR`, else the current directory (for `-O NAME` and `NAME.error`).
    dir: Arc<OutputDir>,
    to_files: bool,
    json: bool,
    head: bool,
    resume: Option<PartIndex>,
    errors: ErrorBodies,
    /// `--fsync`: each file reaches the disk before it gets its name.
    fsync: bool,
    progress: Progress,
    started: Instant,
    /// The replies in flight, for Ctrl-C.
    live: Mutex<HashMap<usize, Reply>>,
    interrupted: AtomicBool,
    /// `-x N`: the number of ranged requests of a file (1: no splitting).
    split: u16,
    /// Becomes true at Ctrl-C (for the parts of `-x`, which are not in `live`).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Ctx {
    fn target(&self, job: &Job) -> Target {
        if self.head {
            Target::Digest
        } else if self.to_files || job.output.is_some() {
            Target::File
        } else if self.json {
            Target::Digest
        } else {
            Target::Stdout
        }
    }

    /// Starts the request of `job` (`resume` found already, or looked up now).
    fn start(
        &self,
        job: Job,
        resume: Option<Option<Resume>>,
        ranged: bool,
    ) -> Result<Arc<Tracked>, (Job, String)> {
        if let Some(name) = &job.output {
            match crate::output::sanitize(name) {
                Some(clean) if clean == *name => {}
                _ => {
                    return Err((
                        job.clone(),
                        format!(
                            "-O {name:?} is not a plain file name (no directories, no leading dot)"
                        ),
                    ))
                }
            }
        }
        let target = self.target(&job);
        let resume = match resume {
            Some(r) => r,
            None => match (&self.resume, target) {
                (Some(index), Target::File) => {
                    index.find(&self.dir, &job.url, job.output.as_deref())
                }
                _ => None,
            },
        };
        if let (Some(name), None, Target::File) = (&job.output, &resume, target) {
            if !self.dir.reserve_exact(name) {
                return Err((
                    job.clone(),
                    format!("another URL of this run is being saved as {name}"),
                ));
            }
            if self.dir.part_path(name).exists() {
                self.dir.release(name);
                return Err((
                    job.clone(),
                    format!(
                        "{} exists: --continue resumes it (or remove it)",
                        self.dir.part_path(name).display()
                    ),
                ));
            }
        }
        let mut request = Request::new(&job.url)
            .with_priority(job.priority)
            .with_max_redirects(self.max_redirects)
            .with_cache_load_control(self.cache_load);
        if let Some(deadline) = self.deadline {
            request = request.with_deadline(deadline);
        }
        for (n, v) in &self.headers {
            request.set_header(n, v);
        }
        let range = resume
            .as_ref()
            .filter(|_| ranged)
            .and_then(|r| r.request_headers(&self.dir));
        if let Some((range, if_range)) = &range {
            request.set_header("Range", range);
            request.set_header("If-Range", if_range);
        }
        // -x N: a new GET into a file goes out as the probe of a segmented download (not a
        // resume, nor a URL sent again, nor one whose -H sets a Range).
        let segmented = self.split > 1
            && ranged
            && resume.is_none()
            && target == Target::File
            && self.verb.eq_ignore_ascii_case("GET")
            && matches!(self.payload, Payload::None)
            && !self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("range"));
        if segmented {
            segmented::probe(&mut request);
        }
        if target == Target::File
            && !self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"))
        {
            // Files hold the representation's bytes, so that a Range counts them (curl and
            // wget ask for no coding either); -H 'Accept-Encoding: ...' asks otherwise.
            request.set_header("Accept-Encoding", "identity");
        }
        let body = match &self.payload {
            Payload::None => Body::empty(),
            Payload::Body(b) => b.clone(),
            Payload::Form(mp) => match mp.clone().apply(request.clone()) {
                Ok((r, b)) => {
                    request = r;
                    b
                }
                Err(e) => return Err((job, format!("bad form: {}", e.message()))),
            },
        };
        let shown = shown_url(&job.url);
        let line = self.progress.add(job.index, &shown);
        let redirects = Arc::new(AtomicU32::new(0));
        let finished_after = Arc::new(OnceLock::new());
        let started = self.started;
        let reply = self.manager.send_with(request, &self.verb, body, |reply| {
            // Back-pressure from the start: a body is read only as fast as its file, stdout
            // or spool takes it, even before its reader runs.
            reply.set_read_buffer_size(READ_BUFFER);
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
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.index, reply.clone());
        if self.interrupted.load(Ordering::Relaxed) {
            reply.abort();
        }
        Ok(Arc::new(Tracked {
            job,
            url: shown,
            reply,
            redirects,
            finished_after,
            line,
            resume,
            restarted: !ranged,
            segmented,
        }))
    }

    /// Ctrl-C: aborts every reply in flight, and the exit status becomes 130.
    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
        self.stop.send_replace(true);
        self.abort_all();
    }

    /// Aborts every reply in flight.
    fn abort_all(&self) {
        let live: Vec<Reply> = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for reply in live {
            reply.abort();
        }
    }
}

type Pending = Pin<Box<dyn Future<Output = (Arc<Tracked>, Outcome)> + Send>>;

/// A body for stdout, in URL order.
enum InLine {
    /// Streaming straight to stdout (it was first in line when it started).
    Direct(tokio::task::JoinHandle<Outcome>),
    /// Being read into a temporary file.
    Spool(tokio::task::JoinHandle<Spooled>),
}

/// Runs `get`; returns the exit status. `matches` are those of the `get` subcommand (they
/// tell which `--priority`, `-O` and `--checksum` go with which URL).
pub async fn run(args: GetArgs, matches: &ArgMatches) -> i32 {
    let command_line = match jobs::command_line_jobs(matches, &args) {
        Ok(jobs) => jobs,
        Err(e) => return usage(&e),
    };
    if args.max_queued == 0 {
        return usage("--max-queued must be at least 1");
    }
    if args.resume
        && args.output_dir.is_none()
        && args.input.is_empty()
        && command_line.iter().all(|j| j.output.is_none())
    {
        return usage("--continue needs files: -o DIR, or -O NAME after a URL");
    }
    if args.input.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return usage("-i - (stdin) can be given once");
    }
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
    let user = match args.user.as_deref().map(|u| credentials(u, "--user")) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return usage(&e),
    };
    let netrc_path = match (&args.netrc_file, args.netrc) {
        (Some(path), _) => Some(path.clone()),
        (None, true) => match netrc::default_path() {
            Some(path) => Some(path),
            None => return usage("--netrc: no home directory (use --netrc-file)"),
        },
        (None, false) => None,
    };
    let netrc = match netrc_path.map(|p| netrc::Netrc::load(&p)) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return usage(&e),
    };
    connect_credentials(&manager, user, netrc);
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
    let dir_path = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = match OutputDir::create(&dir_path) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            return usage(&format!(
                "cannot use {} as output directory: {e}",
                dir_path.display()
            ))
        }
    };
    let progress = Progress::new(
        !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        !args.input.is_empty(),
    );
    let ctx = Arc::new(Ctx {
        manager,
        head: verb.eq_ignore_ascii_case("HEAD"),
        verb,
        payload,
        headers,
        deadline,
        max_redirects: args.max_redirects,
        cache_load: cache_load(args.cache_load),
        resume: args.resume.then(|| PartIndex::scan(&dir_path)),
        errors: ErrorBodies(args.fail_with_body.then(|| dir.clone())),
        dir,
        to_files: args.output_dir.is_some(),
        fsync: args.fsync,
        json: args.json,
        progress,
        started: Instant::now(),
        live: Mutex::new(HashMap::new()),
        interrupted: AtomicBool::new(false),
        split: args.split,
        stop: tokio::sync::watch::Sender::new(false),
    });
    let interrupt = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                ctx.interrupt();
                // A second Ctrl-C does not wait for anything.
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(INTERRUPTED);
                }
            }
        })
    };
    let mut state = RunState {
        failed: false,
        summary: Summary::default(),
    };
    drive(
        &ctx,
        &args,
        Jobs::new(command_line, args.input.clone()),
        &mut state,
    )
    .await;
    interrupt.abort();
    ctx.progress.finish();
    let _ = std::io::stdout().flush();
    if ctx.progress.enabled() || args.verbose {
        report::print_summary(&state.summary, ctx.started.elapsed());
    }
    state.failed |= !stores.save();
    if ctx.interrupted.load(Ordering::Relaxed) {
        eprintln!(
            "netaccess: interrupted; partial downloads are kept as .part files for --continue"
        );
        return INTERRUPTED;
    }
    i32::from(state.failed)
}

/// The loop: reads jobs while fewer than `--max-queued` are unfinished, starts them, and
/// reports each as it finishes (stdout bodies in URL order).
async fn drive(ctx: &Arc<Ctx>, args: &GetArgs, mut jobs: Jobs, state: &mut RunState) {
    let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
    let mut in_line: VecDeque<(Arc<Tracked>, InLine)> = VecDeque::new();
    let mut reading = true;
    let mut known = 0usize;
    loop {
        let unfinished = pending.len() + in_line.len();
        if ctx.interrupted.load(Ordering::Relaxed) && reading {
            jobs.stop();
            reading = false;
        }
        if !reading && unfinished == 0 {
            return;
        }
        tokio::select! {
            biased;
            Some((t, outcome)) = pending.next(), if !pending.is_empty() => {
                if outcome.restart && !t.restarted && !ctx.interrupted.load(Ordering::Relaxed) {
                    ctx.progress.println(&format!(
                        "netaccess: {}: {}; starting again from byte 0",
                        t.url,
                        outcome.local_error.as_deref().unwrap_or("")
                    ));
                    t.line.finish(Some("restarted"));
                    match ctx.start(t.job.clone(), Some(t.resume.clone()), false) {
                        Ok(again) => pending.push(process(ctx.clone(), again)),
                        Err((job, message)) => report_error(ctx, args, state, &job, &message),
                    }
                    continue;
                }
                report(ctx, args, state, &t, outcome);
            }
            done = wait_front(&mut in_line), if !in_line.is_empty() => {
                let Some((t, _)) = in_line.pop_front() else { continue };
                let outcome = match done {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(spooled)) => {
                        let reply = t.reply.clone();
                        tokio::task::spawn_blocking(move || {
                            spooled.copy_to(&reply, &mut std::io::stdout().lock())
                        })
                        .await
                        .unwrap_or_else(|e| Outcome {
                            local_error: Some(format!("writing to stdout failed: {e}")),
                            ..Outcome::default()
                        })
                    }
                    Err(e) => Outcome {
                        local_error: Some(format!("reading the body failed: {e}")),
                        ..Outcome::default()
                    },
                };
                let broken = outcome
                    .local_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("cannot write to stdout"));
                report(ctx, args, state, &t, outcome);
                if broken {
                    // stdout is gone (a closed pipe): nothing more can be delivered.
                    ctx.abort_all();
                    state.failed = true;
                    jobs.stop();
                    reading = false;
                }
            }
            item = jobs.next(), if reading && unfinished < args.max_queued => {
                let Some(item) = item else {
                    reading = false;
                    ctx.progress.all_known();
                    continue;
                };
                known += 1;
                ctx.progress.known(known);
                let job = match item {
                    Ok(job) => job,
                    Err(bad) => {
                        state.failed = true;
                        state.summary.failed += 1;
                        ctx.progress.download_done(true);
                        emit_json_error(args, &bad.message, None);
                        ctx.progress.println(&format!("netaccess: {}", bad.message));
                        continue;
                    }
                };
                let target = ctx.target(&job);
                let tracked = match ctx.start(job, None, true) {
                    Ok(t) => t,
                    Err((job, message)) => {
                        report_error(ctx, args, state, &job, &message);
                        continue;
                    }
                };
                if target == Target::Stdout {
                    let t = tracked.clone();
                    let errors = ctx.errors.clone();
                    let entry = if in_line.is_empty() && tracked.job.sha256.is_none() {
                        InLine::Direct(tokio::spawn(async move {
                            to_stdout(&t, &mut std::io::stdout(), &errors).await
                        }))
                    } else {
                        InLine::Spool(tokio::spawn(async move { spool(t, &errors).await }))
                    };
                    in_line.push_back((tracked, entry));
                } else {
                    pending.push(process(ctx.clone(), tracked));
                }
            }
            else => return,
        }
    }
}

/// The next stdout body in line: `Ok(outcome)` streamed, `Err(spooled)` waiting to be copied.
async fn wait_front(
    in_line: &mut VecDeque<(Arc<Tracked>, InLine)>,
) -> Result<Result<Outcome, Spooled>, tokio::task::JoinError> {
    match in_line.front_mut() {
        Some((_, InLine::Direct(handle))) => handle.await.map(Ok),
        Some((_, InLine::Spool(handle))) => handle.await.map(Err),
        None => std::future::pending().await,
    }
}

/// Reads a reply into its file, or only its digest.
fn process(ctx: Arc<Ctx>, t: Arc<Tracked>) -> Pending {
    Box::pin(async move {
        if t.segmented {
            return segmented::save(&ctx, t).await;
        }
        let outcome = match ctx.target(&t.job) {
            Target::File => save(&t, &ctx.dir, &ctx.errors, ctx.fsync).await,
            _ => digest_only(&t, &ctx.errors).await,
        };
        (t, outcome)
    })
}

/// RFC 9110 token characters (a header name).
fn http_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
