//! The `Content-Encoding` list (decode.rs `codings`): every input line is one header value.
//! Properties: more than `MAX_CODINGS` non-empty tokens in all is a `ProtocolFailure` (decided
//! before anything else); otherwise the result is exactly the known codings in order
//! (`identity` skipped, `x-gzip` as gzip, names without regard to case), `None` for an unknown
//! coding or nothing to decode; never more than `MAX_CODINGS` decoders.
#![no_main]

use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING};
use libfuzzer_sys::fuzz_target;
use netaccess::__fuzz::content_codings;
use netaccess::limits::MAX_CODINGS;
use netaccess::NetworkError;

fn model(values: &[HeaderValue]) -> Result<Option<Vec<&'static str>>, ()> {
    let tokens: Vec<Vec<u8>> = values
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|t| {
            let start = t
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t'))
                .unwrap_or(t.len());
            let end = t
                .iter()
                .rposition(|b| !matches!(b, b' ' | b'\t'))
                .map_or(start, |e| e + 1);
            t[start..end].to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.len() > MAX_CODINGS {
        return Err(());
    }
    let mut out = Vec::new();
    for t in &tokens {
        match t.as_slice() {
            b"identity" => {}
            b"gzip" | b"x-gzip" => out.push("gzip"),
            b"deflate" => out.push("deflate"),
            b"br" => out.push("br"),
            b"zstd" => out.push("zstd"),
            _ => return Ok(None),
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

fuzz_target!(|data: &[u8]| {
    let values: Vec<HeaderValue> = data
        .split(|&b| b == b'\n')
        .filter_map(|l| HeaderValue::from_bytes(l).ok())
        .collect();
    let mut headers = HeaderMap::new();
    for v in &values {
        headers.append(CONTENT_ENCODING, v.clone());
    }
    let got = content_codings(&headers);
    match (&got, model(&values)) {
        (Err(e), Err(())) => assert_eq!(e.kind(), NetworkError::ProtocolFailure),
        (Ok(a), Ok(b)) => assert_eq!(a, &b, "{values:?}"),
        (got, want) => panic!("{values:?}: got {got:?}, want {want:?}"),
    }
    if let Ok(Some(list)) = got {
        assert!(!list.is_empty() && list.len() <= MAX_CODINGS);
    }
});
