//! Choosing a challenge and answering it: Basic (RFC 7617) and Digest (RFC 7616).

use base64::Engine as _;
use http::HeaderValue;
use sha2::Digest as _;

use super::challenge::Challenge;
use super::Authenticator;

/// A Digest `algorithm` (RFC 7616 §3.3, the IANA "HTTP Digest Hash Algorithms" registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// `MD5`, the default when a challenge names no algorithm.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`: SHA-512/256 of FIPS 180-4 (its own initial values, not a truncated
    /// SHA-512).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl DigestAlgorithm {
    /// The algorithm a challenge's `algorithm` token names (case-insensitive), if supported.
    pub fn from_token(token: &str) -> Option<DigestAlgorithm> {
        const ALL: [DigestAlgorithm; 6] = [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha256Sess,
            DigestAlgorithm::Sha512_256,
            DigestAlgorithm::Sha512_256Sess,
        ];
        ALL.into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token.trim()))
    }

    /// The token as RFC 7616 spells it (`"SHA-512-256-sess"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
            DigestAlgorithm::Sha512_256 => "SHA-512-256",
            DigestAlgorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// True for the `-sess` variants, whose A1 also covers the nonce and cnonce.
    pub fn is_session(self) -> bool {
        matches!(
            self,
            DigestAlgorithm::Md5Sess
                | DigestAlgorithm::Sha256Sess
                | DigestAlgorithm::Sha512_256Sess
        )
    }

    /// The hash as lowercase hex.
    fn hash(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => hex(&md5(data)),
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => {
                hex(&sha2::Sha256::digest(data))
            }
            DigestAlgorithm::Sha512_256 | DigestAlgorithm::Sha512_256Sess => {
                hex(&sha2::Sha512_256::digest(data))
            }
        }
    }

    fn strength(self) -> u8 {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => 1,
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => 2,
            DigestAlgorithm::Sha512_256 | DigestAlgorithm::Sha512_256Sess => 3,
        }
    }
}

/// An authentication scheme this crate can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthScheme {
    /// `Basic` (RFC 7617).
    Basic,
    /// `Digest` (RFC 7616) with its algorithm.
    Digest(DigestAlgorithm),
}

impl AuthScheme {
    /// The scheme a challenge asks for, when this crate supports it: `Basic`, or `Digest` with a
    /// nonce and a known algorithm (absent means MD5). `None` for anything else.
    pub fn of(challenge: &Challenge) -> Option<AuthScheme> {
        if challenge.is_scheme("Basic") {
            return Some(AuthScheme::Basic);
        }
        if challenge.is_scheme("Digest") {
            challenge.param("nonce")?;
            let algorithm = match challenge.param("algorithm") {
                None => DigestAlgorithm::Md5,
                Some(token) => DigestAlgorithm::from_token(token)?,
            };
            return Some(AuthScheme::Digest(algorithm));
        }
        None
    }

    /// Relative strength: SHA-512-256 > SHA-256 > MD5 (each with its `-sess` variant) > Basic.
    fn strength(self) -> u8 {
        match self {
            AuthScheme::Basic => 0,
            AuthScheme::Digest(a) => a.strength(),
        }
    }
}

/// The quality of protection used in a Digest answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Qop {
    /// No `qop` in the challenge: RFC 2069 compatibility, no nc/cnonce.
    None,
    Auth,
    AuthInt,
}

/// `qop="auth"` is preferred when offered (every server that offers auth-int also offers auth,
/// and auth does not need the body); `auth-int` only when it is the only choice and the body is
/// replayable. `None` when the challenge offers only unknown qop values.
fn choose_qop(challenge: &Challenge, body_replayable: bool) -> Option<Qop> {
    let Some(list) = challenge.param("qop") else {
        return Some(Qop::None);
    };
    let offered = |name: &str| list.split(',').any(|q| q.trim().eq_ignore_ascii_case(name));
    if offered("auth") {
        Some(Qop::Auth)
    } else if offered("auth-int") && body_replayable {
        Some(Qop::AuthInt)
    } else {
        None
    }
}

