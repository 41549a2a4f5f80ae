//! The file system of a umdev mount: the device node at the mount point
//! and, for a partitioned disk, the numbered nodes beside it (`TARGET1`,
//! `TARGET2`, ...; see `viewos_core::FileSystem::numbered_siblings`).
//!
//! A [`Device`] says which nodes exist and opens them; [`NodeFs`] keeps
//! what belongs to the nodes as files (permissions, owner, times), checks
//! permissions at open as the kernel does for a device node, answers
//! every other path call as the kernel answers it for a device node, and
//! wraps each open handle so that `fstat` shows the node and `-o debug`
//! logs each request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use viewos_core::creds::Creds;
use viewos_core::device::{major, minor, DeviceKind};
use viewos_core::hook::CallerMemory;
use viewos_core::{
    Errno, FileHandle, FileStat, FileSystem, FsStat, IoctlArg, Notifier, Opened, SetTime, Timespec,
};

/// A device a mount serves: node 0 is the mount point, nodes `N > 0` its
/// numbered siblings (a disk's partitions).
pub trait Device: Send + Sync {
    /// Character or block device.
    fn kind(&self) -> DeviceKind;

    /// The device number of `node`.
    fn rdev(&self, node: u32) -> u64;

    /// The numbered nodes that exist now; `None` for a device without
    /// them (the default).
    fn numbered(&self) -> Option<Vec<u32>> {
        None
    }

    /// The capacity in bytes of `node` ([`FileStat::size`]), or `None` if
    /// the node does not exist (now).
    fn capacity(&self, node: u32) -> Option<u64>;

    /// Opens `node` with open(2)'s `flags` (the access mode and the
    /// permissions are checked).
    fn open(&self, node: u32, flags: i32) -> Result<Box<dyn FileHandle>, Errno>;
}

/// What belongs to a node as a file.
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    /// Permission bits (`0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

impl Attr {
    /// Permissions `perm` for `uid`:`gid`, all times now.
    pub fn new(perm: u32, uid: u32, gid: u32) -> Attr {
        let t = now();
        Attr {
            perm: perm & 0o7777,
            uid,
            gid,
            atime: t,
            mtime: t,
            ctime: t,
        }
    }
}

fn now() -> Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

/// The device number the nodes' file system shows as theirs (`st_dev`),
/// an anonymous one as devtmpfs has.
const NODES_DEV: u64 = 5;
/// The magic number statfs reports (devtmpfs is a tmpfs).
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// Inode numbers: each mount takes a range.
static NEXT_INO: AtomicU64 = AtomicU64::new(1 << 20);

/// The nodes of one mount.
struct Nodes {
    name: String,
    device: Arc<dyn Device>,
    default: Attr,
    attrs: Mutex<HashMap<u32, Attr>>,
    creds: Option<Creds>,
    ino: u64,
    debug: bool,
}

impl Nodes {
    /// Whose permissions are checked.
    fn creds(&self) -> Creds {
        self.creds.clone().unwrap_or_else(Creds::caller)
    }

    fn attr(&self, node: u32) -> Attr {
        *self
            .attrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&node)
            .unwrap_or(&self.default)
    }

    fn set_attr(&self, node: u32, f: impl FnOnce(&mut Attr)) {
        let mut attrs = self.attrs.lock().unwrap_or_else(PoisonError::into_inner);
        let a = attrs.entry(node).or_insert(self.default);
        f(a);
        a.ctime = now();
    }

    fn stat(&self, node: u32) -> Result<FileStat, Errno> {
        let size = self.device.capacity(node).ok_or(Errno::ENOENT)?;
        let a = self.attr(node);
        Ok(FileStat {
            dev: NODES_DEV,
            ino: self.ino + u64::from(node),
            mode: self.device.kind().mode_bits() | a.perm,
            nlink: 1,
            uid: a.uid,
            gid: a.gid,
            rdev: self.device.rdev(node),
            size,
            blksize: 4096,
            blocks: 0,
            atime: a.atime,
            mtime: a.mtime,
            ctime: a.ctime,
        })
    }

    /// A debug line about a request on `node`, as `NAME_OP c MAJ MIN ...`.
    fn log(&self, node: u32, op: &str, rest: std::fmt::Arguments<'_>) {
        if self.debug {
            let rdev = self.device.rdev(node);
            let k = match self.device.kind() {
                DeviceKind::Char => 'c',
                DeviceKind::Block => 'b',
            };
            eprintln!(
                "{}_{op} {k} {} {} {rest}",
                self.name,
                major(rdev),
                minor(rdev)
            );
        }
    }
}

