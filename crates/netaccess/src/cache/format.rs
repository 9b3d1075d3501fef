//! The on-disk entry format of [`DiskCache`](super::DiskCache).
//!
//! ```text
//! offset  size  field
//!      0     8  magic "NACACHE\0"
//!      8     2  version (1), little endian like every number here
//!     10     1  kind: 1 = entry, 2 = vary marker
//!     11     1  reserved (0)
//!     12     4  metadata length M
//!     16     8  body length B
//!     24     4  CRC-32 of the metadata
//!     28     4  CRC-32 of the body
//!     32     4  CRC-32 of bytes 0..32
//!     36     4  reserved (0)
//!     40     M  metadata (below)
//!   40+M     B  body
//! ```
//! A file is valid only if its length is exactly `40 + M + B` and the three checksums hold;
//! anything else (truncated, corrupt, foreign, another version) is a miss and is removed.
//!
//! Metadata of an entry: key (string), stored-at (time), status (u16), request time, response
//! time, response headers, Vary request headers. Of a vary marker: key, stored-at, and the
//! list of `Vary` header names. Strings and header values are `u32` length + bytes, times are
//! `u64` seconds + `u32` nanoseconds since the Unix epoch, header maps are a `u32` count of
//! (name, value) pairs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::CacheMetadata;

