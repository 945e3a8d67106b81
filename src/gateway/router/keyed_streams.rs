//! Streams keyed by chat: only the ones that have something are polled, and one is removed
//! without looking at the others, so neither grows with the number of chats.
//!
//! Built on `SelectAll` (a `FuturesUnordered`: a stream is polled when its waker fired). A
//! stream is removed by aborting it: its entry goes at once, the stream itself ends at its next
//! poll (the abort wakes it) and is dropped there, which for a NATS subscriber is the
//! unsubscription. Each insertion has a generation, so an old stream's end cannot be mistaken
//! for the end of the one that replaced it under the same key.

use std::{
    collections::HashMap,
    hash::Hash,
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures_util::{
    Stream, StreamExt,
    stream::{AbortHandle, Abortable, SelectAll},
};

/// Which insertion under a key a stream is; never reused within one [`KeyedStreams`].
pub type Generation = u64;

/// Streams by key, yielding `(key, item)`; a stream that ends by itself leaves the set.
pub struct KeyedStreams<K, S> {
    streams: SelectAll<Keyed<K, S>>,
    entries: HashMap<K, Entry>,
    last_generation: Generation,
}

/// The live insertion under a key.
struct Entry {
    generation: Generation,
    stop: AbortHandle,
}

/// One stream with its key: its items, then once an end marker (`None`) when it ends by itself
/// or is aborted.
struct Keyed<K, S> {
    key: K,
    generation: Generation,
    stream: Abortable<S>,
    ended: bool,
}

impl<K, S> Default for KeyedStreams<K, S>
where
    K: Copy + Unpin,
    S: Stream + Unpin,
{
    fn default() -> Self {
        KeyedStreams {
            streams: SelectAll::new(),
            entries: HashMap::new(),
            last_generation: 0,
        }
    }
}

impl<K, S> KeyedStreams<K, S>
where
    K: Hash + Eq + Copy + Unpin,
    S: Stream + Unpin,
{
    /// Adds `stream` under `key`, replacing (removing) the one there; returns its generation.
    pub fn insert(&mut self, key: K, stream: S) -> Generation {
        self.remove(&key);
        self.last_generation += 1;
        let generation = self.last_generation;
        let (stop, registration) = AbortHandle::new_pair();
        self.streams.push(Keyed {
            key,
            generation,
            stream: Abortable::new(stream, registration),
            ended: false,
        });
        self.entries.insert(key, Entry { generation, stop });
        generation
    }

    /// Removes the stream under `key`: none of its items is yielded any more, and it is dropped
    /// at the set's next poll. `false` when there was none.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.entries.remove(key) {
            Some(entry) => {
                entry.stop.abort();
                true
            }
            None => false,
        }
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The generation of the stream now under `key`.
    pub fn generation(&self, key: &K) -> Option<Generation> {
        self.entries.get(key).map(|entry| entry.generation)
    }

    /// How many keys have a stream.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<K, S> Stream for Keyed<K, S>
where
    K: Copy + Unpin,
    S: Stream + Unpin,
{
    type Item = (K, Generation, Option<S::Item>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let item = ready!(this.stream.poll_next_unpin(cx));
        this.ended = item.is_none();
        Poll::Ready(Some((this.key, this.generation, item)))
    }
}

impl<K, S> Stream for KeyedStreams<K, S>
where
    K: Hash + Eq + Copy + Unpin,
    S: Stream + Unpin,
{
    type Item = (K, S::Item);

    /// `Ready(None)` while the set is empty (it yields again after an insertion).
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match ready!(self.streams.poll_next_unpin(cx)) {
                Some((key, _, Some(item))) => return Poll::Ready(Some((key, item))),
                Some((key, generation, None)) => {
                    // Ended: by itself (its entry goes) or aborted (its entry went already, and
                    // the key may hold a newer stream that must stay).
                    if self.generation(&key) == Some(generation) {
                        self.entries.remove(&key);
                    }
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::UnboundedReceiverStream;

    use super::*;

    type Streams = KeyedStreams<i64, UnboundedReceiverStream<&'static str>>;

    fn channel() -> (
        mpsc::UnboundedSender<&'static str>,
        UnboundedReceiverStream<&'static str>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, UnboundedReceiverStream::new(rx))
    }

    /// Everything the set yields without waiting.
    fn ready_items(streams: &mut Streams) -> Vec<(i64, &'static str)> {
        let mut items = Vec::new();
        while let Some(Some(item)) = streams.next().now_or_never() {
            items.push(item);
        }
        items.sort();
        items
    }

    #[test]
    fn items_come_with_their_key() {
        let mut streams = Streams::default();
        let (one, rx) = channel();
        streams.insert(1, rx);
        let (two, rx) = channel();
        streams.insert(2, rx);
        one.send("a").unwrap();
        two.send("b").unwrap();
        one.send("c").unwrap();
        assert_eq!(ready_items(&mut streams), [(1, "a"), (1, "c"), (2, "b")]);
        assert_eq!(streams.len(), 2);
    }

    #[test]
    fn a_removed_stream_yields_nothing_more_and_is_dropped() {
        let mut streams = Streams::default();
        let (one, rx) = channel();
        streams.insert(1, rx);
        let (two, rx) = channel();
        streams.insert(2, rx);
        one.send("queued before the removal").unwrap();
        assert!(streams.remove(&1));
        assert!(!streams.remove(&1), "removed once");
        two.send("b").unwrap();
        assert_eq!(ready_items(&mut streams), [(2, "b")]);
        // Dropped at that poll: for a NATS subscriber, unsubscribed.
        assert!(one.is_closed());
        assert!(!two.is_closed());
        assert!(!streams.contains_key(&1));
        assert_eq!(streams.len(), 1);
    }

    #[test]
    fn a_key_subscribed_again_yields_only_the_new_streams_items() {
        let mut streams = Streams::default();
        let (old, rx) = channel();
        let first = streams.insert(1, rx);
        streams.remove(&1);
        let (new, rx) = channel();
        let second = streams.insert(1, rx);
        assert_ne!(first, second);
        old.send("old").unwrap();
        new.send("new").unwrap();
        assert_eq!(ready_items(&mut streams), [(1, "new")]);
        assert!(old.is_closed());
        // The old stream's end did not take the new one's entry with it.
        assert_eq!(streams.generation(&1), Some(second));
        new.send("still here").unwrap();
        assert_eq!(ready_items(&mut streams), [(1, "still here")]);
    }

    #[test]
    fn inserting_under_a_taken_key_replaces_the_stream() {
        let mut streams = Streams::default();
        let (old, rx) = channel();
        streams.insert(1, rx);
        let (new, rx) = channel();
        streams.insert(1, rx);
        old.send("old").unwrap();
        new.send("new").unwrap();
        assert_eq!(ready_items(&mut streams), [(1, "new")]);
        assert!(old.is_closed());
        assert_eq!(streams.len(), 1);
    }

    #[test]
    fn a_stream_that_ends_by_itself_leaves_the_set() {
        let mut streams = Streams::default();
        let (one, rx) = channel();
        streams.insert(1, rx);
        one.send("last").unwrap();
        drop(one);
        assert_eq!(ready_items(&mut streams), [(1, "last")]);
        assert!(!streams.contains_key(&1));
        assert_eq!(streams.len(), 0);
        assert_eq!(
            streams.next().now_or_never(),
            Some(None),
            "empty: ready, none"
        );
    }
}
