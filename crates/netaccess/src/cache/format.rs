//! The on-disk entry format of [`DiskCache`](super::DiskCache).
//!
//! ```text
//! offset  size  field
//!      0     8  magic "NACACHE\0"
//!      8     2  version (3), little endian like every number here
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
//! Checksums only catch accidents: a file forged with valid checksums must not cost more than
//! a real entry either. So every length and count is checked against an explicit limit (and
//! the lengths against the file size) before anything sized from the file is allocated:
//! metadata at most [`MAX_META_LEN`], a key at most [`MAX_KEY_LEN`], at most
//! [`MAX_HEADER_COUNT`] headers in a map and [`MAX_HEADER_BYTES`] of names and values in all,
//! at most [`MAX_VARY_NAMES`] names in a vary marker. A writer does not store what a reader
//! would refuse.
//!
//! Version 2: the `Vary` request headers hold keyed hashes of credentials, not their values
//! (version 1 files, which may hold them in the clear, are foreign and removed when met).
//! Version 3 (written now; version 2 is still read) adds, after the `Vary` request headers, a
//! flags byte (1 = save to disk) and the application's attributes (a `u32` count of name and
//! value strings, at most [`MAX_ATTRIBUTES`]). docs/cache.md describes the format for tools.
//!
//! Metadata of an entry: key (string), stored-at (time), status (u16), request time, response
//! time, response headers, Vary request headers (then, version 3, flags and attributes). Of a
//! vary marker: key, stored-at, and the list of `Vary` header names. Strings and header values are `u32` length + bytes, times are
//! `u64` seconds + `u32` nanoseconds since the Unix epoch, header maps are a `u32` count of
//! (name, value) pairs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::CacheMetadata;

pub(crate) const MAGIC: [u8; 8] = *b"NACACHE\0";
pub(crate) const VERSION: u16 = 3;
/// The oldest version still read (version 2 has no flags and attributes: they are read as
/// `save_to_disk` and none).
pub(crate) const OLDEST_READABLE: u16 = 2;
/// The most application attributes in an entry.
pub(crate) const MAX_ATTRIBUTES: usize = 64;
pub(crate) const HEADER_LEN: usize = 40;
/// Metadata larger than this (1 MiB) is not ours.
pub(crate) const MAX_META_LEN: u32 = 1 << 20;
/// The longest key: the method, a space, a URL of at most 65,534 bytes (the most the `http`
/// crate sends), and a user-info partition.
pub(crate) const MAX_KEY_LEN: usize = 65_536 + 128;
/// The most headers in one map (response headers, or `Vary` request headers); hyper accepts
/// at most 100 response headers and `http`'s maps hold at most 32,768.
pub(crate) const MAX_HEADER_COUNT: usize = 512;
/// The most bytes of header names and values in one entry, both maps together.
pub(crate) const MAX_HEADER_BYTES: usize = 512 * 1024;
/// The most names in a vary marker.
pub(crate) const MAX_VARY_NAMES: usize = 64;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A response.
    Entry = 1,
    /// The `Vary` names of a key whose responses are stored as variants.
    VaryMarker = 2,
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileHeader {
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

    /// `None` unless this is a valid header of a version this code reads.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub fn decode(b: &[u8]) -> Option<Self> {
        Self::decode_versioned(b).map(|(h, _)| h)
    }

    /// The header and its format version.
    pub fn decode_versioned(b: &[u8]) -> Option<(Self, u16)> {
        if b.len() < HEADER_LEN || b[0..8] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let version = u16::from_le_bytes([b[8], b[9]]);
        if !(OLDEST_READABLE..=VERSION).contains(&version)
            || crc32fast::hash(&b[0..32]) != u32_at(32)
        {
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
        let header = Self {
            kind,
            meta_len,
            body_len: u64::from(u32_at(16)) | (u64::from(u32_at(20)) << 32),
            meta_crc: u32_at(24),
            body_crc: u32_at(28),
        };
        Some((header, version))
    }

    /// The exact file length this header describes (saturating: a forged body length near
    /// 2^64 gives `u64::MAX`, which no file has).
    pub fn file_len(&self) -> u64 {
        (HEADER_LEN as u64 + u64::from(self.meta_len)).saturating_add(self.body_len)
    }

    /// Whether this header describes a file of exactly `len` bytes: checked before any buffer
    /// is sized from the header.
    pub fn fits(&self, len: u64) -> bool {
        len < u64::MAX && self.file_len() == len
    }
}

/// Whether `meta` (as encoded for a file) is within what a reader accepts: a writer checks
/// this before storing.
pub(crate) fn storable(meta: &[u8], kind: Kind) -> bool {
    meta.len() <= MAX_META_LEN as usize && decode_meta(kind, meta).is_some()
}

/// Decoded metadata of a file.
// A transient decoding result: boxing would only add an allocation per read.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meta {
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

