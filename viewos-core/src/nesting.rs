//! Nesting: a service's own file I/O goes through the view as it was when
//! the service's file system was mounted.
//!
//! [`crate::View::mount`] hands every new mount a [`ViewIo`]: a
//! [`FileSystem`] over the mounts made before it, falling back to the real
//! file system ([`RealFs`]). A service that reads its image, or serves a
//! directory, through it can use files that exist only in the view (an
//! image stored inside another virtual mount), and never sees itself. With
//! `umview -x` the handle is the real file system alone. [`Subtree`] shows
//! the tree below one directory of such a handle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::{FileStat, FileSystem, FsStat, Opened, SetTime};
use crate::mounts::MountTable;
use crate::real::RealFs;
use crate::Errno;

/// The view as it was at some moment: its mount table then, over the real
/// file system. Paths are absolute paths of the view, already resolved
/// (the host resolves symlinks before it calls a service).
pub struct ViewIo {
    mounts: MountTable,
}

impl ViewIo {
    /// The view made of `mounts` over the real file system.
    pub fn new(mounts: MountTable) -> ViewIo {
        ViewIo { mounts }
    }

    /// The file system and path that serve `path`.
    fn route(&self, path: &Path) -> (Arc<dyn FileSystem>, PathBuf) {
        match self.mounts.lookup(path) {
            Some((m, rel)) => (m.fs.clone(), rel),
            None => (Arc::new(RealFs), path.to_path_buf()),
        }
    }

    /// Both paths in one file system, or `EXDEV`.
    fn route2(&self, a: &Path, b: &Path) -> Result<(Arc<dyn FileSystem>, PathBuf, PathBuf), Errno> {
        match (self.mounts.lookup(a), self.mounts.lookup(b)) {
            (None, None) => Ok((Arc::new(RealFs), a.to_path_buf(), b.to_path_buf())),
            (Some((ma, pa)), Some((mb, pb))) if Arc::ptr_eq(&ma.fs, &mb.fs) => {
                Ok((ma.fs.clone(), pa, pb))
            }
            _ => Err(Errno::new(libc::EXDEV)),
        }
    }
}

/// Forwards every [`FileSystem`] call of `$t` to `self.$route(path)`
/// (`self.$route2(a, b)` for two paths); `open` goes to `self.$open` when
/// given.
macro_rules! forward_fs {
    ($t:ty, $route:ident, $route2:ident) => {
        impl $t {
            fn open_routed(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
                let (fs, p) = self.$route(p)?;
                fs.open(&p, flags, mode)
            }
        }
        forward_fs!($t, $route, $route2, open_routed);
    };
    ($t:ty, $route:ident, $route2:ident, $open:ident) => {
        impl FileSystem for $t {
            fn open(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
                self.$open(p, flags, mode)
            }
            fn lstat(&self, p: &Path) -> Result<FileStat, Errno> {
                let (fs, p) = self.$route(p)?;
                fs.lstat(&p)
            }
            fn readlink(&self, p: &Path) -> Result<PathBuf, Errno> {
                let (fs, p) = self.$route(p)?;
                fs.readlink(&p)
            }
            fn access(&self, p: &Path, mode: i32) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.access(&p, mode)
            }
            fn mkdir(&self, p: &Path, mode: u32) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.mkdir(&p, mode)
            }
            fn rmdir(&self, p: &Path) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.rmdir(&p)
            }
            fn unlink(&self, p: &Path) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.unlink(&p)
            }
            fn rename(&self, a: &Path, b: &Path, flags: u32) -> Result<(), Errno> {
                let (fs, a, b) = self.$route2(a, b)?;
                fs.rename(&a, &b, flags)
            }
            fn link(&self, a: &Path, b: &Path) -> Result<(), Errno> {
                let (fs, a, b) = self.$route2(a, b)?;
                fs.link(&a, &b)
            }
            fn symlink(&self, target: &Path, p: &Path) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.symlink(target, &p)
            }
            fn chmod(&self, p: &Path, mode: u32) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.chmod(&p, mode)
            }
            fn chown(&self, p: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.chown(&p, uid, gid)
            }
            fn utimens(&self, p: &Path, a: SetTime, m: SetTime) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.utimens(&p, a, m)
            }
            fn mknod(&self, p: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.mknod(&p, mode, rdev)
            }
            fn getxattr(&self, p: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
                let (fs, p) = self.$route(p)?;
                fs.getxattr(&p, name)
            }
            fn setxattr(&self, p: &Path, name: &[u8], v: &[u8], flags: i32) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.setxattr(&p, name, v, flags)
            }
            fn listxattr(&self, p: &Path) -> Result<Vec<u8>, Errno> {
                let (fs, p) = self.$route(p)?;
                fs.listxattr(&p)
            }
            fn removexattr(&self, p: &Path, name: &[u8]) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.removexattr(&p, name)
            }
            fn statfs(&self, p: &Path) -> Result<FsStat, Errno> {
                let (fs, p) = self.$route(p)?;
                fs.statfs(&p)
            }
            fn truncate(&self, p: &Path, len: u64) -> Result<(), Errno> {
                let (fs, p) = self.$route(p)?;
                fs.truncate(&p, len)
            }
        }
    };
}

pub(crate) use forward_fs;

impl ViewIo {
    fn route_ok(&self, p: &Path) -> Result<(Arc<dyn FileSystem>, PathBuf), Errno> {
        Ok(self.route(p))
    }
}

forward_fs!(ViewIo, route_ok, route2);

/// The tree below `root` of another file system: `/x` here is `root/x`
/// there.
pub struct Subtree {
    root: PathBuf,
    io: Arc<dyn FileSystem>,
}

impl Subtree {
    /// The tree below `root` of `io`.
    pub fn new(root: impl Into<PathBuf>, io: Arc<dyn FileSystem>) -> Subtree {
        Subtree {
            root: root.into(),
            io,
        }
    }

    fn inner(&self, p: &Path) -> PathBuf {
        crate::path::join_under(&self.root, p)
    }

    fn route_in(&self, p: &Path) -> Result<(Arc<dyn FileSystem>, PathBuf), Errno> {
        Ok((self.io.clone(), self.inner(p)))
    }

    fn route2_in(
        &self,
        a: &Path,
        b: &Path,
    ) -> Result<(Arc<dyn FileSystem>, PathBuf, PathBuf), Errno> {
        Ok((self.io.clone(), self.inner(a), self.inner(b)))
    }
}

forward_fs!(Subtree, route_in, route2_in);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MountRequest;
    use crate::mounts::Mount;

    #[test]
    fn routes_through_earlier_mounts_and_falls_back_to_the_real_tree() {
        let mut t = MountTable::new();
        t.push(Mount {
            request: MountRequest {
                target: "/v".into(),
                ..MountRequest::default()
            },
            service: "s".into(),
            fs: Arc::new(Subtree::new("/usr", Arc::new(RealFs))),
        });
        let io = ViewIo::new(t);
        let real = RealFs.lstat(Path::new("/usr/bin")).unwrap();
        assert_eq!(io.lstat(Path::new("/v/bin")).unwrap().ino, real.ino);
        assert_eq!(io.lstat(Path::new("/usr/bin")).unwrap().ino, real.ino);
        assert_eq!(io.lstat(Path::new("/v/no-such")), Err(Errno::ENOENT));
        assert_eq!(
            io.rename(Path::new("/v/a"), Path::new("/tmp/b"), 0),
            Err(Errno::new(libc::EXDEV))
        );
    }
}
