//! Permission redefinition (`mode=`, `uid=`, `gid=`, and per path with
//! `rules=FILE`, see [`crate::rules`]): what `stat` reports and what
//! access checks see, over any mode's tree.
//!
//! Every status is rewritten: `mode=` replaces the permission bits of
//! every file but symlinks (directories also get `x` where `r` is given,
//! so `mode=0444` gives a readable tree), `uid=`/`gid=` the owner and
//! group. Calls are then checked against the rewritten status as the
//! kernel checks real files (search permission on the way, read/write on
//! open, write on the parent to create or remove, ownership to chmod), and
//! only then made on the tree below. Files are served
//! ([`viewos_core::Opened::Served`]) so that `fstat` on an open file
//! reports the rewritten status too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use viewos_core::{DirEntry, Errno, FileHandle, FileStat, FileSystem, FsStat, Opened, SetTime};

use crate::access::{check, Creds};
use crate::layer::{into_handle, parent_of};
use crate::options::Perm;
use crate::rules::Rules;

/// The permission bits `perm` gives a file of type `file_type`.
fn bits_for(mode: u32, file_type: u32) -> u32 {
    if file_type == libc::S_IFDIR {
        mode | ((mode & 0o444) >> 2)
    } else {
        mode
    }
}

/// `st` as `perm` redefines it.
pub fn rewrite(perm: &Perm, mut st: FileStat) -> FileStat {
    if let Some(mode) = perm.mode {
        if !st.is_symlink() {
            st.mode = st.file_type() | bits_for(mode, st.file_type());
        }
    }
    if let Some(uid) = perm.uid {
        st.uid = uid;
    }
    if let Some(gid) = perm.gid {
        st.gid = gid;
    }
    st
}

/// Another tree with permissions redefined (see the module docs).
pub struct PermFs {
    inner: Arc<dyn FileSystem>,
    rules: Rules,
    creds: Option<Creds>,
}

impl PermFs {
    /// `inner` with `rules` applied, checked for a user with `creds`
    /// (`None`: for the program making each call, [`Creds::caller`]).
    pub fn new(inner: Arc<dyn FileSystem>, rules: Rules, creds: Option<Creds>) -> PermFs {
        PermFs {
            inner,
            rules,
            creds,
        }
    }

    /// Whose permissions are checked.
    fn creds(&self) -> Creds {
        self.creds.clone().unwrap_or_else(Creds::caller)
    }

    fn stat(&self, p: &Path) -> Result<FileStat, Errno> {
        Ok(rewrite(&self.rules.at(p), self.inner.lstat(p)?))
    }

    /// Search permission on every directory from the root to `p`'s parent.
    fn search(&self, p: &Path) -> Result<(), Errno> {
        let creds = self.creds();
        for dir in p.ancestors().skip(1) {
            check(&self.stat(dir)?, &creds, libc::X_OK)?;
        }
        Ok(())
    }

    fn may(&self, p: &Path, mode: i32) -> Result<(), Errno> {
        self.search(p)?;
        check(&self.stat(p)?, &self.creds(), mode)
    }

    /// What creating or removing the name `p` needs.
    fn may_change_parent(&self, p: &Path) -> Result<(), Errno> {
        self.may(parent_of(p), libc::W_OK | libc::X_OK)
    }

    fn must_own(&self, p: &Path) -> Result<FileStat, Errno> {
        self.search(p)?;
        let st = self.stat(p)?;
        if self.creds().owns(st.uid) {
            Ok(st)
        } else {
            Err(Errno::EPERM)
        }
    }
}

impl FileSystem for PermFs {
    fn open(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        self.search(p)?;
        match self.inner.lstat(p) {
            Ok(st) if flags & libc::O_PATH == 0 => {
                let st = rewrite(&self.rules.at(p), st);
                let writes =
                    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
                let mut want = if writes { libc::W_OK } else { 0 };
                if flags & libc::O_ACCMODE != libc::O_WRONLY {
                    want |= libc::R_OK;
                }
                check(&st, &self.creds(), want)?;
            }
            Ok(_) => {}
            Err(e) if e == Errno::ENOENT && flags & libc::O_CREAT != 0 => {
                self.may_change_parent(p)?;
            }
            Err(e) => return Err(e),
        }
        let handle = into_handle(self.inner.open(p, flags, mode)?)?;
        Ok(Opened::Served(Box::new(PermFile {
            inner: handle,
            perm: self.rules.at(p),
        })))
    }

