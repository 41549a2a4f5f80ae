//! File systems mounted in a view: the [`FileSystem`] trait and the types
//! its methods use.
//!
//! A service that provides files (`umfuse`, `viewfs`, the `unreal` test
//! service) returns a [`FileSystem`] for each mount. The host resolves every
//! path the way the kernel would (cwd, dirfd, `..`, symlinks, including
//! symlinks inside the mount, through [`FileSystem::lstat`] and
//! [`FileSystem::readlink`]), so a file system only ever sees:
//! - absolute paths relative to its own root (`/` is the mount point);
//! - paths whose every component but the last is a directory of its own;
//! - a last component that may be a symlink only when the call does not
//!   follow symlinks (lstat, readlink, unlink, rename, ...).
//!
//! Every method has a default that answers `ENOSYS`, so a file system
//! implements only what it supports.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::Errno;

/// A time stamp: seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, 0..1e9.
    pub nsec: u32,
}

/// A time to set with [`FileSystem::utimens`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// The current time (`UTIME_NOW`).
    Now,
    /// Leave it as it is (`UTIME_OMIT`).
    Omit,
    /// This time.
    At(Timespec),
}

/// What `stat` reports about a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStat {
    /// Device number of the file system.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Type and permission bits (`S_IFREG | 0o644`).
    pub mode: u32,
    /// Hard link count.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number, for device special files.
    pub rdev: u64,
    /// Size in bytes. For a device (`S_IFBLK`, `S_IFCHR`), its capacity
    /// where it has one (a disk's bytes): the host shows 0 in the
    /// program's `st_size`, as the kernel does for device nodes, but ends
    /// `lseek(SEEK_END)` there, and a service using the device as an image
    /// learns its size from it.
    pub size: u64,
    /// Preferred I/O block size.
    pub blksize: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
}

impl FileStat {
    /// The file type bits (`S_IFMT` part of `mode`).
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// True for a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// Converts the metadata of a real file (for services backed by real
    /// files).
    pub fn from_metadata(m: &std::fs::Metadata) -> FileStat {
        use std::os::unix::fs::MetadataExt;
        let ts = |sec: i64, nsec: i64| Timespec {
            sec,
            nsec: nsec as u32,
        };
        FileStat {
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            size: m.size(),
            blksize: m.blksize(),
            blocks: m.blocks(),
            atime: ts(m.atime(), m.atime_nsec()),
            mtime: ts(m.mtime(), m.mtime_nsec()),
            ctime: ts(m.ctime(), m.ctime_nsec()),
        }
    }
}

/// What `statfs` reports about a file system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStat {
    /// The file system's magic number (`EXT4_SUPER_MAGIC`, ...).
    pub fs_type: u64,
    /// Block size for these counts.
    pub block_size: u64,
    /// Blocks in total.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Free blocks an unprivileged user may use.
    pub blocks_available: u64,
    /// Inodes in total.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
    /// File system id.
    pub fsid: u64,
    /// Longest name.
    pub name_max: u64,
    /// Fragment size.
    pub fragment_size: u64,
    /// Mount flags (`ST_RDONLY`, `ST_NOSUID`, ...).
    pub flags: u64,
}

/// The generic mount(8) option words (`nosuid`, `noatime`, ...) that any
/// file system accepts; the host, not the file system, gives them effect.
/// `ro` and `rw` are not among them: a file system reads those itself.
pub const GENERIC_MOUNT_OPTIONS: [&str; 17] = [
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "defaults",
    "noatime",
    "atime",
    "relatime",
    "norelatime",
    "strictatime",
    "nodiratime",
    "lazytime",
    "silent",
];

/// Parses the mounts a module makes at load, as `umview -p MODULE,SPECS`
/// gives them: specs separated by `;`, each
/// `type=TYPE,source=SOURCE,target=TARGET` plus mount options (`ro` sets
/// `MS_RDONLY`). Each spec must name a type starting with `type_prefix`, a
/// source and an absolute target; its options are left for the mount to
/// check. `Err` carries the first bad spec, for the module to report.
pub fn parse_preload_specs<'a>(
    specs: &'a str,
    type_prefix: &str,
) -> Result<Vec<MountRequest>, &'a str> {
    let mut out = Vec::new();
    for spec in specs.split(';').filter(|s| !s.is_empty()) {
        let mut req = MountRequest::default();
        let mut rest = Vec::new();
        for o in spec.split(',').filter(|o| !o.is_empty()) {
            match o.split_once('=') {
                Some(("type", v)) => req.fstype = v.to_string(),
                Some(("source", v)) => req.source = v.to_string(),
                Some(("target", v)) if v.starts_with('/') => req.target = v.into(),
                _ => rest.push(o),
            }
        }
        req.options = rest.join(",");
        if !req.fstype.starts_with(type_prefix)
            || req.source.is_empty()
            || req.target.as_os_str().is_empty()
        {
            return Err(spec);
        }
        if rest.contains(&"ro") {
            req.flags |= libc::MS_RDONLY;
        }
        out.push(req);
    }
    Ok(out)
}

