//! HTTP Strict Transport Security (RFC 6797): [`HstsPolicy`] (QHstsPolicy) and the
//! thread-safe [`HstsStore`] the manager consults before it opens a socket. Its files and
//! preload lists are in `persist` (cargo feature `hsts`).

#[cfg(feature = "hsts")]
mod persist;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use url::{Host, Url};

/// One HSTS policy (QHstsPolicy): requests to `host` (and its subdomains with
/// `include_subdomains`) go over https until `expiry`.
#[doc(alias = "QHstsPolicy")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HstsPolicy {
    /// The host name, lowercase ASCII (IDNA), without a trailing dot.
    pub host: String,
    /// When the policy ends; `None` for a policy that never expires (preloaded ones).
    pub expiry: Option<SystemTime>,
    /// Whether the policy covers every subdomain of `host` (Qt's `includesSubDomains`).
    #[doc(alias = "includesSubDomains")]
    pub include_subdomains: bool,
}

impl HstsPolicy {
    /// A policy for `host`, normalized (lowercase, IDNA, no trailing dot).
    pub fn new(host: &str, expiry: Option<SystemTime>, include_subdomains: bool) -> HstsPolicy {
        HstsPolicy {
            host: normalize_host(host).unwrap_or_else(|| host.to_ascii_lowercase()),
            expiry,
            include_subdomains,
        }
    }

    /// True when the policy has an expiry time that has passed (Qt's `isExpired`).
    #[doc(alias = "isExpired")]
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(SystemTime::now())
    }

    fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expiry.is_some_and(|t| t <= now)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Learned from headers or added; saved by `save`.
    dynamic: HashMap<String, HstsPolicy>,
    /// From `load_preload_list`: never expire, not deleted by `max-age=0`, not saved.
    preload: HashMap<String, bool>,
    /// The file this store last loaded or saved, and the policies it held then (the base of
    /// the three-way merge of the next save).
    #[cfg(feature = "hsts")]
    synced: Option<(std::path::PathBuf, HashMap<String, HstsPolicy>)>,
}

/// The set of known HSTS hosts (the store behind Qt's `strictTransportSecurityHosts` and
/// `enableStrictTransportSecurityStore`), safe to share between threads.
///
/// Policies come from `Strict-Transport-Security` headers
/// ([`process_header`](Self::process_header)), from [`add_policies`](Self::add_policies), from
/// a file ([`load`](Self::load)) or from a preload list
/// ([`load_preload_list`](Self::load_preload_list)). Expired policies are ignored and
/// dropped.
#[doc(alias = "QHstsCache")]
#[derive(Debug, Default)]
pub struct HstsStore {
    inner: Mutex<Inner>,
}

/// Longest policy kept: max-age values beyond it are capped (about 100 years).
const MAX_AGE_CAP: u64 = 100 * 366 * 86_400;

/// Keeps at most [`HstsStore::MAX_POLICIES`] policies: the ones that end soonest go first
/// (a policy without an end counts as the latest).
fn enforce_cap(dynamic: &mut HashMap<String, HstsPolicy>) {
    let excess = dynamic.len().saturating_sub(HstsStore::MAX_POLICIES);
    if excess == 0 {
        return;
    }
    let mut by_end: Vec<(Option<SystemTime>, String)> = dynamic
        .values()
        .map(|p| (p.expiry, p.host.clone()))
        .collect();
    // `None` (never ends) sorts first as an Option: put it last instead.
    by_end.sort_by_key(|(expiry, host)| (expiry.is_none(), *expiry, host.clone()));
    for (_, host) in by_end.into_iter().take(excess) {
        dynamic.remove(&host);
    }
}

impl HstsStore {
    /// Most policies learned or added that a store keeps (a server with a wildcard
    /// certificate could otherwise make it grow without bound, one subdomain at a time); past
    /// it, the policies that end soonest are dropped. Preloaded hosts do not count.
    pub const MAX_POLICIES: usize = 10_000;

