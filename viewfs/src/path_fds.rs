//! `O_PATH` opens handed over as fds the host can install.
//!
//! The host gives a program a real file by installing the fd in it, and
//! cannot install an `O_PATH` fd (the kernel's fd passing refuses them:
//! the program would get `EBADF`). Programs open `O_PATH` handles to
//! change a file through `/proc/self/fd/N` (tar for every directory it
//! extracts), so this wrapper, on top of every mode, reopens such a file
//! as a plain read-only fd of the same object, and serves the ones that
//! cannot be reopened (symlinks, unreadable files) as a handle that only
//! answers `fstat`.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use viewos_core::real_file::RealFile;
use viewos_core::{Errno, FileStat, FileSystem, FsStat, Opened, SetTime};

/// Another tree, with `O_PATH` opens reopened (see the module docs).
pub struct PathFds {
    inner: Arc<dyn FileSystem>,
}

impl PathFds {
    /// `inner`, whose `O_PATH` opens are reopened.
    pub fn new(inner: Arc<dyn FileSystem>) -> PathFds {
        PathFds { inner }
    }
}

/// A real `O_PATH` fd as an fd the host can install, or a served handle.
pub fn installable(fd: OwnedFd) -> Opened {
    let again = std::fs::OpenOptions::new()
        .read(true)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    match again {
        Ok(f) => Opened::Backed(OwnedFd::from(f)),
        Err(_) => Opened::Served(Box::new(RealFile::new(File::from(fd)))),
    }
}

impl FileSystem for PathFds {
    fn open(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        match self.inner.open(p, flags, mode)? {
            Opened::Backed(fd) if flags & libc::O_PATH != 0 => Ok(installable(fd)),
            other => Ok(other),
        }
    }
    fn lstat(&self, p: &Path) -> Result<FileStat, Errno> {
        self.inner.lstat(p)
    }
    fn readlink(&self, p: &Path) -> Result<PathBuf, Errno> {
        self.inner.readlink(p)
    }
    fn access(&self, p: &Path, mode: i32) -> Result<(), Errno> {
        self.inner.access(p, mode)
    }
    fn mkdir(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        self.inner.mkdir(p, mode)
    }
    fn rmdir(&self, p: &Path) -> Result<(), Errno> {
        self.inner.rmdir(p)
    }
    fn unlink(&self, p: &Path) -> Result<(), Errno> {
        self.inner.unlink(p)
    }
    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        self.inner.rename(from, to, flags)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        self.inner.link(from, to)
    }
    fn symlink(&self, target: &Path, p: &Path) -> Result<(), Errno> {
        self.inner.symlink(target, p)
    }
    fn chmod(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        self.inner.chmod(p, mode)
    }
    fn chown(&self, p: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        self.inner.chown(p, uid, gid)
    }
    fn utimens(&self, p: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        self.inner.utimens(p, atime, mtime)
    }
    fn mknod(&self, p: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        self.inner.mknod(p, mode, rdev)
    }
    fn getxattr(&self, p: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.inner.getxattr(p, name)
    }
    fn setxattr(&self, p: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        self.inner.setxattr(p, name, value, flags)
    }
    fn listxattr(&self, p: &Path) -> Result<Vec<u8>, Errno> {
        self.inner.listxattr(p)
    }
    fn removexattr(&self, p: &Path, name: &[u8]) -> Result<(), Errno> {
        self.inner.removexattr(p, name)
    }
    fn statfs(&self, p: &Path) -> Result<FsStat, Errno> {
        self.inner.statfs(p)
    }
    fn truncate(&self, p: &Path, len: u64) -> Result<(), Errno> {
        self.inner.truncate(p, len)
    }
    fn exceptions(&self) -> Vec<std::path::PathBuf> {
        self.inner.exceptions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::move_fs::move_fs;
    use crate::testdir::TestDir;
    use std::os::unix::fs::MetadataExt;
    use viewos_core::real::RealFs;

    #[test]
    fn path_opens_become_plain_fds_of_the_same_object() {
        let t = TestDir::new("path-fds");
        t.write("src/d/f", "x");
        std::os::unix::fs::symlink("d", t.join("src/l")).unwrap();
        let fs = PathFds::new(move_fs(t.join("src"), Arc::new(RealFs)));
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        let Opened::Backed(fd) = fs.open(Path::new("/d"), flags, 0).unwrap() else {
            panic!("not a real fd");
        };
        let f = File::from(fd);
        let ino = std::fs::metadata(t.join("src/d")).unwrap().ino();
        assert_eq!(f.metadata().unwrap().ino(), ino);
        // A plain fd: the kernel lets it be read (listed) and installed.
        let flags =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd())).unwrap();
        let octal = flags
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .unwrap()
            .trim()
            .to_string();
        let bits = i32::from_str_radix(&octal, 8).unwrap();
        assert_eq!(bits & libc::O_PATH, 0);
        // A symlink cannot be reopened: it is served (fstat only).
        let o = fs
            .open(Path::new("/l"), libc::O_PATH | libc::O_NOFOLLOW, 0)
            .unwrap();
        let Opened::Served(h) = o else {
            panic!("not served")
        };
        assert!(h.stat().unwrap().is_symlink());
        // Other opens are untouched.
        assert!(matches!(
            fs.open(Path::new("/d/f"), libc::O_RDONLY, 0).unwrap(),
            Opened::Backed(_)
        ));
    }
}
