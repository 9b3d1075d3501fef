//! [`Cookie`] (QNetworkCookie): the `Set-Cookie` parser of RFC 6265 §5.2 and `to_raw_form`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::date::{format_imf_fixdate, parse_cookie_date};

/// The `SameSite` attribute of a cookie (QNetworkCookie::SameSite).
///
/// The jar keeps it and writes it back in [`Cookie::to_raw_form`], but does not enforce it:
/// the manager sends no "site for cookies" with a request, so every request is treated as
/// same-site.
#[doc(alias = "QNetworkCookie::SameSite")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SameSite {
    /// No `SameSite` attribute (or one with an unknown value).
    #[default]
    Default,
    /// `SameSite=None`.
    None,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

impl SameSite {
    /// The attribute value (`"None"`, `"Lax"`, `"Strict"`), or `None` for [`SameSite::Default`].
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            SameSite::Default => None,
            SameSite::None => Some("None"),
            SameSite::Lax => Some("Lax"),
            SameSite::Strict => Some("Strict"),
        }
    }
}

/// Why a `Set-Cookie` value was ignored (RFC 6265 §5.2 and 6265bis).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieParseError {
    /// The name-value pair has no `=` (RFC 6265 ignores such a cookie).
    MissingEquals,
    /// The cookie name is empty.
    EmptyName,
    /// The value contains a control character other than horizontal tab (6265bis).
    ControlCharacter,
    /// Name and value together are longer than 4096 bytes (6265bis).
    TooLarge,
}

impl fmt::Display for CookieParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CookieParseError::MissingEquals => "the cookie's name-value pair has no '='",
            CookieParseError::EmptyName => "the cookie name is empty",
            CookieParseError::ControlCharacter => "the cookie contains a control character",
            CookieParseError::TooLarge => "the cookie's name and value exceed 4096 bytes",
        })
    }
}

impl std::error::Error for CookieParseError {}

/// One HTTP cookie (QNetworkCookie).
///
/// Fields follow Qt's conventions:
/// - `domain` empty: not yet known; [`CookieJar::set_cookies_from_url`](super::CookieJar::set_cookies_from_url)
///   makes it a *host-only* cookie for the URL's host. `domain` without a leading dot
///   (`example.org`): host-only, sent to that host alone. `domain` with a leading dot
///   (`.example.org`): a domain cookie, sent to that host and its subdomains. The parser turns
///   a `Domain=example.org` attribute into `.example.org`, as Qt does.
/// - `path` empty: the default path of the URL the cookie comes from (RFC 6265 §5.1.4).
/// - `expires` `None`: a session cookie. `Max-Age` wins over `Expires` and is turned into an
///   absolute time when the header is parsed.
#[doc(alias = "QNetworkCookie")]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cookie {
    /// The cookie name (Qt: `name()`), case-sensitive.
    pub name: String,
    /// The cookie value (Qt: `value()`), as sent: surrounding double quotes are part of it.
    pub value: String,
    /// The domain; see the type's documentation for the leading-dot convention.
    pub domain: String,
    /// The path; empty means the default path of the URL the cookie is set from.
    pub path: String,
    /// When the cookie expires (Qt: `expirationDate()`); `None` for a session cookie.
    pub expires: Option<SystemTime>,
    /// The `Secure` attribute (Qt: `isSecure()`): sent only over secure connections.
    pub secure: bool,
    /// The `HttpOnly` attribute (Qt: `isHttpOnly()`).
    pub http_only: bool,
    /// The `SameSite` attribute (Qt: `sameSitePolicy()`), kept but not enforced.
    pub same_site: SameSite,
}

/// Attribute values longer than this are ignored (6265bis §5.6).
const MAX_ATTRIBUTE_VALUE: usize = 1024;
/// Name and value together may not be longer than this (6265bis §5.6).
pub(crate) const MAX_NAME_VALUE: usize = 4096;

fn trim_wsp(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn has_forbidden_control(s: &str) -> bool {
    s.bytes()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0A..=0x1F | 0x7F))
}

