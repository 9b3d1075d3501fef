//! HTTP authentication without sockets: [`Authenticator`] (QAuthenticator), challenge parsing
//! ([`parse_challenges`]), choosing and answering a challenge ([`respond()`]: Basic per RFC 7617,
//! Digest per RFC 7616 with MD5, SHA-256 and SHA-512-256, their `-sess` variants, `userhash`,
//! `qop=auth` / `auth-int`), and a [`CredentialCache`] keyed by [`ProtectionSpace`] with
//! closest-path lookup.
//!
//! # How a request uses it
//!
//! On a `401` (or `407` from a proxy, see [`AuthTarget`]):
//!
//! 1. `let challenges = parse_challenges(headers.get_all(target.challenge_header()));`
//! 2. `select_challenge(&challenges, body_replayable)` gives the challenge that will be answered
//!    and so its realm: `ProtectionSpace::for_url(url, realm)` (or
//!    [`ProtectionSpace::for_proxy`]).
//! 3. If this request already sent credentials for that space: when the chosen challenge
//!    [`is_stale`](Challenge::is_stale), answer again with the same credentials, silently;
//!    otherwise they were wrong: [`CredentialCache::remove`] them and ask (step 4 without the
//!    cache).
//! 4. Credentials, in order: the URL's userinfo (once), [`CredentialCache::get_mut`] for the
//!    space, then the application (`authentication_required` with
//!    [`Authenticator::for_challenge`]); an [`Authenticator::is_null`] answer ends the request
//!    with `AuthenticationRequiredError`.
//! 5. `respond(&challenges, &credentials, method, request_target, body, &mut state)` gives the
//!    `Authorization` value; send the request again with it, and on success store
//!    `(space, url.path(), credentials, state)` with [`CredentialCache::insert`].
//!
//! Later requests (pre-emptive credentials, Qt's AuthenticationReuse):
//! [`CredentialCache::closest_mut`] for the URL, then [`AuthState::authorize`] on the entry's
//! state. After a response, [`AuthState::apply_authentication_info`] takes a `nextnonce`.
//!
//! The manager does all of this itself; [`Authenticator`] and [`AuthenticationRequest`] are
//! also at the crate root. The functions here are for answering challenges outside it.
//!
//! ```
//! use netaccess::auth::{parse_challenge_str, respond, AuthScheme, AuthState, DigestAlgorithm};
//! use netaccess::Authenticator;
//!
//! let challenges = parse_challenge_str(
//!     r#"Basic realm="files", Digest realm="files", nonce="4ee2c4", qop="auth", algorithm=SHA-256"#,
//! );
//! assert_eq!(challenges.len(), 2);
//! let credentials = Authenticator::with_credentials("alice", "s3cret");
//! let mut state = AuthState::new(); // keep it for this protection space
//! let answer = respond(&challenges, &credentials, "GET", "/private", Some(b""), &mut state)
//!     .expect("a supported challenge");
//! // The strongest offered scheme is answered.
//! assert_eq!(answer.scheme, AuthScheme::Digest(DigestAlgorithm::Sha256));
//! assert_eq!(answer.realm, "files");
//! assert!(answer.header.to_str().unwrap().starts_with("Digest "));
//! ```

mod cache;
mod challenge;
mod request;
mod respond;

use std::collections::BTreeMap;
use std::fmt;

use http::header::{
    HeaderName, AUTHORIZATION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, WWW_AUTHENTICATE,
};
use http::StatusCode;

pub use cache::{CachedCredentials, CredentialCache, ProtectionSpace};
pub use challenge::{parse_challenge_str, parse_challenges, Challenge};
pub use request::AuthenticationRequest;
pub use respond::{
    respond, select_challenge, AuthResponse, AuthScheme, AuthState, DigestAlgorithm,
};

/// User name, password and realm for one authentication (QAuthenticator).
///
/// The manager hands one to the application when a server or proxy asks for credentials, with
/// [`realm`](Self::realm) filled from the challenge; the application sets
/// [`user`](Self::set_user) and [`password`](Self::set_password). Options are free-form
/// key/value pairs (Qt's `option`/`setOption`); the challenge's realm is also under `"realm"`
/// (Qt's incoming option).
#[doc(alias = "QAuthenticator")]
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Authenticator {
    user: String,
    password: String,
    realm: String,
    options: BTreeMap<String, String>,
}

impl Authenticator {
    /// An empty authenticator ([`is_null`](Self::is_null) is true).
    pub fn new() -> Authenticator {
        Authenticator::default()
    }

    /// An authenticator with `user` and `password`.
    pub fn with_credentials(user: impl Into<String>, password: impl Into<String>) -> Authenticator {
        Authenticator {
            user: user.into(),
            password: password.into(),
            ..Authenticator::default()
        }
    }