    fn lstat(&self, p: &Path) -> Result<FileStat, Errno> {
        self.search(p)?;
        self.stat(p)
    }

    fn readlink(&self, p: &Path) -> Result<PathBuf, Errno> {
        self.search(p)?;
        self.inner.readlink(p)
    }

    fn access(&self, p: &Path, mode: i32) -> Result<(), Errno> {
        self.may(p, mode)
    }

    fn mkdir(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        self.may_change_parent(p)?;
        self.inner.mkdir(p, mode)
    }

    fn rmdir(&self, p: &Path) -> Result<(), Errno> {
        self.may_change_parent(p)?;
        self.inner.rmdir(p)
    }

    fn unlink(&self, p: &Path) -> Result<(), Errno> {
        self.may_change_parent(p)?;
        self.inner.unlink(p)
    }

    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        self.may_change_parent(from)?;
        self.may_change_parent(to)?;
        self.inner.rename(from, to, flags)
    }

    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        self.search(from)?;
        self.may_change_parent(to)?;
        self.inner.link(from, to)
    }

    fn symlink(&self, target: &Path, p: &Path) -> Result<(), Errno> {
        self.may_change_parent(p)?;
        self.inner.symlink(target, p)
    }

    fn chmod(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        self.must_own(p)?;
        self.inner.chmod(p, mode)
    }

    fn chown(&self, p: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let st = self.must_own(p)?;
        let creds = self.creds();
        if !creds.is_root() {
            // A user may only give a file to one of their own groups.
            let uid_ok = uid.map_or(true, |u| u == st.uid);
            let gid_ok = gid.map_or(true, |g| creds.in_group(g));
            if !uid_ok || !gid_ok {
                return Err(Errno::EPERM);
            }
        }
        self.inner.chown(p, uid, gid)
    }

    fn utimens(&self, p: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        let explicit = |t: SetTime| matches!(t, SetTime::At(_));
        if explicit(atime) || explicit(mtime) {
            self.must_own(p)?;
        } else if self.must_own(p).is_err() {
            // "Now" only needs write permission.
            self.may(p, libc::W_OK)?;
        }
        self.inner.utimens(p, atime, mtime)
    }

    fn mknod(&self, p: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        self.may_change_parent(p)?;
        self.inner.mknod(p, mode, rdev)
    }

    fn getxattr(&self, p: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.search(p)?;
        self.inner.getxattr(p, name)
    }

    fn setxattr(&self, p: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        self.may(p, libc::W_OK)?;
        self.inner.setxattr(p, name, value, flags)
    }

    fn listxattr(&self, p: &Path) -> Result<Vec<u8>, Errno> {
        self.search(p)?;
        self.inner.listxattr(p)
    }

    fn removexattr(&self, p: &Path, name: &[u8]) -> Result<(), Errno> {
        self.may(p, libc::W_OK)?;
        self.inner.removexattr(p, name)
    }

    fn statfs(&self, p: &Path) -> Result<FsStat, Errno> {
        self.inner.statfs(p)
    }

    fn truncate(&self, p: &Path, len: u64) -> Result<(), Errno> {
        self.may(p, libc::W_OK)?;
        self.inner.truncate(p, len)
    }
}

/// An open file whose status is rewritten; everything else is the file's.
pub struct PermFile {
    inner: Box<dyn FileHandle>,
    perm: Perm,
}