    /// An empty store.
    pub fn new() -> HstsStore {
        HstsStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Processes the first `Strict-Transport-Security` header value of a response for `url`
    /// (RFC 6797 §8.1). It is honoured only over https and only from a host name (not an IP
    /// literal). The value must parse as §6.1 says: `max-age` required (a number, quoted or
    /// not), `includeSubDomains` without a value, each directive at most once, unknown
    /// directives ignored. `max-age=0` deletes the host's policy. Returns true when the header
    /// was valid and applied.
    pub fn process_header(&self, url: &Url, value: &str) -> bool {
        self.process_header_at(url, value, SystemTime::now())
    }

    fn process_header_at(&self, url: &Url, value: &str, now: SystemTime) -> bool {
        if url.scheme() != "https" {
            return false;
        }
        let Some(Host::Domain(host)) = url.host() else {
            return false;
        };
        let Some(host) = normalize_host(host) else {
            return false;
        };
        let Some(directives) = parse_sts(value) else {
            return false;
        };
        let mut inner = self.lock();
        if directives.max_age == 0 {
            inner.dynamic.remove(&host);
        } else {
            let secs = directives.max_age.min(MAX_AGE_CAP);
            let expiry = now.checked_add(Duration::from_secs(secs)).unwrap_or(now);
            inner.dynamic.insert(
                host.clone(),
                HstsPolicy {
                    host,
                    expiry: Some(expiry),
                    include_subdomains: directives.include_subdomains,
                },
            );
            enforce_cap(&mut inner.dynamic);
        }
        true
    }

    /// True when requests to `host` must use https: a policy for the host itself, or a policy
    /// with `include_subdomains` for one of its superdomains (RFC 6797 §8.2). IP literals are
    /// never known hosts. Qt's `QHstsCache::isKnownHost` takes a URL; pass `url.host_str()`.
    #[doc(alias = "isKnownHost")]
    pub fn is_known_host(&self, host: &str) -> bool {
        self.is_known_host_at(host, SystemTime::now())
    }

    fn is_known_host_at(&self, host: &str, now: SystemTime) -> bool {
        let Some(host) = normalize_host(host) else {
            return false;
        };
        let mut inner = self.lock();
        inner.dynamic.retain(|_, p| !p.is_expired_at(now));
        let mut name = host.as_str();
        let mut congruent = true;
        loop {
            if let Some(p) = inner.dynamic.get(name) {
                if congruent || p.include_subdomains {
                    return true;
                }
            }
            if let Some(&include_subdomains) = inner.preload.get(name) {
                if congruent || include_subdomains {
                    return true;
                }
            }
            match name.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => name = parent,
                _ => return false,
            }
            congruent = false;
        }
    }

    /// The https form of `url` when it is an `http` (or `ws`) URL to a known host, `None`
    /// otherwise (RFC 6797 §8.3): the scheme becomes `https` (`wss`), the default port 80
    /// becomes 443 and any other explicit port is kept.
    pub fn upgrade(&self, url: &Url) -> Option<Url> {
        self.upgrade_at(url, SystemTime::now())
    }

    fn upgrade_at(&self, url: &Url, now: SystemTime) -> Option<Url> {
        let secure_scheme = match url.scheme() {
            "http" => "https",
            "ws" => "wss",
            _ => return None,
        };
        let Some(Host::Domain(host)) = url.host() else {
            return None;
        };
        if !self.is_known_host_at(host, now) {
            return None;
        }
        let port = url.port();
        let mut upgraded = url.clone();
        upgraded.set_scheme(secure_scheme).ok()?;
        if port == Some(80) {
            upgraded.set_port(None).ok()?;
        }
        Some(upgraded)
    }

    /// Adds policies, replacing those for the same hosts (Qt's
    /// `addStrictTransportSecurityHosts`). An expired policy removes the host's policy.
    /// Policies for IP literals or empty hosts are ignored.
    #[doc(alias = "addStrictTransportSecurityHosts")]
    pub fn add_policies(&self, policies: impl IntoIterator<Item = HstsPolicy>) {
        let now = SystemTime::now();
        let mut inner = self.lock();
        for mut policy in policies {
            let Some(host) = normalize_host(&policy.host) else {
                continue;
            };
            if policy.is_expired_at(now) {
                inner.dynamic.remove(&host);
            } else {
                policy.host = host.clone();
                inner.dynamic.insert(host, policy);
                enforce_cap(&mut inner.dynamic);
            }
        }
    }

