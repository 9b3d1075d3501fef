//! Where bodies go: a file (`NAME.part`, then renamed to `NAME` when complete, its length and
//! checksum right; resumed with `--continue`, see [`super::partial`]), stdout (the first body
//! streamed, later ones spooled to temporary files), or only a digest (`--json`). The body of
//! an HTTP error (status 400 and above) never goes to any of them: it is dropped, or kept as
//! `NAME.error` with `--fail-with-body`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::StreamExt;
use netaccess::{BodyStream, Reply};
use sha2::{Digest, Sha256};

use super::partial::{content_range, sidecar_path, Resume, Sidecar};
use super::{Outcome, Tracked};
use crate::output::{self, OutputDir};

/// Where the error body of a reply goes: with `--fail-with-body`, `NAME.error` in this
/// directory.
#[derive(Clone)]
pub(super) struct ErrorBodies(pub Option<std::sync::Arc<OutputDir>>);

pub(super) type First = Option<Result<Bytes, netaccess::Error>>;

/// True when the reply is an HTTP error (its head says 400 or more).
fn http_error(reply: &Reply) -> bool {
    reply.status_code().is_some_and(|s| s >= 400)
}

/// Reads the rest of an error body: dropped, or written to `NAME.error`.
async fn error_body(
    t: &Tracked,
    first: First,
    stream: &mut BodyStream,
    keep: &ErrorBodies,
    outcome: &mut Outcome,
) {
    let name = t.job.output.clone().unwrap_or_else(|| {
        let disposition = t.reply.header("content-disposition");
        output::choose_name(disposition.as_ref().map(|v| v.as_bytes()), &t.job.url)
    });
    let name = output::sanitize(&name).unwrap_or_else(|| output::FALLBACK_NAME.to_owned());
    let mut file = keep.0.as_ref().and_then(|dir| {
        let path = dir.path(&format!("{name}.error"));
        std::fs::File::create(&path).ok().map(|f| (f, path))
    });
    let mut hasher = Sha256::new();
    let mut next = first;
    while let Some(Ok(chunk)) = next {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        if let Some((f, _)) = &mut file {
            if f.write_all(&chunk).is_err() {
                file = None;
            }
        }
        next = stream.next().await;
    }
    outcome.sha256 = hex::encode(hasher.finalize());
    outcome.error_body = file.map(|(_, path)| path);
}

