//! A watch on the response heads of an HTTP/1 connection ([`FramingWatch`]) for framing that
//! leaves the connection's state unknown: a head with both `Content-Length` and
//! `Transfer-Encoding`. hyper reads such a body as chunked (RFC 9112 §6.3: Transfer-Encoding
//! overrides) and drops the `Content-Length` before anyone sees it; the message may be a
//! request-smuggling or response-splitting attempt, so the connection must not carry another
//! request. The watch raises a flag the connection's pool handle checks.
//!
//! It scans the bytes read after each request write until the end of the first final
//! (non-1xx) head, at most [`MAX_SCAN`] bytes; body bytes are not scanned. A false alarm only
//! costs a new connection.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most head bytes scanned after one request (hyper refuses longer heads anyway).
pub(crate) const MAX_SCAN: usize = 1024 * 1024;

/// Header-line prefixes the scan looks for (lowercase, up to the colon).
const CONTENT_LENGTH: &[u8] = b"content-length:";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding:";
/// Bytes of each line kept for matching.
const PREFIX: usize = 20;

/// The scanner's state between reads.
#[derive(Debug, Default)]
pub(crate) struct HeadScan {
    /// Scanning: a request was written and its final response head is not complete yet.
    pub(crate) armed: bool,
    scanned: usize,
    /// The next line is a status line.
    at_status_line: bool,
    informational: bool,
    content_length: bool,
    transfer_encoding: bool,
    line: [u8; PREFIX],
    line_len: usize,
}

impl HeadScan {
    pub(crate) fn arm(&mut self) {
        if !self.armed {
            *self = HeadScan {
                armed: true,
                at_status_line: true,
                ..HeadScan::default()
            };
        }
    }

    /// Scans `bytes`; true when a final head with both framings ended in them. Line by line
    /// (`memchr` finds the ends): only the first [`PREFIX`] bytes of the status line and of
    /// lines that may name a framing field (starting with `c` or `t`) are kept, lowercased,
    /// `\r` skipped; other lines only count as not blank. A line whole in `bytes` is judged
    /// in place ([`judge_whole`](Self::judge_whole)), one split across reads byte by byte.
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> bool {
        let mut ambiguous = false;
        let mut rest = bytes;
        while self.armed && !rest.is_empty() {
            let newline = memchr::memchr(b'\n', rest);
            let line = &rest[..newline.unwrap_or(rest.len())];
            let taken = line.len() + usize::from(newline.is_some());
            if self.scanned + taken > MAX_SCAN {
                self.armed = false;
                break;
            }
            self.scanned += taken;
            if newline.is_some() && self.line_len == 0 && self.judge_whole(line) {
                ambiguous |= self.end_line();
                self.line_len = 0;
                rest = &rest[taken..];
                continue;
            }
            for &b in line {
                if self.line_len >= PREFIX {
                    break; // the rest of the line does not matter, only that it is not blank
                }
                if b == b'\r' {
                    continue;
                }
                let kept = self.at_status_line
                    || self.line_len > 0
                    || matches!(b.to_ascii_lowercase(), b'c' | b't');
                if !kept {
                    self.line_len = PREFIX + 1; // not blank, names no framing field
                    break;
                }
                self.line[self.line_len] = b.to_ascii_lowercase();
                self.line_len += 1;
            }
            if newline.is_some() {
                ambiguous |= self.end_line();
                self.line_len = 0;
            }
            rest = &rest[taken..];
        }
        ambiguous
    }

    /// The common case of a whole line in one read: keeps what the byte loop of
    /// [`scan`](Self::scan) would keep, without copying byte by byte. False (nothing kept)
    /// when the line has a `\r` other than its last byte within [`PREFIX`]: the loop skips those.
    fn judge_whole(&mut self, line: &[u8]) -> bool {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        let kept = &text[..text.len().min(PREFIX)];
        if kept.contains(&b'\r') {
            return false;
        }
        match kept.first() {
            None => self.line_len = 0,
            Some(b) if !self.at_status_line && !matches!(b.to_ascii_lowercase(), b'c' | b't') => {
                self.line_len = PREFIX + 1; // not blank, names no framing field
            }
            Some(_) => {
                self.line[..kept.len()].copy_from_slice(kept);
                self.line[..kept.len()].make_ascii_lowercase();
                self.line_len = kept.len();
            }
        }
        true
    }

