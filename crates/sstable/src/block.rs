//! Data blocks: writing records into a body, and parsing a body back into record positions.
//!
//! The layout is drawn in [`format`](crate::format#block-body-decoded-raw_bytes-long). Parsing
//! reads every record header of a block once, checks the rules a body must follow (records
//! inside the body, keys strictly increasing, the count and the first and last keys the index
//! promises), and leaves a [`Record`] per entry, so that moving forwards, backwards or seeking
//! inside a block is array indexing and binary search, and payloads are decoded only when asked.

use crate::varint;
use logstore_entry::Key;

/// Where one entry sits in a decoded block body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The entry's key, from the record header.
    pub key: Key,
    /// The payload's first byte in the body.
    pub start: u32,
    /// One past the payload's last byte.
    pub end: u32,
}

/// A block body being filled by the builder.
#[derive(Debug, Default)]
pub(crate) struct BlockWriter {
    body: Vec<u8>,
    first_key: Key,
    last_key: Key,
    entry_count: u32,
}

/// The delta of `key` from `prev`, as the record header stores it.
fn deltas(prev: Key, key: Key) -> (u64, u64) {
    let ts_delta = key.timestamp_ms - prev.timestamp_ms;
    let seq_delta = varint::zigzag(key.seq.wrapping_sub(prev.seq) as i64);
    (ts_delta, seq_delta)
}

impl BlockWriter {
    /// Bytes a record for `key` with a `payload_bytes` payload would add to this block.
    ///
    /// `key` must be greater than the block's last key (the builder checks).
    pub fn record_bytes(&self, key: Key, payload_bytes: usize) -> usize {
        let (ts_delta, seq_delta) = deltas(self.prev(), key);
        varint::encoded_bytes(ts_delta)
            + varint::encoded_bytes(seq_delta)
            + varint::encoded_bytes(payload_bytes as u64)
            + payload_bytes
    }

    fn prev(&self) -> Key {
        if self.entry_count == 0 { Key::MIN } else { self.last_key }
    }

    /// Appends a record. `key` must be greater than the block's last key, which the builder
    /// checks before encoding the payload.
    pub fn push(&mut self, key: Key, payload: &[u8]) {
        debug_assert!(self.entry_count == 0 || key > self.last_key);
        let (ts_delta, seq_delta) = deltas(self.prev(), key);
        varint::put_u64(&mut self.body, ts_delta);
        varint::put_u64(&mut self.body, seq_delta);
        varint::put_u64(&mut self.body, payload.len() as u64);
        self.body.extend_from_slice(payload);
        if self.entry_count == 0 {
            self.first_key = key;
        }
        self.last_key = key;
        self.entry_count += 1;
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    pub fn entry_count(&self) -> u32 {
        self.entry_count
    }

    pub fn first_key(&self) -> Key {
        self.first_key
    }

    pub fn last_key(&self) -> Key {
        self.last_key
    }

    /// Empties the block, keeping its buffer.
    pub fn clear(&mut self) {
        self.body.clear();
        self.entry_count = 0;
    }
}

/// What the index says a block holds; [`parse`] checks the body against it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expected {
    pub entry_count: u32,
    pub first_key: Key,
    pub last_key: Key,
}

