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

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::str::FromStr;

use http::{HeaderMap, HeaderName, HeaderValue};
use url::{Host, Url};

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

fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
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

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    /// A host name and its subdomains; lowercase, no leading or trailing dot.
    Domain { name: String, port: Option<u16> },
    /// An address range: `prefix` leading bits of `addr`.
    Ip {
        addr: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
}

/// The hosts to reach without a proxy: a parsed `no_proxy` list. See [`EnvProxyFactory`] for
/// the syntax.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxyRules {
    all: bool,
    rules: Vec<Rule>,
}

impl NoProxyRules {
    /// Parses a `no_proxy` value. Invalid entries are skipped.
    pub fn parse(value: &str) -> NoProxyRules {
        let mut out = NoProxyRules::default();
        for entry in value.split(|c: char| c == ',' || c.is_whitespace()) {
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                out.all = true;
            } else if let Some(rule) = parse_rule(entry) {
                out.rules.push(rule);
            }
        }
        out
    }

    /// True when no entry was given (no host bypasses the proxy).
    pub fn is_empty(&self) -> bool {
        !self.all && self.rules.is_empty()
    }

    /// True when the list has the `*` entry.
    pub fn matches_all(&self) -> bool {
        self.all
    }

    /// True when a request to `url` goes direct. URLs without a host never match (except with
    /// `*`).
    pub fn matches(&self, url: &Url) -> bool {
        if self.all {
            return true;
        }
        let Some(host) = url.host() else {
            return false;
        };
        let port = url.port_or_known_default();
        match host {
            Host::Domain(d) => self.matches_host(d, port),
            Host::Ipv4(ip) => self.matches_ip(IpAddr::V4(ip), port),
            Host::Ipv6(ip) => self.matches_ip(IpAddr::V6(ip), port),
        }
    }

    /// True when a request to `host` (a name, an IP address, or an IPv6 address in brackets)
    /// on `port` goes direct.
    pub fn matches_host(&self, host: &str, port: Option<u16>) -> bool {
        if self.all {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.matches_ip(ip, port);
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.rules.iter().any(|rule| match rule {
            Rule::Domain { name, port: p } => {
                port_ok(*p, port)
                    && (host == *name
                        || (host.len() > name.len()
                            && host.ends_with(name.as_str())
                            && host.as_bytes()[host.len() - name.len() - 1] == b'.'))
            }
            Rule::Ip { .. } => false,
        })
    }

    fn matches_ip(&self, ip: IpAddr, port: Option<u16>) -> bool {
        self.all
            || self.rules.iter().any(|rule| match rule {
                Rule::Ip {
                    addr,
                    prefix,
                    port: p,
                } => port_ok(*p, port) && in_range(ip, *addr, *prefix),
                Rule::Domain { .. } => false,
            })
    }
}

impl FromStr for NoProxyRules {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<NoProxyRules, Self::Err> {
        Ok(NoProxyRules::parse(s))
    }
}

fn port_ok(rule: Option<u16>, port: Option<u16>) -> bool {
    rule.is_none() || rule == port
}

fn in_range(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

fn parse_rule(entry: &str) -> Option<Rule> {
    // CIDR: addr/len (IPv6 optionally in brackets).
    if let Some((addr, len)) = entry.split_once('/') {
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = len.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        return Some(Rule::Ip {
            addr,
            prefix,
            port: None,
        });
    }
    let (host, port) = split_host_port(entry)?;
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p)?),
    };
    if let Ok(addr) = host.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Some(Rule::Ip { addr, prefix, port });
    }
    let name = host
        .strip_prefix("*.")
        .or_else(|| host.strip_prefix('.'))
        .unwrap_or(host)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return None;
    }
    Some(Rule::Domain { name, port })
}

