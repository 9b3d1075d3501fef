//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by default):
//! thin wrappers with public types over the binary's parsers, compiled in by `lib.rs`. Not an
//! API; nothing here is stable.

use std::ffi::OsString;
use std::io::BufRead;
use std::path::Path;

use netaccess::{Cookie, Priority};

use super::{cookies_txt, jobs, netrc, partial, writeout, GetArgs};

/// The longest `-i` list line, in bytes.
pub const MAX_LIST_LINE: usize = jobs::MAX_LINE;

/// A job of an `-i` list line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListJob {
    /// The URL, as written.
    pub url: String,
    /// `high`, `normal` or `low`.
    pub priority: &'static str,
    /// `out=NAME`.
    pub output: Option<String>,
    /// `checksum=sha256=HEX`.
    pub sha256: Option<[u8; 32]>,
}

/// One list line (`jobs.rs` `parse_line`): `Ok(None)` for a comment or an empty line.
pub fn list_line(line: &str) -> Result<Option<ListJob>, String> {
    Ok(jobs::parse_line(line, 0)?.map(|job| ListJob {
        url: job.url,
        priority: match job.priority {
            Priority::High => "high",
            Priority::Low => "low",
            _ => "normal",
        },
        output: job.output,
        sha256: job.sha256,
    }))
}

/// The lines of a list as the reader splits them (`jobs.rs` `read_bounded_line`): each line
/// without its end, or the length of a line over [`MAX_LIST_LINE`].
pub fn list_lines(reader: &mut dyn BufRead) -> std::io::Result<Vec<Result<Vec<u8>, usize>>> {
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    while let Some(line) = jobs::read_bounded_line(reader, &mut buf)? {
        lines.push(line.map(|()| buf.clone()));
    }
    Ok(lines)
}

/// A parsed `.netrc` (`netrc.rs`).
#[derive(Debug)]
pub struct Netrc(netrc::Netrc);

impl Netrc {
    /// Parses the text of a `.netrc`.
    pub fn parse(text: &str) -> Netrc {
        Netrc(netrc::Netrc::parse(text))
    }

    /// The `machine` entries in order: host (lowercased), login, password.
    pub fn machines(&self) -> &[(String, String, String)] {
        &self.0.machines
    }

    /// The first `default` entry: login, password.
    pub fn default_entry(&self) -> Option<&(String, String)> {
        self.0.default.as_ref()
    }

    /// The credentials the CLI would use for `host`.
    pub fn lookup(&self, host: &str) -> Option<(&str, &str)> {
        self.0.lookup(host)
    }
}

/// One cookies.txt line (`cookies_txt.rs`); `None` for a comment or a malformed line.
pub fn cookies_txt_line(line: &str) -> Option<Cookie> {
    cookies_txt::parse_line(line)
}

/// The cookies.txt line written for a cookie.
pub fn cookies_txt_format(cookie: &Cookie) -> String {
    cookies_txt::format_line(cookie)
}

/// Loads a cookies.txt file: its cookies and how many lines were skipped.
pub fn cookies_txt_load(path: &Path) -> Result<(Vec<Cookie>, usize), String> {
    cookies_txt::load(path)
}

/// Saves cookies as `--save-cookies` does.
pub fn cookies_txt_save(path: &Path, cookies: &[Cookie]) -> std::io::Result<()> {
    cookies_txt::save(path, cookies)
}

/// What a `.part` sidecar holds (`partial.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sidecar {
    /// The URL downloaded.
    pub url: String,
    /// The response's `ETag`.
    pub etag: Option<String>,
    /// The response's `Last-Modified`.
    pub last_modified: Option<String>,
    /// The full length.
    pub length: Option<u64>,
}

impl Sidecar {
    fn inner(&self) -> partial::Sidecar {
        partial::Sidecar {
            url: self.url.clone(),
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
            length: self.length,
        }
    }

    /// Reads a sidecar file; `None` when missing, too large or not one of ours.
    pub fn load(path: &Path) -> Option<Sidecar> {
        partial::Sidecar::load(path).map(|s| Sidecar {
            url: s.url,
            etag: s.etag,
            last_modified: s.last_modified,
            length: s.length,
        })
    }

    /// Writes it as a download does.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        self.inner().save(path)
    }

    /// The `If-Range` validator a resume sends.
    pub fn if_range(&self) -> Option<String> {
        self.inner().if_range().map(str::to_owned)
    }
}

/// `(start, end)` of a `Content-Range`, inclusive; `None` for `*`.
pub type ByteRange = Option<(u64, u64)>;

/// The CLI's `Content-Range` parser (`partial.rs`): `(range, total)`, `None` for `*`.
pub fn content_range(value: &str) -> Option<(ByteRange, Option<u64>)> {
    partial::parse_content_range(value).map(|r| (r.range, r.total))
}

/// A `-w` template rendered with `value` for its variables (`writeout.rs` `render_with`).
pub fn render_template(template: &str, value: impl FnMut(&str) -> Option<String>) -> String {
    writeout::render_with(template, value)
}

/// The `get` command's flags: (long name, takes a value).
pub fn get_flags() -> Vec<(String, bool)> {
    get_command()
        .get_arguments()
        .filter_map(|a| Some((a.get_long()?.to_owned(), a.get_action().takes_values())))
        .collect()
}

/// The arguments a config file stands for (`config.rs` `arguments`).
pub fn config_arguments(file: &Path) -> Result<Vec<OsString>, String> {
    crate::config::arguments(&get_command(), file)
}

fn get_command() -> clap::Command {
    <GetArgs as clap::Args>::augment_args(clap::Command::new("get"))
}
