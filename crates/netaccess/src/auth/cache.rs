//! Protection spaces and the credential cache.

use url::{Host, Url};

use super::{AuthState, AuthTarget, Authenticator};
use crate::proxy::{Proxy, ProxyKind};

/// A protection space (RFC 9110 §11.5): who asked (server or proxy), scheme, host, port and
/// realm. Credentials are cached per protection space.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtectionSpace {
    /// Server or proxy.
    pub target: AuthTarget,
    /// Lowercase scheme: the URL's (`http`, `https`) for a server, `http` or `socks5` for a
    /// proxy.
    pub scheme: String,
    /// Lowercase host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
    /// The realm (case-sensitive; `""` when the challenge has none).
    pub realm: String,
}

impl ProtectionSpace {
    /// The space of the origin server of `url` for `realm`. `None` for a URL without a host
    /// or known port.
    pub fn for_url(url: &Url, realm: &str) -> Option<ProtectionSpace> {
        let host = match url.host()? {
            Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        Some(ProtectionSpace {
            target: AuthTarget::Server,
            scheme: url.scheme().to_ascii_lowercase(),
            host,
            port: url.port_or_known_default()?,
            realm: realm.to_owned(),
        })
    }

    /// The space of `proxy` for `realm` (`""` for SOCKS5, which has no realms).
    pub fn for_proxy(proxy: &Proxy, realm: &str) -> ProtectionSpace {
        let scheme = match proxy.kind() {
            ProxyKind::Socks5Proxy => "socks5",
            _ => "http",
        };
        ProtectionSpace {
            target: AuthTarget::Proxy,
            scheme: scheme.to_owned(),
            host: proxy
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port: proxy.port(),
            realm: realm.to_owned(),
        }
    }

    fn same_origin(&self, other: &ProtectionSpace) -> bool {
        self.target == other.target
            && self.scheme == other.scheme
            && self.host == other.host
            && self.port == other.port
    }
}

/// One entry of a [`CredentialCache`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedCredentials {
    /// The protection space.
    pub space: ProtectionSpace,
    /// The path prefix the credentials were first used for: the directory of the request
    /// path (`/dir/` for `/dir/index.html`); `/` for proxies.
    pub path: String,
    /// The credentials.
    pub authenticator: Authenticator,
    /// The challenge answered, Digest nonce and count: what pre-emptive requests need.
    pub state: AuthState,
}

/// Credentials that worked, per protection space (Qt's authentication cache), with
/// "closest path" lookup for pre-emptive use: a request is sent credentials that were used
/// for the longest directory that prefixes its path (RFC 7617 §2.2).
///
/// Not synchronized: the manager keeps it behind a mutex.
#[doc(alias = "QNetworkAuthenticationCache")]
#[derive(Clone, Debug, Default)]
pub struct CredentialCache {
    /// Most recently inserted last.
    entries: Vec<CachedCredentials>,
}

/// The directory of `path`: up to and including its last `/` (`/` when there is none).
fn directory(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    match path.rfind('/') {
        Some(i) => path[..=i].to_owned(),
        None => "/".to_owned(),
    }
}

fn path_for(space: &ProtectionSpace, path: &str) -> String {
    match space.target {
        AuthTarget::Proxy => "/".to_owned(),
        AuthTarget::Server => directory(path),
    }
}