pub(crate) fn encode_entry(key: &str, stored_at: SystemTime, m: &CacheMetadata) -> Vec<u8> {
    let mut w = Vec::with_capacity(256 + m.approximate_size() as usize);
    put_bytes(&mut w, key.as_bytes());
    put_time(&mut w, stored_at);
    w.extend_from_slice(&m.status.as_u16().to_le_bytes());
    put_time(&mut w, m.request_time);
    put_time(&mut w, m.response_time);
    put_headers(&mut w, &m.headers);
    put_headers(&mut w, &m.request_headers);
    w.push(u8::from(m.save_to_disk));
    w.extend_from_slice(&(m.attributes.len() as u32).to_le_bytes());
    for (name, value) in &m.attributes {
        put_bytes(&mut w, name.as_bytes());
        put_bytes(&mut w, value.as_bytes());
    }
    w
}

pub(crate) fn encode_marker(key: &str, stored_at: SystemTime, names: &[HeaderName]) -> Vec<u8> {
    let mut w = Vec::new();
    put_bytes(&mut w, key.as_bytes());
    put_time(&mut w, stored_at);
    w.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for n in names {
        put_bytes(&mut w, n.as_str().as_bytes());
    }
    w
}

/// Metadata of the current version; `None` for anything malformed or over a limit.
pub(crate) fn decode_meta(kind: Kind, bytes: &[u8]) -> Option<Meta> {
    decode_meta_version(VERSION, kind, bytes)
}

