//! `merge`: TARGET shows the union of SOURCE over TARGET.
//!
//! A name present in both trees is SOURCE's (the top layer); directories
//! present in both are merged, and listed once per name. Both trees are
//! real and writable, nothing is copied:
//! - a change to an existing file is made where the file is;
//! - a new name is made in the top-most layer holding its parent
//!   directory;
//! - `unlink` removes the name from every layer that has a file there,
//!   `rmdir` the directory from every layer (so the name is gone from the
//!   view, not uncovered);
//! - `rename` and `link` happen inside each layer holding the name, and
//!   are `EXDEV` when the new parent is not in that layer (`mv` then
//!   copies).
//!
//! Files are handed over as the layer opened them (real fds); directories
//! are served ([`ListedDir`]), so their listings are the union and names
//! looked up from them stay in the view.

use std::path::{Path, PathBuf};

use viewos_core::{Errno, FileStat, FileSystem, FsStat, Opened, SetTime};

use crate::layer::{parent_of, Layer};
use crate::listing::{union, ListedDir};

/// The file system of a `merge` mount.
pub struct MergeFs {
    /// Top first: SOURCE, then TARGET.
    layers: [Layer; 2],
}

/// What each layer has at one path (`None`: nothing).
struct Found([Option<FileStat>; 2]);

impl Found {
    /// The layer whose entry the view shows.
    fn shown(&self) -> Option<usize> {
        self.0.iter().position(|s| s.is_some())
    }

    /// What the view shows. A directory of both layers has a link count
    /// of 1 ("unknown": the other layer's subdirectories are not counted).
    fn stat(&self) -> Option<FileStat> {
        let mut st = self.shown().and_then(|i| self.0[i])?;
        if self.dirs().len() == 2 {
            st.nlink = 1;
        }
        Some(st)
    }

    /// The layers holding a directory there.
    fn dirs(&self) -> Vec<usize> {
        (0..2)
            .filter(|&i| self.0[i].is_some_and(|s| s.is_dir()))
            .collect()
    }
}

impl MergeFs {
    /// The union of `top` (SOURCE) over `bottom` (TARGET).
    pub fn new(top: Layer, bottom: Layer) -> MergeFs {
        MergeFs {
            layers: [top, bottom],
        }
    }

    fn find(&self, p: &Path) -> Result<Found, Errno> {
        Ok(Found([
            self.layers[0].lstat_opt(p)?,
            self.layers[1].lstat_opt(p)?,
        ]))
    }

    /// The layer holding what the view shows at `p`.
    fn holder(&self, p: &Path) -> Result<(&Layer, FileStat), Errno> {
        let f = self.find(p)?;
        match f.shown() {
            Some(i) => Ok((&self.layers[i], f.0[i].ok_or(Errno::ENOENT)?)),
            None => Err(Errno::ENOENT),
        }
    }

    /// Where a new name `p` is made: the top-most layer with its parent
    /// directory. `EEXIST` if the view has the name already.
    fn new_name(&self, p: &Path) -> Result<&Layer, Errno> {
        if self.find(p)?.shown().is_some() {
            return Err(Errno::EEXIST);
        }
        let parent = self.find(parent_of(p))?;
        match parent.dirs().first() {
            Some(&i) => Ok(&self.layers[i]),
            None if parent.shown().is_some() => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    /// The merged listing of the directory `p`.
    fn listing(layers: &[Layer; 2], p: &Path) -> Result<Vec<crate::layer::Entry>, Errno> {
        let mut lists = Vec::new();
        for l in layers {
            if l.lstat_opt(p)?.is_some_and(|s| s.is_dir()) {
                lists.push(l.list(p)?);
            }
        }
        Ok(union(lists))
    }

    fn open_dir(&self, p: &Path) -> Result<Opened, Errno> {
        let (layers, path) = (self.layers.clone(), p.to_path_buf());
        let (layers2, path2) = (self.layers.clone(), p.to_path_buf());
        let dir = ListedDir::new(
            Box::new(move || MergeFs::listing(&layers, &path)),
            Box::new(move || {
                let f = Found([layers2[0].lstat_opt(&path2)?, layers2[1].lstat_opt(&path2)?]);
                f.stat().ok_or(Errno::ENOENT)
            }),
        )?;
        Ok(Opened::Served(Box::new(dir)))
    }

    fn is_empty_dir(&self, p: &Path) -> Result<bool, Errno> {
        Ok(MergeFs::listing(&self.layers, p)?
            .iter()
            .all(|e| e.is_dot()))
    }
}

impl FileSystem for MergeFs {
    fn open(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        let f = self.find(p)?;
        match f.shown() {
            Some(i) => {
                let st = f.0[i].ok_or(Errno::ENOENT)?;
                if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                // An O_PATH handle on a directory of one layer is that
                // layer's; a merged directory is always served.
                let opath_alone = flags & libc::O_PATH != 0 && f.dirs().len() < 2;
                if st.is_dir() && !opath_alone {
                    if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_CREAT != 0 {
                        return Err(Errno::EISDIR);
                    }
                    // TARGET's directory alone: the kernel lists it, and
                    // names looked up from it come back through the view.
                    if i == 1 && f.dirs().len() == 1 {
                        if let Some(o) = self.layers[1].open_in_place(p, flags)? {
                            return Ok(o);
                        }
                    }
                    return self.open_dir(p);
                }
                let l = &self.layers[i];
                l.fs().open(&l.at(p), flags, mode)
            }
            None if flags & libc::O_CREAT != 0 => {
                let l = self.new_name(p)?;
                l.fs().open(&l.at(p), flags, mode)
            }
            None => Err(Errno::ENOENT),
        }
    }

    fn lstat(&self, p: &Path) -> Result<FileStat, Errno> {
        self.find(p)?.stat().ok_or(Errno::ENOENT)
    }

    fn readlink(&self, p: &Path) -> Result<PathBuf, Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().readlink(&l.at(p))
    }

    fn access(&self, p: &Path, mode: i32) -> Result<(), Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().access(&l.at(p), mode)
    }

