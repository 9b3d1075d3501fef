//! `data:` URLs (RFC 2397 as processed by the WHATWG Fetch standard's data-URL processor, via
//! the `data-url` crate).
//!
//! Like Qt's `QNetworkReplyDataImpl`: only GET and HEAD are served, the reply has no HTTP
//! status, and the headers are `Content-Type` (the MIME type, serialized) and
//! `Content-Length`.

use bytes::Bytes;
use data_url::DataUrl;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use url::Url;

use crate::error::{Error, NetworkError};
use crate::reply::Meta;
use crate::request::Operation;

fn invalid(url: &Url, why: impl std::fmt::Display) -> Error {
    Error::new(
        NetworkError::ProtocolInvalidOperationError,
        format!("Invalid data: URL: {why} ({url})"),
    )
}

/// Decodes a `data:` URL for `op`.
///
/// GET and HEAD only; any other operation is a
/// [`NetworkError::ProtocolInvalidOperationError`]. On success the [`Meta`] has no status, the
/// headers `Content-Type` (e.g. `text/plain;charset=US-ASCII` when the URL names none) and
/// `Content-Length`, and `original_content_length`; the body is empty for HEAD (the headers
/// still describe the decoded body). A URL the data-URL processor rejects, or whose base64
/// body is invalid, is a [`NetworkError::ProtocolInvalidOperationError`] whose message starts
/// with `Invalid data: URL:`.
pub(crate) fn fetch(url: &Url, op: &Operation) -> Result<(Meta, Bytes), Error> {
    let head = match op {
        Operation::Get => false,
        Operation::Head => true,
        other => {
            return Err(Error::new(
                NetworkError::ProtocolInvalidOperationError,
                format!(
                    "Operation {} not supported for data: URLs ({url})",
                    other.method()
                ),
            ))
        }
    };

    let data = DataUrl::process(url.as_str()).map_err(|e| invalid(url, &e).with_source(e))?;
    let (body, _fragment) = data
        .decode_to_vec()
        .map_err(|e| invalid(url, format_args!("bad base64 body: {e}")).with_source(e))?;

    let mime = data.mime_type().to_string();
    let content_type = HeaderValue::from_str(&mime).map_err(|e| {
        invalid(
            url,
            format_args!("MIME type {mime:?} is not a header value"),
        )
        .with_source(e)
    })?;
    let len = body.len() as u64;

    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    let meta = Meta {
        status: None,
        headers,
        original_content_length: Some(len),
        ..Default::default()
    };
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    Ok((meta, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn get(s: &str) -> Result<(Meta, Bytes), Error> {
        fetch(&Url::parse(s).unwrap(), &Operation::Get)
    }

    fn header(meta: &Meta, name: http::header::HeaderName) -> &str {
        meta.headers.get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn plain_text_defaults() {
        let (meta, body) = get("data:,Hello%2C%20World%21").unwrap();
        assert_eq!(&body[..], b"Hello, World!");
        assert_eq!(meta.status, None);
        assert_eq!(header(&meta, CONTENT_TYPE), "text/plain;charset=US-ASCII");
        assert_eq!(header(&meta, CONTENT_LENGTH), "13");
        assert_eq!(meta.original_content_length, Some(13));
        assert_eq!(meta.headers.len(), 2);
    }

    #[test]
    fn mime_type_with_parameters() {
        let (meta, body) = get("data:text/html;charset=utf-8,<p>hi</p>").unwrap();
        assert_eq!(&body[..], b"<p>hi</p>");
        assert_eq!(header(&meta, CONTENT_TYPE), "text/html;charset=utf-8");
    }

    #[test]
    fn base64_body() {
        let (meta, body) = get("data:application/octet-stream;base64,AAECA/8=").unwrap();
        assert_eq!(&body[..], &[0, 1, 2, 3, 255]);
        assert_eq!(header(&meta, CONTENT_TYPE), "application/octet-stream");
        assert_eq!(header(&meta, CONTENT_LENGTH), "5");
        // Forgiving base64: whitespace and missing padding are fine; the fragment is dropped.
        let (_, body) = get("data:;base64,aGVs bG8#frag").unwrap();
        assert_eq!(&body[..], b"hello");
    }

    #[test]
    fn empty_body() {
        let (meta, body) = get("data:,").unwrap();
        assert!(body.is_empty());
        assert_eq!(header(&meta, CONTENT_LENGTH), "0");
        assert_eq!(meta.original_content_length, Some(0));
    }

    #[test]
    fn invalid_base64_is_an_error() {
        let err = get("data:text/plain;base64,a").unwrap_err();
        assert_eq!(err.kind(), NetworkError::ProtocolInvalidOperationError);
        assert!(err.message().starts_with("Invalid data: URL:"), "{err}");
        let err = get("data:;base64,ab=c").unwrap_err();
        assert_eq!(err.kind(), NetworkError::ProtocolInvalidOperationError);
    }

    #[test]
    fn missing_comma_is_an_error() {
        let err = get("data:text/html").unwrap_err();
        assert_eq!(err.kind(), NetworkError::ProtocolInvalidOperationError);
        assert!(err.message().starts_with("Invalid data: URL:"), "{err}");
    }

    #[test]
    fn head_has_headers_but_no_body() {
        let url = Url::parse("data:text/plain,abcdef").unwrap();
        let (meta, body) = fetch(&url, &Operation::Head).unwrap();
        assert!(body.is_empty());
        assert_eq!(header(&meta, CONTENT_LENGTH), "6");
        assert_eq!(header(&meta, CONTENT_TYPE), "text/plain");
        assert_eq!(meta.original_content_length, Some(6));
    }

    #[test]
    fn other_operations_are_refused() {
        let url = Url::parse("data:,x").unwrap();
        for op in [
            Operation::Put,
            Operation::Post,
            Operation::Delete,
            Operation::Custom(Method::OPTIONS),
        ] {
            let err = fetch(&url, &op).unwrap_err();
            assert_eq!(
                err.kind(),
                NetworkError::ProtocolInvalidOperationError,
                "{op:?}"
            );
            assert!(err.message().contains("not supported"), "{err}");
        }
    }

    /// The WPT `data-urls.json` vectors (shipped by the `data-url` crate), through `Url::parse`
    /// as a request URL would go.
    #[test]
    fn wpt_data_urls() {
        // data-url accepts this one although WPT expects a failure (a known failure upstream).
        const KNOWN_FAILURES: &[&str] = &["data://test:test/,X"];
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../tests/wpt/data-urls.json")).unwrap();
        assert!(cases.len() > 50);
        for case in cases {
            let input = case[0].as_str().unwrap();
            if KNOWN_FAILURES.contains(&input) {
                continue;
            }
            let Ok(url) = Url::parse(input) else {
                assert!(case[1].is_null(), "{input:?} does not parse as a URL");
                continue;
            };
            let result = fetch(&url, &Operation::Get);
            match case[1].as_str() {
                None => assert!(result.is_err(), "{input:?} should fail"),
                Some(mime) => {
                    let (meta, body) = result.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                    let expected = if mime.is_empty() {
                        "text/plain;charset=US-ASCII"
                    } else {
                        mime
                    };
                    assert_eq!(header(&meta, CONTENT_TYPE), expected, "{input:?}");
                    let want: Vec<u8> = case[2]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|b| b.as_u64().unwrap() as u8)
                        .collect();
                    assert_eq!(&body[..], &want[..], "{input:?}");
                }
            }
        }
    }
}