/// A `mount` request, as `mount -t TYPE -o OPTIONS SOURCE TARGET` or a
/// module's own mounts at load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountRequest {
    /// What to mount (an image, a directory, `none`).
    pub source: String,
    /// Where, as a canonical absolute path in the view.
    pub target: PathBuf,
    /// The file system type (`umfuseext2`, `viewfs`).
    pub fstype: String,
    /// mount(2) flags (`MS_RDONLY`, ...).
    pub flags: u64,
    /// The option string (`-o`).
    pub options: String,
    /// The caller's open file that the option `fd=N` names, when the
    /// options have one: libfuse's mount(2) passes the `/dev/fuse` it
    /// opened this way. The host puts a copy of the calling process's fd N
    /// here. `None` without such an option, and for mounts made at load or
    /// with `-p`. The mount table does not keep it (a service that needs
    /// the file after [`crate::Service::mount`] keeps its own copy).
    pub fd: Option<SharedFd>,
    /// How the service can start programs in the view (a FUSE server
    /// behind its mount type, see [`crate::launch`]); set by
    /// [`crate::PreparedMount::mount`] from the view's launcher, `None`
    /// when the host has none.
    pub launcher: Option<crate::launch::Launcher>,
}

/// An open file shared by reference, as [`MountRequest::fd`] carries it.
/// Two `SharedFd`s are equal when they are the same copy.
#[derive(Clone, Debug)]
pub struct SharedFd(std::sync::Arc<OwnedFd>);

impl SharedFd {
    /// Wraps an open file.
    pub fn new(fd: OwnedFd) -> SharedFd {
        SharedFd(std::sync::Arc::new(fd))
    }
}

impl PartialEq for SharedFd {
    fn eq(&self, other: &SharedFd) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedFd {}

impl std::os::fd::AsFd for SharedFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A file a [`FileSystem`] opened for a program.
#[derive(Debug)]
#[non_exhaustive]
pub enum Opened {
    /// A real kernel file stands for the virtual one. The program gets it
    /// as its fd, and every call on it (read, write, lseek, mmap, fstat,
    /// getdents, fcntl, close, ...) runs natively, as fast as outside a
    /// view. For a directory, names looked up relative to it
    /// (`openat(fd, ...)`) also go to the kernel: a file system returns a
    /// backed directory only when the real directory's tree is exactly
    /// what the view should show below it.
    Backed(OwnedFd),
    /// The service answers every call on the file itself (see
    /// [`crate::handle`]): for files with no real counterpart, such as a
    /// file inside a disk image or a merged directory. Slower than
    /// [`Opened::Backed`]: each call on the fd stops at the host.
    Served(Box<dyn crate::FileHandle>),
}

impl std::fmt::Debug for dyn crate::FileHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileHandle")
    }
}

/// One mounted file system. All paths are relative to its root (see the
/// module docs). Methods default to `ENOSYS`.
pub trait FileSystem: Send + Sync {
    /// Opens `path` with open(2)'s `flags` (`O_ACCMODE`, `O_CREAT`,
    /// `O_EXCL`, `O_TRUNC`, `O_APPEND`, `O_DIRECTORY`, `O_NOFOLLOW`, ...);
    /// `mode` is the mode of a created file, the caller's umask already
    /// applied. A final symlink has already been followed unless the flags
    /// say not to (`O_NOFOLLOW`, or `O_CREAT | O_EXCL`).
    fn open(&self, path: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        let _ = (path, flags, mode);
        Err(Errno::ENOSYS)
    }