impl CredentialCache {
    /// An empty cache.
    pub fn new() -> CredentialCache {
        CredentialCache::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Stores credentials that worked for a request to `path` (the URL's path; its directory
    /// is kept) in `space`, replacing an entry for the same space and directory, and updates
    /// the credentials of the other entries of the space (one realm, one password).
    pub fn insert(
        &mut self,
        space: ProtectionSpace,
        path: &str,
        authenticator: Authenticator,
        state: AuthState,
    ) {
        let path = path_for(&space, path);
        self.entries
            .retain(|e| !(e.space == space && e.path == path));
        for e in self.entries.iter_mut().filter(|e| e.space == space) {
            e.authenticator = authenticator.clone();
        }
        self.entries.push(CachedCredentials {
            space,
            path,
            authenticator,
            state,
        });
    }

    fn best(&self, matches: impl Fn(&CachedCredentials) -> bool, path: &str) -> Option<usize> {
        // Longest prefix; among equals, the most recent (entries are in insertion order).
        let mut best: Option<usize> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if !matches(e) {
                continue;
            }
            let fits = e.space.target == AuthTarget::Proxy || path.starts_with(&e.path);
            if fits && best.is_none_or(|b| e.path.len() >= self.entries[b].path.len()) {
                best = Some(i);
            }
        }
        best
    }

    fn lookup(&self, space: &ProtectionSpace, path: &str) -> Option<usize> {
        let path = if path.is_empty() { "/" } else { path };
        self.best(|e| e.space == *space, path).or_else(|| {
            // The realm identifies the space (RFC 9110 §11.5): any path of it will do.
            self.entries.iter().rposition(|e| e.space == *space)
        })
    }

    /// The credentials for `space` (realm included), answering a challenge: the entry whose
    /// directory is the closest prefix of `path`, else the most recent entry of the space.
    pub fn get(&self, space: &ProtectionSpace, path: &str) -> Option<&CachedCredentials> {
        self.lookup(space, path).map(|i| &self.entries[i])
    }

    /// [`get`](Self::get), mutable (to advance the entry's [`AuthState`]).
    pub fn get_mut(
        &mut self,
        space: &ProtectionSpace,
        path: &str,
    ) -> Option<&mut CachedCredentials> {
        self.lookup(space, path).map(|i| &mut self.entries[i])
    }

    fn lookup_closest(&self, origin: &ProtectionSpace, path: &str) -> Option<usize> {
        let path = if path.is_empty() { "/" } else { path };
        self.best(|e| e.space.same_origin(origin), path)
    }

    /// Pre-emptive lookup before any challenge, when the realm is not known: among the
    /// entries of the same target, scheme, host and port as `origin` (whose realm is ignored),
    /// the one whose directory is the longest prefix of `path`. For proxies the path is
    /// ignored.
    pub fn closest(&self, origin: &ProtectionSpace, path: &str) -> Option<&CachedCredentials> {
        self.lookup_closest(origin, path).map(|i| &self.entries[i])
    }

    /// [`closest`](Self::closest), mutable: call [`AuthState::authorize`] on the result.
    pub fn closest_mut(
        &mut self,
        origin: &ProtectionSpace,
        path: &str,
    ) -> Option<&mut CachedCredentials> {
        self.lookup_closest(origin, path)
            .map(|i| &mut self.entries[i])
    }

    /// Forgets every entry of `space` (credentials that were refused). Returns how many.
    pub fn remove(&mut self, space: &ProtectionSpace) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| e.space != *space);
        before - self.entries.len()
    }

    /// Forgets everything (Qt's `clearAccessCache` also clears credentials).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn space(u: &str, realm: &str) -> ProtectionSpace {
        ProtectionSpace::for_url(&url(u), realm).unwrap()
    }

    fn who(user: &str) -> Authenticator {
        Authenticator::with_credentials(user, "pw")
    }

    #[test]
    fn protection_space_keys() {
        let s = space("HTTP://Example.COM./a/b", "R");
        assert_eq!(
            (s.scheme.as_str(), s.host.as_str(), s.port, s.realm.as_str()),
            ("http", "example.com", 80, "R")
        );
        assert_eq!(s.target, AuthTarget::Server);
        assert_eq!(space("https://[::1]/", "").host, "::1");
        assert_eq!(space("https://h:8443/", "").port, 8443);
        // Scheme, port and realm all separate spaces.
        assert_ne!(space("http://h/", "r"), space("https://h/", "r"));
        assert_ne!(space("http://h/", "r"), space("http://h:81/", "r"));
        assert_ne!(space("http://h/", "r"), space("http://h/", "R"));
        assert!(ProtectionSpace::for_url(&url("data:,x"), "").is_none());

        let p = Proxy::new(ProxyKind::HttpProxy, "Proxy.Local", 3128);
        let ps = ProtectionSpace::for_proxy(&p, "squid");
        assert_eq!(ps.target, AuthTarget::Proxy);
        assert_eq!(
            (ps.scheme.as_str(), ps.host.as_str(), ps.port),
            ("http", "proxy.local", 3128)
        );
        let socks = Proxy::new(ProxyKind::Socks5Proxy, "::1", 1080);
        assert_eq!(ProtectionSpace::for_proxy(&socks, "").scheme, "socks5");
        // A proxy space is not the server space of the same host and port.
        assert_ne!(ps, space("http://proxy.local:3128/", "squid"));
    }

    #[test]
    fn closest_path_wins() {
        let mut cache = CredentialCache::new();
        let origin = space("http://h/", "");
        cache.insert(
            space("http://h/", "top"),
            "/index.html",
            who("root"),
            AuthState::new(),
        );
        cache.insert(
            space("http://h/", "docs"),
            "/docs/a/page.html",
            who("docs"),
            AuthState::new(),
        );
        cache.insert(
            space("http://h/", "d"),
            "/docs/",
            who("d"),
            AuthState::new(),
        );
        let user = |path: &str| {
            cache
                .closest(&origin, path)
                .map(|e| e.authenticator.user().to_owned())
        };
        assert_eq!(user("/docs/a/b/c").as_deref(), Some("docs"));
        assert_eq!(user("/docs/a/").as_deref(), Some("docs"));
        assert_eq!(
            user("/docs/a").as_deref(),
            Some("d"),
            "/docs/a is in /docs/, not /docs/a/"
        );
        assert_eq!(user("/docs/x").as_deref(), Some("d"));
        assert_eq!(user("/other").as_deref(), Some("root"));
        assert_eq!(user("").as_deref(), Some("root"));
        // Another origin: nothing.
        assert!(cache
            .closest(&space("https://h/", ""), "/docs/a/")
            .is_none());
        assert!(cache.closest(&space("http://h:8080/", ""), "/").is_none());
    }

    #[test]
    fn closest_needs_a_prefix() {
        let mut cache = CredentialCache::new();
        cache.insert(
            space("http://h/", "r"),
            "/private/x",
            who("u"),
            AuthState::new(),
        );
        assert!(cache.closest(&space("http://h/", ""), "/public/").is_none());
        assert!(cache
            .closest(&space("http://h/", ""), "/privatex")
            .is_none());
        assert!(cache
            .closest(&space("http://h/", ""), "/private/y")
            .is_some());
        // With the realm known (a challenge came), any path of the space.
        assert_eq!(
            cache
                .get(&space("http://h/", "r"), "/public/")
                .unwrap()
                .authenticator
                .user(),
            "u"
        );
        assert!(cache
            .get(&space("http://h/", "other"), "/private/x")
            .is_none());
    }

    #[test]
    fn get_prefers_closest_path_within_space() {
        let mut cache = CredentialCache::new();
        let s = space("http://h/", "r");
        cache.insert(s.clone(), "/a/", who("a"), AuthState::new());
        cache.insert(s.clone(), "/a/b/", who("b"), AuthState::new());
        // One realm, one password: the newest credentials replace the others.
        assert_eq!(cache.get(&s, "/a/x").unwrap().authenticator.user(), "b");
        assert_eq!(cache.get(&s, "/a/x").unwrap().path, "/a/");
        assert_eq!(cache.get(&s, "/a/b/x").unwrap().path, "/a/b/");
        // Same space and directory: replaced, not duplicated.
        cache.insert(s.clone(), "/a/b/other", who("c"), AuthState::new());
        assert_eq!(cache.len(), 2);
        cache
            .get_mut(&s, "/a/b/")
            .unwrap()
            .authenticator
            .set_password("new");
        assert_eq!(
            cache.get(&s, "/a/b/").unwrap().authenticator.password(),
            "new"
        );
        assert_eq!(cache.remove(&s), 2);
        assert!(cache.is_empty());
    }

    #[test]
    fn query_and_fragment_do_not_count() {
        let mut cache = CredentialCache::new();
        cache.insert(
            space("http://h/", "r"),
            "/a/b?x=/c/d",
            who("u"),
            AuthState::new(),
        );
        assert_eq!(
            cache.get(&space("http://h/", "r"), "/a/").unwrap().path,
            "/a/"
        );
    }

    #[test]
    fn proxies_ignore_paths() {
        let mut cache = CredentialCache::new();
        let p = Proxy::new(ProxyKind::HttpProxy, "proxy", 3128);
        cache.insert(
            ProtectionSpace::for_proxy(&p, "squid"),
            "/deep/path",
            who("p"),
            AuthState::new(),
        );
        let origin = ProtectionSpace::for_proxy(&p, "");
        assert_eq!(cache.closest(&origin, "/elsewhere").unwrap().path, "/");
        assert_eq!(
            cache.closest(&origin, "").unwrap().authenticator.user(),
            "p"
        );
        let other = Proxy::new(ProxyKind::HttpProxy, "proxy", 8080);
        assert!(cache
            .closest(&ProtectionSpace::for_proxy(&other, ""), "/")
            .is_none());
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn preemptive_digest_through_the_cache() {
        use super::super::{parse_challenge_str, respond};
        let mut cache = CredentialCache::new();
        let challenges = parse_challenge_str(r#"Digest realm="r", nonce="n", qop="auth""#);
        let creds = who("u");
        let mut state = AuthState::new();
        respond(&challenges, &creds, "GET", "/a/x", None, &mut state).unwrap();
        cache.insert(space("http://h/", "r"), "/a/x", creds, state);
        let e = cache.closest_mut(&space("http://h/", ""), "/a/y").unwrap();
        let creds = e.authenticator.clone();
        let h = e.state.authorize(&creds, "GET", "/a/y", None).unwrap();
        assert!(h.to_str().unwrap().contains("nc=00000002"));
        assert_eq!(
            cache
                .get(&space("http://h/", "r"), "/a/")
                .unwrap()
                .state
                .nonce_count(),
            2
        );
    }
}
