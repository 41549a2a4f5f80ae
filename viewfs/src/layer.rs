//! A directory tree reached through the view below a mount: the building
//! block of every mode.
//!
//! A viewfs mount never touches the real file system directly. Its
//! SOURCE and TARGET trees are [`Layer`]s: a directory of the
//! [`FileSystem`] the host handed to `Service::mount` (the view as it was
//! below this mount), so a viewfs mount works on top of other virtual
//! mounts, and a mount below it is seen through it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use viewos_core::path::join_under;
use viewos_core::real_file::RealFile;
use viewos_core::{Errno, FileHandle, FileStat, FileSystem, Opened};

/// One entry of a directory listing, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name, without a NUL.
    pub name: Vec<u8>,
    /// Inode number (`d_ino`).
    pub ino: u64,
    /// `d_type` (`libc::DT_REG`, ...).
    pub kind: u8,
}

impl Entry {
    /// True for `.` and `..`.
    pub fn is_dot(&self) -> bool {
        self.name == b"." || self.name == b".."
    }
}

/// The tree below `root` of a file system (the view below a mount).
#[derive(Clone)]
pub struct Layer {
    io: Arc<dyn FileSystem>,
    root: PathBuf,
}

impl Layer {
    /// The tree below `root` of `io`.
    pub fn new(io: Arc<dyn FileSystem>, root: impl Into<PathBuf>) -> Layer {
        Layer {
            io,
            root: root.into(),
        }
    }

    /// The layer's root in `io`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `rel` (absolute, `/` being the layer's root) in `io`.
    pub fn at(&self, rel: &Path) -> PathBuf {
        join_under(&self.root, rel)
    }

    /// The file system the layer lives in.
    pub fn fs(&self) -> &dyn FileSystem {
        &*self.io
    }

    /// Status of `rel`, not following a final symlink.
    pub fn lstat(&self, rel: &Path) -> Result<FileStat, Errno> {
        self.io.lstat(&self.at(rel))
    }

    /// Status of `rel`, or `None` when nothing is there (`ENOENT`, or a
    /// component on the way that is not a directory).
    pub fn lstat_opt(&self, rel: &Path) -> Result<Option<FileStat>, Errno> {
        absent_is_none(self.lstat(rel))
    }

    /// Opens `rel` and returns it as a handle whatever way the file system
    /// opened it (for the mount's own reads, writes and listings).
    pub fn handle(&self, rel: &Path, flags: i32, mode: u32) -> Result<Box<dyn FileHandle>, Errno> {
        into_handle(self.io.open(&self.at(rel), flags, mode)?)
    }

    /// The entries of the directory `rel`, `.` and `..` included, in the
    /// file system's order.
    pub fn list(&self, rel: &Path) -> Result<Vec<Entry>, Errno> {
        let dir = self.handle(rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let mut out = Vec::new();
        // A fill that takes every entry gets the whole listing in one call.
        dir.read_dir(0, &mut |e| {
            out.push(Entry {
                name: e.name.to_vec(),
                ino: e.ino,
                kind: e.kind,
            });
            true
        })?;
        Ok(out)
    }

    /// Opens `rel` as a real fd whose kernel path is `rel`'s path in this
    /// layer, or `None` (another file system serves it, or sends it
    /// elsewhere). For the TARGET layer that path is the view's own: names
    /// the program looks up relative to the fd, `..` included, come back
    /// through the view.
    pub fn open_in_place(&self, rel: &Path, flags: i32) -> Result<Option<Opened>, Errno> {
        use std::os::fd::AsRawFd;
        let Opened::Backed(fd) = self.io.open(&self.at(rel), flags, 0)? else {
            return Ok(None);
        };
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        Ok(match real {
            Ok(r) if r == self.at(rel) => Some(Opened::Backed(fd)),
            _ => None,
        })
    }

    /// Creates the empty regular file `rel` (mode 0600) if it is not there.
    pub fn touch(&self, rel: &Path) -> Result<(), Errno> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC;
        self.io.open(&self.at(rel), flags, 0o600).map(drop)
    }

    /// Removes the non-directory `rel`; nothing there is not an error.
    pub fn remove_if_there(&self, rel: &Path) -> Result<(), Errno> {
        match self.io.unlink(&self.at(rel)) {
            Err(e) if e == Errno::ENOENT => Ok(()),
            r => r,
        }
    }
}

/// `Ok(None)` for the errors that mean "nothing there".
pub fn absent_is_none<T>(r: Result<T, Errno>) -> Result<Option<T>, Errno> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e == Errno::ENOENT || e == Errno::ENOTDIR => Ok(None),
        Err(e) => Err(e),
    }
}

/// An opened file as a handle: a real one is served by positioned calls
/// ([`RealFile`]), a served one is used as it is.
pub fn into_handle(opened: Opened) -> Result<Box<dyn FileHandle>, Errno> {
    match opened {
        Opened::Backed(fd) => Ok(Box::new(RealFile::new(File::from(fd)))),
        Opened::Served(h) => Ok(h),
        _ => Err(Errno::ENOSYS),
    }
}

/// The last component of `p` as bytes (empty for `/`).
pub fn name_of(p: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    p.file_name().map(|n| n.as_bytes()).unwrap_or_default()
}

/// The parent of `p` (`/` for `/` itself).
pub fn parent_of(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use viewos_core::real::RealFs;

    #[test]
    fn lists_stats_and_creates_below_its_root() {
        let t = TestDir::new("layer");
        t.write("a", "x");
        t.mkdir("d");
        let l = Layer::new(Arc::new(RealFs), t.path());
        let mut names: Vec<_> = l
            .list(Path::new("/"))
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".", "..", "a", "d"]);
        assert!(l.lstat(Path::new("/d")).unwrap().is_dir());
        assert_eq!(l.lstat_opt(Path::new("/a/x")).unwrap(), None);
        assert_eq!(l.lstat_opt(Path::new("/none")).unwrap(), None);
        l.touch(Path::new("/d/new")).unwrap();
        assert!(t.join("d/new").is_file());
        l.remove_if_there(Path::new("/d/new")).unwrap();
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        assert!(l.open_in_place(Path::new("/d"), flags).unwrap().is_some());
        // Through a moved tree the kernel's path is elsewhere.
        let moved = Layer::new(
            crate::move_fs::move_fs(t.path().into(), Arc::new(RealFs)),
            "/",
        );
        assert!(moved
            .open_in_place(Path::new("/d"), flags)
            .unwrap()
            .is_none());
        // Removing what is not there is no error.
        l.remove_if_there(Path::new("/d/new")).unwrap();
        assert!(!t.join("d/new").exists());
        assert_eq!(name_of(Path::new("/d/new")), b"new");
        assert_eq!(parent_of(Path::new("/d")), Path::new("/"));
    }
}
