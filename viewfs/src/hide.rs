//! `hide`: TARGET and everything below it do not exist in the view.
//!
//! Every lookup answers `ENOENT`. Making the hidden name itself again
//! (`mkdir TARGET`, `touch TARGET`) is `EACCES`: the name is taken by the
//! mount, and nothing may appear there.

use std::path::{Path, PathBuf};

use viewos_core::{Errno, FileStat, FileSystem, FsStat, Opened, SetTime};

/// The file system of a `hide` mount: nothing.
pub struct HideFs;

/// `EACCES` for making the mount's root, `ENOENT` for anything else.
fn create(p: &Path) -> Errno {
    if p == Path::new("/") {
        Errno::EACCES
    } else {
        Errno::ENOENT
    }
}

impl FileSystem for HideFs {
    fn open(&self, p: &Path, flags: i32, _mode: u32) -> Result<Opened, Errno> {
        if flags & libc::O_CREAT != 0 {
            return Err(create(p));
        }
        Err(Errno::ENOENT)
    }
    fn lstat(&self, _p: &Path) -> Result<FileStat, Errno> {
        Err(Errno::ENOENT)
    }
    fn readlink(&self, _p: &Path) -> Result<PathBuf, Errno> {
        Err(Errno::ENOENT)
    }
    fn access(&self, _p: &Path, _mode: i32) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn mkdir(&self, p: &Path, _mode: u32) -> Result<(), Errno> {
        Err(create(p))
    }
    fn rmdir(&self, _p: &Path) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn unlink(&self, _p: &Path) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn rename(&self, _from: &Path, _to: &Path, _flags: u32) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn link(&self, _from: &Path, _to: &Path) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn symlink(&self, _target: &Path, p: &Path) -> Result<(), Errno> {
        Err(create(p))
    }
    fn chmod(&self, _p: &Path, _mode: u32) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn chown(&self, _p: &Path, _uid: Option<u32>, _gid: Option<u32>) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn utimens(&self, _p: &Path, _a: SetTime, _m: SetTime) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn mknod(&self, p: &Path, _mode: u32, _rdev: u64) -> Result<(), Errno> {
        Err(create(p))
    }
    fn getxattr(&self, _p: &Path, _name: &[u8]) -> Result<Vec<u8>, Errno> {
        Err(Errno::ENOENT)
    }
    fn setxattr(&self, _p: &Path, _n: &[u8], _v: &[u8], _f: i32) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn listxattr(&self, _p: &Path) -> Result<Vec<u8>, Errno> {
        Err(Errno::ENOENT)
    }
    fn removexattr(&self, _p: &Path, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
    fn statfs(&self, _p: &Path) -> Result<FsStat, Errno> {
        Err(Errno::ENOENT)
    }
    fn truncate(&self, _p: &Path, _len: u64) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_exists_and_nothing_can_be_made() {
        let h = HideFs;
        assert_eq!(h.lstat(Path::new("/")), Err(Errno::ENOENT));
        assert_eq!(h.lstat(Path::new("/a/b")), Err(Errno::ENOENT));
        assert_eq!(h.access(Path::new("/"), 0), Err(Errno::ENOENT));
        assert_eq!(
            h.open(Path::new("/x"), libc::O_RDONLY, 0).err(),
            Some(Errno::ENOENT)
        );
        assert_eq!(h.mkdir(Path::new("/"), 0o755), Err(Errno::EACCES));
        assert_eq!(h.mkdir(Path::new("/d"), 0o755), Err(Errno::ENOENT));
        assert_eq!(
            h.open(Path::new("/"), libc::O_CREAT | libc::O_WRONLY, 0o644)
                .err(),
            Some(Errno::EACCES)
        );
        assert_eq!(h.unlink(Path::new("/f")), Err(Errno::ENOENT));
    }
}
