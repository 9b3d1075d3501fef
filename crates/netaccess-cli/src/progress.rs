//! Progress display of `netaccess get` (indicatif): one line per started URL — "queued" until
//! its request is sent, then a bar with bytes, rate and ETA — and a total line at the bottom
//! with the finished and known counts, bytes, rate, ETA, and how many requests are queued,
//! were retried and failed. Finished lines stay (the last [`KEEP_DONE`] of them), so a long
//! `-i` list shows what is running now. Drawn on stderr only when it is a terminal and `-q`
//! was not given; otherwise every call is a no-op.
//!
//! The bars are fed by the reply's signals, connected before the request starts
//! (`socket_started_connecting` or `request_sent` flips "queued" to running,
//! `download_progress` moves the bar, `retrying` counts retries); a download made of several
//! requests (`-x`) reports its bytes itself once it knows the file's length
//! ([`Line::take_over`]). A request sent on a reused keep-alive connection shows "queued"
//! until its response head arrives: the library has no dequeue signal.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use netaccess::Reply;

/// Finished lines kept on screen; older ones are removed.
pub const KEEP_DONE: usize = 20;

const QUEUED: &str = "{prefix:.dim} {wide_msg:.dim} queued";
const RUNNING: &str =
    "{prefix} {wide_msg} [{bar:25.cyan/blue}] {bytes}/{total_bytes} {percent:>3}% {bytes_per_sec} ETA {eta}";
const RUNNING_UNKNOWN: &str = "{prefix} {wide_msg} {spinner} {bytes} {bytes_per_sec}";
const DONE: &str = "{prefix} {wide_msg} [{bar:25.green}] {bytes}/{total_bytes} {percent:>3}% done";
const FAILED: &str = "{prefix} {wide_msg:.red}";
const TOTAL_UNKNOWN: &str = "total {prefix} {bytes} {bytes_per_sec} {msg}";
const TOTAL: &str =
    "total {prefix} [{bar:25.cyan/blue}] {bytes}/{total_bytes} {percent:>3}% {bytes_per_sec} ETA {eta} {msg}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .progress_chars("=> ")
}

/// The progress display (or nothing, when disabled).
#[derive(Clone)]
pub struct Progress {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    multi: MultiProgress,
    total: ProgressBar,
    /// URLs known so far (started or read), and whether more may come (a list being read).
    known: AtomicUsize,
    more: AtomicBool,
    done: AtomicUsize,
    failed: AtomicUsize,
    queued: AtomicUsize,
    retries: AtomicU64,
    finished: Mutex<VecDeque<ProgressBar>>,
}

impl Inner {
    fn refresh(&self) {
        let more = if self.more.load(Ordering::Relaxed) {
            "+"
        } else {
            ""
        };
        self.total.set_prefix(format!(
            "{}/{}{more}",
            self.done.load(Ordering::Relaxed),
            self.known.load(Ordering::Relaxed)
        ));
        self.total.set_message(format!(
            "({} queued, {} retries, {} failed)",
            self.queued.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        ));
    }
}

/// The line of one download.
#[derive(Clone)]
pub struct Line {
    bar: Option<ProgressBar>,
    inner: Option<Arc<Inner>>,
    received: Arc<AtomicU64>,
    length_known: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
    /// The caller reports the bytes ([`Line::take_over`]), not the reply's own progress.
    manual: Arc<AtomicBool>,
}