/// The system proxy factory of Unix-like systems: proxies from `http_proxy`, `https_proxy`,
/// `all_proxy` and `no_proxy` (and their upper-case forms).
///
/// # The environment
///
/// [`EnvProxyFactory`] reads, for each variable, the lower-case name and then the upper-case
/// one; a lower-case variable that is set wins, even when it is empty (as curl):
///
/// | URL scheme           | variables, in order                                   |
/// |----------------------|-------------------------------------------------------|
/// | `http`, `ws`         | `http_proxy`, `HTTP_PROXY`, then `all_proxy`, `ALL_PROXY` |
/// | `https`, `wss`       | `https_proxy`, `HTTPS_PROXY`, then `all_proxy`, `ALL_PROXY` |
/// | other schemes with a host | `all_proxy`, `ALL_PROXY`                         |
///
/// An empty value means "no proxy from this variable". Values are proxy URLs
/// ([`Proxy::parse`]): `[http://][user:password@]host[:port]` (port 8080 when absent, as Qt),
/// `socks5://host[:port]` (local DNS, port 1080), `socks5h://host[:port]` (the proxy resolves
/// names). User and password are percent-decoded. A value that does not parse is ignored.
///
/// `HTTP_PROXY` (upper case) is ignored when `REQUEST_METHOD` is set: in a CGI program every
/// request header becomes an `HTTP_*` variable, so a client could choose the proxy with a
/// `Proxy:` header ("httpoxy").
///
/// `no_proxy` / `NO_PROXY` ([`NoProxyRules`]) lists hosts reached directly. Entries are
/// separated by commas and/or white space:
///
/// | entry                          | matches                                                  |
/// |--------------------------------|----------------------------------------------------------|
/// | `example.com`                  | `example.com` and `a.example.com`, not `badexample.com`  |
/// | `.example.com`, `*.example.com`| the same (the leading `.` or `*.` is only a spelling)    |
/// | `*`                            | every host: no proxy at all                              |
/// | `192.168.1.10`, `::1`, `[::1]` | that IP address (in the URL, no DNS look-up is done)     |
/// | `10.0.0.0/8`, `fd00::/8`       | IP addresses in that CIDR range                          |
/// | `example.com:8080`, `10.1.2.3:80`, `[::1]:8443` | only on that port (the URL's port, or its scheme's default) |
///
/// Host names are compared without regard to case and to a trailing dot. Entries that are
/// none of these (`*foo`, `a/b`, `10.0.0.0/33`) are ignored.
///
/// ## Differences from Qt
///
/// Qt's generic Unix factory (`QNetworkProxyFactory::systemProxyForQuery`) reads only the
/// lower-case variables, and matches `no_proxy` entries as plain suffixes of the host name
/// (so `example.com` may also match `badexample.com`), with no IP ranges and no ports. Here the
/// upper-case forms are read too, suffixes match only at a dot boundary, and CIDR ranges and
/// ports are understood.
///
/// ## Differences from curl
///
/// * curl never reads `HTTP_PROXY` (upper case); here it is read except under CGI.
/// * curl's `*` disables proxies only when it is the whole `no_proxy` value; here any `*`
///   entry does. curl knows no `*.example.com` spelling and no per-port entries (an entry
///   matches every port); here `*.` is accepted and `host:port` restricts the entry to a port.
/// * curl takes IPv6 entries without brackets only; both spellings work here.
/// * A proxy URL without a port means port 1080 in curl; here 8080 for HTTP (as Qt) and 1080
///   for SOCKS5. Only `http`, `socks5` and `socks5h` proxy URLs are supported (no `https://`
///   proxies, no SOCKS4).
/// * Like curl and Qt (and unlike Go), `localhost` and loopback addresses are not exempt unless
///   listed.
///
/// The environment is read once, by [`from_env`](Self::from_env); build a new factory to see
/// later changes.
#[doc(alias = "systemProxyForQuery")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvProxyFactory {
    http: Option<Proxy>,
    https: Option<Proxy>,
    all: Option<Proxy>,
    no_proxy: NoProxyRules,
}

