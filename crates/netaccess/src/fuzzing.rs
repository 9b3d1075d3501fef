//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by default): thin
//! wrappers that reach the crate's private parsers with public types. Not part of the API;
//! nothing here is stable.
//!
//! Public parsers (`Cookie::parse_set_cookie`, `parse_challenges`, `cache_policy`,
//! `Proxy::parse`, `NoProxyRules`, `MultiPart`, the jar and HSTS loaders) are fuzzed through
//! the public API and are not wrapped here.

use std::time::SystemTime;

use http::header::HeaderMap;
#[cfg(feature = "disk-cache")]
use http::header::HeaderName;

#[cfg(feature = "disk-cache")]
use crate::cache::format::{self, FileHeader, Kind, Meta, HEADER_LEN};
#[cfg(feature = "disk-cache")]
use crate::cache::CacheMetadata;

/// The cookie-date parser of RFC 6265 §5.1.1 (`cookies/date.rs`).
pub fn parse_cookie_date(input: &str) -> Option<SystemTime> {
    crate::cookies::parse_cookie_date(input)
}

/// The IMF-fixdate formatter the jar writes `Expires` with (`cookies/date.rs`).
pub fn format_cookie_date(t: SystemTime) -> String {
    crate::cookies::format_imf_fixdate(t)
}

/// The `Strict-Transport-Security` parser (RFC 6797 §6.1, `hsts.rs`): `(max-age,
/// includeSubDomains)`, `None` when the value is invalid.
pub fn parse_strict_transport_security(value: &str) -> Option<(u64, bool)> {
    crate::hsts::parse_sts(value).map(|d| (d.max_age, d.include_subdomains))
}

/// The `Content-Encoding` list (`decode.rs`): the codings' names in the order applied,
/// `Ok(None)` when there is nothing to decode or an unknown coding, an error for a list too
/// long to decode.
pub fn content_codings(headers: &HeaderMap) -> Result<Option<Vec<&'static str>>, crate::Error> {
    use crate::decode::Coding;
    Ok(crate::decode::codings(headers)?.map(|codings| {
        codings
            .into_iter()
            .map(|c| match c {
                Coding::Gzip => "gzip",
                Coding::Deflate => "deflate",
                #[cfg(feature = "brotli")]
                Coding::Brotli => "br",
                #[cfg(feature = "zstd")]
                Coding::Zstd => "zstd",
            })
            .collect()
    }))
}

/// The disk cache's file format (`cache/format.rs`; cargo feature `disk-cache`).
#[cfg(feature = "disk-cache")]
pub mod disk_cache {
    use super::*;

    /// The length of the fixed file header.
    pub const FILE_HEADER_LEN: usize = HEADER_LEN;

    /// A decoded fixed header.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Header {
        /// True for a response entry, false for a vary marker.
        pub is_entry: bool,
        /// The metadata length.
        pub meta_len: u32,
        /// The body length.
        pub body_len: u64,
        /// The CRC-32 of the metadata.
        pub meta_crc: u32,
        /// The CRC-32 of the body.
        pub body_crc: u32,
    }

    impl Header {
        fn inner(&self) -> FileHeader {
            FileHeader {
                kind: if self.is_entry {
                    Kind::Entry
                } else {
                    Kind::VaryMarker
                },
                meta_len: self.meta_len,
                body_len: self.body_len,
                meta_crc: self.meta_crc,
                body_crc: self.body_crc,
            }
        }

        /// The exact file length this header describes.
        pub fn file_len(&self) -> u64 {
            self.inner().file_len()
        }
    }

    /// Decodes the fixed header at the start of `bytes`.
    pub fn decode_header(bytes: &[u8]) -> Option<Header> {
        FileHeader::decode(bytes).map(|h| Header {
            is_entry: h.kind == Kind::Entry,
            meta_len: h.meta_len,
            body_len: h.body_len,
            meta_crc: h.meta_crc,
            body_crc: h.body_crc,
        })
    }

    /// Encodes a fixed header (its own CRC included).
    pub fn encode_header(header: &Header) -> [u8; HEADER_LEN] {
        header.inner().encode()
    }

    /// Decoded metadata.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Metadata {
        /// A response: its key, when it was stored, and the response.
        Entry {
            /// The cache key text.
            key: String,
            /// When it was stored.
            stored_at: SystemTime,
            /// The stored response.
            metadata: CacheMetadata,
        },
        /// A vary marker: the key and the `Vary` header names.
        VaryMarker {
            /// The cache key text.
            key: String,
            /// The names.
            names: Vec<HeaderName>,
        },
    }

    impl From<Meta> for Metadata {
        fn from(meta: Meta) -> Self {
            match meta {
                Meta::Entry {
                    key,
                    stored_at,
                    metadata,
                } => Metadata::Entry {
                    key,
                    stored_at,
                    metadata,
                },
                Meta::VaryMarker { key, names } => Metadata::VaryMarker { key, names },
            }
        }
    }

    /// Decodes the metadata of an entry (`is_entry`) or a vary marker; `None` when malformed.
    pub fn decode_metadata(is_entry: bool, bytes: &[u8]) -> Option<Metadata> {
        let kind = if is_entry {
            Kind::Entry
        } else {
            Kind::VaryMarker
        };
        Some(Metadata::from(format::decode_meta(kind, bytes)?))
    }

    /// Encodes metadata as the disk cache writes it.
    pub fn encode_metadata(meta: &Metadata) -> Vec<u8> {
        match meta {
            Metadata::Entry {
                key,
                stored_at,
                metadata,
            } => format::encode_entry(key, *stored_at, metadata),
            Metadata::VaryMarker { key, names } => {
                format::encode_marker(key, SystemTime::UNIX_EPOCH, names)
            }
        }
    }

    /// A whole file checked as the disk cache checks one it opens (header, exact length,
    /// metadata CRC, metadata, body CRC): the metadata and the body, `None` for a file that
    /// is a miss.
    pub fn check_file(bytes: &[u8]) -> Option<(Metadata, &[u8])> {
        let (header, version) = FileHeader::decode_versioned(bytes)?;
        if header.file_len() != bytes.len() as u64 {
            return None;
        }
        let meta_end = HEADER_LEN + header.meta_len as usize;
        let meta = bytes.get(HEADER_LEN..meta_end)?;
        if crc32fast::hash(meta) != header.meta_crc {
            return None;
        }
        let decoded = Metadata::from(format::decode_meta_version(version, header.kind, meta)?);
        let body = bytes.get(meta_end..)?;
        if crc32fast::hash(body) != header.body_crc {
            return None;
        }
        Some((decoded, body))
    }
}

