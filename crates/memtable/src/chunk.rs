//! A chunk: up to a few hundred entries sorted by key, with their text.
//!
//! Every structure of the memtable is made of chunks: the in-order log is a list of chunks, a
//! straggler run is one chunk, the straggler buffer is one chunk. A chunk is filled by the
//! writer, then *sealed*: put behind an `Arc` and never changed again, so readers share it.
//!
//! Where the text lives depends on the [`Allocation`]:
//!
//! - [`Allocation::Heap`]: each entry's message and metadata sit together in one `Arc<str>`
//!   of their own, allocated when the entry is inserted and freed when its last chunk goes.
//! - [`Allocation::Arena`]: the text is appended to the chunk's `arena`, one `String` allocated
//!   once at the chunk's full capacity (never grown, so never moved), and freed with the chunk.

use std::mem::size_of;
use std::sync::Arc;

use logstore_entry::{Entry, Key};

use crate::Allocation;

/// `metadata_bytes` of an entry without metadata.
const NO_METADATA: u32 = u32::MAX;

/// Bytes of the two reference counts in front of an `Arc`'s value.
pub(crate) const ARC_HEADER_BYTES: usize = 2 * size_of::<usize>();

/// Bytes a chunk costs besides its slots and text: the `Chunk` itself inside its `Arc`, and
/// the pointer to it in a chunk list.
pub(crate) const CHUNK_OVERHEAD_BYTES: usize =
    ARC_HEADER_BYTES + size_of::<Chunk>() + size_of::<Arc<Chunk>>();

/// Where an entry's text is.
#[derive(Clone, Debug)]
enum Text {
    /// At this byte offset of the chunk's arena.
    Arena(u32),
    /// In its own allocation.
    Heap(Arc<str>),
}

/// One entry: its key and where its text is. Message then metadata, contiguous.
#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    message_bytes: u32,
    /// [`NO_METADATA`] when the entry has none.
    metadata_bytes: u32,
    text: Text,
}

/// Bytes of one slot.
pub(crate) const SLOT_BYTES: usize = size_of::<Slot>();

/// An entry's text, prepared before the writer takes the lock (the heap allocation happens
/// there, outside it).
pub(crate) enum PendingText<'e> {
    /// To be copied into the chunk's arena.
    Arena { message: &'e str, metadata: Option<&'e str> },
    /// Already allocated.
    Heap { text: Arc<str>, message_bytes: usize, metadata_bytes: Option<usize> },
}

impl PendingText<'_> {
    /// Prepares `entry`'s text for `allocation`, using `scratch` to join message and metadata
    /// before the one heap allocation.
    pub(crate) fn new<'e>(
        allocation: Allocation,
        entry: &'e Entry<'_>,
        scratch: &mut String,
    ) -> PendingText<'e> {
        let metadata = entry.metadata.as_deref();
        match allocation {
            Allocation::Arena => PendingText::Arena { message: &entry.message, metadata },
            Allocation::Heap => {
                scratch.clear();
                scratch.push_str(&entry.message);
                scratch.push_str(metadata.unwrap_or(""));
                PendingText::Heap {
                    text: Arc::from(scratch.as_str()),
                    message_bytes: entry.message.len(),
                    metadata_bytes: metadata.map(str::len),
                }
            }
        }
    }
}

/// Entries sorted by key, and their text. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Chunk {
    slots: Vec<Slot>,
    /// The text, in the arena strategy; empty (no allocation) in the heap strategy.
    arena: String,
    allocation: Allocation,
    /// Bytes of message and metadata text of the entries.
    payload_bytes: usize,
}

/// Converts a length the memtable's limits keep below `u32::MAX`.
fn to_u32(len: usize) -> u32 {
    debug_assert!(len < u32::MAX as usize, "length {len} beyond the memtable's limits");
    len as u32
}

impl Chunk {
    /// An empty chunk with room for `entries` slots and, in the arena strategy, `text_bytes`
    /// of text; it never grows past those.
    pub(crate) fn with_capacity(allocation: Allocation, entries: usize, text_bytes: usize) -> Self {
        let arena = match allocation {
            Allocation::Arena => String::with_capacity(text_bytes),
            Allocation::Heap => String::new(),
        };
        Chunk { slots: Vec::with_capacity(entries), arena, allocation, payload_bytes: 0 }
    }

