//! [`FatVolume`]: a FAT volume served by inode number, the logic behind
//! the FUSE layer (reading side; the changes are in `modify.rs`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use fatfs::{FileSystem, FsOptions};
use fuser::{FileAttr, FileType, INodeNo};
use viewos_core::fs::FsStat;
use viewos_core::Errno;

use super::check::{check_image, Geometry};
use super::entries::{self, Meta, MAX_PATH};
use super::inodes::{self, Inodes, ROOT};
use super::options::FatOptions;
use super::raw::Shared;
use super::time::UTC_CLOCK;

/// `statfs`'s magic number for FAT (`MSDOS_SUPER_MAGIC`).
const MSDOS_SUPER_MAGIC: u64 = 0x4d44;

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryInfo {
    /// Inode number.
    pub ino: u64,
    /// File type.
    pub kind: FileType,
    /// Name.
    pub name: String,
}

/// A mounted FAT12/16/32 volume on storage `S` (a disk image).
///
/// Every method takes inode numbers as FUSE gives them (the root is 1)
/// and answers with errno values; none panics on a corrupt image. The
/// volume is written through: each change is on the storage when the
/// method returns, and dropping the volume (or [`FatVolume::unmount`])
/// writes the FAT32 free-cluster hint and clears the dirty flag.
pub struct FatVolume<S: Read + Write + Seek> {
    /// `None` once unmounted, or after `fatfs` failed inside (then every
    /// call answers `EIO` and nothing more is written).
    pub(super) fs: Option<FileSystem<Shared<S>>>,
    /// The same storage, for the repairs `raw.rs` makes.
    pub(super) raw: Shared<S>,
    pub(super) geometry: Geometry,
    pub(super) inodes: Inodes,
    pub(super) options: FatOptions,
}

impl<S: Read + Write + Seek> std::fmt::Debug for FatVolume<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatVolume")
            .field("geometry", &self.geometry)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The uid and gid of this process (the owner of `/proc/self`), the
/// default owner of the files.
fn process_owner() -> (u32, u32) {
    std::fs::metadata("/proc/self").map_or((0, 0), |m| (m.uid(), m.gid()))
}

impl<S: Read + Write + Seek> FatVolume<S> {
    /// Opens the volume on `storage` with the mount `options` (see
    /// [`FatOptions`]). An image that is not FAT, is truncated or whose
    /// allocation table is damaged is refused (`EINVAL`, `EIO`).
    pub fn new(storage: S, options: &str) -> Result<Self, Errno> {
        let options = FatOptions::parse(options, process_owner())?;
        let raw = Shared::new(storage);
        let geometry = check_image(&mut raw.handle())?;
        let fs_options = FsOptions::new().time_provider(&UTC_CLOCK);
        let disk = raw.handle();
        let fs = catch_unwind(AssertUnwindSafe(|| FileSystem::new(disk, fs_options)))
            .map_err(|_| Errno::EIO)?
            .map_err(|_| Errno::EINVAL)?;
        Ok(FatVolume {
            fs: Some(fs),
            raw,
            geometry,
            inodes: Inodes::new(),
            options,
        })
    }

    /// The options the volume was mounted with.
    pub fn options(&self) -> &FatOptions {
        &self.options
    }

    /// Runs `f` on the file system. A panic inside `fatfs` (which trusts
    /// the image) becomes `EIO`, and the volume is then given up without
    /// writing anything more.
    pub(super) fn with_fs<R>(
        &mut self,
        f: impl FnOnce(&FileSystem<Shared<S>>, &Geometry) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        let fs = self.fs.as_ref().ok_or(Errno::EIO)?;
        let geometry = self.geometry;
        match catch_unwind(AssertUnwindSafe(|| f(fs, &geometry))) {
            Ok(r) => r,
            Err(_) => {
                if let Some(fs) = self.fs.take() {
                    std::mem::forget(fs);
                }
                Err(Errno::EIO)
            }
        }
    }

    /// The path of `ino`.
    pub(super) fn path(&self, ino: u64) -> Result<String, Errno> {
        self.inodes
            .path(ino)
            .map(str::to_owned)
            .ok_or(Errno::ENOENT)
    }