/// The proxy's answer to CONNECT (`transport/proxy.rs`).
pub mod connect {
    use crate::transport::proxy::{parse_connect_reply, read_head, ConnectReply};
    use http::HeaderMap;

    /// What [`parse`] made of a response head.
    #[derive(Debug)]
    pub enum Reply {
        /// A 2xx.
        Open,
        /// A 407 and its headers.
        AuthRequired(HeaderMap),
        /// Another status.
        Refused(u16),
    }

    /// Reads a response head from `input` as the tunnel code reads it from the socket: the
    /// head (or the error) and how many bytes of `input` were consumed.
    pub fn read(input: &[u8]) -> (std::io::Result<Vec<u8>>, usize) {
        let mut rest = input;
        let result = futures_util::FutureExt::now_or_never(read_head(&mut rest))
            .unwrap_or_else(|| Err(std::io::Error::other("reading a slice never waits")));
        (result, input.len() - rest.len())
    }

    /// Parses a response head; `None` when malformed.
    pub fn parse(head: &[u8]) -> Option<Reply> {
        Some(match parse_connect_reply(head)? {
            ConnectReply::Open => Reply::Open,
            ConnectReply::AuthRequired(h) => Reply::AuthRequired(h),
            ConnectReply::Refused(s) => Reply::Refused(s),
        })
    }
}

/// The bytes of a request body whose chunks are all ready at once (bytes, or a multipart of
/// bytes), as they would be sent; the body's error as text.
pub fn collect_body(body: &crate::Body) -> Result<Vec<u8>, String> {
    use futures_util::{FutureExt, StreamExt};
    let mut stream = body.chunks().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    loop {
        match stream.next().now_or_never() {
            None => return Err("the body stream is not ready".to_owned()),
            Some(None) => return Ok(out),
            Some(Some(Ok(chunk))) => out.extend_from_slice(&chunk),
            Some(Some(Err(e))) => return Err(e.to_string()),
        }
    }
}

/// The HTTP/1 framing watch's head scanner (`transport/framing.rs` `HeadScan`).
pub mod head_scan {
    use crate::transport::framing::HeadScan;

    /// Most head bytes scanned after one request.
    pub const MAX_SCAN: usize = crate::transport::framing::MAX_SCAN;

    /// A scanner armed as after a request write.
    #[derive(Debug, Default)]
    pub struct Scanner(HeadScan);

    impl Scanner {
        /// Armed: the next bytes are a response.
        pub fn armed() -> Scanner {
            let mut scan = HeadScan::default();
            scan.arm();
            Scanner(scan)
        }

        /// Arms it again, as a request write does (nothing when it is still armed).
        pub fn arm(&mut self) {
            self.0.arm();
        }

        /// Scans the bytes of one read: true when a final head with both `Content-Length`
        /// and `Transfer-Encoding` ended in them. Bytes are only scanned while armed, as
        /// the watch does.
        pub fn scan(&mut self, bytes: &[u8]) -> bool {
            self.0.armed && self.0.scan(bytes)
        }

        /// Still scanning (the final head has not ended, the bound not reached).
        pub fn is_armed(&self) -> bool {
            self.0.armed
        }
    }
}

/// The resumption's `Content-Range` parser (`pipeline/resume.rs`): `(start, total)`.
pub fn resume_content_range(value: &[u8]) -> Option<(u64, Option<u64>)> {
    crate::pipeline::resume::content_range(value)
}

/// The validator a resumption's `If-Range` carries (`pipeline/resume.rs`).
pub fn resume_strong_validator(headers: &HeaderMap) -> Option<http::HeaderValue> {
    crate::pipeline::resume::strong_validator(headers)
}
