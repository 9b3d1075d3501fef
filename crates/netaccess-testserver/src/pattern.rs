//! The deterministic byte pattern served by `/bytes/N` (and the other routes that
//! send filler bytes): byte `i` of a body is `(i % 251) as u8`.
//!
//! The server slices chunks out of one shared, pre-generated buffer, so serving a
//! gigabyte never allocates more than that buffer.

use std::sync::OnceLock;

use bytes::Bytes;

/// Length of the pattern's period (a prime, so it does not line up with chunk sizes).
const PERIOD: u64 = 251;

/// Largest chunk the server hands to hyper in one frame.
pub(crate) const MAX_CHUNK: usize = 1024 * 1024;

/// Default chunk size for generated bodies.
pub(crate) const DEFAULT_CHUNK: usize = 64 * 1024;

/// The byte at absolute position `i` of every pattern body.
pub fn pattern_byte(i: u64) -> u8 {
    (i % PERIOD) as u8
}

/// The `len` bytes a pattern body holds starting at absolute position `offset`.
///
/// Clients use this to verify (parts of) `/bytes/N` bodies.
pub fn expected_bytes(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(offset + i)).collect()
}

/// A shared buffer holding the pattern from position 0, long enough that any chunk of
/// up to [`MAX_CHUNK`] bytes starting at any phase fits in it.
fn shared_pattern() -> &'static Bytes {
    static BUFFER: OnceLock<Bytes> = OnceLock::new();
    BUFFER.get_or_init(|| Bytes::from(expected_bytes(0, MAX_CHUNK + PERIOD as usize)))
}

/// Pattern bytes for positions `offset..offset + len`; `len` must not exceed [`MAX_CHUNK`].
pub(crate) fn pattern_chunk(offset: u64, len: usize) -> Bytes {
    let len = len.min(MAX_CHUNK);
    let phase = (offset % PERIOD) as usize;
    shared_pattern().slice(phase..phase + len)
}

/// Iterator-like source of consecutive pattern chunks for a body of known size.
#[derive(Debug)]
pub(crate) struct PatternSource {
    offset: u64,
    remaining: u64,
    chunk_size: usize,
}

impl PatternSource {
    /// A source producing `len` bytes in chunks of `chunk_size` (clamped to 1..=[`MAX_CHUNK`]).
    pub(crate) fn new(len: u64, chunk_size: usize) -> Self {
        Self {
            offset: 0,
            remaining: len,
            chunk_size: chunk_size.clamp(1, MAX_CHUNK),
        }
    }

    /// The same source starting at absolute position `offset` (for range requests).
    pub(crate) fn starting_at(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Bytes not yet produced.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next chunk, or `None` once all bytes were produced.
    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        if self.remaining == 0 {
            return None;
        }
        let len = self.remaining.min(self.chunk_size as u64) as usize;
        let chunk = pattern_chunk(self.offset, len);
        self.offset += len as u64;
        self.remaining -= len as u64;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_pattern_across_boundaries() {
        let mut source = PatternSource::new(1000, 7);
        let mut all = Vec::new();
        while let Some(chunk) = source.next_chunk() {
            assert!(chunk.len() <= 7);
            all.extend_from_slice(&chunk);
        }
        assert_eq!(all, expected_bytes(0, 1000));
    }

    #[test]
    fn chunk_at_large_offset_matches() {
        let offset = (1 << 30) + 12345;
        assert_eq!(
            pattern_chunk(offset, 300).to_vec(),
            expected_bytes(offset, 300)
        );
    }
}
