//! MIME multipart request bodies (Qt's `QHttpMultiPart` and `QHttpPart`): `multipart/form-data`
//! for HTML forms and file uploads, `multipart/mixed`, `related` and `alternative`.
//!
//! The body is produced as it is sent: a part's bytes, file or stream are never copied into one
//! buffer, so file parts of any size stream from disk. The layout is Qt's: for every part
//! `--boundary\r\n`, its headers, `\r\n`, its body and `\r\n`; then `--boundary--\r\n`.
//!
//! ```no_run
//! use netaccess::{MultiPart, MultiPartKind, NetworkAccessManager, Part, Request, Body};
//!
//! # async fn demo() -> Result<(), netaccess::Error> {
//! let multipart = MultiPart::new(MultiPartKind::FormData)
//!     .with_part(Part::form_field("text", "my text"))
//!     .with_part(Part::form_file("image", "image.jpg", Body::from_file("image.jpg").unwrap())
//!         .with_header("Content-Type", "image/jpeg"));
//! let (request, body) = multipart.apply(Request::new("http://127.0.0.1:8080/upload"))?;
//! let reply = NetworkAccessManager::new().post(request, body);
//! # let _ = reply; Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_util::StreamExt;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};

use crate::error::{Error, NetworkError};
use crate::request::Request;
use crate::upload::{Body, ByteStream};

/// What every generated boundary starts with (as Qt).
const BOUNDARY_PREFIX: &str = "boundary_.oOo._";
/// Random bytes after the prefix: 24 bytes are 32 base64 characters.
const BOUNDARY_RANDOM_BYTES: usize = 24;
/// RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
const MAX_BOUNDARY_LEN: usize = 70;

/// The multipart subtype (Qt's `QHttpMultiPart::ContentType`).
#[doc(alias = "ContentType")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MultiPartKind {
    /// `multipart/form-data` (RFC 7578): HTML form fields and file uploads (`FormDataType`).
    #[doc(alias = "FormDataType")]
    FormData,
    /// `multipart/mixed`: independent parts, in order (`MixedType`, Qt's default).
    #[doc(alias = "MixedType")]
    #[default]
    Mixed,
    /// `multipart/related` (RFC 2387): a root part and the parts it refers to (`RelatedType`).
    #[doc(alias = "RelatedType")]
    Related,
    /// `multipart/alternative`: the same content in several formats (`AlternativeType`).
    #[doc(alias = "AlternativeType")]
    Alternative,
}

impl MultiPartKind {
    /// The MIME subtype: `form-data`, `mixed`, `related` or `alternative`.
    pub fn subtype(self) -> &'static str {
        match self {
            MultiPartKind::FormData => "form-data",
            MultiPartKind::Mixed => "mixed",
            MultiPartKind::Related => "related",
            MultiPartKind::Alternative => "alternative",
        }
    }
}

/// One part of a [`MultiPart`]: headers and a body (Qt's `QHttpPart`).
///
/// The body is any [`Body`]: bytes, a file (streamed from disk) or a stream. Header names are
/// written in `Title-Case` (`Content-Disposition`), in the order they were first set.
///
/// ```
/// use netaccess::Part;
/// let field = Part::form_field("comment", "hello");
/// assert_eq!(field.headers()["content-disposition"], "form-data; name=\"comment\"");
/// let file = Part::form_file("upload", "notes.txt", "file contents")
///     .with_header("Content-Type", "text/plain");
/// assert_eq!(file.headers()["content-type"], "text/plain");
/// ```
#[doc(alias = "QHttpPart")]
#[derive(Clone, Default)]
pub struct Part {
    headers: HeaderMap,
    body: Body,
    invalid_header: Option<String>,
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Part");
        d.field("headers", &self.headers).field("body", &self.body);
        if let Some(bad) = &self.invalid_header {
            d.field("invalid_header", bad);
        }
        d.finish()
    }
}

impl Part {
    /// A part with this body and no headers yet (Qt's `setBody` / `setBodyDevice`).
    #[doc(alias = "setBody")]
    #[doc(alias = "setBodyDevice")]
    pub fn new(body: impl Into<Body>) -> Part {
        Part {
            headers: HeaderMap::new(),
            body: body.into(),
            invalid_header: None,
        }
    }

    /// A form field: `Content-Disposition: form-data; name="NAME"`.
    ///
    /// `"`, CR and LF in the name are percent-encoded, as browsers do (HTML's
    /// multipart/form-data encoding algorithm); other bytes, UTF-8 included, are sent as is.
    pub fn form_field(name: &str, value: impl Into<Body>) -> Part {
        let disposition = format!("form-data; name=\"{}\"", escape_form_name(name));
        Part::new(value).with_header_bytes(CONTENT_DISPOSITION, disposition.as_bytes())
    }

