//! HTTP cookies (RFC 6265, with the settled parts of RFC 6265bis): [`Cookie`]
//! (QNetworkCookie), the [`CookieJar`] trait (QNetworkCookieJar) and [`DefaultCookieJar`].
//!
//! The parser follows RFC 6265 §5.2 and passes the IETF http-state parser tests (see
//! `tests/cookie_conformance.rs`). `SameSite` is parsed and kept but not enforced: the
//! manager knows no "site for cookies" of a request, so every request counts as same-site.
//!
//! [`Cookie`], [`CookieJar`], [`DefaultCookieJar`] and [`SameSite`] are also at the crate root;
//! [`CookieParseError`], what a strict parse reports, is here.
//!
//! ```
//! use netaccess::cookies::{Cookie, CookieParseError};
//!
//! let cookie = Cookie::parse_set_cookie("id=a3fWa; Path=/; Secure").unwrap();
//! assert_eq!((cookie.name.as_str(), cookie.value.as_str()), ("id", "a3fWa"));
//! assert_eq!(
//!     Cookie::parse_set_cookie("no-equals-sign"),
//!     Err(CookieParseError::MissingEquals)
//! );
//! ```

mod cookie;
mod date;
mod jar;
#[cfg(feature = "cookies")]
mod persist;
#[cfg(test)]
mod tests;

pub use cookie::{Cookie, CookieParseError, SameSite};
pub use jar::{CookieJar, DefaultCookieJar};

#[cfg(feature = "fuzzing")]
pub(crate) use date::{format_imf_fixdate, parse_cookie_date};
