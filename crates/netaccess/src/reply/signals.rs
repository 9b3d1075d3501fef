//! The signals of a [`Reply`]: the five most programs connect held inline, the others
//! ([`RareSignals`]) allocated on first use; their accessors on [`Reply`]; and the reply as the
//! replay source of its signals (a slot connected late sees the current state, see
//! `crate::signal`).

use std::sync::{Arc, OnceLock, Weak};

use tokio_util::sync::CancellationToken;
use url::Url;

use super::{Reply, ReplyShared, ReplyState};
use crate::error::Error;
use crate::signal::{ReplaySource, Signal};
use crate::transport::tls::SslError;

/// The signals of a reply. Each is a [`Signal`]; see the accessors on [`Reply`].
///
/// The three that most programs use (`finished`, `ready_read`, `meta_data_changed`) are held
/// inline; the others ([`RareSignals`]) are
/// allocated when one of them is first reached through its accessor on [`Reply`], or when the
/// request task starts (they share one allocation with the reply's cancellation token).
/// Reaching them through `Deref` (`signals.request_sent.emit(..)`) never allocates: before that
/// allocation it yields an inert, empty set, on which emitting does nothing and `receivers()`
/// is 0. Only emit through `Deref`; connect through [`ReplySignals::rare`].
pub(crate) struct ReplySignals {
    pub meta_data_changed: Signal<Reply>,
    pub ready_read: Signal<Reply>,
    pub finished: Signal<Reply>,
    pub(super) started: OnceLock<Box<Started>>,
}

/// What a reply allocates when its request task starts or a rare signal is first reached.
pub(super) struct Started {
    pub(super) signals: RareSignals,
    /// Cancels the request task (`abort`).
    pub(super) cancel: CancellationToken,
    /// Retries made under the retry policy.
    pub(super) retries: std::sync::atomic::AtomicU32,
    /// When the request was handed to the manager, and when each phase ended since
    /// ([`crate::events::record`] keeps them).
    pub(super) timings: std::sync::Mutex<(std::time::Instant, crate::events::Timings)>,
}

impl Started {
    fn new(created: std::time::Instant) -> Box<Started> {
        Box::new(Started {
            signals: RareSignals::new(),
            cancel: CancellationToken::new(),
            retries: std::sync::atomic::AtomicU32::new(0),
            timings: std::sync::Mutex::new((created, Default::default())),
        })
    }
}

/// The signals of a reply that are seldom connected, allocated on first use (or when the
/// request starts).
pub(crate) struct RareSignals {
    pub download_progress: Signal<(u64, Option<u64>)>,
    pub error_occurred: Signal<(Reply, Error)>,
    pub upload_progress: Signal<(u64, Option<u64>)>,
    pub encrypted: Signal<Reply>,
    pub socket_started_connecting: Signal<Reply>,
    pub request_sent: Signal<Reply>,
    pub redirected: Signal<Url>,
    pub ssl_errors: Signal<(Reply, Vec<SslError>)>,
    /// `(retry number from 1, wait before it)`.
    pub retrying: Signal<(u32, std::time::Duration)>,
}

impl RareSignals {
    fn new() -> Self {
        RareSignals {
            download_progress: Signal::new(),
            error_occurred: Signal::new(),
            upload_progress: Signal::new(),
            encrypted: Signal::new(),
            socket_started_connecting: Signal::new(),
            request_sent: Signal::new(),
            redirected: Signal::new(),
            ssl_errors: Signal::new(),
            retrying: Signal::new(),
        }
    }

    fn clear(&self) {
        self.download_progress.clear();
        self.error_occurred.clear();
        self.upload_progress.clear();
        self.encrypted.clear();
        self.socket_started_connecting.clear();
        self.request_sent.clear();
        self.redirected.clear();
        self.ssl_errors.clear();
        self.retrying.clear();
    }
}

/// For emitting only: the rare signals if allocated, else an inert empty set (see
/// [`ReplySignals`]).
impl std::ops::Deref for ReplySignals {
    type Target = RareSignals;

    fn deref(&self) -> &RareSignals {
        static INERT: OnceLock<RareSignals> = OnceLock::new();
        match self.started.get() {
            Some(started) => &started.signals,
            None => INERT.get_or_init(RareSignals::new),
        }
    }
}

impl ReplySignals {
    pub(super) fn new() -> Self {
        ReplySignals {
            meta_data_changed: Signal::new(),
            ready_read: Signal::new(),
            finished: Signal::new(),
            started: OnceLock::new(),
        }
    }

