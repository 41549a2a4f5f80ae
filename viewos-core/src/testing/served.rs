//! `ServedFs`: another file system with every open file served through a
//! [`FileHandle`] instead of handed over, the reference for hosts' served
//! fds.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::fs::{FileStat, FileSystem, FsStat, Opened, SetTime};
use crate::handle::{DirEntry, FileHandle};
use crate::nesting::forward_fs;
use crate::Errno;

/// Wraps a file system whose opens give real files ([`Opened::Backed`]) and
/// serves each of them itself: reads, writes, listings and status go
/// through [`FileHandle`] calls, so a view shows exactly the same files as
/// with the wrapped file system, by the other path.
pub struct ServedFs {
    inner: Arc<dyn FileSystem>,
}

impl ServedFs {
    /// Serves the files of `inner`.
    pub fn new(inner: Arc<dyn FileSystem>) -> ServedFs {
        ServedFs { inner }
    }

    fn route(&self, p: &Path) -> Result<(Arc<dyn FileSystem>, PathBuf), Errno> {
        Ok((self.inner.clone(), p.to_path_buf()))
    }

    fn route2(&self, a: &Path, b: &Path) -> Result<(Arc<dyn FileSystem>, PathBuf, PathBuf), Errno> {
        Ok((self.inner.clone(), a.to_path_buf(), b.to_path_buf()))
    }

    fn serve(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        match self.inner.open(p, flags, mode)? {
            Opened::Backed(fd) => Ok(Opened::Served(Box::new(RealHandle {
                file: File::from(fd),
                listing: Mutex::new(()),
            }))),
            other => Ok(other),
        }
    }
}

forward_fs!(ServedFs, route, route2, serve);

/// A real open file, served by positioned calls.
struct RealHandle {
    file: File,
    /// Listing moves the real fd's offset: one at a time.
    listing: Mutex<()>,
}

impl FileHandle for RealHandle {
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
    use crate::real::RealFs;

    #[test]
    fn serves_real_files_and_listings() {
        let dir = std::env::temp_dir().join(format!("served-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), b"hello").unwrap();
        std::fs::write(dir.join("b"), b"").unwrap();
        let fs = ServedFs::new(Arc::new(RealFs));
        let Opened::Served(h) = fs.open(&dir.join("a"), libc::O_RDWR, 0).unwrap() else {
            panic!("not served");
        };
        let mut buf = [0u8; 16];
        assert_eq!(h.read(1, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        assert_eq!(h.write(5, b"!").unwrap(), 1);
        assert_eq!(h.stat().unwrap().size, 6);
        let Opened::Served(d) = fs
            .open(&dir, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .unwrap()
        else {
            panic!("not served");
        };
        let mut names = Vec::new();
        d.read_dir(0, &mut |e| {
            names.push(String::from_utf8_lossy(e.name).into_owned());
            true
        })
        .unwrap();
        names.sort();
        assert_eq!(names, [".", "..", "a", "b"]);
        // A cookie continues where a full buffer stopped.
        let mut first = None;
        d.read_dir(0, &mut |e| {
            first = Some(e.next);
            false
        })
        .unwrap();
        let mut rest = 0;
        d.read_dir(first.unwrap(), &mut |_| {
            rest += 1;
            true
        })
        .unwrap();
        // The refused entry was not taken: the three others follow it.
        assert_eq!(rest, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