/// A mount's nodes as a file system.
pub struct NodeFs {
    nodes: Arc<Nodes>,
}

/// How a [`NodeFs`] is made.
pub struct NodeOptions {
    /// The name of the device kind in debug lines (`null`, `mbr`, ...).
    pub name: String,
    /// The nodes' permissions and owner when made.
    pub attr: Attr,
    /// Who permissions are checked for; `None`: the program making each
    /// call ([`Creds::caller`]).
    pub creds: Option<Creds>,
    /// Log each request on stderr.
    pub debug: bool,
}

impl NodeFs {
    /// The nodes of `device`.
    pub fn new(device: Arc<dyn Device>, opts: NodeOptions) -> NodeFs {
        let ino = NEXT_INO.fetch_add(1024, Ordering::Relaxed);
        NodeFs {
            nodes: Arc::new(Nodes {
                name: opts.name,
                device,
                default: opts.attr,
                attrs: Mutex::new(HashMap::new()),
                creds: opts.creds,
                ino,
                debug: opts.debug,
            }),
        }
    }

    /// The node `path` names, existing or not: `/` is 0, `/N` is N for a
    /// device with numbered nodes. `ENOENT` for any other name,
    /// `ENOTDIR` below a node.
    fn node_of(&self, path: &Path) -> Result<u32, Errno> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        if bytes == b"/" {
            return Ok(0);
        }
        let rest = bytes.strip_prefix(b"/").ok_or(Errno::ENOENT)?;
        let (name, below) = match rest.iter().position(|&b| b == b'/') {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        let number = std::str::from_utf8(name)
            .ok()
            .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|_| self.nodes.device.numbered().is_some());
        match number {
            Some(n) if below => {
                if self.exists(n) {
                    Err(Errno::ENOTDIR)
                } else {
                    Err(Errno::ENOENT)
                }
            }
            Some(n) => Ok(n),
            None => Err(Errno::ENOENT),
        }
    }

    fn exists(&self, node: u32) -> bool {
        self.nodes.device.capacity(node).is_some()
    }

    /// The existing node `path` names.
    fn existing(&self, path: &Path) -> Result<u32, Errno> {
        let n = self.node_of(path)?;
        if self.exists(n) {
            Ok(n)
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// The kernel's permission check of the view's user on `node`.
    fn may(&self, node: u32, want: u32) -> Result<(), Errno> {
        let a = self.nodes.attr(node);
        let mode = self.nodes.device.kind().mode_bits() | a.perm;
        self.nodes.creds().may(mode, a.uid, a.gid, want)
    }

    /// A call that would make a new name: `EEXIST` for an existing node,
    /// `EACCES` otherwise (only device nodes live here).
    fn no_new_names(&self, path: &Path) -> Result<(), Errno> {
        match self.existing(path) {
            Ok(_) => Err(Errno::EEXIST),
            Err(e) if e == Errno::ENOENT => Err(Errno::EACCES),
            Err(e) => Err(e),
        }
    }

    /// A call that would remove or move a node: the mount point is busy,
    /// the others are the device's to make.
    fn fixed(&self, path: &Path) -> Result<(), Errno> {
        match self.existing(path)? {
            0 => Err(Errno::EBUSY),
            _ => Err(Errno::new(libc::EPERM)),
        }
    }
}

impl FileSystem for NodeFs {
    fn open(&self, path: &Path, flags: i32, _mode: u32) -> Result<Opened, Errno> {
        let node = match self.node_of(path) {
            Ok(n) if self.exists(n) => n,
            Ok(_) if flags & libc::O_CREAT != 0 => return Err(Errno::EACCES),
            Ok(_) => return Err(Errno::ENOENT),
            Err(e) => return Err(e),
        };
        if flags & (libc::O_CREAT | libc::O_EXCL) == libc::O_CREAT | libc::O_EXCL {
            return Err(Errno::EEXIST);
        }
        if flags & libc::O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        let path_only = flags & libc::O_PATH != 0;
        if !path_only {
            let want = match flags & libc::O_ACCMODE {
                libc::O_RDONLY => libc::R_OK,
                libc::O_WRONLY => libc::W_OK,
                _ => libc::R_OK | libc::W_OK,
            };
            self.may(node, want as u32)?;
        }
        let inner = if path_only {
            None
        } else {
            Some(self.nodes.device.open(node, flags)?)
        };
        self.nodes.log(node, "open", format_args!("flag {flags:x}"));
        Ok(Opened::Served(Box::new(NodeHandle {
            nodes: self.nodes.clone(),
            node,
            flags,
            inner,
        })))
    }

    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        let n = self.node_of(path)?;
        self.nodes.stat(n)
    }

    fn readlink(&self, path: &Path) -> Result<std::path::PathBuf, Errno> {
        self.existing(path)?;
        Err(Errno::EINVAL)
    }

    fn access(&self, path: &Path, mode: i32) -> Result<(), Errno> {
        let n = self.existing(path)?;
        self.may(n, mode as u32)
    }

    fn mkdir(&self, path: &Path, _mode: u32) -> Result<(), Errno> {
        self.no_new_names(path)
    }

    fn rmdir(&self, path: &Path) -> Result<(), Errno> {
        self.existing(path)?;
        Err(Errno::ENOTDIR)
    }

    fn unlink(&self, path: &Path) -> Result<(), Errno> {
        self.fixed(path)
    }

    fn rename(&self, from: &Path, _to: &Path, _flags: u32) -> Result<(), Errno> {
        self.fixed(from)
    }

    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        self.existing(from)?;
        self.no_new_names(to)
    }

    fn symlink(&self, _target: &Path, path: &Path) -> Result<(), Errno> {
        self.no_new_names(path)
    }

    fn mknod(&self, path: &Path, _mode: u32, _rdev: u64) -> Result<(), Errno> {
        self.no_new_names(path)
    }

    fn chmod(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        let n = self.existing(path)?;
        if !self.nodes.creds().owns(self.nodes.attr(n).uid) {
            return Err(Errno::new(libc::EPERM));
        }
        self.nodes.set_attr(n, |a| a.perm = mode & 0o7777);
        Ok(())
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let n = self.existing(path)?;
        let a = self.nodes.attr(n);
        let c = &self.nodes.creds();
        // As the kernel: root changes anything; the owner may only give
        // the node to a group of theirs.
        let allowed = c.is_root()
            || (c.uid == a.uid
                && uid.map_or(true, |u| u == a.uid)
                && gid.map_or(true, |g| c.in_group(g)));
        if !allowed {
            return Err(Errno::new(libc::EPERM));
        }
        self.nodes.set_attr(n, |a| {
            a.uid = uid.unwrap_or(a.uid);
            a.gid = gid.unwrap_or(a.gid);
        });
        Ok(())
    }

    fn utimens(&self, path: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        let n = self.existing(path)?;
        let owner = self.nodes.creds().owns(self.nodes.attr(n).uid);
        let to_now = matches!(
            (atime, mtime),
            (SetTime::Now | SetTime::Omit, SetTime::Now | SetTime::Omit)
        );
        // As the kernel: the owner sets any time; a writer may set now.
        if !owner {
            if !to_now {
                return Err(Errno::new(libc::EPERM));
            }
            self.may(n, libc::W_OK as u32)?;
        }
        let t = now();
        let pick = |s: SetTime, old: Timespec| match s {
            SetTime::Now => t,
            SetTime::Omit => old,
            SetTime::At(x) => x,
        };
        self.nodes.set_attr(n, |a| {
            a.atime = pick(atime, a.atime);
            a.mtime = pick(mtime, a.mtime);
        });
        Ok(())
    }

    fn getxattr(&self, path: &Path, _name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.existing(path)?;
        Err(Errno::new(libc::ENODATA))
    }

    fn setxattr(&self, path: &Path, _: &[u8], _: &[u8], _: i32) -> Result<(), Errno> {
        self.existing(path)?;
        Err(Errno::EOPNOTSUPP)
    }

    fn listxattr(&self, path: &Path) -> Result<Vec<u8>, Errno> {
        self.existing(path)?;
        Ok(Vec::new())
    }

    fn removexattr(&self, path: &Path, _name: &[u8]) -> Result<(), Errno> {
        self.existing(path)?;
        Err(Errno::new(libc::ENODATA))
    }

    fn statfs(&self, path: &Path) -> Result<FsStat, Errno> {
        self.existing(path)?;
        Ok(FsStat {
            fs_type: TMPFS_MAGIC,
            block_size: 4096,
            name_max: 255,
            fragment_size: 4096,
            ..FsStat::default()
        })
    }

    fn truncate(&self, path: &Path, _len: u64) -> Result<(), Errno> {
        // truncate(2) of anything but a regular file or a directory.
        self.existing(path)?;
        Err(Errno::EINVAL)
    }

    fn numbered_siblings(&self) -> Option<Vec<u32>> {
        self.nodes.device.numbered()
    }
}

