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
mod tests {
    use super::super::challenge::parse_challenge_str;
    use super::*;

    fn creds(user: &str, password: &str) -> Authenticator {
        Authenticator::with_credentials(user, password)
    }

    /// The `response` parameter of a Digest header.
    fn param(header: &HeaderValue, name: &str) -> Option<String> {
        let challenges = parse_challenge_str(header.to_str().unwrap());
        challenges[0].param(name).map(str::to_owned)
    }

    const RFC7616_391: &str = concat!(
        r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, "#,
        r#"nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "#,
        r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", "#,
        r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, "#,
        r#"nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "#,
        r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
    );
    const CNONCE_391: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_3_9_1_sha256_is_chosen_and_matches() {
        let challenges = parse_challenge_str(RFC7616_391);
        assert_eq!(challenges.len(), 2);
        let mut state = AuthState::with_fixed_cnonce(CNONCE_391);
        let r = respond(
            &challenges,
            &creds("Mufasa", "Circle of Life"),
            "GET",
            "/dir/index.html",
            Some(b""),
            &mut state,
        )
        .unwrap();
        assert_eq!(r.scheme, AuthScheme::Digest(DigestAlgorithm::Sha256));
        assert_eq!(r.realm, "http-auth@example.org");
        assert!(!r.stale);
        assert_eq!(
            r.header.to_str().unwrap(),
            concat!(
                r#"Digest username="Mufasa", realm="http-auth@example.org", "#,
                r#"uri="/dir/index.html", algorithm=SHA-256, "#,
                r#"nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, "#,
                r#"cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, "#,
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", "#,
                r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
            )
        );
        assert!(r.header.is_sensitive());
    }

    #[test]
    fn rfc7616_3_9_1_md5() {
        let challenges = parse_challenge_str(RFC7616_391);
        let mut state = AuthState::with_fixed_cnonce(CNONCE_391);
        let r = respond(
            &challenges[1..],
            &creds("Mufasa", "Circle of Life"),
            "GET",
            "/dir/index.html",
            Some(b""),
            &mut state,
        )
        .unwrap();
        assert_eq!(r.scheme, AuthScheme::Digest(DigestAlgorithm::Md5));
        assert_eq!(
            r.header.to_str().unwrap(),
            concat!(
                r#"Digest username="Mufasa", realm="http-auth@example.org", "#,
                r#"uri="/dir/index.html", algorithm=MD5, "#,
                r#"nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, "#,
                r#"cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, "#,
                r#"response="8ca523f5e9506fed4657c9700eebdbec", "#,
                r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
            )
        );
    }

    const RFC7616_392: &str = concat!(
        r#"Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, "#,
        r#"nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", "#,
        r#"opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true"#
    );
    const CNONCE_392: &str = "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v";

    /// RFC 7616 §3.9.2 with the values corrected by erratum 4897 (those printed in the RFC
    /// are wrong).
    #[test]
    fn rfc7616_3_9_2_sha512_256_userhash_erratum_4897() {
        let challenges = parse_challenge_str(RFC7616_392);
        let mut state = AuthState::with_fixed_cnonce(CNONCE_392);
        let r = respond(
            &challenges,
            &creds("J\u{e4}s\u{f8}n Doe", "Secret, or not?"),
            "GET",
            "/doe.json",
            None,
            &mut state,
        )
        .unwrap();
        assert_eq!(r.scheme, AuthScheme::Digest(DigestAlgorithm::Sha512_256));
        assert_eq!(
            r.header.to_str().unwrap(),
            concat!(
                r#"Digest username="793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b", "#,
                r#"realm="api@example.org", uri="/doe.json", algorithm=SHA-512-256, "#,
                r#"nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", nc=00000001, "#,
                r#"cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", qop=auth, "#,
                r#"response="3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5", "#,
                r#"opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", userhash=true"#
            )
        );
    }

    #[test]
    fn rfc7616_3_9_2_without_userhash_sends_username_star() {
        let challenges = parse_challenge_str(&RFC7616_392.replace(", userhash=true", ""));
        let mut state = AuthState::with_fixed_cnonce(CNONCE_392);
        let r = respond(
            &challenges,
            &creds("J\u{e4}s\u{f8}n Doe", "Secret, or not?"),
            "GET",
            "/doe.json",
            None,
            &mut state,
        )
        .unwrap();
        let header = r.header.to_str().unwrap();
        assert!(
            header.starts_with("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm="),
            "{header}"
        );
        assert!(!header.contains("userhash"));
        // Same response as with userhash: the hash covers the real user name either way.
        assert_eq!(
            param(&r.header, "response").unwrap(),
            "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
        );
    }

