//! The state that makes a download resumable: `NAME.part` (the bytes so far) and its sidecar
//! `NAME.part.json` (the URL, the response's `ETag` and `Last-Modified`, the full length), and
//! how `--continue` finds them and what it sends.
//!
//! The sidecar is written (atomically: a temporary file renamed over it) once a second chunk
//! of the body arrives, or when a download stops halfway; a body that comes in one read never
//! gets one. So a crash leaves a `.part` whose length is the number of bytes written and a
//! sidecar that describes them, unless it comes within the first chunk (those bytes are then
//! downloaded again: a `.part` without a sidecar is never resumed nor overwritten). A
//! resume sends `Range: bytes=LEN-` and `If-Range` with the stored strong validator: the
//! `ETag` unless it is weak (`W/`), else the stored `Last-Modified` (the server's date, never
//! the file's mtime). A sidecar with neither restarts the download from the start.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use netaccess::Reply;
use serde_json::{json, Value};

use crate::output::{self, OutputDir, PART_SUFFIX};

const FORMAT: &str = "netaccess-partial-download";
/// A sidecar larger than this is not ours (it is ignored).
const MAX_SIDECAR: u64 = 64 * 1024;

/// What a sidecar holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Sidecar {
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The full length of the resource, when the server said it.
    pub length: Option<u64>,
}

/// The sidecar path of a `.part` file.
pub(super) fn sidecar_path(part: &Path) -> PathBuf {
    let mut name = part.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

impl Sidecar {
    /// The sidecar for `url` from a response head: its validators and the full length
    /// (`Content-Range`'s total for a 206, else `Content-Length`). Files are requested with
    /// an `Accept-Encoding` of the CLI's (identity, or the user's), so the library never
    /// decodes them: the bytes on disk are the ones a `Range` counts.
    pub(super) fn from_reply(url: &str, reply: &Reply) -> Sidecar {
        let header = |name: &str| {
            reply
                .header(name)
                .and_then(|v| v.to_str().ok().map(str::to_owned))
        };
        let length = match reply.status_code() {
            Some(206) => content_range(reply).and_then(|r| r.total),
            _ => header("content-length").and_then(|v| v.trim().parse().ok()),
        };
        Sidecar {
            url: url.to_owned(),
            etag: header("etag"),
            last_modified: header("last-modified"),
            length,
        }
    }

    /// The validator for `If-Range`: a strong `ETag`, else `Last-Modified`.
    pub(super) fn if_range(&self) -> Option<&str> {
        self.etag
            .as_deref()
            .filter(|e| !e.starts_with("W/"))
            .or(self.last_modified.as_deref())
    }

    /// Reads a sidecar; `None` when missing, too large or not one of ours.
    pub(super) fn load(path: &Path) -> Option<Sidecar> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() || meta.len() > MAX_SIDECAR {
            return None;
        }
        let value: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        if value["format"] != FORMAT {
            return None;
        }
        let text = |key: &str| value[key].as_str().map(str::to_owned);
        Some(Sidecar {
            url: text("url")?,
            etag: text("etag"),
            last_modified: text("last_modified"),
            length: value["length"].as_u64(),
        })
    }

    /// Writes the sidecar atomically (a temporary file renamed over it).
    pub(super) fn save(&self, path: &Path) -> io::Result<()> {
        let value = json!({
            "format": FORMAT,
            "url": self.url,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "length": self.length,
        });
        let mut temp = path.as_os_str().to_owned();
        temp.push(format!(".{}.tmp", std::process::id()));
        let temp = PathBuf::from(temp);
        std::fs::write(&temp, value.to_string())?;
        std::fs::rename(&temp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    }
}

/// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ContentRange {
    /// `(start, end)`, inclusive; `None` for `*`.
    pub range: Option<(u64, u64)>,
    /// `None` for `*`.
    pub total: Option<u64>,
}

pub(super) fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(digits(t)?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (start, end) = r.split_once('-')?;
            let (start, end) = (digits(start)?, digits(end)?);
            if end < start || total.is_some_and(|t| end >= t) {
                return None;
            }
            Some((start, end))
        }
    };
    Some(ContentRange { range, total })
}

