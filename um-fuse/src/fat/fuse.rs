//! [`FatFs`]: a [`FatVolume`] as a `fuser::Filesystem`. Each method
//! converts its arguments, runs the volume's method on the volume's
//! thread and replies.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use fuser::{
    BsdFileFlags, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenAccMode,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use viewos_core::Errno;

use super::modify::SetAttr;
use super::volume::FatVolume;

/// How long the kernel side may cache names and attributes.
const TTL: Duration = Duration::from_secs(1);

/// A job for the volume's thread.
type Job<S> = Box<dyn FnOnce(&mut FatVolume<S>) + Send>;

/// The `umfusefat` file system, served over FUSE.
///
/// `fatfs` volumes cannot move between threads (they hold non-`Sync`
/// references), while a `fuser::Filesystem` must be `Send + Sync`; so the
/// volume lives on a thread of its own and every request runs there, one
/// at a time. Dropping a `FatFs` closes the volume (writing what is
/// pending) and waits for that thread.
pub struct FatFs<S: Read + Write + Seek + Send + 'static = File> {
    jobs: Option<Sender<Job<S>>>,
    worker: Option<JoinHandle<()>>,
}

impl<S: Read + Write + Seek + Send + 'static> std::fmt::Debug for FatFs<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatFs").finish_non_exhaustive()
    }
}

impl FatFs<File> {
    /// Mounts the FAT image `image` with the mount `options` (comma
    /// separated, see [`super::FatOptions`]).
    pub fn new(image: File, options: &str) -> Result<Self, Errno> {
        Self::from_storage(image, options)
    }
}

impl<S: Read + Write + Seek + Send + 'static> FatFs<S> {
    /// Mounts the FAT volume on any seekable storage.
    pub fn from_storage(storage: S, options: &str) -> Result<Self, Errno> {
        let (jobs, inbox) = mpsc::channel::<Job<S>>();
        let (ready, opened) = mpsc::channel();
        let options = options.to_owned();
        let worker = thread::Builder::new()
            .name("umfusefat".into())
            .spawn(move || {
                let mut volume = match FatVolume::new(storage, &options) {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                while let Ok(job) = inbox.recv() {
                    job(&mut volume);
                }
            })
            .map_err(|_| Errno::ENOMEM)?;
        let fs = FatFs {
            jobs: Some(jobs),
            worker: Some(worker),
        };
        opened.recv().map_err(|_| Errno::EIO)??;
        Ok(fs)
    }

    /// Runs `f` on the volume, on its thread, and returns what it returns.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut FatVolume<S>) -> Result<R, Errno> + Send + 'static,
    ) -> Result<R, Errno> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job<S> = Box::new(move |v| {
            let _ = tx.send(f(v));
        });
        self.jobs
            .as_ref()
            .ok_or(Errno::EIO)?
            .send(job)
            .map_err(|_| Errno::EIO)?;
        rx.recv().map_err(|_| Errno::EIO)?
    }
}

impl<S: Read + Write + Seek + Send + 'static> Drop for FatFs<S> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The FUSE errno for one of ours.
fn fe(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.raw())
}

/// A name from the kernel: FAT names are Unicode, so anything else is
/// `EINVAL`.
fn owned(name: &OsStr) -> Result<String, fuser::Errno> {
    name.to_str().map(str::to_owned).ok_or(fuser::Errno::EINVAL)
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl<S: Read + Write + Seek + Send + 'static> Filesystem for FatFs<S> {
    fn destroy(&mut self) {
        let _ = self.run(|v| v.unmount());
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = owned(name).and_then(|n| self.run(move |v| v.lookup(parent.0, &n)).map_err(fe));
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.run(move |v| v.getattr(ino.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time_of),
            mtime: mtime.map(time_of),
        };
        match self.run(move |v| v.setattr(ino.0, set)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.run(move |v| v.readlink(ino.0)) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(fuser::Errno::EPERM);
        }
        let r = owned(name).and_then(|n| self.run(move |v| v.create(parent.0, &n)).map_err(fe));
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let r = owned(name).and_then(|n| self.run(move |v| v.mkdir(parent.0, &n)).map_err(fe));
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match owned(name).and_then(|n| self.run(move |v| v.unlink(parent.0, &n)).map_err(fe)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match owned(name).and_then(|n| self.run(move |v| v.rmdir(parent.0, &n)).map_err(fe)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = owned(name).and_then(|from| {
            let to = owned(newname)?;
            let flags = flags.bits();
            self.run(move |v| v.rename(parent.0, &from, newparent.0, &to, flags))
                .map_err(fe)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let writing = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let r = self.run(move |v| {
            if writing {
                v.writable()?;
            }
            v.getattr(ino.0)
        });
        match r {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.run(move |v| v.read(ino.0, offset, size)) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        match self.run(move |v| v.write(ino.0, offset, &data)) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        match self.run(move |v| v.fsync(ino.0)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.run(move |v| v.fsync(ino.0)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fe(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.run(move |v| v.readdir(ino.0)) {
            Ok(entries) => entries,
            Err(e) => return reply.error(fe(e)),
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, e) in entries.iter().enumerate().skip(skip) {
            if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, &e.name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.run(|v| v.statfs()) {
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
            Err(e) => reply.error(fe(e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let r = owned(name).and_then(|n| self.run(move |v| v.create(parent.0, &n)).map_err(fe));
        match r {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}