pub(super) const MAGIC: [u8; 8] = *b"NACACHE\0";
pub(super) const VERSION: u16 = 1;
pub(super) const HEADER_LEN: usize = 40;
/// Metadata larger than this is not ours.
pub(super) const MAX_META_LEN: u32 = 4 << 20;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A response.
    Entry = 1,
    /// The `Vary` names of a key whose responses are stored as variants.
    VaryMarker = 2,
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileHeader {
    pub kind: Kind,
    pub meta_len: u32,
    pub body_len: u64,
    pub meta_crc: u32,
    pub body_crc: u32,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10] = self.kind as u8;
        b[12..16].copy_from_slice(&self.meta_len.to_le_bytes());
        b[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.meta_crc.to_le_bytes());
        b[28..32].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` unless this is a valid header of this version.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < HEADER_LEN || b[0..8] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        if u16::from_le_bytes([b[8], b[9]]) != VERSION || crc32fast::hash(&b[0..32]) != u32_at(32) {
            return None;
        }
        let kind = match b[10] {
            1 => Kind::Entry,
            2 => Kind::VaryMarker,
            _ => return None,
        };
        let meta_len = u32_at(12);
        if meta_len > MAX_META_LEN {
            return None;
        }
        Some(Self {
            kind,
            meta_len,
            body_len: u64::from_le_bytes(b[16..24].try_into().unwrap()),
            meta_crc: u32_at(24),
            body_crc: u32_at(28),
        })
    }

    /// The exact file length this header describes.
    pub fn file_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.meta_len) + self.body_len
    }
}

/// Decoded metadata of a file.
// A transient decoding result: boxing would only add an allocation per read.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Meta {
    Entry {
        key: String,
        stored_at: SystemTime,
        metadata: CacheMetadata,
    },
    VaryMarker {
        key: String,
        names: Vec<HeaderName>,
    },
}

impl Meta {
    pub fn key(&self) -> &str {
        match self {
            Meta::Entry { key, .. } | Meta::VaryMarker { key, .. } => key,
        }
    }
}

pub(super) fn encode_entry(key: &str, stored_at: SystemTime, m: &CacheMetadata) -> Vec<u8> {
    let mut w = Vec::with_capacity(256 + m.approximate_size() as usize);
    put_bytes(&mut w, key.as_bytes());
    put_time(&mut w, stored_at);
    w.extend_from_slice(&m.status.as_u16().to_le_bytes());
    put_time(&mut w, m.request_time);
    put_time(&mut w, m.response_time);
    put_headers(&mut w, &m.headers);
    put_headers(&mut w, &m.request_headers);
    w
}

pub(super) fn encode_marker(key: &str, stored_at: SystemTime, names: &[HeaderName]) -> Vec<u8> {
    let mut w = Vec::new();
    put_bytes(&mut w, key.as_bytes());
    put_time(&mut w, stored_at);
    w.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for n in names {
        put_bytes(&mut w, n.as_str().as_bytes());
    }
    w
}

/// `None` for anything malformed (never panics).
pub(super) fn decode_meta(kind: Kind, bytes: &[u8]) -> Option<Meta> {
    let mut r = Reader(bytes);
    let key = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    let stored_at = r.time()?;
    let meta = match kind {
        Kind::Entry => {
            let status = StatusCode::from_u16(r.u16()?).ok()?;
            let request_time = r.time()?;
            let response_time = r.time()?;
            let headers = r.headers()?;
            let request_headers = r.headers()?;
            Meta::Entry {
                key,
                stored_at,
                metadata: CacheMetadata {
                    status,
                    headers,
                    request_headers,
                    request_time,
                    response_time,
                },
            }
        }
        Kind::VaryMarker => {
            let count = r.u32()?;
            let mut names = Vec::new();
            for _ in 0..count {
                names.push(HeaderName::from_bytes(r.bytes()?).ok()?);
            }
            Meta::VaryMarker { key, names }
        }
    };
    r.0.is_empty().then_some(meta)
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(&(b.len() as u32).to_le_bytes());
    w.extend_from_slice(b);
}

fn put_time(w: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    w.extend_from_slice(&d.as_secs().to_le_bytes());
    w.extend_from_slice(&d.subsec_nanos().to_le_bytes());
}

fn put_headers(w: &mut Vec<u8>, h: &HeaderMap) {
    w.extend_from_slice(&(h.len() as u32).to_le_bytes());
    for (name, value) in h {
        put_bytes(w, name.as_str().as_bytes());
        put_bytes(w, value.as_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn time(&mut self) -> Option<SystemTime> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return None;
        }
        UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    }
    fn headers(&mut self) -> Option<HeaderMap> {
        let count = self.u32()? as usize;
        // Each pair takes at least 8 bytes: a bogus count cannot make us allocate much.
        let mut h = HeaderMap::with_capacity(count.min(self.0.len() / 8));
        for _ in 0..count {
            let name = HeaderName::from_bytes(self.bytes()?).ok()?;
            let value = HeaderValue::from_bytes(self.bytes()?).ok()?;
            h.append(name, value);
        }
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CacheMetadata {
        let mut headers = HeaderMap::new();
        headers.append("content-type", HeaderValue::from_static("text/plain"));
        headers.append("x-many", HeaderValue::from_static("1"));
        headers.append("x-many", HeaderValue::from_static("2"));
        headers.append("x-bin", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        headers.append("vary", HeaderValue::from_static("accept-language"));
        let mut request_headers = HeaderMap::new();
        request_headers.append("accept-language", HeaderValue::from_static("en"));
        CacheMetadata {
            status: StatusCode::NON_AUTHORITATIVE_INFORMATION,
            headers,
            request_headers,
            request_time: UNIX_EPOCH + Duration::new(1_700_000_000, 123),
            response_time: UNIX_EPOCH + Duration::new(1_700_000_001, 999_999_999),
        }
    }

    #[test]
    fn entry_roundtrip() {
        let m = sample();
        let at = UNIX_EPOCH + Duration::new(5, 6);
        let bytes = encode_entry("GET http://h/", at, &m);
        let back = decode_meta(Kind::Entry, &bytes).unwrap();
        assert_eq!(
            back,
            Meta::Entry {
                key: "GET http://h/".into(),
                stored_at: at,
                metadata: m
            }
        );
        // Every truncation is rejected, and so is trailing garbage.
        for n in 0..bytes.len() {
            assert!(decode_meta(Kind::Entry, &bytes[..n]).is_none());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_meta(Kind::Entry, &long).is_none());
        // Random mutations never panic.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = bytes.clone();
            let i = (x as usize) % m.len();
            m[i] ^= (x >> 32) as u8 | 1;
            let _ = decode_meta(Kind::Entry, &m);
            let _ = decode_meta(Kind::VaryMarker, &m);
        }
    }

    #[test]
    fn marker_roundtrip() {
        let names = vec![HeaderName::from_static("accept-language")];
        let bytes = encode_marker("GET http://h/", UNIX_EPOCH, &names);
        assert_eq!(
            decode_meta(Kind::VaryMarker, &bytes).unwrap(),
            Meta::VaryMarker {
                key: "GET http://h/".into(),
                names
            }
        );
    }

    #[test]
    fn header_checks() {
        let h = FileHeader {
            kind: Kind::Entry,
            meta_len: 10,
            body_len: 20,
            meta_crc: 1,
            body_crc: 2,
        };
        let b = h.encode();
        assert_eq!(FileHeader::decode(&b), Some(h));
        assert_eq!(h.file_len(), 70);
        for i in 0..36 {
            let mut c = b;
            c[i] ^= 0x40;
            assert_eq!(FileHeader::decode(&c), None, "byte {i}");
        }
        assert_eq!(FileHeader::decode(&b[..39]), None);
        assert_eq!(
            FileHeader::decode(b"<html>not a cache entry</html>........."),
            None
        );
    }
}