impl EnvProxyFactory {
    /// A factory from this process's environment (variables that are not valid Unicode are
    /// skipped).
    pub fn from_env() -> EnvProxyFactory {
        EnvProxyFactory::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// A factory from the given `(name, value)` pairs, as if they were the environment (later
    /// pairs replace earlier ones of the same name). Other names are ignored.
    pub fn from_vars<I, K, V>(vars: I) -> EnvProxyFactory
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        let cgi = vars.contains_key("REQUEST_METHOD");
        let get = |lower: &str, upper: &str, allow_upper: bool| -> Option<String> {
            let value = match vars.get(lower) {
                Some(v) => v,
                None if allow_upper => vars.get(upper)?,
                None => return None,
            };
            let value = value.trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        let proxy = |lower: &str, upper: &str, allow_upper: bool| {
            let value = get(lower, upper, allow_upper)?;
            match Proxy::parse(&value) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!("ignoring {lower}: {e}");
                    None
                }
            }
        };
        EnvProxyFactory {
            http: proxy("http_proxy", "HTTP_PROXY", !cgi),
            https: proxy("https_proxy", "HTTPS_PROXY", true),
            all: proxy("all_proxy", "ALL_PROXY", true),
            no_proxy: get("no_proxy", "NO_PROXY", true)
                .map(|v| NoProxyRules::parse(&v))
                .unwrap_or_default(),
        }
    }

    /// The proxy for `http` URLs (`http_proxy`), if set.
    pub fn http_proxy(&self) -> Option<&Proxy> {
        self.http.as_ref()
    }

    /// The proxy for `https` URLs (`https_proxy`), if set.
    pub fn https_proxy(&self) -> Option<&Proxy> {
        self.https.as_ref()
    }

    /// The fallback proxy (`all_proxy`), if set.
    pub fn all_proxy(&self) -> Option<&Proxy> {
        self.all.as_ref()
    }

    /// The `no_proxy` rules.
    pub fn no_proxy(&self) -> &NoProxyRules {
        &self.no_proxy
    }

    /// With other `no_proxy` rules (a `--no-proxy` option overriding the environment).
    pub fn with_no_proxy(mut self, rules: NoProxyRules) -> EnvProxyFactory {
        self.no_proxy = rules;
        self
    }

    /// The proxy for `url`, or `None` for a direct connection.
    pub fn proxy_for(&self, url: &Url) -> Option<&Proxy> {
        if url.host().is_none() || self.no_proxy.matches(url) {
            return None;
        }
        let specific = match url.scheme() {
            "http" | "ws" => self.http.as_ref(),
            "https" | "wss" => self.https.as_ref(),
            _ => None,
        };
        specific.or(self.all.as_ref())
    }
}

