//! The changes a [`FatVolume`] makes: create, write, truncate, times,
//! mkdir, unlink, rmdir, rename.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::SystemTime;

use fatfs::File;
use fuser::FileAttr;
use viewos_core::Errno;

use super::entries::{self, errno, MAX_PATH};
use super::inodes;
use super::raw::cluster_of;
use super::time::to_fat;
use super::volume::FatVolume;

/// FAT sizes are 32-bit.
const MAX_FILE_SIZE: u64 = u32::MAX as u64;

/// renameat2's `RENAME_NOREPLACE`.
const RENAME_NOREPLACE: u32 = 1;
/// renameat2's `RENAME_EXCHANGE`.
const RENAME_EXCHANGE: u32 = 2;

/// Appends `count` zero bytes at the end of `f`.
fn zero_fill<S: Read + Write + Seek>(f: &mut File<'_, S>, count: u64) -> Result<(), Errno> {
    f.seek(SeekFrom::End(0)).map_err(errno)?;
    let zeros = [0u8; 4096];
    let mut left = count;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n]).map_err(errno)?;
        left -= n as u64;
    }
    Ok(())
}

/// Which kind of entry an operation expects to create or remove.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// Changes to attributes ([`FatVolume::setattr`]); `None` leaves one as
/// it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits: only the current ones are accepted (FAT keeps
    /// no modes), anything else is `EPERM`.
    pub mode: Option<u32>,
    /// New owner: only the mount's is accepted.
    pub uid: Option<u32>,
    /// New group: only the mount's is accepted.
    pub gid: Option<u32>,
    /// New size (truncate or extend with zeros).
    pub size: Option<u64>,
    /// New access time (FAT keeps its date).
    pub atime: Option<SystemTime>,
    /// New modification time.
    pub mtime: Option<SystemTime>,
}