/// Metadata of format `version`; `None` for anything malformed or over a limit (never
/// panics, allocates at most about the size of `bytes`).
pub(crate) fn decode_meta_version(version: u16, kind: Kind, bytes: &[u8]) -> Option<Meta> {
    if bytes.len() > MAX_META_LEN as usize {
        return None;
    }
    let mut r = Reader {
        rest: bytes,
        header_bytes: 0,
    };
    let key = r.bytes()?;
    if key.len() > MAX_KEY_LEN {
        return None;
    }
    let key = std::str::from_utf8(key).ok()?.to_owned();
    let stored_at = r.time()?;
    let meta = match kind {
        Kind::Entry => {
            let status = StatusCode::from_u16(r.u16()?).ok()?;
            let request_time = r.time()?;
            let response_time = r.time()?;
            let headers = r.headers()?;
            let request_headers = r.headers()?;
            let (save_to_disk, attributes) = if version >= 3 {
                let flags = r.take(1)?[0];
                if flags > 1 {
                    return None;
                }
                let count = r.u32()? as usize;
                if count > MAX_ATTRIBUTES {
                    return None;
                }
                let mut attributes = std::collections::BTreeMap::new();
                for _ in 0..count {
                    let name = std::str::from_utf8(r.header_field()?).ok()?.to_owned();
                    let value = std::str::from_utf8(r.header_field()?).ok()?.to_owned();
                    // The encoder writes each name once: a repeated name is forged, and
                    // keeping only one of them would not be the file as written.
                    if attributes.insert(name, value).is_some() {
                        return None;
                    }
                }
                (flags == 1, attributes)
            } else {
                (true, std::collections::BTreeMap::new())
            };
            Meta::Entry {
                key,
                stored_at,
                metadata: CacheMetadata {
                    status,
                    headers,
                    request_headers,
                    request_time,
                    response_time,
                    save_to_disk,
                    attributes,
                },
            }
        }
        Kind::VaryMarker => {
            let count = r.u32()? as usize;
            if count > MAX_VARY_NAMES {
                return None;
            }
            let mut names = Vec::with_capacity(count);
            for _ in 0..count {
                names.push(HeaderName::from_bytes(r.header_field()?).ok()?);
            }
            Meta::VaryMarker { key, names }
        }
    };
    r.rest.is_empty().then_some(meta)
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

/// Reads the metadata, counting header bytes against [`MAX_HEADER_BYTES`].
struct Reader<'a> {
    rest: &'a [u8],
    header_bytes: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }
    /// A header name or value, counted against the entry's header bytes.
    fn header_field(&mut self) -> Option<&'a [u8]> {
        let b = self.bytes()?;
        self.header_bytes = self.header_bytes.checked_add(b.len())?;
        (self.header_bytes <= MAX_HEADER_BYTES).then_some(b)
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
        // Each pair takes at least 8 bytes: a count the rest cannot hold is forged too.
        if count > MAX_HEADER_COUNT || count > self.rest.len() / 8 {
            return None;
        }
        let mut h = HeaderMap::with_capacity(count);
        for _ in 0..count {
            let name = HeaderName::from_bytes(self.header_field()?).ok()?;
            let value = HeaderValue::from_bytes(self.header_field()?).ok()?;
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
            save_to_disk: true,
            attributes: [("app".to_owned(), "v1".to_owned())].into(),
        }
    }

    #[test]
    fn a_repeated_attribute_name_is_rejected() {
        // Found by the disk_cache_entry fuzz target: two attributes with one name decoded
        // into one, so the file did not say what the decoded entry said.
        let mut m = sample();
        m.attributes.clear();
        let mut bytes = encode_entry("k", UNIX_EPOCH, &m);
        let count_at = bytes.len() - 4;
        bytes[count_at..].copy_from_slice(&2u32.to_le_bytes());
        for _ in 0..2 {
            put_bytes(&mut bytes, b"app");
            put_bytes(&mut bytes, b"v");
        }
        assert!(decode_meta(Kind::Entry, &bytes).is_none());
        // Two different names are fine.
        let n = bytes.len();
        bytes[n - 1 - 4 - 3 + 2] = b'q';
        assert!(decode_meta(Kind::Entry, &bytes).is_some());
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

    /// Metadata with `n` response headers, each `value_len` bytes of value.
    fn forged(n: u32, value_len: usize) -> Vec<u8> {
        let mut w = Vec::new();
        put_bytes(&mut w, b"GET http://h/");
        put_time(&mut w, UNIX_EPOCH);
        w.extend_from_slice(&200u16.to_le_bytes());
        put_time(&mut w, UNIX_EPOCH);
        put_time(&mut w, UNIX_EPOCH);
        w.extend_from_slice(&n.to_le_bytes());
        let value = vec![b'v'; value_len];
        for i in 0..n {
            put_bytes(&mut w, format!("x-{i}").as_bytes());
            put_bytes(&mut w, &value);
        }
        w.extend_from_slice(&0u32.to_le_bytes());
        w.push(1);
        w.extend_from_slice(&0u32.to_le_bytes());
        w
    }

    #[test]
    fn version_2_files_are_read_without_attributes() {
        let mut m = sample();
        m.attributes.clear();
        let v3 = encode_entry("GET http://h/", UNIX_EPOCH, &m);
        // Version 2 ends after the request headers.
        let v2 = &v3[..v3.len() - 5];
        let Some(Meta::Entry { metadata, .. }) = decode_meta_version(2, Kind::Entry, v2) else {
            panic!("version 2 metadata")
        };
        assert_eq!(metadata, m);
        assert!(decode_meta(Kind::Entry, v2).is_none());
        assert!(decode_meta_version(2, Kind::Entry, &v3).is_none());
    }

    #[test]
    fn attributes_are_limited() {
        let mut m = sample();
        m.attributes = (0..MAX_ATTRIBUTES)
            .map(|i| (format!("a{i}"), "v".into()))
            .collect();
        assert!(storable(&encode_entry("k", UNIX_EPOCH, &m), Kind::Entry));
        m.attributes.insert("one-more".into(), "v".into());
        assert!(!storable(&encode_entry("k", UNIX_EPOCH, &m), Kind::Entry));
        m.attributes = [("big".to_owned(), "v".repeat(MAX_HEADER_BYTES))].into();
        assert!(!storable(&encode_entry("k", UNIX_EPOCH, &m), Kind::Entry));
    }

    #[test]
    fn limits_refuse_forged_metadata() {
        assert!(decode_meta(Kind::Entry, &forged(MAX_HEADER_COUNT as u32, 1)).is_some());
        // 30,000 headers: more than a map may hold here (and near http's panic at 32,768).
        assert!(decode_meta(Kind::Entry, &forged(30_000, 1)).is_none());
        assert!(decode_meta(Kind::Entry, &forged(MAX_HEADER_COUNT as u32 + 1, 1)).is_none());
        // Too many header bytes in all.
        assert!(decode_meta(Kind::Entry, &forged(8, MAX_HEADER_BYTES / 8 + 1)).is_none());
        // A count claiming more pairs than the bytes left can hold.
        let mut w = forged(0, 0);
        let n = w.len();
        w[n - 8..n - 4].copy_from_slice(&400u32.to_le_bytes());
        assert!(decode_meta(Kind::Entry, &w).is_none());
        // A key longer than any URL we send.
        let long_key = format!("GET http://h/{}", "a".repeat(MAX_KEY_LEN));
        let m = encode_entry(&long_key, UNIX_EPOCH, &sample());
        assert!(decode_meta(Kind::Entry, &m).is_none());
        assert!(!storable(&m, Kind::Entry));
        // A length past the end of the metadata.
        let mut w = forged(1, 4);
        let n = w.len();
        w[n - 12..n - 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_meta(Kind::Entry, &w).is_none());
        // Too many vary names.
        let names: Vec<HeaderName> = (0..=MAX_VARY_NAMES)
            .map(|i| HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap())
            .collect();
        assert!(decode_meta(Kind::VaryMarker, &encode_marker("k", UNIX_EPOCH, &names)).is_none());
        assert!(decode_meta(
            Kind::VaryMarker,
            &encode_marker("k", UNIX_EPOCH, &names[..MAX_VARY_NAMES])
        )
        .is_some());
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
        assert!(h.fits(70) && !h.fits(69) && !h.fits(71));
        let huge = FileHeader {
            body_len: u64::MAX - 10,
            ..h
        };
        assert_eq!(huge.file_len(), u64::MAX);
        assert!(!huge.fits(u64::MAX));
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