/// The challenge to answer among those of one response: the strongest supported one
/// (SHA-512-256 > SHA-256 > MD5, `-sess` variants ranking with their hash, then Basic); among
/// equals, the first offered. Unknown schemes, Digest challenges without a nonce or with an
/// unknown algorithm, and Digest challenges that need `auth-int` while `body_replayable` is
/// false are ignored.
pub fn select_challenge(
    challenges: &[Challenge],
    body_replayable: bool,
) -> Option<(&Challenge, AuthScheme)> {
    let mut best: Option<(&Challenge, AuthScheme)> = None;
    for challenge in challenges {
        let Some(scheme) = AuthScheme::of(challenge) else {
            continue;
        };
        if matches!(scheme, AuthScheme::Digest(_))
            && choose_qop(challenge, body_replayable).is_none()
        {
            continue;
        }
        if best.is_none_or(|(_, b)| scheme.strength() > b.strength()) {
            best = Some((challenge, scheme));
        }
    }
    best
}

/// What [`respond`] produced: the header value to send and what it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthResponse {
    /// The value for `Authorization` (or `Proxy-Authorization`, see
    /// [`AuthTarget::authorization_header`](super::AuthTarget::authorization_header)).
    pub header: HeaderValue,
    /// The scheme answered.
    pub scheme: AuthScheme,
    /// The realm of the challenge answered (`""` when it had none).
    pub realm: String,
    /// The challenge answered had `stale=true`: the server refused the nonce, not the
    /// credentials. Retry with the same credentials without asking the user, and without
    /// counting it as a failed attempt.
    pub stale: bool,
}