    /// Status of `path`, not following a final symlink.
    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        let _ = path;
        Err(Errno::ENOSYS)
    }

    /// The target of the symlink `path`.
    fn readlink(&self, path: &Path) -> Result<PathBuf, Errno> {
        let _ = path;
        Err(Errno::ENOSYS)
    }

    /// Checks access `mode` (`R_OK | W_OK | X_OK`, or `F_OK`) to `path`.
    fn access(&self, path: &Path, mode: i32) -> Result<(), Errno> {
        let _ = (path, mode);
        Err(Errno::ENOSYS)
    }

    /// Creates the directory `path`.
    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        let _ = (path, mode);
        Err(Errno::ENOSYS)
    }

    /// Removes the empty directory `path`.
    fn rmdir(&self, path: &Path) -> Result<(), Errno> {
        let _ = path;
        Err(Errno::ENOSYS)
    }

    /// Removes the non-directory `path`.
    fn unlink(&self, path: &Path) -> Result<(), Errno> {
        let _ = path;
        Err(Errno::ENOSYS)
    }

    /// Renames `from` to `to` (both in this file system); `flags` are
    /// renameat2's (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        let _ = (from, to, flags);
        Err(Errno::ENOSYS)
    }

    /// Creates the hard link `to` for `from`.
    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        let _ = (from, to);
        Err(Errno::ENOSYS)
    }

    /// Creates the symlink `path` pointing at `target` (stored as given).
    fn symlink(&self, target: &Path, path: &Path) -> Result<(), Errno> {
        let _ = (target, path);
        Err(Errno::ENOSYS)
    }

    /// Changes the permission bits of `path`.
    fn chmod(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        let _ = (path, mode);
        Err(Errno::ENOSYS)
    }

    /// Changes owner and/or group of `path` (not following a final symlink).
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let _ = (path, uid, gid);
        Err(Errno::ENOSYS)
    }

    /// Sets the access and modification times of `path` (not following a
    /// final symlink).
    fn utimens(&self, path: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        let _ = (path, atime, mtime);
        Err(Errno::ENOSYS)
    }

    /// Creates the special or regular file `path` (mknod(2)); `mode`
    /// includes the file type, the caller's umask already applied.
    fn mknod(&self, path: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        let _ = (path, mode, rdev);
        Err(Errno::ENOSYS)
    }

    /// The value of extended attribute `name` of `path` (not following a
    /// final symlink).
    fn getxattr(&self, path: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let _ = (path, name);
        Err(Errno::ENOSYS)
    }

    /// Sets extended attribute `name`; `flags` are `XATTR_CREATE` or
    /// `XATTR_REPLACE` (or 0).
    fn setxattr(&self, path: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        let _ = (path, name, value, flags);
        Err(Errno::ENOSYS)
    }

    /// The names of `path`'s extended attributes, each followed by a NUL.
    fn listxattr(&self, path: &Path) -> Result<Vec<u8>, Errno> {
        let _ = path;
        Err(Errno::ENOSYS)
    }

    /// Removes extended attribute `name`.
    fn removexattr(&self, path: &Path, name: &[u8]) -> Result<(), Errno> {
        let _ = (path, name);
        Err(Errno::ENOSYS)
    }

    /// Statistics of the file system holding `path` (statfs(2)).
    fn statfs(&self, path: &Path) -> Result<FsStat, Errno> {
        let _ = path;
        Err(Errno::ENOSYS)
    }

    /// Sets the length of `path`.
    fn truncate(&self, path: &Path, len: u64) -> Result<(), Errno> {
        let _ = (path, len);
        Err(Errno::ENOSYS)
    }

    /// For a mount on a device node (`/dev/hda`): the numbers `N` of the
    /// nodes `TARGETN` beside the mount point that this file system serves
    /// too (the disk's partitions, `/dev/hda1`, `/dev/hda2`, ...), which
    /// it sees as the paths `/N`. Asked once when the mount is made (then
    /// every name `TARGET` followed by digits is routed here, existing or
    /// not, so partitions can come and go) and again for each listing of
    /// the mount point's parent. The default, `None`: the mount serves only
    /// its mount point and the paths below it.
    fn numbered_siblings(&self) -> Option<Vec<u32>> {
        None
    }

    /// Sub-paths of the mount (absolute below its root, like `/proc`)
    /// that this file system leaves to what lies below it: the host
    /// resolves every path at or below one as if the mount were not there
    /// (the mount underneath, or the real file system), so calls there
    /// never reach this file system and run as fast as outside it. Asked
    /// once when the mount is made. The directories on the way to an
    /// exception stay this file system's (it lists the exception's name
    /// in them if it should show). Default: none.
    fn exceptions(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The network stack this mount is (see [`crate::stack`]): a mount
    /// of a stack service on `/dev/net/NAME`. Default: `None`, a plain
    /// file system.
    fn net_stack(&self) -> Option<&dyn crate::stack::NetStack> {
        None
    }

    /// Asked before the mount is undone (umount): `Err` keeps it (a stack
    /// mounted with `-o perm` answers `EBUSY`). Default: `Ok`.
    fn may_unmount(&self) -> Result<(), Errno> {
        Ok(())
    }
}