    /// The policies learned or added (not the preloaded ones), sorted by host, expired ones
    /// left out (Qt's `strictTransportSecurityHosts`).
    #[doc(alias = "strictTransportSecurityHosts")]
    pub fn policies(&self) -> Vec<HstsPolicy> {
        let now = SystemTime::now();
        let mut inner = self.lock();
        inner.dynamic.retain(|_, p| !p.is_expired_at(now));
        let mut out: Vec<HstsPolicy> = inner.dynamic.values().cloned().collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// The number of preloaded hosts.
    pub fn preloaded_len(&self) -> usize {
        self.lock().preload.len()
    }

    /// Removes every policy learned or added (preloaded hosts stay).
    pub fn clear(&self) {
        self.lock().dynamic.clear();
    }
}

/// A host name lowercased, IDNA-encoded and without its trailing dot; `None` for an IP
/// literal or something that is not a host name.
fn normalize_host(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
        return None;
    }
    // IDNA maps full-width and ideographic dots to '.', so a trailing one only shows after
    // parsing (CVE-2022-43551): strip it then too.
    match Host::parse(host).ok()? {
        Host::Domain(d) => {
            let d = d.strip_suffix('.').unwrap_or(&d);
            (!d.is_empty() && !d.ends_with('.')).then(|| d.to_owned())
        }
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StsDirectives {
    pub(crate) max_age: u64,
    pub(crate) include_subdomains: bool,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a `Strict-Transport-Security` value (RFC 6797 §6.1); `None` when it is invalid.
pub(crate) fn parse_sts(value: &str) -> Option<StsDirectives> {
    let s = value.as_bytes();
    let mut i = 0;
    let skip_ows = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t') {
            *i += 1;
        }
    };
    let mut max_age = None;
    let mut include_subdomains = false;
    let mut seen: Vec<String> = Vec::new();
    loop {
        skip_ows(&mut i);
        if i >= s.len() {
            break;
        }
        if s[i] == b';' {
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && is_tchar(s[i]) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let name = value[start..i].to_ascii_lowercase();
        skip_ows(&mut i);
        let mut directive_value = None;
        if i < s.len() && s[i] == b'=' {
            i += 1;
            skip_ows(&mut i);
            if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                loop {
                    match s.get(i) {
                        None => return None,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            v.push(*s.get(i + 1)?);
                            i += 2;
                        }
                        Some(&b) if b < 0x20 && b != b'\t' || b == 0x7F => return None,
                        Some(&b) => {
                            v.push(b);
                            i += 1;
                        }
                    }
                }
                directive_value = Some(String::from_utf8(v).ok()?);
            } else {
                let vstart = i;
                while i < s.len() && is_tchar(s[i]) {
                    i += 1;
                }
                if i == vstart {
                    return None;
                }
                directive_value = Some(value[vstart..i].to_owned());
            }
            skip_ows(&mut i);
        }
        if i < s.len() && s[i] != b';' {
            return None;
        }
        if seen.contains(&name) {
            return None;
        }
        match name.as_str() {
            "max-age" => {
                let v = directive_value?;
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                max_age = Some(v.parse::<u64>().unwrap_or(u64::MAX));
            }
            "includesubdomains" => {
                if directive_value.is_some() {
                    return None;
                }
                include_subdomains = true;
            }
            _ => {}
        }
        seen.push(name);
    }
    Some(StsDirectives {
        max_age: max_age?,
        include_subdomains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_directives() {
        let p = |v| parse_sts(v);
        let d = |max_age, include_subdomains| {
            Some(StsDirectives {
                max_age,
                include_subdomains,
            })
        };
        assert_eq!(p("max-age=31536000"), d(31_536_000, false));
        assert_eq!(p("max-age=\"31536000\""), d(31_536_000, false));
        assert_eq!(p("  Max-Age = 10 ;  includeSubDomains  "), d(10, true));
        assert_eq!(p("includeSubDomains; max-age=5; preload"), d(5, true));
        assert_eq!(p("max-age=5;;"), d(5, false));
        assert_eq!(p("max-age=5; ext=\"a;b\\\"c\""), d(5, false));
        assert_eq!(p("max-age=99999999999999999999999"), d(u64::MAX, false));
        // Invalid ones.
        for bad in [
            "",
            "includeSubDomains",
            "max-age",
            "max-age=",
            "max-age=-1",
            "max-age=1.5",
            "max-age=abc",
            "max-age=5; max-age=6",
            "max-age=5; includeSubDomains; INCLUDESUBDOMAINS",
            "max-age=5; includeSubDomains=yes",
            "max-age=5 6",
            "max-age=\"5",
            "max-age=5, includeSubDomains",
            "max-age=5; ext=\"unterminated",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_learned_over_https_upgrades_http() {
        let store = HstsStore::new();
        assert!(store.process_header(&url("https://example.test/"), "max-age=3600"));
        assert!(store.is_known_host("example.test"));
        assert!(store.is_known_host("EXAMPLE.test."));
        assert!(!store.is_known_host("sub.example.test"));
        let up = store.upgrade(&url("http://example.test/a?b#c")).unwrap();
        assert_eq!(up.as_str(), "https://example.test/a?b#c");
        let up = store.upgrade(&url("http://example.test:80/")).unwrap();
        assert_eq!(up.as_str(), "https://example.test/");
        assert_eq!(up.port_or_known_default(), Some(443));
        let up = store.upgrade(&url("http://example.test:8080/")).unwrap();
        assert_eq!(up.as_str(), "https://example.test:8080/");
        let up = store.upgrade(&url("ws://example.test/s")).unwrap();
        assert_eq!(up.as_str(), "wss://example.test/s");
        assert_eq!(store.upgrade(&url("https://example.test/")), None);
        assert_eq!(store.upgrade(&url("http://other.test/")), None);
        assert_eq!(store.upgrade(&url("http://sub.example.test/")), None);
    }

    #[test]
    fn include_subdomains() {
        let store = HstsStore::new();
        assert!(store.process_header(
            &url("https://example.test/"),
            "max-age=3600; includeSubDomains"
        ));
        assert!(store.is_known_host("a.b.example.test"));
        assert!(store.upgrade(&url("http://www.example.test/")).is_some());
        assert!(!store.is_known_host("notexample.test"));
        assert!(!store.is_known_host("test"));
    }

    #[test]
    fn ignored_headers() {
        let store = HstsStore::new();
        // Over http.
        assert!(!store.process_header(&url("http://example.test/"), "max-age=3600"));
        // From IP literals.
        assert!(!store.process_header(&url("https://127.0.0.1/"), "max-age=3600"));
        assert!(!store.process_header(&url("https://[::1]/"), "max-age=3600"));
        // Invalid values.
        assert!(!store.process_header(&url("https://example.test/"), "includeSubDomains"));
        assert!(store.policies().is_empty());
        assert!(!store.is_known_host("127.0.0.1"));
        assert_eq!(store.upgrade(&url("http://127.0.0.1/")), None);
    }

    #[test]
    fn max_age_zero_deletes() {
        let store = HstsStore::new();
        let u = url("https://example.test/");
        assert!(store.process_header(&u, "max-age=3600; includeSubDomains"));
        assert!(store.process_header(&url("https://a.example.test/"), "max-age=3600"));
        assert!(store.process_header(&u, "max-age=0"));
        assert!(!store.is_known_host("example.test"));
        // Only the host's own policy goes.
        assert!(store.is_known_host("a.example.test"));
        assert_eq!(store.policies().len(), 1);
    }

    #[test]
    fn the_number_of_policies_is_capped() {
        let store = HstsStore::new();
        let now = SystemTime::now();
        // The first policy never ends; the rest end one second apart, the earliest first.
        store.add_policies([HstsPolicy::new("forever.test", None, false)]);
        for i in 0..HstsStore::MAX_POLICIES + 5 {
            let u = url(&format!("https://h{i}.wild.test/"));
            assert!(store.process_header_at(&u, &format!("max-age={}", 1000 + i), now));
        }
        let policies = store.policies();
        assert_eq!(policies.len(), HstsStore::MAX_POLICIES);
        assert!(store.is_known_host("forever.test"));
        // The six that end soonest went.
        for i in 0..6 {
            assert!(!store.is_known_host(&format!("h{i}.wild.test")), "{i}");
        }
        assert!(store.is_known_host("h6.wild.test"));
    }

    #[test]
    fn later_header_replaces_policy() {
        let store = HstsStore::new();
        let u = url("https://example.test/");
        assert!(store.process_header(&u, "max-age=3600; includeSubDomains"));
        assert!(store.process_header(&u, "max-age=3600"));
        assert!(!store.is_known_host("a.example.test"));
    }

    #[test]
    fn expiry() {
        let store = HstsStore::new();
        let now = SystemTime::now();
        let u = url("https://example.test/");
        assert!(store.process_header_at(&u, "max-age=10; includeSubDomains", now));
        let later = now + Duration::from_secs(9);
        assert!(store.is_known_host_at("example.test", later));
        assert!(store.is_known_host_at("a.example.test", later));
        let expired = now + Duration::from_secs(10);
        assert!(!store.is_known_host_at("example.test", expired));
        assert!(store
            .upgrade_at(&url("http://example.test/"), expired)
            .is_none());
        // The expired policy is gone for good.
        assert!(!store.is_known_host_at("example.test", now));
        // An added, already expired policy removes one.
        store.add_policies([HstsPolicy::new("x.test", None, false)]);
        assert!(store.is_known_host("x.test"));
        store.add_policies([HstsPolicy::new("x.test", Some(now), false)]);
        assert!(!store.is_known_host("x.test"));
        assert!(HstsPolicy::new("a.test", Some(now), false).is_expired());
        assert!(!HstsPolicy::new("a.test", None, false).is_expired());
    }

    #[test]
    fn add_and_list_policies() {
        let store = HstsStore::new();
        let expiry = SystemTime::now() + Duration::from_secs(3600);
        store.add_policies([
            HstsPolicy::new("B.test.", Some(expiry), true),
            HstsPolicy::new("a.test", None, false),
            HstsPolicy::new("127.0.0.1", None, false),
            HstsPolicy::new("", None, false),
        ]);
        let policies = store.policies();
        assert_eq!(
            policies,
            vec![
                HstsPolicy {
                    host: "a.test".into(),
                    expiry: None,
                    include_subdomains: false
                },
                HstsPolicy {
                    host: "b.test".into(),
                    expiry: Some(expiry),
                    include_subdomains: true
                },
            ]
        );
        assert!(store.is_known_host("x.b.test"));
        store.clear();
        assert!(store.policies().is_empty());
    }
}
