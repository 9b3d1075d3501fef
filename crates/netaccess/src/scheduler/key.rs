//! Which origin (and so which pool and connection limit) a request belongs to: the scheme,
//! host and port of its URL, the proxy carrying it, how its protocol is chosen, and for https
//! the fingerprint of the request's own TLS settings (requests whose TLS settings differ never
//! share a connection).

use url::Url;

use super::{Mode, Origin};
use crate::error::{Error, NetworkError};
use crate::proxy::{Proxy, ProxyKind};
use crate::request::Request;

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

impl Origin {
    /// The origin of a request for `url` (the request may differ from the URL after a
    /// redirect or an HSTS upgrade) sent through `proxy`.
    pub(crate) fn for_url(
        url: &Url,
        request: &Request,
        proxy: Option<Proxy>,
    ) -> Result<Self, Error> {
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
            return Ok(Origin {
                scheme,
                host: socket.to_string_lossy().into_owned(),
                port: 0,
                proxy: None,
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
        let through_http_proxy = !https
            && proxy
                .as_ref()
                .is_some_and(|p| p.kind() != ProxyKind::Socks5Proxy);
        let mode = if through_http_proxy {
            Mode::Http1
        } else if request.http2_direct() {
            Mode::Http2Direct
        } else if https && request.http2_allowed() {
            Mode::Negotiate
        } else {
            Mode::Http1
        };
        Ok(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port: url
                .port_or_known_default()
                .unwrap_or(if https { 443 } else { 80 }),
            proxy,
            mode,
            tls: if https {
                request.tls_settings().cloned()
            } else {
                None
            },
        })
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
            (o.host.as_str(), o.port, o.mode),
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
    fn a_unix_socket_url_without_its_path_is_refused() {
        let url = Url::parse("unix+http://x/").unwrap();
        let e = Origin::for_url(&url, &Request::new("unix+http://x/"), None).unwrap_err();
        assert_eq!(e.kind(), NetworkError::ProtocolInvalidOperationError);
    }
}