impl FileHandle for PermFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.inner.read(offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.inner.write(offset, data)
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        Ok(rewrite(&self.perm, self.inner.stat()?))
    }

    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        self.inner.read_dir(cookie, fill)
    }

    fn truncate(&self, len: u64) -> Result<(), Errno> {
        self.inner.truncate(len)
    }

    fn sync(&self, data_only: bool) -> Result<(), Errno> {
        self.inner.sync(data_only)
    }

    fn seekable(&self) -> bool {
        self.inner.seekable()
    }

    fn extent(&self) -> Option<viewos_core::handle::Extent<'_>> {
        self.inner.extent()
    }

    fn ioctl(&self, request: u32, arg: u64, data: &mut [u8]) -> Result<i64, Errno> {
        self.inner.ioctl(request, arg, data)
    }

    fn ioctl_arg(&self, request: u32) -> Option<viewos_core::IoctlArg> {
        self.inner.ioctl_arg(request)
    }

    fn ioctl_with_memory(
        &self,
        request: u32,
        arg: u64,
        data: &mut [u8],
        memory: &dyn viewos_core::hook::CallerMemory,
    ) -> Result<i64, Errno> {
        self.inner.ioctl_with_memory(request, arg, data, memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::move_fs::move_fs;
    use crate::testdir::TestDir;
    use viewos_core::real::RealFs;

    fn user() -> Creds {
        Creds {
            uid: 4242,
            gid: 4242,
            groups: vec![],
        }
    }

    fn perm(mode: Option<u32>, uid: Option<u32>) -> Rules {
        let base = Perm {
            mode,
            uid,
            gid: Some(77),
        };
        Rules::parse(base, "").unwrap()
    }

    #[test]
    fn status_is_rewritten_for_paths_and_open_files() {
        let t = TestDir::new("perm-stat");
        t.write("src/f", "data");
        t.mkdir("src/d");
        std::os::unix::fs::symlink("f", t.join("src/l")).unwrap();
        let below = move_fs(t.join("src"), Arc::new(RealFs));
        let fs = PermFs::new(below, perm(Some(0o444), Some(1234)), Some(Creds::default()));
        let f = fs.lstat(Path::new("/f")).unwrap();
        assert_eq!(f.mode, libc::S_IFREG | 0o444);
        assert_eq!((f.uid, f.gid), (1234, 77));
        assert_eq!(
            fs.lstat(Path::new("/d")).unwrap().mode,
            libc::S_IFDIR | 0o555
        );
        assert_eq!(fs.lstat(Path::new("/l")).unwrap().mode & 0o777, 0o777);
        let Opened::Served(h) = fs.open(Path::new("/f"), libc::O_RDONLY, 0).unwrap() else {
            panic!("not served");
        };
        assert_eq!(h.stat().unwrap().mode, libc::S_IFREG | 0o444);
        let mut buf = [0u8; 8];
        assert_eq!(h.read(0, &mut buf).unwrap(), 4);
        // Root reads and writes whatever the bits say, but executes only
        // what some x bit allows.
        assert_eq!(fs.access(Path::new("/f"), libc::W_OK), Ok(()));
        assert_eq!(fs.access(Path::new("/f"), libc::X_OK), Err(Errno::EACCES));
        assert_eq!(fs.access(Path::new("/d"), libc::X_OK), Ok(()));
    }

    #[test]
    fn a_user_is_checked_against_the_rewritten_status() {
        let t = TestDir::new("perm-user");
        t.write("src/f", "data");
        t.mkdir("src/d");
        let below = move_fs(t.join("src"), Arc::new(RealFs));
        // Everything owned by someone else, read-only for the others.
        let fs = PermFs::new(below.clone(), perm(Some(0o644), Some(1)), Some(user()));
        assert_eq!(fs.access(Path::new("/f"), libc::R_OK), Ok(()));
        assert_eq!(fs.access(Path::new("/f"), libc::W_OK), Err(Errno::EACCES));
        assert_eq!(
            fs.open(Path::new("/f"), libc::O_WRONLY, 0).err(),
            Some(Errno::EACCES)
        );
        assert!(fs.open(Path::new("/f"), libc::O_RDONLY, 0).is_ok());
        assert_eq!(fs.unlink(Path::new("/f")), Err(Errno::EACCES));
        assert_eq!(fs.mkdir(Path::new("/d/x"), 0o755), Err(Errno::EACCES));
        assert_eq!(fs.chmod(Path::new("/f"), 0o600), Err(Errno::EPERM));
        assert!(t.join("src/f").exists());
        // Owned by the user: writable, and chmod is theirs.
        let mine = PermFs::new(below.clone(), perm(Some(0o600), Some(4242)), Some(user()));
        assert_eq!(mine.access(Path::new("/f"), libc::W_OK), Ok(()));
        assert_eq!(mine.access(Path::new("/d"), libc::X_OK), Ok(()));
        assert_eq!(
            mine.chown(Path::new("/f"), Some(1), None),
            Err(Errno::EPERM)
        );
        // No search permission on /d: nothing below it can be reached.
        let closed = PermFs::new(below, perm(Some(0o600), Some(1)), Some(user()));
        assert_eq!(closed.lstat(Path::new("/d/x")), Err(Errno::EACCES));
    }
}
