//! `umfusereal`: a directory of the view served again through FUSE
//! (`mount -t umfusereal /some/dir /mnt`), the reference submodule for
//! tests: every program call on the mount goes through the whole FUSE
//! path (client, protocol, `fuser` session, this file system) and ends as
//! a call on the same file in SOURCE.
//!
//! All I/O goes through the `io` the mount received: the view as it was
//! before the mount, so SOURCE may itself be inside a virtual mount. Node
//! ids are the real inode numbers (the root is node 1), each remembered
//! with the path it was last looked up by; open files keep the handle
//! `io.open` returned.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fuser::{
    AccessFlags, FileHandle as Fh, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
};
use viewos_core::nesting::Subtree;
use viewos_core::real_file::RealFile;
use viewos_core::{Errno, FileHandle, FileSystem, MountRequest, Opened, SetTime};

use crate::attr::{dirent_type, file_attr, timespec};

/// How long the client may trust names and attributes.
const TTL: Duration = Duration::from_secs(1);

fn fe(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.raw())
}

/// Node ids and the paths they stand for.
#[derive(Default)]
struct Inodes {
    by_ino: HashMap<u64, (PathBuf, u64)>,
}

/// The passthrough file system (see the module docs).
pub struct RealFuse {
    fs: Subtree,
    inodes: Mutex<Inodes>,
    files: Mutex<HashMap<u64, Arc<dyn FileHandle>>>,
    next_fh: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn into_handle(o: Opened) -> Result<Arc<dyn FileHandle>, Errno> {
    match o {
        Opened::Backed(fd) => Ok(Arc::new(RealFile::new(std::fs::File::from(fd)))),
        Opened::Served(h) => Ok(Arc::from(h)),
        _ => Err(Errno::EIO),
    }
}

fn set_time(t: Option<TimeOrNow>) -> SetTime {
    match t {
        None => SetTime::Omit,
        Some(TimeOrNow::Now) => SetTime::Now,
        Some(TimeOrNow::SpecificTime(t)) => SetTime::At(timespec(t)),
    }
}

impl RealFuse {
    /// Serves the directory `source` (an absolute path of the view) of
    /// `io`.
    pub fn new(source: &Path, io: Arc<dyn FileSystem>) -> Result<RealFuse, Errno> {
        if !source.is_absolute() {
            return Err(Errno::EINVAL);
        }
        if !io.lstat(source)?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(RealFuse {
            fs: Subtree::new(source, io),
            inodes: Mutex::new(Inodes::default()),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        })
    }

