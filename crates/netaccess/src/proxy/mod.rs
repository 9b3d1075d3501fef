//! Proxies: [`Proxy`] (QNetworkProxy), the per-request [`ProxyFactory`] (QNetworkProxyFactory)
//! and [`EnvProxyFactory`], the system factory that reads the environment.
//!
//! The environment rules, and how they differ from Qt and curl, are documented on
//! [`EnvProxyFactory`], where rustdoc shows them.
//!
//! [`Proxy`], [`ProxyKind`], [`ProxyFactory`] and [`EnvProxyFactory`] are also at the crate
//! root; the `no_proxy` rules, the parse error and the default ports are here.
//!
//! ```
//! use netaccess::proxy::{NoProxyRules, ProxyParseError, DEFAULT_SOCKS5_PORT};
//! use netaccess::{Proxy, ProxyKind};
//!
//! let proxy = Proxy::parse("socks5h://127.0.0.1").unwrap();
//! assert_eq!(proxy.kind(), ProxyKind::Socks5Proxy);
//! assert_eq!(proxy.port(), DEFAULT_SOCKS5_PORT);
//! assert!(matches!(
//!     Proxy::parse("ftp://127.0.0.1"),
//!     Err(ProxyParseError::UnsupportedScheme(_))
//! ));
//!
//! let direct = NoProxyRules::parse("localhost, .internal.test, 10.0.0.0/8");
//! assert!(direct.matches_host("db.internal.test", None));
//! assert!(direct.matches_host("10.1.2.3", Some(80)));
//! assert!(!direct.matches_host("example.org", None));
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use http::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

mod env;
pub use env::{EnvProxyFactory, NoProxyRules};

/// The type of a [`Proxy`] (Qt's `QNetworkProxy::ProxyType`).
#[doc(alias = "ProxyType")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProxyKind {
    /// Use the application's default: the manager's proxy or proxy factory (Qt's
    /// `DefaultProxy`). The default value.
    #[default]
    DefaultProxy,
    /// Connect directly (Qt's `NoProxy`).
    NoProxy,
    /// An HTTP proxy: absolute-form requests for `http`, a CONNECT tunnel for `https` and
    /// everything else (Qt's `HttpProxy`).
    HttpProxy,
    /// An HTTP proxy used only for plain `http` requests, which it may cache; never for CONNECT
    /// (Qt's `HttpCachingProxy`).
    HttpCachingProxy,
    /// A SOCKS5 proxy (RFC 1928) with the optional username/password method (RFC 1929) (Qt's
    /// `Socks5Proxy`).
    Socks5Proxy,
}

/// A proxy (QNetworkProxy): its kind, host and port, credentials, headers sent with CONNECT,
/// and for SOCKS5 whether the proxy resolves host names.
///
/// `Debug` shows no password. Equality compares every field; `Hash` covers all but the
/// headers (equal proxies still hash alike).
#[doc(alias = "QNetworkProxy")]
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    user: String,
    password: String,
    headers: HeaderMap,
    remote_dns: bool,
}

/// Why a proxy URL was refused by [`Proxy::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyParseError {
    /// The scheme is not `http`, `socks5` or `socks5h`.
    UnsupportedScheme(String),
    /// No host.
    MissingHost,
    /// The port is not a number from 1 to 65535.
    InvalidPort(String),
    /// The host is not a valid host name or IP address (a percent-encoded `/` in it, say:
    /// CVE-2022-27780).
    InvalidHost(String),
}

impl fmt::Display for ProxyParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyParseError::UnsupportedScheme(s) => {
                write!(
                    f,
                    "unsupported proxy scheme {s:?} (use http, socks5 or socks5h)"
                )
            }
            ProxyParseError::MissingHost => f.write_str("proxy URL has no host"),
            ProxyParseError::InvalidPort(p) => write!(f, "invalid proxy port {p:?}"),
            ProxyParseError::InvalidHost(h) => write!(f, "invalid proxy host {h:?}"),
        }
    }
}

impl std::error::Error for ProxyParseError {}

/// Default port of an HTTP proxy given without one (Qt's choice).
pub const DEFAULT_HTTP_PROXY_PORT: u16 = 8080;
/// Default port of a SOCKS5 proxy given without one.
pub const DEFAULT_SOCKS5_PORT: u16 = 1080;

