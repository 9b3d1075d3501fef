//! Qt-style signals: [`Signal<T>`] with callbacks ([`Signal::connect`]), an async stream of
//! emissions ([`Signal::stream`]) and a future of the next one ([`Signal::next`], or `.await`
//! on `&Signal`).
//!
//! Slots run on the task that emits, in the order they were connected; they must not block.
//! A signal that fires at most once (a reply's `finished`) is *latched*: awaiting it after it
//! fired resolves at once, with the value its replay source gives ([`ReplaySource::fired`]), so
//! `reply.finished().await` never misses the event.
//!
//! A signal costs 16 bytes until something connects to it or awaits it; then one allocation
//! of under 100 bytes holds its slots, the first of them inline.
//!
//! A signal may have a *replay source* (a reply's state): a callback connected after an event
//! sees the current state once, at once (a finished reply's `finished`, a head already there,
//! bytes waiting, the latest progress), so connecting right after `get()` never misses
//! anything, as in Qt where signals wait for the event loop. The source decides under its own
//! lock, the same lock under which its events are prepared ([`Signal::prepare`]): a slot sees
//! each event exactly once, live or replayed.
//!
//! ```
//! use netaccess::Signal;
//! let signal: Signal<u32> = Signal::new();
//! let connection = signal.connect(|n| println!("got {n}"));
//! connection.disconnect();
//! ```

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

type Callback<T> = Arc<dyn Fn(&T) + Send + Sync + 'static>;

enum Slot<T> {
    Callback(Callback<T>),
    Stream(mpsc::UnboundedSender<T>),
    Once(oneshot::Sender<T>),
}

/// A list that holds its first element inline: most signals have one slot, and most
/// emissions reach one receiver, so neither allocates a vector.
#[derive(Default)]
enum List<E> {
    #[default]
    Empty,
    One(E),
    Many(Vec<E>),
}

impl<E> List<E> {
    fn push(&mut self, e: E) {
        *self = match std::mem::take(self) {
            List::Empty => List::One(e),
            List::One(first) => List::Many(vec![first, e]),
            List::Many(mut v) => {
                v.push(e);
                List::Many(v)
            }
        };
    }

    fn len(&self) -> usize {
        match self {
            List::Empty => 0,
            List::One(_) => 1,
            List::Many(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> std::slice::Iter<'_, E> {
        match self {
            List::Empty => [].iter(),
            List::One(e) => std::slice::from_ref(e).iter(),
            List::Many(v) => v.iter(),
        }
    }

    fn retain(&mut self, keep: impl FnMut(&E) -> bool) {
        let mut v: Vec<E> = std::mem::take(self).into_iter().collect();
        v.retain(keep);
        *self = List::from_vec(v);
    }

    fn from_vec(mut v: Vec<E>) -> Self {
        match v.len() {
            0 => List::Empty,
            1 => v.pop().map_or(List::Empty, List::One),
            _ => List::Many(v),
        }
    }
}

impl<E> IntoIterator for List<E> {
    type Item = E;
    type IntoIter = ListIter<E>;

    fn into_iter(self) -> ListIter<E> {
        match self {
            List::Empty => ListIter::One(None),
            List::One(e) => ListIter::One(Some(e)),
            List::Many(v) => ListIter::Many(v.into_iter()),
        }
    }
}

enum ListIter<E> {
    One(Option<E>),
    Many(std::vec::IntoIter<E>),
}

impl<E> Iterator for ListIter<E> {
    type Item = E;

    fn next(&mut self) -> Option<E> {
        match self {
            ListIter::One(e) => e.take(),
            ListIter::Many(it) => it.next(),
        }
    }
}

struct Slots<T> {
    list: List<(u64, Slot<T>)>,
    next_id: u64,
    /// The replay source (a weak handle: no allocation, no cycle) and the selector it is given.
    replay: Option<(Weak<dyn ReplaySource<T>>, u8)>,
}

/// The state behind a signal, consulted when a callback connects.
pub(crate) trait ReplaySource<T>: Send + Sync {
    /// Under the lock that guards the source's state and its emissions: runs `add` (which
    /// adds the slot) unless the source will emit nothing more, and returns what the new slot
    /// must see now, if anything.
    /// `which` tells the source which of its signals asks (a source may serve several).
    fn replay(self: Arc<Self>, which: u8, add: &mut dyn FnMut()) -> Option<T>;

    /// For a latched signal whose emission was delivered: the value it fired with, for a
    /// future that starts waiting now. `None` for other signals, or before. The source must
    /// answer `Some` from before it calls [`Signal::latch`], under a lock that
    /// [`Signal::next`]'s call here also takes.
    fn fired(self: Arc<Self>, _which: u8) -> Option<T> {
        None
    }
}

struct SignalInner<T> {
    slots: Mutex<Slots<T>>,
    /// Fast path: emitting with nobody listening costs one atomic load.
    listened: AtomicBool,
    /// A latched emission was delivered: a future that starts waiting now gets the value
    /// from the replay source. Written under the slots' lock.
    latched: AtomicBool,
}

/// An emission prepared under its source's lock ([`Signal::prepare`]): who receives it is
/// fixed; [`Prepared::deliver`] runs the callbacks, then sends to streams and futures (so an
/// awaited `finished` resolves after the `finished` slots ran), outside every lock.
#[must_use = "nothing is delivered until deliver()"]
pub(crate) struct Prepared<T> {
    callbacks: List<Callback<T>>,
    streams: List<mpsc::UnboundedSender<T>>,
    futures: List<oneshot::Sender<T>>,
}

impl<T: Clone> Prepared<T> {
    /// Runs the callbacks with `value`, then sends it to streams and futures.
    pub(crate) fn deliver(self, value: &T) {
        for cb in self.callbacks {
            cb(value);
        }
        for tx in self.streams {
            let _ = tx.send(value.clone());
        }
        for tx in self.futures {
            let _ = tx.send(value.clone());
        }
    }
}

/// A Qt-style signal carrying values of type `T`.
///
/// Cloning a `Signal` gives another handle to the same signal.
pub struct Signal<T> {
    /// Allocated at the first connection: a reply has a dozen signals and most are never
    /// connected, so an unused one costs no allocation and emitting on it one load.
    inner: OnceLock<Arc<SignalInner<T>>>,
}

impl<T: Clone + Send + 'static> Clone for Signal<T> {
    fn clone(&self) -> Self {
        Signal {
            inner: OnceLock::from(self.shared().clone()),
        }
    }
}

impl<T> std::fmt::Debug for Signal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.get().map_or(0, |i| lock(&i.slots).list.len());
        f.debug_struct("Signal").field("slots", &n).finish()
    }
}