    pub(super) fn started(&self) -> &Started {
        self.started
            .get_or_init(|| Started::new(std::time::Instant::now()))
    }

    /// [`started`](Self::started), with its timings counting from `created` (one clock read
    /// fewer for a request whose started part did not exist yet).
    pub(super) fn started_at(&self, created: std::time::Instant) -> &Started {
        let mut fresh = false;
        let started = self.started.get_or_init(|| {
            fresh = true;
            Started::new(created)
        });
        if !fresh {
            started.timings.lock().unwrap_or_else(|e| e.into_inner()).0 = created;
        }
        started
    }

    /// The started part, if the request started.
    pub(super) fn started_if_any(&self) -> Option<&Started> {
        self.started.get().map(|s| &**s)
    }

    /// The rare signals, allocated now if needed: the way to reach them to connect a slot.
    pub(crate) fn rare(&self) -> &RareSignals {
        &self.started().signals
    }

    pub(super) fn clear(&self) {
        self.meta_data_changed.clear();
        self.ready_read.clear();
        self.finished.clear();
        if let Some(started) = self.started.get() {
            started.signals.clear();
        }
    }
}

impl Reply {
    // ----- signals --------------------------------------------------------------------------
    //
    // A slot connected to `finished`, `error_occurred`, `meta_data_changed`, `ready_read`,
    // `encrypted` or a progress signal after its event sees the current state at once (state
    // replay, see `crate::signal`): connecting right after `get()` misses nothing.

    /// `signal` with its replay source installed.
    fn replaying<'a, T>(&'a self, signal: &'a Signal<T>, which: Replay) -> &'a Signal<T>
    where
        T: Clone + Send + 'static,
        ReplyShared: ReplaySource<T>,
    {
        signal.set_replay_source(
            || {
                let weak: Weak<dyn ReplaySource<T>> = Arc::downgrade(&self.shared) as Weak<_>;
                weak
            },
            which as u8,
        );
        signal
    }

    /// Emitted when the response headers (status, headers, attributes) are known.
    #[doc(alias = "metaDataChanged")]
    pub fn meta_data_changed(&self) -> &Signal<Reply> {
        self.replaying(
            &self.shared.signals.meta_data_changed,
            Replay::MetaDataChanged,
        )
    }

    /// Emitted when new body bytes can be read.
    #[doc(alias = "readyRead")]
    pub fn ready_read(&self) -> &Signal<Reply> {
        self.replaying(&self.shared.signals.ready_read, Replay::ReadyRead)
    }

    /// `(received, total)` body bytes, total `None` when unknown; at most every 100 ms, plus
    /// a final emission.
    #[doc(alias = "downloadProgress")]
    pub fn download_progress(&self) -> &Signal<(u64, Option<u64>)> {
        self.replaying(
            &self.shared.signals.rare().download_progress,
            Replay::DownloadProgress,
        )
    }

    /// `(sent, total)` request body bytes.
    #[doc(alias = "uploadProgress")]
    pub fn upload_progress(&self) -> &Signal<(u64, Option<u64>)> {
        self.replaying(
            &self.shared.signals.rare().upload_progress,
            Replay::UploadProgress,
        )
    }

    /// Emitted once, before `finished`, when the reply fails.
    #[doc(alias = "errorOccurred")]
    pub fn error_occurred(&self) -> &Signal<(Reply, Error)> {
        self.replaying(
            &self.shared.signals.rare().error_occurred,
            Replay::ErrorOccurred,
        )
    }

    /// Emitted exactly once at the end (also after `abort`). Latched: `reply.finished().await`
    /// resolves at once if it already fired.
    pub fn finished(&self) -> &Signal<Reply> {
        self.replaying(&self.shared.signals.finished, Replay::Finished)
    }

    /// Emitted when the connection used by this reply is encrypted (before the request is sent).
    pub fn encrypted(&self) -> &Signal<Reply> {
        self.replaying(&self.shared.signals.rare().encrypted, Replay::Encrypted)
    }

    /// Emitted when a new socket starts connecting for this reply.
    #[doc(alias = "socketStartedConnecting")]
    pub fn socket_started_connecting(&self) -> &Signal<Reply> {
        &self.shared.signals.rare().socket_started_connecting
    }

