//! The server's HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS, read off the bytes hyper receives.
//!
//! hyper keeps the peer's settings to itself and queues requests beyond the stream limit in
//! arrival order. To start queued requests in priority order, the scheduler must hold them
//! itself, so it needs the limit: [`SettingsTap`] wraps the connection's byte stream, follows
//! the server's frames (9-byte headers, payloads skipped) and records the value of every
//! SETTINGS frame into a [`PeerSettings`]. It never changes a byte and buffers at most one
//! frame header and one 6-byte setting.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// The limit assumed until the server's first SETTINGS frame (hyper's own initial value).
pub(crate) const ASSUMED_MAX_STREAMS: u32 = 100;

const FRAME_SETTINGS: u8 = 0x4;
const FLAG_ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// What the server announced, shared by every handle of one connection.
#[derive(Debug)]
pub(crate) struct PeerSettings {
    max_streams: AtomicU32,
    seen: AtomicBool,
    /// The connection ended (closed, failed): no SETTINGS will come.
    ended: AtomicBool,
    first: Notify,
}

impl PeerSettings {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(PeerSettings {
            max_streams: AtomicU32::new(ASSUMED_MAX_STREAMS),
            seen: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            first: Notify::new(),
        })
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (100 until it said otherwise).
    pub(crate) fn max_streams(&self) -> u32 {
        self.max_streams.load(Ordering::Acquire)
    }

    /// Waits for the server's first SETTINGS frame (the server's connection preface) or the
    /// end of the connection, whichever comes first.
    pub(crate) async fn first_settings(&self) {
        loop {
            let notified = self.first.notified();
            if self.seen.load(Ordering::Acquire) || self.ended.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Records that the connection ended, waking [`first_settings`](Self::first_settings).
    pub(crate) fn connection_ended(&self) {
        self.ended.store(true, Ordering::Release);
        self.first.notify_waiters();
    }

    /// True once the connection ended.
    pub(crate) fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    fn settings_frame_done(&self) {
        if !self.seen.swap(true, Ordering::AcqRel) {
            self.first.notify_waiters();
        }
    }
}

/// Where the tap is in the server's frame stream.
#[derive(Debug, Default)]
struct FrameCursor {
    header: [u8; 9],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: usize,
    /// The current frame is a SETTINGS frame (not an ACK) whose entries are parsed.
    in_settings: bool,
    entry: [u8; 6],
    entry_len: usize,
}

impl FrameCursor {
    fn feed(&mut self, mut data: &[u8], settings: &PeerSettings) {
        while !data.is_empty() {
            if self.payload_left == 0 {
                let n = (9 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                self.header_len += n;
                data = &data[n..];
                if self.header_len < 9 {
                    return;
                }
                self.header_len = 0;
                let len = usize::from(self.header[0]) << 16
                    | usize::from(self.header[1]) << 8
                    | usize::from(self.header[2]);
                let stream = u32::from_be_bytes([
                    self.header[5],
                    self.header[6],
                    self.header[7],
                    self.header[8],
                ]) & 0x7fff_ffff;
                self.in_settings = self.header[3] == FRAME_SETTINGS
                    && self.header[4] & FLAG_ACK == 0
                    && stream == 0;
                self.entry_len = 0;
                self.payload_left = len;
                if len == 0 && self.in_settings {
                    settings.settings_frame_done();
                }
                continue;
            }
            let n = self.payload_left.min(data.len());
            if self.in_settings {
                for &b in &data[..n] {
                    self.entry[self.entry_len] = b;
                    self.entry_len += 1;
                    if self.entry_len == 6 {
                        self.entry_len = 0;
                        let id = u16::from_be_bytes([self.entry[0], self.entry[1]]);
                        if id == SETTINGS_MAX_CONCURRENT_STREAMS {
                            let value = u32::from_be_bytes([
                                self.entry[2],
                                self.entry[3],
                                self.entry[4],
                                self.entry[5],
                            ]);
                            settings.max_streams.store(value, Ordering::Release);
                        }
                    }
                }
            }
            self.payload_left -= n;
            data = &data[n..];
            if self.payload_left == 0 && self.in_settings {
                settings.settings_frame_done();
            }
        }
    }
}

/// A byte stream whose incoming HTTP/2 frames update a [`PeerSettings`].
pub(crate) struct SettingsTap<T> {
    inner: T,
    cursor: FrameCursor,
    settings: Arc<PeerSettings>,
}

impl<T> SettingsTap<T> {
    pub(crate) fn new(inner: T, settings: Arc<PeerSettings>) -> Self {
        SettingsTap {
            inner,
            cursor: FrameCursor::default(),
            settings,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SettingsTap<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let fresh = &buf.filled()[before..];
        this.cursor.feed(fresh, &this.settings);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SettingsTap<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_frame(entries: &[(u16, u32)], flags: u8) -> Vec<u8> {
        let len = entries.len() * 6;
        let mut out = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            0x4,
            flags,
            0,
            0,
            0,
            0,
        ];
        for (id, v) in entries {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    }

    #[test]
    fn max_concurrent_streams_is_read_across_split_reads_and_other_frames() {
        let settings = PeerSettings::new();
        let mut cursor = FrameCursor::default();
        let mut wire = vec![0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0, 1, 0]; // WINDOW_UPDATE
        wire.extend(settings_frame(&[(0x4, 65535), (0x3, 1)], 0));
        wire.extend(settings_frame(&[], FLAG_ACK));
        for byte in &wire {
            cursor.feed(std::slice::from_ref(byte), &settings);
        }
        assert_eq!(settings.max_streams(), 1);
        assert!(settings.seen.load(Ordering::Acquire));
    }

    #[test]
    fn settings_ack_and_payloads_of_other_frames_are_not_settings() {
        let settings = PeerSettings::new();
        let mut cursor = FrameCursor::default();
        // A DATA frame whose payload looks like a settings entry, then an ACK.
        let mut wire = vec![0, 0, 6, 0x0, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 7];
        wire.extend(settings_frame(&[], FLAG_ACK));
        cursor.feed(&wire, &settings);
        assert_eq!(settings.max_streams(), ASSUMED_MAX_STREAMS);
        assert!(!settings.seen.load(Ordering::Acquire));
    }
}
