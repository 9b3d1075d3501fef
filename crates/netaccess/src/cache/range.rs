//! Byte ranges and the cache (RFC 9110 §14, RFC 9111 §3.3-§3.4): reading a single-range
//! `Range` request and a `Content-Range`, cutting a range from a stored response (complete or
//! partial), and combining a stored partial response with a new one for the same
//! representation.
//!
//! Only single `bytes` ranges are served from the cache; a multi-range request goes to the
//! network.

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::CacheMetadata;

/// The most bytes two partial responses may hold together for the cache to combine them in
/// memory (64 MiB); larger partial responses are stored as they are.
pub const MAX_COMBINED_LEN: u64 = 64 << 20;

/// A `Content-Range: bytes first-last/complete` of a stored or received 206 (or 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// The first byte position.
    pub first: u64,
    /// The last byte position (inclusive).
    pub last: u64,
    /// The complete length, when known (`*` otherwise).
    pub complete: Option<u64>,
}

impl ContentRange {
    /// The number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never empty (first <= last); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The header value.
    pub fn header_value(&self) -> HeaderValue {
        let complete = self
            .complete
            .map_or_else(|| "*".to_owned(), |c| c.to_string());
        HeaderValue::from_str(&format!("bytes {}-{}/{complete}", self.first, self.last))
            .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
    }
}

/// The single byte range of a `Content-Range` header (`bytes 0-4/10`, `bytes 0-4/*`); `None`
/// for anything else (absent, unsatisfied-range `bytes */10`, another unit, inverted or past
/// the complete length).
pub fn content_range(headers: &HeaderMap) -> Option<ContentRange> {
    let mut values = headers.get_all(header::CONTENT_RANGE).iter();
    let value = values.next()?.to_str().ok()?.trim();
    if values.next().is_some() {
        return None;
    }
    let rest = value.strip_prefix("bytes ")?.trim_start();
    let (range, complete) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (first, last) = (number(first)?, number(last)?);
    let complete = match complete.trim() {
        "*" => None,
        c => Some(number(c)?),
    };
    (first <= last && complete.is_none_or(|c| last < c)).then_some(ContentRange {
        first,
        last,
        complete,
    })
}

/// A request's single byte range, as asked: `bytes=first-last`, `bytes=first-` or
/// `bytes=-suffix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-` or `first-last`.
    From {
        /// The first byte.
        first: u64,
        /// The last byte, if given.
        last: Option<u64>,
    },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// The one byte range of a `Range` request header; `None` for several ranges, another unit
/// or a malformed value (which the cache leaves to the server).
pub fn request_range(headers: &HeaderMap) -> Option<ByteRange> {
    let mut values = headers.get_all(header::RANGE).iter();
    let value = values.next()?.to_str().ok()?.trim();
    if values.next().is_some() {
        return None;
    }
    let spec = value.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => Some(ByteRange::Suffix(number(suffix)?)),
        (first, "") => Some(ByteRange::From {
            first: number(first)?,
            last: None,
        }),
        (first, last) => {
            let (first, last) = (number(first)?, number(last)?);
            (first <= last).then_some(ByteRange::From {
                first,
                last: Some(last),
            })
        }
    }
}

impl ByteRange {
    /// The positions this range selects from a representation of `complete` bytes; `None`
    /// when unsatisfiable.
    pub fn resolve(self, complete: u64) -> Option<(u64, u64)> {
        let end = complete.checked_sub(1)?;
        match self {
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some((complete.saturating_sub(n), end)),
            ByteRange::From { first, last } => {
                (first <= end).then(|| (first, last.map_or(end, |l| l.min(end))))
            }
        }
    }
}

/// What a stored response can give for a `Range` request: the bytes at `offset..offset+len`
/// of its stored body, served as a 206 with `range` as `Content-Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Where the range starts in the stored body.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
    /// The `Content-Range` to send.
    pub range: ContentRange,
}

