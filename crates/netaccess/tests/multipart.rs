//! `MultiPart` bodies (Qt's `QHttpMultiPart`) sent to the test server's `/multipart` route,
//! which parses them with a real multipart parser (`multer`) as they stream in.

use std::time::Duration;

use bytes::Bytes;
use netaccess::{
    Body, MultiPart, MultiPartKind, NetworkAccessManager, NetworkError, Part, Request,
};
use netaccess_testserver::TestServer;
use serde_json::Value;

const MIB: usize = 1024 * 1024;

/// Deterministic bytes that are not periodic in any small power of two.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i / 251)).wrapping_add(seed as usize) as u8)
        .collect()
}

/// The test server's hash: 64-bit FNV-1a as 16 hex digits.
fn fnv1a64(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn temp_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("netaccess-multipart-{}-{name}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    path
}

/// `data` in chunks of `chunk` bytes, as a stream.
fn chunked_stream(
    data: Vec<u8>,
    chunk: usize,
) -> impl futures_core::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let data = Bytes::from(data);
    let chunks: Vec<_> = (0..data.len())
        .step_by(chunk)
        .map(|start| Ok(data.slice(start..(start + chunk).min(data.len()))))
        .collect();
    futures_util::stream::iter(chunks)
}

/// Posts `multipart` to `/multipart` and returns the server's description.
async fn send(server: &TestServer, request: Request, multipart: MultiPart) -> Value {
    let manager = NetworkAccessManager::new();
    let (request, body) = multipart.apply(request).unwrap();
    let reply = manager.post(request, body);
    let bytes = tokio::time::timeout(Duration::from_secs(60), reply.bytes())
        .await
        .expect("finished in time")
        .unwrap_or_else(|e| panic!("multipart upload to {} failed: {e}", server.base_url()));
    assert_eq!(
        reply.status_code(),
        Some(200),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
}

fn assert_part(part: &Value, name: Option<&str>, file_name: Option<&str>, data: &[u8]) {
    assert_eq!(part["name"].as_str(), name, "{part}");
    assert_eq!(part["file_name"].as_str(), file_name, "{part}");
    assert_eq!(part["len"].as_u64(), Some(data.len() as u64), "{part}");
    assert_eq!(
        part["fnv1a64"].as_str(),
        Some(fnv1a64(data).as_str()),
        "{part}"
    );
}

/// `boundary_.oOo._` and 32 base64 characters, quoted in the content type.
fn assert_qt_boundary(content_type: &str, subtype: &str) -> String {
    let prefix = format!("multipart/{subtype}; boundary=\"");
    let boundary = content_type
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("unexpected content type {content_type:?}"));
    let random = boundary.strip_prefix("boundary_.oOo._").unwrap();
    assert_eq!(random.len(), 32, "{boundary}");
    assert!(random
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/'));
    boundary.to_owned()
}

#[tokio::test]
async fn form_data_with_fields_and_files_of_several_mib() {
    let server = TestServer::http1().await;
    let file_data = pattern(5 * MIB, 1);
    let path = temp_file("form-file", &file_data);
    let stream_data = pattern(5 * MIB + 123, 2);
    let stream = chunked_stream(stream_data.clone(), 100_000);

    let multipart = MultiPart::new(MultiPartKind::FormData)
        .with_part(Part::form_field("title", "My holiday"))
        .with_part(Part::form_field("comment", "two\r\nlines, ünïcode"))
        .with_part(
            Part::form_file("photo", "beach.jpg", Body::from_file(&path).unwrap())
                .with_header("Content-Type", "image/jpeg"),
        )
        .with_part(Part::form_file(
            "log",
            "log \"today\".bin",
            Body::from_stream(stream, Some(stream_data.len() as u64)),
        ));
    let boundary = multipart.boundary().to_owned();
    let json = send(&server, Request::new(server.url("/multipart")), multipart).await;

    let content_type = json["content_type"].as_str().unwrap();
    assert_eq!(assert_qt_boundary(content_type, "form-data"), boundary);
    assert_eq!(json["mime_version"], "1.0");
    let parts = json["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 4, "{json}");
    assert_part(&parts[0], Some("title"), None, b"My holiday");
    assert_part(
        &parts[1],
        Some("comment"),
        None,
        "two\r\nlines, ünïcode".as_bytes(),
    );
    assert_part(&parts[2], Some("photo"), Some("beach.jpg"), &file_data);
    assert_eq!(parts[2]["content_type"], "image/jpeg");
    assert_eq!(
        parts[2]["headers"]["content-disposition"],
        "form-data; name=\"photo\"; filename=\"beach.jpg\""
    );
    assert_part(
        &parts[3],
        Some("log"),
        Some("log %22today%22.bin"),
        &stream_data,
    );
    assert_eq!(parts[3]["content_type"], "application/octet-stream");
    assert!(parts[0]["content_type"].is_null());

    // Every length was known: the whole body went with Content-Length, not chunked.
    let headers = &json["request_headers"];
    let content_length: u64 = headers["content-length"].as_str().unwrap().parse().unwrap();
    assert!(content_length > (10 * MIB) as u64);
    assert!(headers.get("transfer-encoding").is_none(), "{headers}");
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_stream_part_of_unknown_length_makes_the_body_chunked() {
    let server = TestServer::http1().await;
    let data = pattern(3 * MIB + 7, 3);
    let multipart = MultiPart::new(MultiPartKind::FormData)
        .with_part(Part::form_field("before", "1"))
        .with_part(Part::form_file(
            "upload",
            "data.bin",
            Body::from_stream(chunked_stream(data.clone(), 65_537), None),
        ))
        .with_part(Part::form_field("after", "2"));
    let json = send(&server, Request::new(server.url("/multipart")), multipart).await;
    let headers = &json["request_headers"];
    assert_eq!(headers["transfer-encoding"], "chunked");
    assert!(headers.get("content-length").is_none(), "{headers}");
    let parts = json["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert_part(&parts[0], Some("before"), None, b"1");
    assert_part(&parts[1], Some("upload"), Some("data.bin"), &data);
    assert_part(&parts[2], Some("after"), None, b"2");
}

#[tokio::test]
async fn mixed_related_and_alternative_bodies() {
    let server = TestServer::http1().await;
    let big = pattern(2 * MIB, 4);
    let path = temp_file("mixed-file", &big);
    for (kind, subtype) in [
        (MultiPartKind::Mixed, "mixed"),
        (MultiPartKind::Related, "related"),
        (MultiPartKind::Alternative, "alternative"),
    ] {
        let multipart = MultiPart::new(kind)
            .with_part(Part::new("plain text").with_header("Content-Type", "text/plain"))
            .with_part(
                Part::new("<p>html</p>")
                    .with_header("Content-Type", "text/html; charset=utf-8")
                    .with_header("Content-ID", "<html@example>"),
            )
            .with_part(
                Part::new(Body::from_file(&path).unwrap())
                    .with_header("Content-Type", "application/octet-stream")
                    .with_header("Content-Transfer-Encoding", "binary"),
            );
        let json = send(&server, Request::new(server.url("/multipart")), multipart).await;
        assert_qt_boundary(json["content_type"].as_str().unwrap(), subtype);
        assert_eq!(json["mime_version"], "1.0");
        let parts = json["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 3, "{json}");
        assert_part(&parts[0], None, None, b"plain text");
        assert_eq!(parts[0]["content_type"], "text/plain");
        assert_part(&parts[1], None, None, b"<p>html</p>");
        assert_eq!(parts[1]["headers"]["content-id"], "<html@example>");
        assert_eq!(
            parts[1]["headers"]["content-type"],
            "text/html; charset=utf-8"
        );
        assert_part(&parts[2], None, None, &big);
        assert_eq!(parts[2]["headers"]["content-transfer-encoding"], "binary");
    }
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn headers_set_on_the_request_are_kept_as_qt_does() {
    let server = TestServer::http1().await;
    let multipart = MultiPart::new(MultiPartKind::Related)
        .with_boundary("my-boundary")
        .with_part(Part::new("<root/>").with_header("Content-Type", "text/xml"));
    // Qt adds Content-Type and MIME-Version only when the request has none.
    let own_type = "multipart/related; type=\"text/xml\"; boundary=\"my-boundary\"";
    let request = Request::new(server.url("/multipart"))
        .with_header("Content-Type", own_type)
        .with_header("MIME-Version", "1.0 (custom)");
    let json = send(&server, request, multipart).await;
    assert_eq!(json["content_type"], own_type);
    assert_eq!(json["mime_version"], "1.0 (custom)");
    let parts = json["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_part(&parts[0], None, None, b"<root/>");
}

#[tokio::test]
async fn a_multipart_over_http2() {
    let server = TestServer::h2c().await;
    let data = pattern(4 * MIB, 5);
    let path = temp_file("h2-file", &data);
    let multipart = MultiPart::new(MultiPartKind::FormData)
        .with_part(Part::form_field("a", "b"))
        .with_part(Part::form_file(
            "f",
            "f.bin",
            Body::from_file(&path).unwrap(),
        ));
    let request = Request::new(server.url("/multipart")).with_http2_direct(true);
    let json = send(&server, request, multipart).await;
    let parts = json["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_part(&parts[0], Some("a"), None, b"b");
    assert_part(&parts[1], Some("f"), Some("f.bin"), &data);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn invalid_parts_are_reported_before_sending() {
    let multipart = MultiPart::new(MultiPartKind::FormData)
        .with_part(Part::form_field("ok", "1"))
        .with_part(Part::new("x").with_header("Bad:Name", "v"));
    let err = multipart
        .apply(Request::new("http://127.0.0.1:9/never"))
        .unwrap_err();
    assert_eq!(err.kind(), NetworkError::ProtocolInvalidOperationError);
    assert!(err.message().contains("Bad:Name"), "{err}");
}

#[tokio::test]
async fn a_part_stream_shorter_than_its_declared_length_fails_the_upload() {
    let server = TestServer::http1().await;
    let multipart = MultiPart::new(MultiPartKind::FormData).with_part(Part::form_file(
        "f",
        "f.bin",
        Body::from_stream(chunked_stream(vec![1; 1000], 100), Some(2000)),
    ));
    let (request, body) = multipart
        .apply(Request::new(server.url("/multipart")))
        .unwrap();
    let reply = NetworkAccessManager::new().post(request, body);
    let result = tokio::time::timeout(Duration::from_secs(30), reply.bytes())
        .await
        .expect("finished in time");
    let err = result.expect_err("a short part must not look like a success");
    assert_eq!(err.kind(), NetworkError::ProtocolFailure);
    assert!(
        err.message()
            .contains("sent 1000 bytes, not its declared 2000"),
        "{err}"
    );
}
