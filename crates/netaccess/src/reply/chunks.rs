//! [`Chunks`]: the body chunks a reply holds for its reader, in order. The first is held
//! inline: a small body arrives as one chunk and is read before the next, so most replies never
//! allocate a queue.

use std::collections::VecDeque;

use bytes::Bytes;

/// A queue of body chunks that allocates only when it holds two or more at once.
#[derive(Default)]
pub(super) enum Chunks {
    #[default]
    Empty,
    One(Bytes),
    /// Kept (with its capacity) once made, even when it empties.
    Many(VecDeque<Bytes>),
}

impl Chunks {
    pub(super) fn len(&self) -> usize {
        match self {
            Chunks::Empty => 0,
            Chunks::One(_) => 1,
            Chunks::Many(queue) => queue.len(),
        }
    }

    pub(super) fn push_back(&mut self, chunk: Bytes) {
        match self {
            Chunks::Empty => *self = Chunks::One(chunk),
            Chunks::One(_) => {
                let mut queue = VecDeque::with_capacity(4);
                if let Chunks::One(first) = std::mem::take(self) {
                    queue.push_back(first);
                }
                queue.push_back(chunk);
                *self = Chunks::Many(queue);
            }
            Chunks::Many(queue) => queue.push_back(chunk),
        }
    }

    pub(super) fn push_front(&mut self, chunk: Bytes) {
        match self {
            Chunks::Empty => *self = Chunks::One(chunk),
            Chunks::One(_) => {
                let mut queue = VecDeque::with_capacity(4);
                if let Chunks::One(first) = std::mem::take(self) {
                    queue.push_back(first);
                }
                queue.push_front(chunk);
                *self = Chunks::Many(queue);
            }
            Chunks::Many(queue) => queue.push_front(chunk),
        }
    }

    pub(super) fn pop_front(&mut self) -> Option<Bytes> {
        match self {
            Chunks::Empty => None,
            Chunks::One(_) => match std::mem::take(self) {
                Chunks::One(chunk) => Some(chunk),
                _ => None,
            },
            Chunks::Many(queue) => queue.pop_front(),
        }
    }

    pub(super) fn front_mut(&mut self) -> Option<&mut Bytes> {
        match self {
            Chunks::Empty => None,
            Chunks::One(chunk) => Some(chunk),
            Chunks::Many(queue) => queue.front_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Chunks;
    use bytes::Bytes;

    fn drain(chunks: &mut Chunks) -> Vec<Bytes> {
        std::iter::from_fn(|| chunks.pop_front()).collect()
    }

    #[test]
    fn chunks_keep_their_order_inline_and_queued() {
        let mut chunks = Chunks::default();
        assert_eq!(chunks.len(), 0);
        assert!(chunks.pop_front().is_none());
        chunks.push_back(Bytes::from("a"));
        assert!(matches!(chunks, Chunks::One(_)));
        chunks.push_back(Bytes::from("b"));
        chunks.push_front(Bytes::from("0"));
        chunks.push_back(Bytes::from("c"));
        assert_eq!(chunks.len(), 4);
        if let Some(front) = chunks.front_mut() {
            *front = Bytes::from("z");
        }
        assert_eq!(drain(&mut chunks), ["z", "a", "b", "c"]);
        assert_eq!(chunks.len(), 0);

        let mut chunks = Chunks::default();
        chunks.push_front(Bytes::from("y"));
        chunks.push_front(Bytes::from("x"));
        assert_eq!(drain(&mut chunks), ["x", "y"]);
    }
}
