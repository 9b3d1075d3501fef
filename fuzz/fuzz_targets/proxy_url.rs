//! Proxy URLs (proxy.rs `Proxy::parse`): a parsed proxy has a non-empty host without `@`,
//! `/` or white space at its ends, a port from 1 to 65535 and a supported kind; written back
//! as a URL (credentials percent-encoded, IPv6 in brackets) it parses to the same proxy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::{Proxy, ProxyKind};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(p) = Proxy::parse(&text) else {
        return;
    };
    assert!(!p.host().is_empty());
    assert!(!p.host().contains(['@', '/', '?', '#']), "{p:?}");
    assert_ne!(p.port(), 0);
    assert_eq!(p.host(), p.host().to_ascii_lowercase());
    assert!(matches!(
        p.kind(),
        ProxyKind::HttpProxy | ProxyKind::Socks5Proxy
    ));
    let scheme = match (p.kind(), p.remote_dns()) {
        (ProxyKind::HttpProxy, _) => "http",
        (_, false) => "socks5",
        (_, true) => "socks5h",
    };
    let host = if p.host().contains(':') {
        format!("[{}]", p.host())
    } else {
        p.host().to_owned()
    };
    let userinfo = if p.user().is_empty() && p.password().is_empty() {
        String::new()
    } else {
        format!(
            "{}:{}@",
            utf8_percent_encode(p.user(), NON_ALPHANUMERIC),
            utf8_percent_encode(p.password(), NON_ALPHANUMERIC)
        )
    };
    let written = format!("{scheme}://{userinfo}{host}:{}", p.port());
    let back = Proxy::parse(&written).unwrap_or_else(|e| panic!("{written:?} of {p:?}: {e}"));
    assert_eq!(back, p, "written as {written:?}");
});
