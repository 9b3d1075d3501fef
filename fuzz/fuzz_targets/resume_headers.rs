//! What a resumption reads (`netaccess/src/pipeline/resume.rs`): `Content-Range` is exactly a
//! model of `bytes START-END/TOTAL` (digits only, END >= START, TOTAL `*` or past END) and
//! agrees with the CLI's parser (`netaccess-cli/src/get/partial.rs`); the `If-Range`
//! validator is a strong entity-tag (RFC 9110 §8.8.3) when there is an `ETag`, else a
//! `Last-Modified` at least a second before `Date`.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use http::header::{HeaderMap, HeaderValue, DATE, ETAG, LAST_MODIFIED};
use libfuzzer_sys::fuzz_target;
use netaccess::__fuzz::{resume_content_range, resume_strong_validator};

#[derive(Arbitrary, Debug)]
enum Field {
    /// A value as sent.
    Raw(Vec<u8>),
    /// An HTTP date, seconds after 1970.
    Date(u32),
}

#[derive(Arbitrary, Debug)]
enum Input {
    ContentRange(Vec<u8>),
    Validator {
        etag: Option<Vec<u8>>,
        last_modified: Option<Field>,
        date: Option<Field>,
    },
}

fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `(start, total)` as the grammar says.
fn content_range_model(value: &[u8]) -> Option<(u64, Option<u64>)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (range, total) = text.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end) = (number(start)?, number(end)?);
    let total = match total.trim() {
        "*" => None,
        t => Some(number(t)?),
    };
    (end >= start && total.is_none_or(|t| t > end)).then_some((start, total))
}

fn strong_etag(value: &[u8]) -> bool {
    matches!(value, [b'"', inner @ .., b'"']
        if inner.iter().all(|&b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80))
}

fn field(value: &Field) -> Option<HeaderValue> {
    match value {
        Field::Raw(bytes) => HeaderValue::from_bytes(bytes).ok(),
        Field::Date(secs) => HeaderValue::from_str(&httpdate::fmt_http_date(
            UNIX_EPOCH + Duration::from_secs(u64::from(*secs)),
        ))
        .ok(),
    }
}

fn date(headers: &HeaderMap, name: http::HeaderName) -> Option<SystemTime> {
    httpdate::parse_http_date(headers.get(name)?.to_str().ok()?.trim()).ok()
}

fuzz_target!(|input: Input| match input {
    Input::ContentRange(value) => {
        let parsed = resume_content_range(&value);
        assert_eq!(
            parsed,
            content_range_model(&value),
            "{:?}",
            String::from_utf8_lossy(&value)
        );
        let Ok(text) = std::str::from_utf8(&value) else {
            return;
        };
        let cli = netaccess_cli::__fuzz::content_range(text);
        match (parsed, cli) {
            (Some((start, total)), Some((Some((cli_start, _)), cli_total))) => {
                assert_eq!((start, total), (cli_start, cli_total), "{text:?}");
            }
            (None, None | Some((None, _))) => {}
            (ours, cli) => panic!("{text:?}: library {ours:?}, CLI {cli:?}"),
        }
    }
    Input::Validator {
        etag,
        last_modified,
        date: sent,
    } => {
        let mut headers = HeaderMap::new();
        if let Some(v) = etag.and_then(|e| HeaderValue::from_bytes(&e).ok()) {
            headers.insert(ETAG, v);
        }
        if let Some(v) = last_modified.as_ref().and_then(field) {
            headers.insert(LAST_MODIFIED, v);
        }
        if let Some(v) = sent.as_ref().and_then(field) {
            headers.insert(DATE, v);
        }
        let validator = resume_strong_validator(&headers);
        let want = match headers.get(ETAG) {
            Some(etag) => strong_etag(etag.as_bytes()).then(|| etag.clone()),
            None => match (date(&headers, LAST_MODIFIED), date(&headers, DATE)) {
                (Some(modified), Some(sent))
                    if sent
                        .duration_since(modified)
                        .is_ok_and(|d| d >= Duration::from_secs(1)) =>
                {
                    headers.get(LAST_MODIFIED).cloned()
                }
                _ => None,
            },
        };
        assert_eq!(validator, want, "{headers:?}");
    }
});
