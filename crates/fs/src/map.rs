//! Read-only memory maps of files that are never written again.
//!
//! A sealed table is read far more often than it is opened, and reading it through `pread`
//! copies every byte out of the page cache first: on a full scan that copy is the largest single
//! cost after the data itself. A read-only shared map lets the reader checksum and decode the
//! page cache's own pages instead.
//!
//! The trade-offs, which is why mapping is something a caller asks for, per file:
//! - The file must not shrink while it is mapped: touching a mapped page past the end of the
//!   file kills the process with `SIGBUS`. logstore maps only tables, which are written once,
//!   made durable and renamed into place before anyone opens them, and are then only ever
//!   unlinked (an unlinked file stays readable through its map). Another process truncating a
//!   live table is outside what any engine survives.
//! - A read error of the disk under a mapped page is also a `SIGBUS` rather than an `EIO`
//!   error. Callers who prefer an error for that case read with `pread`.
//! - Corruption is caught exactly as with `pread`: the bytes of the map are checksummed before
//!   use like any others.

use std::fmt;
use std::ops::Deref;

/// A read-only view of a whole sealed file, as long as the file was when it was taken: a shared
/// memory map ([`StdFs`](crate::StdFs)), or an in-memory copy for file systems that have no
/// files to map ([`FaultFs`](crate::FaultFs), so that tests run the same reading code).
pub struct ReadOnlyMap(Inner);

enum Inner {
    Mapped(memmap2::Mmap),
    Copied(Box<[u8]>),
}

impl ReadOnlyMap {
    /// Maps all of `file` read-only.
    ///
    /// The caller promises that the file is not shortened or written while the map lives (see
    /// the module docs): [`FsFile::map_read_only`](crate::FsFile::map_read_only)'s contract.
    #[allow(unsafe_code)]
    pub(crate) fn map(file: &std::fs::File) -> std::io::Result<ReadOnlyMap> {
        // SAFETY: `Mmap::map` is unsafe because the file could change or shrink under the map,
        // which the bounds and immutability of a `[u8]` do not allow for. The caller of
        // `map_read_only` guarantees the file is sealed (never written or shortened again),
        // the condition under which the mapped bytes behave as an immutable `[u8]`.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(ReadOnlyMap(Inner::Mapped(map)))
    }

    /// A copy of `bytes`.
    pub(crate) fn copy_of(bytes: &[u8]) -> ReadOnlyMap {
        ReadOnlyMap(Inner::Copied(bytes.into()))
    }

    /// Unmaps from this process the pages lying wholly inside `range` (byte offsets of the
    /// view; partial pages at either end stay, except the view's own last page when `range`
    /// reaches the end), without changing what the view reads: the
    /// next access maps them again from the page cache (or the disk). A reader that has moved
    /// past a region calls this so the pages it touched do not stay counted in the process's
    /// resident memory (a scan of a large table would otherwise add all of it). Advice only:
    /// a failure is ignored, as the kernel may ignore it. Nothing to do for a copy.
    pub fn release(&self, range: std::ops::Range<usize>) {
        let Inner::Mapped(map) = &self.0 else { return };
        let page_bytes = rustix::param::page_size();
        let start = range.start.next_multiple_of(page_bytes);
        // The map's last page is partly past the end of the file, so all of it is the view's:
        // `madvise` rounds a length up to whole pages.
        let end =
            if range.end >= map.len() { map.len() } else { range.end / page_bytes * page_bytes };
        if start < end {
            // SAFETY: `DontNeed` on a shared, read-only *file* mapping drops the process's page
            // table entries only: the next access faults the same file page back in (see
            // madvise(2): "repopulate the memory contents from the up-to-date contents of the
            // underlying mapped file"). The file is sealed (the contract of `map_read_only`),
            // so every `&[u8]` borrowed from the view, here or in another thread, keeps
            // reading exactly the bytes it read before. (The unsafety memmap2 warns of is that
            // of private and anonymous maps, which `DontNeed` zero-fills.)
            #[allow(unsafe_code)]
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }

    /// Whether the bytes are the page cache's own (a memory map) rather than a copy.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Inner::Mapped(_))
    }
}

impl Deref for ReadOnlyMap {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Inner::Mapped(map) => map,
            Inner::Copied(bytes) => bytes,
        }
    }
}

impl fmt::Debug for ReadOnlyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnlyMap")
            .field("len_bytes", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}