impl<S: Read + Write + Seek> FatVolume<S> {
    /// Writes `data` at `offset` in the file `ino`, filling a gap after the
    /// end with zeros; returns the bytes written (write).
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.writable()?;
        let path = self.path(ino)?;
        if path.is_empty() {
            return Err(Errno::EISDIR);
        }
        if offset
            .checked_add(data.len() as u64)
            .map_or(true, |end| end > MAX_FILE_SIZE)
        {
            return Err(Errno::new(libc::EFBIG));
        }
        self.with_fs(move |fs, g| {
            let e = entries::entry(fs, &path, g)?;
            if e.is_dir() {
                return Err(Errno::EISDIR);
            }
            let len = e.len();
            let mut f = e.to_file();
            if offset > len {
                zero_fill(&mut f, offset - len)?;
            }
            f.seek(SeekFrom::Start(offset)).map_err(errno)?;
            f.write_all(data).map_err(errno)?;
            f.flush().map_err(errno)?;
            Ok(data.len())
        })
    }

    /// Creates the empty regular file `name` in `parent` (create, mknod).
    pub fn create(&mut self, parent: u64, name: &str) -> Result<FileAttr, Errno> {
        self.make(parent, name, Kind::File)
    }

    /// Creates the directory `name` in `parent` (mkdir).
    pub fn mkdir(&mut self, parent: u64, name: &str) -> Result<FileAttr, Errno> {
        self.make(parent, name, Kind::Dir)
    }

    fn make(&mut self, parent: u64, name: &str, kind: Kind) -> Result<FileAttr, Errno> {
        self.writable()?;
        entries::check_name(name)?;
        let dir = self.path(parent)?;
        if inodes::child(&dir, name).len() > MAX_PATH {
            return Err(Errno::ENAMETOOLONG);
        }
        let (dir2, name2) = (dir.clone(), name.to_owned());
        let made_dir = self.with_fs(move |fs, g| {
            let (d, parent_cluster) = entries::open_dir(fs, &dir2, g)?;
            if entries::find(&d, &name2, g)?.is_some() {
                return Err(Errno::EEXIST);
            }
            if kind == Kind::File {
                d.create_file(&name2).map_err(errno)?;
                return Ok(None);
            }
            d.create_dir(&name2).map_err(errno)?;
            let e = entries::find(&d, &name2, g)?.ok_or(Errno::EIO)?;
            Ok(Some((cluster_of(&e, g)?, parent_cluster)))
        })?;
        if let Some((cluster, parent_cluster)) = made_dir {
            let g = self.geometry;
            self.raw
                .set_dot_entries(&g, cluster, parent_cluster, true)?;
        }
        self.lookup(parent, name)
    }

    /// Removes the regular file `name` from `parent` (unlink).
    pub fn unlink(&mut self, parent: u64, name: &str) -> Result<(), Errno> {
        self.remove(parent, name, Kind::File)
    }

    /// Removes the empty directory `name` from `parent` (rmdir).
    pub fn rmdir(&mut self, parent: u64, name: &str) -> Result<(), Errno> {
        self.remove(parent, name, Kind::Dir)
    }

    fn remove(&mut self, parent: u64, name: &str, kind: Kind) -> Result<(), Errno> {
        self.writable()?;
        entries::check_name(name)?;
        if entries::is_dot(name) {
            return Err(Errno::EINVAL);
        }
        let dir = self.path(parent)?;
        let name = name.to_owned();
        let stored = self.with_fs(move |fs, g| {
            let d = entries::open_dir(fs, &dir, g)?.0;
            let e = entries::find(&d, &name, g)?.ok_or(Errno::ENOENT)?;
            match (kind, e.is_dir()) {
                (Kind::File, true) => return Err(Errno::EISDIR),
                (Kind::Dir, false) => return Err(Errno::ENOTDIR),
                (Kind::Dir, true) if !entries::list(&e.to_dir(), g)?.is_empty() => {
                    return Err(Errno::ENOTEMPTY)
                }
                _ => {}
            }
            let stored = e.file_name();
            d.remove(&stored).map_err(errno)?;
            Ok(inodes::child(&dir, &stored))
        })?;
        self.inodes.remove(&stored);
        Ok(())
    }

    /// Moves `name` in `parent` to `newname` in `newparent`, replacing a
    /// file or an empty directory there (rename); `flags` are renameat2's
    /// (`RENAME_NOREPLACE` is honoured, `RENAME_EXCHANGE` is `EINVAL`).
    pub fn rename(
        &mut self,
        parent: u64,
        name: &str,
        newparent: u64,
        newname: &str,
        flags: u32,
    ) -> Result<(), Errno> {
        self.writable()?;
        entries::check_name(name)?;
        entries::check_name(newname)?;
        if flags & !RENAME_NOREPLACE != 0 || flags & RENAME_EXCHANGE != 0 {
            return Err(Errno::EINVAL);
        }
        if entries::is_dot(name) || entries::is_dot(newname) {
            return Err(Errno::EINVAL);
        }
        let from_dir = self.path(parent)?;
        let to_dir = self.path(newparent)?;
        if inodes::child(&to_dir, newname).len() > MAX_PATH {
            return Err(Errno::ENAMETOOLONG);
        }
        let (name, newname) = (name.to_owned(), newname.to_owned());
        let moved = self.with_fs(move |fs, g| {
            let sd = entries::open_dir(fs, &from_dir, g)?.0;
            let (dd, dd_cluster) = entries::open_dir(fs, &to_dir, g)?;
            let src = entries::find(&sd, &name, g)?.ok_or(Errno::ENOENT)?;
            let src_name = src.file_name();
            let from = inodes::child(&from_dir, &src_name);
            if src.is_dir() && (to_dir == from || to_dir.starts_with(&format!("{from}/"))) {
                return Err(Errno::EINVAL);
            }
            if let Some(dst) = entries::find(&dd, &newname, g)? {
                let dst_name = dst.file_name();
                if from_dir == to_dir && dst_name == src_name {
                    // The same entry (FAT names ignore case): nothing to do.
                    return Ok(None);
                }
                if flags & RENAME_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                match (src.is_dir(), dst.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !entries::list(&dst.to_dir(), g)?.is_empty() => {
                        return Err(Errno::ENOTEMPTY)
                    }
                    _ => {}
                }
                dd.remove(&dst_name).map_err(errno)?;
            }
            sd.rename(&src_name, &dd, &newname).map_err(errno)?;
            // A directory that changed parent needs its `..` repointed.
            let reparent = if src.is_dir() && from_dir != to_dir {
                Some((cluster_of(&src, g)?, dd_cluster))
            } else {
                None
            };
            Ok(Some((from, inodes::child(&to_dir, &newname), reparent)))
        })?;
        if let Some((from, to, reparent)) = moved {
            self.inodes.rename(&from, &to);
            if let Some((cluster, parent_cluster)) = reparent {
                let g = self.geometry;
                self.raw
                    .set_dot_entries(&g, cluster, parent_cluster, false)?;
            }
        }
        Ok(())
    }

    /// Changes size and times of `ino` (setattr); see [`SetAttr`].
    pub fn setattr(&mut self, ino: u64, set: SetAttr) -> Result<FileAttr, Errno> {
        let current = self.getattr(ino)?;
        let same = |new: Option<u32>, old: u32| new.map_or(true, |n| n == old);
        if !same(set.mode.map(|m| m & 0o7777), u32::from(current.perm))
            || !same(set.uid, current.uid)
            || !same(set.gid, current.gid)
        {
            return Err(Errno::EPERM);
        }
        if set.size.is_none() && set.mtime.is_none() && set.atime.is_none() {
            return Ok(current);
        }
        self.writable()?;
        let path = self.path(ino)?;
        if path.is_empty() || current.kind == fuser::FileType::Directory {
            // Directories keep their size; fatfs cannot stamp their times.
            return match set.size {
                Some(_) => Err(Errno::EISDIR),
                None => Ok(current),
            };
        }
        if set.size.is_some_and(|s| s > MAX_FILE_SIZE) {
            return Err(Errno::new(libc::EFBIG));
        }
        self.with_fs(move |fs, g| {
            let e = entries::entry(fs, &path, g)?;
            let len = e.len();
            let mut f = e.to_file();
            match set.size {
                Some(s) if s < len => {
                    f.seek(SeekFrom::Start(s)).map_err(errno)?;
                    f.truncate().map_err(errno)?;
                }
                Some(s) if s > len => zero_fill(&mut f, s - len)?,
                _ => {}
            }
            #[allow(deprecated)]
            {
                // Deprecated in fatfs only in favour of a custom clock;
                // setting an explicit time is what utimensat asks for.
                if let Some(t) = set.mtime {
                    f.set_modified(to_fat(t));
                }
                if let Some(t) = set.atime {
                    f.set_accessed(to_fat(t).date);
                }
            }
            f.flush().map_err(errno)
        })?;
        self.getattr(ino)
    }

    /// Makes sure what was written to `ino` is on the storage (fsync);
    /// writes go through at once, so this only flushes the storage.
    pub fn fsync(&mut self, ino: u64) -> Result<(), Errno> {
        let path = self.path(ino)?;
        if path.is_empty() || self.options.read_only {
            return Ok(());
        }
        self.with_fs(move |fs, g| {
            let e = entries::entry(fs, &path, g)?;
            if e.is_dir() {
                return Ok(());
            }
            e.to_file().flush().map_err(errno)
        })
    }
}
