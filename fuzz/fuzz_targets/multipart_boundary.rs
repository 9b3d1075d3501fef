//! Multipart bodies and boundaries (multipart.rs): `into_body` accepts exactly the RFC 2046
//! boundaries (1 to 70 `bchars`, not ending in a space) when every part header is valid; the
//! `Content-Type` is a valid header value naming the boundary; the body has its declared
//! length, starts and ends with the delimiters, and (when no part contains the delimiter)
//! splits back into the parts' exact bodies, each with a `Content-Disposition` whose name
//! holds no quote, CR or LF.
#![no_main]

use arbitrary::Arbitrary;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use netaccess::__fuzz::collect_body;
use netaccess::{MultiPart, MultiPartKind, Part};

#[derive(Arbitrary, Debug)]
struct PartIn {
    name: String,
    file_name: Option<String>,
    body: Vec<u8>,
    header: Option<(String, String)>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: u8,
    boundary: Option<String>,
    parts: Vec<PartIn>,
}

fn valid_boundary(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= 70
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
        && !b.ends_with(' ')
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fuzz_target!(|input: Input| {
    let kind = [
        MultiPartKind::FormData,
        MultiPartKind::Mixed,
        MultiPartKind::Related,
        MultiPartKind::Alternative,
    ][usize::from(input.kind % 4)];
    let mut multipart = MultiPart::new(kind);
    assert!(
        valid_boundary(multipart.boundary()),
        "{:?}",
        multipart.boundary()
    );
    if let Some(b) = &input.boundary {
        multipart.set_boundary(b.clone());
    }
    let boundary = multipart.boundary().to_owned();
    let mut headers_ok = true;
    let parts: Vec<&PartIn> = input.parts.iter().take(8).collect();
    for p in &parts {
        let mut part = match &p.file_name {
            Some(f) => Part::form_file(&p.name, f, p.body.clone()),
            None => Part::form_field(&p.name, p.body.clone()),
        };
        // Names go in as bytes (UTF-8 kept); `set_header` takes visible ASCII only.
        let escaped_ok =
            |s: &str| HeaderValue::from_bytes(s.replace(['"', '\r', '\n'], "").as_bytes()).is_ok();
        headers_ok &= escaped_ok(&p.name) && p.file_name.as_deref().is_none_or(escaped_ok);
        if let Some((n, v)) = &p.header {
            part.set_header(n, v);
            headers_ok &= http::HeaderName::from_bytes(n.as_bytes()).is_ok()
                && HeaderValue::from_str(v).is_ok();
        }
        multipart.append(part);
    }
    let result = multipart.into_body();
    let expected_ok = valid_boundary(&boundary) && headers_ok;
    let (content_type, body) = match result {
        Ok(ok) => {
            assert!(
                expected_ok,
                "accepted boundary {boundary:?} or a bad header: {input:?}"
            );
            ok
        }
        Err(e) => {
            assert!(!expected_ok, "refused: {e}: {input:?}");
            return;
        }
    };
    assert!(HeaderValue::from_str(&content_type).is_ok());
    assert_eq!(
        content_type,
        format!("multipart/{}; boundary=\"{boundary}\"", kind.subtype())
    );
    let bytes = collect_body(&body).expect("a body of bytes is ready");
    assert_eq!(body.len(), Some(bytes.len() as u64));
    let close = format!("--{boundary}--\r\n");
    assert!(bytes.ends_with(close.as_bytes()));
    if parts.is_empty() {
        assert_eq!(bytes, close.as_bytes());
        return;
    }
    let open = format!("--{boundary}\r\n");
    assert!(bytes.starts_with(open.as_bytes()));

    // Split back when no part can be mistaken for a delimiter.
    let delimiter = format!("\r\n--{boundary}");
    let clean = parts.iter().all(|p| {
        find(&p.body, boundary.as_bytes()).is_none()
            && !p.name.contains(&boundary)
            && p.file_name
                .as_deref()
                .is_none_or(|f| !f.contains(&boundary))
            && p.header.as_ref().is_none_or(|(n, v)| {
                !n.contains(&boundary)
                    && !v.contains(&boundary)
                    && !n.eq_ignore_ascii_case("content-disposition")
            })
    });
    if !clean {
        return;
    }
    let mut rest = &bytes[open.len()..];
    for (i, p) in parts.iter().enumerate() {
        let head_end = find(rest, b"\r\n\r\n").expect("a header block") + 4;
        let head = std::str::from_utf8(&rest[..head_end])
            .map(str::to_owned)
            .unwrap_or_else(|_| String::from_utf8_lossy(&rest[..head_end]).into_owned());
        let disposition = head
            .lines()
            .find(|l| l.starts_with("Content-Disposition: "))
            .expect("a Content-Disposition line");
        let quoted_name = disposition
            .strip_prefix("Content-Disposition: form-data; name=\"")
            .expect("form-data with a name");
        let name_end = quoted_name.find('"').expect("a closing quote");
        assert!(!quoted_name[..name_end].contains(['\r', '\n']));
        let after = &rest[head_end..];
        let end = find(after, delimiter.as_bytes()).expect("a delimiter after the body");
        assert_eq!(&after[..end], &p.body[..], "part {i}");
        rest = &after[end + 2..];
        if i + 1 < parts.len() {
            rest = rest
                .strip_prefix(open.as_bytes())
                .expect("the next part's delimiter");
        }
    }
    assert_eq!(rest, close.as_bytes());
});
