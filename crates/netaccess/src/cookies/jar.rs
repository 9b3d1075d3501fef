//! [`CookieJar`] (QNetworkCookieJar) and the RFC 6265 [`DefaultCookieJar`].
//!
//! Over 600 lines: the storage model of RFC 6265 §5.3-5.4 (matching, eviction, limits, the
//! public-suffix and prefix rules) is one algorithm over one map, kept together.

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use url::{Host, Url};

use super::cookie::{domain_key, Cookie, MAX_NAME_VALUE};

/// A cookie store the manager asks for the `Cookie` header of every request and gives the
/// `Set-Cookie` values of every response (QNetworkCookieJar).
///
/// The methods take `&self`: a jar is shared by every request of a manager (use interior
/// mutability). Implement the six Qt methods; [`cookie_header`](Self::cookie_header) and
/// [`store_response_cookies`](Self::store_response_cookies) have default implementations on
/// top of them.
#[doc(alias = "QNetworkCookieJar")]
pub trait CookieJar: Send + Sync {
    /// The cookies to send to `url`, in the order they go in the `Cookie` header (Qt's
    /// `cookiesForUrl`).
    #[doc(alias = "cookiesForUrl")]
    fn cookies_for_url(&self, url: &Url) -> Vec<Cookie>;

    /// Stores cookies received in a response for `url`, after checking them against it
    /// (Qt's `setCookiesFromUrl`). Returns true when at least one cookie was stored.
    #[doc(alias = "setCookiesFromUrl")]
    fn set_cookies_from_url(&self, cookies: Vec<Cookie>, url: &Url) -> bool;

    /// Adds a cookie whose domain is set, replacing one with the same identifier (Qt's
    /// `insertCookie`). Returns true when it was added.
    #[doc(alias = "insertCookie")]
    fn insert_cookie(&self, cookie: Cookie) -> bool;

    /// Replaces the cookie with the same identifier (Qt's `updateCookie`). Returns false
    /// when there was none.
    #[doc(alias = "updateCookie")]
    fn update_cookie(&self, cookie: Cookie) -> bool;

    /// Removes the cookie with the same identifier (Qt's `deleteCookie`). Returns true when
    /// one was removed.
    #[doc(alias = "deleteCookie")]
    fn delete_cookie(&self, cookie: &Cookie) -> bool;

    /// Every cookie in the jar (Qt's protected `allCookies`).
    #[doc(alias = "allCookies")]
    fn all_cookies(&self) -> Vec<Cookie>;

    /// The value of the `Cookie` header for a request to `url` (`a=1; b=2`), or `None` when no
    /// cookie applies. Cookies with longer paths come first; the sort is stable, so for equal
    /// paths the order of [`cookies_for_url`](Self::cookies_for_url) (earlier creation first
    /// in [`DefaultCookieJar`]) is kept (RFC 6265 §5.4).
    ///
    /// The header is at most [`DefaultCookieJar::MAX_COOKIE_HEADER_LEN`] bytes (a cookie bomb,
    /// CVE-2022-32205: a site that sets many large cookies, directly or from its subdomains,
    /// would otherwise make every request to it too large for the server): cookies that would
    /// go past it are left out, in order, and so are cookies that could not be sent as they
    /// are ([`Cookie`]s with control characters, given through the API).
    fn cookie_header(&self, url: &Url) -> Option<String> {
        let mut cookies = self.cookies_for_url(url);
        cookies.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let mut header = String::new();
        for cookie in cookies.iter().filter(|c| c.is_well_formed()) {
            let part = cookie.to_raw_form(false);
            let sep = if header.is_empty() { 0 } else { 2 };
            if header.len() + sep + part.len() > DefaultCookieJar::MAX_COOKIE_HEADER_LEN {
                continue;
            }
            if sep > 0 {
                header.push_str("; ");
            }
            header.push_str(&part);
        }
        (!header.is_empty()).then_some(header)
    }