    #[test]
    fn sha512_256_is_not_truncated_sha512() {
        let ours = DigestAlgorithm::Sha512_256.hash(b"abc");
        // FIPS 180-4 example for SHA-512/256("abc").
        assert_eq!(
            ours,
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
        let truncated = hex(&sha2::Sha512::digest(b"abc")[..32]);
        assert_ne!(ours, truncated);
    }

    #[test]
    fn strongest_scheme_is_chosen() {
        let cases: [(&str, Option<AuthScheme>); 7] = [
            (r#"Basic realm="a""#, Some(AuthScheme::Basic)),
            (
                r#"Basic realm="a", Digest realm="a", nonce="n""#,
                Some(AuthScheme::Digest(DigestAlgorithm::Md5)),
            ),
            (
                r#"Digest nonce="n", algorithm=MD5-sess, Digest nonce="n", algorithm=SHA-512-256-sess, Digest nonce="n", algorithm=SHA-256"#,
                Some(AuthScheme::Digest(DigestAlgorithm::Sha512_256Sess)),
            ),
            (
                r#"Digest nonce="n", algorithm=sha-256-SESS, Basic realm="x""#,
                Some(AuthScheme::Digest(DigestAlgorithm::Sha256Sess)),
            ),
            (
                // Unknown algorithm, missing nonce, unknown scheme: all ignored.
                r#"Digest nonce="n", algorithm=SHA3, Digest realm="x", Negotiate abc=, Basic realm="b""#,
                Some(AuthScheme::Basic),
            ),
            (r#"Negotiate, NTLM, Bearer realm="x""#, None),
            (
                // Unknown qop only: ignored.
                r#"Digest nonce="n", qop="auth-conf", Basic realm="b""#,
                Some(AuthScheme::Basic),
            ),
        ];
        for (header, expected) in cases {
            let challenges = parse_challenge_str(header);
            assert_eq!(
                select_challenge(&challenges, true).map(|(_, s)| s),
                expected,
                "{header}"
            );
        }
    }

    #[test]
    fn equal_strength_first_offered_wins() {
        let challenges = parse_challenge_str(
            r#"Digest realm="one", nonce="n", algorithm=MD5, Digest realm="two", nonce="n", algorithm=MD5-sess"#,
        );
        assert_eq!(
            select_challenge(&challenges, true).unwrap().0.realm(),
            "one"
        );
    }

    #[test]
    fn basic_encodings() {
        let cases = [
            // (user, password, challenge, expected)
            (
                "Aladdin",
                "open sesame",
                r#"Basic realm="x""#,
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            ),
            // RFC 7617 §2.1: "test" / "123£" with charset=UTF-8.
            (
                "test",
                "123\u{a3}",
                r#"Basic realm="foo", charset="UTF-8""#,
                "Basic dGVzdDoxMjPCow==",
            ),
            // Without charset: Latin-1 ("123£" is 0xa3).
            (
                "test",
                "123\u{a3}",
                r#"Basic realm="foo""#,
                "Basic dGVzdDoxMjOj",
            ),
            // Not representable in Latin-1: UTF-8.
            (
                "test",
                "\u{20ac}",
                r#"Basic realm="foo""#,
                "Basic dGVzdDrigqw=",
            ),
        ];
        for (user, password, challenge, expected) in cases {
            let mut state = AuthState::new();
            let r = respond(
                &parse_challenge_str(challenge),
                &creds(user, password),
                "GET",
                "/",
                None,
                &mut state,
            )
            .unwrap();
            assert_eq!(
                r.header.to_str().unwrap(),
                expected,
                "{challenge} {password}"
            );
            assert!(r.header.is_sensitive());
            // Pre-emptive: the same value again.
            assert_eq!(
                state
                    .authorize(&creds(user, password), "GET", "/other", None)
                    .unwrap(),
                r.header
            );
        }
    }

    #[test]
    fn nonce_count_increments_and_restarts_with_a_new_nonce() {
        let c1 = parse_challenge_str(r#"Digest realm="r", nonce="one", qop="auth""#);
        let mut state = AuthState::new();
        let who = creds("u", "p");
        let r = respond(&c1, &who, "GET", "/a", None, &mut state).unwrap();
        assert_eq!(param(&r.header, "nc").unwrap(), "00000001");
        let cnonce = param(&r.header, "cnonce").unwrap();
        assert_eq!(cnonce.len(), 32, "random 16 bytes in hex");
        let h2 = state.authorize(&who, "GET", "/b", None).unwrap();
        assert_eq!(param(&h2, "nc").unwrap(), "00000002");
        assert_eq!(param(&h2, "cnonce").unwrap(), cnonce);
        assert_eq!(state.nonce_count(), 2);
        // The same challenge again (e.g. a 401 for a wrong password): the count carries on.
        let r = respond(&c1, &who, "GET", "/a", None, &mut state).unwrap();
        assert_eq!(param(&r.header, "nc").unwrap(), "00000003");
        // stale=true with a new nonce: the count restarts, the flag is reported.
        let c2 = parse_challenge_str(r#"Digest realm="r", nonce="two", qop="auth", stale=true"#);
        let r = respond(&c2, &who, "GET", "/a", None, &mut state).unwrap();
        assert!(r.stale);
        assert_eq!(param(&r.header, "nc").unwrap(), "00000001");
        assert_eq!(param(&r.header, "nonce").unwrap(), "two");
        assert_ne!(param(&r.header, "cnonce").unwrap(), cnonce);
        // nextnonce from Authentication-Info.
        state.apply_authentication_info(&HeaderValue::from_static(
            r#"qop=auth, rspauth="x", nextnonce="three", nc=00000001"#,
        ));
        let h = state.authorize(&who, "GET", "/a", None).unwrap();
        assert_eq!(param(&h, "nonce").unwrap(), "three");
        assert_eq!(param(&h, "nc").unwrap(), "00000001");
    }

    #[test]
    fn auth_int_uses_the_body_hash() {
        // Only auth-int offered: needs the body.
        let challenges = parse_challenge_str(
            r#"Digest realm="r", nonce="n", qop="auth-int", algorithm=SHA-256, opaque="o""#,
        );
        let who = creds("u", "p");
        assert!(select_challenge(&challenges, false).is_none());
        assert!(respond(&challenges, &who, "POST", "/f", None, &mut AuthState::new()).is_none());
        let body = b"hello";
        let mut state = AuthState::with_fixed_cnonce("c");
        let r = respond(&challenges, &who, "POST", "/f", Some(body), &mut state).unwrap();
        assert_eq!(param(&r.header, "qop").unwrap(), "auth-int");
        let a = DigestAlgorithm::Sha256;
        let ha1 = a.hash(b"u:r:p");
        let ha2 = a.hash(format!("POST:/f:{}", a.hash(body)).as_bytes());
        let expected = a.hash(format!("{ha1}:n:00000001:c:auth-int:{ha2}").as_bytes());
        assert_eq!(param(&r.header, "response").unwrap(), expected);
        // Pre-emptive without a replayable body: nothing to send.
        assert!(state.authorize(&who, "POST", "/f", None).is_none());
    }

    #[test]
    fn md5_sess_and_legacy_rfc2069() {
        let who = creds("Mufasa", "Circle Of Life");
        // MD5-sess: A1 = H(H(user:realm:pass):nonce:cnonce).
        let challenges =
            parse_challenge_str(r#"Digest realm="r", nonce="n", qop=auth, algorithm=MD5-sess"#);
        let mut state = AuthState::with_fixed_cnonce("c");
        let r = respond(&challenges, &who, "GET", "/", None, &mut state).unwrap();
        let a = DigestAlgorithm::Md5;
        let ha1 = a.hash(format!("{}:n:c", a.hash(b"Mufasa:r:Circle Of Life")).as_bytes());
        let ha2 = a.hash(b"GET:/");
        assert_eq!(
            param(&r.header, "response").unwrap(),
            a.hash(format!("{ha1}:n:00000001:c:auth:{ha2}").as_bytes())
        );
        assert_eq!(param(&r.header, "algorithm").unwrap(), "MD5-sess");

        // RFC 2069 (no qop): no nc/cnonce, no algorithm.
        let challenges = parse_challenge_str(
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#,
        );
        // RFC 2069 §2.4 example (password "CircleOfLife"), with its errata-corrected response.
        let r = respond(
            &challenges,
            &creds("Mufasa", "CircleOfLife"),
            "GET",
            "/dir/index.html",
            None,
            &mut AuthState::new(),
        )
        .unwrap();
        let header = r.header.to_str().unwrap();
        assert!(!header.contains("nc=") && !header.contains("cnonce") && !header.contains("qop"));
        assert!(!header.contains("algorithm") && !header.contains("opaque"));
        assert_eq!(
            param(&r.header, "response").unwrap(),
            "1949323746fe6a43ef61f9606e7febea"
        );
    }

    #[test]
    fn quoting_of_user_and_uri() {
        let challenges = parse_challenge_str(r#"Digest realm="r\"q", nonce="n""#);
        let r = respond(
            &challenges,
            &creds(r#"a"b\c"#, "p"),
            "GET",
            "/x?y=\"z\"",
            None,
            &mut AuthState::new(),
        )
        .unwrap();
        let header = r.header.to_str().unwrap();
        assert!(header.starts_with(r#"Digest username="a\"b\\c", realm="r\"q", uri="/x?y=\"z\"""#));
        assert_eq!(param(&r.header, "username").unwrap(), r#"a"b\c"#);
    }

    #[test]
    fn authorize_before_any_challenge_is_none() {
        assert!(AuthState::new()
            .authorize(&creds("u", "p"), "GET", "/", None)
            .is_none());
    }
}
