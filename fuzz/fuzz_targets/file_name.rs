//! File-name sanitising (netaccess-cli src/output.rs `sanitize`, `url_filename`,
//! `choose_name`): whatever a server proposes, the name never holds a path separator or a
//! control character, never starts with a dot, is never a Windows device name, is at most
//! 255 bytes, and sanitising it again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess_fuzz::assert_safe_file_name;
use netaccess_fuzz::cli_output::{choose_name, sanitize, with_suffix};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Some(name) = sanitize(&s) {
        assert_safe_file_name(&name);
        assert_eq!(sanitize(&name).as_deref(), Some(&*name), "not idempotent");
        let suffixed = with_suffix(&name, 12);
        assert!(suffixed.len() <= 255 && !suffixed.contains(['/', '\\']));
    }
    let url = format!("http://h/d/{}", utf8_percent_encode(&s, NON_ALPHANUMERIC));
    assert_safe_file_name(&choose_name(None, &url));
    let raw = format!("http://h/{s}");
    assert_safe_file_name(&choose_name(None, &raw));
});
