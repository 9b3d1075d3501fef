//! The HTTP/1 framing watch (`netaccess/src/transport/framing.rs` `HeadScan`): the bytes read
//! after a request give the same answer (ambiguous framing seen, still scanning) whether they
//! come in one read or split anywhere, and the answer is a simple model's: whole lines, `\r`
//! dropped, ASCII case folded, blank lines before a status line skipped, `1xx` heads reset,
//! the first final head with both `Content-Length:` and `Transfer-Encoding:` lines ambiguous,
//! nothing after that head or past `MAX_SCAN` bytes looked at.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::__fuzz::head_scan::{Scanner, MAX_SCAN};

/// (ambiguous, still scanning) for `bytes` read after one request.
fn model(bytes: &[u8]) -> (bool, bool) {
    let mut at_status_line = true;
    let mut informational = false;
    let (mut content_length, mut transfer_encoding) = (false, false);
    let mut start = 0;
    while let Some(len) = bytes[start..].iter().position(|&b| b == b'\n') {
        let end = start + len;
        if end + 1 > MAX_SCAN {
            return (false, false);
        }
        // Only a line's start matters (the longest name looked for is 18 bytes).
        let line: Vec<u8> = bytes[start..end]
            .iter()
            .filter(|&&b| b != b'\r')
            .take(64)
            .map(u8::to_ascii_lowercase)
            .collect();
        start = end + 1;
        if line.is_empty() {
            if at_status_line {
                continue;
            }
            if informational {
                at_status_line = true;
                content_length = false;
                transfer_encoding = false;
                continue;
            }
            return (content_length && transfer_encoding, false);
        }
        if at_status_line {
            at_status_line = false;
            informational = line.starts_with(b"http/1.") && line.get(9) == Some(&b'1');
        } else if line.starts_with(b"content-length:") {
            content_length = true;
        } else if line.starts_with(b"transfer-encoding:") {
            transfer_encoding = true;
        }
    }
    (false, bytes.len() <= MAX_SCAN)
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: flags (bits 0 and 1 both set: a status line and a long header first, so the
    // rest crosses the MAX_SCAN bound; the rest says where); bytes 1-4: where to split.
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (cuts, body) = rest.split_at(rest.len().min(4));
    let mut bytes = Vec::new();
    let padded = flags & 3 == 3;
    if padded {
        bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\nx-filler: ");
        let fill = MAX_SCAN - bytes.len() - 2 - usize::from(flags >> 2) * 32;
        bytes.resize(bytes.len() + fill, b'a');
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(body);

    let mut whole = Scanner::armed();
    let answer = (whole.scan(&bytes), whole.is_armed());
    assert_eq!(answer, model(&bytes), "the model");

    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) * bytes.len() / 255)
        .collect();
    points.sort_unstable();
    let mut split = Scanner::armed();
    let mut seen = false;
    let mut from = 0;
    for to in points.into_iter().chain([bytes.len()]) {
        seen |= split.scan(&bytes[from..to]);
        from = to;
    }
    assert_eq!((seen, split.is_armed()), answer, "split at {cuts:?}");

    // Byte by byte over the fuzzer's own bytes.
    if !padded {
        let mut bytewise = Scanner::armed();
        let seen = bytes
            .chunks(1)
            .fold(false, |seen, b| seen | bytewise.scan(b));
        assert_eq!((seen, bytewise.is_armed()), answer, "byte by byte");
    }
});