/// The slice of the stored response `stored` (body `body_len` bytes long) that answers
/// `asked`: from a complete 200 (§3.4 "a cache can serve a range from a complete response"),
/// or from a stored 206 whose range holds every asked byte. `None` when it cannot.
pub fn slice(stored: &CacheMetadata, body_len: u64, asked: ByteRange) -> Option<Slice> {
    match stored.status {
        StatusCode::OK => {
            // A 200 with Content-Range describes its own body (rare but storable): use it
            // only if it says the body is the whole representation.
            if let Some(cr) = content_range(&stored.headers) {
                if cr.first != 0 || cr.complete != Some(body_len) || cr.len() != body_len {
                    return None;
                }
            }
            let (first, last) = asked.resolve(body_len)?;
            Some(Slice {
                offset: first,
                len: last - first + 1,
                range: ContentRange {
                    first,
                    last,
                    complete: Some(body_len),
                },
            })
        }
        StatusCode::PARTIAL_CONTENT => {
            let have = content_range(&stored.headers)?;
            if have.len() != body_len {
                return None;
            }
            let complete = have.complete?;
            let (first, last) = asked.resolve(complete)?;
            (first >= have.first && last <= have.last).then(|| Slice {
                offset: first - have.first,
                len: last - first + 1,
                range: ContentRange {
                    first,
                    last,
                    complete: Some(complete),
                },
            })
        }
        _ => None,
    }
}

/// The headers of a 206 served from a stored response: the stored ones with `Content-Range`
/// and `Content-Length` for `slice`.
pub fn slice_headers(mut headers: HeaderMap, slice: &Slice) -> HeaderMap {
    headers.insert(header::CONTENT_RANGE, slice.range.header_value());
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(slice.len));
    headers
}

/// Whether two responses are the same representation, so their ranges may be combined
/// (RFC 9111 §3.4): both have the same strong `ETag`.
pub fn same_representation(a: &HeaderMap, b: &HeaderMap) -> bool {
    let strong = |h: &HeaderMap| {
        h.get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.starts_with("W/"))
            .map(str::to_owned)
    };
    matches!((strong(a), strong(b)), (Some(x), Some(y)) if x == y)
}

/// Two ranges of one representation joined into one, when they overlap or touch: the
/// combined range and the bytes. `None` when there is a gap between them.
pub fn combine(
    old: (ContentRange, &[u8]),
    new: (ContentRange, &[u8]),
) -> Option<(ContentRange, Vec<u8>)> {
    let ((a, a_body), (b, b_body)) = if old.0.first <= new.0.first {
        (old, new)
    } else {
        (new, old)
    };
    if a.complete != b.complete || b.first > a.last.saturating_add(1) {
        return None;
    }
    let last = a.last.max(b.last);
    let mut out = Vec::with_capacity((last - a.first + 1) as usize);
    out.extend_from_slice(a_body);
    if b.last > a.last {
        let skip = (a.last + 1 - b.first) as usize;
        out.extend_from_slice(b_body.get(skip..)?);
    }
    Some((
        ContentRange {
            first: a.first,
            last,
            complete: a.complete,
        },
        out,
    ))
}