    /// A chunk with no capacity at all, standing for "not allocated yet".
    pub(crate) fn unallocated(allocation: Allocation) -> Self {
        Chunk::with_capacity(allocation, 0, 0)
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Takes the chunk's entries, leaving an unallocated chunk of the same strategy.
    pub(crate) fn take(&mut self) -> Chunk {
        std::mem::replace(self, Chunk::unallocated(self.allocation))
    }

    /// Whether a chunk has been given its capacity yet (a fresh `Chunk::default()` has none).
    pub(crate) fn is_allocated(&self) -> bool {
        self.slots.capacity() > 0
    }

    /// The largest key; `None` when empty.
    pub(crate) fn last_key(&self) -> Option<Key> {
        self.slots.last().map(|s| s.key)
    }

    pub(crate) fn key(&self, index: usize) -> Key {
        self.slots[index].key
    }

    /// Whether one more entry with `text_bytes` of text fits without growing the chunk.
    pub(crate) fn has_room(&self, text_bytes: usize) -> bool {
        self.slots.len() < self.slots.capacity()
            && match self.allocation {
                Allocation::Heap => true,
                Allocation::Arena => self.arena.len() + text_bytes <= self.arena.capacity(),
            }
    }

    /// Whether no further entry should go in: out of slots, or the arena is full (or was sized
    /// for one oversized entry).
    pub(crate) fn is_full(&self, text_bytes_max: usize) -> bool {
        self.slots.len() >= self.slots.capacity() || self.payload_bytes >= text_bytes_max
    }

    /// Bytes this chunk holds on the heap: slot and arena capacity, or in the heap strategy
    /// each entry's text allocation with its `Arc` header; plus [`CHUNK_OVERHEAD_BYTES`].
    pub(crate) fn heap_bytes(&self) -> usize {
        let text_bytes = match self.allocation {
            Allocation::Arena => self.arena.capacity(),
            Allocation::Heap => self.payload_bytes + self.slots.len() * ARC_HEADER_BYTES,
        };
        CHUNK_OVERHEAD_BYTES + self.slots.capacity() * SLOT_BYTES + text_bytes
    }

    /// Puts an entry at `index` (the caller keeps keys sorted).
    pub(crate) fn insert(&mut self, index: usize, key: Key, text: PendingText<'_>) {
        let slot = match text {
            PendingText::Arena { message, metadata } => {
                let text_bytes = message.len() + metadata.map_or(0, str::len);
                debug_assert!(self.has_room(text_bytes) && self.allocation == Allocation::Arena);
                self.payload_bytes += text_bytes;
                let offset = to_u32(self.arena.len());
                self.arena.push_str(message);
                self.arena.push_str(metadata.unwrap_or(""));
                Slot {
                    key,
                    message_bytes: to_u32(message.len()),
                    metadata_bytes: metadata.map_or(NO_METADATA, |m| to_u32(m.len())),
                    text: Text::Arena(offset),
                }
            }
            PendingText::Heap { text, message_bytes, metadata_bytes } => {
                debug_assert!(self.has_room(0) && self.allocation == Allocation::Heap);
                self.payload_bytes += text.len();
                Slot {
                    key,
                    message_bytes: to_u32(message_bytes),
                    metadata_bytes: metadata_bytes.map_or(NO_METADATA, to_u32),
                    text: Text::Heap(text),
                }
            }
        };
        self.slots.insert(index, slot);
    }

    /// The entry at `index`, borrowing its text from the chunk.
    pub(crate) fn entry(&self, index: usize) -> Entry<'_> {
        let slot = &self.slots[index];
        let text: &str = match &slot.text {
            Text::Arena(offset) => &self.arena[*offset as usize..],
            Text::Heap(text) => text,
        };
        let (message, rest) = text.split_at(slot.message_bytes as usize);
        let metadata = match slot.metadata_bytes {
            NO_METADATA => None,
            len => Some(&rest[..len as usize]),
        };
        Entry::new(slot.key, message, metadata)
    }

    /// The first index whose key is not `before` the target (`before` must be true for a prefix
    /// of the keys and false after it).
    pub(crate) fn partition_point(&self, before: impl Fn(&Key) -> bool) -> usize {
        self.slots.partition_point(|slot| before(&slot.key))
    }

    /// Index of `key`, if present.
    pub(crate) fn find(&self, key: Key) -> Option<usize> {
        self.slots.binary_search_by(|slot| slot.key.cmp(&key)).ok()
    }

    /// A copy for a reader: slots and used text only, at exact capacity. Heap text is shared,
    /// not copied.
    pub(crate) fn copy(&self) -> Chunk {
        Chunk {
            slots: self.slots.clone(),
            arena: self.arena.as_str().to_owned(),
            allocation: self.allocation,
            payload_bytes: self.payload_bytes,
        }
    }