/// `1*DIGIT` (white space around it allowed) as a `u64`: no sign, unlike `str::parse`.
fn digits(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

pub(super) fn content_range(reply: &Reply) -> Option<ContentRange> {
    parse_content_range(reply.header("content-range")?.to_str().ok()?)
}

/// What `--continue` found for a URL.
#[derive(Debug, Clone)]
pub(super) enum Resume {
    /// `NAME.part` with its sidecar: `len` bytes so far.
    Part {
        name: String,
        len: u64,
        sidecar: Sidecar,
    },
    /// A complete-looking `NAME` without a sidecar (a finished download, or another tool's
    /// file): resumed in place, with its mtime as the `If-Range` date.
    Existing { name: String, len: u64 },
}

impl Resume {
    pub(super) fn name(&self) -> &str {
        match self {
            Resume::Part { name, .. } | Resume::Existing { name, .. } => name,
        }
    }

    pub(super) fn len(&self) -> u64 {
        match self {
            Resume::Part { len, .. } | Resume::Existing { len, .. } => *len,
        }
    }

    /// The `Range` and `If-Range` values to send; `None` means start again from byte 0 (a
    /// `.part` without a validator, or an empty one).
    pub(super) fn request_headers(&self, dir: &OutputDir) -> Option<(String, String)> {
        let validator = match self {
            Resume::Part { sidecar, len, .. } if *len > 0 => sidecar.if_range()?.to_owned(),
            Resume::Part { .. } => return None,
            Resume::Existing { name, .. } => {
                let mtime = std::fs::metadata(dir.path(name))
                    .and_then(|m| m.modified())
                    .ok()?;
                httpdate::fmt_http_date(mtime)
            }
        };
        Some((format!("bytes={}-", self.len()), validator))
    }
}

/// The `.part` files of DIR by URL (read once, for `--continue`): their sidecars say which
/// URL each belongs to, whatever name (Content-Disposition's, say) it was given.
#[derive(Default)]
pub(super) struct PartIndex {
    by_url: HashMap<String, String>,
}

impl PartIndex {
    pub(super) fn scan(dir: &Path) -> PartIndex {
        let mut by_url = HashMap::new();
        let suffix = format!("{PART_SUFFIX}.json");
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let file_name = entry.file_name();
                let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(&suffix)) else {
                    continue;
                };
                if let Some(sidecar) = Sidecar::load(&entry.path()) {
                    by_url.entry(sidecar.url).or_insert_with(|| name.to_owned());
                }
            }
        }
        PartIndex { by_url }
    }

    /// What to resume for `url`: the `.part` of `explicit` (`-O`) or of the URL's name, else
    /// any `.part` whose sidecar names `url`, else an existing file of that name.
    pub(super) fn find(
        &self,
        dir: &OutputDir,
        url: &str,
        explicit: Option<&str>,
    ) -> Option<Resume> {
        let name = match explicit {
            Some(n) => n.to_owned(),
            None => output::choose_name(None, url),
        };
        let mut candidates = vec![name.clone()];
        if explicit.is_none() {
            candidates.extend(self.by_url.get(url).cloned());
        }
        for candidate in candidates {
            let part = dir.part_path(&candidate);
            let Some(sidecar) = Sidecar::load(&sidecar_path(&part)) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&part) else {
                continue;
            };
            if sidecar.url == url && meta.is_file() && dir.reserve_exact(&candidate) {
                return Some(Resume::Part {
                    name: candidate,
                    len: meta.len(),
                    sidecar,
                });
            }
        }
        let meta = std::fs::metadata(dir.path(&name)).ok()?;
        (meta.is_file() && dir.reserve_exact(&name)).then_some(Resume::Existing {
            name,
            len: meta.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some(ContentRange {
                range: Some((10, 99)),
                total: Some(100)
            })
        );
        assert_eq!(
            parse_content_range("bytes */100"),
            Some(ContentRange {
                range: None,
                total: Some(100)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-9/*").map(|r| r.total),
            Some(None)
        );
        assert_eq!(parse_content_range("bytes 10-9/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn content_range_numbers_have_no_sign() {
        // Found writing the resume_headers fuzz target (it compares this parser with the library's).
        assert_eq!(parse_content_range("bytes +0-9/10"), None);
        assert_eq!(parse_content_range("bytes 0-9/+10"), None);
        assert_eq!(parse_content_range("bytes */+10"), None);
    }

    #[test]
    fn the_validator_is_a_strong_etag_else_last_modified() {
        let mut s = Sidecar {
            etag: Some("\"v1\"".into()),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            ..Sidecar::default()
        };
        assert_eq!(s.if_range(), Some("\"v1\""));
        s.etag = Some("W/\"v1\"".into());
        assert_eq!(s.if_range(), Some("Wed, 21 Oct 2015 07:28:00 GMT"));
        s.last_modified = None;
        assert_eq!(s.if_range(), None);
    }

    #[test]
    fn sidecars_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = sidecar_path(&dir.path().join("a.bin.part"));
        assert!(path.ends_with("a.bin.part.json"));
        let s = Sidecar {
            url: "http://h/a.bin".into(),
            etag: Some("\"x\"".into()),
            last_modified: None,
            length: Some(5),
        };
        s.save(&path).unwrap();
        assert_eq!(Sidecar::load(&path), Some(s));
        std::fs::write(&path, b"{\"format\":\"other\",\"url\":\"u\"}").unwrap();
        assert_eq!(Sidecar::load(&path), None);
    }
}
