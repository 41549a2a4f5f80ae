//! `except=PATH[:PATH...]`: sub-paths of TARGET left out of the mount.
//!
//! A path at or below an exception shows the tree below the mount (what
//! TARGET/PATH was before it), whatever the mode: `hide` with exceptions
//! hides all but them, `move` of a root file system can leave `/proc`,
//! `/dev` and `/tmp` to the host, `cow` can write some paths through.
//! The directories on the way to an exception are the mode's; where the
//! mode has none (`hide`, or a SOURCE without it) the one below stands
//! in. They are served, listing the mode's entries with the exceptions
//! (as they are below) in place of the mode's names. Renames and links
//! between an exception and the rest are `EXDEV`, as across mounts.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use viewos_core::{DirEntry, Errno, FileStat, FileSystem, FsStat, Opened, SetTime};

use crate::layer::{into_handle, Entry, Layer};
use crate::listing::{union, ListedDir};
use crate::source::is_within;

/// Which tree answers for a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The mode's.
    Inner,
    /// The tree below the mount (an exception or below one).
    Below,
    /// The mode's, but exceptions lie below it.
    Ancestor,
}

/// A mode's tree with exceptions (see the module docs).
pub struct ExceptFs {
    inner: Arc<dyn FileSystem>,
    below: Layer,
    except: Arc<Vec<PathBuf>>,
}

impl ExceptFs {
    /// `inner` with the paths `except` (absolute below the mount root)
    /// taken from `below` (the TARGET of the view below the mount).
    pub fn new(inner: Arc<dyn FileSystem>, below: Layer, except: Vec<PathBuf>) -> ExceptFs {
        ExceptFs {
            inner,
            below,
            except: Arc::new(except),
        }
    }

    fn route(&self, p: &Path) -> Route {
        route(&self.except, p)
    }

    fn inner_stat(inner: &dyn FileSystem, below: &Layer, p: &Path) -> Result<FileStat, Errno> {
        match inner.lstat(p) {
            Err(e) if e == Errno::ENOENT => below.lstat(p),
            r => r,
        }
    }

    fn open_ancestor(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        let st = ExceptFs::inner_stat(&*self.inner, &self.below, p)?;
        if !st.is_dir() {
            return self.inner.open(p, flags, mode);
        }
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_CREAT != 0 {
            return Err(Errno::EISDIR);
        }
        let (inner, below, except, path) = (
            self.inner.clone(),
            self.below.clone(),
            self.except.clone(),
            p.to_path_buf(),
        );
        let (inner2, below2, path2) = (self.inner.clone(), self.below.clone(), p.to_path_buf());
        let dir = ListedDir::new(
            Box::new(move || ancestor_listing(&*inner, &below, &except, &path)),
            Box::new(move || ExceptFs::inner_stat(&*inner2, &below2, &path2)),
        )?;
        Ok(Opened::Served(Box::new(dir)))
    }

    /// The tree and path for a call on `p` that is not an open.
    fn fs_for(&self, p: &Path) -> (&dyn FileSystem, PathBuf) {
        match self.route(p) {
            Route::Below => (self.below.fs(), self.below.at(p)),
            _ => (&*self.inner, p.to_path_buf()),
        }
    }

    /// The tree and paths for a call on two paths, `EXDEV` across.
    fn fs_for2(&self, a: &Path, b: &Path) -> Result<(&dyn FileSystem, PathBuf, PathBuf), Errno> {
        let below = |p: &Path| self.route(p) == Route::Below;
        match (below(a), below(b)) {
            (true, true) => Ok((self.below.fs(), self.below.at(a), self.below.at(b))),
            (false, false) => Ok((&*self.inner, a.to_path_buf(), b.to_path_buf())),
            _ => Err(Errno::new(libc::EXDEV)),
        }
    }
}

fn route(except: &[PathBuf], p: &Path) -> Route {
    if except.iter().any(|e| is_within(p, e)) {
        Route::Below
    } else if except.iter().any(|e| is_within(e, p)) {
        Route::Ancestor
    } else {
        Route::Inner
    }
}

