//! Which origin (and so which pool and connection limit) a request belongs to: the scheme,
//! host and port of its URL, the proxy carrying it, how its protocol is chosen, and for https
//! the fingerprint of the request's own TLS settings (requests whose TLS settings differ never
//! share a connection).

use std::borrow::Cow;
use std::sync::Arc;

use url::Url;

use super::{Mode, Origin};
use crate::error::{Error, NetworkError};
use crate::proxy::{Proxy, ProxyKind};
use crate::request::Request;
use crate::tls_config::TlsSettings;

/// Schemes of HTTP over a Unix domain socket (Qt 6.8).
fn is_local_http(scheme: &str) -> bool {
    matches!(scheme, "unix+http" | "local+http")
}

/// The schemes a connection is made for, as a static name (an origin stays small and is made
/// without an allocation for its scheme).
fn static_scheme(url: &Url) -> Result<&'static str, Error> {
    Ok(match url.scheme() {
        "http" => "http",
        "https" => "https",
        "unix+http" => "unix+http",
        "local+http" => "local+http",
        other => {
            return Err(Error::new(
                NetworkError::ProtocolUnknownError,
                format!("Protocol \"{other}\" is unknown"),
            ))
        }
    })
}

/// What an origin is made of, borrowed from the request where it can be: [`Origin::for_url`]
/// owns it, [`Origin::is_for`] compares it without allocating.
struct Parts<'a> {
    scheme: &'static str,
    /// Lowercased (a socket path as it is).
    host: Cow<'a, str>,
    port: u16,
    mode: Mode,
    tls: Option<&'a Arc<TlsSettings>>,
}

impl<'a> Parts<'a> {
    fn of(url: &'a Url, request: &'a Request, proxy: Option<&Proxy>) -> Result<Self, Error> {
        let scheme = static_scheme(url)?;
        if is_local_http(scheme) {
            let socket = request.unix_socket().ok_or_else(|| {
                Error::new(
                    NetworkError::ProtocolInvalidOperationError,
                    format!(
                        "{url}: a {} URL needs the socket path (Request::with_unix_socket)",
                        url.scheme()
                    ),
                )
            })?;
            return Ok(Parts {
                scheme,
                host: socket.to_string_lossy(),
                port: 0,
                mode: Mode::Http1,
                tls: None,
            });
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            Error::new(
                NetworkError::ProtocolInvalidOperationError,
                format!("URL {url} has no host"),
            )
        })?;
        let https = url.scheme() == "https";
        let through_http_proxy =
            !https && proxy.is_some_and(|p| p.kind() != ProxyKind::Socks5Proxy);
        let mode = if through_http_proxy {
            Mode::Http1
        } else if request.http2_direct() {
            Mode::Http2Direct
        } else if https && request.http2_allowed() {
            Mode::Negotiate
        } else {
            Mode::Http1
        };
        // The URL parser lowercases the hosts of http and https URLs already.
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        Ok(Parts {
            scheme,
            host,
            port: url
                .port_or_known_default()
                .unwrap_or(if https { 443 } else { 80 }),
            mode,
            tls: if https { request.tls_settings() } else { None },
        })
    }
}

impl Origin {
    /// The origin of a request for `url` (the request may differ from the URL after a
    /// redirect or an HSTS upgrade) sent through `proxy`.
    pub(crate) fn for_url(
        url: &Url,
        request: &Request,
        proxy: Option<Proxy>,
    ) -> Result<Self, Error> {
        let parts = Parts::of(url, request, proxy.as_ref())?;
        Ok(Origin {
            scheme: parts.scheme,
            host: Arc::from(parts.host.as_ref()),
            port: parts.port,
            proxy,
            mode: parts.mode,
            tls: parts.tls.cloned(),
        })
    }

    /// Whether [`for_url`](Self::for_url) would give this origin, without making one.
    pub(crate) fn is_for(&self, url: &Url, request: &Request, proxy: Option<&Proxy>) -> bool {
        let Ok(parts) = Parts::of(url, request, proxy) else {
            return false;
        };
        self.scheme == parts.scheme
            && *self.host == *parts.host
            && self.port == parts.port
            && self.mode == parts.mode
            && self.proxy.as_ref() == proxy
            && self.tls.as_ref() == parts.tls
    }

    /// Whether requests go to an HTTP proxy in absolute form (plain http through an HTTP
    /// proxy; https goes through a CONNECT tunnel instead).
    pub(crate) fn absolute_form(&self) -> bool {
        self.scheme == "http"
            && self.proxy.as_ref().is_some_and(|p| {
                matches!(p.kind(), ProxyKind::HttpProxy | ProxyKind::HttpCachingProxy)
            })
    }

