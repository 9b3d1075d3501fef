//! Parsing `WWW-Authenticate` and `Proxy-Authenticate` (RFC 9110 §11.6.1, §11.7.1):
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! One header line may carry several challenges, and a response may carry several header lines;
//! the commas that separate challenges are the same as those that separate parameters, so a
//! `token` that is not followed by `=` starts the next challenge. The parser is lenient: a
//! malformed part is skipped up to the next comma and the rest is still read.

use http::HeaderValue;

/// One authentication challenge from a `WWW-Authenticate` or `Proxy-Authenticate` header:
/// an auth-scheme (`Basic`, `Digest`, ...) with either a token68 or a list of parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// A challenge for `scheme` with the given parameters (names are compared without regard
    /// to case; values are the unquoted, unescaped strings).
    pub fn new<S: Into<String>, N: Into<String>, V: Into<String>>(
        scheme: S,
        params: impl IntoIterator<Item = (N, V)>,
    ) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            token68: None,
            params: params
                .into_iter()
                .map(|(n, v)| (n.into().to_ascii_lowercase(), v.into()))
                .collect(),
        }
    }

    /// The auth-scheme as the server spelled it (compare it without regard to case).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// True when the auth-scheme is `name`, compared without regard to case.
    pub fn is_scheme(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }

    /// The token68 form of the challenge data (used by `Negotiate`, for instance), if any.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The value of parameter `name` (case-insensitive), unquoted; the first one when the
    /// server repeated it.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All parameters in the order received, names in lowercase.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The `realm` parameter, or `""` when absent.
    pub fn realm(&self) -> &str {
        self.param("realm").unwrap_or("")
    }

    /// True for a Digest challenge with `stale=true`: the server rejected the nonce, not the
    /// credentials, so the request should be retried with the same credentials and the new
    /// nonce, without asking the user (RFC 7616 §3.3).
    pub fn is_stale(&self) -> bool {
        self.param("stale")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}

/// Parses every challenge in the given `WWW-Authenticate` (or `Proxy-Authenticate`) header
/// values, in order: pass `headers.get_all(WWW_AUTHENTICATE)`.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in values {
        parse_into(value.as_bytes(), &mut out);
    }
    out
}

/// Parses the challenges in one header value given as text.
pub fn parse_challenge_str(value: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    parse_into(value.as_bytes(), &mut out);
    out
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// Header bytes to text: UTF-8 when valid, otherwise Latin-1 (each byte one code point).
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> &[u8] {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// Skips to just after the next comma (or the end): error recovery.
    fn skip_past_comma(&mut self) {
        while let Some(b) = self.peek() {
            self.i += 1;
            if b == b',' {
                break;
            }
        }
    }

    /// A quoted-string starting at the opening quote; an unterminated one runs to the end.
    fn quoted_string(&mut self) -> String {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut value = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        value.push(escaped);
                        self.i += 1;
                    }
                }
                _ => value.push(b),
            }
        }
        text(&value)
    }

    /// A token68 followed by optional whitespace and then a comma or the end, if one is here.
    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        let mut j = self.i;
        while self.s.get(j).copied().is_some_and(is_token68_char) {
            j += 1;
        }
        if j == start {
            return None;
        }
        while self.s.get(j) == Some(&b'=') {
            j += 1;
        }
        let end = j;
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if j < self.s.len() && self.s[j] != b',' {
            return None;
        }
        self.i = j;
        Some(text(&self.s[start..end]))
    }
}

fn parse_into(s: &[u8], out: &mut Vec<Challenge>) {
    let mut c = Cursor { s, i: 0 };
    loop {
        c.skip_ws_and_commas();
        if c.peek().is_none() {
            return;
        }
        let scheme = c.token();
        if scheme.is_empty() {
            // Not a challenge: skip this list element.
            c.skip_past_comma();
            continue;
        }
        let mut challenge = Challenge {
            scheme: text(scheme),
            token68: None,
            params: Vec::new(),
        };
        let had_space = matches!(c.peek(), Some(b' ' | b'\t'));
        c.skip_ws();
        if had_space {
            if let Some(token68) = c.token68() {
                challenge.token68 = Some(token68);
            } else {
                parse_params(&mut c, &mut challenge.params);
            }
        } else if !matches!(c.peek(), None | Some(b',')) {
            // Garbage right after the scheme ("Basic\"x\""): skip the element.
            c.skip_past_comma();
        }
        out.push(challenge);
    }
}

