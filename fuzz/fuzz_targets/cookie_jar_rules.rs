//! The jar's rules (cookies/jar.rs): URLs and `Set-Cookie` lines in, `Cookie` headers out.
//! Invariants: the header is a valid `HeaderValue`; no `Secure` cookie goes to a URL that is
//! not secure (plain http to a non-loopback host, or to loopback once that is turned off);
//! every cookie sent domain- and path-matches the URL; `__Host-` cookies are Secure, host-only
//! and `Path=/`, `__Secure-` ones Secure; the per-domain and total limits hold.
#![no_main]

use arbitrary::Arbitrary;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use netaccess::{CookieJar, DefaultCookieJar};
use std::net::IpAddr;
use url::{Host, Url};

const HOSTS: &[&str] = &[
    "example.com",
    "www.example.com",
    "a.b.example.com",
    "EXAMPLE.com",
    "example.com.",
    "localhost",
    "sub.localhost",
    "127.0.0.1",
    "127.1.2.3",
    "[::1]",
    "10.0.0.1",
    "[fe80::1]",
    "com",
    "co.uk",
    "example.co.uk",
    "github.io",
    "user.github.io",
    "xn--bcher-kva.example",
    "b\u{fc}cher.example",
    "x",
];

#[derive(Arbitrary, Debug)]
struct Target {
    https: bool,
    host: u8,
    /// Replaces the host from the list when set and it makes a valid URL.
    own_host: Option<String>,
    path: String,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Set(Target, String),
    Get(Target),
    LoopbackIsSecure(bool),
}

fn url(t: &Target) -> Option<Url> {
    let scheme = if t.https { "https" } else { "http" };
    let host = match &t.own_host {
        Some(h) if !h.is_empty() => h.as_str(),
        _ => HOSTS[usize::from(t.host) % HOSTS.len()],
    };
    Url::parse(&format!("{scheme}://{host}/{}", t.path)).ok()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn request_host(url: &Url) -> Option<String> {
    Some(match url.host()? {
        Host::Domain(d) => d.to_ascii_lowercase(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => format!("[{ip}]"),
    })
}

fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

fn check_stored(jar: &DefaultCookieJar) {
    let all = jar.all_cookies();
    assert!(all.len() <= DefaultCookieJar::MAX_COOKIES);
    let mut per_domain = std::collections::HashMap::<&str, usize>::new();
    for c in &all {
        let lower = c.name.to_ascii_lowercase();
        if lower.starts_with("__host-") {
            assert!(c.secure, "__Host- without Secure: {c:?}");
            assert!(!c.domain.starts_with('.'), "__Host- domain cookie: {c:?}");
            assert_eq!(c.path, "/", "__Host- path: {c:?}");
        }
        if lower.starts_with("__secure-") {
            assert!(c.secure, "__Secure- without Secure: {c:?}");
        }
        assert!(!c.name.is_empty() && c.path.starts_with('/') && !c.domain.is_empty());
        assert!(c.name.len() + c.value.len() <= DefaultCookieJar::MAX_COOKIE_SIZE);
        *per_domain
            .entry(c.domain.trim_start_matches('.'))
            .or_default() += 1;
    }
    assert!(per_domain
        .values()
        .all(|&n| n <= DefaultCookieJar::MAX_COOKIES_PER_DOMAIN));
}

fn check_get(jar: &DefaultCookieJar, url: &Url, loopback_is_secure: bool) {
    let secure = url.scheme() == "https" || (loopback_is_secure && is_loopback(url));
    let host = request_host(url).unwrap_or_default();
    let path = if url.path().is_empty() {
        "/"
    } else {
        url.path()
    };
    let cookies = jar.cookies_for_url(url);
    for c in &cookies {
        assert!(secure || !c.secure, "Secure cookie {c:?} sent to {url}");
        match c.domain.strip_prefix('.') {
            None => assert_eq!(c.domain, host, "host-only cookie {c:?} sent to {url}"),
            Some(d) => assert!(
                host == d
                    || (host.ends_with(d)
                        && host.len() > d.len()
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.'),
                "domain cookie {c:?} sent to {url}"
            ),
        }
        assert!(path_matches(path, &c.path), "cookie {c:?} sent to {url}");
    }
    if let Some(header) = jar.cookie_header(url) {
        assert!(!header.is_empty());
        assert!(
            HeaderValue::from_bytes(header.as_bytes()).is_ok(),
            "invalid Cookie header {header:?} for {url}"
        );
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let jar = DefaultCookieJar::new();
    let mut loopback_is_secure = true;
    for op in ops.iter().take(64) {
        match op {
            Op::Set(target, lines) => {
                let Some(url) = url(target) else { continue };
                let values: Vec<&str> = lines.split('\n').take(16).collect();
                let before = jar.all_cookies();
                jar.store_response_cookies(&url, &values);
                // An insecure URL neither sets nor changes a Secure cookie.
                let insecure =
                    !(url.scheme() == "https" || (loopback_is_secure && is_loopback(&url)));
                if insecure {
                    for c in jar.all_cookies() {
                        assert!(
                            !c.secure || before.contains(&c),
                            "Secure cookie {c:?} set from {url}"
                        );
                    }
                }
                check_stored(&jar);
            }
            Op::Get(target) => {
                let Some(url) = url(target) else { continue };
                check_get(&jar, &url, loopback_is_secure);
            }
            Op::LoopbackIsSecure(on) => {
                loopback_is_secure = *on;
                jar.set_loopback_is_secure(*on);
            }
        }
    }
});
