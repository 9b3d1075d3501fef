//! The environment's proxies: [`EnvProxyFactory`] (`http_proxy`, `https_proxy`, `all_proxy`)
//! and [`NoProxyRules`] (`no_proxy`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use url::{Host, Url};

use super::{split_host_port, Proxy, ProxyFactory};

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