/// `Last-Modified` of a reply, for the file's mtime.
pub(super) fn last_modified(reply: &Reply) -> Option<SystemTime> {
    let value = reply.header("last-modified")?;
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

/// The sha256 of a file (blocking; run on a blocking thread).
pub(super) fn file_sha256(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// Where the body of a file download goes.
enum Sink {
    /// `NAME.part`: new, restarted, or appended to.
    Part {
        file: std::fs::File,
        part: PathBuf,
        name: String,
        /// Publishing may replace an existing `NAME` (a name the user gave).
        replace: bool,
        /// Bytes already there before this reply.
        base: u64,
        /// The sidecar still to write: once a second chunk shows the body is longer than
        /// one read (a small file never gets one), or when the download stops halfway.
        sidecar: Option<Sidecar>,
    },
    /// An existing file resumed in place (206 to a resume without a sidecar).
    InPlace {
        file: std::fs::File,
        path: PathBuf,
        base: u64,
    },
    /// Nothing is written.
    Discard,
}

/// Opens `NAME.part` (created new, or truncated) and removes a sidecar of older bytes; the
/// new sidecar is returned to be written later (see [`Sink::Part`]).
pub(super) fn open_part(
    dir: &OutputDir,
    name: &str,
    url: &str,
    reply: &Reply,
    create_new: bool,
) -> std::io::Result<(std::fs::File, PathBuf, Sidecar)> {
    let part = dir.part_path(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
        match std::fs::remove_file(sidecar_path(&part)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let file = options.open(&part)?;
    Ok((file, part, Sidecar::from_reply(url, reply)))
}

/// Writes the sidecar of a `.part` if it is still to be written.
fn write_sidecar(sink: &mut Sink) -> std::io::Result<()> {
    if let Sink::Part { part, sidecar, .. } = sink {
        if let Some(pending) = sidecar.take() {
            pending.save(&sidecar_path(part))?;
        }
    }
    Ok(())
}

/// Removes a `.part` and its sidecar.
pub(super) fn remove_part(part: &Path) {
    let _ = std::fs::remove_file(part);
    let _ = std::fs::remove_file(sidecar_path(part));
}

/// Chooses the sink once the response head is known; sets `outcome.restart` when a resume
/// was answered with a range that is not the one asked for.
fn choose_sink(t: &Tracked, dir: &OutputDir, outcome: &mut Outcome) -> std::io::Result<Sink> {
    let reply = &t.reply;
    let url = &t.job.url;
    let status = reply.status_code();
    let explicit = t.job.output.is_some();
    match &t.resume {
        Some(resume) if status == Some(206) => {
            let len = resume.len();
            let range = content_range(reply);
            let expected_total = match resume {
                Resume::Part { sidecar, .. } => sidecar.length,
                Resume::Existing { .. } => None,
            };
            let fits = range.is_some_and(|r| {
                r.range.is_some_and(|(start, _)| start == len)
                    && (expected_total.is_none() || r.total == expected_total)
            });
            if !fits {
                outcome.restart = true;
                outcome.local_error = Some(format!(
                    "the server answered a resume at byte {len} with Content-Range {:?}",
                    reply.header("content-range")
                ));
                return Ok(Sink::Discard);
            }
            match resume {
                Resume::Part { name, .. } => {
                    let part = dir.part_path(name);
                    let file = std::fs::OpenOptions::new().append(true).open(&part)?;
                    Ok(Sink::Part {
                        file,
                        part,
                        name: name.clone(),
                        replace: explicit,
                        base: len,
                        sidecar: None,
                    })
                }
                Resume::Existing { name, .. } => {
                    let path = dir.path(name);
                    let file = std::fs::OpenOptions::new().append(true).open(&path)?;
                    Ok(Sink::InPlace {
                        file,
                        path,
                        base: len,
                    })
                }
            }
        }
        // Any other success to a resume (a 200: the server ignored the range or the
        // validator no longer matches): start again from byte 0, in NAME.part.
        Some(resume) => {
            let (file, part, sidecar) = open_part(dir, resume.name(), url, reply, false)?;
            Ok(Sink::Part {
                file,
                part,
                name: resume.name().to_owned(),
                replace: explicit || matches!(resume, Resume::Existing { .. }),
                base: 0,
                sidecar: Some(sidecar),
            })
        }
        None => {
            let (name, create_new) = match &t.job.output {
                Some(name) => (name.clone(), false),
                None => {
                    let disposition = reply.header("content-disposition");
                    let name = output::choose_name(disposition.as_ref().map(|v| v.as_bytes()), url);
                    let name = dir.reserve(&name);
                    outcome.held = Some(name.clone());
                    (name, true)
                }
            };
            let (file, part, sidecar) = open_part(dir, &name, url, reply, create_new)?;
            Ok(Sink::Part {
                file,
                part,
                name,
                replace: explicit,
                base: 0,
                sidecar: Some(sidecar),
            })
        }
    }
}

/// Reads a reply into a file of `dir`, named when its response head arrives; with `fsync`
/// the file is flushed to the disk before it gets its name.
pub(super) async fn save(
    t: &Tracked,
    dir: &OutputDir,
    errors: &ErrorBodies,
    fsync: bool,
) -> Outcome {
    let mut stream = t.reply.body_stream();
    // The first chunk (or the end): the response head is known by then.
    let first = stream.next().await;
    save_from(t, dir, errors, fsync, stream, first).await
}

/// [`save`] once the first chunk of the body (`first`) was read from `stream` (`-x` reads it
/// to look at the response head before it decides).
pub(super) async fn save_from(
    t: &Tracked,
    dir: &OutputDir,
    errors: &ErrorBodies,
    fsync: bool,
    mut stream: BodyStream,
    first: First,
) -> Outcome {
    let reply = &t.reply;
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    if let (Some(resume), Some(416)) = (&t.resume, reply.status_code()) {
        return resume_satisfied(t, resume, dir, outcome).await;
    }
    let failed_early =
        http_error(reply) || matches!(first, Some(Err(_))) || reply.error().is_some();
    if failed_early {
        if http_error(reply) {
            error_body(t, first, &mut stream, errors, &mut outcome).await;
        }
        // Nothing of this reply was written: a .part being resumed stays as it was.
        if let Some(Resume::Part { name, .. }) = &t.resume {
            outcome.kept = Some(dir.part_path(name));
        }
        return outcome;
    }
    // File-system calls run inline: they reach the page cache, and handing them to another
    // thread (block_in_place) made 1,000 small files 3 to 5 times slower. Only --fsync waits
    // on the disk, and it runs with block_in_place.
    let mut sink = match choose_sink(t, dir, &mut outcome) {
        Ok(sink) => sink,
        Err(e) => {
            outcome.local_error = Some(format!("cannot write in {}: {e}", dir.display()));
            Sink::Discard
        }
    };
    if outcome.local_error.is_some() {
        reply.abort();
        return outcome;
    }
    let mut next = first;
    let mut chunks = 0u64;
    while let Some(Ok(chunk)) = next {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        chunks += 1;
        let sidecar = if chunks == 2 {
            write_sidecar(&mut sink)
        } else {
            Ok(())
        };
        let written = sidecar.and_then(|()| match &mut sink {
            Sink::Part { file, .. } | Sink::InPlace { file, .. } => file.write_all(&chunk),
            Sink::Discard => Ok(()),
        });
        if let Err(e) = written {
            outcome.local_error = Some(format!("cannot write: {e}"));
            reply.abort();
            break;
        }
        next = stream.next().await;
    }
    outcome.sha256 = hex::encode(hasher.finalize());
    finish_file(t, dir, sink, outcome, fsync).await
}

/// After the body: publish a complete file, keep a partial one.
async fn finish_file(
    t: &Tracked,
    dir: &OutputDir,
    mut sink: Sink,
    mut outcome: Outcome,
    fsync: bool,
) -> Outcome {
    let reply = &t.reply;
    if reply.error().is_some() || outcome.local_error.is_some() {
        // Interrupted: a .part with bytes in it is kept for --continue (its sidecar written
        // now if it was not yet), an empty one is not.
        if let Sink::Part { part, base, .. } = &sink {
            let part = part.clone();
            if base + outcome.bytes > 0 {
                if let Err(e) = write_sidecar(&mut sink) {
                    outcome.local_error.get_or_insert(format!(
                        "cannot write the sidecar of {}: {e}",
                        part.display()
                    ));
                }
                outcome.kept = Some(part);
            } else {
                remove_part(&part);
            }
        }
        return outcome;
    }
    let (path, base) = match &sink {
        Sink::Part { part, base, .. } => (part.clone(), *base),
        Sink::InPlace { path, base, .. } => (path.clone(), *base),
        Sink::Discard => return outcome,
    };
    let size = base + outcome.bytes;
    let expected = match reply.status_code() {
        Some(206) => content_range(reply).and_then(|r| r.total),
        _ => reply
            .header("content-length")
            .and_then(|v| v.to_str().ok()?.trim().parse().ok()),
    };
    if let Some(expected) = expected.filter(|&e| e != size) {
        outcome.local_error = Some(format!("{size} bytes where {expected} were announced"));
        let _ = write_sidecar(&mut sink);
        outcome.kept = Some(path);
        return outcome;
    }
    let mtime = last_modified(reply);
    let synced = match &sink {
        Sink::Part { file, .. } | Sink::InPlace { file, .. } => {
            output::set_mtime(file, mtime);
            if fsync {
                tokio::task::block_in_place(|| file.sync_all())
            } else {
                Ok(())
            }
        }
        Sink::Discard => Ok(()),
    };
    if let Err(e) = synced {
        outcome.local_error = Some(format!("cannot write {}: {e}", path.display()));
        return outcome;
    }
    sink_file(sink, &mut outcome, t, dir).await;
    outcome
}

/// Checks the checksum and publishes; returns nothing (the outcome says what happened).
async fn sink_file(sink: Sink, outcome: &mut Outcome, t: &Tracked, dir: &OutputDir) {
    // `on_disk`: a sidecar was written (or was there): it goes when the file is published.
    let (path, publish, on_disk) = match sink {
        Sink::Part {
            part,
            name,
            replace,
            file,
            sidecar,
            ..
        } => {
            drop(file);
            (part, Some((name, replace)), sidecar.is_none())
        }
        Sink::InPlace { path, file, .. } => {
            drop(file);
            (path, None, false)
        }
        Sink::Discard => return,
    };
    if let Some(expected) = t.job.sha256 {
        let checked = path.clone();
        let actual = tokio::task::spawn_blocking(move || file_sha256(&checked)).await;
        match actual {
            Ok(Ok(actual)) if actual == expected => {}
            Ok(Ok(actual)) => {
                outcome.local_error = Some(format!(
                    "sha256 mismatch: expected {}, got {}; nothing was saved",
                    hex::encode(expected),
                    hex::encode(actual)
                ));
                match publish {
                    Some(_) => remove_part(&path),
                    None => outcome.output = None,
                }
                return;
            }
            Ok(Err(e)) => {
                outcome.local_error = Some(format!("cannot read {}: {e}", path.display()));
                return;
            }
            Err(e) => {
                outcome.local_error = Some(format!("checking the checksum failed: {e}"));
                return;
            }
        }
    }
    match publish {
        None => outcome.output = Some(path),
        Some((name, replace)) => match dir.publish(&path, &name, replace) {
            Ok(done) => {
                if on_disk {
                    let _ = std::fs::remove_file(sidecar_path(&path));
                }
                outcome.output = Some(done);
            }
            Err(e) => outcome.local_error = Some(format!("cannot save {name}: {e}")),
        },
    }
}

/// A 416 to a resume: complete when the server's length is the length we have (the `.part`
/// is then published), else the download starts again.
async fn resume_satisfied(
    t: &Tracked,
    resume: &Resume,
    dir: &OutputDir,
    mut outcome: Outcome,
) -> Outcome {
    let total = content_range(&t.reply).and_then(|r| r.total);
    let complete = match (resume, total) {
        (_, Some(total)) => total == resume.len(),
        // No length given: only a file without a sidecar is taken as complete (as before).
        (Resume::Existing { .. }, None) => true,
        (Resume::Part { .. }, None) => false,
    };
    if !complete {
        outcome.restart = true;
        outcome.local_error = Some(format!(
            "the server refused a resume at byte {} (416, length {total:?})",
            resume.len()
        ));
        return outcome;
    }
    outcome.resumed_complete = true;
    let sink = match resume {
        Resume::Part { name, .. } => {
            let part = dir.part_path(name);
            match std::fs::OpenOptions::new().append(true).open(&part) {
                Ok(file) => Sink::Part {
                    file,
                    part,
                    name: name.clone(),
                    replace: t.job.output.is_some(),
                    base: resume.len(),
                    sidecar: None,
                },
                Err(e) => {
                    outcome.local_error = Some(format!("cannot open {}: {e}", part.display()));
                    return outcome;
                }
            }
        }
        Resume::Existing { name, .. } => {
            outcome.output = Some(dir.path(name));
            if t.job.sha256.is_none() {
                return outcome;
            }
            match std::fs::File::open(dir.path(name)) {
                Ok(file) => Sink::InPlace {
                    file,
                    path: dir.path(name),
                    base: resume.len(),
                },
                Err(e) => {
                    outcome.local_error = Some(format!("cannot open {name}: {e}"));
                    return outcome;
                }
            }
        }
    };
    sink_file(sink, &mut outcome, t, dir).await;
    outcome
}

/// A body read ahead into an anonymous temporary file, waiting for its turn on stdout.
pub(super) struct Spooled {
    file: Option<std::fs::File>,
    outcome: Outcome,
}

impl Spooled {
    /// Copies the spooled body to stdout; a failure to write aborts nothing (the reply is
    /// over) but is reported.
    pub(super) fn copy_to(mut self, reply: &Reply, stdout: &mut dyn Write) -> Outcome {
        use std::io::{Seek, SeekFrom};
        if let Some(mut file) = self.file.take() {
            let copied = file
                .seek(SeekFrom::Start(0))
                .and_then(|_| std::io::copy(&mut file, stdout));
            if let Err(e) = copied {
                reply.abort();
                self.outcome.local_error = Some(format!("cannot write to stdout: {e}"));
            }
        }
        let _ = stdout.flush();
        self.outcome
    }
}

/// Compares a digest with the expected one; an error message when they differ.
fn mismatch(expected: Option<[u8; 32]>, actual: &[u8]) -> Option<String> {
    let expected = expected?;
    (expected[..] != *actual).then(|| {
        format!(
            "sha256 mismatch: expected {}, got {}; nothing was written",
            hex::encode(expected),
            hex::encode(actual)
        )
    })
}

/// Reads a body into a temporary file (deleted when closed), hashing it. A body whose
/// checksum does not match is not kept.
pub(super) async fn spool(t: std::sync::Arc<Tracked>, errors: &ErrorBodies) -> Spooled {
    let reply = &t.reply;
    let mut outcome = Outcome::default();
    let mut stream = reply.body_stream();
    let first = stream.next().await;
    if http_error(reply) {
        error_body(&t, first, &mut stream, errors, &mut outcome).await;
        return Spooled {
            file: None,
            outcome,
        };
    }
    let mut file = match tempfile::tempfile() {
        Ok(file) => file,
        Err(e) => {
            reply.abort();
            outcome.local_error = Some(format!("cannot create a temporary file: {e}"));
            return Spooled {
                file: None,
                outcome,
            };
        }
    };
    let mut hasher = Sha256::new();
    let mut next = first;
    while let Some(Ok(chunk)) = next {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        // A page-cache write of one chunk: short enough not to need a blocking thread.
        if let Err(e) = file.write_all(&chunk) {
            reply.abort();
            outcome.local_error = Some(format!("cannot write a temporary file: {e}"));
            break;
        }
        next = stream.next().await;
    }
    let digest = hasher.finalize();
    outcome.sha256 = hex::encode(digest);
    let complete = reply.error().is_none() && outcome.local_error.is_none();
    if complete {
        outcome.local_error = mismatch(t.job.sha256, &digest);
    }
    let keep = complete && outcome.local_error.is_none();
    Spooled {
        file: keep.then_some(file),
        outcome,
    }
}

/// Reads a body into stdout, hashing it (only for URLs without a checksum: those are
/// spooled, so a body is checked before any byte of it is written).
pub(super) async fn to_stdout(
    t: &Tracked,
    stdout: &mut (dyn Write + Send),
    errors: &ErrorBodies,
) -> Outcome {
    let reply = &t.reply;
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    let first = stream.next().await;
    if http_error(reply) {
        error_body(t, first, &mut stream, errors, &mut outcome).await;
        return outcome;
    }
    let mut next = first;
    while let Some(Ok(chunk)) = next {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        if let Err(e) = stdout.write_all(&chunk) {
            reply.abort();
            outcome.local_error = Some(format!("cannot write to stdout: {e}"));
            break;
        }
        next = stream.next().await;
    }
    let _ = stdout.flush();
    outcome.sha256 = hex::encode(hasher.finalize());
    outcome
}

/// Reads a body without keeping it, hashing it (and checking it against `--checksum`).
pub(super) async fn digest_only(t: &Tracked, errors: &ErrorBodies) -> Outcome {
    let reply = &t.reply;
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    let first = stream.next().await;
    if http_error(reply) {
        error_body(t, first, &mut stream, errors, &mut outcome).await;
        return outcome;
    }
    let mut next = first;
    while let Some(Ok(chunk)) = next {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        next = stream.next().await;
    }
    let digest = hasher.finalize();
    outcome.sha256 = hex::encode(digest);
    if reply.error().is_none() {
        outcome.local_error = mismatch(t.job.sha256, &digest);
    }
    outcome
}