impl Cookie {
    /// A session cookie with this name and value, no domain and no path (Qt's
    /// `QNetworkCookie(name, value)`).
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Cookie {
        Cookie {
            name: name.into(),
            value: value.into(),
            ..Cookie::default()
        }
    }

    /// Parses one `Set-Cookie` header value as RFC 6265 §5.2 says, with the 6265bis limits
    /// (control characters rejected, 4096 bytes for name and value, attribute values longer
    /// than 1024 bytes ignored). Unknown attributes are ignored; for each known attribute the
    /// last valid one wins.
    ///
    /// Qt's `parseCookies` handles quoted values specially; this parser follows the RFC (and
    /// the IETF http-state tests): quotes are part of the value and a `;` always ends it.
    pub fn parse_set_cookie(header: &str) -> Result<Cookie, CookieParseError> {
        Cookie::parse_set_cookie_at(header, SystemTime::now())
    }

    pub(crate) fn parse_set_cookie_at(
        header: &str,
        now: SystemTime,
    ) -> Result<Cookie, CookieParseError> {
        if has_forbidden_control(header) {
            return Err(CookieParseError::ControlCharacter);
        }
        let (pair, attributes) = match header.find(';') {
            Some(i) => (&header[..i], &header[i + 1..]),
            None => (header, ""),
        };
        let (name, value) = pair
            .split_once('=')
            .ok_or(CookieParseError::MissingEquals)?;
        let (name, value) = (trim_wsp(name), trim_wsp(value));
        if name.is_empty() {
            return Err(CookieParseError::EmptyName);
        }
        if name.len() + value.len() > MAX_NAME_VALUE {
            return Err(CookieParseError::TooLarge);
        }
        let mut cookie = Cookie::new(name, value);
        let mut expires = None;
        let mut max_age: Option<SystemTime> = None;
        if !attributes.is_empty() {
            for av in attributes.split(';') {
                let (attr_name, attr_value) = match av.split_once('=') {
                    Some((n, v)) => (trim_wsp(n), trim_wsp(v)),
                    None => (trim_wsp(av), ""),
                };
                if attr_value.len() > MAX_ATTRIBUTE_VALUE {
                    continue;
                }
                match attr_name.to_ascii_lowercase().as_str() {
                    "expires" => {
                        if let Some(t) = parse_cookie_date(attr_value) {
                            expires = Some(t);
                        }
                    }
                    "max-age" => {
                        if let Some(t) = parse_max_age(attr_value, now) {
                            max_age = Some(t);
                        }
                    }
                    // An empty Domain attribute is ignored (6265bis §5.6.3).
                    "domain" if !attr_value.is_empty() => {
                        let d = attr_value.strip_prefix('.').unwrap_or(attr_value);
                        // `Domain=.` leaves an empty domain: a host-only cookie (RFC 6265
                        // §5.2.3, §5.3 step 6), as if the attribute were absent.
                        cookie.domain = if d.is_empty() {
                            String::new()
                        } else {
                            format!(".{}", d.to_ascii_lowercase())
                        };
                    }
                    "path" => {
                        cookie.path = if attr_value.starts_with('/') {
                            attr_value.to_owned()
                        } else {
                            String::new()
                        };
                    }
                    "secure" => cookie.secure = true,
                    "httponly" => cookie.http_only = true,
                    "samesite" => {
                        cookie.same_site = match attr_value.to_ascii_lowercase().as_str() {
                            "none" => SameSite::None,
                            "lax" => SameSite::Lax,
                            "strict" => SameSite::Strict,
                            _ => SameSite::Default,
                        }
                    }
                    _ => {}
                }
            }
        }
        cookie.expires = max_age.or(expires);
        Ok(cookie)
    }

    /// Parses every cookie in a `Set-Cookie` value; several cookies may be separated by
    /// newlines, as Qt's `QNetworkCookie::parseCookies` accepts. Invalid lines are skipped.
    #[doc(alias = "parseCookies")]
    pub fn parse_cookies(header: &str) -> Vec<Cookie> {
        let now = SystemTime::now();
        header
            .split('\n')
            .filter_map(|line| Cookie::parse_set_cookie_at(line.trim_end_matches('\r'), now).ok())
            .collect()
    }

