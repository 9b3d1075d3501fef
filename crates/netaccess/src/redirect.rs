//! Redirects: [`RedirectPolicy`] (Qt's `QNetworkRequest::RedirectPolicy`) and the pure rules
//! that decide the next hop from a 3xx response ([`next_hop`]). No sockets here.

use http::StatusCode;
use url::Url;

use crate::error::{Error, NetworkError};
use crate::request::Operation;

/// Qt's `QNetworkRequest::RedirectPolicy`: what to do with a 301, 302, 303, 307 or 308.
#[doc(alias = "QNetworkRequest::RedirectPolicy")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RedirectPolicy {
    /// The 3xx response is the reply; `redirection_target()` holds its `Location`.
    Manual,
    /// Follow, except from https to http (`InsecureRedirectError`). The default, as in Qt 6.
    #[default]
    NoLessSafe,
    /// Follow only to the same scheme, host and port (`InsecureRedirectError` otherwise).
    SameOrigin,
    /// Emit `redirected(url)` and wait until the application calls
    /// [`Reply::redirect_allowed`](crate::Reply::redirect_allowed) (or aborts).
    UserVerified,
}

/// What to do after a response.
#[derive(Debug)]
pub(crate) enum Hop {
    /// Hand this response to the application.
    Deliver,
    /// Request `url` next with `operation`; `drop_body` when the method became GET.
    Follow {
        url: Url,
        operation: Operation,
        drop_body: bool,
        ask_first: bool,
    },
    /// End the reply with this error.
    Fail(Error),
}

const FOLLOWED: [u16; 5] = [301, 302, 303, 307, 308];

/// The next hop after a `status` response with `location` to a request for `current`.
/// `followed` redirects were taken so far, `max` are allowed.
pub(crate) fn next_hop(
    policy: RedirectPolicy,
    current: &Url,
    status: StatusCode,
    location: Option<&str>,
    operation: &Operation,
    followed: u32,
    max: u32,
) -> Hop {
    if policy == RedirectPolicy::Manual || !FOLLOWED.contains(&status.as_u16()) {
        return Hop::Deliver;
    }
    let Some(location) = location else {
        return Hop::Deliver;
    };
    let target = match current.join(location.trim()) {
        Ok(url) => url,
        Err(e) => {
            return Hop::Fail(Error::new(
                NetworkError::ProtocolFailure,
                format!(
                    "Invalid redirect target {location:?} from {current}: {}",
                    describe_url_error(location, e)
                ),
            ))
        }
    };
    if !matches!(target.scheme(), "http" | "https") && target.scheme() != current.scheme() {
        return Hop::Fail(Error::new(
            NetworkError::ProtocolUnknownError,
            format!(
                "Redirect to unsupported scheme \"{}\" ({target})",
                target.scheme()
            ),
        ));
    }
    if followed >= max {
        return Hop::Fail(Error::new(
            NetworkError::TooManyRedirectsError,
            format!("Too many redirects (limit {max}) at {current}"),
        ));
    }
    match policy {
        RedirectPolicy::NoLessSafe if current.scheme() == "https" && target.scheme() == "http" => {
            return Hop::Fail(Error::new(
                NetworkError::InsecureRedirectError,
                format!("Insecure redirect from {current} to {target}"),
            ));
        }
        RedirectPolicy::SameOrigin if !same_origin(current, &target) => {
            return Hop::Fail(Error::new(
                NetworkError::InsecureRedirectError,
                format!("Redirect from {current} to another origin ({target}) refused by the SameOrigin policy"),
            ));
        }
        _ => {}
    }
    let to_get = match status.as_u16() {
        303 => *operation != Operation::Head,
        301 | 302 => *operation == Operation::Post,
        _ => false,
    };
    Hop::Follow {
        url: target,
        operation: if to_get {
            Operation::Get
        } else {
            operation.clone()
        },
        drop_body: to_get,
        ask_first: policy == RedirectPolicy::UserVerified,
    }
}

/// A `Location` header's bytes as text for [`next_hop`]: bytes that are not visible ASCII
/// (obs-text such as Latin-1 or raw UTF-8, control characters) are percent-encoded as they are,
/// as curl does, so a server's non-UTF-8 target is followed byte for byte rather than refused
/// or mangled. Spaces are kept (the URL parser encodes them in paths and queries).
pub(crate) fn location_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.bytes().all(|b| (0x20..0x7f).contains(&b)) => text.into(),
        _ => {
            let mut out = String::with_capacity(bytes.len() * 3);
            for &b in bytes {
                if (0x20..0x7f).contains(&b) {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out.into()
        }
    }
}