    /// Parses the `Set-Cookie` values of a response for `url` (each may hold several cookies
    /// separated by newlines; invalid ones are skipped) and stores them with
    /// [`set_cookies_from_url`](Self::set_cookies_from_url).
    fn store_response_cookies(&self, url: &Url, set_cookie_values: &[&str]) {
        let cookies: Vec<Cookie> = set_cookie_values
            .iter()
            .flat_map(|value| Cookie::parse_cookies(value))
            .collect();
        if !cookies.is_empty() {
            self.set_cookies_from_url(cookies, url);
        }
    }
}

/// One stored cookie with the bookkeeping RFC 6265 §5.3 asks for.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// `domain` is `host` (host-only) or `.domain`; `path` is set.
    pub(crate) cookie: Cookie,
    pub(crate) creation: SystemTime,
    pub(crate) last_access: SystemTime,
    /// Ties of `creation` and `last_access` are broken by these counters.
    pub(crate) creation_seq: u64,
    pub(crate) access_seq: u64,
}

impl Entry {
    fn host_only(&self) -> bool {
        !self.cookie.domain.starts_with('.')
    }

    fn domain(&self) -> &str {
        domain_key(&self.cookie.domain)
    }

    fn matches(&self, host: &str, path: &str, secure: bool, now: SystemTime) -> bool {
        !self.cookie.is_expired_at(now)
            && (!self.cookie.secure || secure)
            && if self.host_only() {
                host == self.domain()
            } else {
                domain_match(host, self.domain())
            }
            && path_match(path, &self.cookie.path)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    /// In creation order.
    pub(crate) entries: Vec<Entry>,
    pub(crate) seq: u64,
    /// The file this jar last loaded or saved, and the cookies it held then (the base of the
    /// three-way merge of the next save).
    #[cfg(feature = "cookies")]
    pub(crate) synced: Option<Synced>,
}

/// The cookies of a jar file as this jar last read or wrote them.
#[cfg(feature = "cookies")]
#[derive(Debug)]
pub(crate) struct Synced {
    pub(crate) path: std::path::PathBuf,
    pub(crate) cookies: std::collections::HashMap<super::persist::CookieId, Entry>,
}

impl Store {
    /// A store of `entries` (later duplicates of an identifier replace earlier ones), in
    /// creation order, with fresh sequence numbers (ties of equal times keep the order of the
    /// entries' own counters), expired cookies dropped and the limits applied.
    #[cfg(feature = "cookies")]
    pub(crate) fn rebuild(entries: Vec<Entry>, now: SystemTime) -> Store {
        let mut by_id: std::collections::HashMap<super::persist::CookieId, usize> =
            std::collections::HashMap::new();
        let mut kept: Vec<Option<Entry>> = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.cookie.is_expired_at(now) {
                continue;
            }
            let id = super::persist::cookie_id(&entry.cookie);
            if let Some(&old) = by_id.get(&id) {
                kept[old] = None;
            }
            by_id.insert(id, kept.len());
            kept.push(Some(entry));
        }
        let mut entries: Vec<Entry> = kept.into_iter().flatten().collect();
        entries.sort_by_key(|e| (e.creation, e.creation_seq));
        let mut by_access: Vec<(SystemTime, u64, usize)> = entries
            .iter()
            .enumerate()
            .map(|(k, e)| (e.last_access, e.access_seq, k))
            .collect();
        by_access.sort_unstable();
        for (rank, &(_, _, k)) in by_access.iter().enumerate() {
            entries[k].access_seq = rank as u64 + 1;
        }
        for (k, e) in entries.iter_mut().enumerate() {
            e.creation_seq = k as u64 + 1;
        }
        let n = entries.len() as u64;
        let mut store = Store {
            entries,
            seq: n + 1,
            synced: None,
        };
        let mut domains: Vec<String> = store
            .entries
            .iter()
            .map(|e| e.domain().to_owned())
            .collect();
        domains.sort_unstable();
        domains.dedup();
        for domain in domains {
            store.evict(&domain, now);
        }
        store
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn position(&self, cookie: &Cookie) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.cookie.has_same_identifier(cookie))
    }

    /// Inserts a checked cookie (domain and path set), replacing one with the same identifier
    /// and keeping its creation time. An expired cookie only removes the old one. Returns true
    /// when the cookie was stored.
    fn store(&mut self, cookie: Cookie, now: SystemTime) -> bool {
        let old = self.position(&cookie).map(|i| self.entries.remove(i));
        if cookie.is_expired_at(now) {
            return false;
        }
        let access_seq = self.next_seq();
        let (creation, creation_seq) = match old {
            Some(old) => (old.creation, old.creation_seq),
            None => (now, access_seq),
        };
        let entry = Entry {
            cookie,
            creation,
            last_access: now,
            creation_seq,
            access_seq,
        };
        let at = self
            .entries
            .partition_point(|e| (e.creation, e.creation_seq) <= (creation, creation_seq));
        let domain = entry.domain().to_owned();
        self.entries.insert(at, entry);
        self.evict(&domain, now);
        true
    }

    /// RFC 6265 §5.3: expired cookies go first, then the least recently used ones of a domain
    /// with too many, then the least recently used ones overall.
    fn evict(&mut self, domain: &str, now: SystemTime) {
        self.entries.retain(|e| !e.cookie.is_expired_at(now));
        let per_domain = self.entries.iter().filter(|e| e.domain() == domain).count();
        if per_domain > DefaultCookieJar::MAX_COOKIES_PER_DOMAIN {
            self.evict_lru(
                per_domain - DefaultCookieJar::MAX_COOKIES_PER_DOMAIN,
                Some(domain),
            );
        }
        if self.entries.len() > DefaultCookieJar::MAX_COOKIES {
            self.evict_lru(self.entries.len() - DefaultCookieJar::MAX_COOKIES, None);
        }
    }

    fn evict_lru(&mut self, count: usize, domain: Option<&str>) {
        let mut candidates: Vec<(SystemTime, u64)> = self
            .entries
            .iter()
            .filter(|e| domain.is_none_or(|d| e.domain() == d))
            .map(|e| (e.last_access, e.access_seq))
            .collect();
        candidates.sort_unstable();
        let Some(&cutoff) = candidates.get(count - 1) else {
            return;
        };
        self.entries.retain(|e| {
            domain.is_some_and(|d| e.domain() != d) || (e.last_access, e.access_seq) > cutoff
        });
    }
}