/// The listing of an ancestor of exceptions: the mode's entries (if it has
/// the directory) with the exceptions directly inside it taken from below.
fn ancestor_listing(
    inner: &dyn FileSystem,
    below: &Layer,
    except: &[PathBuf],
    p: &Path,
) -> Result<Vec<Entry>, Errno> {
    let children: Vec<&[u8]> = except
        .iter()
        .filter(|e| e.parent() == Some(p))
        .filter_map(|e| e.file_name().map(|n| n.as_bytes()))
        .collect();
    let mut own = Vec::new();
    for c in &children {
        if let Ok(st) = below.lstat(&p.join(OsStr::from_bytes(c))) {
            own.push(Entry {
                name: c.to_vec(),
                ino: st.ino,
                kind: DirEntry::kind_of_mode(st.mode),
            });
        }
    }
    let mut lists = vec![own];
    let mode_dir = inner
        .open(p, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .and_then(into_handle);
    match mode_dir {
        Ok(h) => {
            let mut theirs = Vec::new();
            h.read_dir(0, &mut |e| {
                if !children.contains(&e.name) {
                    theirs.push(Entry {
                        name: e.name.to_vec(),
                        ino: e.ino,
                        kind: e.kind,
                    });
                }
                true
            })?;
            lists.push(theirs);
        }
        Err(_) => {
            // The mode has nothing here: only the way to the exceptions.
            let st = below.lstat(p)?;
            let dot = |n: &[u8]| Entry {
                name: n.to_vec(),
                ino: st.ino,
                kind: libc::DT_DIR,
            };
            lists.push(vec![dot(b"."), dot(b"..")]);
        }
    }
    Ok(union(lists))
}

impl FileSystem for ExceptFs {
    fn open(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        match self.route(p) {
            Route::Below => self.below.fs().open(&self.below.at(p), flags, mode),
            Route::Ancestor => self.open_ancestor(p, flags, mode),
            Route::Inner => self.inner.open(p, flags, mode),
        }
    }

    fn lstat(&self, p: &Path) -> Result<FileStat, Errno> {
        match self.route(p) {
            Route::Below => self.below.lstat(p),
            Route::Ancestor => ExceptFs::inner_stat(&*self.inner, &self.below, p),
            Route::Inner => self.inner.lstat(p),
        }
    }

    fn readlink(&self, p: &Path) -> Result<PathBuf, Errno> {
        let (fs, p) = self.fs_for(p);
        fs.readlink(&p)
    }

    fn access(&self, p: &Path, mode: i32) -> Result<(), Errno> {
        match self.route(p) {
            Route::Ancestor => match self.inner.access(p, mode) {
                Err(e) if e == Errno::ENOENT => self.below.fs().access(&self.below.at(p), mode),
                r => r,
            },
            _ => {
                let (fs, p) = self.fs_for(p);
                fs.access(&p, mode)
            }
        }
    }

    fn mkdir(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.mkdir(&p, mode)
    }

    fn rmdir(&self, p: &Path) -> Result<(), Errno> {
        if self.route(p) == Route::Ancestor {
            return Err(Errno::ENOTEMPTY);
        }
        let (fs, p) = self.fs_for(p);
        fs.rmdir(&p)
    }

    fn unlink(&self, p: &Path) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.unlink(&p)
    }

    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        if self.route(from) == Route::Ancestor {
            return Err(Errno::EBUSY);
        }
        let (fs, a, b) = self.fs_for2(from, to)?;
        fs.rename(&a, &b, flags)
    }

    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        let (fs, a, b) = self.fs_for2(from, to)?;
        fs.link(&a, &b)
    }

    fn symlink(&self, target: &Path, p: &Path) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.symlink(target, &p)
    }

    fn chmod(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.chmod(&p, mode)
    }

    fn chown(&self, p: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.chown(&p, uid, gid)
    }

    fn utimens(&self, p: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.utimens(&p, atime, mtime)
    }

    fn mknod(&self, p: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.mknod(&p, mode, rdev)
    }

    fn getxattr(&self, p: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let (fs, p) = self.fs_for(p);
        fs.getxattr(&p, name)
    }

    fn setxattr(&self, p: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.setxattr(&p, name, value, flags)
    }

    fn listxattr(&self, p: &Path) -> Result<Vec<u8>, Errno> {
        let (fs, p) = self.fs_for(p);
        fs.listxattr(&p)
    }

    fn removexattr(&self, p: &Path, name: &[u8]) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.removexattr(&p, name)
    }

    /// The host sends calls on the exceptions to what is below the mount
    /// itself (they run as fast as outside it); the answers above stay
    /// for calls that reach this file system some other way (nesting).
    fn exceptions(&self) -> Vec<PathBuf> {
        self.except.to_vec()
    }

    fn statfs(&self, p: &Path) -> Result<FsStat, Errno> {
        match self.route(p) {
            Route::Below => self.below.fs().statfs(&self.below.at(p)),
            _ => match self.inner.statfs(p) {
                Err(e) if e == Errno::ENOENT => self.below.fs().statfs(&self.below.at(p)),
                r => r,
            },
        }
    }

    fn truncate(&self, p: &Path, len: u64) -> Result<(), Errno> {
        let (fs, p) = self.fs_for(p);
        fs.truncate(&p, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hide::HideFs;
    use crate::move_fs::move_fs;
    use crate::testdir::TestDir;
    use viewos_core::real::RealFs;

    fn names(fs: &dyn FileSystem, p: &str) -> Vec<String> {
        let h = into_handle(
            fs.open(Path::new(p), libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .unwrap(),
        )
        .unwrap();
        let mut out = Vec::new();
        h.read_dir(0, &mut |e| {
            out.push(String::from_utf8_lossy(e.name).into_owned());
            true
        })
        .unwrap();
        out.sort();
        out
    }

    #[test]
    fn hide_all_but_the_exceptions() {
        let t = TestDir::new("except-hide");
        t.write("tgt/a/keep/f", "kept");
        t.write("tgt/a/lost", "x");
        t.write("tgt/b", "x");
        let below = Layer::new(Arc::new(RealFs), t.join("tgt"));
        let fs = ExceptFs::new(Arc::new(HideFs), below, vec![PathBuf::from("/a/keep")]);
        assert!(fs.lstat(Path::new("/")).unwrap().is_dir());
        assert!(fs.lstat(Path::new("/a")).unwrap().is_dir());
        assert_eq!(fs.lstat(Path::new("/b")), Err(Errno::ENOENT));
        assert_eq!(fs.lstat(Path::new("/a/lost")), Err(Errno::ENOENT));
        assert_eq!(fs.lstat(Path::new("/a/keep/f")).unwrap().size, 4);
        assert_eq!(names(&fs, "/"), [".", ".."]);
        assert_eq!(names(&fs, "/a"), [".", "..", "keep"]);
        assert_eq!(names(&fs, "/a/keep"), [".", "..", "f"]);
        assert_eq!(
            fs.rename(Path::new("/a/keep/f"), Path::new("/a/x"), 0),
            Err(Errno::new(libc::EXDEV))
        );
        fs.rename(Path::new("/a/keep/f"), Path::new("/a/keep/g"), 0)
            .unwrap();
        assert!(t.join("tgt/a/keep/g").is_file());
    }

    #[test]
    fn a_moved_tree_with_real_paths_left_in() {
        let t = TestDir::new("except-move");
        t.write("root/etc/os", "fake");
        t.write("root/tmp/fake-tmp", "x");
        t.write("tgt/tmp/real-tmp", "x");
        t.write("tgt/proc/self", "x");
        let fs = ExceptFs::new(
            move_fs(t.join("root"), Arc::new(RealFs)),
            Layer::new(Arc::new(RealFs), t.join("tgt")),
            vec![PathBuf::from("/tmp"), PathBuf::from("/proc")],
        );
        assert_eq!(names(&fs, "/"), [".", "..", "etc", "proc", "tmp"]);
        assert_eq!(names(&fs, "/tmp"), [".", "..", "real-tmp"]);
        assert!(fs.lstat(Path::new("/etc/os")).is_ok());
        assert_eq!(fs.rmdir(Path::new("/")), Err(Errno::ENOTEMPTY));
        assert_eq!(route(&fs.except, Path::new("/tmpx")), Route::Inner);
    }
}
