//! Block compression: none or LZ4, chosen per table, applied per block.
//!
//! The table's [`Compression`] is recorded in its footer. Each block also records, in its index
//! entry, how *it* is stored: a block that LZ4 does not shrink by at least one eighth
//! ([`compress_block`]) is stored raw even in an LZ4 table, so the reader never pays
//! decompression for nothing.
//!
//! Decompression writes into a buffer of exactly the block's recorded raw size, which the
//! reader checks against [`ReadLimits::block_bytes_max`](crate::ReadLimits) before it allocates;
//! `lz4_flex`'s checked, safe decoder refuses input that would write past it.

use std::fmt;

/// How a table's blocks are compressed. The discriminant is the byte stored on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Compression {
    /// Blocks are stored as they are.
    #[default]
    None = 0,
    /// Blocks are LZ4-compressed (block format, `lz4_flex`), when that saves at least 1/8.
    Lz4 = 1,
}

impl Compression {
    /// Every compression, in id order.
    pub const ALL: [Compression; 2] = [Compression::None, Compression::Lz4];

    /// The id stored on disk.
    pub fn as_byte(self) -> u8 {
        self as u8
    }

    /// The compression stored as `byte`, if there is one.
    pub fn from_byte(byte: u8) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.as_byte() == byte)
    }

    /// A short lowercase name (`none`, `lz4`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Compresses `raw` as `compression` asks into `out` (cleared first) and returns how the block
/// is to be stored: `Compression::None` (and `out` left empty) when compression is off or saves
/// less than one eighth of the block.
pub(crate) fn compress_block(
    compression: Compression,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> Compression {
    out.clear();
    match compression {
        Compression::None => Compression::None,
        Compression::Lz4 => {
            out.resize(lz4_flex::block::get_maximum_output_size(raw.len()), 0);
            match lz4_flex::block::compress_into(raw, out) {
                Ok(len) if len <= raw.len() - raw.len() / 8 => {
                    out.truncate(len);
                    Compression::Lz4
                }
                // Not worth it, or (impossible with a buffer of the maximum size) no room.
                _ => {
                    out.clear();
                    Compression::None
                }
            }
        }
    }
}

/// Decompresses `stored` (an LZ4 block) into `out`, which must be exactly the raw size the
/// index records. Returns what went wrong as text for the caller's error.
pub(crate) fn decompress_lz4(stored: &[u8], out: &mut [u8]) -> Result<(), String> {
    match lz4_flex::block::decompress_into(stored, out) {
        Ok(len) if len == out.len() => Ok(()),
        Ok(len) => {
            Err(format!("LZ4 block decompresses to {len} bytes, the index records {}", out.len()))
        }
        Err(e) => Err(format!("LZ4 block does not decompress to {} bytes: {e}", out.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for c in Compression::ALL {
            assert_eq!(Compression::from_byte(c.as_byte()), Some(c));
        }
        assert_eq!(Compression::from_byte(2), None);
    }

    #[test]
    fn compressible_blocks_compress_and_round_trip() {
        let raw: Vec<u8> = b"connection accepted from 10.0.0.7 ".repeat(100);
        let mut out = Vec::new();
        assert_eq!(compress_block(Compression::Lz4, &raw, &mut out), Compression::Lz4);
        assert!(out.len() < raw.len() / 4);
        let mut back = vec![0; raw.len()];
        decompress_lz4(&out, &mut back).unwrap();
        assert_eq!(back, raw);
        // A wrong recorded size is an error, either way.
        let mut short = vec![0; raw.len() - 1];
        assert!(decompress_lz4(&out, &mut short).is_err());
        let mut long = vec![0; raw.len() + 1];
        assert!(decompress_lz4(&out, &mut long).is_err());
    }

    #[test]
    fn incompressible_blocks_stay_raw() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let raw: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut out = vec![1, 2, 3];
        assert_eq!(compress_block(Compression::Lz4, &raw, &mut out), Compression::None);
        assert!(out.is_empty());
        assert_eq!(compress_block(Compression::None, &raw, &mut out), Compression::None);
    }
}