impl Progress {
    /// A display on stderr, or a disabled one. `more` says whether URLs come from a list
    /// (the count of known URLs then grows).
    pub fn new(enabled: bool, more: bool) -> Progress {
        if !enabled {
            return Progress { inner: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(0).with_style(style(TOTAL_UNKNOWN)));
        let inner = Inner {
            multi,
            total,
            known: AtomicUsize::new(0),
            more: AtomicBool::new(more),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            retries: AtomicU64::new(0),
            finished: Mutex::new(VecDeque::new()),
        };
        inner.refresh();
        Progress {
            inner: Some(Arc::new(inner)),
        }
    }

    /// `n` URLs are known (given, or read from a list so far).
    pub fn known(&self, n: usize) {
        if let Some(inner) = &self.inner {
            inner.known.store(n, Ordering::Relaxed);
            inner.refresh();
        }
    }

    /// Every URL is known now (the lists are read).
    pub fn all_known(&self) {
        if let Some(inner) = &self.inner {
            inner.more.store(false, Ordering::Relaxed);
            inner.refresh();
        }
    }

    /// A "queued" line for `url`, above the total bar.
    pub fn add(&self, index: usize, url: &str) -> Line {
        let Some(inner) = &self.inner else {
            return Line::disabled();
        };
        let bar = inner.multi.insert_before(
            &inner.total,
            ProgressBar::new(0)
                .with_style(style(QUEUED))
                .with_prefix(format!("[{}]", index + 1))
                .with_message(url.to_owned()),
        );
        bar.tick(); // drawn now, not at its first change
        inner.queued.fetch_add(1, Ordering::Relaxed);
        inner.refresh();
        Line {
            bar: Some(bar),
            inner: Some(inner.clone()),
            received: Arc::new(AtomicU64::new(0)),
            length_known: Arc::new(AtomicBool::new(false)),
            started: Arc::new(AtomicBool::new(false)),
            manual: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Prints a line above the bars (or on stderr when disabled).
    pub fn println(&self, line: &str) {
        match &self.inner {
            Some(inner) => {
                let _ = inner.multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Counts a finished download on the total line.
    pub fn download_done(&self, failed: bool) {
        if let Some(inner) = &self.inner {
            inner.done.fetch_add(1, Ordering::Relaxed);
            if failed {
                inner.failed.fetch_add(1, Ordering::Relaxed);
            }
            inner.refresh();
        }
    }

    /// Ends the display: the total bar at its final value.
    pub fn finish(&self) {
        if let Some(inner) = &self.inner {
            inner.more.store(false, Ordering::Relaxed);
            inner.refresh();
            let position = inner.total.position();
            inner.total.set_length(position);
            inner.total.set_style(style(TOTAL));
            inner.total.finish();
        }
    }

    /// Whether anything is drawn.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }
}

impl Line {
    fn disabled() -> Line {
        Line {
            bar: None,
            inner: None,
            received: Arc::new(AtomicU64::new(0)),
            length_known: Arc::new(AtomicBool::new(false)),
            started: Arc::new(AtomicBool::new(false)),
            manual: Arc::new(AtomicBool::new(false)),
        }
    }

    fn total(&self) -> Option<&ProgressBar> {
        self.inner.as_ref().map(|i| &i.total)
    }

    /// Leaves the queued count, once.
    fn dequeue(&self) {
        if let Some(inner) = &self.inner {
            if !self.started.swap(true, Ordering::Relaxed) {
                inner.queued.fetch_sub(1, Ordering::Relaxed);
                inner.refresh();
            }
        }
    }

    /// Connects the reply's signals to this line; call it in `send_with`'s setup.
    pub fn connect(&self, reply: &Reply) {
        if self.bar.is_none() {
            return;
        }
        // The library has no "left the queue" signal yet: a new socket for this reply, the
        // response head (request_sent comes with it) or the first progress mean running.
        let line = self.clone();
        reply
            .socket_started_connecting()
            .connect(move |_| line.start());
        let line = self.clone();
        reply.request_sent().connect(move |_| line.start());
        let line = self.clone();
        reply
            .download_progress()
            .connect(move |&(received, total)| {
                if !line.manual.load(Ordering::Relaxed) {
                    line.update(received, total);
                }
            });
        let line = self.clone();
        reply.retrying().connect(move |_| {
            if let Some(inner) = &line.inner {
                inner.retries.fetch_add(1, Ordering::Relaxed);
                inner.refresh();
            }
        });
    }

    fn start(&self) {
        self.dequeue();
        if let Some(bar) = &self.bar {
            if !self.length_known.load(Ordering::Relaxed) && bar.position() == 0 {
                bar.set_style(style(RUNNING_UNKNOWN));
                bar.reset_elapsed();
                bar.reset_eta();
            }
        }
    }

    fn update(&self, received: u64, total: Option<u64>) {
        let (Some(bar), Some(total_bar)) = (&self.bar, self.total()) else {
            return;
        };
        self.dequeue();
        if let Some(len) = total {
            if !self.length_known.swap(true, Ordering::Relaxed) {
                bar.set_style(style(RUNNING));
                bar.set_length(len);
                total_bar.inc_length(len);
                total_bar.set_style(style(TOTAL));
            }
        } else if bar.position() == 0 && received > 0 {
            bar.set_style(style(RUNNING_UNKNOWN));
        }
        let before = self.received.swap(received, Ordering::Relaxed);
        total_bar.inc(received.saturating_sub(before));
        bar.set_position(received);
    }

    /// From now on the line counts what [`progress`](Self::progress) reports, out of `total`
    /// bytes, and no longer its reply's own progress: a download made of several requests
    /// (`-x`), whose first reply asked for only a part.
    pub fn take_over(&self, total: u64) {
        self.manual.store(true, Ordering::Relaxed);
        let (Some(bar), Some(total_bar)) = (&self.bar, self.total()) else {
            return;
        };
        self.dequeue();
        if self.length_known.swap(true, Ordering::Relaxed) {
            let before = bar.length().unwrap_or(0);
            let all = total_bar.length().unwrap_or(0);
            total_bar.set_length(all.saturating_sub(before) + total);
        } else {
            total_bar.inc_length(total);
        }
        total_bar.set_style(style(TOTAL));
        bar.set_style(style(RUNNING));
        bar.set_length(total);
    }

    /// `received` bytes so far, of a line taken over with [`take_over`](Self::take_over)
    /// (never counted backwards).
    pub fn progress(&self, received: u64) {
        let (Some(bar), Some(total_bar)) = (&self.bar, self.total()) else {
            return;
        };
        let before = self.received.fetch_max(received, Ordering::Relaxed);
        total_bar.inc(received.saturating_sub(before));
        bar.set_position(received.max(before));
    }

    /// The download ended: the bar shows 100% (or the error). The oldest finished lines
    /// beyond [`KEEP_DONE`] are removed.
    pub fn finish(&self, error: Option<&str>) {
        let (Some(bar), Some(inner)) = (&self.bar, &self.inner) else {
            return;
        };
        self.dequeue();
        let total_bar = &inner.total;
        match error {
            None => {
                let received = self.received.load(Ordering::Relaxed).max(bar.position());
                let len = bar.length().unwrap_or(0);
                if !self.length_known.load(Ordering::Relaxed) {
                    // The length was unknown: the total grows by what came.
                    total_bar.inc_length(received);
                    total_bar.set_style(style(TOTAL));
                } else if received < len {
                    total_bar.set_length(total_bar.length().unwrap_or(0) - (len - received));
                }
                bar.set_length(received);
                bar.set_position(received);
                bar.set_style(style(DONE));
                bar.finish();
            }
            Some(message) => {
                bar.set_style(style(FAILED));
                bar.abandon_with_message(format!("{} failed: {message}", bar.message()));
            }
        }
        let mut finished = inner.finished.lock().unwrap_or_else(|e| e.into_inner());
        finished.push_back(bar.clone());
        while finished.len() > KEEP_DONE {
            if let Some(old) = finished.pop_front() {
                inner.multi.remove(&old);
            }
        }
    }
}
