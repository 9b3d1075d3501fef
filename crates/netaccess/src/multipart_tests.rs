//! Tests of `multipart.rs`.

use super::*;

fn collect(body: &Body) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut stream = body.chunks().unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    })
}

#[test]
fn exact_bytes_of_a_form() {
    let multipart = MultiPart::new(MultiPartKind::FormData)
        .with_boundary("XyZ")
        .with_part(Part::form_field("text", "my text"))
        .with_part(
            Part::form_file("file", "a \"b\".txt", "abc").with_header("content-type", "text/plain"),
        )
        .with_part(Part::new(Body::empty()).with_header("X-Empty", "1"))
        .with_part(Part::new("no headers"));
    let (content_type, body) = multipart.into_body().unwrap();
    assert_eq!(content_type, "multipart/form-data; boundary=\"XyZ\"");
    let expected = "--XyZ\r\n\
        Content-Disposition: form-data; name=\"text\"\r\n\
        \r\n\
        my text\r\n\
        --XyZ\r\n\
        Content-Disposition: form-data; name=\"file\"; filename=\"a %22b%22.txt\"\r\n\
        Content-Type: text/plain\r\n\
        \r\n\
        abc\r\n\
        --XyZ\r\n\
        X-Empty: 1\r\n\
        \r\n\
        \r\n\
        --XyZ\r\n\
        \r\n\
        no headers\r\n\
        --XyZ--\r\n";
    assert_eq!(String::from_utf8(collect(&body)).unwrap(), expected);
    assert_eq!(body.len(), Some(expected.len() as u64));
    assert!(body.is_replayable(), "bytes parts can be sent again");
    assert_eq!(
        String::from_utf8(collect(&body)).unwrap(),
        expected,
        "and again"
    );
}

#[test]
fn an_empty_multipart_is_the_closing_boundary() {
    let (content_type, body) = MultiPart::new(MultiPartKind::Mixed)
        .with_boundary("b")
        .into_body()
        .unwrap();
    assert_eq!(content_type, "multipart/mixed; boundary=\"b\"");
    assert_eq!(collect(&body), b"--b--\r\n");
    assert_eq!(body.len(), Some(7));
}

#[test]
fn boundaries_are_as_qt_makes_them() {
    let a = MultiPart::default();
    let b = MultiPart::default();
    assert_eq!(a.kind(), MultiPartKind::Mixed);
    assert_ne!(a.boundary(), b.boundary());
    let random = a.boundary().strip_prefix("boundary_.oOo._").unwrap();
    assert_eq!(random.len(), 32);
    assert!(random
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/'));
    assert!(check_boundary(a.boundary()).is_ok());
    let mut random = [0u8; 24];
    fallback_random(&mut random);
    assert_ne!(random, [0u8; 24]);
}

#[test]
fn content_types_of_every_kind() {
    for (kind, subtype) in [
        (MultiPartKind::FormData, "form-data"),
        (MultiPartKind::Mixed, "mixed"),
        (MultiPartKind::Related, "related"),
        (MultiPartKind::Alternative, "alternative"),
    ] {
        let multipart = MultiPart::new(kind).with_boundary("q");
        assert_eq!(
            multipart.content_type(),
            format!("multipart/{subtype}; boundary=\"q\"")
        );
    }
}

#[test]
fn invalid_headers_and_boundaries_fail_into_body() {
    let bad_name = MultiPart::new(MultiPartKind::Mixed)
        .with_part(Part::new("x"))
        .with_part(Part::new("y").with_header("Bad Name", "v"));
    let err = bad_name.into_body().unwrap_err();
    assert_eq!(err.kind(), NetworkError::ProtocolInvalidOperationError);
    assert!(err.message().contains("part 1"), "{err}");
    let bad_value = MultiPart::default().with_part(Part::new("y").with_header("X", "a\r\nb"));
    assert!(bad_value.into_body().is_err());
    let control = MultiPart::default().with_part(Part::form_field("a\0", "v"));
    assert!(control.into_body().is_err());
    for boundary in ["", "with\"quote", "ends ", &"x".repeat(71)] {
        let err = MultiPart::default()
            .with_boundary(boundary)
            .into_body()
            .unwrap_err();
        assert_eq!(err.kind(), NetworkError::ProtocolInvalidOperationError);
    }
    assert!(MultiPart::default()
        .with_boundary("a b'()+_,-./:=?")
        .into_body()
        .is_ok());
}

#[test]
fn form_names_are_escaped_and_utf8_is_kept() {
    let part = Part::form_file("x\r\ny", "résumé.pdf", "");
    assert_eq!(
        part.headers()["content-disposition"].as_bytes(),
        "form-data; name=\"x%0D%0Ay\"; filename=\"résumé.pdf\"".as_bytes()
    );
    assert_eq!(part.headers()["content-type"], "application/octet-stream");
}

#[test]
fn length_is_unknown_with_a_stream_of_unknown_length() {
    let stream = futures_util::stream::iter([Ok(Bytes::from_static(b"abc"))]);
    let (_, body) = MultiPart::default()
        .with_boundary("b")
        .with_part(Part::new("known"))
        .with_part(Part::new(Body::from_stream(stream, None)))
        .into_body()
        .unwrap();
    assert_eq!(body.len(), None);
    assert_eq!(
        collect(&body),
        b"--b\r\n\r\nknown\r\n--b\r\n\r\nabc\r\n--b--\r\n"
    );
}

#[test]
fn a_stream_not_matching_its_length_fails() {
    for declared in [2, 4] {
        let stream = futures_util::stream::iter([Ok(Bytes::from_static(b"abc"))]);
        let (_, body) = MultiPart::default()
            .with_part(Part::new(Body::from_stream(stream, Some(declared))))
            .into_body()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let failed = rt.block_on(async {
            let mut chunks = body.chunks().unwrap();
            while let Some(chunk) = chunks.next().await {
                if let Err(e) = chunk {
                    return Some(e);
                }
            }
            None
        });
        let e = failed.expect("length mismatch reported");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