/// `e`, the URL parser's verdict on `text`, in words a user can act on. A host with a
/// percent-encoded character (`%2F`: CVE-2022-27780) fails as an "invalid international domain
/// name"; say what is wrong instead.
pub(crate) fn describe_url_error(text: &str, e: url::ParseError) -> String {
    let after_scheme = text.split_once("//").map_or("", |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#', '\\'])
        .next()
        .unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.contains('%')
        && matches!(
            e,
            url::ParseError::IdnaError | url::ParseError::InvalidDomainCharacter
        )
    {
        format!("{e}: a host name may not contain percent-encoded characters")
    } else {
        e.to_string()
    }
}

/// The application's headers for the next hop, from `from` to `to`: credentials, cookies and
/// `Host` never cross to another origin (the jar adds the cookies that belong to `to`), and a
/// request whose method became GET (`drop_body`) loses its body's fields.
pub(crate) fn headers_for_next_hop(
    mut headers: http::HeaderMap,
    from: &Url,
    to: &Url,
    drop_body: bool,
) -> http::HeaderMap {
    use http::header;
    if !same_origin(from, to) {
        for name in [
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
            header::HOST,
        ] {
            headers.remove(name);
        }
    }
    if drop_body {
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::CONTENT_ENCODING,
        ] {
            headers.remove(name);
        }
    }
    headers
}

