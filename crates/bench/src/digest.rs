//! Verification of reads: a count and an order-sensitive digest of what a read returned,
//! compared with what it must return, so a fast wrong answer is an error, not a figure.
//!
//! The digest folds each entry's key (timestamp and `seq`), message and metadata in the order
//! they come: per entry, a 64-bit fold of every byte and the length of the message and of the
//! metadata ([`fold_text`]), combined with the key into one 64-bit value, then one 64-bit mix of
//! the running digest with it. A missing, extra, changed or reordered entry changes the result.
//! It is a check against bugs, not against an adversary.
//!
//! The fold is a sum of 8-byte words, not a checksum, because the check runs inside every timed
//! read and must cost little next to the read it checks: on the engine's 100k-entry full read
//! (550 bytes of text per entry) a CRC32C of each text by `crc-fast` cost 0.085 µs per entry,
//! 40% of the whole figure, while this fold costs about 0.04 (the engine's own read is 0.13-0.15
//! here). Reading every byte is most of either's cost: the texts come straight from the page
//! cache.

use anyhow::{Result, bail};

/// A running count and digest of entries, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Digest {
    /// Entries folded in.
    pub count: u64,
    /// The digest of their keys and text, in order.
    pub digest: u64,
}

impl Digest {
    /// Folds in the next entry.
    #[inline]
    pub fn add(&mut self, timestamp_ms: u64, seq: u64, message: &str, metadata: Option<&str>) {
        let text = |s: &str| fold_text(s.as_bytes());
        // Tells metadata `""` from none: the empty text folds to 0, which is what none adds.
        let metadata = metadata.map_or(0, |m| text(m) ^ 0x5555_5555_5555_5555);
        // One 64-bit value per entry (odd multipliers, so a change in any one field changes
        // it), mixed into the running digest: the mix makes the result depend on the order.
        let entry = timestamp_ms
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(seq.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
            .wrapping_add(text(message).wrapping_mul(0x1656_67B1_9E37_79F9))
            .wrapping_add(metadata.wrapping_mul(0x85EB_CA77_C2B2_AE63));
        self.count += 1;
        self.digest = mix(self.digest ^ entry ^ self.count);
    }

    /// Checks that `self` (what a read returned) is `expected`; the error names the read.
    pub fn verify(&self, expected: &Digest, what: &str) -> Result<()> {
        if self.count != expected.count {
            bail!(
                "verification failed: {what} returned {} entries, expected {}",
                self.count,
                expected.count
            );
        }
        if self.digest != expected.digest {
            bail!(
                "verification failed: {what} returned the right count ({}) but the wrong \
                 entries or order (digest {:016x}, expected {:016x})",
                self.count,
                self.digest,
                expected.digest
            );
        }
        Ok(())
    }
}

/// Folds every byte of `text`, and its length, into 64 bits: four lanes of its 8-byte
/// little-endian words (zero-padded at the end), each lane rotated by 7 bits before every
/// addition so that a word's place counts too, then each lane multiplied by its own odd
/// constant, the four combined with the length and mixed. A change of any one byte always
/// changes the result (every step is a bijection of the changed lane), and so does one of the
/// length alone; a move of bytes almost always does (a word of one repeated byte moved by a
/// multiple of 8 chunks in its lane does not: its rotation is then whole bytes), and so do
/// changes in several lanes at once, whose differences after the multiplications would have to
/// cancel exactly. The loop is plain additions and rotations, which the compiler vectorises.
#[inline]
pub fn fold_text(text: &[u8]) -> u64 {
    const LANES: usize = 4;
    const CHUNK_BYTES: usize = LANES * 8;
    let word = |bytes: &[u8], lane: usize| {
        u64::from_le_bytes(bytes[lane * 8..lane * 8 + 8].try_into().expect("8 bytes"))
    };
    let mut lanes = [0u64; LANES];
    let chunks = text.chunks_exact(CHUNK_BYTES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, sum) in lanes.iter_mut().enumerate() {
            *sum = sum.rotate_left(7).wrapping_add(word(chunk, lane));
        }
    }
    let mut last = [0u8; CHUNK_BYTES];
    last[..rest.len()].copy_from_slice(rest);
    for (lane, sum) in lanes.iter_mut().enumerate() {
        *sum = sum.rotate_left(7).wrapping_add(word(&last, lane));
    }
    // Each lane multiplied by its own odd constant (a bijection, and not linear in XOR), the
    // four in parallel, then combined with the length and mixed once.
    const LANE_MULTIPLIERS: [u64; LANES] = [
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0x85EB_CA77_C2B2_AE63,
        0x27D4_EB2F_1656_67C5,
    ];
    let lane = |i: usize| lanes[i].wrapping_mul(LANE_MULTIPLIERS[i]);
    mix(lane(0)
        ^ lane(1).rotate_left(16)
        ^ lane(2).rotate_left(32)
        ^ lane(3).rotate_left(48)
        ^ (text.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// SplitMix64's finaliser: a bijective 64-bit mix.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Entries<'a> = &'a [(u64, u64, &'a str, Option<&'a str>)];

    fn digest(entries: Entries<'_>) -> Digest {
        let mut d = Digest::default();
        for &(t, s, m, meta) in entries {
            d.add(t, s, m, meta);
        }
        d
    }

    #[test]
    fn any_difference_fails_verification() {
        let good = [(1, 1, "a", None), (1, 2, "b", Some("{}")), (2, 3, "c", None)];
        let expected = digest(&good);
        assert!(digest(&good).verify(&expected, "read").is_ok());
        let wrong: [Entries<'_>; 8] = [
            &[(1, 1, "a", None), (2, 3, "c", None), (1, 2, "b", Some("{}"))], // order
            &[(1, 1, "a", None), (1, 2, "B", Some("{}")), (2, 3, "c", None)], // message
            &[(1, 1, "a", None), (1, 2, "b", None), (2, 3, "c", None)],       // metadata
            &[(1, 1, "a", None), (1, 4, "b", Some("{}")), (2, 3, "c", None)], // key
            &[(1, 1, "a", None), (1, 2, "b", Some("{}"))],                    // missing
            &[(1, 1, "ab", None), (1, 2, "", Some("{}")), (2, 3, "c", None)], // shifted bytes
            &[(1, 1, "a", Some("")), (1, 2, "b", Some("{}")), (2, 3, "c", None)], // "" for none
            &[(1, 1, "a", None), (2, 1, "b", Some("{}")), (2, 3, "c", None)], // ts for seq
        ];
        for case in wrong {
            let err = digest(case).verify(&expected, "full read").unwrap_err().to_string();
            assert!(err.contains("verification failed: full read"), "{err}");
        }
    }

    #[test]
    fn the_fold_sees_every_byte_its_place_and_the_length() {
        let text: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let base = fold_text(&text);
        // Any one byte changed, at every place (chunks, the zero-padded tail, each lane).
        for at in 0..text.len() {
            for flip in [1u8, 0x80, 0xFF] {
                let mut changed = text.clone();
                changed[at] ^= flip;
                assert_ne!(fold_text(&changed), base, "byte {at} ^ {flip:#x}");
            }
        }
        // Two 32-byte chunks swapped, a word moved to another lane, bytes shifted.
        let mut swapped = text.clone();
        swapped[..64].rotate_left(32);
        assert_ne!(fold_text(&swapped), base);
        let mut lane = text.clone();
        lane[..16].rotate_left(8);
        assert_ne!(fold_text(&lane), base);
        assert_ne!(fold_text(&text[1..]), fold_text(&text[..text.len() - 1]));
        // Words of one repeated byte swapped (lane rotations of whole bytes would not tell).
        assert_ne!(fold_text(b"aaaaaaaabbbbbbbb"), fold_text(b"bbbbbbbbaaaaaaaa"));
        // Short texts: the same bit flipped in two lanes does not cancel out.
        assert_ne!(fold_text(br#"{"k":"v1","x":2}"#), fold_text(br#"{"j":"v1#,"x":2}"#));
        // Trailing zeros are not padding.
        let mut padded = text.clone();
        padded.push(0);
        assert_ne!(fold_text(&padded), base);
        assert_ne!(fold_text(b""), fold_text(b"\0"));
    }
}