    /// The submodule's factory: SOURCE of `request` in `io`.
    pub fn for_mount(request: &MountRequest, io: Arc<dyn FileSystem>) -> Result<RealFuse, Errno> {
        RealFuse::new(Path::new(&request.source), io)
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, fuser::Errno> {
        if ino.0 == 1 {
            return Ok(PathBuf::from("/"));
        }
        lock(&self.inodes)
            .by_ino
            .get(&ino.0)
            .map(|(p, _)| p.clone())
            .ok_or(fuser::Errno::from_i32(libc::ESTALE))
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, fuser::Errno> {
        Ok(self.path(parent)?.join(name))
    }

    /// Counts a lookup of the file `st` at `path`; returns its node id
    /// (its inode number; node 1 is the root's, so a file numbered 1
    /// gets another).
    fn remember(&self, st: &viewos_core::FileStat, path: &Path) -> u64 {
        let ino = if st.ino == 1 { u64::MAX } else { st.ino };
        let mut t = lock(&self.inodes);
        let e = t.by_ino.entry(ino).or_insert((path.to_path_buf(), 0));
        e.0 = path.to_path_buf();
        e.1 += 1;
        ino
    }

    /// Looks `path` up and counts the lookup: the answer to every call
    /// that makes or finds a name.
    fn entry(&self, path: &Path, reply: ReplyEntry) {
        match self.fs.lstat(path) {
            Ok(st) => {
                let ino = self.remember(&st, path);
                reply.entry(&TTL, &file_attr(&st, ino), Generation(0));
            }
            Err(e) => reply.error(fe(e)),
        }
    }

    fn attr(&self, ino: INodeNo, reply: ReplyAttr) {
        let st = self.path(ino).and_then(|p| self.fs.lstat(&p).map_err(fe));
        match st {
            Ok(st) => reply.attr(&TTL, &file_attr(&st, st.ino)),
            Err(e) => reply.error(e),
        }
    }

    fn handle(&self, fh: Fh) -> Result<Arc<dyn FileHandle>, fuser::Errno> {
        lock(&self.files)
            .get(&fh.0)
            .cloned()
            .ok_or(fuser::Errno::EBADF)
    }

    fn keep(&self, h: Arc<dyn FileHandle>) -> Fh {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(fh, h);
        Fh(fh)
    }

    fn open_path(&self, ino: INodeNo, flags: i32) -> Result<Fh, fuser::Errno> {
        let p = self.path(ino)?;
        // O_DIRECT is the client's business (um-fuse bypasses its cache);
        // the real file would refuse this server's unaligned buffers.
        let flags = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_DIRECT);
        let h = self
            .fs
            .open(&p, flags, 0)
            .and_then(into_handle)
            .map_err(fe)?;
        Ok(self.keep(h))
    }

    fn done(reply: ReplyEmpty, r: Result<(), Errno>) {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn renamed(&self, from: &Path, to: &Path) {
        let mut t = lock(&self.inodes);
        for (p, _) in t.by_ino.values_mut() {
            if let Ok(rest) = p.strip_prefix(from) {
                *p = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
            }
        }
    }

    fn xattr(reply: ReplyXattr, size: u32, r: Result<Vec<u8>, Errno>) {
        match r {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(fuser::Errno::from_i32(libc::ERANGE)),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(fe(e)),
        }
    }
}

impl Filesystem for RealFuse {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.child(parent, name) {
            Ok(p) => self.entry(&p, reply),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _: &Request, ino: INodeNo, nlookup: u64) {
        let mut t = lock(&self.inodes);
        if let Some(e) = t.by_ino.get_mut(&ino.0) {
            e.1 = e.1.saturating_sub(nlookup);
            if e.1 == 0 {
                t.by_ino.remove(&ino.0);
            }
        }
    }

    fn getattr(&self, _: &Request, ino: INodeNo, fh: Option<Fh>, reply: ReplyAttr) {
        if let Some(h) = fh.and_then(|fh| self.handle(fh).ok()) {
            return match h.stat() {
                Ok(st) => reply.attr(&TTL, &file_attr(&st, st.ino)),
                Err(e) => reply.error(fe(e)),
            };
        }
        self.attr(ino, reply)
    }

    fn setattr(
        &self,
        _: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<Fh>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let p = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let run = || -> Result<(), Errno> {
            if let Some(m) = mode {
                self.fs.chmod(&p, m & 0o7777)?;
            }
            if uid.is_some() || gid.is_some() {
                self.fs.chown(&p, uid, gid)?;
            }
            if let Some(len) = size {
                match fh.and_then(|fh| self.handle(fh).ok()) {
                    Some(h) => h.truncate(len)?,
                    None => self.fs.truncate(&p, len)?,
                }
            }
            if atime.is_some() || mtime.is_some() {
                self.fs.utimens(&p, set_time(atime), set_time(mtime))?;
            }
            Ok(())
        };
        match run() {
            Ok(()) => self.attr(ino, reply),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn readlink(&self, _: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .path(ino)
            .and_then(|p| self.fs.readlink(&p).map_err(fe))
        {
            Ok(t) => reply.data(t.as_os_str().as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = self.child(parent, name).and_then(|p| {
            let rdev = crate::client::decode_dev(rdev);
            self.fs.mknod(&p, mode & !umask, rdev).map_err(fe)?;
            Ok(p)
        });
        match r {
            Ok(p) => self.entry(&p, reply),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.child(parent, name).and_then(|p| {
            self.fs.mkdir(&p, mode & !umask).map_err(fe)?;
            Ok(p)
        });
        match r {
            Ok(p) => self.entry(&p, reply),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.child(parent, name) {
            Ok(p) => Self::done(reply, self.fs.unlink(&p)),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.child(parent, name) {
            Ok(p) => Self::done(reply, self.fs.rmdir(&p)),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        _: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.child(parent, link_name).and_then(|p| {
            self.fs.symlink(target, &p).map_err(fe)?;
            Ok(p)
        });
        match r {
            Ok(p) => self.entry(&p, reply),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (from, to) = match (self.child(parent, name), self.child(newparent, newname)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        match self.fs.rename(&from, &to, flags.bits()) {
            Ok(()) => {
                self.renamed(&from, &to);
                reply.ok()
            }
            Err(e) => reply.error(fe(e)),
        }
    }

    fn link(
        &self,
        _: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = self.path(ino).and_then(|from| {
            let to = self.child(newparent, newname)?;
            self.fs.link(&from, &to).map_err(fe)?;
            Ok(to)
        });
        match r {
            Ok(p) => self.entry(&p, reply),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.open_path(ino, flags.0) {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _: &Request,
        _: INodeNo,
        fh: Fh,
        offset: u64,
        size: u32,
        _: OpenFlags,
        _: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let mut buf = vec![0u8; size as usize];
        let mut done = 0;
        while done < buf.len() {
            match h.read(offset + done as u64, &mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if done == 0 => return reply.error(fe(e)),
                Err(_) => break,
            }
        }
        reply.data(&buf[..done]);
    }

    fn write(
        &self,
        _: &Request,
        _: INodeNo,
        fh: Fh,
        offset: u64,
        data: &[u8],
        _: fuser::WriteFlags,
        _: OpenFlags,
        _: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        match self
            .handle(fh)
            .and_then(|h| h.write(offset, data).map_err(fe))
        {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _: &Request, _: INodeNo, _: Fh, _: fuser::LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _: &Request,
        _: INodeNo,
        fh: Fh,
        _: OpenFlags,
        _: Option<fuser::LockOwner>,
        _: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.files).remove(&fh.0);
        reply.ok();
    }

    fn fsync(&self, _: &Request, _: INodeNo, fh: Fh, datasync: bool, reply: ReplyEmpty) {
        match self.handle(fh) {
            Ok(h) => Self::done(reply, h.sync(datasync)),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.open_path(ino, (flags.0 & !libc::O_ACCMODE) | libc::O_DIRECTORY) {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _: &Request, _: INodeNo, fh: Fh, offset: u64, mut reply: ReplyDirectory) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let r = h.read_dir(offset, &mut |e| {
            let name = OsStr::from_bytes(e.name);
            !reply.add(INodeNo(e.ino), e.next, dirent_type(e.kind), name)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn releasedir(&self, _: &Request, _: INodeNo, fh: Fh, _: OpenFlags, reply: ReplyEmpty) {
        lock(&self.files).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _: &Request, _: INodeNo, fh: Fh, datasync: bool, reply: ReplyEmpty) {
        match self.handle(fh) {
            Ok(h) => Self::done(reply, h.sync(datasync)),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _: &Request, ino: INodeNo, reply: ReplyStatfs) {
        match self.path(ino).and_then(|p| self.fs.statfs(&p).map_err(fe)) {
            Ok(s) => reply.statfs(
                s.blocks,
                s.blocks_free,
                s.blocks_available,
                s.files,
                s.files_free,
                s.block_size as u32,
                s.name_max as u32,
                s.fragment_size as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _: u32,
        reply: ReplyEmpty,
    ) {
        match self.path(ino) {
            Ok(p) => Self::done(reply, self.fs.setxattr(&p, name.as_bytes(), value, flags)),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.path(ino) {
            Ok(p) => Self::xattr(reply, size, self.fs.getxattr(&p, name.as_bytes())),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.path(ino) {
            Ok(p) => Self::xattr(reply, size, self.fs.listxattr(&p)),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.path(ino) {
            Ok(p) => Self::done(reply, self.fs.removexattr(&p, name.as_bytes())),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.path(ino) {
            Ok(p) => Self::done(reply, self.fs.access(&p, mask.bits())),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.child(parent, name).and_then(|p| {
            let h = self
                .fs
                .open(
                    &p,
                    (flags & !libc::O_DIRECT) | libc::O_CREAT,
                    mode & !umask & 0o7777,
                )
                .and_then(into_handle)
                .map_err(fe)?;
            let st = self.fs.lstat(&p).map_err(fe)?;
            Ok((p, h, st))
        });
        match r {
            Ok((p, h, st)) => {
                let ino = self.remember(&st, &p);
                let fh = self.keep(h);
                let attr = file_attr(&st, ino);
                reply.created(&TTL, &attr, Generation(0), fh, FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }
}
