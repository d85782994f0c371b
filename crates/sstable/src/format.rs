//! The on-disk format of a table, version 1: this module is its single source of truth.
//!
//! Every fixed-width integer is little-endian; a key is stored as its `timestamp_ms` (`u64`)
//! then its `seq` (`u64`), 16 bytes. Variable-length integers (only inside blocks) are LEB128.
//!
//! # The file
//!
//! ```text
//!  0                                        index_offset          file_bytes - 88   file_bytes
//!  +-----------+-----------+-----+-----------+---------------------+-----------------+
//!  | block 0   | block 1   | ... | block n-1 | index               | footer          |
//!  | (stored)  | (stored)  |     | (stored)  | n × 60 bytes        | 88 bytes        |
//!  +-----------+-----------+-----+-----------+---------------------+-----------------+
//! ```
//!
//! A block is stored raw or LZ4-compressed (its index entry says which). There is nothing
//! between the regions: a reader checks that the blocks tile `0..index_offset` exactly and
//! that `index_offset + index_bytes + 88 == file_bytes`.
//!
//! # Block body (decoded), `raw_bytes` long
//!
//! A block is a run of records, one per entry, in strictly increasing key order, and nothing
//! else (no trailer: its size, entry count, keys and checksum are in its index entry).
//!
//! ```text
//!  record:
//!  +-----------+-----------+---------------+---------------------------------+
//!  | ts_delta  | seq_delta | payload_bytes | payload                         |
//!  | LEB128    | LEB128    | LEB128 (≤u32) | payload_bytes bytes             |
//!  +-----------+-----------+---------------+---------------------------------+
//!
//!  ts_delta      timestamp_ms − the previous record's timestamp_ms (never negative: keys sort
//!                by timestamp first)
//!  seq_delta     zigzag(seq − the previous record's seq, as a wrapping i64)
//!  payload       the whole entry (key included) as the table's codec encodes it
//! ```
//!
//! The first record of a block is taken relative to key `0-0`, so a block decodes on its own.
//! A record is at least 3 bytes ([`RECORD_BYTES_MIN`]). The key is kept outside the payload
//! so a reader finds, compares and seeks keys without decoding entries (a merge of many
//! tables decodes only what it yields), and the codec's copy of the key is checked against it
//! when an entry is decoded. With ordinary logs the two deltas take one byte each.
//!
//! # Index entry (60 bytes, one per block, in block order)
//!
//! ```text
//!  offset size field
//!       0   16 first_key       the block's first key (timestamp_ms u64, seq u64)
//!      16   16 last_key        the block's last key
//!      32    8 offset          u64: where the block starts in the file
//!      40    4 stored_bytes    u32: bytes of the block in the file
//!      44    4 raw_bytes       u32: bytes of the decoded body (= stored_bytes when raw)
//!      48    4 entry_count     u32: records in the block, at least 1
//!      52    4 crc32c          u32: CRC32C of the block's stored bytes
//!                              [offset, offset + stored_bytes)
//!      56    1 compression     how this block is stored: 0 raw, 1 LZ4
//!      57    3 reserved        zero
//! ```
//!
//! The first and last keys make the index exact both ways: a forward range starts at the
//! first block whose `last_key >= from`, a backward one at the last block whose
//! `first_key <= to`, and neither ever reads a block holding no key of the range.
//!
//! # Footer (88 bytes, the end of the file)
//!
//! ```text
//!  offset size field
//!       0    8 index_offset    u64: where the index starts (= total stored block bytes)
//!       8    4 index_bytes     u32: block_count × 60
//!      12    4 index_crc32c    u32: CRC32C of the index bytes [index_offset, +index_bytes)
//!      16    4 block_count     u32: at least 1
//!      20    1 codec_id        the entry codec (logstore_entry::CodecId): 1 JSON, 2 CBOR, 3 binary
//!      21    1 compression_id  the table's compression: 0 none, 1 LZ4
//!      22    2 reserved        zero
//!      24    8 entry_count     u64: entries in the table, at least 1
//!      32    8 payload_bytes   u64: Σ (16 + message bytes + metadata bytes) over the entries
//!      40   16 min_key         the first key (its timestamp is the table's min timestamp)
//!      56   16 max_key         the last key (its timestamp is the table's max timestamp)
//!      72    4 format_version  u32: 1
//!      76    4 footer_crc32c   u32: CRC32C of footer bytes 0..76 (everything above)
//!      80    8 magic           89 4C 4F 47 53 53 54 0A  ("\x89LOGSST\n")
//! ```
//!
//! Keys sort by timestamp first, so a table's smallest and largest timestamps are those of its
//! `min_key` and `max_key`: the footer alone tells a reader whether to look inside at all.
//!
//! The magic starts with a byte that is not ASCII (a 7-bit channel would mangle it) and ends
//! with a newline (a line-ending translation would change it), as PNG's does.
//!
//! # What each checksum covers
//!
//! - a block's `crc32c` (in its index entry): the block's bytes as stored in the file
//!   (compressed, when the block is); verified before the block is decompressed or decoded;
//! - `index_crc32c` (in the footer): the whole index; verified before any index entry is used;
//! - `footer_crc32c`: footer bytes `0..76`, i.e. every footer field but itself and the magic
//!   (which is compared, not summed). The reader checks the magic, then the version (the one
//!   field it must read to know the layout the checksum covers), then the checksum, then uses
//!   the fields.