/// Parses `body` into `records` (cleared first), checking every rule of the block layout and
/// that the body holds exactly what `expected` says. On error, returns what was wrong and the
/// offset in the body where it was found.
///
/// `expected.entry_count` must already be checked against the reader's limits: it sizes the
/// allocation.
pub(crate) fn parse(
    body: &[u8],
    expected: Expected,
    records: &mut Vec<Record>,
) -> Result<(), (usize, String)> {
    records.clear();
    records.reserve(expected.entry_count as usize);
    let mut pos = 0usize;
    let mut prev = Key::MIN;
    while pos < body.len() {
        let record_at = pos;
        let header = |pos: &mut usize, what: &str| {
            varint::get_u64(body, pos)
                .ok_or_else(|| (record_at, format!("record {}: bad {what}", records.len())))
        };
        let ts_delta = header(&mut pos, "timestamp delta")?;
        let seq_delta = header(&mut pos, "seq delta")?;
        let payload_bytes = header(&mut pos, "payload length")?;
        let Some(timestamp_ms) = prev.timestamp_ms.checked_add(ts_delta) else {
            return Err((record_at, format!("record {}: timestamp overflows", records.len())));
        };
        let seq = prev.seq.wrapping_add(varint::unzigzag(seq_delta) as u64);
        let key = Key::new(timestamp_ms, seq);
        if !records.is_empty() && key <= prev {
            return Err((
                record_at,
                format!("record {}: key {key} does not follow {prev}", records.len()),
            ));
        }
        let remaining = (body.len() - pos) as u64;
        if payload_bytes > remaining {
            return Err((
                record_at,
                format!(
                    "record {}: payload of {payload_bytes} bytes, only {remaining} left in the block",
                    records.len()
                ),
            ));
        }
        if records.len() == expected.entry_count as usize {
            return Err((
                record_at,
                format!("more than the {} records the index records", expected.entry_count),
            ));
        }
        let end = pos + payload_bytes as usize;
        // The body is at most `u32::MAX` bytes (its size is a `u32` in the index).
        records.push(Record { key, start: pos as u32, end: end as u32 });
        pos = end;
        prev = key;
    }
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err((0, "empty block".to_owned()));
    };
    if records.len() != expected.entry_count as usize {
        return Err((
            body.len(),
            format!("{} records, the index records {}", records.len(), expected.entry_count),
        ));
    }
    if first.key != expected.first_key || last.key != expected.last_key {
        return Err((
            0,
            format!(
                "keys {}..={}, the index records {}..={}",
                first.key, last.key, expected.first_key, expected.last_key
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(entries: &[(Key, Vec<u8>)]) -> BlockWriter {
        let mut block = BlockWriter::default();
        for (key, payload) in entries {
            let before = block.body().len();
            let predicted = block.record_bytes(*key, payload.len());
            block.push(*key, payload);
            assert_eq!(block.body().len() - before, predicted);
        }
        block
    }

    fn expected(block: &BlockWriter) -> Expected {
        Expected {
            entry_count: block.entry_count(),
            first_key: block.first_key(),
            last_key: block.last_key(),
        }
    }

    #[test]
    fn known_layout() {
        let block = build(&[(Key::new(1000, 5), b"ab".to_vec()), (Key::new(1001, 4), vec![])]);
        // 1000 = 0xe8 0x07; zigzag(5) = 10; len 2; "ab"; then delta 1, zigzag(-1) = 1, len 0.
        assert_eq!(block.body(), &[0xe8, 0x07, 10, 2, b'a', b'b', 1, 1, 0]);
        let mut records = Vec::new();
        parse(block.body(), expected(&block), &mut records).unwrap();
        assert_eq!(
            records,
            [
                Record { key: Key::new(1000, 5), start: 4, end: 6 },
                Record { key: Key::new(1001, 4), start: 9, end: 9 },
            ]
        );
    }

    #[test]
    fn rejects_what_the_index_does_not_promise() {
        let block = build(&[(Key::new(1, 1), b"x".to_vec()), (Key::new(1, 2), b"y".to_vec())]);
        let good = expected(&block);
        let mut records = Vec::new();
        for bad in [
            Expected { entry_count: 1, ..good },
            Expected { entry_count: 3, ..good },
            Expected { first_key: Key::new(1, 0), ..good },
            Expected { last_key: Key::new(1, 3), ..good },
        ] {
            assert!(parse(block.body(), bad, &mut records).is_err(), "{bad:?}");
        }
        assert!(parse(&[], good, &mut records).is_err());
    }

    #[test]
    fn rejects_equal_keys_and_overruns() {
        let mut records = Vec::new();
        let expect =
            Expected { entry_count: 2, first_key: Key::new(0, 1), last_key: Key::new(0, 1) };
        // Two records with the same key (second delta 0, 0).
        assert!(parse(&[0, 2, 0, 0, 0, 0], expect, &mut records).is_err());
        // A payload longer than the block.
        let expect =
            Expected { entry_count: 1, first_key: Key::new(0, 1), last_key: Key::new(0, 1) };
        assert!(parse(&[0, 2, 5, 1, 2], expect, &mut records).is_err());
        // A header cut short.
        assert!(parse(&[0x80], expect, &mut records).is_err());
    }

    proptest! {
        #[test]
        fn round_trips_any_increasing_keys(
            keys in proptest::collection::btree_set(any::<(u64, u64)>(), 1..50),
            payload_bytes in 0usize..40,
        ) {
            let entries: Vec<(Key, Vec<u8>)> = keys
                .into_iter()
                .enumerate()
                .map(|(i, (t, s))| (Key::new(t, s), vec![i as u8; payload_bytes]))
                .collect();
            let block = build(&entries);
            let mut records = Vec::new();
            parse(block.body(), expected(&block), &mut records).unwrap();
            prop_assert_eq!(records.len(), entries.len());
            for (record, (key, payload)) in records.iter().zip(&entries) {
                prop_assert_eq!(record.key, *key);
                prop_assert_eq!(&block.body()[record.start as usize..record.end as usize], &payload[..]);
            }
        }

        #[test]
        fn never_panics_on_garbage(
            body in proptest::collection::vec(any::<u8>(), 0..64),
            count in 0u32..20,
        ) {
            let expect = Expected { entry_count: count, first_key: Key::MIN, last_key: Key::MAX };
            let _ = parse(&body, expect, &mut Vec::new());
        }

        /// A valid block with one byte changed or cut: whatever `parse` accepts is still
        /// in order, inside the body, and as many records as expected.
        #[test]
        fn damaged_blocks_parse_into_bounded_ordered_records_or_fail(
            keys in proptest::collection::btree_set(any::<(u64, u64)>(), 1..30),
            payload_bytes in 0usize..20,
            at in any::<usize>(),
            flip in 1u8..=255,
            cut in any::<bool>(),
        ) {
            let entries: Vec<(Key, Vec<u8>)> =
                keys.into_iter().map(|(t, s)| (Key::new(t, s), vec![7; payload_bytes])).collect();
            let block = build(&entries);
            let expect = expected(&block);
            let mut body = block.body().to_vec();
            let at = at % body.len();
            if cut { body.truncate(at) } else { body[at] ^= flip }
            let mut records = Vec::new();
            if parse(&body, expect, &mut records).is_ok() {
                prop_assert_eq!(records.len(), expect.entry_count as usize);
                prop_assert!(records.windows(2).all(|w| w[0].key < w[1].key));
                prop_assert!(records.iter().all(|r| r.start <= r.end && r.end as usize <= body.len()));
                prop_assert_eq!(records[0].key, expect.first_key);
                prop_assert_eq!(records[records.len() - 1].key, expect.last_key);
            }
        }
    }
}
