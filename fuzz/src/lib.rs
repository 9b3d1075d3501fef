//! Shared pieces of the fuzz targets in `fuzz_targets/` (see docs/fuzzing.md).
//!
//! The CLI's output-name code (Content-Disposition, RFC 8187, file-name sanitising) lives in the
//! `netaccess` binary crate, which has no library target; its source file is compiled in here
//! as it is, so the fuzzed code is exactly the code the binary runs and the CLI is unchanged.

#[allow(dead_code)]
#[path = "../../crates/netaccess-cli/src/output.rs"]
pub mod cli_output;

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Header names the cache policy, the decoder and the auth code look at, plus a few others:
/// a fuzzer byte picks one, so inputs spend their bytes on values.
pub const HEADER_NAMES: &[&str] = &[
    "cache-control",
    "expires",
    "date",
    "age",
    "last-modified",
    "etag",
    "vary",
    "pragma",
    "content-length",
    "content-encoding",
    "content-range",
    "content-location",
    "location",
    "connection",
    "set-cookie",
    "accept-language",
    "accept-encoding",
    "authorization",
    "cookie",
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "keep-alive",
    "transfer-encoding",
    "www-authenticate",
    "x-custom",
    "host",
];

/// A header map from (name index, value bytes) pairs; values `http` refuses are skipped.
pub fn header_map(pairs: &[(u8, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HEADER_NAMES[usize::from(*name) % HEADER_NAMES.len()];
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(name), value);
        }
    }
    map
}

/// Splits fuzzer bytes at the first `sep`: (before, after).
pub fn split_at_byte(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A private scratch folder for the file-loader targets (in `/dev/shm` when there is one), made
/// once per process.
pub fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        tempfile::Builder::new()
            .prefix("netaccess-fuzz-")
            .tempdir_in(base)
            .expect("a scratch folder for the fuzz target")
    })
    .path()
}

/// The file-name property of the CLI's output names: non-empty, at most 255 bytes, no `/` or
/// `\`, no control character, no leading dot, no trailing dot or space, and not a Windows
/// device name (`CON`, `PRN`, `AUX`, `NUL`, `COM1`-`COM9`, `LPT1`-`LPT9`, also with the
/// superscript digits `¹²³`, whatever follows a dot or trailing spaces).
pub fn assert_safe_file_name(name: &str) {
    assert!(!name.is_empty(), "empty name");
    assert!(name.len() <= 255, "{} bytes: {name:?}", name.len());
    assert!(!name.contains(['/', '\\']), "path separator in {name:?}");
    assert!(
        !name.chars().any(char::is_control),
        "control character in {name:?}"
    );
    assert!(!name.starts_with('.'), "leading dot in {name:?}");
    assert!(
        !name.ends_with(['.', ' ']),
        "trailing dot or space in {name:?}"
    );
    let stem = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end_matches(' ')
        .to_uppercase();
    let device = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.chars().count() == 4
            && stem
                .chars()
                .nth(3)
                .is_some_and(|c| matches!(c, '1'..='9' | '¹' | '²' | '³')));
    assert!(!device, "Windows device name {name:?}");
}

/// `s` as a quoted string (`"` and `\` escaped with `\`), the form the targets write back
/// for the parsers of quoted values (list lines, `.netrc`, `Content-Disposition`,
/// `WWW-Authenticate`) to read again.
pub fn quoted_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