use crate::compression::Compression;
use logstore_entry::Key;

/// The last 8 bytes of every table.
pub const MAGIC: [u8; 8] = *b"\x89LOGSST\n";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the footer.
pub const FOOTER_BYTES: usize = 88;
/// Bytes of one index entry.
pub const INDEX_ENTRY_BYTES: usize = 60;
/// Bytes of a stored key.
pub const KEY_BYTES: usize = 16;
/// Fewest bytes a block record takes: three one-byte LEB128 integers and an empty payload.
pub const RECORD_BYTES_MIN: usize = 3;

/// Where the footer's checksum sits; it covers every byte before it.
pub(crate) const FOOTER_CRC_AT: usize = 76;
/// Where the footer's version sits.
pub(crate) const FOOTER_VERSION_AT: usize = 72;
/// Where the footer's magic sits.
pub(crate) const FOOTER_MAGIC_AT: usize = 80;

/// A little-endian reader over a fixed-size record whose length the caller checked.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields { bytes, at: 0 }
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..self.at + N]);
        self.at += N;
        out
    }

    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    fn key(&mut self) -> Key {
        Key::new(self.u64(), self.u64())
    }
}

fn put_key(out: &mut Vec<u8>, key: Key) {
    out.extend_from_slice(&key.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&key.seq.to_le_bytes());
}

/// CRC32C (Castagnoli, the iSCSI polynomial), the checksum of every region. `crc-fast` folds
/// with carry-less multiplication (AVX-512 VPCLMULQDQ where the CPU has it), several times as
/// fast on a hot block as the `crc32` instruction loop of the `crc32c` crate on this project's
/// test machine (a probe measured about 70 against 17 GB/s on 16 KiB). Reads verify every block
/// they use, so this is a large share of a scan's CPU time (see the crate docs' floor).
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(bytes)
}

/// One index entry: where a block is and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockHandle {
    pub first_key: Key,
    pub last_key: Key,
    pub offset: u64,
    pub stored_bytes: u32,
    pub raw_bytes: u32,
    pub entry_count: u32,
    pub crc32c: u32,
    /// The raw byte of the block's compression; checked by the index reader.
    pub compression: u8,
    /// Must be zero; checked by the index reader.
    pub reserved: [u8; 3],
}