    /// Whether connections reach a Unix domain socket.
    pub(crate) fn is_local(&self) -> bool {
        is_local_http(self.scheme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str, request: Request, proxy: Option<Proxy>) -> Origin {
        let url = Url::parse(url).unwrap();
        Origin::for_url(&url, &request, proxy).unwrap()
    }

    #[test]
    fn https_negotiates_and_plain_http_through_a_proxy_is_absolute_form() {
        let o = origin(
            "https://Example.ORG/x",
            Request::new("https://example.org/"),
            None,
        );
        assert_eq!(
            (&*o.host, o.port, o.mode),
            ("example.org", 443, Mode::Negotiate)
        );
        assert!(!o.absolute_form());
        let proxied = origin(
            "http://example.org:81/",
            Request::new("http://example.org:81/"),
            Some(Proxy::http("127.0.0.1", 3128)),
        );
        assert_eq!(proxied.mode, Mode::Http1);
        assert!(proxied.absolute_form());
        let socks = origin(
            "http://example.org/",
            Request::new("http://example.org/"),
            Some(Proxy::socks5("127.0.0.1", 1080)),
        );
        assert!(!socks.absolute_form());
    }

    #[test]
    fn different_tls_settings_make_different_origins() {
        use crate::tls_config::SslConfiguration;
        let plain = origin("https://a.test/", Request::new("https://a.test/"), None);
        let named = |name: &str| {
            let tls = SslConfiguration::new().with_peer_verify_name(name);
            origin(
                "https://a.test/",
                Request::new("https://a.test/").with_ssl_configuration(tls),
                None,
            )
        };
        assert_ne!(plain, named("b.test"));
        assert_ne!(named("b.test"), named("c.test"));
        assert_eq!(named("b.test"), named("b.test"));
        // An empty configuration is the manager's: the same origin as none.
        let empty = Request::new("https://a.test/").with_ssl_configuration(SslConfiguration::new());
        assert_eq!(plain, origin("https://a.test/", empty, None));
        // Plain http ignores TLS settings.
        let tls = SslConfiguration::new().with_peer_verify_name("b.test");
        let http = Request::new("http://a.test/").with_ssl_configuration(tls);
        assert_eq!(
            origin("http://a.test/", http, None),
            origin("http://a.test/", Request::new("http://a.test/"), None)
        );
    }

    #[test]
    fn is_for_agrees_with_for_url() {
        use crate::tls_config::SslConfiguration;
        let named = SslConfiguration::new().with_peer_verify_name("b.test");
        let proxy = Proxy::http("127.0.0.1", 3128);
        let cases: Vec<(&str, Request, Option<Proxy>)> = vec![
            ("https://a.test/", Request::new("https://a.test/"), None),
            (
                "https://A.Test:443/x",
                Request::new("https://a.test/"),
                None,
            ),
            ("https://a.test:444/", Request::new("https://a.test/"), None),
            ("http://a.test/", Request::new("http://a.test/"), None),
            (
                "http://a.test/",
                Request::new("http://a.test/"),
                Some(proxy.clone()),
            ),
            (
                "http://a.test/",
                Request::new("http://a.test/").with_http2_direct(true),
                None,
            ),
            (
                "https://a.test/",
                Request::new("https://a.test/").with_ssl_configuration(named),
                None,
            ),
            ("http://b.test/", Request::new("http://b.test/"), None),
            (
                "unix+http://x/",
                Request::new("unix+http://x/").with_unix_socket("/tmp/A.sock"),
                None,
            ),
            (
                "unix+http://x/",
                Request::new("unix+http://x/").with_unix_socket("/tmp/a.sock"),
                None,
            ),
        ];
        for (i, (u, request, proxy)) in cases.iter().enumerate() {
            let url = Url::parse(u).unwrap();
            let made = Origin::for_url(&url, request, proxy.clone()).unwrap();
            for (j, (v, other, other_proxy)) in cases.iter().enumerate() {
                let other_url = Url::parse(v).unwrap();
                let same = Origin::for_url(&other_url, other, other_proxy.clone()).unwrap() == made;
                assert_eq!(
                    made.is_for(&other_url, other, other_proxy.as_ref()),
                    same,
                    "case {i} against {j}"
                );
                assert_eq!(same, i == j || (i, j) == (0, 1) || (i, j) == (1, 0));
            }
        }
        // A URL no origin can be made for matches none.
        let data = Url::parse("data:,x").unwrap();
        let made = Origin::for_url(&Url::parse("http://a.test/").unwrap(), &cases[3].1, None);
        assert!(!made.unwrap().is_for(&data, &cases[3].1, None));
    }

    #[test]
    fn a_unix_socket_url_without_its_path_is_refused() {
        let url = Url::parse("unix+http://x/").unwrap();
        let e = Origin::for_url(&url, &Request::new("unix+http://x/"), None).unwrap_err();
        assert_eq!(e.kind(), NetworkError::ProtocolInvalidOperationError);
    }
}