/// The default cookie jar: in memory, RFC 6265 with the settled parts of 6265bis.
///
/// - Host-only and domain cookies; `Domain` must domain-match the host and must not be a
///   public suffix (Mozilla's list, compiled in by the `psl` crate) unless it equals the host,
///   which then gets a host-only cookie (so `localhost` and other single-label hosts only get
///   host-only cookies). An IP-literal host accepts `Domain` only when it is that same address,
///   and the cookie is then host-only. Without the list (cargo feature `cookies` off), a
///   `Domain` that domain-matches the host gives a host-only cookie: no cookie is shared
///   across hosts.
/// - Path matching (§5.1.4), expiry (`Max-Age` wins over `Expires`), the `Cookie` order of
///   §5.4 (longer paths first, then earlier creation).
/// - `Secure` cookies are neither set from nor sent to an insecure URL, and an insecure
///   response cannot overwrite (or shadow) a `Secure` cookie (6265bis). Secure means `https`
///   or `wss`, and, as in 6265bis and browsers ("potentially trustworthy origins"), `http`/`ws`
///   to a loopback host (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`); turn that off
///   with [`set_loopback_is_secure`](Self::set_loopback_is_secure).
/// - `__Secure-` and `__Host-` name prefixes (case-insensitive, as in 6265bis).
/// - `SameSite` is kept but not enforced: the manager has no notion of the site that started
///   a request.
/// - Limits: 4096 bytes for name and value, 50 cookies per domain, 3000 in all; the least
///   recently used go first once expired ones are gone (§5.3). The `Cookie` header it
///   produces is at most [`MAX_COOKIE_HEADER_LEN`](Self::MAX_COOKIE_HEADER_LEN) bytes.
/// - Cookies with control characters (or a `;` in the name or value, an `=` in the name) are
///   refused wherever they come from: a response, the API, a file.
/// - Persistence (cargo feature `cookies`): `save` and `load` (JSON; a private file,
///   replaced atomically, merged with what another process saved meanwhile).
#[derive(Debug)]
pub struct DefaultCookieJar {
    pub(crate) store: Mutex<Store>,
    loopback_is_secure: std::sync::atomic::AtomicBool,
}

