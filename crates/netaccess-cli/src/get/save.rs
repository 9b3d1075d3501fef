//! Where bodies go: a file of the output directory (named when the head arrives, written to a
//! temporary and renamed, resumed with `--continue`), stdout (the first body streamed, later
//! ones spooled to temporary files), or only a digest (`--json`).

use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use futures_util::stream::StreamExt;
use netaccess::Reply;
use sha2::{Digest, Sha256};

use super::{Outcome, Tracked};
use crate::output::{self, OutputDir, TempFile};

/// `--continue`: the file named after the URL path in DIR, if it exists as a file.
pub(super) fn resume_target(dir: &OutputDir, url: &str) -> Option<(String, u64)> {
    let name = output::choose_name(None, url);
    let meta = std::fs::metadata(dir.path(&name)).ok()?;
    if !meta.is_file() || !dir.reserve_exact(&name) {
        return None;
    }
    Some((name, meta.len()))
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

/// Reads a body into a temporary file (deleted when closed), hashing it.
pub(super) async fn spool(reply: Reply) -> Spooled {
    let mut outcome = Outcome::default();
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
    let mut stream = reply.body_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        // A page-cache write of one chunk: short enough not to need a blocking thread.
        if let Err(e) = file.write_all(&chunk) {
            reply.abort();
            outcome.local_error = Some(format!("cannot write a temporary file: {e}"));
            break;
        }
    }
    outcome.sha256 = hex::encode(hasher.finalize());
    Spooled {
        file: Some(file),
        outcome,
    }
}

/// Reads a body into stdout, hashing it.
pub(super) async fn to_stdout(reply: &Reply, stdout: &mut dyn Write) -> Outcome {
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        if let Err(e) = stdout.write_all(&chunk) {
            reply.abort();
            outcome.local_error = Some(format!("cannot write to stdout: {e}"));
            break;
        }
    }
    let _ = stdout.flush();
    outcome.sha256 = hex::encode(hasher.finalize());
    outcome
}

/// Reads a body without keeping it, hashing it.
pub(super) async fn digest_only(reply: &Reply) -> Outcome {
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
    }
    outcome.sha256 = hex::encode(hasher.finalize());
    outcome
}

/// `Last-Modified` of a reply, for the file's mtime.
pub(super) fn last_modified(reply: &Reply) -> Option<SystemTime> {
    let value = reply.header("last-modified")?;
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

/// The start of `Content-Range: bytes START-END/TOTAL`.
pub(super) fn content_range_start(reply: &Reply) -> Option<u64> {
    let value = reply.header("content-range")?;
    let rest = value.to_str().ok()?.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

/// Where the body of a reply goes.
pub(super) enum Sink {
    /// A new file, committed under a fresh name.
    New(TempFile, String),
    /// A resume answered with 200: the existing file is replaced.
    Replace(TempFile, PathBuf),
    /// A resume answered with 206: appended.
    Append(std::fs::File, PathBuf),
    /// Nothing is saved (a failed reply, a 416).
    Discard,
}

/// Reads a reply into a file of DIR, named when its response head arrives.
pub(super) async fn save(t: &Tracked, index: usize, dir: &OutputDir) -> Outcome {
    let reply = &t.reply;
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    // The first chunk (or the end): the response head is known by then.
    let first = stream.next().await;
    let failed_early = matches!(first, Some(Err(_))) || reply.error().is_some();
    let status = reply.status_code();
    let mut sink = if failed_early && !(t.resume.is_some() && status == Some(416)) {
        Sink::Discard
    } else if let Some((name, len)) = &t.resume {
        let path = dir.path(name);
        match status {
            Some(416) => {
                outcome.resumed_complete = true;
                outcome.output = Some(path);
                Sink::Discard
            }
            Some(206) if content_range_start(reply) == Some(*len) => {
                match std::fs::OpenOptions::new().append(true).open(&path) {
                    Ok(file) => Sink::Append(file, path),
                    Err(e) => {
                        outcome.local_error = Some(format!("cannot open {}: {e}", path.display()));
                        Sink::Discard
                    }
                }
            }
            Some(206) => {
                outcome.local_error = Some(format!(
                    "unexpected Content-Range {:?} for a resume at byte {len}",
                    reply.header("content-range")
                ));
                Sink::Discard
            }
            _ => match dir.temp_file(name, index) {
                Ok(temp) => Sink::Replace(temp, path),
                Err(e) => {
                    outcome.local_error = Some(format!("cannot create a file in DIR: {e}"));
                    Sink::Discard
                }
            },
        }
    } else {
        let disposition = reply.header("content-disposition");
        let name = output::choose_name(disposition.as_ref().map(|v| v.as_bytes()), &t.url);
        let name = dir.reserve(&name);
        match dir.temp_file(&name, index) {
            Ok(temp) => Sink::New(temp, name),
            Err(e) => {
                outcome.local_error =
                    Some(format!("cannot create {}: {e}", dir.path(&name).display()));
                Sink::Discard
            }
        }
    };
    if outcome.local_error.is_some() {
        reply.abort();
    }
    let mut next = first;
    while let Some(Ok(chunk)) = next {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        let written = match &mut sink {
            Sink::New(temp, _) | Sink::Replace(temp, _) => temp.write_all(&chunk),
            Sink::Append(file, _) => file.write_all(&chunk),
            Sink::Discard => Ok(()),
        };
        if let Err(e) = written {
            outcome.local_error = Some(format!("cannot write: {e}"));
            reply.abort();
            sink = Sink::Discard;
        }
        next = stream.next().await;
    }
    outcome.sha256 = hex::encode(hasher.finalize());
    // A failed transfer (or HTTP error) drops the temporary file.
    if reply.error().is_some() || outcome.local_error.is_some() {
        return outcome;
    }
    let mtime = last_modified(reply);
    let done = match sink {
        Sink::New(mut temp, name) => {
            output::set_mtime(temp.file(), mtime);
            dir.commit(temp, &name)
        }
        Sink::Replace(mut temp, path) => {
            output::set_mtime(temp.file(), mtime);
            dir.replace(temp, &path)
        }
        Sink::Append(file, path) => file
            .sync_all()
            .map(|()| output::set_mtime(&file, mtime))
            .map(|()| path),
        Sink::Discard => return outcome,
    };
    match done {
        Ok(path) => outcome.output = Some(path),
        Err(e) => outcome.local_error = Some(format!("cannot save: {e}")),
    }
    outcome
}
