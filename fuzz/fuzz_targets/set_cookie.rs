//! `Set-Cookie` (cookies/cookie.rs): a parsed cookie obeys the 6265bis limits, and its full
//! raw form parses back to the same cookie.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::Cookie;
use std::time::{SystemTime, UNIX_EPOCH};

fn secs(t: Option<SystemTime>) -> Option<i128> {
    t.map(|t| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i128,
        Err(e) => {
            let d = e.duration();
            -(d.as_secs() as i128) - i128::from(d.subsec_nanos() > 0)
        }
    })
}

fn forbidden(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let all = Cookie::parse_cookies(&text);
    assert!(all.len() <= text.split('\n').count());
    let Ok(c) = Cookie::parse_set_cookie(&text) else {
        return;
    };
    assert!(!c.name.is_empty());
    assert!(c.name.len() + c.value.len() <= netaccess::DefaultCookieJar::MAX_COOKIE_SIZE);
    for s in [&c.name, &c.value, &c.domain, &c.path] {
        assert!(!forbidden(s), "control character kept: {s:?}");
    }
    assert!(!c.name.contains(['=', ';']) && !c.value.contains(';'));
    assert!(c.path.is_empty() || c.path.starts_with('/'));
    assert!(c.domain.is_empty() || c.domain.starts_with('.'));
    assert_eq!(c.domain, c.domain.to_ascii_lowercase());

    let raw = c.to_raw_form(true);
    let back = Cookie::parse_set_cookie(&raw)
        .unwrap_or_else(|e| panic!("raw form {raw:?} of {c:?} does not parse: {e}"));
    assert_eq!(back.name, c.name, "{raw:?}");
    assert_eq!(back.value, c.value, "{raw:?}");
    assert_eq!(back.domain, c.domain, "{raw:?}");
    assert_eq!(back.path, c.path, "{raw:?}");
    assert_eq!(back.secure, c.secure, "{raw:?}");
    assert_eq!(back.http_only, c.http_only, "{raw:?}");
    assert_eq!(back.same_site, c.same_site, "{raw:?}");
    // Expires is written to the second.
    assert_eq!(secs(back.expires), secs(c.expires), "{raw:?}");
    assert_eq!(c.to_raw_form(false), format!("{}={}", c.name, c.value));
});