/// An open node: the device's handle, with the node's status and the
/// debug lines. `inner` is `None` for an `O_PATH` open, which does not
/// open the device.
struct NodeHandle {
    nodes: Arc<Nodes>,
    node: u32,
    flags: i32,
    inner: Option<Box<dyn FileHandle>>,
}

impl NodeHandle {
    fn inner(&self) -> Result<&dyn FileHandle, Errno> {
        self.inner.as_deref().ok_or(Errno::EBADF)
    }
}

impl FileHandle for NodeHandle {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let r = self.inner()?.read(offset, buf);
        self.nodes.log(
            self.node,
            "read",
            format_args!("len {} pos {offset} -> {r:?}", buf.len()),
        );
        r
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let r = self.inner()?.write(offset, data);
        self.nodes.log(
            self.node,
            "write",
            format_args!("len {} pos {offset} -> {r:?}", data.len()),
        );
        r
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        self.nodes.stat(self.node)
    }

    fn truncate(&self, _len: u64) -> Result<(), Errno> {
        // ftruncate(2) of a device.
        Err(Errno::EINVAL)
    }

    fn sync(&self, data_only: bool) -> Result<(), Errno> {
        self.inner()?.sync(data_only)
    }

    fn seekable(&self) -> bool {
        self.inner.as_ref().map_or(true, |h| h.seekable())
    }

    fn extent(&self) -> Option<viewos_core::handle::Extent<'_>> {
        // With `debug` every transfer is logged, so each one must come here.
        if self.nodes.debug {
            return None;
        }
        self.inner.as_ref()?.extent()
    }

    fn ioctl(&self, request: u32, arg: u64, data: &mut [u8]) -> Result<i64, Errno> {
        self.inner()?.ioctl(request, arg, data)
    }

    fn ioctl_arg(&self, request: u32) -> Option<IoctlArg> {
        self.inner.as_ref()?.ioctl_arg(request)
    }

    fn ioctl_with_memory(
        &self,
        request: u32,
        arg: u64,
        data: &mut [u8],
        memory: &dyn CallerMemory,
    ) -> Result<i64, Errno> {
        let r = self.inner()?.ioctl_with_memory(request, arg, data, memory);
        self.nodes.log(
            self.node,
            "ioctl",
            format_args!("req {request:#x} -> {r:?}"),
        );
        r
    }

    fn poll(&self) -> u32 {
        self.inner.as_ref().map_or(
            viewos_core::handle::READABLE | viewos_core::handle::WRITABLE,
            |h| h.poll(),
        )
    }

    fn watch(&self, notifier: Notifier) {
        if let Some(h) = &self.inner {
            h.watch(notifier);
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.nodes
            .log(self.node, "release", format_args!("flag {:x}", self.flags));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device of fixed nodes, each a few bytes.
    struct Fixed(Mutex<Vec<u32>>);

    struct Bytes;
    impl FileHandle for Bytes {
        fn read(&self, _: u64, buf: &mut [u8]) -> Result<usize, Errno> {
            buf[0] = 42;
            Ok(1)
        }
    }

    impl Device for Fixed {
        fn kind(&self) -> DeviceKind {
            DeviceKind::Block
        }
        fn rdev(&self, node: u32) -> u64 {
            viewos_core::device::makedev(3, node)
        }
        fn numbered(&self) -> Option<Vec<u32>> {
            Some(self.0.lock().unwrap().clone())
        }
        fn capacity(&self, node: u32) -> Option<u64> {
            (node == 0 || self.0.lock().unwrap().contains(&node))
                .then_some(512 * u64::from(node + 1))
        }
        fn open(&self, _: u32, _: i32) -> Result<Box<dyn FileHandle>, Errno> {
            Ok(Box::new(Bytes))
        }
    }

    fn nodes_for(creds: Creds) -> (NodeFs, Arc<Fixed>) {
        let creds = Some(creds);
        let dev = Arc::new(Fixed(Mutex::new(vec![1, 2])));
        let fs = NodeFs::new(
            dev.clone(),
            NodeOptions {
                name: "test".into(),
                attr: Attr::new(0o660, 1000, 1000),
                creds,
                debug: false,
            },
        );
        (fs, dev)
    }

    fn user(uid: u32) -> Creds {
        Creds {
            uid,
            gid: uid,
            groups: vec![],
        }
    }

    #[test]
    fn nodes_stat_as_devices_and_follow_the_device() {
        let (fs, dev) = nodes_for(user(1000));
        let st = fs.lstat(Path::new("/")).unwrap();
        assert_eq!(st.mode, libc::S_IFBLK | 0o660);
        assert_eq!(st.rdev, viewos_core::device::makedev(3, 0));
        assert_eq!(st.size, 512);
        assert_eq!(fs.lstat(Path::new("/2")).unwrap().size, 1536);
        assert_eq!(fs.lstat(Path::new("/3")), Err(Errno::ENOENT));
        assert_eq!(fs.lstat(Path::new("/01")), Err(Errno::ENOENT));
        assert_eq!(fs.lstat(Path::new("/x")), Err(Errno::ENOENT));
        assert_eq!(fs.lstat(Path::new("/1/x")), Err(Errno::ENOTDIR));
        assert_eq!(fs.numbered_siblings(), Some(vec![1, 2]));
        dev.0.lock().unwrap().push(3);
        assert!(fs.lstat(Path::new("/3")).is_ok());
        assert_eq!(fs.numbered_siblings(), Some(vec![1, 2, 3]));
    }

    #[test]
    fn opens_check_permissions_and_flags() {
        let (fs, _) = nodes_for(user(1000));
        let Opened::Served(h) = fs.open(Path::new("/1"), libc::O_RDWR, 0).unwrap() else {
            panic!("a served node")
        };
        let mut b = [0u8; 4];
        assert_eq!(h.read(0, &mut b), Ok(1));
        assert_eq!(
            h.stat().unwrap().ino,
            fs.lstat(Path::new("/1")).unwrap().ino
        );
        assert_eq!(h.truncate(0), Err(Errno::EINVAL));
        let err = |p: &str, flags| fs.open(Path::new(p), flags, 0).err();
        assert_eq!(err("/9", libc::O_RDONLY), Some(Errno::ENOENT));
        assert_eq!(
            err("/9", libc::O_CREAT | libc::O_WRONLY),
            Some(Errno::EACCES)
        );
        assert_eq!(
            err("/", libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY),
            Some(Errno::EEXIST)
        );
        assert_eq!(err("/", libc::O_DIRECTORY), Some(Errno::ENOTDIR));
        let (other, _) = nodes_for(user(2000));
        assert_eq!(
            other.open(Path::new("/"), libc::O_RDONLY, 0).err(),
            Some(Errno::EACCES)
        );
        // O_PATH opens without the permission and without the device.
        assert!(other.open(Path::new("/"), libc::O_PATH, 0).is_ok());
        assert_eq!(other.access(Path::new("/"), libc::R_OK), Err(Errno::EACCES));
        assert_eq!(fs.access(Path::new("/"), libc::R_OK | libc::W_OK), Ok(()));
    }

    #[test]
    fn attributes_change_as_the_kernel_allows() {
        let (fs, _) = nodes_for(user(1000));
        fs.chmod(Path::new("/1"), 0o600).unwrap();
        assert_eq!(fs.lstat(Path::new("/1")).unwrap().mode & 0o777, 0o600);
        assert_eq!(fs.lstat(Path::new("/")).unwrap().mode & 0o777, 0o660);
        assert_eq!(
            fs.chown(Path::new("/"), Some(0), None),
            Err(Errno::new(libc::EPERM))
        );
        assert_eq!(fs.chown(Path::new("/"), None, Some(1000)), Ok(()));
        let (root, _) = nodes_for(user(0));
        assert_eq!(root.chown(Path::new("/"), Some(5), Some(6)), Ok(()));
        assert_eq!(root.lstat(Path::new("/")).unwrap().uid, 5);
        let (other, _) = nodes_for(user(2000));
        assert_eq!(
            other.chmod(Path::new("/"), 0o666),
            Err(Errno::new(libc::EPERM))
        );
        let t = Timespec { sec: 7, nsec: 0 };
        fs.utimens(Path::new("/"), SetTime::At(t), SetTime::Omit)
            .unwrap();
        assert_eq!(fs.lstat(Path::new("/")).unwrap().atime, t);
    }

    #[test]
    fn names_cannot_be_made_or_removed() {
        let (fs, _) = nodes_for(user(1000));
        assert_eq!(fs.unlink(Path::new("/")), Err(Errno::EBUSY));
        assert_eq!(fs.unlink(Path::new("/1")), Err(Errno::new(libc::EPERM)));
        assert_eq!(fs.unlink(Path::new("/7")), Err(Errno::ENOENT));
        assert_eq!(fs.mknod(Path::new("/1"), 0, 0), Err(Errno::EEXIST));
        assert_eq!(fs.mknod(Path::new("/5"), 0, 0), Err(Errno::EACCES));
        assert_eq!(fs.truncate(Path::new("/"), 0), Err(Errno::EINVAL));
        assert_eq!(fs.readlink(Path::new("/")), Err(Errno::EINVAL));
        assert_eq!(fs.rmdir(Path::new("/")), Err(Errno::ENOTDIR));
    }
}