impl Default for DefaultCookieJar {
    fn default() -> Self {
        DefaultCookieJar::new()
    }
}

impl DefaultCookieJar {
    /// Longest name plus value, in bytes (6265bis).
    pub const MAX_COOKIE_SIZE: usize = MAX_NAME_VALUE;
    /// Most cookies kept for one domain (RFC 6265 §6.1 asks for at least 50).
    pub const MAX_COOKIES_PER_DOMAIN: usize = 50;
    /// Most cookies kept in all (RFC 6265 §6.1 asks for at least 3000).
    pub const MAX_COOKIES: usize = 3000;
    /// The longest `Cookie` header the jar produces, in bytes (curl's limit, CVE-2022-32205):
    /// cookies that do not fit are not sent.
    pub const MAX_COOKIE_HEADER_LEN: usize = 8190;

    /// An empty jar.
    pub fn new() -> DefaultCookieJar {
        DefaultCookieJar {
            store: Mutex::new(Store::default()),
            loopback_is_secure: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether `http://` URLs to loopback hosts count as secure for `Secure` cookies and the
    /// `__Secure-`/`__Host-` prefixes (default: true, as 6265bis and browsers do).
    pub fn set_loopback_is_secure(&self, secure: bool) {
        self.loopback_is_secure
            .store(secure, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_secure(&self, url: &Url) -> bool {
        match url.scheme() {
            "https" | "wss" => true,
            "http" | "ws" => {
                self.loopback_is_secure
                    .load(std::sync::atomic::Ordering::Relaxed)
                    && is_loopback(url)
            }
            _ => false,
        }
    }

    /// Replaces every cookie (Qt's protected `setAllCookies`). Cookies without a domain are
    /// dropped; a missing path becomes `/`.
    #[doc(alias = "setAllCookies")]
    pub fn set_all_cookies(&self, cookies: Vec<Cookie>) {
        let now = SystemTime::now();
        let mut store = self.lock();
        store.entries.clear();
        for cookie in cookies {
            if let Some(cookie) = prepare_insert(cookie) {
                store.store(cookie, now);
            }
        }
    }

    /// Removes every cookie.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    /// The number of cookies stored (expired ones included until they are evicted).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when no cookie is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn cookies_for_url_at(&self, url: &Url, now: SystemTime) -> Vec<Cookie> {
        let mut store = self.lock();
        store.entries.retain(|e| !e.cookie.is_expired_at(now));
        if store.entries.is_empty() {
            return Vec::new();
        }
        let Some(host) = request_host(url) else {
            return Vec::new();
        };
        let path = url.path();
        let path = if path.is_empty() { "/" } else { path };
        let secure = self.is_secure(url);
        let mut picked: Vec<usize> = (0..store.entries.len())
            .filter(|&i| store.entries[i].matches(&host, path, secure, now))
            .collect();
        // `entries` is in creation order, so a stable sort by path length gives §5.4's order.
        picked.sort_by_key(|&i| std::cmp::Reverse(store.entries[i].cookie.path.len()));
        let mut out = Vec::with_capacity(picked.len());
        for i in picked {
            let seq = store.next_seq();
            let entry = &mut store.entries[i];
            entry.last_access = now;
            entry.access_seq = seq;
            out.push(entry.cookie.clone());
        }
        out
    }

    pub(crate) fn set_cookies_from_url_at(
        &self,
        cookies: Vec<Cookie>,
        url: &Url,
        now: SystemTime,
    ) -> bool {
        let Some(host) = request_host(url) else {
            return false;
        };
        let is_ip = matches!(url.host(), Some(Host::Ipv4(_) | Host::Ipv6(_)));
        let secure = self.is_secure(url);
        let mut store = self.lock();
        let mut stored = false;
        for cookie in cookies {
            if let Some(cookie) = check_cookie(cookie, url, &host, is_ip, secure, &store, now) {
                stored |= store.store(cookie, now);
            }
        }
        stored
    }
}

impl CookieJar for DefaultCookieJar {
    fn cookies_for_url(&self, url: &Url) -> Vec<Cookie> {
        if self.lock().entries.is_empty() {
            return Vec::new(); // without a clock read
        }
        self.cookies_for_url_at(url, SystemTime::now())
    }

    fn set_cookies_from_url(&self, cookies: Vec<Cookie>, url: &Url) -> bool {
        self.set_cookies_from_url_at(cookies, url, SystemTime::now())
    }

    fn insert_cookie(&self, cookie: Cookie) -> bool {
        match prepare_insert(cookie) {
            Some(cookie) => self.lock().store(cookie, SystemTime::now()),
            None => false,
        }
    }

    fn update_cookie(&self, cookie: Cookie) -> bool {
        let cookie = match prepare_insert(cookie) {
            Some(cookie) => cookie,
            None => return false,
        };
        let mut store = self.lock();
        if store.position(&cookie).is_none() {
            return false;
        }
        store.store(cookie, SystemTime::now())
    }

    fn delete_cookie(&self, cookie: &Cookie) -> bool {
        let mut probe = cookie.clone();
        if probe.path.is_empty() {
            probe.path = "/".to_owned();
        }
        let mut store = self.lock();
        match store.position(&probe) {
            Some(i) => {
                store.entries.remove(i);
                true
            }
            None => false,
        }
    }

    fn all_cookies(&self) -> Vec<Cookie> {
        self.lock()
            .entries
            .iter()
            .map(|e| e.cookie.clone())
            .collect()
    }
}

/// A cookie given to `insert_cookie`, `update_cookie` or `set_all_cookies`: no URL to check it
/// against, so only its shape is checked.
fn prepare_insert(mut cookie: Cookie) -> Option<Cookie> {
    if cookie.name.is_empty()
        || !cookie.is_well_formed()
        || domain_key(&cookie.domain).is_empty()
        || cookie.name.len() + cookie.value.len() > MAX_NAME_VALUE
    {
        return None;
    }
    cookie.domain = cookie.domain.to_ascii_lowercase();
    if !cookie.path.starts_with('/') {
        cookie.path = "/".to_owned();
    }
    Some(cookie)
}

/// The storage model of RFC 6265 §5.3 (steps 4 to 10) and 6265bis: returns the cookie to
/// store, with its domain and path resolved, or `None` to ignore it.
fn check_cookie(
    mut cookie: Cookie,
    url: &Url,
    host: &str,
    is_ip: bool,
    secure: bool,
    store: &Store,
    now: SystemTime,
) -> Option<Cookie> {
    if cookie.name.is_empty()
        || cookie.name.len() + cookie.value.len() > MAX_NAME_VALUE
        || !cookie.is_well_formed()
    {
        return None;
    }
    // Domain (steps 4 to 6).
    let host_only;
    // A `Domain` cookie kept to its host for want of the public-suffix list.
    let mut narrowed = false;
    if cookie.domain.is_empty() {
        host_only = true;
    } else {
        let domain = canonical_domain(domain_key(&cookie.domain))?;
        // An IP host takes only its own address; a public suffix only the host itself; both
        // then give a host-only cookie.
        if is_ip || is_public_suffix(&domain) {
            if domain != host {
                return None;
            }
            host_only = true;
        } else if domain_match(host, &domain) {
            // Without the public-suffix list (cargo feature `cookies`) nothing shows that
            // `domain` is not one, so the cookie stays with this host.
            narrowed = !cfg!(feature = "cookies");
            host_only = narrowed;
            if !host_only {
                cookie.domain = format!(".{domain}");
            }
        } else {
            return None;
        }
    }
    if host_only {
        cookie.domain = host.to_owned();
    }
    // Path (step 7).
    if !cookie.path.starts_with('/') {
        cookie.path = default_path(url);
    }
    // Secure (6265bis): not from an insecure URL.
    if cookie.secure && !secure {
        return None;
    }
    // Prefixes (6265bis §4.1.3).
    let lower = cookie.name.get(..9).map(str::to_ascii_lowercase);
    if lower.as_deref() == Some("__secure-") && !cookie.secure {
        return None;
    }
    let lower = cookie.name.get(..7).map(str::to_ascii_lowercase);
    if lower.as_deref() == Some("__host-")
        && (!cookie.secure || !host_only || narrowed || cookie.path != "/")
    {
        return None;
    }
    // 6265bis: an insecure URL may not overwrite or shadow a Secure cookie.
    if !cookie.secure && !secure {
        let new_domain = domain_key(&cookie.domain);
        let clash = store.entries.iter().any(|e| {
            e.cookie.secure
                && !e.cookie.is_expired_at(now)
                && e.cookie.name == cookie.name
                && (domain_match(e.domain(), new_domain) || domain_match(new_domain, e.domain()))
                && path_match(&cookie.path, &e.cookie.path)
        });
        if clash {
            return None;
        }
    }
    Some(cookie)
}

/// The canonicalized host of a URL (lowercase, IDNA), or `None` without a host.
fn request_host(url: &Url) -> Option<String> {
    match url.host()? {
        Host::Domain("") => None,
        Host::Domain(d) => Some(d.to_ascii_lowercase()),
        // The URL's own serialisation of an address: dotted IPv4, IPv6 in brackets.
        Host::Ipv4(_) | Host::Ipv6(_) => url.host_str().map(str::to_owned),
    }
}

/// A `Domain` attribute, lowercased and IDNA-encoded (RFC 6265 §5.1.2); `None` when it cannot
/// be a host name.
fn canonical_domain(domain: &str) -> Option<String> {
    if domain.is_ascii() {
        return Some(domain.to_ascii_lowercase());
    }
    match Host::parse(domain).ok()? {
        Host::Domain(d) => Some(d),
        _ => None,
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            let d = d.trim_end_matches('.');
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// True when `domain` is a public suffix (Mozilla's list, ICANN and private sections; a name
/// under an unlisted top-level domain counts as one, as the list's implicit `*` rule says).
/// Without the list (cargo feature `cookies` off) only the empty name is one here, and
/// [`check_cookie`] keeps every `Domain` cookie to its host instead.
pub(crate) fn is_public_suffix(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    if domain.is_empty() {
        return true;
    }
    is_listed_suffix(domain)
}

#[cfg(feature = "cookies")]
fn is_listed_suffix(domain: &str) -> bool {
    psl::suffix(domain.as_bytes()).is_some_and(|s| s.as_bytes() == domain.as_bytes())
}

#[cfg(not(feature = "cookies"))]
fn is_listed_suffix(_domain: &str) -> bool {
    false
}

/// Domain matching (RFC 6265 §5.1.3); both strings are canonicalized.
pub(crate) fn domain_match(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    host.len() > domain.len()
        && host.ends_with(domain)
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        && host.parse::<IpAddr>().is_err()
        && !host.starts_with('[')
}

/// Path matching (RFC 6265 §5.1.4).
pub(crate) fn path_match(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// The default path of a URL (RFC 6265 §5.1.4).
pub(crate) fn default_path(url: &Url) -> String {
    let path = url.path();
    if !path.starts_with('/') {
        return "/".to_owned();
    }
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}
