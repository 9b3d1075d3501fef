//! Tests of `auth/respond.rs`.

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