    /// A line ended; true when it ended a final head with both framings.
    fn end_line(&mut self) -> bool {
        // Past PREFIX: a line that was not kept (it names no framing field).
        let line: &[u8] = if self.line_len > PREFIX {
            &[]
        } else {
            &self.line[..self.line_len]
        };
        if self.line_len == 0 {
            if self.at_status_line {
                return false; // tolerated blank lines before a status line
            }
            let ambiguous = !self.informational && self.content_length && self.transfer_encoding;
            if self.informational {
                self.at_status_line = true;
                self.content_length = false;
                self.transfer_encoding = false;
            } else {
                self.armed = false;
            }
            return ambiguous;
        }
        if self.at_status_line {
            self.at_status_line = false;
            // `HTTP/1.1 1xx`: the status code starts at byte 9.
            self.informational = line.starts_with(b"http/1.") && line.get(9) == Some(&b'1');
        } else if line.starts_with(CONTENT_LENGTH) {
            self.content_length = true;
        } else if line.starts_with(TRANSFER_ENCODING) {
            self.transfer_encoding = true;
        }
        false
    }
}

/// An HTTP/1 connection's stream, watched for ambiguous response framing.
pub(crate) struct FramingWatch<T> {
    inner: T,
    scan: HeadScan,
    /// Raised (never lowered) when a response head had ambiguous framing.
    ambiguous: Arc<AtomicBool>,
}

impl<T> FramingWatch<T> {
    /// Watches `inner`, raising `ambiguous` when a response head is ambiguous.
    pub(crate) fn new(inner: T, ambiguous: Arc<AtomicBool>) -> Self {
        FramingWatch {
            inner,
            scan: HeadScan::default(),
            ambiguous,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FramingWatch<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.scan.armed && this.scan.scan(&buf.filled()[before..]) {
            this.ambiguous.store(true, Ordering::Release);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FramingWatch<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.scan.arm();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.scan.arm();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ambiguous(chunks: &[&[u8]]) -> bool {
        let mut scan = HeadScan::default();
        scan.arm();
        chunks.iter().fold(false, |seen, c| seen | scan.scan(c))
    }

    #[test]
    fn both_framings_in_one_head_are_ambiguous() {
        assert!(ambiguous(&[
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        ]));
        assert!(ambiguous(&[
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 3\r\n\r\n"
        ]));
        // Split anywhere across reads.
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        for cut in 1..head.len() {
            assert!(ambiguous(&[&head[..cut], &head[cut..]]), "cut at {cut}");
        }
    }

    #[test]
    fn one_framing_is_not_ambiguous_and_bodies_are_not_scanned() {
        assert!(!ambiguous(&[
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        ]));
        assert!(!ambiguous(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        ]));
        assert!(!ambiguous(&[
            b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n",
            b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        ]));
    }

    #[test]
    fn informational_heads_are_skipped_and_reset() {
        assert!(!ambiguous(&[
            b"HTTP/1.1 100 Continue\r\nContent-Length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        ]));
        assert!(ambiguous(&[
            b"HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"
        ]));
    }

    #[test]
    fn lines_not_kept_never_match_what_an_earlier_line_left() {
        // A 1xx head with Content-Length, then a final head whose other lines are not kept.
        assert!(!ambiguous(&[
            b"HTTP/1.1 100 Continue\r\nContent-Length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Long-Header-Name-Here: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ]));
        assert!(ambiguous(&[
            b"HTTP/1.1 200 OK\r\nServer: x\r\nCONTENT-length: 1\r\nDate: y\r\nTransfer-Encoding: chunked\r\n\r\n"
        ]));
    }

    #[test]
    fn the_scan_is_bounded() {
        let mut scan = HeadScan::default();
        scan.arm();
        let filler = vec![b'a'; MAX_SCAN + 10];
        assert!(!scan.scan(&filler));
        assert!(!scan.armed);
        assert!(!scan.scan(b"\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"));
    }
}
