//! Abortive close support: a TCP stream wrapper that, when asked, sets `SO_LINGER` to
//! zero right before it is dropped so the kernel sends RST instead of FIN.
//!
//! Used by the `/reset` route in hyper modes: the request handler flips the
//! connection's [`ResetSwitch`], the connection task notices and drops the whole
//! connection (and with it this stream).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Shared between a connection task and its request handlers.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResetSwitch {
    inner: Arc<ResetState>,
}

#[derive(Debug, Default)]
struct ResetState {
    requested: AtomicBool,
    notify: Notify,
}

impl ResetSwitch {
    /// Asks the connection task to reset the connection.
    pub(crate) fn request(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        self.inner.notify.notify_one();
    }

    /// Whether a reset was requested.
    pub(crate) fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Resolves once [`ResetSwitch::request`] was called.
    pub(crate) async fn requested(&self) {
        while !self.is_requested() {
            self.inner.notify.notified().await;
        }
    }
}

/// Sets a zero linger timeout so dropping `stream` sends RST.
pub(crate) fn arm_abortive_close(stream: &TcpStream) {
    // Zero linger never blocks on drop, which is what the deprecation warns about.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
}

/// A [`TcpStream`] that resets instead of closing if its [`ResetSwitch`] was flipped.
#[derive(Debug)]
pub(crate) struct ResettableStream {
    stream: TcpStream,
    switch: ResetSwitch,
}

impl ResettableStream {
    pub(crate) fn new(stream: TcpStream, switch: ResetSwitch) -> Self {
        Self { stream, switch }
    }
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.switch.is_requested() {
            arm_abortive_close(&self.stream);
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
