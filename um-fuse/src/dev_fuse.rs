//! Unmodified FUSE programs in a view: a virtual `/dev/fuse` and mount(2)
//! of type `fuse` / `fuse.TYPE` with `fd=N`.
//!
//! What libfuse does, and what answers it here:
//! 1. it opens `/dev/fuse`: umfuse mounts [`DevFuseNode`] there (a
//!    character device 10:229, mode 0666, whatever the host has); opening
//!    it makes a session socket pair ([`crate::connection::pair`]) and gives
//!    the program the server end, a real fd: the program's reads and writes
//!    of requests and replies never stop at the host. The client end waits
//!    in [`Sessions`], keyed by the server end's inode;
//! 2. it calls `mount(source, target, "fuse.TYPE", flags,
//!    "fd=N,rootmode=...,user_id=...,group_id=...")`: the host hands the
//!    service a copy of fd N (`MountRequest::fd`), whose inode finds the
//!    waiting client end. The mount is a [`Deferred`] file system: the
//!    program is still inside mount(2), so `FUSE_INIT` is sent at the first
//!    call on the mount, not now;
//! 3. at umount the session is closed (DESTROY, then the socket is shut
//!    down); libfuse's loop sees the end and the program exits, writing
//!    back what it holds (fuse2fs closes its image).
//!
//! The program runs inside the view: its own file I/O goes through the
//! view (an image inside another virtual mount works).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use viewos_core::{Errno, FileStat, FileSystem, FsStat, MountRequest, Opened, SetTime};

use crate::connection;

/// The device number of `/dev/fuse` (misc major 10, minor 229).
pub const DEV_FUSE_RDEV: u64 = (10 << 8) | 229;

/// Where umfuse mounts its `/dev/fuse`.
pub const DEV_FUSE_PATH: &str = "/dev/fuse";

/// The mount type of umfuse's own `/dev/fuse` mount.
pub const DEV_FUSE_TYPE: &str = "umfuse-devfuse";

/// Client ends of sessions opened through `/dev/fuse` and not mounted yet.
#[derive(Default)]
pub struct Sessions {
    waiting: Mutex<HashMap<u64, OwnedFd>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn inode(fd: impl AsFd) -> Result<u64, Errno> {
    Ok(nix::sys::stat::fstat(fd.as_fd())
        .map_err(|e| Errno::new(e as i32))?
        .st_ino)
}

/// True if the other end of `sock` is closed (every copy).
fn peer_gone(sock: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => false,
    }
}

impl Sessions {
    /// A new session: keeps its client end, returns the server end for
    /// the program that opened `/dev/fuse`.
    fn open(&self) -> Result<OwnedFd, Errno> {
        let (client, server) = connection::pair()?;
        let key = inode(&server)?;
        let mut waiting = lock(&self.waiting);
        // Sessions whose program closed `/dev/fuse` without mounting.
        waiting.retain(|_, c| !peer_gone(c));
        waiting.insert(key, client);
        Ok(server)
    }

    /// The client end of the session whose server end `fd` is (a copy of
    /// the program's `fd=N`); `EINVAL` if it is not one, as the kernel
    /// answers a FUSE mount with a bad fd.
    pub fn take(&self, fd: impl AsFd) -> Result<OwnedFd, Errno> {
        let key = inode(fd)?;
        lock(&self.waiting).remove(&key).ok_or(Errno::EINVAL)
    }
}

/// The `/dev/fuse` node of a view (mounted on [`DEV_FUSE_PATH`]).
pub struct DevFuseNode {
    sessions: Arc<Sessions>,
}

impl DevFuseNode {
    /// The node, opening sessions into `sessions`.
    pub fn new(sessions: Arc<Sessions>) -> DevFuseNode {
        DevFuseNode { sessions }
    }

    fn only_root(path: &Path) -> Result<(), Errno> {
        if path == Path::new("/") {
            Ok(())
        } else {
            Err(Errno::ENOTDIR)
        }
    }
}

