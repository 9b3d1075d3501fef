//! `Strict-Transport-Security` (RFC 6797 §6.1, hsts.rs): the parser and the store agree (a
//! value is applied exactly when it parses); a policy with `max-age` > 0 makes the host known
//! (and its subdomains exactly with `includeSubDomains`) and upgrades `http` URLs;
//! `max-age=0` forgets it; the directives written back parse to the same result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::__fuzz::parse_strict_transport_security as parse;
use netaccess::HstsStore;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let parsed = parse(&value);
    let store = HstsStore::new();
    let origin = Url::parse("https://example.test/").unwrap();
    let applied = store.process_header(&origin, &value);
    assert_eq!(applied, parsed.is_some(), "{value:?}");
    // Never over http, never from an IP literal.
    assert!(!HstsStore::new().process_header(&Url::parse("http://example.test/").unwrap(), &value));
    assert!(!HstsStore::new().process_header(&Url::parse("https://127.0.0.1/").unwrap(), &value));
    let Some((max_age, include_subdomains)) = parsed else {
        return;
    };
    let http = Url::parse("http://example.test:80/p?q").unwrap();
    if max_age > 0 {
        assert!(store.is_known_host("example.test"));
        assert!(store.is_known_host("EXAMPLE.TEST."));
        assert_eq!(store.is_known_host("a.example.test"), include_subdomains);
        assert!(!store.is_known_host("notexample.test"));
        let up = store.upgrade(&http).expect("upgraded");
        assert_eq!(up.as_str(), "https://example.test/p?q");
    } else {
        assert!(!store.is_known_host("example.test"));
        assert!(store.upgrade(&http).is_none());
    }
    let written = format!(
        "max-age={max_age}{}",
        if include_subdomains {
            "; includeSubDomains"
        } else {
            ""
        }
    );
    assert_eq!(parse(&written), parsed);
});
