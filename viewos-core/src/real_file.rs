//! A real open file as a [`FileHandle`]: the passthrough for services
//! that serve real files themselves (a layer over them, or a listing
//! merged with names of their own).

// Directory listings use getdents64, which std does not offer.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use crate::fs::FileStat;
use crate::handle::{DirEntry, FileHandle};
use crate::Errno;

/// A real open file (or directory) served by positioned calls: what a
/// module serving real files, or a layer over them, hands the host.
pub struct RealFile {
    file: File,
    /// Listing moves the real fd's offset: one at a time.
    listing: Mutex<()>,
}

impl RealFile {
    /// Serves `file`.
    pub fn new(file: File) -> RealFile {
        RealFile {
            file,
            listing: Mutex::new(()),
        }
    }
}

impl FileHandle for RealFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        Ok(self.file.read_at(buf, offset)?)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        Ok(self.file.write_at(data, offset)?)
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        Ok(FileStat::from_metadata(&self.file.metadata()?))
    }

    fn truncate(&self, len: u64) -> Result<(), Errno> {
        Ok(self.file.set_len(len)?)
    }

    fn extent(&self) -> Option<crate::handle::Extent<'_>> {
        use std::os::fd::AsFd;
        let m = self.file.metadata().ok()?;
        if !m.is_file() {
            return None;
        }
        // SAFETY: F_GETFL on an fd we own.
        let flags = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_GETFL) };
        Some(crate::handle::Extent {
            file: self.file.as_fd(),
            start: 0,
            len: m.len(),
            writable: flags >= 0 && flags & libc::O_ACCMODE != libc::O_RDONLY,
        })
    }

    fn sync(&self, data_only: bool) -> Result<(), Errno> {
        if data_only {
            Ok(self.file.sync_data()?)
        } else {
            Ok(self.file.sync_all()?)
        }
    }

    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let _one = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        let fd = self.file.as_raw_fd();
        // SAFETY: lseek on an fd we own; the kernel validates the cookie.
        if unsafe { libc::lseek(fd, cookie as i64, libc::SEEK_SET) } < 0 {
            return Err(Errno::from(std::io::Error::last_os_error()));
        }
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: getdents64 writes at most `buf.len()` bytes into buf.
            let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                return Err(Errno::from(std::io::Error::last_os_error()));
            }
            if n == 0 {
                return Ok(());
            }
            let mut at = 0usize;
            while at + 19 <= n as usize {
                let rec = &buf[at..];
                let word =
                    |i: usize| u64::from_ne_bytes(rec[i..i + 8].try_into().unwrap_or_default());
                let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
                if reclen < 19 || at + reclen > n as usize {
                    return Err(Errno::EIO);
                }
                let name = &rec[19..reclen];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                let entry = DirEntry {
                    ino: word(0),
                    kind: rec[18],
                    name,
                    next: word(8),
                };
                if !fill(entry) {
                    return Ok(());
                }
                at += reclen;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_with_cookies_that_continue() {
        let dir = std::env::temp_dir().join(format!("real-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["a", "b", "c"] {
            std::fs::write(dir.join(n), n).unwrap();
        }
        let d = RealFile::new(File::open(&dir).unwrap());
        let mut all = Vec::new();
        d.read_dir(0, &mut |e| {
            all.push((e.name.to_vec(), e.next));
            true
        })
        .unwrap();
        assert_eq!(all.len(), 5);
        // From the second entry's cookie on: the three after it.
        let mut rest = 0;
        d.read_dir(all[1].1, &mut |_| {
            rest += 1;
            true
        })
        .unwrap();
        assert_eq!(rest, 3);
        assert!(d.stat().unwrap().is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
