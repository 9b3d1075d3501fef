//! Content decoding (gzip, deflate, br, zstd, stacked) of response bodies, with Qt's
//! decompression-bomb check.
//!
//! [`codings`] reads `Content-Encoding`; [`Decoder`] turns the encoded byte stream into decoded
//! chunks. After `threshold` decoded bytes, the ratio of decoded to encoded bytes may not exceed
//! Qt's limit for the coding (40 for gzip and deflate, 100 for brotli and zstd, as Qt's
//! `QDecompressHelper`); past it decoding stops with an error, so memory and time stay bounded.
//! Besides the ratio, decoded bytes have an absolute cap ([`DEFAULT_MAX_DECODED_SIZE`] unless the
//! request sets another), and a `Content-Encoding` list longer than [`MAX_CODINGS`] is refused
//! before any decoder exists. Truncated or corrupt data is an error, never a silently short body.
//!
//! `br` and `zstd` are decoded only with the cargo features `brotli` and `zstd`. Without one,
//! that coding is not offered in `Accept-Encoding`, and a response that uses it anyway fails
//! with a `ProtocolFailure` naming the missing feature (a body we know to be encoded is never
//! handed over as if it were decoded).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[cfg(feature = "brotli")]
use async_compression::tokio::bufread::BrotliDecoder;
#[cfg(feature = "zstd")]
use async_compression::tokio::bufread::ZstdDecoder;
use async_compression::tokio::bufread::{DeflateDecoder, GzipDecoder, ZlibDecoder};
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use http::header::{HeaderMap, CONTENT_ENCODING};
use tokio::io::{AsyncBufRead, BufReader};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::error::{Error, NetworkError};

/// The `Accept-Encoding` sent when the application set none: the codings this build decodes.
pub(crate) const ACCEPT_ENCODING: &str = match (cfg!(feature = "brotli"), cfg!(feature = "zstd")) {
    (true, true) => "gzip, deflate, br, zstd",
    (true, false) => "gzip, deflate, br",
    (false, true) => "gzip, deflate, zstd",
    (false, false) => "gzip, deflate",
};

/// Qt's default `decompressedSafetyCheckThreshold`: 10 MiB.
pub const DEFAULT_DECOMPRESSED_SAFETY_CHECK_THRESHOLD: u64 = 10 * 1024 * 1024;

/// The longest `Content-Encoding` chain decoded (curl and urllib3 use 5 too). A longer list is
/// a `ProtocolFailure`, decided while reading the header, before any decoder is allocated:
/// each coding is a decoder with its own buffer, and the chain is polled recursively.
pub const MAX_CODINGS: usize = 5;

/// The default absolute cap on the decoded bytes of one body (1 GiB), whatever the ratio:
/// a body at 39:1 stays under the ratio check but not under this one.
/// [`Request::with_max_decoded_size`](crate::Request::with_max_decoded_size) changes it.
pub const DEFAULT_MAX_DECODED_SIZE: u64 = 1 << 30;

/// A content coding we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
    #[cfg(feature = "brotli")]
    Brotli,
    #[cfg(feature = "zstd")]
    Zstd,
}

impl Coding {
    /// Qt's largest accepted ratio of decoded to encoded bytes.
    fn max_ratio(self) -> u64 {
        match self {
            Coding::Gzip | Coding::Deflate => 40,
            #[cfg(feature = "brotli")]
            Coding::Brotli => 100,
            #[cfg(feature = "zstd")]
            Coding::Zstd => 100,
        }
    }
}

/// The codings of `Content-Encoding`, in the order they were applied. `Ok(None)` when there is
/// nothing to decode or a coding we do not know (the body is then handed over as is); an error
/// when the list names more than [`MAX_CODINGS`] codings (counted before anything else), or a
/// coding whose decoder this build leaves out (`br`, `zstd` without their cargo features).
pub(crate) fn codings(headers: &HeaderMap) -> Result<Option<Vec<Coding>>, Error> {
    let tokens = || {
        headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|token| !token.is_empty())
    };
    if !headers.contains_key(CONTENT_ENCODING) {
        return Ok(None); // the common case, without an allocation
    }
    if tokens().nth(MAX_CODINGS).is_some() {
        return Err(Error::new(
            NetworkError::ProtocolFailure,
            format!("Content-Encoding lists more than {MAX_CODINGS} codings; refusing to decode"),
        ));
    }
    let mut out = Vec::with_capacity(MAX_CODINGS);
    for token in tokens() {
        let coding = match token.to_ascii_lowercase().as_slice() {
            b"identity" => continue,
            b"gzip" | b"x-gzip" => Coding::Gzip,
            b"deflate" => Coding::Deflate,
            #[cfg(feature = "brotli")]
            b"br" => Coding::Brotli,
            #[cfg(feature = "zstd")]
            b"zstd" => Coding::Zstd,
            #[cfg(not(feature = "brotli"))]
            b"br" => return Err(left_out("br", "brotli")),
            #[cfg(not(feature = "zstd"))]
            b"zstd" => return Err(left_out("zstd", "zstd")),
            _ => return Ok(None),
        };
        out.push(coding);
    }
    Ok((!out.is_empty()).then_some(out))
}