impl FileSystem for DevFuseNode {
    fn open(&self, path: &Path, flags: i32, _mode: u32) -> Result<Opened, Errno> {
        Self::only_root(path)?;
        if flags & libc::O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        Ok(Opened::Backed(self.sessions.open()?))
    }

    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        Self::only_root(path)?;
        Ok(FileStat {
            dev: 5,
            ino: 229,
            mode: libc::S_IFCHR | 0o666,
            nlink: 1,
            rdev: DEV_FUSE_RDEV,
            blksize: 4096,
            ..FileStat::default()
        })
    }

    fn access(&self, path: &Path, _mode: i32) -> Result<(), Errno> {
        Self::only_root(path)
    }

    fn chmod(&self, path: &Path, _mode: u32) -> Result<(), Errno> {
        Self::only_root(path)?;
        Err(Errno::EPERM)
    }

    fn getxattr(&self, path: &Path, _name: &[u8]) -> Result<Vec<u8>, Errno> {
        Self::only_root(path)?;
        Err(Errno::new(libc::ENODATA))
    }

    fn listxattr(&self, path: &Path) -> Result<Vec<u8>, Errno> {
        Self::only_root(path)?;
        Ok(Vec::new())
    }

    fn chown(&self, path: &Path, _uid: Option<u32>, _gid: Option<u32>) -> Result<(), Errno> {
        Self::only_root(path)?;
        Err(Errno::EPERM)
    }
}

/// The options of a `fuse`/`fuse.TYPE` mount, as libfuse writes them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KernelOptions {
    /// `user_id=`: the ids of every request.
    pub user_id: u32,
    /// `group_id=`.
    pub group_id: u32,
    /// `default_permissions`: the kernel checks permissions (`human`).
    pub default_permissions: bool,
}

/// Parses the options of a `fuse` mount; unknown ones are `EINVAL`, as
/// from the kernel.
pub fn parse_kernel_options(options: &str) -> Result<KernelOptions, Errno> {
    let mut out = KernelOptions::default();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("fd" | "rootmode" | "max_read" | "blksize", v)) => {
                v.parse::<u64>()
                    .or_else(|_| u64::from_str_radix(v, 8))
                    .map_err(|_| Errno::EINVAL)?;
            }
            Some(("user_id", v)) => out.user_id = v.parse().map_err(|_| Errno::EINVAL)?,
            Some(("group_id", v)) => out.group_id = v.parse().map_err(|_| Errno::EINVAL)?,
            None if o == "default_permissions" => out.default_permissions = true,
            None if matches!(
                o,
                "allow_other" | "ro" | "rw" | "nosuid" | "nodev" | "noexec" | "sync" | "async"
            ) => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    Ok(out)
}

/// True for the mount types of unmodified FUSE programs.
pub fn is_kernel_fuse_type(fstype: &str) -> bool {
    fstype == "fuse" || fstype == "fuseblk" || fstype.starts_with("fuse.")
}

/// Makes the file system of a mount when it is first used.
type Maker = Box<dyn FnOnce() -> Result<Arc<dyn FileSystem>, Errno> + Send>;

/// A file system made at its first call (see the module docs: the FUSE
/// program is inside mount(2) when the mount is made). If making it
/// fails, every call fails with that error.
pub struct Deferred {
    maker: Mutex<Option<Maker>>,
    fs: OnceLock<Result<Arc<dyn FileSystem>, Errno>>,
}

impl Deferred {
    /// A file system `make` makes when first used.
    pub fn new(
        make: impl FnOnce() -> Result<Arc<dyn FileSystem>, Errno> + Send + 'static,
    ) -> Deferred {
        Deferred {
            maker: Mutex::new(Some(Box::new(make))),
            fs: OnceLock::new(),
        }
    }

    fn fs(&self) -> Result<&Arc<dyn FileSystem>, Errno> {
        self.fs
            .get_or_init(|| match lock(&self.maker).take() {
                Some(make) => make(),
                None => Err(Errno::EIO),
            })
            .as_ref()
            .map_err(|e| *e)
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        // Closing a session waits for the program's answer to DESTROY; the
        // program is a process of the view, which may need the host thread
        // that drops the mount: close it from a thread of its own.
        if let Some(Ok(fs)) = self.fs.take() {
            let _ = std::thread::Builder::new()
                .name("umfuse-close".into())
                .spawn(move || drop(fs));
        }
    }
}

