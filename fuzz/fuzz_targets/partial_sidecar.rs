//! The `.part` sidecar (`netaccess-cli/src/get/partial.rs`): a file loads exactly when it is a
//! JSON object with our `format` and a string `url` (a model with `serde_json`) and is at most
//! 64 KiB; what loads saves and loads back the same; the `If-Range` validator is the ETag
//! unless it is weak, else `Last-Modified`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess_cli::__fuzz::Sidecar;
use netaccess_fuzz::scratch_dir;
use serde_json::Value;

const MAX_SIDECAR: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, json)) = data.split_first() else {
        return;
    };
    let mut bytes = json.to_vec();
    if flags & 1 == 1 {
        // White space after the value: still JSON, but over the size limit.
        bytes.resize(MAX_SIDECAR + 1, b' ');
    }
    let path = scratch_dir().join("a.part.json");
    std::fs::write(&path, &bytes).expect("scratch file");
    let loaded = Sidecar::load(&path);

    let text = |v: &Value, key: &str| v[key].as_str().map(str::to_owned);
    let model = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(|_| bytes.len() <= MAX_SIDECAR)
        .filter(|v| v["format"] == "netaccess-partial-download")
        .and_then(|v| {
            Some(Sidecar {
                url: text(&v, "url")?,
                etag: text(&v, "etag"),
                last_modified: text(&v, "last_modified"),
                length: v["length"].as_u64(),
            })
        });
    assert_eq!(loaded, model);
    let Some(sidecar) = loaded else {
        return;
    };
    let want = match &sidecar.etag {
        Some(etag) if !etag.starts_with("W/") => Some(etag.clone()),
        _ => sidecar.last_modified.clone(),
    };
    assert_eq!(sidecar.if_range(), want);
    let again = scratch_dir().join("b.part.json");
    sidecar.save(&again).expect("save");
    assert_eq!(Sidecar::load(&again), Some(sidecar));
});