    /// Fails with `EROFS` on a read-only mount.
    pub(crate) fn writable(&self) -> Result<(), Errno> {
        if self.options.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// The attributes of `ino` as described by `meta`.
    pub(super) fn attr(&self, ino: u64, meta: &Meta, subdirs: u32) -> FileAttr {
        let cluster = self.geometry.cluster_bytes();
        let (kind, perm, nlink, size) = if meta.is_dir {
            (
                FileType::Directory,
                self.options.dir_perm(),
                2 + subdirs,
                cluster,
            )
        } else {
            (
                FileType::RegularFile,
                self.options.file_perm(meta.read_only),
                1,
                meta.size,
            )
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(cluster) * cluster / 512,
            atime: meta.accessed,
            mtime: meta.modified,
            ctime: meta.modified,
            crtime: meta.created,
            kind,
            perm,
            nlink,
            uid: self.options.uid,
            gid: self.options.gid,
            rdev: 0,
            blksize: cluster as u32,
            flags: 0,
        }
    }

    /// The metadata of the file at `path` and, for a directory, its number
    /// of subdirectories.
    pub(super) fn meta(&mut self, path: &str) -> Result<(Meta, u32), Errno> {
        let path = path.to_owned();
        self.with_fs(|fs, g| {
            let (meta, dir) = if path.is_empty() {
                (Meta::root(), Some(fs.root_dir()))
            } else {
                let e = entries::entry(fs, &path, g)?;
                let dir = e.is_dir().then(|| e.to_dir());
                (Meta::of(&e), dir)
            };
            let subdirs = match dir {
                Some(d) => entries::list(&d, g)?.iter().filter(|e| e.is_dir()).count() as u32,
                None => 0,
            };
            Ok((meta, subdirs))
        })
    }

    /// The attributes of `ino` (getattr).
    pub fn getattr(&mut self, ino: u64) -> Result<FileAttr, Errno> {
        let path = self.path(ino)?;
        let (meta, subdirs) = self.meta(&path)?;
        Ok(self.attr(ino, &meta, subdirs))
    }

    /// The file called `name` in the directory `parent` (lookup).
    pub fn lookup(&mut self, parent: u64, name: &str) -> Result<FileAttr, Errno> {
        let dir = self.path(parent)?;
        match name {
            "." => return self.getattr(parent),
            ".." => {
                let up = inodes::parent(&dir).to_owned();
                let ino = self.inodes.number(&up);
                return self.getattr(ino);
            }
            _ => entries::check_name(name)?,
        }
        let stored = {
            let (dir, name) = (dir.clone(), name.to_owned());
            self.with_fs(move |fs, g| {
                let d = entries::open_dir(fs, &dir, g)?.0;
                let e = entries::find(&d, &name, g)?.ok_or(Errno::ENOENT)?;
                Ok(e.file_name())
            })?
        };
        let path = inodes::child(&dir, &stored);
        if path.len() > MAX_PATH {
            return Err(Errno::ENAMETOOLONG);
        }
        let (meta, subdirs) = self.meta(&path)?;
        let ino = self.inodes.number(&path);
        Ok(self.attr(ino, &meta, subdirs))
    }

    /// The entries of the directory `ino`, `.` and `..` first (readdir).
    pub fn readdir(&mut self, ino: u64) -> Result<Vec<DirEntryInfo>, Errno> {
        let dir = self.path(ino)?;
        let listed = {
            let dir = dir.clone();
            self.with_fs(move |fs, g| {
                let d = entries::open_dir(fs, &dir, g)?.0;
                Ok(entries::list(&d, g)?
                    .iter()
                    .map(|e| (e.file_name(), e.is_dir()))
                    .collect::<Vec<_>>())
            })?
        };
        let up = self.inodes.number(inodes::parent(&dir));
        let mut out = vec![
            DirEntryInfo {
                ino,
                kind: FileType::Directory,
                name: ".".into(),
            },
            DirEntryInfo {
                ino: if ino == ROOT { ROOT } else { up },
                kind: FileType::Directory,
                name: "..".into(),
            },
        ];
        for (name, is_dir) in listed {
            let path = inodes::child(&dir, &name);
            out.push(DirEntryInfo {
                ino: self.inodes.number(&path),
                kind: if is_dir {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                },
                name,
            });
        }
        Ok(out)
    }

    /// Up to `size` bytes of the file `ino` from `offset` (read).
    pub fn read(&mut self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let path = self.path(ino)?;
        if path.is_empty() {
            return Err(Errno::EISDIR);
        }
        self.with_fs(move |fs, g| {
            let e = entries::entry(fs, &path, g)?;
            if e.is_dir() {
                return Err(Errno::EISDIR);
            }
            let len = e.len();
            if offset >= len {
                return Ok(Vec::new());
            }
            let want = (len - offset).min(u64::from(size)) as usize;
            let mut f = e.to_file();
            f.seek(SeekFrom::Start(offset)).map_err(entries::errno)?;
            let mut buf = vec![0u8; want];
            let mut got = 0;
            while got < want {
                match f.read(&mut buf[got..]).map_err(entries::errno)? {
                    0 => break,
                    n => got += n,
                }
            }
            buf.truncate(got);
            Ok(buf)
        })
    }

    /// FAT has no symbolic links: `EINVAL`, as readlink(2) on a file that
    /// is not a link.
    pub fn readlink(&mut self, ino: u64) -> Result<Vec<u8>, Errno> {
        self.path(ino)?;
        Err(Errno::EINVAL)
    }

    /// Sizes and free space (statfs); blocks are clusters.
    pub fn statfs(&mut self) -> Result<FsStat, Errno> {
        let stats = self.with_fs(|fs, _| fs.stats().map_err(entries::errno))?;
        let cluster = u64::from(stats.cluster_size());
        Ok(FsStat {
            fs_type: MSDOS_SUPER_MAGIC,
            block_size: cluster,
            blocks: u64::from(stats.total_clusters()),
            blocks_free: u64::from(stats.free_clusters()),
            blocks_available: u64::from(stats.free_clusters()),
            files: 0,
            files_free: 0,
            fsid: 0,
            name_max: 255,
            fragment_size: cluster,
            flags: if self.options.read_only {
                libc::ST_RDONLY
            } else {
                0
            },
        })
    }

    /// Writes what is pending (the FAT32 free-cluster hint, the clean
    /// flag) and closes the volume; later calls answer `EIO`.
    pub fn unmount(&mut self) -> Result<(), Errno> {
        let fs = self.fs.take().ok_or(Errno::EIO)?;
        catch_unwind(AssertUnwindSafe(|| fs.unmount()))
            .map_err(|_| Errno::EIO)?
            .map_err(entries::errno)
    }
}