impl Proxy {
    /// A proxy of `kind` at `host:port` (IPv6 addresses without brackets). A SOCKS5 proxy
    /// resolves host names itself by default (Qt's `HostNameLookupCapability`); see
    /// [`with_remote_dns`](Self::with_remote_dns).
    pub fn new(kind: ProxyKind, host: impl Into<String>, port: u16) -> Proxy {
        Proxy {
            kind,
            host: host.into(),
            port,
            remote_dns: kind == ProxyKind::Socks5Proxy,
            ..Proxy::default()
        }
    }

    /// A direct connection (`NoProxy`).
    pub fn no_proxy() -> Proxy {
        Proxy::new(ProxyKind::NoProxy, "", 0)
    }

    /// An HTTP proxy at `host:port`.
    pub fn http(host: impl Into<String>, port: u16) -> Proxy {
        Proxy::new(ProxyKind::HttpProxy, host, port)
    }

    /// A SOCKS5 proxy at `host:port` that resolves host names itself (`socks5h`).
    pub fn socks5(host: impl Into<String>, port: u16) -> Proxy {
        Proxy::new(ProxyKind::Socks5Proxy, host, port)
    }

    /// Parses a proxy URL: `[scheme://][user[:password]@]host[:port][/]` where the scheme is
    /// `http` (the default), `socks5` (local DNS) or `socks5h` (remote DNS); IPv6 hosts in
    /// brackets; user and password percent-decoded. Without a port: 8080 for HTTP, 1080 for
    /// SOCKS5.
    pub fn parse(s: &str) -> Result<Proxy, ProxyParseError> {
        let s = s.trim();
        let (scheme, rest) = match s.find("://") {
            Some(i) => (s[..i].to_ascii_lowercase(), &s[i + 3..]),
            None => ("http".to_owned(), s),
        };
        let (kind, remote_dns, default_port) = match scheme.as_str() {
            "http" => (ProxyKind::HttpProxy, false, DEFAULT_HTTP_PROXY_PORT),
            "socks5" => (ProxyKind::Socks5Proxy, false, DEFAULT_SOCKS5_PORT),
            "socks5h" => (ProxyKind::Socks5Proxy, true, DEFAULT_SOCKS5_PORT),
            _ => return Err(ProxyParseError::UnsupportedScheme(scheme)),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or(ProxyParseError::MissingHost)?;
        if host.is_empty() {
            return Err(ProxyParseError::MissingHost);
        }
        let port = match port {
            None | Some("") => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 => n,
                _ => return Err(ProxyParseError::InvalidPort(p.to_owned())),
            },
        };
        let host = valid_host(host).ok_or_else(|| ProxyParseError::InvalidHost(host.to_owned()))?;
        let mut proxy = Proxy::new(kind, host, port);
        proxy.remote_dns = remote_dns;
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            proxy.user = percent_decode(user);
            proxy.password = percent_decode(password);
        }
        Ok(proxy)
    }

    /// With `user` and `password` (for HTTP proxies, answered to Basic or Digest challenges;
    /// for SOCKS5, the username/password method).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Proxy {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// With one more header sent on CONNECT requests to this proxy (Qt's `setRawHeader`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Proxy {
        self.headers.append(name, value);
        self
    }

    /// Whether a SOCKS5 proxy resolves host names (`socks5h`) or the client does (`socks5`).
    /// Ignored for HTTP proxies, which always resolve.
    pub fn with_remote_dns(mut self, remote_dns: bool) -> Proxy {
        self.remote_dns = remote_dns;
        self
    }

    /// The kind (Qt's `type`).
    #[doc(alias = "type")]
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The host name or IP address (IPv6 without brackets).
    #[doc(alias = "hostName")]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name (`""` for none).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Sets the user name (Qt's `setUser`).
    #[doc(alias = "setUser")]
    pub fn set_user(&mut self, user: impl Into<String>) {
        self.user = user.into();
    }

    /// The password (`""` for none).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Sets the password (Qt's `setPassword`).
    #[doc(alias = "setPassword")]
    pub fn set_password(&mut self, password: impl Into<String>) {
        self.password = password.into();
    }

    /// The headers sent with CONNECT requests (Qt's `rawHeaderList`/`header`).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers sent with CONNECT requests, mutable (Qt's `setRawHeader`).
    #[doc(alias = "setRawHeader")]
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// True when a SOCKS5 proxy is given host names to resolve (`socks5h`).
    pub fn remote_dns(&self) -> bool {
        self.remote_dns
    }

    /// True when this proxy can carry a request for `url`: `NoProxy` and `DefaultProxy` are not
    /// proxies, an `HttpCachingProxy` only carries plain `http` (and `ws`) requests (Qt's
    /// capabilities).
    pub fn can_carry(&self, url: &Url) -> bool {
        match self.kind {
            ProxyKind::NoProxy | ProxyKind::DefaultProxy => false,
            ProxyKind::HttpCachingProxy => matches!(url.scheme(), "http" | "ws"),
            ProxyKind::HttpProxy | ProxyKind::Socks5Proxy => true,
        }
    }
}

