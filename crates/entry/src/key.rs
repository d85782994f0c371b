//! The key every entry sorts by.

use std::fmt;
use std::str::FromStr;

/// Where an entry sorts: by `timestamp_ms`, then by `seq`.
///
/// `seq` is unique within a store and increases with write order, so two entries of the same
/// millisecond keep the order they were written in, and a key names exactly one entry.
///
/// The text form is `<timestamp_ms>-<seq>` (e.g. `1700000000000-42`), the form used for resume
/// cursors; [`Key::to_be_bytes`] gives a 16-byte form whose byte order is the key order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Write order among entries of the store.
    pub seq: u64,
}

impl Key {
    /// The smallest key.
    pub const MIN: Key = Key { timestamp_ms: 0, seq: 0 };
    /// The largest key.
    pub const MAX: Key = Key { timestamp_ms: u64::MAX, seq: u64::MAX };
    /// Bytes of [`Key::to_be_bytes`].
    pub const ENCODED_BYTES: usize = 16;

    /// A key from its two parts.
    pub const fn new(timestamp_ms: u64, seq: u64) -> Self {
        Key { timestamp_ms, seq }
    }

    /// Big-endian `timestamp_ms` then `seq`: comparing these bytes compares the keys.
    pub fn to_be_bytes(self) -> [u8; Self::ENCODED_BYTES] {
        let mut out = [0u8; Self::ENCODED_BYTES];
        out[..8].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// The inverse of [`Key::to_be_bytes`].
    pub fn from_be_bytes(bytes: [u8; Self::ENCODED_BYTES]) -> Self {
        let (ts, seq) = bytes.split_at(8);
        Key {
            timestamp_ms: u64::from_be_bytes(ts.try_into().expect("8 bytes")),
            seq: u64::from_be_bytes(seq.try_into().expect("8 bytes")),
        }
    }

    /// The next key in order, or `None` after [`Key::MAX`].
    pub fn successor(self) -> Option<Key> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(Key { seq, ..self }),
            None => Some(Key { timestamp_ms: self.timestamp_ms.checked_add(1)?, seq: 0 }),
        }
    }

    /// The previous key in order, or `None` before [`Key::MIN`].
    pub fn predecessor(self) -> Option<Key> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(Key { seq, ..self }),
            None => Some(Key { timestamp_ms: self.timestamp_ms.checked_sub(1)?, seq: u64::MAX }),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.timestamp_ms, self.seq)
    }
}

/// Why a text did not parse as a [`Key`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid key {text:?}: expected <timestamp_ms>-<seq>, two unsigned 64-bit decimals")]
pub struct KeyParseError {
    /// The text that was given.
    pub text: String,
}

impl FromStr for Key {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || KeyParseError { text: text.to_owned() };
        let (ts, seq) = text.split_once('-').ok_or_else(err)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ts) || !digits(seq) {
            return Err(err());
        }
        Ok(Key {
            timestamp_ms: ts.parse().map_err(|_| err())?,
            seq: seq.parse().map_err(|_| err())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_key_order() {
        let keys = [Key::MIN, Key::new(0, 1), Key::new(1, 0), Key::new(1, u64::MAX), Key::MAX];
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_be_bytes() < pair[1].to_be_bytes());
            assert_eq!(Key::from_be_bytes(pair[0].to_be_bytes()), pair[0]);
        }
    }

    #[test]
    fn successor_and_predecessor_invert() {
        for key in [Key::new(5, 0), Key::new(5, u64::MAX), Key::new(0, 3)] {
            assert_eq!(key.successor().and_then(Key::predecessor), Some(key));
        }
        assert_eq!(Key::MAX.successor(), None);
        assert_eq!(Key::MIN.predecessor(), None);
    }

    #[test]
    fn text_round_trip_and_rejects() {
        let key = Key::new(1_700_000_000_000, 42);
        assert_eq!(key.to_string().parse::<Key>(), Ok(key));
        for bad in ["", "1", "1-", "-1", "1-2-3", "+1-2", "1- 2", "18446744073709551616-0", "a-1"] {
            assert!(bad.parse::<Key>().is_err(), "{bad:?} parsed");
        }
    }
}