impl BlockHandle {
    /// Appends the 60-byte entry.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_key(out, self.first_key);
        put_key(out, self.last_key);
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.stored_bytes.to_le_bytes());
        out.extend_from_slice(&self.raw_bytes.to_le_bytes());
        out.extend_from_slice(&self.entry_count.to_le_bytes());
        out.extend_from_slice(&self.crc32c.to_le_bytes());
        out.push(self.compression);
        out.extend_from_slice(&self.reserved);
    }

    /// Reads an entry from exactly [`INDEX_ENTRY_BYTES`] bytes (no checks of the values).
    pub fn decode(bytes: &[u8; INDEX_ENTRY_BYTES]) -> BlockHandle {
        let mut f = Fields::new(bytes);
        BlockHandle {
            first_key: f.key(),
            last_key: f.key(),
            offset: f.u64(),
            stored_bytes: f.u32(),
            raw_bytes: f.u32(),
            entry_count: f.u32(),
            crc32c: f.u32(),
            compression: f.u8(),
            reserved: f.take(),
        }
    }

    /// The block's stored compression (valid once the index reader has checked the byte).
    pub fn stored_compression(&self) -> Compression {
        Compression::from_byte(self.compression).unwrap_or(Compression::None)
    }

    /// One past the block's last stored byte.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.stored_bytes)
    }
}

/// The footer's fields (magic, version and checksum are implied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footer {
    pub index_offset: u64,
    pub index_bytes: u32,
    pub index_crc32c: u32,
    pub block_count: u32,
    pub codec_id: u8,
    pub compression_id: u8,
    pub reserved: u16,
    pub entry_count: u64,
    pub payload_bytes: u64,
    pub min_key: Key,
    pub max_key: Key,
}

/// Why 88 bytes are not a footer, before any field is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FooterError {
    Magic([u8; 8]),
    Version(u32),
    Checksum { stored: u32, computed: u32 },
}