/// The stored metadata of a combined response: `new`'s headers (the newer response updates
/// the stored header fields, §3.4, except those that describe its own body) on top of
/// `old`'s, with the combined range. A range that covers the whole representation becomes a
/// complete 200 without `Content-Range`.
pub fn combined_metadata(
    old: &CacheMetadata,
    new: &CacheMetadata,
    range: ContentRange,
) -> CacheMetadata {
    let mut headers = old.headers.clone();
    for name in new.headers.keys() {
        if *name == header::CONTENT_RANGE || *name == header::CONTENT_LENGTH {
            continue;
        }
        headers.remove(name);
        for value in new.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let whole = range.first == 0 && range.complete == Some(range.len());
    let status = if whole {
        headers.remove(header::CONTENT_RANGE);
        StatusCode::OK
    } else {
        headers.insert(header::CONTENT_RANGE, range.header_value());
        StatusCode::PARTIAL_CONTENT
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.len()));
    CacheMetadata {
        status,
        headers,
        save_to_disk: old.save_to_disk,
        attributes: old.attributes.clone(),
        ..new.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn meta(status: u16, pairs: &[(&str, &str)]) -> CacheMetadata {
        let now = SystemTime::now();
        CacheMetadata::new(
            StatusCode::from_u16(status).unwrap(),
            &headers(pairs),
            &HeaderMap::new(),
            now,
            now,
        )
    }

    fn asked(v: &str) -> ByteRange {
        request_range(&headers(&[("range", v)])).unwrap()
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(
            content_range(&headers(&[("content-range", "bytes 4-9/10")])),
            Some(ContentRange {
                first: 4,
                last: 9,
                complete: Some(10)
            })
        );
        assert_eq!(
            content_range(&headers(&[("content-range", "bytes 0-0/*")]))
                .unwrap()
                .complete,
            None
        );
        for bad in [
            "bytes */10",
            "bytes 5-4/10",
            "bytes 0-10/10",
            "items 0-1/2",
            "bytes 0-x/2",
        ] {
            assert_eq!(
                content_range(&headers(&[("content-range", bad)])),
                None,
                "{bad}"
            );
        }
        assert_eq!(
            asked("bytes=0-1"),
            ByteRange::From {
                first: 0,
                last: Some(1)
            }
        );
        assert_eq!(asked("bytes=-1"), ByteRange::Suffix(1));
        assert_eq!(
            asked("bytes=5-"),
            ByteRange::From {
                first: 5,
                last: None
            }
        );
        for bad in ["bytes=0-1,3-4", "bytes=2-1", "lines=0-1", "bytes=a-"] {
            assert_eq!(request_range(&headers(&[("range", bad)])), None, "{bad}");
        }
    }

    #[test]
    fn slices_of_complete_and_partial_responses() {
        let full = meta(200, &[]);
        let s = slice(&full, 11, asked("bytes=0-1")).unwrap();
        assert_eq!((s.offset, s.len), (0, 2));
        assert_eq!(s.range.header_value(), "bytes 0-1/11");
        let s = slice(&full, 11, asked("bytes=-1")).unwrap();
        assert_eq!((s.offset, s.len), (10, 1));
        let s = slice(&full, 11, asked("bytes=5-")).unwrap();
        assert_eq!(s.range.header_value(), "bytes 5-10/11");
        assert_eq!(slice(&full, 11, asked("bytes=11-")), None);
        let part = meta(206, &[("content-range", "bytes 4-9/10")]);
        let s = slice(&part, 6, asked("bytes=6-8")).unwrap();
        assert_eq!((s.offset, s.len), (2, 3));
        let s = slice(&part, 6, asked("bytes=-1")).unwrap();
        assert_eq!((s.offset, s.range.first), (5, 9));
        assert_eq!(slice(&part, 6, asked("bytes=0-4")), None);
        assert_eq!(
            slice(&part, 5, asked("bytes=6-8")),
            None,
            "body shorter than its range"
        );
    }

    #[test]
    fn partial_responses_combine_into_a_complete_one() {
        let a = ContentRange {
            first: 0,
            last: 4,
            complete: Some(10),
        };
        let b = ContentRange {
            first: 3,
            last: 9,
            complete: Some(10),
        };
        let (r, body) = combine((a, b"01234"), (b, b"3456789")).unwrap();
        assert_eq!(
            r,
            ContentRange {
                first: 0,
                last: 9,
                complete: Some(10)
            }
        );
        assert_eq!(body, b"0123456789");
        let c = ContentRange {
            first: 6,
            last: 9,
            complete: Some(10),
        };
        assert!(combine((a, b"01234"), (c, b"6789")).is_none(), "a gap");
        let old = meta(
            206,
            &[
                ("content-range", "bytes 0-4/10"),
                ("etag", "\"x\""),
                ("x-old", "1"),
            ],
        );
        let new = meta(
            206,
            &[
                ("content-range", "bytes 3-9/10"),
                ("etag", "\"x\""),
                ("x-new", "2"),
            ],
        );
        assert!(same_representation(&old.headers, &new.headers));
        let m = combined_metadata(&old, &new, r);
        assert_eq!(m.status, StatusCode::OK);
        assert!(m.headers.get("content-range").is_none());
        assert_eq!(m.headers.get("content-length").unwrap(), "10");
        assert_eq!(m.headers.get("x-old").unwrap(), "1");
        assert_eq!(m.headers.get("x-new").unwrap(), "2");
        let weak = meta(206, &[("etag", "W/\"x\"")]);
        assert!(!same_representation(&weak.headers, &weak.headers));
    }
}