    fn mkdir(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        let l = self.new_name(p)?;
        l.fs().mkdir(&l.at(p), mode)
    }

    fn rmdir(&self, p: &Path) -> Result<(), Errno> {
        if p == Path::new("/") {
            return Err(Errno::EBUSY);
        }
        let f = self.find(p)?;
        let st = f.stat().ok_or(Errno::ENOENT)?;
        if !st.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !self.is_empty_dir(p)? {
            return Err(Errno::ENOTEMPTY);
        }
        for i in f.dirs() {
            let l = &self.layers[i];
            l.fs().rmdir(&l.at(p))?;
        }
        Ok(())
    }

    fn unlink(&self, p: &Path) -> Result<(), Errno> {
        let f = self.find(p)?;
        let st = f.stat().ok_or(Errno::ENOENT)?;
        if st.is_dir() {
            return Err(Errno::EISDIR);
        }
        for (i, s) in f.0.iter().enumerate() {
            if s.is_some_and(|s| !s.is_dir()) {
                let l = &self.layers[i];
                l.fs().unlink(&l.at(p))?;
            }
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        let src = self.find(from)?;
        let sst = src.stat().ok_or(Errno::ENOENT)?;
        let dst = self.find(to)?;
        if from == to {
            return Ok(());
        }
        if let Some(dst_st) = dst.stat() {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if flags & libc::RENAME_EXCHANGE == 0 {
                match (sst.is_dir(), dst_st.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !self.is_empty_dir(to)? => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
            }
        }
        // Every layer holding the name renames it inside itself.
        let holders: Vec<usize> = (0..2).filter(|&i| src.0[i].is_some()).collect();
        for &i in &holders {
            if !self.layers[i]
                .lstat_opt(parent_of(to))?
                .is_some_and(|s| s.is_dir())
            {
                return Err(Errno::new(libc::EXDEV));
            }
        }
        if flags & libc::RENAME_EXCHANGE != 0 && (holders.len() != 1 || dst.0[holders[0]].is_none())
        {
            return Err(Errno::EINVAL);
        }
        // The new name must not stay covered by a layer above the top-most
        // holder.
        let top_holder = holders.first().copied().unwrap_or(0);
        for i in 0..top_holder {
            if let Some(s) = dst.0[i] {
                let l = &self.layers[i];
                if s.is_dir() {
                    l.fs().rmdir(&l.at(to))?;
                } else {
                    l.fs().unlink(&l.at(to))?;
                }
            }
        }
        for &i in &holders {
            let l = &self.layers[i];
            l.fs().rename(&l.at(from), &l.at(to), flags)?;
        }
        Ok(())
    }

    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        let (l, st) = self.holder(from)?;
        if st.is_dir() {
            return Err(Errno::EPERM);
        }
        if self.find(to)?.shown().is_some() {
            return Err(Errno::EEXIST);
        }
        if !l.lstat_opt(parent_of(to))?.is_some_and(|s| s.is_dir()) {
            return Err(Errno::new(libc::EXDEV));
        }
        l.fs().link(&l.at(from), &l.at(to))
    }

    fn symlink(&self, target: &Path, p: &Path) -> Result<(), Errno> {
        let l = self.new_name(p)?;
        l.fs().symlink(target, &l.at(p))
    }

    fn chmod(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().chmod(&l.at(p), mode)
    }

    fn chown(&self, p: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().chown(&l.at(p), uid, gid)
    }

    fn utimens(&self, p: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().utimens(&l.at(p), atime, mtime)
    }

    fn mknod(&self, p: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        let l = self.new_name(p)?;
        l.fs().mknod(&l.at(p), mode, rdev)
    }

    fn getxattr(&self, p: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().getxattr(&l.at(p), name)
    }

    fn setxattr(&self, p: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().setxattr(&l.at(p), name, value, flags)
    }

    fn listxattr(&self, p: &Path) -> Result<Vec<u8>, Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().listxattr(&l.at(p))
    }