impl<T: Clone + Send + 'static> Default for Signal<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A connection made by [`Signal::connect`]; call [`Connection::disconnect`] to stop receiving.
///
/// Dropping a `Connection` does *not* disconnect (as in Qt).
#[derive(Clone)]
pub struct Connection {
    signal: Weak<dyn Disconnect>,
    id: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("id", &self.id).finish()
    }
}

impl Connection {
    /// Disconnects the slot; it is not called again. Returns false if it was already gone.
    pub fn disconnect(&self) -> bool {
        match self.signal.upgrade() {
            Some(signal) => signal.remove(self.id),
            None => false,
        }
    }

    /// True while the slot is connected.
    pub fn is_connected(&self) -> bool {
        self.signal.upgrade().is_some_and(|s| s.contains(self.id))
    }
}

trait Disconnect: Send + Sync {
    fn remove(&self, id: u64) -> bool;
    fn contains(&self, id: u64) -> bool;
}

impl<T: Send + 'static> Disconnect for SignalInner<T> {
    fn remove(&self, id: u64) -> bool {
        let mut slots = lock(&self.slots);
        let before = slots.list.len();
        slots.list.retain(|(i, _)| *i != id);
        self.listened
            .store(!slots.list.is_empty(), Ordering::Release);
        before != slots.list.len()
    }

    fn contains(&self, id: u64) -> bool {
        lock(&self.slots).list.iter().any(|(i, _)| *i == id)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A slot that panicked does not poison the signal for everyone else.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Clone + Send + 'static> Signal<T> {
    /// A new signal with no slots.
    pub fn new() -> Self {
        Signal {
            inner: OnceLock::new(),
        }
    }

    fn shared(&self) -> &Arc<SignalInner<T>> {
        self.inner.get_or_init(|| {
            Arc::new(SignalInner {
                slots: Mutex::new(Slots {
                    list: List::Empty,
                    next_id: 1,
                    replay: None,
                }),
                listened: AtomicBool::new(false),
                latched: AtomicBool::new(false),
            })
        })
    }

    fn add(&self, slot: Slot<T>) -> u64 {
        let inner = self.shared();
        let mut slots = lock(&inner.slots);
        let id = slots.next_id;
        slots.next_id += 1;
        slots.list.push((id, slot));
        inner.listened.store(true, Ordering::Release);
        id
    }

    /// Connects a callback, called for every emission until disconnected. On a reply's
    /// signals it is also called once at once with the current state, if there is one to see
    /// (see the module docs).
    pub fn connect<F>(&self, slot: F) -> Connection
    where
        F: Fn(&T) + Send + Sync + 'static,
    {
        let inner = self.shared();
        let weak: Weak<SignalInner<T>> = Arc::downgrade(inner);
        let replay = lock(&inner.slots).replay.clone();
        let Some((source, which)) = replay else {
            let id = self.add(Slot::Callback(Arc::new(slot)));
            return Connection { signal: weak, id };
        };
        let slot: Callback<T> = Arc::new(slot);
        let mut id = 0;
        let Some(source) = source.upgrade() else {
            // The source is gone: nothing will be emitted or replayed any more.
            return Connection { signal: weak, id };
        };
        let replayed = source.replay(which, &mut || {
            id = self.add(Slot::Callback(slot.clone()));
        });
        if let Some(value) = replayed {
            slot(&value);
        }
        Connection { signal: weak, id }
    }

    /// Gives the signal its replay source (once; later calls keep the first).
    pub(crate) fn set_replay_source(
        &self,
        source: impl FnOnce() -> Weak<dyn ReplaySource<T>>,
        which: u8,
    ) {
        let mut slots = lock(&self.shared().slots);
        if slots.replay.is_none() {
            slots.replay = Some((source(), which));
        }
    }

    /// An async stream of every emission from now on (unbounded: keep up with it).
    pub fn stream(&self) -> SignalStream<T> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.add(Slot::Stream(tx));
        SignalStream { rx }
    }

    /// A future of the next emission; for a latched signal that already fired, resolves at once.
    pub fn next(&self) -> NextEmission<T> {
        let (tx, rx) = oneshot::channel();
        // Made before the source is asked: a latch from now on finds this signal, and one
        // before it has its source answer `fired`.
        let inner = self.shared();
        let source = lock(&inner.slots).replay.clone();
        let fired = || {
            let (source, which) = source.as_ref()?;
            source.upgrade()?.fired(*which)
        };
        if let Some(value) = fired() {
            let _ = tx.send(value);
            return NextEmission { rx };
        }
        {
            let mut slots = lock(&inner.slots);
            if !inner.latched.load(Ordering::Acquire) {
                let id = slots.next_id;
                slots.next_id += 1;
                slots.list.push((id, Slot::Once(tx)));
                inner.listened.store(true, Ordering::Release);
                return NextEmission { rx };
            }
        }
        // Latched since the source was asked: it has the value now.
        if let Some(value) = fired() {
            let _ = tx.send(value);
        }
        NextEmission { rx }
    }

    /// Number of connected slots (callbacks, streams and pending futures).
    pub fn receivers(&self) -> usize {
        self.inner
            .get()
            .map_or(0, |inner| lock(&inner.slots).list.len())
    }

    /// Emits `value` to every slot. Slots run here, outside the signal's lock, so a slot may
    /// connect or disconnect.
    pub(crate) fn emit(&self, value: &T) {
        self.prepare(value).deliver(value);
    }

    /// The first half of [`emit`](Self::emit), for a caller holding its replay source's lock:
    /// sends to streams and futures, and takes the callbacks to run once the lock is released.
    pub(crate) fn prepare(&self, _value: &T) -> Prepared<T> {
        let mut prepared = Prepared {
            callbacks: List::Empty,
            streams: List::Empty,
            futures: List::Empty,
        };
        let Some(inner) = self.inner.get() else {
            return prepared;
        };
        if !inner.listened.load(Ordering::Acquire) {
            return prepared;
        }
        let mut slots = lock(&inner.slots);
        let list = std::mem::take(&mut slots.list);
        for (id, slot) in list {
            match slot {
                Slot::Callback(cb) => {
                    prepared.callbacks.push(cb.clone());
                    slots.list.push((id, Slot::Callback(cb)));
                }
                Slot::Stream(tx) => {
                    if !tx.is_closed() {
                        prepared.streams.push(tx.clone());
                        slots.list.push((id, Slot::Stream(tx)));
                    }
                }
                Slot::Once(tx) => prepared.futures.push(tx),
            }
        }
        inner
            .listened
            .store(!slots.list.is_empty(), Ordering::Release);
        prepared
    }

    /// Latches the signal after its one emission was delivered: the futures that started
    /// waiting meanwhile get `value`, later ones what the replay source's
    /// [`fired`](ReplaySource::fired) gives. Allocates nothing for a signal nobody reached.
    pub(crate) fn latch(&self, value: &T) {
        let Some(inner) = self.inner.get() else {
            return;
        };
        let mut slots = lock(&inner.slots);
        inner.latched.store(true, Ordering::Release);
        let list = std::mem::take(&mut slots.list);
        for (id, slot) in list {
            match slot {
                Slot::Once(tx) => {
                    let _ = tx.send(value.clone());
                }
                other => slots.list.push((id, other)),
            }
        }
        inner
            .listened
            .store(!slots.list.is_empty(), Ordering::Release);
    }

    /// Removes every slot (after the last emission, so closures holding handles are freed).
    pub(crate) fn clear(&self) {
        let Some(inner) = self.inner.get() else {
            return;
        };
        let mut slots = lock(&inner.slots);
        slots.list = List::Empty;
        inner.listened.store(false, Ordering::Release);
    }
}

