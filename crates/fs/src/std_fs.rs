//! The real file system.

use crate::{FileSystem, FsFile, FsLock, OpenMode, ReadOnlyMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(File);

impl FsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn map_read_only(&self) -> io::Result<Option<ReadOnlyMap>> {
        ReadOnlyMap::map(&self.0).map(Some)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len_bytes: u64) -> io::Result<()> {
        self.0.set_len(len_bytes)
    }

    fn allocate(&self, len_bytes: u64) -> io::Result<()> {
        let len_now = self.len()?;
        if len_bytes <= len_now {
            return Ok(());
        }
        use rustix::fs::{FallocateFlags, fallocate};
        match fallocate(&self.0, FallocateFlags::empty(), len_now, len_bytes - len_now) {
            Ok(()) => Ok(()),
            // A file system without fallocate (some network and FUSE ones): a sparse extension
            // still reads as zeros; only the space reservation is lost.
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
                self.0.set_len(len_bytes)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `posix_fadvise(POSIX_FADV_DONTNEED)`: Linux starts writeback of the range's dirty pages
    /// (`WB_SYNC_NONE`, not waiting for it) and drops those of its pages that are already clean,
    /// which a log rarely reads again. (`sync_file_range` would do the first half only, but is
    /// not in rustix; the pages still being written are kept either way.)
    fn start_writeback(&self, offset: u64, len_bytes: u64) -> io::Result<()> {
        let Some(len) = std::num::NonZeroU64::new(len_bytes) else { return Ok(()) };
        use rustix::fs::{Advice, fadvise};
        match fadvise(&self.0, offset, Some(len), Advice::DontNeed) {
            Ok(()) => Ok(()),
            // A file system or kernel without it: the hint is lost, nothing else.
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug)]
struct StdLock {
    // Held open for the lock's lifetime; `flock` locks are released when it is closed.
    _file: File,
}

impl FsLock for StdLock {}

impl FileSystem for StdFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
        };
        Ok(Box::new(StdFile(options.open(path)?)))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let name = entry?.file_name();
            names.push(name.into_string().map_err(|name| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name {name:?} in {} is not UTF-8", path.display()),
                )
            })?);
        }
        names.sort();
        Ok(names)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsLock>> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |e| match e {
                rustix::io::Errno::WOULDBLOCK => io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is locked by another process", path.display()),
                ),
                e => e.into(),
            },
        )?;
        Ok(Box::new(StdLock { _file: file }))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_zero_fills_without_touching_data() {
        let dir = tempfile::tempdir().unwrap();
        let file = StdFs.open(&dir.path().join("f"), OpenMode::CreateNew).unwrap();
        file.write_all_at(b"abc", 0).unwrap();
        file.allocate(1 << 16).unwrap();
        assert_eq!(file.len().unwrap(), 1 << 16);
        let mut buf = vec![1u8; 1 << 16];
        file.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf[..3], b"abc");
        assert!(buf[3..].iter().all(|&b| b == 0));
        file.allocate(10).unwrap(); // never shrinks
        assert_eq!(file.len().unwrap(), 1 << 16);
    }

    #[test]
    fn start_writeback_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let file = StdFs.open(&dir.path().join("f"), OpenMode::CreateNew).unwrap();
        let data: Vec<u8> = (0..1u32 << 16).map(|i| i as u8).collect();
        file.write_all_at(&data, 0).unwrap();
        file.start_writeback(0, 1 << 15).unwrap();
        file.start_writeback(1 << 15, 0).unwrap(); // nothing to do
        file.sync_data().unwrap();
        file.start_writeback(0, 1 << 16).unwrap(); // clean pages may be dropped: reread
        let mut back = vec![0u8; data.len()];
        file.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn create_new_refuses_existing_and_read_past_end_is_eof() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = StdFs.open(&path, OpenMode::CreateNew).unwrap();
        file.write_all_at(b"xy", 0).unwrap();
        let err = StdFs.open(&path, OpenMode::CreateNew).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let mut buf = [0u8; 3];
        let err = file.read_exact_at(&mut buf, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let held = StdFs.lock(&path).unwrap();
        assert_eq!(StdFs.lock(&path).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(held);
        StdFs.lock(&path).unwrap();
    }

    #[test]
    fn list_dir_is_sorted_names() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "c"] {
            StdFs.open(&dir.path().join(name), OpenMode::CreateNew).unwrap();
        }
        assert_eq!(StdFs.list_dir(dir.path()).unwrap(), ["a", "b", "c"]);
    }
}