    /// The entries of two sorted chunks with disjoint keys, merged into one chunk of exact
    /// capacity. Arena text is copied; heap text is shared.
    pub(crate) fn merge(a: &Chunk, b: &Chunk) -> Chunk {
        debug_assert_eq!(a.allocation, b.allocation);
        let mut merged = Chunk {
            slots: Vec::with_capacity(a.len() + b.len()),
            arena: String::with_capacity(a.arena.len() + b.arena.len()),
            allocation: a.allocation,
            payload_bytes: a.payload_bytes + b.payload_bytes,
        };
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let from_a = j == b.len() || (i < a.len() && a.slots[i].key < b.slots[j].key);
            let (source, index) = if from_a { (a, &mut i) } else { (b, &mut j) };
            merged.push_copy(source, *index);
            *index += 1;
        }
        merged
    }

    /// Appends a copy of `source`'s slot `index`, re-homing arena text into this chunk.
    fn push_copy(&mut self, source: &Chunk, index: usize) {
        let slot = &source.slots[index];
        let text = match &slot.text {
            Text::Arena(offset) => {
                let start = *offset as usize;
                let len = slot.message_bytes as usize
                    + match slot.metadata_bytes {
                        NO_METADATA => 0,
                        len => len as usize,
                    };
                let new_offset = to_u32(self.arena.len());
                self.arena.push_str(&source.arena[start..start + len]);
                Text::Arena(new_offset)
            }
            Text::Heap(text) => Text::Heap(Arc::clone(text)),
        };
        self.slots.push(Slot { text, ..slot.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(allocation: Allocation, keys: &[u64]) -> Chunk {
        let mut chunk = Chunk::with_capacity(allocation, 16, 1024);
        let mut scratch = String::new();
        for &k in keys {
            let message = format!("m{k}");
            let metadata = (k % 2 == 0).then(|| format!("{{\"k\":{k}}}"));
            let entry = Entry::new(Key::new(k, 0), message, metadata);
            let at = chunk.partition_point(|key| *key < entry.key);
            chunk.insert(at, entry.key, PendingText::new(allocation, &entry, &mut scratch));
        }
        chunk
    }

    fn keys(chunk: &Chunk) -> Vec<u64> {
        (0..chunk.len()).map(|i| chunk.key(i).timestamp_ms).collect()
    }

    #[test]
    fn slots_stay_small() {
        // Key (16) + two lengths (8) + text reference (16): 40 bytes per entry.
        assert_eq!(SLOT_BYTES, 40);
    }

    #[test]
    fn entries_read_back_in_both_strategies() {
        for allocation in [Allocation::Heap, Allocation::Arena] {
            let chunk = filled(allocation, &[5, 1, 4, 2]);
            assert_eq!(keys(&chunk), [1, 2, 4, 5]);
            let entry = chunk.entry(2);
            assert_eq!(entry, Entry::new(Key::new(4, 0), "m4", Some("{\"k\":4}")));
            assert_eq!(chunk.entry(0).metadata, None);
            assert_eq!(chunk.find(Key::new(2, 0)), Some(1));
            assert_eq!(chunk.find(Key::new(3, 0)), None);
        }
    }

    #[test]
    fn merge_interleaves_and_copy_keeps_everything() {
        for allocation in [Allocation::Heap, Allocation::Arena] {
            let a = filled(allocation, &[1, 4, 9]);
            let b = filled(allocation, &[2, 3, 10, 11]);
            let merged = Chunk::merge(&a, &b);
            assert_eq!(keys(&merged), [1, 2, 3, 4, 9, 10, 11]);
            for i in 0..merged.len() {
                let k = merged.key(i).timestamp_ms;
                let source = if [1, 4, 9].contains(&k) { &a } else { &b };
                assert_eq!(merged.entry(i), source.entry(source.find(merged.key(i)).unwrap()));
            }
            let copy = merged.copy();
            assert_eq!(keys(&copy), keys(&merged));
            assert_eq!(copy.entry(3), merged.entry(3));
        }
    }

    #[test]
    fn room_and_fullness_follow_the_capacities() {
        let mut chunk = Chunk::with_capacity(Allocation::Arena, 2, 10);
        let mut scratch = String::new();
        assert!(chunk.has_room(10) && !chunk.has_room(11));
        let entry = Entry::new(Key::new(1, 0), "12345678", None::<&str>);
        chunk.insert(0, entry.key, PendingText::new(Allocation::Arena, &entry, &mut scratch));
        assert!(!chunk.has_room(3) && chunk.has_room(2));
        assert!(!chunk.is_full(10));
        let entry = Entry::new(Key::new(2, 0), "12", None::<&str>);
        chunk.insert(1, entry.key, PendingText::new(Allocation::Arena, &entry, &mut scratch));
        assert!(chunk.is_full(10));
        assert_eq!(chunk.heap_bytes(), CHUNK_OVERHEAD_BYTES + 2 * SLOT_BYTES + 10);
    }
}