/// The error for a response encoded with a coding this build cannot decode.
#[cfg(not(all(feature = "brotli", feature = "zstd")))]
fn left_out(coding: &str, feature: &str) -> Error {
    Error::new(
        NetworkError::ProtocolFailure,
        format!("Content-Encoding {coding}: this build of netaccess has no {coding} decoder (cargo feature `{feature}` is off), and {coding} was not offered in Accept-Encoding"),
    )
}

type Reader<'a> = Pin<Box<dyn AsyncBufRead + Send + 'a>>;

/// Decodes an encoded stream of chunks.
pub(crate) struct Decoder<'a> {
    decoded: ReaderStream<Reader<'a>>,
    encoded_bytes: Arc<AtomicU64>,
    decoded_bytes: u64,
    threshold: Option<u64>,
    max_ratio: u64,
    max_decoded: Option<u64>,
}

/// The limits a [`Decoder`] enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Qt's safety-check threshold: the ratio is checked past this many decoded bytes.
    pub(crate) threshold: Option<u64>,
    /// The absolute cap on decoded bytes.
    pub(crate) max_decoded: Option<u64>,
}

impl<'a> Decoder<'a> {
    /// `encoded` yields the body as received; its errors pass through unchanged.
    pub(crate) fn new<S>(encoded: S, codings: &[Coding], limits: Limits) -> Decoder<'a>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send + 'a,
    {
        let encoded_bytes = Arc::new(AtomicU64::new(0));
        let counter = encoded_bytes.clone();
        let counted = encoded.map(move |chunk| {
            let chunk = chunk.map_err(io::Error::other)?;
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok::<_, io::Error>(chunk)
        });
        let mut reader: Reader<'a> = Box::pin(StreamReader::new(counted));
        // Applied first, decoded last: undo the list from the end.
        for coding in codings.iter().rev() {
            reader = match coding {
                Coding::Gzip => {
                    let mut d = GzipDecoder::new(reader);
                    d.multiple_members(true);
                    Box::pin(BufReader::new(d))
                }
                Coding::Deflate => Box::pin(BufReader::new(DeflateAuto::new(reader))),
                #[cfg(feature = "brotli")]
                Coding::Brotli => Box::pin(BufReader::new(BrotliDecoder::new(reader))),
                #[cfg(feature = "zstd")]
                Coding::Zstd => Box::pin(BufReader::new(ZstdDecoder::new(reader))),
            };
        }
        let max_ratio = codings.iter().map(|c| c.max_ratio()).min().unwrap_or(40);
        Decoder {
            decoded: ReaderStream::with_capacity(reader, 64 * 1024),
            encoded_bytes,
            decoded_bytes: 0,
            threshold: limits.threshold,
            max_ratio,
            max_decoded: limits.max_decoded,
        }
    }
}

impl Stream for Decoder<'_> {
    type Item = Result<Bytes, Error>;

    /// The next decoded chunk, `None` at the end.
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let chunk = match self.decoded.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Ok(chunk))) => chunk,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(decode_error(e)))),
        };
        self.decoded_bytes = self.decoded_bytes.saturating_add(chunk.len() as u64);
        if let Some(cap) = self.max_decoded.filter(|&cap| self.decoded_bytes > cap) {
            return Poll::Ready(Some(Err(Error::new(
                NetworkError::ProtocolFailure,
                format!("Decompression bomb: the decoded body passed the {cap}-byte limit"),
            ))));
        }
        if let Some(threshold) = self.threshold {
            let encoded = self.encoded_bytes.load(Ordering::Relaxed).max(1);
            if self.decoded_bytes > threshold && self.decoded_bytes / encoded > self.max_ratio {
                return Poll::Ready(Some(Err(Error::new(
                    NetworkError::ProtocolFailure,
                    format!(
                        "Decompression bomb: {} bytes decoded from {encoded} (ratio above {}:1 past the {threshold}-byte safety threshold)",
                        self.decoded_bytes, self.max_ratio
                    ),
                ))));
            }
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}

/// Our own error (a transport failure, a timeout) passes through; decoder errors are protocol
/// failures.
fn decode_error(e: io::Error) -> Error {
    let e = if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => return *ours,
            Some(Err(other)) => io::Error::other(other),
            None => io::Error::other("decoding failed"),
        }
    } else {
        e
    };
    Error::new(
        NetworkError::ProtocolFailure,
        format!("Content decoding failed: {e}"),
    )
    .with_source(e)
}

