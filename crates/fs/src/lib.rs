//! The file-system seam of logstore: every byte the WAL, the tables and the engine read or write
//! goes through the small [`FileSystem`] and [`FsFile`] traits, so that tests can run the real
//! code against a file system that fails on purpose.
//!
//! Two implementations:
//! - [`StdFs`]: the real thing (positional `pread`/`pwrite`, `fdatasync`, `fallocate`,
//!   directory `fsync`, `flock`, writeback started early with `posix_fadvise`, read-only
//!   `mmap` of sealed files).
//! - [`FaultFs`]: an in-memory file system that tracks which bytes are durable and can fail the
//!   Nth write or sync, run out of space, and [crash](FaultFs::crash), dropping every byte and
//!   every directory change not yet synced.
//!
//! ```
//! use logstore_fs::{FileSystem, OpenMode, StdFs};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let fs = StdFs;
//! let path = dir.path().join("data");
//! let file = fs.open(&path, OpenMode::CreateNew).unwrap();
//! file.write_all_at(b"hello", 0).unwrap();
//! file.sync_data().unwrap();
//! fs.sync_dir(dir.path()).unwrap(); // make the new name durable too
//! let mut buf = [0u8; 5];
//! file.read_exact_at(&mut buf, 0).unwrap();
//! assert_eq!(&buf, b"hello");
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod fault;
mod map;
mod std_fs;

pub use fault::{CrashMode, FaultFs};
pub use map::ReadOnlyMap;
pub use std_fs::StdFs;

use std::fmt;
use std::io;
use std::path::Path;

/// How [`FileSystem::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, read only.
    Read,
    /// An existing file, read and write.
    ReadWrite,
    /// A new file, read and write; fails with `AlreadyExists` if the name is taken.
    CreateNew,
}

/// An open file, addressed by offset (no cursor), shareable between threads.
pub trait FsFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes the file's data (and the size, if it changed) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;

    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Sets the length, cutting or zero-extending (without reserving space).
    fn set_len(&self, len_bytes: u64) -> io::Result<()>;

    /// Makes the file at least `len_bytes` long, zero-filled, with its space reserved on disk, so
    /// that later writes below `len_bytes` neither fail for space nor change the file's size.
    fn allocate(&self, len_bytes: u64) -> io::Result<()>;

    /// Asks the operating system to start writing `len_bytes` at `offset` to disk now, without
    /// waiting for it (RocksDB's `bytes_per_sync`): a later [`FsFile::sync_data`] then has
    /// little left to do, and the disk works while the caller goes on writing. A hint only: it
    /// makes nothing durable and may do nothing. The default does nothing.
    fn start_writeback(&self, offset: u64, len_bytes: u64) -> io::Result<()> {
        let _ = (offset, len_bytes);
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ends before offset {}", offset + buf.len() as u64),
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A read-only view of the whole file as it is now, for reading a file that is *sealed*:
    /// never written, extended or shortened again while the view lives (the caller's promise;
    /// see [`ReadOnlyMap`] for what breaking it costs). `StdFs` maps the file into memory, so
    /// reads cost no copy; `FaultFs` hands out a copy of the durable and written bytes.
    /// `Ok(None)` (the default) means this file system offers no such view: read with
    /// [`read_at`](FsFile::read_at).
    fn map_read_only(&self) -> io::Result<Option<ReadOnlyMap>> {
        Ok(None)
    }
}

/// A held exclusive lock on a file; released when dropped (or when the process dies).
pub trait FsLock: Send + Sync + fmt::Debug {}

/// The operations logstore needs from a file system.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens `path` as `mode` says.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>>;

    /// Creates `path` and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// The names of the entries of directory `path` (files and directories), sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Removes the file `path`. Durable once its directory is synced.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to`. Durable once the directory is synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the directory's entries (creations, renames, removals) durable: `fsync` on it.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Takes an exclusive lock on `path` (created if absent) without waiting: fails with
    /// `WouldBlock` if another holder has it. The lock dies with its holder's process.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsLock>>;

    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
}