/// Answers the strongest supported challenge in `challenges` with `credentials`.
///
/// * `method`: the request method (`"GET"`, `"CONNECT"`, ...).
/// * `uri`: the request-target exactly as sent on the request line: origin-form
///   (`/dir/index.html?x=1`) to an origin server, absolute-form to an HTTP proxy, authority-form
///   (`host:443`) for CONNECT.
/// * `body`: the request body when it can be replayed (`Some(b"")` for a request without a
///   body), `None` when it cannot; only `qop=auth-int` needs it.
/// * `state`: the state of this protection space, kept between requests (in the
///   [`CredentialCache`](super::CredentialCache)): it remembers the challenge, the Digest nonce
///   and its nonce count, and the cnonce. A new nonce restarts the count at `00000001`.
///
/// Returns `None` when no challenge is supported. Does not look at whether the credentials are
/// empty: that is the caller's decision.
pub fn respond(
    challenges: &[Challenge],
    credentials: &Authenticator,
    method: &str,
    uri: &str,
    body: Option<&[u8]>,
    state: &mut AuthState,
) -> Option<AuthResponse> {
    let (challenge, scheme) = select_challenge(challenges, body.is_some())?;
    state.accept(challenge, scheme, body.is_some());
    let header = state.authorize(credentials, method, uri, body)?;
    Some(AuthResponse {
        header,
        scheme,
        realm: challenge.realm().to_owned(),
        stale: challenge.is_stale(),
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct DigestParams {
    algorithm: DigestAlgorithm,
    /// Whether the challenge named the algorithm (then it is echoed).
    algorithm_named: bool,
    nonce: String,
    opaque: Option<String>,
    auth_offered: bool,
    auth_int_offered: bool,
    qop_absent: bool,
    userhash: bool,
    /// Requests sent with this nonce.
    nc: u32,
    /// The cnonce used with this nonce (one per nonce, so that a `-sess` session key stays
    /// the same while the nonce count grows).
    cnonce: String,
}

/// The state of one protection space between requests: the challenge last answered and, for
/// Digest, its nonce, nonce count and cnonce. Keep one per protection space (the
/// [`CredentialCache`](super::CredentialCache) stores one beside each credential) and pass it to
/// [`respond`] on a challenge and to [`AuthState::authorize`] for pre-emptive credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthState {
    scheme: Option<AuthScheme>,
    realm: String,
    /// Basic: the challenge said `charset=UTF-8`.
    utf8: bool,
    digest: Option<DigestParams>,
    fixed_cnonce: Option<String>,
}

impl AuthState {
    /// An empty state: nothing to send until a challenge is answered.
    pub fn new() -> AuthState {
        AuthState::default()
    }

    /// A state whose Digest cnonce is always `cnonce` instead of a random one: for tests and
    /// reproducible examples only (a fixed cnonce weakens Digest).
    pub fn with_fixed_cnonce(cnonce: impl Into<String>) -> AuthState {
        AuthState {
            fixed_cnonce: Some(cnonce.into()),
            ..AuthState::default()
        }
    }

    /// The scheme of the challenge last answered, if any.
    pub fn scheme(&self) -> Option<AuthScheme> {
        self.scheme
    }

    /// The realm of the challenge last answered.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The Digest nonce count last sent (0 before the first request with the current nonce).
    pub fn nonce_count(&self) -> u32 {
        self.digest.as_ref().map_or(0, |d| d.nc)
    }

    /// Takes the parameters of `challenge` (answered with `scheme`). The nonce count and cnonce
    /// carry on when the nonce is the one already held.
    fn accept(&mut self, challenge: &Challenge, scheme: AuthScheme, body_replayable: bool) {
        self.scheme = Some(scheme);
        self.realm = challenge.realm().to_owned();
        self.utf8 = challenge
            .param("charset")
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("UTF-8"));
        let AuthScheme::Digest(algorithm) = scheme else {
            self.digest = None;
            return;
        };
        let nonce = challenge.param("nonce").unwrap_or_default().to_owned();
        let qop = choose_qop(challenge, body_replayable);
        let qop_list = challenge.param("qop").unwrap_or_default();
        let offered = |name: &str| {
            qop_list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case(name))
        };
        let (nc, cnonce) = match &self.digest {
            Some(d) if d.nonce == nonce && d.algorithm == algorithm => (d.nc, d.cnonce.clone()),
            _ => (0, self.new_cnonce()),
        };
        self.digest = Some(DigestParams {
            algorithm,
            algorithm_named: challenge.param("algorithm").is_some(),
            nonce,
            opaque: challenge.param("opaque").map(str::to_owned),
            auth_offered: offered("auth"),
            auth_int_offered: offered("auth-int"),
            qop_absent: qop == Some(Qop::None),
            userhash: challenge
                .param("userhash")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            nc,
            cnonce,
        });
    }

    fn new_cnonce(&self) -> String {
        if let Some(fixed) = &self.fixed_cnonce {
            return fixed.clone();
        }
        let mut bytes = [0u8; 16];
        if getrandom::getrandom(&mut bytes).is_err() {
            // No OS randomness: still unique enough per process for a cnonce.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            bytes = nanos.to_le_bytes();
        }
        hex(&bytes)
    }

    /// Takes an `Authentication-Info` (or `Proxy-Authentication-Info`) header: its `nextnonce`
    /// replaces the nonce (the count restarts) so the next request needs no new challenge.
    pub fn apply_authentication_info(&mut self, value: &HeaderValue) {
        let info = super::challenge::parse_challenge_str(&format!(
            "x {}",
            String::from_utf8_lossy(value.as_bytes())
        ));
        let Some(next) = info.first().and_then(|c| c.param("nextnonce")) else {
            return;
        };
        let cnonce = self.new_cnonce();
        if let Some(d) = &mut self.digest {
            if d.nonce != next {
                d.nonce = next.to_owned();
                d.nc = 0;
                d.cnonce = cnonce;
            }
        }
    }

    /// The `Authorization` value for a request to this protection space, built from the
    /// challenge last answered: pre-emptive credentials (Qt's AuthenticationReuse). Digest
    /// increments the nonce count. `None` before any challenge, or when the only qop possible
    /// is `auth-int` and `body` is `None` (not replayable). See [`respond`] for the arguments.
    pub fn authorize(
        &mut self,
        credentials: &Authenticator,
        method: &str,
        uri: &str,
        body: Option<&[u8]>,
    ) -> Option<HeaderValue> {
        match self.scheme? {
            AuthScheme::Basic => Some(basic(credentials, self.utf8)),
            AuthScheme::Digest(_) => {
                let realm = self.realm.clone();
                let d = self.digest.as_mut()?;
                let qop = if d.qop_absent {
                    Qop::None
                } else if d.auth_offered {
                    Qop::Auth
                } else if d.auth_int_offered && body.is_some() {
                    Qop::AuthInt
                } else {
                    return None;
                };
                d.nc = d.nc.wrapping_add(1);
                digest(d, &realm, qop, credentials, method, uri, body)
            }
        }
    }
}

