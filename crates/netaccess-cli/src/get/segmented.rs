//! `-x N`: one file fetched in N ranged requests at once, into its `NAME.part`.
//!
//! The URL's request goes out with `Range: bytes=0-` [`PROBE_LEN`]`-1` ([`probe`]). Its answer
//! decides ([`save`]):
//! - `206` with a `Content-Range` total and a strong `ETag` (not `W/`): `NAME.part` (from
//!   [`part_path`](crate::output::OutputDir::part_path), named as any download) is preallocated, the probe's bytes go to
//!   its start, and the rest is split into at most N parts of at least [`MIN_PART`] bytes,
//!   each asked for with `Range` and `If-Range: <ETag>` at the final URL and written into
//!   place (positional writes). A part must come back as the `206` with exactly its
//!   `Content-Range` and length, and the same ETag; anything else (the file changed) fails
//!   the download and removes the `.part`. When the download stops otherwise (an error,
//!   Ctrl-C), the `.part` is cut to the bytes complete from its start and gets its sidecar
//!   (URL, ETag, length), so `--continue` asks for the missing tail in one ranged request, as
//!   for any `.part`; with nothing complete from the start, it is removed. A crash leaves a
//!   `.part` without a sidecar, which is never resumed (the next run takes another name).
//! - `416` with `Content-Range: bytes */0`: the file is empty.
//! - `206` without a strong validator (or an odd range), or another `416`: the URL is sent
//!   again as one plain request (parts of two versions must never be joined).
//! - Anything else (a `200`: ranges ignored; an error): read as one download, as without -x.
//!
//! The parts are ordinary requests of the same manager with the URL's priority, so they wait
//! in the per-host queue like any other (on HTTP/2 they are streams of one connection), and
//! the rate limits apply to them; the URL's progress line counts the bytes of all of them. At
//! the end the length is checked, the SHA-256 computed (for `--json` and `--checksum`: a
//! mismatch publishes nothing), and the file published with [`publish`](crate::output::OutputDir::publish).

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use netaccess::{Body, BodyStream, Reply, Request};

use super::partial::{self, sidecar_path};
use super::save::{self, First};
use super::{Ctx, Outcome, Tracked, READ_BUFFER};
use crate::output;

/// The first request asks for this many bytes; the rest is split.
pub(super) const PROBE_LEN: u64 = 1024 * 1024;
/// No part is smaller (a file just over the probe is not cut into slivers).
pub(super) const MIN_PART: u64 = 256 * 1024;

/// Makes the URL's request the probe: its first [`PROBE_LEN`] bytes, not encoded (a range
/// of a gzip body is useless), never from or into the cache (a 206 is a part of a file).
pub(super) fn probe(request: &mut Request) {
    request.set_header("Range", &format!("bytes=0-{}", PROBE_LEN - 1));
    request.set_header("Accept-Encoding", "identity");
    *request = request
        .clone()
        .with_cache_load_control(netaccess::CacheLoadControl::AlwaysNetwork)
        .with_cache_save_control(false);
}

/// The reply's ETag if it is a strong one.
fn strong_etag(reply: &Reply) -> Option<String> {
    let value = reply.header("etag")?;
    let text = value.to_str().ok()?.trim();
    (text.starts_with('"') && text.len() >= 2).then(|| text.to_owned())
}

/// The byte ranges `[start, end]` the rest of a file of `total` bytes after `from` is split
/// into: at most `n`, each at least [`MIN_PART`] (the last may be shorter).
pub(super) fn parts(from: u64, total: u64, n: u16) -> Vec<(u64, u64)> {
    let rest = total.saturating_sub(from);
    if rest == 0 {
        return Vec::new();
    }
    let count = u64::from(n.max(1)).min(rest.div_ceil(MIN_PART)).max(1);
    let size = rest.div_ceil(count);
    (0..count)
        .map(|i| from + i * size)
        .take_while(|&start| start < total)
        .map(|start| (start, (start + size).min(total) - 1))
        .collect()
}