    /// The cookie as text (Qt's `toRawForm`). With `full` false: `name=value`, as in a `Cookie`
    /// request header (only the value when the name is empty). With `full` true: a
    /// `Set-Cookie` value with every attribute set (`Expires` as an IMF-fixdate, `Domain` only
    /// for a domain cookie, so a host-only cookie stays host-only), which parses back to the
    /// same cookie.
    #[doc(alias = "toRawForm")]
    pub fn to_raw_form(&self, full: bool) -> String {
        let mut out = if self.name.is_empty() {
            self.value.clone()
        } else {
            format!("{}={}", self.name, self.value)
        };
        if full {
            if let Some(expires) = self.expires {
                out.push_str("; Expires=");
                out.push_str(&format_imf_fixdate(expires));
            }
            // The parser trims white space and then drops exactly one leading dot, so a
            // domain that would change that way (`..x`, `. x`) is written whole; otherwise
            // without its dot (no longer than what was parsed).
            if let Some(domain) = self.domain.strip_prefix('.') {
                out.push_str("; Domain=");
                out.push_str(if domain.starts_with(['.', ' ', '\t']) {
                    &self.domain
                } else {
                    domain
                });
            }
            if !self.path.is_empty() {
                out.push_str("; Path=");
                out.push_str(&self.path);
            }
            if self.secure {
                out.push_str("; Secure");
            }
            if self.http_only {
                out.push_str("; HttpOnly");
            }
            if let Some(same_site) = self.same_site.as_str() {
                out.push_str("; SameSite=");
                out.push_str(same_site);
            }
        }
        out
    }

    /// True when the cookie can go into a `Cookie` header as it is: no control character in
    /// any field (CVE-2022-35252: such a cookie, once stored, would make every request to its
    /// site fail), no `;` in the name or value and no `=` in the name (which would smuggle
    /// other cookies into the header). Cookies given to a jar through its API or read from a
    /// file are checked with this; parsed ones cannot fail it.
    pub(crate) fn is_well_formed(&self) -> bool {
        ![&self.name, &self.value, &self.domain, &self.path]
            .iter()
            .any(|s| has_forbidden_control(s))
            && !self.name.contains([';', '='])
            && !self.value.contains(';')
            && self.name.trim_matches([' ', '\t']) == self.name
    }

    /// True for a cookie without an expiry time (Qt's `isSessionCookie`).
    #[doc(alias = "isSessionCookie")]
    pub fn is_session_cookie(&self) -> bool {
        self.expires.is_none()
    }

    /// True when the cookie has an expiry time that has passed.
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(SystemTime::now())
    }

    pub(crate) fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }

    /// True when both cookies have the same name, domain and path (Qt's `hasSameIdentifier`);
    /// a leading dot on the domain is not compared (RFC 6265 §5.3 step 11).
    #[doc(alias = "hasSameIdentifier")]
    pub fn has_same_identifier(&self, other: &Cookie) -> bool {
        self.name == other.name
            && self.path == other.path
            && domain_key(&self.domain) == domain_key(&other.domain)
    }
}

/// The domain without its leading dot.
pub(crate) fn domain_key(domain: &str) -> &str {
    domain.strip_prefix('.').unwrap_or(domain)
}

/// `Max-Age` (RFC 6265 §5.2.2): `-`? DIGIT+; zero or less means "the earliest time".
fn parse_max_age(value: &str, now: SystemTime) -> Option<SystemTime> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if value.starts_with('-') || digits.bytes().all(|b| b == b'0') {
        return Some(UNIX_EPOCH);
    }
    // Saturate huge values; 400 years is beyond any useful cookie lifetime.
    const CAP: u64 = 400 * 366 * 86_400;
    let secs = digits.parse::<u64>().unwrap_or(CAP).min(CAP);
    Some(now.checked_add(Duration::from_secs(secs)).unwrap_or(now))
}

impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_raw_form(true))
    }
}
