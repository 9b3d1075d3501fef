//! The HSTS store loader (`HstsStore::load`) and the preload-list reader: any bytes give a
//! store or an `InvalidData` error (never a panic); loaded hosts are normalized host names
//! (lowercase, no trailing dot, not IP literals) that the store then knows; save and load
//! again gives the same policies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::{HstsPolicy, HstsStore};
use netaccess_fuzz::scratch_dir;
use std::io::ErrorKind;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let store = HstsStore::new();
        match store.load_preload_list(text) {
            Ok(n) => assert!(store.preloaded_len() <= n),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidData);
                assert_eq!(
                    store.preloaded_len(),
                    0,
                    "a failed preload list added hosts"
                );
            }
        }
    }
    let dir = scratch_dir();
    let input = dir.join("hsts.json");
    std::fs::write(&input, data).expect("write the input file");
    let store = match HstsStore::load(&input) {
        Ok(store) => store,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
            return;
        }
    };
    let policies = store.policies();
    for p in &policies {
        assert!(!p.host.is_empty() && !p.host.ends_with('.'), "{p:?}");
        assert!(p.host.parse::<std::net::IpAddr>().is_err(), "{p:?}");
        assert_eq!(
            HstsPolicy::new(&p.host, None, false).host,
            p.host,
            "not normalized: {p:?}"
        );
        assert!(store.is_known_host(&p.host), "{p:?} loaded but not known");
    }
    let output = dir.join("saved.json");
    let _ = std::fs::remove_file(&output);
    store.save(&output).expect("save a loaded store");
    let again = HstsStore::load(&output).expect("load a saved store");
    let b = again.policies();
    assert_eq!(policies.len(), b.len());
    for (x, y) in policies.iter().zip(&b) {
        assert_eq!(
            (&x.host, x.include_subdomains),
            (&y.host, y.include_subdomains)
        );
    }
});
