//! The cookie-date parser (RFC 6265 §5.1.1, cookies/date.rs): a date it accepts is formatted as
//! an IMF-fixdate that parses back to the same time (and that `httpdate` reads the same way
//! for the years it supports).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::__fuzz::{format_cookie_date, parse_cookie_date};
use std::time::{Duration, UNIX_EPOCH};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Some(t) = parse_cookie_date(&text) else {
        return;
    };
    // RFC 6265: years before 1601 are refused; four digits at most.
    let min = UNIX_EPOCH - Duration::from_secs(11_644_473_600);
    let max = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    assert!(t >= min && t <= max, "{text:?}");
    let formatted = format_cookie_date(t);
    assert_eq!(formatted.len(), 29, "{formatted:?}");
    assert_eq!(
        parse_cookie_date(&formatted),
        Some(t),
        "{text:?} -> {formatted:?}"
    );
    if t >= UNIX_EPOCH {
        assert_eq!(
            httpdate::parse_http_date(&formatted).ok(),
            Some(t),
            "{text:?} -> {formatted:?}"
        );
    }
});
