//! `-x N` with `-o DIR`: one file fetched in N ranged requests at once.
//!
//! The URL's request goes out with `Range: bytes=0-` [`PROBE_LEN`]`-1` ([`probe`]). Its answer
//! decides ([`save`]):
//! - `206` with a `Content-Range` total and a strong `ETag` (not `W/`): the file is
//!   preallocated (a hidden temporary in DIR), the probe's bytes go to its start, and the rest
//!   is split into at most N parts of at least [`MIN_PART`] bytes, each asked for with `Range`
//!   and `If-Range: <ETag>` at the final URL and written into place (positional writes). A part
//!   must come back as the `206` with exactly its `Content-Range` and length, and the same
//!   ETag; anything else (the file changed) fails the download and removes the temporary.
//! - `200` (ranges ignored): that one response is the whole file.
//! - `206` without a strong validator: the file is fetched again in one plain request (parts of
//!   two versions must never be joined).
//!
//! The parts are ordinary requests of the same manager with the URL's priority, so they wait
//! in the per-host queue like any other (on HTTP/2 they are streams of one connection), and
//! the rate limits apply to them. At the end the length is checked, the SHA-256 computed when
//! asked, and the file renamed to its name (from `Content-Disposition` or the URL).

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use netaccess::{BodyStream, NetworkAccessManager, Reply, Request};
use sha2::{Digest, Sha256};

use super::{Outcome, Tracked};
use crate::output::{self, OutputDir, TempFile};

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

