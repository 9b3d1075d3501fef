//! Reporting finished downloads: the progress line, the JSON line (`--json`), the message on
//! stderr, the names given back to the output directory, and the summary at the end.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use netaccess::Reply;
use serde_json::{json, Map, Value};

use super::args::GetArgs;
use super::jobs::Job;
use super::partial::Resume;
use super::setup::shown_url;
use super::{Ctx, Outcome, Target, Tracked};

/// Totals for the summary line.
#[derive(Default)]
pub(super) struct Summary {
    pub(super) files: u64,
    pub(super) bytes: u64,
    pub(super) failed: u64,
}

/// What the run has seen so far.
pub(super) struct RunState {
    pub(super) failed: bool,
    pub(super) summary: Summary,
}

/// The summary line on stderr: files, bytes, time, rate, failures.
pub(super) fn print_summary(s: &Summary, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "netaccess: {} files, {} bytes in {secs:.1} s ({}/s), {} failed",
        s.files,
        s.bytes,
        human_bytes(s.bytes as f64 / secs.max(0.001)),
        s.failed
    );
}

fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut n = n;
    let mut unit = 0;
    while n >= 1024.0 && unit + 1 < UNITS.len() {
        n /= 1024.0;
        unit += 1;
    }
    format!("{n:.1} {}", UNITS[unit])
}

/// A JSON line for a URL that never became a request (or a list line that is not one).
pub(super) fn emit_json_error(args: &GetArgs, message: &str, url: Option<&str>) {
    if args.json {
        let line = json!({
            "url": url,
            "final_url": Value::Null,
            "status": Value::Null,
            "error": "UsageError",
            "error_message": message,
            "headers": {},
            "bytes": 0,
            "sha256": Value::Null,
            "from_cache": false,
            "http_version": Value::Null,
            "redirects": 0,
            "encrypted": false,
            "elapsed_ms": 0,
            "output": Value::Null,
            "kept": Value::Null,
        });
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

/// Gives back the names a finished download held in the output directory.
fn release_names(ctx: &Ctx, t: &Tracked, outcome: &Outcome) {
    if ctx.target(&t.job) != Target::File {
        return;
    }
    let names = [
        t.job.output.as_deref(),
        t.resume.as_ref().map(Resume::name),
        outcome.held.as_deref(),
    ];
    for name in names.into_iter().flatten() {
        ctx.dir.release(name);
    }
}

/// A job that could not start (a bad `-O`, a `.part` in the way).
pub(super) fn report_error(
    ctx: &Ctx,
    args: &GetArgs,
    state: &mut RunState,
    job: &Job,
    message: &str,
) {
    state.failed = true;
    state.summary.failed += 1;
    ctx.progress.download_done(true);
    let shown = shown_url(&job.url);
    emit_json_error(args, message, Some(&shown));
    ctx.progress
        .println(&format!("netaccess: {shown}: {message}"));
}

/// Reports a finished reply: its progress line, its JSON line, a message on stderr.
pub(super) fn report(
    ctx: &Ctx,
    args: &GetArgs,
    state: &mut RunState,
    t: &Tracked,
    outcome: Outcome,
) {
    ctx.live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&t.job.index);
    release_names(ctx, t, &outcome);
    let reply = &t.reply;
    let error = if outcome.resumed_complete || outcome.status_accepted {
        None
    } else {
        reply.error()
    };
    let error_message = outcome
        .local_error
        .clone()
        .or_else(|| error.as_ref().map(|e| e.message().to_owned()));
    let failed = error.is_some() || outcome.local_error.is_some();
    state.failed |= failed;
    if failed {
        state.summary.failed += 1;
    } else {
        state.summary.files += 1;
    }
    state.summary.bytes += outcome.bytes;
    t.line.finish(error_message.as_deref());
    ctx.progress.download_done(failed);
    let facts = super::writeout::Facts {
        reply,
        url: &t.url,
        bytes: outcome.bytes,
    };
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
            "elapsed_ms": t.elapsed_ms(ctx.started),
            "output": outcome.output.as_ref().map(|p| p.display().to_string()),
            "kept": outcome.kept.as_ref().map(|p| p.display().to_string()),
            "timings": super::writeout::timings_json(&facts),
        });
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
    if let Some(template) = &args.write_out {
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, "{}", super::writeout::render(template, &facts));
        let _ = stdout.flush();
    }
    if let Some(message) = &error_message {
        let mut text = format!("netaccess: {}: {message}", t.url);
        if let Some(kept) = &outcome.kept {
            text.push_str(&format!(" (kept as {} for --continue)", kept.display()));
        }
        if let Some(body) = &outcome.error_body {
            text.push_str(&format!(" (body in {})", body.display()));
        }
        ctx.progress.println(&text);
    } else if let (Some(path), false, false) = (&outcome.output, args.quiet, args.json) {
        let note = if outcome.resumed_complete {
            " (already complete)"
        } else {
            ""
        };
        ctx.progress
            .println(&format!("{} -> {}{note}", t.url, path.display()));
    }
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