impl<T: Clone + Send + 'static> IntoFuture for &Signal<T> {
    type Output = T;
    type IntoFuture = NextEmission<T>;

    fn into_future(self) -> NextEmission<T> {
        self.next()
    }
}

/// The future returned by [`Signal::next`].
///
/// If the signal's owner goes away without emitting, the future stays pending; a reply's
/// signals always emit `finished`, so awaiting that one always resolves.
pub struct NextEmission<T> {
    rx: oneshot::Receiver<T>,
}

impl<T> Future for NextEmission<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(v)) => Poll::Ready(v),
            Poll::Ready(Err(_)) | Poll::Pending => Poll::Pending,
        }
    }
}

/// The stream returned by [`Signal::stream`]; ends when the signal is cleared or dropped.
pub struct SignalStream<T> {
    rx: mpsc::UnboundedReceiver<T>,
}

impl<T> futures_core::Stream for SignalStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn slots_past_the_first_keep_their_order_and_disconnect_one_by_one() {
        let signal: Signal<u32> = Signal::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections: Vec<Connection> = (1..=3)
            .map(|n| {
                let seen = seen.clone();
                signal.connect(move |v| seen.lock().unwrap().push(n * 10 + v))
            })
            .collect();
        signal.emit(&1);
        assert!(connections[1].disconnect());
        assert!(!connections[1].disconnect());
        assert!(connections[0].is_connected() && !connections[1].is_connected());
        assert_eq!(signal.receivers(), 2);
        signal.emit(&2);
        assert!(connections[0].disconnect() && connections[2].disconnect());
        assert_eq!(signal.receivers(), 0);
        signal.emit(&3);
        assert_eq!(*seen.lock().unwrap(), [11, 21, 31, 12, 32]);
    }

    /// A source that says when its one emission was delivered.
    struct Once(Mutex<bool>);

    impl ReplaySource<u32> for Once {
        fn replay(self: Arc<Self>, _which: u8, add: &mut dyn FnMut()) -> Option<u32> {
            add();
            None
        }

        fn fired(self: Arc<Self>, _which: u8) -> Option<u32> {
            lock(&self.0).then_some(7)
        }
    }

    #[test]
    fn a_latched_signal_resolves_waiting_and_later_futures() {
        let source = Arc::new(Once(Mutex::new(false)));
        let weak = Arc::downgrade(&source);
        let signal: Signal<u32> = Signal::new();
        signal.set_replay_source(|| weak as Weak<dyn ReplaySource<u32>>, 0);
        let before = signal.next();
        let prepared = signal.prepare(&7);
        let meanwhile = signal.next();
        prepared.deliver(&7);
        *lock(&source.0) = true;
        signal.latch(&7);
        assert_eq!(before.now_or_never(), Some(7));
        assert_eq!(meanwhile.now_or_never(), Some(7));
        assert_eq!(signal.next().now_or_never(), Some(7));
        // A signal nobody reached before the latch gets its value from the source too.
        let untouched: Signal<u32> = Signal::new();
        untouched.latch(&7);
        let weak = Arc::downgrade(&source);
        untouched.set_replay_source(|| weak as Weak<dyn ReplaySource<u32>>, 0);
        assert_eq!(untouched.next().now_or_never(), Some(7));
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod size_tests {
    /// A reply has eleven signals and most programs connect one or two: an unused signal is
    /// 16 bytes, a connected one a single allocation that holds its first slot inline.
    #[test]
    fn an_unused_signal_is_16_bytes_and_a_connected_one_allocates_under_100() {
        use std::mem::size_of;
        assert_eq!(size_of::<super::Signal<crate::Reply>>(), 16);
        assert!(size_of::<super::SignalInner<crate::Reply>>() <= 88);
    }
}
