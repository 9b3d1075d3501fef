//! `WWW-Authenticate` / `Proxy-Authenticate` (auth/challenge.rs) and answering them
//! (auth/respond.rs). The first line of the input is `user:password`, every further line one
//! header value. Properties: schemes and parameter names are tokens (names lowercase); the
//! challenges, written back with quoted values, parse to the same challenges; an answer is
//! `Basic`/`Digest` as selected, and a pre-emptive answer from the same state works too.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use netaccess::auth::{
    parse_challenge_str, parse_challenges, respond, select_challenge, AuthScheme, AuthState,
    Challenge,
};
use netaccess::Authenticator;

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn write(challenges: &[Challenge]) -> String {
    let mut parts = Vec::new();
    for c in challenges {
        let mut s = c.scheme().to_owned();
        if let Some(t) = c.token68() {
            s.push(' ');
            s.push_str(t);
        } else {
            let params: Vec<String> = c
                .params()
                .map(|(n, v)| format!("{n}={}", netaccess_fuzz::quoted_string(v)))
                .collect();
            if !params.is_empty() {
                s.push(' ');
                s.push_str(&params.join(", "));
            }
        }
        parts.push(s);
    }
    parts.join(", ")
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let creds = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let (user, password) = creds.split_once(':').unwrap_or((&creds, ""));
    let values: Vec<HeaderValue> = lines
        .take(8)
        .filter_map(|l| HeaderValue::from_bytes(l).ok())
        .collect();
    let challenges = parse_challenges(&values);
    for c in &challenges {
        assert!(
            !c.scheme().is_empty() && c.scheme().bytes().all(is_tchar),
            "{c:?}"
        );
        for (name, _) in c.params() {
            assert!(!name.is_empty() && name.bytes().all(is_tchar), "{c:?}");
            assert_eq!(name, name.to_ascii_lowercase());
        }
        if let Some(t) = c.token68() {
            assert!(!t.is_empty() && c.params().count() == 0, "{c:?}");
        }
    }
    let written = write(&challenges);
    assert_eq!(
        parse_challenge_str(&written),
        challenges,
        "written as {written:?}"
    );

    let credentials = Authenticator::with_credentials(user, password);
    for body in [Some(&b""[..]), None] {
        let selected = select_challenge(&challenges, body.is_some()).map(|(_, s)| s);
        let mut state = AuthState::with_fixed_cnonce("0a4f113b");
        let answer = respond(
            &challenges,
            &credentials,
            "GET",
            "/dir/index.html",
            body,
            &mut state,
        );
        let Some(answer) = answer else {
            continue;
        };
        assert_eq!(Some(answer.scheme), selected);
        let text = answer.header.as_bytes();
        match answer.scheme {
            AuthScheme::Basic => assert!(text.starts_with(b"Basic ")),
            AuthScheme::Digest(_) => {
                assert!(text.starts_with(b"Digest "));
                // The answer is itself a parameter list this parser reads back.
                let back = parse_challenges([&answer.header]);
                assert_eq!(back.len(), 1, "{:?}", answer.header);
                assert!(back[0].param("response").is_some_and(|r| !r.is_empty()));
            }
            _ => {}
        }
        let again = state.authorize(&credentials, "GET", "/other", body);
        assert!(
            again.is_some(),
            "no pre-emptive answer after {:?}",
            answer.header
        );
    }
});