impl FileSystem for Deferred {
    fn open(&self, path: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        self.fs()?.open(path, flags, mode)
    }
    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        self.fs()?.lstat(path)
    }
    fn readlink(&self, path: &Path) -> Result<PathBuf, Errno> {
        self.fs()?.readlink(path)
    }
    fn access(&self, path: &Path, mode: i32) -> Result<(), Errno> {
        self.fs()?.access(path, mode)
    }
    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        self.fs()?.mkdir(path, mode)
    }
    fn rmdir(&self, path: &Path) -> Result<(), Errno> {
        self.fs()?.rmdir(path)
    }
    fn unlink(&self, path: &Path) -> Result<(), Errno> {
        self.fs()?.unlink(path)
    }
    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        self.fs()?.rename(from, to, flags)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        self.fs()?.link(from, to)
    }
    fn symlink(&self, target: &Path, path: &Path) -> Result<(), Errno> {
        self.fs()?.symlink(target, path)
    }
    fn chmod(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        self.fs()?.chmod(path, mode)
    }
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        self.fs()?.chown(path, uid, gid)
    }
    fn utimens(&self, path: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        self.fs()?.utimens(path, atime, mtime)
    }
    fn mknod(&self, path: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        self.fs()?.mknod(path, mode, rdev)
    }
    fn getxattr(&self, path: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.fs()?.getxattr(path, name)
    }
    fn setxattr(&self, path: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        self.fs()?.setxattr(path, name, value, flags)
    }
    fn listxattr(&self, path: &Path) -> Result<Vec<u8>, Errno> {
        self.fs()?.listxattr(path)
    }
    fn removexattr(&self, path: &Path, name: &[u8]) -> Result<(), Errno> {
        self.fs()?.removexattr(path, name)
    }
    fn statfs(&self, path: &Path) -> Result<FsStat, Errno> {
        self.fs()?.statfs(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> Result<(), Errno> {
        self.fs()?.truncate(path, len)
    }
}

/// The mount request of umfuse's `/dev/fuse`.
pub fn dev_fuse_mount() -> MountRequest {
    MountRequest {
        source: "umfuse".into(),
        target: DEV_FUSE_PATH.into(),
        fstype: DEV_FUSE_TYPE.into(),
        ..MountRequest::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_options_as_libfuse_writes_them() {
        let o = parse_kernel_options("fd=4,rootmode=40000,user_id=1000,group_id=100").unwrap();
        assert_eq!(
            (o.user_id, o.group_id, o.default_permissions),
            (1000, 100, false)
        );
        assert!(
            parse_kernel_options("fd=3,rootmode=40000,user_id=0,group_id=0,default_permissions")
                .unwrap()
                .default_permissions
        );
        assert_eq!(parse_kernel_options("fd=x"), Err(Errno::EINVAL));
        assert_eq!(parse_kernel_options("bogus"), Err(Errno::EINVAL));
        assert!(is_kernel_fuse_type("fuse.ext4"));
        assert!(is_kernel_fuse_type("fuse"));
        assert!(!is_kernel_fuse_type("fusex"));
    }

    #[test]
    fn sessions_are_found_by_their_server_end() {
        let sessions = Arc::new(Sessions::default());
        let node = DevFuseNode::new(sessions.clone());
        assert_eq!(node.lstat(Path::new("/")).unwrap().rdev, DEV_FUSE_RDEV);
        let Opened::Backed(server) = node.open(Path::new("/"), libc::O_RDWR, 0).unwrap() else {
            panic!("not a real fd")
        };
        let copy = server.try_clone().unwrap();
        assert!(sessions.take(&copy).is_ok());
        assert_eq!(sessions.take(&copy).err(), Some(Errno::EINVAL));
        let (other, _peer) = connection::pair().unwrap();
        assert_eq!(sessions.take(&other).err(), Some(Errno::EINVAL));
        // A session whose program closed /dev/fuse is forgotten at the
        // next open.
        let Opened::Backed(s2) = node.open(Path::new("/"), libc::O_RDWR, 0).unwrap() else {
            panic!("not a real fd")
        };
        let key = inode(&s2).unwrap();
        drop(s2);
        let _s3 = node.open(Path::new("/"), libc::O_RDWR, 0).unwrap();
        assert!(!lock(&sessions.waiting).contains_key(&key));
    }

    #[test]
    fn deferred_file_systems_are_made_at_first_use_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let made = Arc::new(AtomicUsize::new(0));
        let m = made.clone();
        let d = Deferred::new(move || {
            m.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(DevFuseNode::new(Arc::default())) as Arc<dyn FileSystem>)
        });
        assert_eq!(made.load(Ordering::SeqCst), 0);
        assert!(d.lstat(Path::new("/")).is_ok());
        assert!(d.lstat(Path::new("/")).is_ok());
        assert_eq!(made.load(Ordering::SeqCst), 1);
        let failing = Deferred::new(|| Err(Errno::new(libc::EPROTO)));
        assert_eq!(
            failing.lstat(Path::new("/")).err(),
            Some(Errno::new(libc::EPROTO))
        );
        assert_eq!(
            failing.mkdir(Path::new("/x"), 0).err(),
            Some(Errno::new(libc::EPROTO))
        );
    }
}