impl Footer {
    /// The 88 bytes of the footer, checksum and magic included.
    pub fn encode(&self) -> [u8; FOOTER_BYTES] {
        let mut out = Vec::with_capacity(FOOTER_BYTES);
        out.extend_from_slice(&self.index_offset.to_le_bytes());
        out.extend_from_slice(&self.index_bytes.to_le_bytes());
        out.extend_from_slice(&self.index_crc32c.to_le_bytes());
        out.extend_from_slice(&self.block_count.to_le_bytes());
        out.push(self.codec_id);
        out.push(self.compression_id);
        out.extend_from_slice(&self.reserved.to_le_bytes());
        out.extend_from_slice(&self.entry_count.to_le_bytes());
        out.extend_from_slice(&self.payload_bytes.to_le_bytes());
        put_key(&mut out, self.min_key);
        put_key(&mut out, self.max_key);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        debug_assert_eq!(out.len(), FOOTER_CRC_AT);
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&MAGIC);
        let mut bytes = [0u8; FOOTER_BYTES];
        bytes.copy_from_slice(&out);
        bytes
    }

    /// Checks magic, version and checksum, in that order, then reads the fields (whose values
    /// the caller checks against the file).
    pub fn decode(bytes: &[u8; FOOTER_BYTES]) -> Result<Footer, FooterError> {
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&bytes[FOOTER_MAGIC_AT..]);
        if magic != MAGIC {
            return Err(FooterError::Magic(magic));
        }
        let version = Fields { bytes, at: FOOTER_VERSION_AT }.u32();
        if version != FORMAT_VERSION {
            return Err(FooterError::Version(version));
        }
        let stored = Fields { bytes, at: FOOTER_CRC_AT }.u32();
        let computed = crc32c(&bytes[..FOOTER_CRC_AT]);
        if stored != computed {
            return Err(FooterError::Checksum { stored, computed });
        }
        let mut f = Fields::new(bytes);
        Ok(Footer {
            index_offset: f.u64(),
            index_bytes: f.u32(),
            index_crc32c: f.u32(),
            block_count: f.u32(),
            codec_id: f.u8(),
            compression_id: f.u8(),
            reserved: f.u16(),
            entry_count: f.u64(),
            payload_bytes: f.u64(),
            min_key: f.key(),
            max_key: f.key(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The checksum is the standard CRC32C: it agrees with an independent implementation
        /// (the `crc32c` crate) at every length and alignment, across the boundaries where the
        /// SIMD implementation changes strategy.
        #[test]
        fn crc32c_is_the_standard_one(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20_000),
            skip in 0usize..64,
        ) {
            let bytes = &bytes[skip.min(bytes.len())..];
            proptest::prop_assert_eq!(crc32c(bytes), ::crc32c::crc32c(bytes));
        }
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283, "the catalogue's check value");
        assert_eq!(crc32c(b""), 0);
    }

    fn footer() -> Footer {
        Footer {
            index_offset: 0x0102_0304_0506_0708,
            index_bytes: 120,
            index_crc32c: 0xdead_beef,
            block_count: 2,
            codec_id: 3,
            compression_id: 1,
            reserved: 0,
            entry_count: 10,
            payload_bytes: 1234,
            min_key: Key::new(1, 2),
            max_key: Key::new(3, 4),
        }
    }

    #[test]
    fn footer_layout_is_as_documented() {
        let bytes = footer().encode();
        assert_eq!(&bytes[0..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&bytes[8..12], &120u32.to_le_bytes());
        assert_eq!(&bytes[12..16], &0xdead_beefu32.to_le_bytes());
        assert_eq!(&bytes[16..20], &2u32.to_le_bytes());
        assert_eq!(bytes[20], 3);
        assert_eq!(bytes[21], 1);
        assert_eq!(&bytes[22..24], &[0, 0]);
        assert_eq!(&bytes[24..32], &10u64.to_le_bytes());
        assert_eq!(&bytes[32..40], &1234u64.to_le_bytes());
        assert_eq!(&bytes[40..48], &1u64.to_le_bytes());
        assert_eq!(&bytes[48..56], &2u64.to_le_bytes());
        assert_eq!(&bytes[56..64], &3u64.to_le_bytes());
        assert_eq!(&bytes[64..72], &4u64.to_le_bytes());
        assert_eq!(&bytes[72..76], &1u32.to_le_bytes());
        assert_eq!(&bytes[76..80], &crc32c(&bytes[..76]).to_le_bytes());
        assert_eq!(&bytes[80..88], b"\x89LOGSST\n");
        assert_eq!(Footer::decode(&bytes), Ok(footer()));
    }

    #[test]
    fn footer_checks_magic_then_version_then_checksum() {
        let good = footer().encode();
        let mut bad = good;
        bad[87] ^= 1;
        assert!(matches!(Footer::decode(&bad), Err(FooterError::Magic(_))));
        let mut bad = good;
        bad[72] = 2;
        assert_eq!(Footer::decode(&bad), Err(FooterError::Version(2)));
        for at in (0..72).chain(76..80) {
            let mut bad = good;
            bad[at] ^= 0x10;
            assert!(matches!(Footer::decode(&bad), Err(FooterError::Checksum { .. })), "byte {at}");
        }
    }

    #[test]
    fn index_entry_layout_is_as_documented() {
        let handle = BlockHandle {
            first_key: Key::new(5, 6),
            last_key: Key::new(7, 8),
            offset: 9,
            stored_bytes: 10,
            raw_bytes: 11,
            entry_count: 12,
            crc32c: 13,
            compression: 1,
            reserved: [0; 3],
        };
        let mut out = Vec::new();
        handle.encode(&mut out);
        assert_eq!(out.len(), INDEX_ENTRY_BYTES);
        assert_eq!(&out[0..8], &5u64.to_le_bytes());
        assert_eq!(&out[24..32], &8u64.to_le_bytes());
        assert_eq!(&out[32..40], &9u64.to_le_bytes());
        assert_eq!(&out[40..44], &10u32.to_le_bytes());
        assert_eq!(&out[44..48], &11u32.to_le_bytes());
        assert_eq!(&out[48..52], &12u32.to_le_bytes());
        assert_eq!(&out[52..56], &13u32.to_le_bytes());
        assert_eq!(&out[56..60], &[1, 0, 0, 0]);
        let bytes: [u8; INDEX_ENTRY_BYTES] = out.try_into().unwrap();
        assert_eq!(BlockHandle::decode(&bytes), handle);
        assert_eq!(handle.end(), 19);
    }
}
