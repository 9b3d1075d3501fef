//! [`Chunks`]: the body chunks a reply holds for its reader, in order. The first is held
//! inline: a small body arrives as one chunk and is read before the next, so most replies never
//! allocate a queue, and an empty queue takes the room of one `Bytes` (32 bytes).

use std::collections::VecDeque;

use bytes::Bytes;

/// A queue of non-empty body chunks that allocates only when it holds two or more at once.
pub(super) enum Chunks {
    /// No chunk when empty (an empty `Bytes` allocates nothing), else the only one.
    One(Bytes),
    /// Kept (with its capacity) once made, even when it empties. Boxed so that the queue
    /// takes 32 bytes, not 40, in every reply: it is made for bodies of several chunks only.
    #[allow(clippy::box_collection)]
    Many(Box<VecDeque<Bytes>>),
}

impl Default for Chunks {
    fn default() -> Self {
        Chunks::One(Bytes::new())
    }
}

impl Chunks {
    pub(super) fn len(&self) -> usize {
        match self {
            Chunks::One(chunk) => usize::from(!chunk.is_empty()),
            Chunks::Many(queue) => queue.len(),
        }
    }

    /// Appends `chunk` (an empty one is not kept).
    pub(super) fn push_back(&mut self, chunk: Bytes) {
        self.insert(chunk, false);
    }

    /// Puts `chunk` first (an empty one is not kept).
    pub(super) fn push_front(&mut self, chunk: Bytes) {
        self.insert(chunk, true);
    }

    fn insert(&mut self, chunk: Bytes, front: bool) {
        if chunk.is_empty() {
            return;
        }
        match self {
            Chunks::One(only) if only.is_empty() => *only = chunk,
            Chunks::One(only) => {
                let mut queue = VecDeque::with_capacity(4);
                queue.push_back(std::mem::take(only));
                if front {
                    queue.push_front(chunk);
                } else {
                    queue.push_back(chunk);
                }
                *self = Chunks::Many(Box::new(queue));
            }
            Chunks::Many(queue) if front => queue.push_front(chunk),
            Chunks::Many(queue) => queue.push_back(chunk),
        }
    }

    /// Takes the first chunk. An emptied one (what `split_to` leaves of a chunk read whole)
    /// is dropped here too: it still holds the chunk's storage.
    pub(super) fn pop_front(&mut self) -> Option<Bytes> {
        match self {
            Chunks::One(only) => Some(std::mem::take(only)).filter(|chunk| !chunk.is_empty()),
            Chunks::Many(queue) => queue.pop_front(),
        }
    }

    pub(super) fn front_mut(&mut self) -> Option<&mut Bytes> {
        match self {
            Chunks::One(only) if only.is_empty() => None,
            Chunks::One(only) => Some(only),
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
        assert!(chunks.front_mut().is_none());
        chunks.push_back(Bytes::new());
        assert_eq!(chunks.len(), 0);
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

    #[test]
    fn a_chunk_read_whole_lets_go_of_its_storage() {
        let mut chunks = Chunks::default();
        let storage = Bytes::from(vec![7u8; 4096]);
        chunks.push_back(storage.slice(..));
        if let Some(front) = chunks.front_mut() {
            let _read = front.split_to(4096); // what a reply's read leaves: an empty view
        }
        assert!(chunks.pop_front().is_none());
        // Only `storage` itself still refers to the bytes.
        assert!(storage.is_unique());
    }

    #[test]
    fn an_empty_queue_takes_the_room_of_one_chunk() {
        assert_eq!(std::mem::size_of::<Chunks>(), std::mem::size_of::<Bytes>());
    }
}