    /// A file of a form: `Content-Disposition: form-data; name="NAME"; filename="FILE_NAME"`
    /// and `Content-Type: application/octet-stream` (replace it with [`Part::with_header`]).
    /// Names are escaped as in [`Part::form_field`].
    pub fn form_file(name: &str, file_name: &str, body: impl Into<Body>) -> Part {
        let disposition = format!(
            "form-data; name=\"{}\"; filename=\"{}\"",
            escape_form_name(name),
            escape_form_name(file_name)
        );
        Part::new(body)
            .with_header_bytes(CONTENT_DISPOSITION, disposition.as_bytes())
            .with_header_bytes(CONTENT_TYPE, b"application/octet-stream")
    }

    /// Sets a header of the part (Qt's `setRawHeader` / `setHeader`), replacing earlier values
    /// of the same name. An invalid name or value is remembered and reported by
    /// [`MultiPart::into_body`] as `ProtocolInvalidOperationError`.
    #[doc(alias = "setRawHeader")]
    #[doc(alias = "setHeader")]
    pub fn set_header(&mut self, name: &str, value: &str) {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.insert(n, v);
            }
            (Err(_), _) => self.invalid_header = Some(format!("invalid header name {name:?}")),
            (_, Err(_)) => {
                self.invalid_header = Some(format!("invalid value for header {name:?}: {value:?}"))
            }
        }
    }

    /// Builder form of [`Part::set_header`].
    pub fn with_header(mut self, name: &str, value: &str) -> Part {
        self.set_header(name, value);
        self
    }

    fn with_header_bytes(mut self, name: HeaderName, value: &[u8]) -> Part {
        match HeaderValue::from_bytes(value) {
            Ok(v) => {
                self.headers.insert(name, v);
            }
            Err(_) => {
                self.invalid_header = Some(format!(
                    "invalid value for header {:?}: {:?}",
                    name.as_str(),
                    String::from_utf8_lossy(value)
                ))
            }
        }
        self
    }

    /// The part's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The part's headers, to change them.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The part's body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The header block as sent: `Name: value\r\n` per header, then `\r\n`.
    fn write_headers(&self, out: &mut BytesMut) {
        for (name, value) in &self.headers {
            write_title_case(out, name.as_str());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A MIME multipart body (Qt's `QHttpMultiPart`): a kind, a boundary and parts.
///
/// A new multipart gets a random boundary as Qt makes it: `boundary_.oOo._` and 32 random
/// base64 characters. [`MultiPart::apply`] turns it into a request and its body:
///
/// ```
/// use netaccess::{MultiPart, MultiPartKind, Part, Request};
///
/// let multipart = MultiPart::new(MultiPartKind::FormData)
///     .with_part(Part::form_field("a", "1"))
///     .with_part(Part::form_file("f", "f.bin", vec![0u8; 10]));
/// assert!(multipart.boundary().starts_with("boundary_.oOo._"));
/// let (request, body) = multipart.apply(Request::new("http://127.0.0.1/upload")).unwrap();
/// assert!(request.headers()["content-type"].to_str().unwrap().starts_with("multipart/form-data; boundary=\""));
/// assert_eq!(request.headers()["mime-version"], "1.0");
/// assert!(body.len().is_some());
/// ```
#[doc(alias = "QHttpMultiPart")]
#[derive(Debug, Clone)]
pub struct MultiPart {
    kind: MultiPartKind,
    boundary: String,
    parts: Vec<Part>,
}

impl Default for MultiPart {
    /// A `multipart/mixed` body, as Qt's default constructor.
    fn default() -> Self {
        MultiPart::new(MultiPartKind::default())
    }
}

impl MultiPart {
    /// An empty multipart of this kind with a fresh random boundary.
    pub fn new(kind: MultiPartKind) -> Self {
        MultiPart {
            kind,
            boundary: random_boundary(),
            parts: Vec::new(),
        }
    }

    /// The kind (Qt's content type).
    pub fn kind(&self) -> MultiPartKind {
        self.kind
    }

    /// Changes the kind (Qt's `setContentType`).
    #[doc(alias = "setContentType")]
    pub fn set_kind(&mut self, kind: MultiPartKind) {
        self.kind = kind;
    }

    /// The boundary between parts, without the leading `--`.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// Replaces the boundary (Qt's `setBoundary`). It must not occur in any part; it must be
    /// 1 to 70 characters of RFC 2046's set (letters, digits, `'()+_,-./:=?` and inner spaces):
    /// otherwise [`MultiPart::into_body`] fails.
    #[doc(alias = "setBoundary")]
    pub fn set_boundary(&mut self, boundary: impl Into<String>) {
        self.boundary = boundary.into();
    }

    /// Builder form of [`MultiPart::set_boundary`].
    pub fn with_boundary(mut self, boundary: impl Into<String>) -> Self {
        self.set_boundary(boundary);
        self
    }

    /// Adds a part at the end (Qt's `append`).
    pub fn append(&mut self, part: Part) {
        self.parts.push(part);
    }

    /// Builder form of [`MultiPart::append`].
    pub fn with_part(mut self, part: Part) -> Self {
        self.append(part);
        self
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The `Content-Type` of the whole body, the boundary quoted as Qt does (RFC 2046
    /// recommends it): `multipart/form-data; boundary="boundary_.oOo._…"`.
    pub fn content_type(&self) -> String {
        format!(
            "multipart/{}; boundary=\"{}\"",
            self.kind.subtype(),
            self.boundary
        )
    }

    /// The `Content-Type` and the body. The body is generated while it is sent: file parts are
    /// read from disk, stream parts are read once. Its length is known when every part's
    /// length is (otherwise it goes chunked).
    ///
    /// The body can be sent again (a 307/308 redirect, a retry on a fresh connection) when every
    /// part can (bytes, files); with a stream part a resend fails with `ContentReSendError`. A
    /// part whose stream yields more or fewer bytes than its declared length fails the upload.
    ///
    /// Fails with `ProtocolInvalidOperationError` for an invalid part header or boundary.
    pub fn into_body(self) -> Result<(String, Body), Error> {
        check_boundary(&self.boundary)?;
        for (index, part) in self.parts.iter().enumerate() {
            if let Some(bad) = &part.invalid_header {
                return Err(Error::new(
                    NetworkError::ProtocolInvalidOperationError,
                    format!("Invalid multipart part {index}: {bad}"),
                ));
            }
        }
        let content_type = self.content_type();
        let plan = Plan::new(&self.boundary, self.parts);
        let len = plan.len;
        let replayable = plan.replayable();
        Ok((
            content_type,
            Body::from_generator(len, replayable, move || Ok(plan.open())),
        ))
    }

    /// The request to send this multipart with, and its body: as Qt's `post(request,
    /// multiPart)`, sets `Content-Type` (unless the request has one) and `MIME-Version: 1.0`
    /// (unless it has one).
    ///
    /// ```no_run
    /// # use netaccess::{MultiPart, MultiPartKind, NetworkAccessManager, Part, Request};
    /// # fn demo(manager: NetworkAccessManager, multipart: MultiPart) -> Result<(), netaccess::Error> {
    /// let (request, body) = multipart.apply(Request::new("http://127.0.0.1/upload"))?;
    /// let reply = manager.post(request, body);
    /// # Ok(()) }
    /// ```
    pub fn apply(self, mut request: Request) -> Result<(Request, Body), Error> {
        let (content_type, body) = self.into_body()?;
        if !request.headers().contains_key(CONTENT_TYPE) {
            request.set_header("Content-Type", &content_type);
        }
        if !request.headers().contains_key("mime-version") {
            request.set_header("MIME-Version", "1.0");
        }
        Ok((request, body))
    }
}

/// A boundary as Qt makes one: the prefix and 24 random bytes in base64.
fn random_boundary() -> String {
    let mut random = [0u8; BOUNDARY_RANDOM_BYTES];
    if getrandom::getrandom(&mut random).is_err() {
        fallback_random(&mut random);
    }
    let mut boundary = String::with_capacity(BOUNDARY_PREFIX.len() + 32);
    boundary.push_str(BOUNDARY_PREFIX);
    base64::engine::general_purpose::STANDARD.encode_string(random, &mut boundary);
    boundary
}

/// Only when the OS source fails: std's per-process random hash keys, a counter and the time.
fn fallback_random(out: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = std::collections::hash_map::RandomState::new();
    for chunk in out.chunks_mut(8) {
        let mut hasher = state.build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(now.as_nanos());
        }
        let bytes = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// RFC 2046 §5.1.1: 1 to 70 `bchars`, not ending with a space.
fn check_boundary(boundary: &str) -> Result<(), Error> {
    let valid_char = |c: u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c);
    let valid = !boundary.is_empty()
        && boundary.len() <= MAX_BOUNDARY_LEN
        && boundary.bytes().all(valid_char)
        && !boundary.ends_with(' ');
    if valid {
        Ok(())
    } else {
        Err(Error::new(
            NetworkError::ProtocolInvalidOperationError,
            format!("Invalid multipart boundary {boundary:?}"),
        ))
    }
}

/// HTML's escaping of names in `multipart/form-data`: `"`, CR and LF are percent-encoded.
fn escape_form_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// `content-disposition` as `Content-Disposition`.
fn write_title_case(out: &mut BytesMut, name: &str) {
    let mut upper = true;
    for b in name.bytes() {
        out.extend_from_slice(&[if upper { b.to_ascii_uppercase() } else { b }]);
        upper = b == b'-';
    }
}

/// What the body is made of: fixed bytes (boundaries and headers) and the parts' bodies.
#[derive(Clone)]
enum Segment {
    Fixed(Bytes),
    Part { index: usize, body: Body },
}

struct Plan {
    segments: Arc<[Segment]>,
    len: Option<u64>,
}

impl Plan {
    fn new(boundary: &str, parts: Vec<Part>) -> Plan {
        let mut segments = Vec::with_capacity(parts.len() * 2 + 1);
        let mut fixed = BytesMut::new();
        let mut len = Some(0u64);
        for (index, part) in parts.into_iter().enumerate() {
            fixed.extend_from_slice(b"--");
            fixed.extend_from_slice(boundary.as_bytes());
            fixed.extend_from_slice(b"\r\n");
            part.write_headers(&mut fixed);
            len = len.zip(part.body.len()).map(|(a, b)| a + b);
            // Only a body known to be empty, and not a stream, is left out.
            if !(part.body.is_empty() && part.body.is_replayable()) {
                segments.push(Segment::Fixed(fixed.split().freeze()));
                segments.push(Segment::Part {
                    index,
                    body: part.body,
                });
            }
            fixed.extend_from_slice(b"\r\n");
        }
        fixed.extend_from_slice(b"--");
        fixed.extend_from_slice(boundary.as_bytes());
        fixed.extend_from_slice(b"--\r\n");
        let fixed_len: u64 = segments
            .iter()
            .map(|s| match s {
                Segment::Fixed(b) => b.len() as u64,
                Segment::Part { .. } => 0,
            })
            .sum::<u64>()
            + fixed.len() as u64;
        segments.push(Segment::Fixed(fixed.freeze()));
        Plan {
            segments: segments.into(),
            len: len.map(|l| l + fixed_len),
        }
    }

    /// The chunks of one send; each part is opened when the send reaches it.
    /// True when every part can be sent again.
    fn replayable(&self) -> bool {
        self.segments.iter().all(|s| match s {
            Segment::Fixed(_) => true,
            Segment::Part { body, .. } => body.is_replayable(),
        })
    }

    fn open(&self) -> ByteStream {
        let segments = self.segments.clone();
        let indices = 0..segments.len();
        Box::pin(
            futures_util::stream::iter(indices).flat_map(move |i| match &segments[i] {
                Segment::Fixed(bytes) => {
                    Box::pin(futures_util::stream::iter([Ok(bytes.clone())])) as ByteStream
                }
                Segment::Part { index, body } => match body.chunks() {
                    Ok(chunks) => Box::pin(CheckedLen {
                        inner: Some(chunks),
                        expected: body.len(),
                        seen: 0,
                        index: *index,
                    }) as ByteStream,
                    Err(e) => Box::pin(futures_util::stream::iter([Err(io::Error::from(e))])),
                },
            }),
        )
    }
}

/// A part's chunks, failing when they do not add up to the part's declared length (which is
/// part of the whole body's `Content-Length`).
struct CheckedLen {
    inner: Option<ByteStream>,
    expected: Option<u64>,
    seen: u64,
    index: usize,
}

impl CheckedLen {
    fn mismatch(&mut self) -> Poll<Option<io::Result<Bytes>>> {
        self.inner = None;
        let expected = self.expected.unwrap_or_default();
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "multipart part {} sent {} bytes{}, not its declared {expected}",
                self.index,
                self.seen,
                if self.seen > expected { " or more" } else { "" }
            ),
        ))))
    }
}

impl Stream for CheckedLen {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.expected.is_some_and(|n| self.seen > n) {
                    return self.mismatch();
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.inner = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                if self.expected.is_some_and(|n| self.seen != n) {
                    return self.mismatch();
                }
                self.inner = None;
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
