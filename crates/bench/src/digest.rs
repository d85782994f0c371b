//! Verification of reads: a count and an order-sensitive digest of what a read returned,
//! compared with what it must return, so a fast wrong answer is an error, not a figure.
//!
//! The digest folds each entry's key (timestamp and `seq`), message and metadata in the order
//! they come: per entry, the CRC32C and length of the message and of the metadata (the CRC runs
//! with carry-less multiplication, so the check costs little next to the read it checks),
//! combined with the key into one 64-bit value, then one 64-bit mix of the running digest with
//! it. A missing, extra, changed or reordered entry changes the result. It is a check against
//! bugs, not against an adversary.

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
        let text =
            |s: &str| u64::from(crc_fast::crc32_iscsi(s.as_bytes())) | (s.len() as u64) << 32;
        // `1 << 63` (no text is that long) tells metadata `""` from none.
        let metadata = metadata.map_or(0, |m| text(m) ^ 1 << 63);
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
}
