//! Verification of reads: a count and an order-sensitive digest of what a read returned,
//! compared with what it must return, so a fast wrong answer is an error, not a figure.
//!
//! The digest folds each entry's key (timestamp and `seq`), message and metadata in the order
//! they come: per entry, the CRC32C and length of the message and of the metadata (the CRC runs
//! with carry-less multiplication, so the check costs little next to the read it checks), then
//! a 64-bit mix of the running digest with each of them. A missing, extra, changed or
//! reordered entry changes the result. It is a check against bugs, not against an adversary.

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
        self.count += 1;
        let mut digest = mix(self.digest ^ self.count);
        digest = mix(digest ^ timestamp_ms);
        digest = mix(digest ^ seq);
        digest = mix(digest ^ text(message));
        // `1 << 63` (no text is that long) tells metadata `""` from none.
        self.digest = mix(digest ^ metadata.map_or(0, |m| text(m) ^ 1 << 63));
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
        let wrong: [Entries<'_>; 6] = [
            &[(1, 1, "a", None), (2, 3, "c", None), (1, 2, "b", Some("{}"))], // order
            &[(1, 1, "a", None), (1, 2, "B", Some("{}")), (2, 3, "c", None)], // message
            &[(1, 1, "a", None), (1, 2, "b", None), (2, 3, "c", None)],       // metadata
            &[(1, 1, "a", None), (1, 4, "b", Some("{}")), (2, 3, "c", None)], // key
            &[(1, 1, "a", None), (1, 2, "b", Some("{}"))],                    // missing
            &[(1, 1, "ab", None), (1, 2, "", Some("{}")), (2, 3, "c", None)], // shifted bytes
        ];
        for case in wrong {
            let err = digest(case).verify(&expected, "full read").unwrap_err().to_string();
            assert!(err.contains("verification failed: full read"), "{err}");
        }
    }
}
