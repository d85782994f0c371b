//! LEB128 variable-length unsigned integers, as used in block record headers.
//!
//! Seven bits per byte, least significant group first, high bit set on every byte but the last:
//! `0..=127` takes 1 byte, `128..=16_383` takes 2, a `u64` at most [`U64_BYTES_MAX`].

/// Longest encoding of a `u64`.
pub(crate) const U64_BYTES_MAX: usize = 10;

/// Appends `value` to `out`.
pub(crate) fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes [`put_u64`] appends for `value`.
pub(crate) fn encoded_bytes(value: u64) -> usize {
    // One byte per started group of 7 significant bits, at least one.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a value at `*pos`, advancing `*pos` past it; `None` if `bytes` ends first or the
/// encoding is longer than a `u64` can be (more than 10 bytes, or bits past 64 set).
#[inline(always)]
pub(crate) fn get_u64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    // One-byte values (most key deltas) take the inlined path; the rest a call.
    match bytes.get(*pos) {
        Some(&first) if first < 0x80 => {
            *pos += 1;
            Some(u64::from(first))
        }
        _ => get_u64_multi(bytes, pos),
    }
}

/// [`get_u64`] for values of two bytes or more (or no bytes at all).
#[inline(never)]
fn get_u64_multi(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *bytes.get(*pos)?;
    let mut value = u64::from(first & 0x7f);
    for i in 1..U64_BYTES_MAX {
        let byte = *bytes.get(*pos + i)?;
        let shift = 7 * i as u32;
        if i == U64_BYTES_MAX - 1 && byte > 1 {
            return None; // the 10th byte holds bit 63 only
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            *pos += i + 1;
            return Some(value);
        }
    }
    None
}

/// Maps a signed difference to an unsigned one with small magnitudes small (zigzag).
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (u64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put_u64(&mut out, value);
            assert_eq!(out, bytes, "{value}");
            assert_eq!(encoded_bytes(value), bytes.len(), "{value}");
            let mut pos = 0;
            assert_eq!(get_u64(bytes, &mut pos), Some(value));
            assert_eq!(pos, bytes.len());
        }
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        let mut pos = 0;
        assert_eq!(get_u64(&[], &mut pos), None);
        assert_eq!(get_u64(&[0x80], &mut pos), None);
        // 10th byte with a bit past 63.
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(get_u64(&overflow, &mut pos), None);
        // 11 bytes.
        let long = [0x80; 11];
        assert_eq!(get_u64(&long, &mut pos), None);
        assert_eq!(pos, 0, "a failed read does not move the position");
    }

    proptest! {
        #[test]
        fn round_trips(value: u64, lead in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut out = lead.clone();
            put_u64(&mut out, value);
            prop_assert_eq!(out.len() - lead.len(), encoded_bytes(value));
            let mut pos = lead.len();
            prop_assert_eq!(get_u64(&out, &mut pos), Some(value));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn zigzag_round_trips(value: i64) {
            prop_assert_eq!(unzigzag(zigzag(value)), value);
            prop_assert!(zigzag(value) <= value.unsigned_abs().saturating_mul(2));
        }
    }
}
