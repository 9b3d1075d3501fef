//! Netscape `cookies.txt` (`--load-cookies`, `--save-cookies`), the format of curl's `-b`/`-c`,
//! wget and browser exporters: one cookie per line, seven tab-separated fields — domain,
//! include-subdomains (`TRUE`/`FALSE`), path, secure (`TRUE`/`FALSE`), expiry (Unix seconds,
//! `0` for a session cookie), name, value. A `#HttpOnly_` prefix on the domain marks an
//! HttpOnly cookie; other `#` lines and empty lines are comments. A line that does not fit is
//! skipped (and counted), as curl does.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netaccess::Cookie;

/// A cookies.txt larger than this is refused.
const MAX_FILE: u64 = 16 * 1024 * 1024;
const HTTP_ONLY: &str = "#HttpOnly_";

/// Parses one line; `None` for a comment, an empty or a malformed line.
pub(super) fn parse_line(line: &str) -> Option<Cookie> {
    let (line, http_only) = match line.strip_prefix(HTTP_ONLY) {
        Some(rest) => (rest, true),
        None if line.starts_with('#') => return None,
        None => (line, false),
    };
    let fields: Vec<&str> = line.trim_end_matches(['\r', '\n']).split('\t').collect();
    let [domain, subdomains, path, secure, expires, name, value] = fields[..] else {
        return None;
    };
    let domain = domain.trim_start_matches('.');
    // A domain starting with `#` would be written back as a comment line.
    if domain.is_empty() || domain.starts_with('#') || name.is_empty() {
        return None;
    }
    let flag = |v: &str| v.eq_ignore_ascii_case("TRUE");
    let expires: i64 = expires.trim().parse().ok()?;
    Some(Cookie {
        name: name.to_owned(),
        value: value.to_owned(),
        domain: if flag(subdomains) {
            format!(".{domain}")
        } else {
            domain.to_owned()
        },
        path: if path.is_empty() { "/" } else { path }.to_owned(),
        expires: (expires > 0).then(|| UNIX_EPOCH + Duration::from_secs(expires.unsigned_abs())),
        secure: flag(secure),
        http_only,
        ..Cookie::default()
    })
}

/// The cookies of a file (expired ones included: the jar drops them) and how many lines were
/// skipped.
pub(super) fn load(path: &Path) -> Result<(Vec<Cookie>, usize), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.len() > MAX_FILE {
        return Err(format!("{shown} is larger than {MAX_FILE} bytes"));
    }
    let text = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    let mut cookies = Vec::new();
    let mut skipped = 0;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || (trimmed.starts_with('#') && !trimmed.starts_with(HTTP_ONLY)) {
            continue;
        }
        match parse_line(line) {
            Some(cookie) => cookies.push(cookie),
            None => skipped += 1,
        }
    }
    Ok((cookies, skipped))
}

/// One line of a cookie (no newline).
pub(super) fn format_line(cookie: &Cookie) -> String {
    let bool_text = |b: bool| if b { "TRUE" } else { "FALSE" };
    let subdomains = cookie.domain.starts_with('.');
    let expires = cookie
        .expires
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs().max(1));
    format!(
        "{}{}\t{}\t{}\t{}\t{}\t{}\t{}",
        if cookie.http_only { HTTP_ONLY } else { "" },
        cookie.domain,
        bool_text(subdomains),
        if cookie.path.is_empty() {
            "/"
        } else {
            &cookie.path
        },
        bool_text(cookie.secure),
        expires,
        cookie.name,
        cookie.value
    )
}

/// Writes every cookie that has not expired (session cookies too, with expiry 0) to `path`,
/// owner-only, through a temporary file renamed over it.
pub(super) fn save(path: &Path, cookies: &[Cookie]) -> std::io::Result<()> {
    let mut text = String::from("# Netscape HTTP Cookie File\n# Written by netaccess.\n\n");
    let now = SystemTime::now();
    for cookie in cookies {
        if cookie.expires.is_some_and(|t| t <= now)
            || cookie.domain.is_empty()
            || cookie.name.contains(['\t', '\n', '\r'])
            || cookie.value.contains(['\t', '\n', '\r'])
        {
            continue;
        }
        text.push_str(&format_line(cookie));
        text.push('\n');
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".{}.tmp", std::process::id()));
    let temp = std::path::PathBuf::from(temp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let line = "#HttpOnly_.example.org\tTRUE\t/app\tTRUE\t2000000000\tsid\tabc=1";
        let cookie = parse_line(line).unwrap();
        assert_eq!(cookie.domain, ".example.org");
        assert!(cookie.http_only && cookie.secure);
        assert_eq!(cookie.path, "/app");
        assert_eq!(
            cookie.expires,
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(cookie.value, "abc=1");
        assert_eq!(format_line(&cookie), line);
        let host_only = parse_line("h.test\tFALSE\t/\tFALSE\t0\ta\t1").unwrap();
        assert_eq!(host_only.domain, "h.test");
        assert_eq!(host_only.expires, None);
        assert_eq!(format_line(&host_only), "h.test\tFALSE\t/\tFALSE\t0\ta\t1");
        assert_eq!(parse_line("# comment"), None);
        assert_eq!(parse_line("too\tfew\tfields"), None);
        assert_eq!(parse_line("h\tFALSE\t/\tFALSE\tsoon\ta\t1"), None);
    }

    #[test]
    fn a_domain_that_would_be_written_as_a_comment_is_skipped() {
        // Found writing the cookies_txt fuzz target's round trip: `.#x` gave the domain `#x`,
        // whose line `#x\t...` reads back as a comment.
        assert_eq!(parse_line(".#x\tFALSE\t/\tFALSE\t0\ta\t1"), None);
        assert_eq!(parse_line("#HttpOnly_.#x\tTRUE\t/\tFALSE\t0\ta\t1"), None);
    }
}