/// Scheme, host and port equal.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_headers() -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (name, value) in [
            ("authorization", "Basic dTpw"),
            ("cookie", "a=1"),
            ("proxy-authorization", "Basic cDpw"),
            ("host", "a.test"),
            ("content-type", "text/plain"),
            ("content-length", "3"),
            ("x-custom", "kept"),
        ] {
            h.insert(name, http::HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn credentials_cookies_and_host_never_cross_origins() {
        let from = Url::parse("http://a.test/x").unwrap();
        for to in ["http://b.test/", "https://a.test/", "http://a.test:81/"] {
            let to = Url::parse(to).unwrap();
            let h = headers_for_next_hop(sample_headers(), &from, &to, false);
            for gone in ["authorization", "cookie", "proxy-authorization", "host"] {
                assert!(!h.contains_key(gone), "{gone} crossed to {to}");
            }
            assert_eq!(h["x-custom"], "kept");
            assert_eq!(h["content-type"], "text/plain");
        }
    }

    #[test]
    fn the_same_origin_keeps_credentials_and_a_get_loses_the_body_fields() {
        let from = Url::parse("http://a.test/x").unwrap();
        let to = Url::parse("http://a.test:80/y").unwrap();
        let h = headers_for_next_hop(sample_headers(), &from, &to, true);
        assert_eq!(h["authorization"], "Basic dTpw");
        assert_eq!(h["cookie"], "a=1");
        for gone in ["content-type", "content-length"] {
            assert!(!h.contains_key(gone));
        }
    }

    fn hop(
        policy: RedirectPolicy,
        from: &str,
        status: u16,
        to: &str,
        op: Operation,
        followed: u32,
    ) -> Hop {
        next_hop(
            policy,
            &Url::parse(from).unwrap(),
            StatusCode::from_u16(status).unwrap(),
            Some(to),
            &op,
            followed,
            50,
        )
    }

    fn follows_to(h: Hop) -> (String, Operation, bool) {
        match h {
            Hop::Follow {
                url,
                operation,
                drop_body,
                ..
            } => (url.to_string(), operation, drop_body),
            other => panic!("expected a hop, got {other:?}"),
        }
    }

    fn fails_with(h: Hop) -> NetworkError {
        match h {
            Hop::Fail(e) => e.kind(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn relative_locations_resolve_against_the_current_url() {
        let (url, _, _) = follows_to(hop(
            RedirectPolicy::NoLessSafe,
            "http://a/x/y",
            302,
            "../z?q",
            Operation::Get,
            0,
        ));
        assert_eq!(url, "http://a/z?q");
    }

    #[test]
    fn methods_change_as_browsers_and_qt_do() {
        use Operation::*;
        let p = RedirectPolicy::NoLessSafe;
        assert_eq!(follows_to(hop(p, "http://a/", 303, "/b", Post, 0)).1, Get);
        assert_eq!(follows_to(hop(p, "http://a/", 303, "/b", Put, 0)).1, Get);
        assert_eq!(follows_to(hop(p, "http://a/", 303, "/b", Head, 0)).1, Head);
        assert_eq!(follows_to(hop(p, "http://a/", 301, "/b", Post, 0)).1, Get);
        assert_eq!(
            follows_to(hop(p, "http://a/", 302, "/b", Post, 0)),
            ("http://a/b".into(), Get, true)
        );
        assert_eq!(follows_to(hop(p, "http://a/", 302, "/b", Put, 0)).1, Put);
        assert_eq!(
            follows_to(hop(p, "http://a/", 307, "/b", Post, 0)),
            ("http://a/b".into(), Post, false)
        );
        assert_eq!(follows_to(hop(p, "http://a/", 308, "/b", Post, 0)).1, Post);
    }

    #[test]
    fn policies_refuse_what_they_must() {
        use RedirectPolicy::*;
        assert_eq!(
            fails_with(hop(
                NoLessSafe,
                "https://a/",
                302,
                "http://a/",
                Operation::Get,
                0
            )),
            NetworkError::InsecureRedirectError
        );
        assert!(matches!(
            hop(
                NoLessSafe,
                "http://a/",
                302,
                "https://b/",
                Operation::Get,
                0
            ),
            Hop::Follow { .. }
        ));
        assert_eq!(
            fails_with(hop(
                SameOrigin,
                "http://a/",
                302,
                "http://b/",
                Operation::Get,
                0
            )),
            NetworkError::InsecureRedirectError
        );
        assert_eq!(
            fails_with(hop(
                SameOrigin,
                "http://a/",
                302,
                "http://a:81/",
                Operation::Get,
                0
            )),
            NetworkError::InsecureRedirectError
        );
        assert!(matches!(
            hop(
                SameOrigin,
                "http://a/",
                302,
                "http://a:80/x",
                Operation::Get,
                0
            ),
            Hop::Follow { .. }
        ));
        assert!(matches!(
            hop(Manual, "http://a/", 302, "/x", Operation::Get, 0),
            Hop::Deliver
        ));
        assert!(matches!(
            hop(UserVerified, "http://a/", 302, "/x", Operation::Get, 0),
            Hop::Follow {
                ask_first: true,
                ..
            }
        ));
    }

    #[test]
    fn locations_that_are_not_visible_ascii_keep_their_bytes() {
        assert_eq!(location_text(b"/plain?q=1"), "/plain?q=1");
        assert_eq!(location_text(b"/caf\xe9?q=\xff"), "/caf%E9?q=%FF");
        assert_eq!(location_text("/café".as_bytes()), "/caf%C3%A9");
        assert_eq!(location_text(b"/a\tb\x01"), "/a%09b%01");
        let (url, _, _) = follows_to(hop(
            RedirectPolicy::NoLessSafe,
            "http://a/",
            302,
            &location_text(b"/caf\xe9"),
            Operation::Get,
            0,
        ));
        assert_eq!(url, "http://a/caf%E9");
    }

    #[test]
    fn percent_encoded_hosts_are_explained() {
        let e = Url::parse("http://127.0.0.1%2F.evil/").unwrap_err();
        assert!(describe_url_error("http://127.0.0.1%2F.evil/", e).contains("percent-encoded"));
        let e = Url::parse("http://u%40:p@a b/").unwrap_err();
        assert!(!describe_url_error("http://u%40:p@a b/", e).contains("percent"));
        let e = Url::parse("http://[::1/").unwrap_err();
        assert_eq!(describe_url_error("http://[::1/", e), e.to_string());
    }

    #[test]
    fn redirects_to_local_schemes_are_refused() {
        for to in [
            "file:///etc/passwd",
            "data:text/plain,hi",
            "unix+http://x/",
            "local+http://x/",
            "ftp://a/x",
        ] {
            for from in ["http://a/", "https://a/"] {
                assert_eq!(
                    fails_with(hop(
                        RedirectPolicy::NoLessSafe,
                        from,
                        302,
                        to,
                        Operation::Get,
                        0
                    )),
                    NetworkError::ProtocolUnknownError,
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn limits_schemes_and_bad_locations() {
        let p = RedirectPolicy::NoLessSafe;
        assert_eq!(
            fails_with(hop(p, "http://a/", 302, "/x", Operation::Get, 50)),
            NetworkError::TooManyRedirectsError
        );
        assert_eq!(
            fails_with(hop(p, "http://a/", 302, "ftp://a/x", Operation::Get, 0)),
            NetworkError::ProtocolUnknownError
        );
        assert_eq!(
            fails_with(hop(p, "http://a/", 302, "http://[::1", Operation::Get, 0)),
            NetworkError::ProtocolFailure
        );
        assert!(matches!(
            hop(p, "http://a/", 304, "/x", Operation::Get, 0),
            Hop::Deliver
        ));
        assert!(matches!(
            hop(p, "http://a/", 300, "/x", Operation::Get, 0),
            Hop::Deliver
        ));
        let none = next_hop(
            p,
            &Url::parse("http://a/").unwrap(),
            StatusCode::FOUND,
            None,
            &Operation::Get,
            0,
            50,
        );
        assert!(matches!(none, Hop::Deliver));
    }
}
