//! How an entry is stored in a WAL record.
//!
//! ```text
//! offset size  field
//!      0    1  flags     bit 0: the timestamp was given by the client (backfill); others 0
//!      1    n  entry     the entry in the binary codec of logstore-entry (key, message,
//!                        metadata), whose key's seq equals the record's WAL sequence number
//! ```
//! The WAL checksums the record; the flag tells recovery which timestamps the store's clock
//! handed out, so the clock never goes back across a restart.

use logstore_entry::{CodecError, CodecId, Entry};

/// Flag bit: the timestamp came from the client.
const FLAG_CLIENT_TIMESTAMP: u8 = 1;
/// Bytes a record adds to an entry's text, at most: flags plus the binary codec's header.
pub(crate) const OVERHEAD_BYTES_MAX: usize = 1 + 32;

/// Appends the record for `entry` to `out`.
pub(crate) fn encode(entry: &Entry<'_>, client_timestamp: bool, out: &mut Vec<u8>) {
    out.push(if client_timestamp { FLAG_CLIENT_TIMESTAMP } else { 0 });
    CodecId::Binary.codec().encode(entry, out);
}

/// Largest buffer [`BatchRecords`] keeps between batches: 4 MiB (a batch of 1,000 entries of
/// up to 1 KiB takes about 1 MiB); a larger batch's buffer is freed after it.
const BATCH_BUFFER_BYTES_KEPT: usize = 4 << 20;

/// The records of one batch, encoded back to back in one buffer that the next batch reuses:
/// one allocation per batch, not one per entry.
#[derive(Debug, Default)]
pub(crate) struct BatchRecords {
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl BatchRecords {
    /// Empties the batch, freeing a buffer larger than [`BATCH_BUFFER_BYTES_KEPT`].
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        if self.bytes.capacity() > BATCH_BUFFER_BYTES_KEPT {
            self.bytes = Vec::new();
        }
    }

    /// Appends the record of `entry`.
    pub(crate) fn push(&mut self, entry: &Entry<'_>, client_timestamp: bool) {
        encode(entry, client_timestamp, &mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    /// The records, in the order they were pushed.
    pub(crate) fn records(&self) -> Vec<&[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(start, &end)| &self.bytes[start..end]).collect()
    }
}

/// The entry in a record and whether its timestamp came from the client.
pub(crate) fn decode(record: &[u8]) -> Result<(Entry<'_>, bool), CodecError> {
    let malformed =
        |detail: String| CodecError::Malformed { codec: CodecId::Binary, offset: 0, detail };
    let (&flags, rest) =
        record.split_first().ok_or_else(|| malformed("empty WAL record".into()))?;
    if flags & !FLAG_CLIENT_TIMESTAMP != 0 {
        return Err(malformed(format!("unknown WAL record flags {flags:#04x}")));
    }
    Ok((CodecId::Binary.codec().decode(rest)?, flags & FLAG_CLIENT_TIMESTAMP != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstore_entry::Key;

    #[test]
    fn round_trip_and_rejects() {
        let entry = Entry::new(Key::new(5, 9), "msg", Some(r#"{"a":1}"#));
        for client in [false, true] {
            let mut out = Vec::new();
            encode(&entry, client, &mut out);
            assert!(out.len() <= entry.payload_bytes() + OVERHEAD_BYTES_MAX);
            assert_eq!(decode(&out).unwrap(), (entry.clone(), client));
            let mut bad = out.clone();
            bad[0] = 0x80;
            assert!(decode(&bad).is_err());
            assert!(decode(&out[..out.len() - 1]).is_err());
        }
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn batch_records_are_the_records_of_each_entry() {
        let entries = [
            Entry::new(Key::new(5, 1), "first", None::<&str>),
            Entry::new(Key::new(3, 2), "second", Some(r#"{"b":2}"#)),
        ];
        let mut batch = BatchRecords::default();
        for round in 0..2 {
            batch.clear();
            for (i, entry) in entries.iter().enumerate() {
                batch.push(entry, i == 1);
            }
            let decoded: Vec<(Entry<'_>, bool)> =
                batch.records().into_iter().map(|r| decode(r).unwrap()).collect();
            let expected = [(entries[0].clone(), false), (entries[1].clone(), true)];
            assert_eq!(decoded, expected, "round {round}");
        }
        // A huge batch's buffer is not kept.
        let big = "x".repeat(BATCH_BUFFER_BYTES_KEPT + 1);
        batch.push(&Entry::new(Key::new(1, 3), big.as_str(), None::<&str>), false);
        batch.clear();
        assert_eq!((batch.bytes.capacity(), batch.records().len()), (0, 0));
    }
}