impl FromStr for Proxy {
    type Err = ProxyParseError;

    fn from_str(s: &str) -> Result<Proxy, ProxyParseError> {
        Proxy::parse(s)
    }
}

impl Hash for Proxy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.host.hash(state);
        self.port.hash(state);
        self.user.hash(state);
        self.password.hash(state);
        self.remote_dns.hash(state);
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("headers", &self.headers)
            .field("remote_dns", &self.remote_dns)
            .finish()
    }
}

/// `host[:port]` or `[v6][:port]`; a bare IPv6 address (several colons) has no port.
/// `None` for an unterminated bracket.
/// `host` as the URL standard reads it (lowercase, IDNA, IPv4 forms normalised), or `None`
/// when it is no host: forbidden code points, also once percent-decoded (a `%2F`,
/// CVE-2022-27780). A host with a colon must be an IPv6 address.
fn valid_host(host: &str) -> Option<String> {
    if host.contains(':') {
        return host
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| ip.to_string());
    }
    match url::Host::parse(host).ok()? {
        url::Host::Domain(name) => Some(name),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

pub(super) fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.matches(':').count() {
        0 => Some((s, None)),
        1 => {
            let (h, p) = s.split_once(':')?;
            Some((h, Some(p)))
        }
        _ => Some((s, None)),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
            out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Chooses the proxies for each request (QNetworkProxyFactory).
///
/// [`query`](Self::query) returns the proxies to try, in order; a list with
/// [`Proxy::no_proxy`] (or an empty list) means a direct connection. Closures
/// `Fn(&Url) -> Vec<Proxy>` and a fixed [`Proxy`] are factories too.
#[doc(alias = "QNetworkProxyFactory")]
pub trait ProxyFactory: Send + Sync {
    /// The proxies for a request to `url`, in order of preference (Qt's `queryProxy`).
    #[doc(alias = "queryProxy")]
    fn query(&self, url: &Url) -> Vec<Proxy>;
}

impl<F> ProxyFactory for F
where
    F: Fn(&Url) -> Vec<Proxy> + Send + Sync,
{
    fn query(&self, url: &Url) -> Vec<Proxy> {
        self(url)
    }
}

impl ProxyFactory for Proxy {
    fn query(&self, _url: &Url) -> Vec<Proxy> {
        vec![self.clone()]
    }
}

/// The proxy a request to `url` goes through: the first proxy `factory` lists that can carry
/// it, `None` for a direct connection (no factory, an empty list, `NoProxy` or `DefaultProxy`
/// first, or a Unix-socket URL). A caching proxy that cannot carry the scheme is skipped.
pub(crate) fn choose(factory: Option<&dyn ProxyFactory>, url: &Url) -> Option<Proxy> {
    if matches!(url.scheme(), "unix+http" | "local+http") {
        return None;
    }
    factory?
        .query(url)
        .into_iter()
        .find_map(|proxy| match proxy.kind() {
            ProxyKind::NoProxy | ProxyKind::DefaultProxy => Some(None),
            ProxyKind::HttpCachingProxy if !proxy.can_carry(url) => None,
            _ => Some(Some(proxy)),
        })?
}

#[cfg(test)]
mod tests;
