//! Reading a segment file: buffered positional reads and frame decoding.
//!
//! Both recovery (which classifies damage) and replay (which hands records back) read frames
//! through [`SegmentReader::frame`], so they can never disagree on what a valid record is.

use crate::error::{Result, io_err};
use crate::format::{
    RECORD_HEADER_BYTES, RecordHeader, RecordKind, SEGMENT_HEADER_BYTES, SEQ_MAX, SegmentHeader,
};
use logstore_fs::{FileSystem, FsFile, OpenMode};
use std::path::{Path, PathBuf};

/// Bytes read from the file at a time (more when one record needs more).
const WINDOW_BYTES: usize = 1 << 20;

/// One frame read at an offset.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A record whose frame is well formed and whose checksum matches.
    Record {
        seq: u64,
        kind: RecordKind,
        payload: &'a [u8],
        /// Offset of the next frame.
        next: u64,
    },
    /// The end of the data: an all-zero frame (preallocated space) or the end of the file.
    End,
    /// Not a valid record; says why.
    Bad { reason: String },
}

/// Positional reads over a segment through a sliding window, so scanning costs one read call
/// per megabyte rather than two per record.
pub(crate) struct SegmentReader {
    file: Box<dyn FsFile>,
    path: PathBuf,
    len_bytes: u64,
    window: Vec<u8>,
    window_start: u64,
    recovery_record_bytes_max: u32,
}

impl SegmentReader {
    /// Opens `path` for reading.
    pub(crate) fn open(
        fs: &dyn FileSystem,
        path: &Path,
        recovery_record_bytes_max: u32,
    ) -> Result<Self> {
        let file = fs.open(path, OpenMode::Read).map_err(io_err("open", path))?;
        let len_bytes = file.len().map_err(io_err("stat", path))?;
        Ok(SegmentReader {
            file,
            path: path.to_owned(),
            len_bytes,
            window: Vec::new(),
            window_start: 0,
            recovery_record_bytes_max,
        })
    }

    pub(crate) fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// Up to `n` bytes at `offset` (fewer only where the file ends).
    pub(crate) fn bytes(&mut self, offset: u64, n: usize) -> Result<&[u8]> {
        if offset >= self.len_bytes {
            return Ok(&[]);
        }
        let end = (offset + n as u64).min(self.len_bytes);
        let window_end = self.window_start + self.window.len() as u64;
        if offset < self.window_start || end > window_end {
            let want = (end - offset).max(WINDOW_BYTES as u64).min(self.len_bytes - offset);
            self.window.resize(want as usize, 0);
            self.file
                .read_exact_at(&mut self.window, offset)
                .map_err(io_err("read", &self.path))?;
            self.window_start = offset;
        }
        let start = (offset - self.window_start) as usize;
        Ok(&self.window[start..start + (end - offset) as usize])
    }

    /// The segment header, or why it is not one.
    pub(crate) fn header(&mut self) -> Result<std::result::Result<SegmentHeader, String>> {
        let bytes = self.bytes(0, SEGMENT_HEADER_BYTES as usize)?;
        let Ok(bytes) = <&[u8; SEGMENT_HEADER_BYTES as usize]>::try_from(bytes) else {
            return Ok(Err(format!(
                "file of {} bytes is shorter than a segment header",
                bytes.len()
            )));
        };
        Ok(SegmentHeader::decode(bytes))
    }

    /// The frame at `offset`.
    pub(crate) fn frame(&mut self, offset: u64) -> Result<Frame<'_>> {
        let recovery_max = self.recovery_record_bytes_max;
        let len_bytes = self.len_bytes;
        let head = self.bytes(offset, RECORD_HEADER_BYTES)?;
        if head.iter().all(|&b| b == 0) {
            // Zeros to the end of the file, or a zero frame: nothing was written here.
            return Ok(Frame::End);
        }
        if head.len() < RECORD_HEADER_BYTES {
            return Ok(Frame::Bad {
                reason: format!("file ends {} bytes into a record frame", head.len()),
            });
        }
        let header = RecordHeader::decode(head);
        let Some(kind) = header.kind() else {
            return Ok(Frame::Bad {
                reason: format!(
                    "malformed frame (kind byte {}, reserved bytes {:?})",
                    header.kind_byte, header.reserved
                ),
            });
        };
        if header.payload_len > recovery_max {
            return Ok(Frame::Bad {
                reason: format!(
                    "record length {} exceeds the recovery limit of {recovery_max} bytes",
                    header.payload_len
                ),
            });
        }
        let next = offset + RECORD_HEADER_BYTES as u64 + u64::from(header.payload_len);
        if next > len_bytes {
            return Ok(Frame::Bad {
                reason: format!(
                    "record of {} bytes runs past the end of the file ({len_bytes} bytes)",
                    header.payload_len
                ),
            });
        }
        let record = self.bytes(offset, (next - offset) as usize)?;
        if !header.checksum_matches(record) {
            return Ok(Frame::Bad {
                reason: format!("checksum mismatch in record {}", header.seq),
            });
        }
        if !(1..=SEQ_MAX).contains(&header.seq) {
            let reason =
                format!("record with sequence number {} outside 1..={SEQ_MAX}", header.seq);
            return Ok(Frame::Bad { reason });
        }
        Ok(Frame::Record { seq: header.seq, kind, payload: &record[RECORD_HEADER_BYTES..], next })
    }

    /// The offset of the first valid record at or after `from` whose sequence number is at
    /// least `seq_min`: what recovery looks for after damage, to tell a torn tail (nothing
    /// valid follows) from corruption (valid records follow). With `request_start`, only a
    /// record that can begin a request counts (a single record or a batch's first), which is
    /// where reading can resume after skipping damage.
    pub(crate) fn find_valid_after(
        &mut self,
        from: u64,
        seq_min: u64,
        request_start: bool,
    ) -> Result<Option<u64>> {
        const CHUNK_BYTES: usize = 64 << 10;
        let mut at = from;
        while at + RECORD_HEADER_BYTES as u64 <= self.len_bytes {
            let chunk = self.bytes(at, CHUNK_BYTES)?;
            let positions = chunk.len() + 1 - RECORD_HEADER_BYTES;
            // A valid frame has a kind byte in 1..=4 at +8 and three zero bytes after it:
            // rare in both zeros and text, so the full check runs on few candidates.
            let candidates: Vec<u64> = (0..positions)
                .filter(|&p| (1..=4).contains(&chunk[p + 8]) && chunk[p + 9..p + 12] == [0, 0, 0])
                .map(|p| at + p as u64)
                .collect();
            for candidate in candidates {
                if let Frame::Record { seq, kind, .. } = self.frame(candidate)? {
                    let starts = matches!(kind, RecordKind::Full | RecordKind::BatchFirst);
                    if seq >= seq_min && (starts || !request_start) {
                        return Ok(Some(candidate));
                    }
                }
            }
            at += positions as u64;
        }
        Ok(None)
    }
}