    /// An empty authenticator for `challenge`: its realm set, and its realm also as the
    /// `"realm"` option, ready to be shown to the application.
    pub fn for_challenge(challenge: &Challenge) -> Authenticator {
        let mut auth = Authenticator::new();
        auth.set_realm(challenge.realm());
        auth
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Sets the user name (Qt's `setUser`).
    #[doc(alias = "setUser")]
    pub fn set_user(&mut self, user: impl Into<String>) {
        self.user = user.into();
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Sets the password (Qt's `setPassword`).
    #[doc(alias = "setPassword")]
    pub fn set_password(&mut self, password: impl Into<String>) {
        self.password = password.into();
    }

    /// The realm of the challenge this authenticator answers (`""` when unknown).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Sets the realm and the `"realm"` option (the manager does this from the challenge; Qt
    /// has no public setter).
    pub fn set_realm(&mut self, realm: impl Into<String>) {
        self.realm = realm.into();
        if self.realm.is_empty() {
            self.options.remove("realm");
        } else {
            self.options.insert("realm".to_owned(), self.realm.clone());
        }
    }

    /// The option `key`, if set (Qt's `option`).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// All options (Qt's `options`).
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    /// Sets option `key` (Qt's `setOption`).
    #[doc(alias = "setOption")]
    pub fn set_option(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.options.insert(key.into(), value.into());
    }

    /// True when neither a user name nor a password is set (Qt's `isNull`): the answer of an
    /// application that declined to authenticate. The realm and options, which the challenge
    /// fills, do not count.
    #[doc(alias = "isNull")]
    pub fn is_null(&self) -> bool {
        self.user.is_empty() && self.password.is_empty()
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("realm", &self.realm)
            .field("options", &self.options)
            .finish()
    }
}

/// Who asked for credentials: the origin server (`401`, `WWW-Authenticate`, `Authorization`)
/// or a proxy (`407`, `Proxy-Authenticate`, `Proxy-Authorization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AuthTarget {
    /// The origin server.
    Server,
    /// An HTTP proxy (or a SOCKS5 proxy's username/password method, without challenges).
    Proxy,
}

impl AuthTarget {
    /// The status code that carries this target's challenges: 401 or 407.
    pub fn status(self) -> StatusCode {
        match self {
            AuthTarget::Server => StatusCode::UNAUTHORIZED,
            AuthTarget::Proxy => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        }
    }

    /// `WWW-Authenticate` or `Proxy-Authenticate`.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            AuthTarget::Server => WWW_AUTHENTICATE,
            AuthTarget::Proxy => PROXY_AUTHENTICATE,
        }
    }

    /// `Authorization` or `Proxy-Authorization`.
    pub fn authorization_header(self) -> HeaderName {
        match self {
            AuthTarget::Server => AUTHORIZATION,
            AuthTarget::Proxy => PROXY_AUTHORIZATION,
        }
    }

    /// `Authentication-Info` or `Proxy-Authentication-Info` (RFC 9110 §11.6.3, §11.7.3).
    pub fn authentication_info_header(self) -> HeaderName {
        match self {
            AuthTarget::Server => HeaderName::from_static("authentication-info"),
            AuthTarget::Proxy => HeaderName::from_static("proxy-authentication-info"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticator_basics() {
        let mut a = Authenticator::new();
        assert!(a.is_null());
        a.set_realm("r");
        a.set_option("k", "v");
        assert!(a.is_null(), "realm and options do not count");
        assert_eq!(a.option("realm"), Some("r"));
        assert_eq!(a.option("k"), Some("v"));
        a.set_user("u");
        assert!(!a.is_null());
        let b = Authenticator::with_credentials("", "p");
        assert!(!b.is_null());
        assert_eq!(b.password(), "p");
        a.set_realm("");
        assert_eq!(a.option("realm"), None);
        assert_ne!(a, Authenticator::with_credentials("u", ""));
    }

    #[test]
    fn debug_redacts_the_password() {
        let a = Authenticator::with_credentials("u", "hunter2");
        let s = format!("{a:?}");
        assert!(s.contains("\"u\"") && !s.contains("hunter2"), "{s}");
    }

    #[test]
    fn for_challenge_takes_the_realm() {
        let c = &parse_challenge_str(r#"Basic realm="Intranet""#)[0];
        let a = Authenticator::for_challenge(c);
        assert_eq!(a.realm(), "Intranet");
        assert_eq!(a.option("realm"), Some("Intranet"));
        assert!(a.is_null());
    }

    #[test]
    fn targets() {
        assert_eq!(AuthTarget::Server.status(), 401);
        assert_eq!(AuthTarget::Proxy.status(), 407);
        assert_eq!(AuthTarget::Server.challenge_header(), "www-authenticate");
        assert_eq!(
            AuthTarget::Proxy.authorization_header(),
            "proxy-authorization"
        );
        assert_eq!(
            AuthTarget::Proxy.authentication_info_header(),
            "proxy-authentication-info"
        );
    }
}
