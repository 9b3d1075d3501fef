//! Netscape cookies.txt (`netaccess-cli/src/get/cookies_txt.rs`): any file loads; every cookie
//! and every skipped line comes from a line of its own; cookies have a name, a domain (one
//! leading dot at most) and a path, and no tab or line break; each cookie's line parses back
//! to the same cookie, and a saved file loads back to the cookies that had not expired.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use netaccess_cli::__fuzz::{
    cookies_txt_format, cookies_txt_line, cookies_txt_load, cookies_txt_save,
};
use netaccess_fuzz::scratch_dir;

fuzz_target!(|data: &[u8]| {
    let path = scratch_dir().join("cookies.txt");
    std::fs::write(&path, data).expect("scratch file");
    let (cookies, skipped) = cookies_txt_load(&path).expect("a readable file loads");
    let lines = String::from_utf8_lossy(data).lines().count();
    assert!(cookies.len() + skipped <= lines);
    for cookie in &cookies {
        assert!(!cookie.name.is_empty());
        let bare = cookie.domain.strip_prefix('.').unwrap_or(&cookie.domain);
        assert!(
            !bare.is_empty() && !bare.starts_with('.'),
            "{:?}",
            cookie.domain
        );
        assert!(!cookie.path.is_empty());
        for field in [&cookie.name, &cookie.value, &cookie.domain, &cookie.path] {
            assert!(!field.contains(['\t', '\n']), "{field:?}");
        }
        let line = cookies_txt_format(cookie);
        assert_eq!(
            cookies_txt_line(&line).as_ref(),
            Some(cookie),
            "written as {line:?}"
        );
    }
    let saved = scratch_dir().join("saved.txt");
    cookies_txt_save(&saved, &cookies).expect("save");
    let (again, skipped) = cookies_txt_load(&saved).expect("load what was saved");
    assert_eq!(skipped, 0);
    let now = SystemTime::now();
    let kept: Vec<_> = cookies
        .into_iter()
        .filter(|c| {
            c.expires.is_none_or(|t| t > now) && !c.name.contains('\r') && !c.value.contains('\r')
        })
        .collect();
    assert_eq!(again, kept);
});