/// `Basic base64(user ":" password)`: UTF-8 when the challenge said `charset=UTF-8`, otherwise
/// Latin-1 when every character fits (as Qt and browsers), else UTF-8.
fn basic(credentials: &Authenticator, utf8: bool) -> HeaderValue {
    let joined = format!("{}:{}", credentials.user(), credentials.password());
    let bytes: Vec<u8> = if !utf8 && joined.chars().all(|c| (c as u32) < 0x100) {
        joined.chars().map(|c| c as u8).collect()
    } else {
        joined.into_bytes()
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    // Invariant: "Basic " and base64 are visible ASCII, always a valid header value.
    #[allow(clippy::expect_used)]
    let mut value =
        HeaderValue::try_from(format!("Basic {encoded}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

fn digest(
    d: &DigestParams,
    realm: &str,
    qop: Qop,
    credentials: &Authenticator,
    method: &str,
    uri: &str,
    body: Option<&[u8]>,
) -> Option<HeaderValue> {
    let alg = d.algorithm;
    let user = credentials.user();
    let nc = format!("{:08x}", d.nc);
    let mut ha1 = alg.hash(format!("{user}:{realm}:{}", credentials.password()).as_bytes());
    if alg.is_session() {
        ha1 = alg.hash(format!("{ha1}:{}:{}", d.nonce, d.cnonce).as_bytes());
    }
    let ha2 = match qop {
        Qop::AuthInt => alg.hash(format!("{method}:{uri}:{}", alg.hash(body?)).as_bytes()),
        _ => alg.hash(format!("{method}:{uri}").as_bytes()),
    };
    let response = match qop {
        Qop::None => alg.hash(format!("{ha1}:{}:{ha2}", d.nonce).as_bytes()),
        Qop::Auth | Qop::AuthInt => {
            let qop = if qop == Qop::Auth { "auth" } else { "auth-int" };
            alg.hash(format!("{ha1}:{}:{nc}:{}:{qop}:{ha2}", d.nonce, d.cnonce).as_bytes())
        }
    };

    let mut out = String::from("Digest ");
    if d.userhash {
        let hashed = alg.hash(format!("{user}:{realm}").as_bytes());
        out.push_str(&format!("username=\"{hashed}\""));
    } else if user.is_ascii() {
        out.push_str(&format!("username={}", quote(user)));
    } else {
        out.push_str(&format!("username*=UTF-8''{}", ext_value(user)));
    }
    out.push_str(&format!(", realm={}", quote(realm)));
    out.push_str(&format!(", uri={}", quote(uri)));
    if d.algorithm_named {
        out.push_str(&format!(", algorithm={}", alg.as_str()));
    }
    out.push_str(&format!(", nonce={}", quote(&d.nonce)));
    match qop {
        Qop::None => {}
        Qop::Auth | Qop::AuthInt => {
            let qop = if qop == Qop::Auth { "auth" } else { "auth-int" };
            out.push_str(&format!(
                ", nc={nc}, cnonce={}, qop={qop}",
                quote(&d.cnonce)
            ));
        }
    }
    out.push_str(&format!(", response=\"{response}\""));
    if let Some(opaque) = &d.opaque {
        out.push_str(&format!(", opaque={}", quote(opaque)));
    }
    if d.userhash {
        out.push_str(", userhash=true");
    }
    let mut value = HeaderValue::from_bytes(out.as_bytes()).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A quoted-string, with `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The value-chars of an RFC 8187 ext-value: UTF-8, attr-chars as they are, the rest
/// percent-encoded.
fn ext_value(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// The MD5 digest of `data` (Digest's `MD5` and `MD5-sess` algorithms), from the `md-5` crate.
fn md5(data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(data).into()
}

#[cfg(test)]
#[path = "respond_tests.rs"]
mod tests;