impl ProxyFactory for EnvProxyFactory {
    /// One proxy, or [`Proxy::no_proxy`] for a direct connection; never empty.
    fn query(&self, url: &Url) -> Vec<Proxy> {
        vec![self.proxy_for(url).cloned().unwrap_or_else(Proxy::no_proxy)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parse_proxy_urls() {
        let p = Proxy::parse("http://user:p%40ss%3Aw@Proxy.Example:3128/").unwrap();
        assert_eq!(p.kind(), ProxyKind::HttpProxy);
        assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
        assert_eq!((p.user(), p.password()), ("user", "p@ss:w"));
        assert!(!p.remote_dns());

        let p = Proxy::parse("proxy.example").unwrap();
        assert_eq!((p.kind(), p.port()), (ProxyKind::HttpProxy, 8080));
        let p = Proxy::parse("proxy:80").unwrap();
        assert_eq!(p.port(), 80, "an explicit default port is kept");
        let p = Proxy::parse("HTTP://proxy:").unwrap();
        assert_eq!(p.port(), 8080);

        let p = Proxy::parse("socks5://u@[::1]:1081").unwrap();
        assert_eq!(p.kind(), ProxyKind::Socks5Proxy);
        assert_eq!(
            (p.host(), p.port(), p.user(), p.password()),
            ("::1", 1081, "u", "")
        );
        assert!(!p.remote_dns(), "socks5: local DNS");
        let p = Proxy::parse("socks5h://10.0.0.1").unwrap();
        assert_eq!((p.host(), p.port()), ("10.0.0.1", 1080));
        assert!(p.remote_dns(), "socks5h: remote DNS");
        let p = Proxy::parse("[fe80::1]").unwrap();
        assert_eq!((p.host(), p.port()), ("fe80::1", 8080));
        // The last @ separates the userinfo.
        let p = Proxy::parse("http://a@b:c@h:1").unwrap();
        assert_eq!((p.user(), p.password(), p.host()), ("a@b", "c", "h"));
        assert_eq!("  http://h:2  ".parse::<Proxy>().unwrap().port(), 2);

        assert_eq!(
            Proxy::parse("https://h:1"),
            Err(ProxyParseError::UnsupportedScheme("https".into()))
        );
        assert!(matches!(
            Proxy::parse("socks4://h"),
            Err(ProxyParseError::UnsupportedScheme(_))
        ));
        assert_eq!(Proxy::parse("http://"), Err(ProxyParseError::MissingHost));
        assert_eq!(
            Proxy::parse("http://u:p@:1"),
            Err(ProxyParseError::MissingHost)
        );
        assert_eq!(Proxy::parse("[::1"), Err(ProxyParseError::MissingHost));
        assert_eq!(
            Proxy::parse("h:0"),
            Err(ProxyParseError::InvalidPort("0".into()))
        );
        assert_eq!(
            Proxy::parse("h:99999"),
            Err(ProxyParseError::InvalidPort("99999".into()))
        );
        assert_eq!(
            Proxy::parse("h:x"),
            Err(ProxyParseError::InvalidPort("x".into()))
        );
        assert!(!ProxyParseError::MissingHost.to_string().is_empty());
    }

    #[test]
    fn proxy_hosts_are_validated_cve_2022_27780() {
        for bad in [
            "http://127.0.0.1%2F.evil.test:3128",
            "http://h%2fpath",
            "http://a b:1",
            "http://h<x>",
            "http://1:2:3",
        ] {
            assert!(
                matches!(Proxy::parse(bad), Err(ProxyParseError::InvalidHost(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Proxy::parse("http://127.0.0.%31:1").unwrap().host(),
            "127.0.0.1"
        );
        assert_eq!(Proxy::parse("http://::1").unwrap().host(), "::1");
        assert!(ProxyParseError::InvalidHost("x".into())
            .to_string()
            .contains("x"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%e2%82%ac"), "a b\u{20ac}");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%+1"), "%+1");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn proxy_values() {
        let p = Proxy::http("h", 1)
            .with_credentials("u", "secret")
            .with_header(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("1"),
            );
        assert_eq!(p.headers()["x-a"], "1");
        let dbg = format!("{p:?}");
        assert!(
            dbg.contains("<redacted>") && !dbg.contains("secret"),
            "{dbg}"
        );
        assert!(Proxy::socks5("h", 1).remote_dns());
        assert!(!Proxy::socks5("h", 1).with_remote_dns(false).remote_dns());
        assert_eq!(Proxy::default().kind(), ProxyKind::DefaultProxy);
        assert_eq!(Proxy::no_proxy().kind(), ProxyKind::NoProxy);

        let mut q = p.clone();
        assert_eq!(p, q);
        q.set_password("other");
        assert_ne!(p, q);
        q.set_password("secret");
        q.headers_mut().clear();
        assert_ne!(p, q, "headers are compared");
        let hash = |p: &Proxy| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            p.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&p), hash(&p.clone()));
        let mut u = q.clone();
        u.set_user("v");
        assert_eq!(u.user(), "v");

        let http = url("http://x/");
        let https = url("https://x/");
        assert!(Proxy::http("h", 1).can_carry(&https));
        assert!(Proxy::new(ProxyKind::HttpCachingProxy, "h", 1).can_carry(&http));
        assert!(!Proxy::new(ProxyKind::HttpCachingProxy, "h", 1).can_carry(&https));
        assert!(!Proxy::no_proxy().can_carry(&http));
        assert!(!Proxy::default().can_carry(&http));
        assert!(Proxy::socks5("h", 1).can_carry(&https));
    }

    #[test]
    fn factories() {
        let fixed = Proxy::http("h", 1);
        assert_eq!(fixed.query(&url("http://x/")), std::slice::from_ref(&fixed));
        let closure = |u: &Url| {
            if u.scheme() == "https" {
                vec![Proxy::socks5("s", 2), Proxy::no_proxy()]
            } else {
                vec![]
            }
        };
        let boxed: Box<dyn ProxyFactory> = Box::new(closure);
        assert_eq!(boxed.query(&url("https://x/")).len(), 2);
        assert!(boxed.query(&url("http://x/")).is_empty());
    }

    /// (no_proxy value, URL, expected bypass)
    const NO_PROXY_TABLE: &[(&str, &str, bool)] = &[
        // Host suffix at a dot boundary.
        ("example.com", "http://example.com/", true),
        ("example.com", "http://a.example.com/", true),
        ("example.com", "http://a.b.example.com:8080/", true),
        ("example.com", "http://badexample.com/", false),
        ("example.com", "http://example.com.evil/", false),
        ("example.com", "http://com/", false),
        // Case and trailing dots.
        ("Example.COM.", "http://WWW.example.com./", true),
        // Leading dot and "*." are spellings of the same rule.
        (".example.com", "http://example.com/", true),
        (".example.com", "http://a.example.com/", true),
        (".example.com", "http://badexample.com/", false),
        ("*.example.com", "http://example.com/", true),
        ("*.example.com", "http://a.example.com/", true),
        ("*.example.com", "http://badexample.com/", false),
        // Invalid wildcard forms are ignored.
        ("*example.com", "http://badexample.com/", false),
        ("*example.com", "http://example.com/", false),
        // "*" alone, anywhere in the list.
        ("*", "http://anything.test/", true),
        ("*", "https://10.0.0.1:9/", true),
        ("foo.test, *", "http://bar.test/", true),
        ("*foo", "http://bar/", false),
        // Separators: commas and/or white space.
        ("a.test,b.test", "http://b.test/", true),
        ("a.test b.test", "http://b.test/", true),
        (" a.test ,\tb.test\n, ,", "http://b.test/", true),
        ("a.test,b.test", "http://c.test/", false),
        ("", "http://a.test/", false),
        // IP addresses.
        ("127.0.0.1", "http://127.0.0.1:3000/", true),
        ("127.0.0.1", "http://127.0.0.2/", false),
        ("127.0.0.1", "http://localhost/", false),
        ("localhost", "http://localhost:8080/", true),
        ("localhost", "http://127.0.0.1/", false),
        ("::1", "http://[::1]/", true),
        ("[::1]", "http://[::1]:81/", true),
        ("0:0:0:0:0:0:0:1", "http://[::1]/", true),
        ("::1", "http://[::2]/", false),
        ("::1", "http://127.0.0.1/", false),
        // An IP entry is not a host-name suffix.
        ("0.0.1", "http://127.0.0.1/", false),
        // CIDR ranges, v4 and v6.
        ("10.0.0.0/8", "http://10.200.3.4/", true),
        ("10.0.0.0/8", "http://11.0.0.1/", false),
        ("192.168.1.0/24", "http://192.168.1.255/", true),
        ("192.168.1.0/24", "http://192.168.2.1/", false),
        ("192.168.1.77/24", "http://192.168.1.1/", true),
        ("0.0.0.0/0", "http://8.8.8.8/", true),
        ("0.0.0.0/0", "http://[::1]/", false),
        ("10.1.2.3/32", "http://10.1.2.3/", true),
        ("10.1.2.3/32", "http://10.1.2.4/", false),
        ("fd00::/8", "http://[fd12:3456::1]/", true),
        ("fd00::/8", "http://[fe80::1]/", false),
        ("[2001:db8::]/32", "http://[2001:db8:1::5]/", true),
        ("::/0", "http://[2001:db8::1]/", true),
        ("::/0", "http://10.0.0.1/", false),
        ("10.0.0.0/33", "http://10.0.0.1/", false),
        ("10.0.0.0/x", "http://10.0.0.1/", false),
        // Ranges do not resolve names.
        ("10.0.0.0/8", "http://intranet/", false),
        // Ports: the URL's port or its scheme's default.
        ("example.com:8080", "http://example.com:8080/", true),
        ("example.com:8080", "http://a.example.com:8080/", true),
        ("example.com:8080", "http://example.com/", false),
        ("example.com:80", "http://example.com/", true),
        ("example.com:443", "https://example.com/", true),
        ("example.com:443", "http://example.com/", false),
        ("10.1.2.3:80", "http://10.1.2.3/", true),
        ("10.1.2.3:80", "http://10.1.2.3:81/", false),
        ("[::1]:8443", "https://[::1]:8443/", true),
        ("[::1]:8443", "https://[::1]/", false),
        ("example.com:0", "http://example.com/", false),
        ("example.com:x", "http://example.com/", false),
        // URLs without a host.
        ("example.com", "data:,hello", false),
    ];

    #[test]
    fn no_proxy_rules_table() {
        for &(rules, u, expected) in NO_PROXY_TABLE {
            let parsed = NoProxyRules::parse(rules);
            assert_eq!(
                parsed.matches(&url(u)),
                expected,
                "no_proxy={rules:?} url={u}"
            );
        }
    }

    #[test]
    fn no_proxy_matches_host() {
        let rules: NoProxyRules = "example.com, 10.0.0.0/8, [::1]:99".parse().unwrap();
        assert!(rules.matches_host("a.example.com", None));
        assert!(rules.matches_host("10.2.3.4", Some(1)));
        assert!(rules.matches_host("[::1]", Some(99)));
        assert!(!rules.matches_host("::1", Some(98)));
        assert!(!rules.is_empty() && !rules.matches_all());
        assert!(NoProxyRules::parse(" , ").is_empty());
        assert!(NoProxyRules::parse("*").matches_all());
    }

    fn factory(vars: &[(&str, &str)]) -> EnvProxyFactory {
        EnvProxyFactory::from_vars(vars.iter().copied())
    }

    fn chosen(f: &EnvProxyFactory, u: &str) -> Option<String> {
        let proxies = f.query(&url(u));
        assert_eq!(proxies.len(), 1);
        let p = &proxies[0];
        (p.kind() != ProxyKind::NoProxy).then(|| format!("{}:{}", p.host(), p.port()))
    }

    #[test]
    fn env_scheme_routing() {
        let f = factory(&[
            ("http_proxy", "http://hp:1"),
            ("https_proxy", "hsp:2"),
            ("all_proxy", "socks5h://ap:3"),
        ]);
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("hp:1"));
        assert_eq!(chosen(&f, "ws://x/").as_deref(), Some("hp:1"));
        assert_eq!(chosen(&f, "https://x/").as_deref(), Some("hsp:2"));
        assert_eq!(chosen(&f, "wss://x/").as_deref(), Some("hsp:2"));
        assert_eq!(chosen(&f, "ftp://x/").as_deref(), Some("ap:3"));
        assert_eq!(chosen(&f, "data:,x"), None);
        assert_eq!(chosen(&f, "file:///etc/hosts"), None);

        // all_proxy is the fallback for http and https too.
        let f = factory(&[("ALL_PROXY", "socks5://ap:3")]);
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("ap:3"));
        assert_eq!(chosen(&f, "https://x/").as_deref(), Some("ap:3"));
        assert!(!f.all_proxy().unwrap().remote_dns());
        assert!(f.http_proxy().is_none() && f.https_proxy().is_none());

        // Nothing set: direct.
        let f = factory(&[("PATH", "/bin")]);
        assert_eq!(chosen(&f, "http://x/"), None);
        assert_eq!(f, EnvProxyFactory::default());
    }

    #[test]
    fn env_lower_case_wins() {
        let f = factory(&[("HTTP_PROXY", "upper:1"), ("http_proxy", "lower:2")]);
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("lower:2"));
        let f = factory(&[("https_proxy", "lower:2"), ("HTTPS_PROXY", "upper:1")]);
        assert_eq!(chosen(&f, "https://x/").as_deref(), Some("lower:2"));
        // Upper case alone is read.
        let f = factory(&[("HTTPS_PROXY", "upper:1")]);
        assert_eq!(chosen(&f, "https://x/").as_deref(), Some("upper:1"));
        let f = factory(&[("HTTP_PROXY", "upper:1")]);
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("upper:1"));
        // A set but empty lower-case variable hides the upper-case one, and falls back to
        // all_proxy.
        let f = factory(&[
            ("http_proxy", ""),
            ("HTTP_PROXY", "upper:1"),
            ("all_proxy", "all:3"),
        ]);
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("all:3"));
        let f = factory(&[("no_proxy", ""), ("NO_PROXY", "x"), ("http_proxy", "p:1")]);
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("p:1"));
        // Later pairs replace earlier ones.
        let f = factory(&[("http_proxy", "a:1"), ("http_proxy", "b:2")]);
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("b:2"));
    }

    #[test]
    fn env_cgi_ignores_upper_case_http_proxy() {
        let f = factory(&[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "evil:1")]);
        assert_eq!(chosen(&f, "http://x/"), None);
        let f = factory(&[("REQUEST_METHOD", "GET"), ("http_proxy", "good:1")]);
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("good:1"));
        let f = factory(&[("REQUEST_METHOD", "GET"), ("HTTPS_PROXY", "ok:1")]);
        assert_eq!(chosen(&f, "https://x/").as_deref(), Some("ok:1"));
    }

    #[test]
    fn env_proxy_urls_and_invalid_values() {
        let f = factory(&[
            ("http_proxy", "http://u%3A1:p%20w@h:1"),
            ("https_proxy", "https://tls-proxy:443"),
            ("all_proxy", "socks5h://[::1]"),
        ]);
        let p = f.http_proxy().unwrap();
        assert_eq!((p.user(), p.password()), ("u:1", "p w"));
        // An unsupported https:// proxy is ignored: all_proxy applies.
        assert!(f.https_proxy().is_none());
        let all = f.all_proxy().unwrap();
        assert_eq!(
            (all.host(), all.port(), all.remote_dns()),
            ("::1", 1080, true)
        );
        assert_eq!(chosen(&f, "https://x/").as_deref(), Some("::1:1080"));
    }

    #[test]
    fn env_no_proxy() {
        let f = factory(&[
            ("http_proxy", "p:1"),
            ("https_proxy", "p:2"),
            ("NO_PROXY", "internal.test, 10.0.0.0/8 .corp.test:8080"),
        ]);
        assert_eq!(chosen(&f, "http://internal.test/"), None);
        assert_eq!(chosen(&f, "https://a.internal.test/"), None);
        assert_eq!(chosen(&f, "http://10.9.9.9/"), None);
        assert_eq!(chosen(&f, "http://x.corp.test:8080/"), None);
        assert_eq!(chosen(&f, "http://x.corp.test/").as_deref(), Some("p:1"));
        assert_eq!(chosen(&f, "https://public.test/").as_deref(), Some("p:2"));
        assert_eq!(
            chosen(&f, "http://notinternal.test/").as_deref(),
            Some("p:1")
        );

        let f = factory(&[("all_proxy", "p:1"), ("no_proxy", "*")]);
        assert_eq!(chosen(&f, "http://x/"), None);
        // A --no-proxy override.
        let f = f.with_no_proxy(NoProxyRules::parse("y"));
        assert_eq!(chosen(&f, "http://x/").as_deref(), Some("p:1"));
        assert_eq!(chosen(&f, "http://y/"), None);
        assert!(!f.no_proxy().matches_all());
    }

    #[test]
    fn from_env_reads_the_process_environment() {
        // Only checks that it runs; the rules are tested through from_vars.
        let _ = EnvProxyFactory::from_env();
    }
}