/// `Content-Range: bytes START-END/TOTAL` as numbers (TOTAL known).
fn content_range(reply: &Reply) -> Option<(u64, u64, u64)> {
    let value = reply.header("content-range")?;
    let rest = value.to_str().ok()?.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let (start, end, total) = (
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (start <= end && end < total).then_some((start, end, total))
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

/// Reads `stream` into `file` from `offset`; the bytes written.
async fn write_stream(
    reply: &Reply,
    mut stream: BodyStream,
    first: Option<bytes::Bytes>,
    file: &File,
    offset: u64,
    limit: Option<u64>,
) -> Result<u64, String> {
    let mut written = 0u64;
    let mut next = first;
    loop {
        let Some(chunk) = next.take() else {
            match stream.next().await {
                None => break,
                Some(Ok(chunk)) => {
                    next = Some(chunk);
                    continue;
                }
                Some(Err(e)) => return Err(e.message().to_owned()),
            }
        };
        let end = written + chunk.len() as u64;
        if limit.is_some_and(|limit| end > limit) {
            reply.abort();
            return Err(format!(
                "more than the {} bytes asked for",
                limit.unwrap_or(0)
            ));
        }
        // A page-cache write of one chunk: short enough not to need a blocking thread.
        write_at(file, &chunk, offset + written).map_err(|e| format!("cannot write: {e}"))?;
        written = end;
    }
    if let Some(e) = reply.error() {
        return Err(e.message().to_owned());
    }
    Ok(written)
}

/// One part: a ranged request of the final URL, checked and written into place.
async fn part(
    manager: &NetworkAccessManager,
    template: &Request,
    etag: &str,
    (start, end, total): (u64, u64, u64),
    file: &File,
) -> Result<u64, String> {
    let mut request = template.clone();
    request.set_header("Range", &format!("bytes={start}-{end}"));
    request.set_header("If-Range", etag);
    let reply = manager.get(request);
    let mut stream = reply.body_stream();
    let first = match stream.next().await {
        Some(Err(e)) => return Err(format!("bytes {start}-{end}: {}", e.message())),
        Some(Ok(chunk)) => Some(chunk),
        None => None,
    };
    let same_etag = strong_etag(&reply).as_deref() == Some(etag);
    if reply.status_code() != Some(206)
        || content_range(&reply) != Some((start, end, total))
        || !same_etag
    {
        reply.abort();
        return Err(format!(
            "bytes {start}-{end}: the server answered {} {:?} (ETag {:?}): the file changed or \
             the range was not honoured",
            reply.status_code().unwrap_or(0),
            reply.header("content-range"),
            reply.header("etag"),
        ));
    }
    let len = end - start + 1;
    let written = write_stream(&reply, stream, first, file, start, Some(len))
        .await
        .map_err(|e| format!("bytes {start}-{end}: {e}"))?;
    if written != len {
        return Err(format!("bytes {start}-{end}: {written} bytes of {len}"));
    }
    Ok(written)
}

/// The SHA-256 of a file, read back from its start.
fn sha256_of(file: &File) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut file = file.try_clone()?;
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Reads the probe's reply and, when the server allows, the other parts, into a file of DIR.
/// `hash`: compute the SHA-256 (for `--json`).
pub(super) async fn save(
    t: &Tracked,
    index: usize,
    dir: &OutputDir,
    manager: &NetworkAccessManager,
    split: u16,
    hash: bool,
) -> Outcome {
    let mut outcome = Outcome::default();
    let reply = &t.reply;
    let mut stream = reply.body_stream();
    let first = match stream.next().await {
        Some(Ok(chunk)) => Some(chunk),
        Some(Err(_)) => return outcome, // reported from the reply's error
        None => None,
    };
    if reply.error().is_some() {
        return outcome;
    }
    let disposition = reply.header("content-disposition");
    let name = output::choose_name(disposition.as_ref().map(|v| v.as_bytes()), &t.url);
    let name = dir.reserve(&name);
    let mut temp = match dir.temp_file(&name, index) {
        Ok(temp) => temp,
        Err(e) => {
            reply.abort();
            outcome.local_error = Some(format!("cannot create {}: {e}", dir.path(&name).display()));
            return outcome;
        }
    };
    let result = fill(t, &mut temp, stream, first, manager, split).await;
    let total = match result {
        Ok(total) => total,
        Err(e) => {
            outcome.local_error = Some(e);
            return outcome; // the temporary is removed
        }
    };
    outcome.bytes = total;
    let file = temp.file();
    match file.metadata() {
        Ok(meta) if meta.len() == total => {}
        Ok(meta) => {
            outcome.local_error = Some(format!("the file has {} bytes, not {total}", meta.len()));
            return outcome;
        }
        Err(e) => {
            outcome.local_error = Some(format!("cannot check the file: {e}"));
            return outcome;
        }
    }
    if hash {
        match sha256_of(file) {
            Ok(sha) => outcome.sha256 = sha,
            Err(e) => {
                outcome.local_error = Some(format!("cannot read the file back: {e}"));
                return outcome;
            }
        }
    }
    output::set_mtime(file, super::save::last_modified(reply));
    match dir.commit(temp, &name) {
        Ok(path) => outcome.output = Some(path),
        Err(e) => outcome.local_error = Some(format!("cannot save: {e}")),
    }
    outcome
}

/// Fills `temp` with the whole file; its length.
async fn fill(
    t: &Tracked,
    temp: &mut TempFile,
    stream: BodyStream,
    first: Option<bytes::Bytes>,
    manager: &NetworkAccessManager,
    split: u16,
) -> Result<u64, String> {
    let reply = &t.reply;
    let file = Arc::new(temp.file().try_clone().map_err(|e| e.to_string())?);
    let range = content_range(reply);
    let etag = strong_etag(reply);
    let (probe_end, total, etag) = match (reply.status_code(), range, etag) {
        (Some(206), Some((0, end, total)), Some(etag)) => (end, total, etag),
        (Some(206), _, _) => {
            // No strong validator (or an odd range): one plain request for the whole file,
            // after the probe's part is read and dropped.
            let mut stream = stream;
            while let Some(Ok(_)) = stream.next().await {}
            let mut request = reply.request().clone();
            request.set_url(reply.url());
            request.headers_mut().remove("range");
            let whole = manager.get(request);
            let mut stream = whole.body_stream();
            let first = match stream.next().await {
                Some(Err(e)) => return Err(e.message().to_owned()),
                Some(Ok(chunk)) => Some(chunk),
                None => None,
            };
            if whole.status_code() != Some(200) {
                whole.abort();
                let code = whole.status_code().unwrap_or(0);
                return Err(format!("the request without a range was answered {code}"));
            }
            let expected = whole.original_content_length();
            let len = write_stream(&whole, stream, first, &file, 0, None).await?;
            if expected.is_some_and(|e| e != len) {
                return Err(format!("{len} bytes of {}", expected.unwrap_or(0)));
            }
            return Ok(len);
        }
        // Ranges ignored: this response is the whole file.
        _ => {
            let expected = reply.original_content_length();
            let len = write_stream(reply, stream, first, &file, 0, None).await?;
            if expected.is_some_and(|e| e != len) {
                return Err(format!("{len} bytes of {}", expected.unwrap_or(0)));
            }
            return Ok(len);
        }
    };
    file.set_len(total)
        .map_err(|e| format!("cannot allocate {total} bytes: {e}"))?;
    let mut template = reply.request().clone();
    template.set_url(reply.url());
    let probe_len = probe_end + 1;
    let mut jobs = FuturesUnordered::new();
    for (start, end) in parts(probe_len, total, split) {
        let (file, template, etag) = (file.clone(), &template, &etag);
        jobs.push(Box::pin(async move {
            part(manager, template, etag, (start, end, total), &file).await
        })
            as std::pin::Pin<
                Box<dyn std::future::Future<Output = _> + Send + '_>,
            >);
    }
    let probe_file = file.clone();
    jobs.push(Box::pin(async move {
        let n = write_stream(reply, stream, first, &probe_file, 0, Some(probe_len)).await?;
        if n == probe_len {
            Ok(n)
        } else {
            Err(format!("bytes 0-{probe_end}: {n} bytes of {probe_len}"))
        }
    }));
    let all = async {
        let mut sum = 0u64;
        while let Some(done) = jobs.next().await {
            sum += done?;
        }
        Ok(sum)
    };
    // Ctrl-C: the parts in flight are dropped (their requests aborted with them).
    let sum = tokio::select! {
        sum = all => sum,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
    }?;
    if sum != total {
        return Err(format!("{sum} bytes of {total}"));
    }
    Ok(total)
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
