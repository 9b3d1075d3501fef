//! The mutable state of a reply, behind its lock: small while the request waits in a
//! queue (what few replies use is in [`RareState`], boxed on first use), and the body buffer
//! with the read that takes from it ([`take_from`]).

use std::sync::Arc;
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use url::Url;

use super::chunks::Chunks;
use super::Meta;
use crate::error::Error;
use crate::request::Operation;
use crate::transport::tls::IgnoreSsl;

pub(crate) struct ReplyState {
    /// `None` until the response head arrives.
    pub(super) meta: Option<Box<Meta>>,
    pub(super) buffer: Chunks,
    pub(super) buffered: usize,
    pub(super) read_buffer_size: usize,
    /// The body is incomplete because of `error` (transport failure or abort), as opposed to
    /// an HTTP error status whose body is whole.
    pub(super) body_broken: bool,
    pub(super) finished: bool,
    /// `finished` was delivered to the slots connected when it fired.
    pub(super) finished_delivered: bool,
    pub(super) reader: Option<Waker>,
    /// What late slots are shown (state replay): the head arrived, `encrypted` fired, and the
    /// latest progress values.
    pub(super) head_seen: bool,
    pub(super) encrypted: bool,
    /// Takes the request out of its origin's queue while it waits there as data.
    pub(super) dequeue: Option<Box<dyn FnOnce() + Send>>,
    /// The latest `(received, total)` reported, as `(received, total or 0)` and whether none,
    /// an unknown total or a known one was reported ([`ReplyState::download_progress`]): 16
    /// bytes and one, where `Option<(u64, Option<u64>)>` takes 24.
    pub(super) download_progress: (u64, u64),
    pub(super) download_progress_kind: ProgressKind,
    /// What few replies use, allocated on first use.
    pub(super) rare: Option<Box<RareState>>,
}

/// The part of a reply's state that few replies use.
#[derive(Default)]
pub(super) struct RareState {
    /// The reply's URL when it is not the request's: the last redirect target followed, or
    /// what a request whose URL did not parse shows.
    pub(super) url: Option<Url>,
    pub(super) error: Option<Error>,
    pub(super) ignore_ssl_errors: IgnoreSsl,
    pub(super) upload_progress: Option<(u64, Option<u64>)>,
    /// Given by `redirect_allowed()` (the `UserVerified` redirect policy).
    pub(super) redirect_permit: Option<Arc<Notify>>,
    /// Wakes the request task when a reader made room in a full bounded buffer; made when
    /// the buffer first fills.
    pub(super) space: Option<Arc<Notify>>,
}

impl ReplyState {
    pub(super) fn rare(&mut self) -> &mut RareState {
        self.rare.get_or_insert_with(Box::default)
    }

    pub(super) fn meta(&self) -> Option<&Meta> {
        self.meta.as_deref()
    }

    pub(super) fn error(&self) -> Option<&Error> {
        self.rare.as_ref().and_then(|rare| rare.error.as_ref())
    }

    pub(super) fn download_progress(&self) -> Option<(u64, Option<u64>)> {
        let (received, total) = self.download_progress;
        match self.download_progress_kind {
            ProgressKind::None => None,
            ProgressKind::UnknownTotal => Some((received, None)),
            ProgressKind::Known => Some((received, Some(total))),
        }
    }

    /// Wakes the request task if it waits for room in the buffer (or stores the wake-up for
    /// its next wait).
    pub(super) fn wake_writer(&self) {
        if let Some(space) = self.rare.as_ref().and_then(|rare| rare.space.as_ref()) {
            space.notify_one();
        }
    }
}

/// What a reply's latest download progress report was.
#[derive(Clone, Copy)]
pub(super) enum ProgressKind {
    None,
    UnknownTotal,
    Known,
}

/// The operation of a reply: the standard ones need no storage of their own.
pub(super) enum StoredOperation {
    Head,
    Get,
    Put,
    Post,
    Delete,
    Custom(Box<Operation>),
}

impl StoredOperation {
    pub(super) fn new(operation: Operation) -> Self {
        match operation {
            Operation::Head => StoredOperation::Head,
            Operation::Get => StoredOperation::Get,
            Operation::Put => StoredOperation::Put,
            Operation::Post => StoredOperation::Post,
            Operation::Delete => StoredOperation::Delete,
            custom => StoredOperation::Custom(Box::new(custom)),
        }
    }

    pub(super) fn get(&self) -> &Operation {
        static HEAD: Operation = Operation::Head;
        static GET: Operation = Operation::Get;
        static PUT: Operation = Operation::Put;
        static POST: Operation = Operation::Post;
        static DELETE: Operation = Operation::Delete;
        match self {
            StoredOperation::Head => &HEAD,
            StoredOperation::Get => &GET,
            StoredOperation::Put => &PUT,
            StoredOperation::Post => &POST,
            StoredOperation::Delete => &DELETE,
            StoredOperation::Custom(operation) => operation,
        }
    }
}

pub(super) fn take_from(st: &mut ReplyState, max: usize) -> Bytes {
    if st.buffered == 0 || max == 0 {
        return Bytes::new();
    }
    let single = st.buffer.len() == 1;
    if let Some(front) = st.buffer.front_mut() {
        if front.len() >= max || single {
            let n = front.len().min(max);
            let out = front.split_to(n);
            if front.is_empty() {
                st.buffer.pop_front();
            }
            st.buffered -= out.len();
            return out;
        }
    }
    let mut out = BytesMut::with_capacity(st.buffered.min(max));
    while out.len() < max {
        let Some(mut chunk) = st.buffer.pop_front() else {
            break;
        };
        let want = max - out.len();
        if chunk.len() > want {
            let rest = chunk.split_off(want);
            st.buffer.push_front(rest);
        }
        out.extend_from_slice(&chunk);
    }
    st.buffered -= out.len();
    out.freeze()
}