/// "deflate" as servers send it: zlib-wrapped (RFC 9110) or raw deflate (what some servers
/// send). The first two bytes decide: a valid zlib header is a multiple of 31 with method 8.
struct DeflateAuto<'a> {
    state: DeflateState<'a>,
}

enum DeflateState<'a> {
    Sniffing(Option<Reader<'a>>),
    Zlib(ZlibDecoder<Reader<'a>>),
    Raw(DeflateDecoder<Reader<'a>>),
    Empty,
}

impl<'a> DeflateAuto<'a> {
    fn new(reader: Reader<'a>) -> Self {
        DeflateAuto {
            state: DeflateState::Sniffing(Some(reader)),
        }
    }
}

impl tokio::io::AsyncRead for DeflateAuto<'_> {
    // Invariant: the reader is present exactly while sniffing.
    #[allow(clippy::expect_used)]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        use std::task::Poll;
        loop {
            match &mut self.state {
                DeflateState::Sniffing(reader) => {
                    let r = reader.as_mut().expect("reader present while sniffing");
                    let head = match r.as_mut().poll_fill_buf(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(head)) => head,
                    };
                    let next = match head {
                        [] => None,
                        [cmf, flg, ..] => Some(is_zlib_header(*cmf, *flg)),
                        // A first chunk of one byte (rare): judge by the method nibble alone.
                        [cmf] => Some(cmf & 0x0f == 8 && cmf >> 4 <= 7),
                    };
                    let reader = reader.take().expect("reader present while sniffing");
                    self.state = match next {
                        None => DeflateState::Empty,
                        Some(true) => DeflateState::Zlib(ZlibDecoder::new(reader)),
                        Some(false) => DeflateState::Raw(DeflateDecoder::new(reader)),
                    };
                }
                DeflateState::Zlib(d) => return Pin::new(d).poll_read(cx, buf),
                DeflateState::Raw(d) => return Pin::new(d).poll_read(cx, buf),
                DeflateState::Empty => return Poll::Ready(Ok(())),
            }
        }
    }
}

fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && (cmf >> 4) <= 7 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    #[cfg(all(feature = "brotli", feature = "zstd"))]
    fn content_encoding_lists_are_read_in_order() {
        let codings = |h: &HeaderMap| super::codings(h).expect("short list");
        let mut h = HeaderMap::new();
        assert_eq!(codings(&h), None);
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip, br"));
        assert_eq!(codings(&h), Some(vec![Coding::Gzip, Coding::Brotli]));
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
        assert_eq!(codings(&h), None);
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("compress"));
        assert_eq!(codings(&h), None, "unknown codings are handed over as is");
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("ZSTD"));
        h.append(CONTENT_ENCODING, HeaderValue::from_static("x-gzip"));
        assert_eq!(codings(&h), Some(vec![Coding::Zstd, Coding::Gzip]));
    }

    #[test]
    #[cfg(feature = "brotli")]
    fn content_encoding_chains_longer_than_five_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_ENCODING,
            HeaderValue::from_static("gzip,gzip,gzip,gzip,gzip"),
        );
        assert_eq!(codings(&h).expect("five is fine").map(|c| c.len()), Some(5));
        h.append(CONTENT_ENCODING, HeaderValue::from_static("identity"));
        let e = codings(&h).expect_err("six tokens over two fields");
        assert_eq!(e.kind(), NetworkError::ProtocolFailure);
        assert!(e.message().contains("more than 5 codings"), "{e}");
        let long = vec!["gzip"; 80_000].join(",");
        h.insert(CONTENT_ENCODING, HeaderValue::from_str(&long).unwrap());
        assert!(codings(&h).is_err());
        // Empty list elements (RFC 9110 5.6.1) do not count.
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip,,, ,br"));
        assert_eq!(codings(&h).unwrap().map(|c| c.len()), Some(2));
    }

    #[test]
    #[cfg(not(all(feature = "brotli", feature = "zstd")))]
    fn codings_left_out_of_the_build_are_refused_by_name_and_not_offered() {
        for (coding, feature) in [("br", "brotli"), ("zstd", "zstd")] {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
            let built = match coding {
                "br" => cfg!(feature = "brotli"),
                _ => cfg!(feature = "zstd"),
            };
            let offered = ACCEPT_ENCODING.split(", ").any(|c| c == coding);
            assert_eq!(offered, built, "{coding} offered only when built");
            if built {
                continue;
            }
            let e = codings(&h).expect_err("a coding left out of the build");
            assert_eq!(e.kind(), NetworkError::ProtocolFailure);
            assert!(e.message().contains(&format!("`{feature}` is off")), "{e}");
        }
    }

    #[test]
    fn zlib_headers_are_recognised() {
        assert!(is_zlib_header(0x78, 0x9c));
        assert!(is_zlib_header(0x78, 0x01));
        assert!(is_zlib_header(0x78, 0xda));
        assert!(!is_zlib_header(0xcb, 0x48)); // raw deflate of "hello"
    }
}
