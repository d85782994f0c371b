//! Reading records back, in order, from disk.

use crate::error::{Result, WalError};
use crate::format::SEGMENT_HEADER_BYTES;
use crate::recovery::SegmentState;
use crate::segment::{Frame, SegmentReader};
use logstore_fs::FileSystem;
use std::collections::VecDeque;
use std::sync::Arc;

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// The bytes appended.
    pub payload: Vec<u8>,
}

/// An iterator over records in sequence order, from [`Wal::replay`](crate::Wal::replay).
///
/// It reads each segment through a 1 MiB window, verifies every checksum again, and stops at
/// the log's end as of the call. Damage found now that recovery did not see (the disk changed
/// since open) is an error naming file and offset; the iterator ends after an error.
pub struct Replay {
    fs: Arc<dyn FileSystem>,
    segments: VecDeque<SegmentState>,
    from_seq: u64,
    seq_end: u64,
    recovery_record_bytes_max: u32,
    current: Option<Current>,
    failed: bool,
}

struct Current {
    reader: SegmentReader,
    segment: SegmentState,
    offset: u64,
}

impl Replay {
    pub(crate) fn new(
        fs: Arc<dyn FileSystem>,
        segments: Vec<SegmentState>,
        from_seq: u64,
        seq_end: u64,
        recovery_record_bytes_max: u32,
    ) -> Self {
        Replay {
            fs,
            segments: segments.into(),
            from_seq,
            seq_end,
            recovery_record_bytes_max,
            current: None,
            failed: false,
        }
    }

    fn step(&mut self) -> Result<Option<Record>> {
        loop {
            let current = match &mut self.current {
                Some(current) => current,
                None => {
                    let Some(segment) = self.segments.pop_front() else { return Ok(None) };
                    let reader = SegmentReader::open(
                        &*self.fs,
                        &segment.path,
                        self.recovery_record_bytes_max,
                    )?;
                    self.current.insert(Current { reader, segment, offset: SEGMENT_HEADER_BYTES })
                }
            };
            // Skipped ranges may follow one another: apply them all.
            while let Some(&(_, skip_end)) =
                current.segment.skips.iter().find(|(start, _)| *start == current.offset)
            {
                current.offset = skip_end;
            }
            if current.offset >= current.segment.valid_end {
                self.current = None;
                continue;
            }
            let offset = current.offset;
            let damaged = |reason: String| WalError::Corruption {
                path: current.segment.path.clone(),
                offset,
                reason: format!(
                    "{reason} (found on replay; it was intact when the log was opened)"
                ),
            };
            match current.reader.frame(offset)? {
                Frame::Record { seq, payload, next, .. } => {
                    if seq >= self.seq_end {
                        return Ok(None);
                    }
                    current.offset = next;
                    if seq >= self.from_seq {
                        return Ok(Some(Record { seq, payload: payload.to_vec() }));
                    }
                }
                Frame::End => return Err(damaged("zeroed bytes where records were".into())),
                Frame::Bad { reason } => return Err(damaged(reason)),
            }
        }
    }
}

impl Iterator for Replay {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.step().transpose();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}
