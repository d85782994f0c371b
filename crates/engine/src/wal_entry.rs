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
}
