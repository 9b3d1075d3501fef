//! The cookie-jar file loader (`DefaultCookieJar::load`): any bytes give a jar or an
//! `InvalidData` error (never a panic); a loaded jar holds only cookies the jar itself could
//! have stored (a name, a domain, a path starting with `/`, no control characters, at most
//! 4096 bytes of name and value), so the `Cookie` header made from them is a valid header
//! value; and saving it and loading the file again gives the same cookies.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use netaccess::{CookieJar, DefaultCookieJar};
use netaccess_fuzz::scratch_dir;
use std::io::ErrorKind;

fn forbidden(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir();
    let input = dir.join("jar.json");
    std::fs::write(&input, data).expect("write the input file");
    let jar = match DefaultCookieJar::load(&input) {
        Ok(jar) => jar,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
            return;
        }
    };
    let cookies = jar.all_cookies();
    for c in &cookies {
        assert!(!c.name.is_empty() && c.path.starts_with('/'), "{c:?}");
        assert!(!c.domain.trim_start_matches('.').is_empty(), "{c:?}");
        assert!(
            !forbidden(&c.name)
                && !forbidden(&c.value)
                && !forbidden(&c.domain)
                && !forbidden(&c.path),
            "control character in a loaded cookie: {c:?}"
        );
        assert!(
            c.name.len() + c.value.len() <= DefaultCookieJar::MAX_COOKIE_SIZE,
            "{c:?}"
        );
        assert!(
            !c.name.contains(['=', ';']) && !c.value.contains(';'),
            "{c:?}"
        );
        let host = c.domain.trim_start_matches('.');
        if let Ok(url) = url::Url::parse(&format!("https://{host}{}", c.path)) {
            if let Some(header) = jar.cookie_header(&url) {
                assert!(
                    HeaderValue::from_bytes(header.as_bytes()).is_ok(),
                    "invalid Cookie header {header:?} from a loaded jar"
                );
            }
        }
    }
    // Save and load again: the same cookies.
    let output = dir.join("saved.json");
    let _ = std::fs::remove_file(&output);
    jar.save(&output, true).expect("save a loaded jar");
    let again = DefaultCookieJar::load(&output).expect("load a saved jar");
    let mut a = cookies;
    let mut b = again.all_cookies();
    let key = |c: &netaccess::Cookie| (c.domain.clone(), c.path.clone(), c.name.clone());
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (&x.name, &x.value, &x.domain, &x.path),
            (&y.name, &y.value, &y.domain, &y.path)
        );
        assert_eq!(
            (x.secure, x.http_only, x.same_site),
            (y.secure, y.http_only, y.same_site)
        );
    }
});