    /// Emitted once the connection has taken the whole request (head and body), before the
    /// response is awaited; again for each request a redirect or an authentication round sends.
    #[doc(alias = "requestSent")]
    pub fn request_sent(&self) -> &Signal<Reply> {
        &self.shared.signals.rare().request_sent
    }

    /// Emitted when the TLS handshake meets certificate errors. A slot that calls
    /// [`ignore_ssl_errors`](Reply::ignore_ssl_errors) lets the connection go on; otherwise the
    /// reply fails with `SslHandshakeFailedError`.
    #[doc(alias = "sslErrors")]
    pub fn ssl_errors(&self) -> &Signal<(Reply, Vec<SslError>)> {
        &self.shared.signals.rare().ssl_errors
    }

    /// Emitted for each redirect followed, with the new URL.
    pub fn redirected(&self) -> &Signal<Url> {
        &self.shared.signals.rare().redirected
    }

    /// Emitted before each retry the [`RetryPolicy`](crate::RetryPolicy) allows, with the
    /// retry's number (from 1) and the wait before it.
    ///
    /// ```no_run
    /// # fn f(reply: netaccess::Reply) {
    /// reply.retrying().connect(|(n, wait)| eprintln!("retry {n} in {wait:?}"));
    /// # }
    /// ```
    pub fn retrying(&self) -> &Signal<(u32, std::time::Duration)> {
        &self.shared.signals.rare().retrying
    }

    /// How many times the request was sent again under the retry policy (so far).
    pub fn retries(&self) -> u32 {
        self.shared
            .signals
            .started
            .get()
            .map_or(0, |s| s.retries.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Which reply signal a replay serves (the selector given to [`ReplaySource::replay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Replay {
    Finished,
    ErrorOccurred,
    MetaDataChanged,
    ReadyRead,
    Encrypted,
    DownloadProgress,
    UploadProgress,
}

impl Replay {
    fn from_u8(which: u8) -> Option<Replay> {
        [
            Replay::Finished,
            Replay::ErrorOccurred,
            Replay::MetaDataChanged,
            Replay::ReadyRead,
            Replay::Encrypted,
            Replay::DownloadProgress,
            Replay::UploadProgress,
        ]
        .into_iter()
        .find(|r| *r as u8 == which)
    }
}

/// The replay source of a reply's signals is the reply: its state, read under the state lock
/// under which its emissions are prepared. Once the reply finished, slots are not kept (no
/// signal fires any more) but still see the final state.
impl ReplyShared {
    /// Runs `decide` on the state under its lock, adding the slot first unless finished.
    fn replay_with<T>(
        &self,
        add: &mut dyn FnMut(),
        decide: impl FnOnce(&ReplyState) -> Option<T>,
    ) -> Option<T> {
        let st = self.lock();
        if !st.finished {
            add();
        }
        decide(&st)
    }
}

impl ReplaySource<Reply> for ReplyShared {
    fn replay(self: Arc<Self>, which: u8, add: &mut dyn FnMut()) -> Option<Reply> {
        let now = self.replay_with(add, |st| {
            Some(match Replay::from_u8(which)? {
                Replay::Finished => st.finished,
                Replay::MetaDataChanged => st.head_seen,
                Replay::ReadyRead => st.buffered > 0,
                Replay::Encrypted => st.encrypted,
                _ => false,
            })
        });
        now.filter(|now| *now).map(|_| Reply { shared: self })
    }

    fn fired(self: Arc<Self>, which: u8) -> Option<Reply> {
        let delivered =
            Replay::from_u8(which) == Some(Replay::Finished) && self.lock().finished_delivered;
        delivered.then_some(Reply { shared: self })
    }
}

impl ReplaySource<(Reply, Error)> for ReplyShared {
    fn replay(self: Arc<Self>, _which: u8, add: &mut dyn FnMut()) -> Option<(Reply, Error)> {
        let error = self.replay_with(add, |st| st.error().cloned().filter(|_| st.finished))?;
        Some((Reply { shared: self }, error))
    }
}

impl ReplaySource<(u64, Option<u64>)> for ReplyShared {
    fn replay(self: Arc<Self>, which: u8, add: &mut dyn FnMut()) -> Option<(u64, Option<u64>)> {
        self.replay_with(add, |st| match Replay::from_u8(which)? {
            Replay::DownloadProgress => st.download_progress(),
            Replay::UploadProgress => st.rare.as_ref().and_then(|rare| rare.upload_progress),
            _ => None,
        })
    }
}
