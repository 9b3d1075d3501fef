//! `Authentication-Info` (RFC 7616 §3.5, auth/respond.rs): after a Digest answer, any
//! `Authentication-Info` value keeps the state usable, and the next answer's `nonce` and `nc`
//! agree with the state: a new `nextnonce` restarts the count at 1, otherwise it goes on.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use netaccess::auth::{parse_challenge_str, parse_challenges, respond, AuthState};
use netaccess::Authenticator;

fuzz_target!(|data: &[u8]| {
    let (challenge, info) = netaccess_fuzz::split_at_byte(data, b'\n');
    let challenge = String::from_utf8_lossy(challenge);
    let mut challenges = parse_challenge_str(&challenge);
    challenges.retain(|c| c.is_scheme("digest"));
    if challenges.is_empty() {
        challenges = parse_challenge_str(r#"Digest realm="r", nonce="n0", qop="auth""#);
    }
    let credentials = Authenticator::with_credentials("Mufasa", "Circle of Life");
    let mut state = AuthState::new();
    let Some(first) = respond(&challenges, &credentials, "GET", "/", Some(b""), &mut state) else {
        return;
    };
    let nonce_of = |h: &HeaderValue| {
        parse_challenges([h])
            .first()
            .and_then(|c| c.param("nonce").map(str::to_owned))
    };
    let old_nonce = nonce_of(&first.header);
    let old_count = state.nonce_count();
    // One header value (several would hide a nonce that changed and changed back).
    if let Ok(value) = HeaderValue::from_bytes(info) {
        state.apply_authentication_info(&value);
    }
    let next = state
        .authorize(&credentials, "GET", "/next", Some(b""))
        .expect("a Digest state answers again after Authentication-Info");
    let new_nonce = nonce_of(&next);
    if new_nonce == old_nonce {
        assert_eq!(state.nonce_count(), old_count.wrapping_add(1));
    } else {
        assert_eq!(state.nonce_count(), 1, "a new nonce restarts the count");
    }
    let nc = parse_challenges([&next])
        .first()
        .and_then(|c| c.param("nc").map(str::to_owned));
    if let Some(nc) = nc {
        assert_eq!(nc, format!("{:08x}", state.nonce_count()));
    }
});
