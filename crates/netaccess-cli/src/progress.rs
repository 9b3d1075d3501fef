//! Progress display of `netaccess get` (indicatif): one line per URL — "queued" until its
//! request is sent, then a bar with bytes, rate and ETA — and a total bar at the bottom.
//! Drawn on stderr only when it is a terminal and `-q` was not given; otherwise every call is a
//! no-op.
//!
//! The bars are fed by the reply's signals, connected before the request starts
//! (`socket_started_connecting` or `request_sent` flips "queued" to running,
//! `download_progress` moves the bar). A request sent on a reused keep-alive connection shows
//! "queued" until its response head arrives: the library has no dequeue signal yet.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use netaccess::Reply;

const QUEUED: &str = "{prefix:.dim} {wide_msg:.dim} queued";
const RUNNING: &str =
    "{prefix} {wide_msg} [{bar:25.cyan/blue}] {bytes}/{total_bytes} {percent:>3}% {bytes_per_sec} ETA {eta}";
const RUNNING_UNKNOWN: &str = "{prefix} {wide_msg} {spinner} {bytes} {bytes_per_sec}";
const DONE: &str = "{prefix} {wide_msg} [{bar:25.green}] {bytes}/{total_bytes} {percent:>3}% done";
const FAILED: &str = "{prefix} {wide_msg:.red}";
const TOTAL_UNKNOWN: &str = "total {prefix} {bytes} {bytes_per_sec}";
const TOTAL: &str =
    "total {prefix} [{bar:25.cyan/blue}] {bytes}/{total_bytes} {percent:>3}% {bytes_per_sec} ETA {eta}";

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
    count: usize,
    done: AtomicU64,
}

/// The line of one download.
#[derive(Clone)]
pub struct Line {
    bar: Option<ProgressBar>,
    total: Option<ProgressBar>,
    received: Arc<AtomicU64>,
    length_known: Arc<AtomicBool>,
}

impl Progress {
    /// A display for `count` downloads on stderr, or a disabled one.
    pub fn new(enabled: bool, count: usize) -> Progress {
        if !enabled {
            return Progress { inner: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(0).with_style(style(TOTAL_UNKNOWN)));
        total.set_prefix(format!("0/{count}"));
        Progress {
            inner: Some(Arc::new(Inner {
                multi,
                total,
                count,
                done: AtomicU64::new(0),
            })),
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
        Line {
            bar: Some(bar),
            total: Some(inner.total.clone()),
            received: Arc::new(AtomicU64::new(0)),
            length_known: Arc::new(AtomicBool::new(false)),
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

    /// Counts a finished download on the total bar.
    pub fn download_done(&self) {
        if let Some(inner) = &self.inner {
            let done = inner.done.fetch_add(1, Ordering::Relaxed) + 1;
            inner.total.set_prefix(format!("{done}/{}", inner.count));
        }
    }

    /// Ends the display: the total bar at its final value.
    pub fn finish(&self) {
        if let Some(inner) = &self.inner {
            let position = inner.total.position();
            inner.total.set_length(position);
            inner.total.set_style(style(TOTAL));
            inner.total.finish();
        }
    }
}

impl Line {
    fn disabled() -> Line {
        Line {
            bar: None,
            total: None,
            received: Arc::new(AtomicU64::new(0)),
            length_known: Arc::new(AtomicBool::new(false)),
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
            .connect(move |&(received, total)| line.update(received, total));
    }

    fn start(&self) {
        if let Some(bar) = &self.bar {
            if !self.length_known.load(Ordering::Relaxed) && bar.position() == 0 {
                bar.set_style(style(RUNNING_UNKNOWN));
                bar.reset_elapsed();
                bar.reset_eta();
            }
        }
    }

    fn update(&self, received: u64, total: Option<u64>) {
        let (Some(bar), Some(total_bar)) = (&self.bar, &self.total) else {
            return;
        };
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

    /// The download ended: the bar shows 100% (or the error).
    pub fn finish(&self, error: Option<&str>) {
        let (Some(bar), Some(total_bar)) = (&self.bar, &self.total) else {
            return;
        };
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
    }
}