/// Reads `name=value` pairs separated by commas, until a list element that is not a parameter
/// (the next challenge's scheme) or the end. Leaves the cursor at the start of that element.
fn parse_params(c: &mut Cursor<'_>, params: &mut Vec<(String, String)>) {
    loop {
        c.skip_ws_and_commas();
        let element_start = c.i;
        let name = c.token().to_ascii_lowercase();
        if name.is_empty() {
            if c.peek().is_none() {
                return;
            }
            // Garbage: skip the element, stay in this challenge.
            c.skip_past_comma();
            continue;
        }
        c.skip_ws();
        if c.peek() != Some(b'=') {
            // A token not followed by "=": the scheme of the next challenge.
            c.i = element_start;
            return;
        }
        c.i += 1;
        c.skip_ws();
        let value = if c.peek() == Some(b'"') {
            c.quoted_string()
        } else {
            text(c.token())
        };
        params.push((text(&name), value));
        c.skip_ws();
        match c.peek() {
            None => return,
            Some(b',') => {}
            Some(_) => c.skip_past_comma(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params().collect()
    }

    #[test]
    fn single_basic() {
        let cs = parse_challenge_str(r#"Basic realm="simple""#);
        assert_eq!(cs.len(), 1);
        assert!(cs[0].is_scheme("basic"));
        assert_eq!(cs[0].realm(), "simple");
    }

    #[test]
    fn rfc9110_example_two_challenges_in_one_line() {
        let cs = parse_challenge_str(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        );
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].scheme(), "Newauth");
        assert_eq!(
            params(&cs[0]),
            [
                ("realm", "apps"),
                ("type", "1"),
                ("title", r#"Login to "apps""#)
            ]
        );
        assert_eq!(cs[1].scheme(), "Basic");
        assert_eq!(cs[1].realm(), "simple");
    }

    #[test]
    fn commas_inside_quoted_strings_and_escapes() {
        let cs = parse_challenge_str(
            r#"Digest realm="a, b", qop="auth, auth-int", nonce="x\\y\"z", Basic realm="c""#,
        );
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].realm(), "a, b");
        assert_eq!(cs[0].param("QOP"), Some("auth, auth-int"));
        assert_eq!(cs[0].param("nonce"), Some(r#"x\y"z"#));
        assert_eq!(cs[1].realm(), "c");
    }

    #[test]
    fn several_header_values() {
        let a = HeaderValue::from_static(r#"Digest realm="r", nonce="n", algorithm=SHA-256"#);
        let b = HeaderValue::from_static(r#"Digest realm="r", nonce="n", algorithm=MD5"#);
        let c = HeaderValue::from_static("Negotiate");
        let cs = parse_challenges([&a, &b, &c]);
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0].param("algorithm"), Some("SHA-256"));
        assert_eq!(cs[1].param("algorithm"), Some("MD5"));
        assert!(cs[2].is_scheme("negotiate"));
        assert_eq!(cs[2].params().count(), 0);
    }

    #[test]
    fn token68_and_bare_schemes() {
        let cs = parse_challenge_str("Negotiate abc+/def==, Basic, Bearer , NTLM");
        let schemes: Vec<_> = cs.iter().map(|c| c.scheme()).collect();
        assert_eq!(schemes, ["Negotiate", "Basic", "Bearer", "NTLM"]);
        assert_eq!(cs[0].token68(), Some("abc+/def=="));
        assert_eq!(cs[1].token68(), None);
    }

    #[test]
    fn bws_around_equals_and_empty_elements() {
        let cs = parse_challenge_str(r#" , Basic realm = "x" ,, charset= UTF-8 ,"#);
        assert_eq!(cs.len(), 1);
        assert_eq!(params(&cs[0]), [("realm", "x"), ("charset", "UTF-8")]);
    }

    #[test]
    fn param_names_case_insensitive_first_wins() {
        let cs = parse_challenge_str(r#"Basic REALM="one", realm="two""#);
        assert_eq!(cs[0].realm(), "one");
    }

    #[test]
    fn stale_flag() {
        let cs =
            parse_challenge_str(r#"Digest nonce="n", stale=TRUE, Digest nonce="m", stale="false""#);
        assert!(cs[0].is_stale());
        assert!(!cs[1].is_stale());
    }

    #[test]
    fn garbage_is_skipped() {
        let cs = parse_challenge_str(
            r#"Basic realm="x" junk, "oops", Digest nonce="n", =bad, qop=auth"#,
        );
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].realm(), "x");
        assert_eq!(params(&cs[1]), [("nonce", "n"), ("qop", "auth")]);
        // Unterminated quoted string runs to the end.
        let cs = parse_challenge_str(r#"Basic realm="open"#);
        assert_eq!(cs[0].realm(), "open");
        assert!(parse_challenge_str("").is_empty());
        assert!(parse_challenge_str(" ,, ").is_empty());
    }

    #[test]
    fn non_utf8_realm_is_latin1() {
        let v = HeaderValue::from_bytes(b"Basic realm=\"caf\xe9\"").unwrap();
        assert_eq!(parse_challenges([&v])[0].realm(), "caf\u{e9}");
        let v = HeaderValue::from_bytes("Basic realm=\"caf\u{e9}\"".as_bytes()).unwrap();
        assert_eq!(parse_challenges([&v])[0].realm(), "caf\u{e9}");
    }
}
