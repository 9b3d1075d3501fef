//! `Content-Disposition` and RFC 8187 (netaccess-cli src/output.rs): any header value gives a
//! name that obeys the file-name rules (see `file_name`); a name written as `filename*` with
//! UTF-8 percent-encoding, or as a quoted `filename`, reads back exactly, and `filename*` wins
//! over `filename`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess_fuzz::cli_output::{choose_name, content_disposition_filename};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

fuzz_target!(|data: &[u8]| {
    let name = choose_name(Some(data), "http://h/fallback");
    netaccess_fuzz::assert_safe_file_name(&name);

    let s = String::from_utf8_lossy(data);
    let ext = format!(
        "attachment; filename*=UTF-8''{}",
        utf8_percent_encode(&s, NON_ALPHANUMERIC)
    );
    assert_eq!(
        content_disposition_filename(ext.as_bytes()).as_deref(),
        Some(&*s),
        "{ext:?}"
    );
    let plain = format!("attachment; filename={}", netaccess_fuzz::quoted_string(&s));
    assert_eq!(
        content_disposition_filename(plain.as_bytes()).as_deref(),
        Some(&*s),
        "{plain:?}"
    );
    let both = format!(
        "{plain}; filename*=UTF-8''{}",
        utf8_percent_encode(&s, NON_ALPHANUMERIC)
    );
    let ext_first = format!(
        "inline; filename*=utf-8'en'{}; filename=\"other\"",
        utf8_percent_encode(&s, NON_ALPHANUMERIC)
    );
    assert_eq!(
        content_disposition_filename(both.as_bytes()).as_deref(),
        Some(&*s)
    );
    assert_eq!(
        content_disposition_filename(ext_first.as_bytes()).as_deref(),
        Some(&*s)
    );
    // ISO-8859-1 in filename*: every byte one character.
    let latin1: String = data.iter().map(|&b| char::from(b)).collect();
    let pct: String = data.iter().map(|b| format!("%{b:02X}")).collect();
    let iso = format!("attachment; filename*=ISO-8859-1''{pct}");
    assert_eq!(
        content_disposition_filename(iso.as_bytes()).as_deref(),
        Some(&*latin1)
    );
});