    fn removexattr(&self, p: &Path, name: &[u8]) -> Result<(), Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().removexattr(&l.at(p), name)
    }

    fn statfs(&self, p: &Path) -> Result<FsStat, Errno> {
        let l = self.holder(p).map(|(l, _)| l).unwrap_or(&self.layers[0]);
        l.fs().statfs(&l.at(p))
    }

    fn truncate(&self, p: &Path, len: u64) -> Result<(), Errno> {
        let (l, _) = self.holder(p)?;
        l.fs().truncate(&l.at(p), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::sync::Arc;
    use viewos_core::real::RealFs;

    fn names(fs: &MergeFs, p: &str) -> Vec<String> {
        let Opened::Served(h) = fs
            .open(Path::new(p), libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .unwrap()
        else {
            panic!("directory not served");
        };
        let mut out = Vec::new();
        h.read_dir(0, &mut |e| {
            out.push(String::from_utf8_lossy(e.name).into_owned());
            true
        })
        .unwrap();
        out.sort();
        out
    }

    fn setup(t: &TestDir) -> MergeFs {
        t.write("src/both", "source");
        t.write("src/only-src", "s");
        t.write("src/d/in-src", "1");
        t.write("dst/both", "target");
        t.write("dst/only-dst", "t");
        t.write("dst/d/in-dst", "2");
        t.mkdir("dst/e");
        MergeFs::new(
            Layer::new(Arc::new(RealFs), t.join("src")),
            Layer::new(Arc::new(RealFs), t.join("dst")),
        )
    }

    #[test]
    fn union_listings_source_wins() {
        let t = TestDir::new("merge-list");
        let fs = setup(&t);
        assert_eq!(
            names(&fs, "/"),
            [".", "..", "both", "d", "e", "only-dst", "only-src"]
        );
        assert_eq!(names(&fs, "/d"), [".", "..", "in-dst", "in-src"]);
        assert_eq!(fs.lstat(Path::new("/both")).unwrap().size, 6);
        let src = std::fs::symlink_metadata(t.join("src/both")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs.lstat(Path::new("/both")).unwrap().ino, src.ino());
        assert!(fs.lstat(Path::new("/only-dst")).is_ok());
        assert_eq!(fs.lstat(Path::new("/none")), Err(Errno::ENOENT));
    }

    #[test]
    fn changes_land_in_the_layer_holding_the_name() {
        let t = TestDir::new("merge-write");
        let fs = setup(&t);
        // A new name in a directory of both: the source's.
        fs.mkdir(Path::new("/d/new"), 0o755).unwrap();
        assert!(t.join("src/d/new").is_dir());
        // Only the target has /e.
        let o = fs.open(Path::new("/e/f"), libc::O_CREAT | libc::O_WRONLY, 0o644);
        assert!(o.is_ok());
        assert!(t.join("dst/e/f").is_file());
        assert_eq!(fs.mkdir(Path::new("/both"), 0o755), Err(Errno::EEXIST));
        assert_eq!(
            fs.open(
                Path::new("/only-dst"),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                0
            )
            .err(),
            Some(Errno::EEXIST)
        );
        // unlink removes every layer's file: the name is gone.
        fs.unlink(Path::new("/both")).unwrap();
        assert_eq!(fs.lstat(Path::new("/both")), Err(Errno::ENOENT));
        assert_eq!(fs.rmdir(Path::new("/d")), Err(Errno::ENOTEMPTY));
        fs.rmdir(Path::new("/d/new")).unwrap();
        fs.unlink(Path::new("/d/in-src")).unwrap();
        fs.unlink(Path::new("/d/in-dst")).unwrap();
        fs.rmdir(Path::new("/d")).unwrap();
        assert!(!t.join("src/d").exists() && !t.join("dst/d").exists());
        assert_eq!(fs.rmdir(Path::new("/")), Err(Errno::EBUSY));
    }

    #[test]
    fn rename_inside_layers_or_exdev() {
        let t = TestDir::new("merge-rename");
        let fs = setup(&t);
        fs.rename(Path::new("/only-src"), Path::new("/d/moved"), 0)
            .unwrap();
        assert!(t.join("src/d/moved").is_file());
        // The target has no such parent in the source: EXDEV.
        assert_eq!(
            fs.rename(Path::new("/d/moved"), Path::new("/e/x"), 0),
            Err(Errno::new(libc::EXDEV))
        );
        // A target name covered by the source is replaced, not uncovered.
        fs.rename(Path::new("/only-dst"), Path::new("/both"), 0)
            .unwrap();
        assert_eq!(fs.lstat(Path::new("/both")).unwrap().size, 1);
        assert_eq!(t.read("dst/both").as_deref(), Some("t"));
        assert_eq!(
            fs.rename(Path::new("/both"), Path::new("/e"), 0),
            Err(Errno::EISDIR)
        );
    }
}