/// Writes `bytes` at `offset` of `file` (positional: parts write into one file at once).
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < bytes.len() {
            let n = std::os::windows::fs::FileExt::seek_write(
                file,
                &bytes[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Why a segmented download stopped.
struct Failure {
    message: String,
    /// The server's file changed (or it did not honour a range): the bytes are useless.
    changed: bool,
}

impl Failure {
    fn new(message: String) -> Failure {
        Failure {
            message,
            changed: false,
        }
    }
}

/// One byte range of the file and how much of it is written (from its start).
struct Segment {
    start: u64,
    len: u64,
    written: AtomicU64,
}

/// The bytes written by all segments, shown on the URL's progress line.
struct Counter<'a> {
    sum: AtomicU64,
    line: &'a crate::progress::Line,
}

impl Counter<'_> {
    fn add(&self, n: u64) {
        let sum = self.sum.fetch_add(n, Ordering::Relaxed) + n;
        self.line.progress(sum);
    }
}

/// The bytes complete from the start of the file: the segments in order, up to the first
/// that is not whole.
fn complete_prefix(segments: &[Segment]) -> u64 {
    let mut prefix = 0;
    for segment in segments {
        if segment.start != prefix {
            break;
        }
        let written = segment.written.load(Ordering::Relaxed).min(segment.len);
        prefix += written;
        if written < segment.len {
            break;
        }
    }
    prefix
}

/// Reads `stream` (after its `first` chunk) into `segment` of `file`; no more than its
/// length is accepted.
async fn write_stream(
    reply: &Reply,
    mut stream: BodyStream,
    first: First,
    file: &File,
    segment: &Segment,
    counter: &Counter<'_>,
) -> Result<(), Failure> {
    let mut next = first;
    loop {
        let chunk = match next.take() {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(Failure::new(e.message().to_owned())),
            None => break,
        };
        let written = segment.written.load(Ordering::Relaxed);
        let end = written + chunk.len() as u64;
        if end > segment.len {
            reply.abort();
            return Err(Failure {
                message: format!("more than the {} bytes asked for", segment.len),
                changed: true,
            });
        }
        // A page-cache write of one chunk: short enough not to need a blocking thread.
        write_at(file, &chunk, segment.start + written)
            .map_err(|e| Failure::new(format!("cannot write: {e}")))?;
        segment.written.store(end, Ordering::Relaxed);
        counter.add(chunk.len() as u64);
        next = stream.next().await;
    }
    if let Some(e) = reply.error() {
        return Err(Failure::new(e.message().to_owned()));
    }
    let written = segment.written.load(Ordering::Relaxed);
    if written != segment.len {
        return Err(Failure::new(format!(
            "{written} bytes of {} arrived",
            segment.len
        )));
    }
    Ok(())
}

/// One part: a ranged request of the final URL, checked and written into place.
async fn part(
    ctx: &Ctx,
    template: &Request,
    etag: &str,
    total: u64,
    segment: &Segment,
    file: &File,
    counter: &Counter<'_>,
) -> Result<(), Failure> {
    let (start, end) = (segment.start, segment.start + segment.len - 1);
    let mut request = template.clone();
    request.set_header("Range", &format!("bytes={start}-{end}"));
    request.set_header("If-Range", etag);
    let reply = ctx
        .manager
        .send_with(request, "GET", Body::empty(), |reply| {
            reply.set_read_buffer_size(READ_BUFFER);
        });
    let mut stream = reply.body_stream();
    let first = stream.next().await;
    if let Some(Err(e)) = &first {
        return Err(Failure::new(format!(
            "bytes {start}-{end}: {}",
            e.message()
        )));
    }
    let range = partial::content_range(&reply);
    if reply.status_code() != Some(206)
        || range.and_then(|r| r.range) != Some((start, end))
        || range.and_then(|r| r.total) != Some(total)
        || strong_etag(&reply).as_deref() != Some(etag)
    {
        reply.abort();
        return Err(Failure {
            message: format!(
                "bytes {start}-{end}: the server answered {} {:?} (ETag {:?}): the file changed \
                 or the range was not honoured",
                reply.status_code().unwrap_or(0),
                reply.header("content-range"),
                reply.header("etag"),
            ),
            changed: true,
        });
    }
    write_stream(&reply, stream, first, file, segment, counter)
        .await
        .map_err(|f| Failure {
            message: format!("bytes {start}-{end}: {}", f.message),
            ..f
        })
}

/// Reads the probe's reply and, as its head says, the other parts, into `NAME.part`; then
/// checks and publishes it. Returns the download that was reported (the probe's, or the
/// plain request sent instead).
pub(super) async fn save(ctx: &Arc<Ctx>, t: Arc<Tracked>) -> (Arc<Tracked>, Outcome) {
    let reply = &t.reply;
    let mut stream = reply.body_stream();
    // The first chunk (or the end): the response head is known by then.
    let first = stream.next().await;
    let range = partial::content_range(reply);
    match reply.status_code() {
        Some(416) if range.and_then(|r| r.total) == Some(0) => {
            let outcome = empty(ctx, &t).await;
            (t, outcome)
        }
        Some(416) => again(ctx, t).await,
        Some(206) => {
            let split = range.and_then(|r| match (r.range, r.total) {
                (Some((0, end)), Some(total)) => Some((end, total)),
                _ => None,
            });
            match (split, strong_etag(reply), first) {
                (Some((end, total)), Some(etag), Some(Ok(chunk))) => {
                    let outcome = split_into(ctx, &t, stream, chunk, end, total, &etag).await;
                    (t, outcome)
                }
                (_, _, first @ Some(Err(_))) => {
                    let outcome =
                        save::save_from(&t, &ctx.dir, &ctx.errors, ctx.fsync, stream, first).await;
                    (t, outcome)
                }
                _ => again(ctx, t).await,
            }
        }
        _ => {
            let outcome =
                save::save_from(&t, &ctx.dir, &ctx.errors, ctx.fsync, stream, first).await;
            (t, outcome)
        }
    }
}

/// The URL sent again as one plain request, read as without -x.
async fn again(ctx: &Arc<Ctx>, t: Arc<Tracked>) -> (Arc<Tracked>, Outcome) {
    t.reply.abort();
    t.line
        .finish(Some("parts cannot be joined: sent again in one request"));
    if let Some(name) = &t.job.output {
        // Held by the probe's start; the plain request reserves it again.
        ctx.dir.release(name);
    }
    match ctx.start(t.job.clone(), Some(None), false) {
        Ok(plain) => {
            let outcome = save::save(&plain, &ctx.dir, &ctx.errors, ctx.fsync).await;
            (plain, outcome)
        }
        Err((_, message)) => (
            t,
            Outcome {
                local_error: Some(message),
                ..Outcome::default()
            },
        ),
    }
}

/// The name of the download (`-O`, else from the reply, reserved) and whether publishing
/// may replace an existing file.
fn name_of(ctx: &Ctx, t: &Tracked, outcome: &mut Outcome) -> (String, bool) {
    match &t.job.output {
        Some(name) => (name.clone(), true),
        None => {
            let disposition = t.reply.header("content-disposition");
            let name = output::choose_name(disposition.as_ref().map(|v| v.as_bytes()), &t.job.url);
            let name = ctx.dir.reserve(&name);
            outcome.held = Some(name.clone());
            (name, false)
        }
    }
}

/// A 416 saying the file has 0 bytes: an empty file.
async fn empty(ctx: &Ctx, t: &Tracked) -> Outcome {
    let mut outcome = Outcome {
        status_accepted: true,
        ..Outcome::default()
    };
    let (name, replace) = name_of(ctx, t, &mut outcome);
    match save::open_part(&ctx.dir, &name, &t.job.url, &t.reply, !replace) {
        Ok((file, part, _)) => {
            drop(file);
            publish(ctx, t, &part, &name, replace, outcome).await
        }
        Err(e) => {
            outcome.local_error = Some(format!("cannot write in {}: {e}", ctx.dir.display()));
            outcome
        }
    }
}

/// Hashes a complete `.part` (when `--json` or `--checksum` needs it), checks it and
/// publishes it as `name`; a mismatch removes it.
async fn publish(
    ctx: &Ctx,
    t: &Tracked,
    part: &std::path::Path,
    name: &str,
    replace: bool,
    mut outcome: Outcome,
) -> Outcome {
    if ctx.json || t.job.sha256.is_some() {
        let path = part.to_owned();
        match tokio::task::spawn_blocking(move || save::file_sha256(&path)).await {
            Ok(Ok(actual)) => {
                outcome.sha256 = hex::encode(actual);
                if let Some(expected) = t.job.sha256.filter(|e| *e != actual) {
                    outcome.local_error = Some(format!(
                        "sha256 mismatch: expected {}, got {}; nothing was saved",
                        hex::encode(expected),
                        hex::encode(actual)
                    ));
                    save::remove_part(part);
                    return outcome;
                }
            }
            Ok(Err(e)) => {
                outcome.local_error = Some(format!("cannot read {}: {e}", part.display()));
                return outcome;
            }
            Err(e) => {
                outcome.local_error = Some(format!("checking the checksum failed: {e}"));
                return outcome;
            }
        }
    }
    match ctx.dir.publish(part, name, replace) {
        Ok(path) => {
            let _ = std::fs::remove_file(sidecar_path(part));
            outcome.output = Some(path);
        }
        Err(e) => outcome.local_error = Some(format!("cannot save {name}: {e}")),
    }
    outcome
}

/// The probe's 206 (bytes 0 to `probe_end` of `total`, with a strong `etag`): the probe and
/// the other parts into a preallocated `NAME.part`.
async fn split_into(
    ctx: &Ctx,
    t: &Tracked,
    stream: BodyStream,
    first: bytes::Bytes,
    probe_end: u64,
    total: u64,
    etag: &str,
) -> Outcome {
    let reply = &t.reply;
    let mut outcome = Outcome::default();
    let (name, replace) = name_of(ctx, t, &mut outcome);
    let (file, part, sidecar) = match save::open_part(&ctx.dir, &name, &t.job.url, reply, !replace)
    {
        Ok(opened) => opened,
        Err(e) => {
            reply.abort();
            outcome.local_error = Some(format!("cannot write in {}: {e}", ctx.dir.display()));
            return outcome;
        }
    };
    let probe_len = probe_end + 1;
    let mut segments = vec![Segment {
        start: 0,
        len: probe_len,
        written: AtomicU64::new(0),
    }];
    segments.extend(
        parts(probe_len, total, ctx.split)
            .into_iter()
            .map(|(start, end)| Segment {
                start,
                len: end - start + 1,
                written: AtomicU64::new(0),
            }),
    );
    t.line.take_over(total);
    let counter = Counter {
        sum: AtomicU64::new(0),
        line: &t.line,
    };
    let result = match file.set_len(total) {
        Err(e) => Err(Failure::new(format!("cannot allocate {total} bytes: {e}"))),
        Ok(()) => {
            fill(
                ctx, t, stream, first, etag, total, &segments, &file, &counter,
            )
            .await
        }
    };
    outcome.bytes = counter.sum.load(Ordering::Relaxed);
    if let Err(failure) = result {
        reply.abort();
        let prefix = complete_prefix(&segments);
        let kept = !failure.changed
            && prefix > 0
            && file.set_len(prefix).is_ok()
            && sidecar.save(&sidecar_path(&part)).is_ok();
        if kept {
            outcome.kept = Some(part);
        } else {
            save::remove_part(&part);
        }
        outcome.local_error = Some(failure.message);
        return outcome;
    }
    match file.metadata() {
        Ok(meta) if meta.len() == total && outcome.bytes == total => {}
        Ok(meta) => {
            outcome.local_error = Some(format!(
                "the file has {} bytes ({} written), not {total}",
                meta.len(),
                outcome.bytes
            ));
            save::remove_part(&part);
            return outcome;
        }
        Err(e) => {
            outcome.local_error = Some(format!("cannot check {}: {e}", part.display()));
            save::remove_part(&part);
            return outcome;
        }
    }
    output::set_mtime(&file, save::last_modified(reply));
    if ctx.fsync {
        if let Err(e) = tokio::task::block_in_place(|| file.sync_all()) {
            outcome.local_error = Some(format!("cannot write {}: {e}", part.display()));
            return outcome;
        }
    }
    drop(file);
    publish(ctx, t, &part, &name, replace, outcome).await
}

/// The writing of one segment.
type SegmentJob<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Failure>> + Send + 'a>>;

/// Runs the probe's body and the parts into `file`; the first failure stops all (the parts
/// in flight are dropped, their requests aborted with them), as does Ctrl-C.
#[allow(clippy::too_many_arguments)]
async fn fill(
    ctx: &Ctx,
    t: &Tracked,
    stream: BodyStream,
    first: bytes::Bytes,
    etag: &str,
    total: u64,
    segments: &[Segment],
    file: &File,
    counter: &Counter<'_>,
) -> Result<(), Failure> {
    let reply = &t.reply;
    let mut template = reply.request().clone();
    template.set_url(reply.url());
    let template = &template;
    let mut jobs: FuturesUnordered<SegmentJob<'_>> = FuturesUnordered::new();
    jobs.push(Box::pin(write_stream(
        reply,
        stream,
        Some(Ok(first)),
        file,
        &segments[0],
        counter,
    )));
    for segment in &segments[1..] {
        jobs.push(Box::pin(part(
            ctx, template, etag, total, segment, file, counter,
        )));
    }
    let all = async {
        while let Some(done) = jobs.next().await {
            done?;
        }
        Ok(())
    };
    let mut stop = ctx.stop.subscribe();
    let interrupted = async move {
        if stop.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        done = all => done,
        () = interrupted => Err(Failure::new("interrupted".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_is_split_into_at_most_n_parts_of_a_minimum_size() {
        // 1000 bytes are less than one minimum part.
        assert_eq!(parts(100, 1100, 4), [(100, 1099)]);
        let mib = 1024 * 1024;
        let split = parts(mib, 32 * mib, 4);
        assert_eq!(split.len(), 4);
        assert_eq!(split[0].0, mib);
        assert_eq!(split[3].1, 32 * mib - 1);
        for pair in split.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0, "contiguous");
        }
        assert_eq!(parts(mib, mib, 4), []);
        assert_eq!(parts(0, 3 * MIN_PART, 16).len(), 3);
        assert_eq!(parts(0, 10, 0), [(0, 9)]);
    }
}
