//! Files a service serves itself: the [`FileHandle`] trait.
//!
//! A [`FileSystem`](crate::FileSystem) that cannot hand the program a real
//! file standing for the virtual one (a file inside a disk image, a merged
//! directory, a device) opens it as [`Opened::Served`](crate::Opened::Served)
//! with a [`FileHandle`]. The program then gets an fd like any other (dup,
//! fork, close-on-exec and close behave as the kernel's), and every call on
//! it comes to the handle:
//!
//! | program's call | handle method |
//! |---|---|
//! | read, pread64, readv, preadv, preadv2 | [`FileHandle::read`] |
//! | write, pwrite64, writev, pwritev, pwritev2 | [`FileHandle::write`] |
//! | fstat, `fstatat(fd, "", AT_EMPTY_PATH)`, statx likewise | [`FileHandle::stat`] |
//! | getdents64, getdents | [`FileHandle::read_dir`] |
//! | ftruncate | [`FileHandle::truncate`] |
//! | fsync, fdatasync | [`FileHandle::sync`] |
//! | fadvise64 with `POSIX_FADV_DONTNEED` | [`FileHandle::drop_cached`] |
//! | ioctl | [`FileHandle::ioctl_with_memory`], by default [`FileHandle::ioctl`] (see below) |
//! | poll, select, epoll | [`FileHandle::poll`] (see below) |
//! | socket calls (bind, connect, send, ...) | [`FileHandle::as_socket`] |
//! | last close of every copy of the fd | `Drop` of the handle |
//!
//! The host keeps what belongs to the open file description and not to the
//! file: the offset (shared by dup'ed and inherited copies, as the kernel
//! does), the status flags (`F_GETFL`/`F_SETFL`), the access mode checks
//! (`EBADF` for a write on a read-only fd), `O_APPEND` (writes at the size
//! [`FileHandle::stat`] reports), and `lseek`. A handle therefore only
//! answers positioned calls, like a FUSE file system or `pread`/`pwrite`.
//!
//! Methods are called from the host's threads, possibly several at once;
//! a handle that needs order locks inside.
//!
//! ## Blocking and readiness
//!
//! A handle never blocks the host. A read with nothing to read yet (a
//! device, a socket, a FUSE request still under way) answers `EAGAIN`. If
//! the program's fd is in blocking mode, the host then lets the program
//! wait *in the kernel* (so signals interrupt it as they would any call)
//! until [`FileHandle::poll`] reports the file ready, and makes the call
//! again. A handle whose readiness changes on its own is given a
//! [`Notifier`] by [`FileHandle::watch`] and calls
//! [`Notifier::notify`] whenever its [`FileHandle::poll`] answer may have
//! changed: the host then updates what poll, select and epoll report for
//! the program's fd.

//!
//! ## ioctl arguments
//!
//! An ioctl's request number usually encodes how its argument moves
//! (`_IOR`, `_IOW`, `_IOWR` and a size: [`IoctlArg::of_request`]): the
//! host copies that many bytes in from the program before the call and
//! back out after it, and the handle works on a plain byte slice. Old
//! requests encode nothing (`HDIO_GETGEO`, `BLKSSZGET`, `BLKPG`, ...) and a
//! few encode a wrong size (`BLKBSZGET` says `size_t` but passes an
//! `int`): a handle that serves such requests says how their argument moves
//! with [`FileHandle::ioctl_arg`], and the host copies by that instead. An
//! argument that itself points to more memory of the program (`BLKPG`'s
//! struct points to a partition record) is followed with the
//! [`CallerMemory`] that [`FileHandle::ioctl_with_memory`] gets.
//!
//! ## Bytes that lie in a real file
//!
//! A handle whose bytes are a range of a real file (a partition of a disk
//! image, a file kept whole in a layer) says so with
//! [`FileHandle::extent`]. The host then has the program's own thread
//! move the data with `pread64`/`pwrite64` on that file, which the kernel
//! copies once, straight between the page cache and the program's buffer;
//! the handle's [`FileHandle::read`] and [`FileHandle::write`] are left
//! for what lies outside the range.

use std::os::fd::BorrowedFd;
use std::sync::Arc;

use crate::hook::CallerMemory;
use crate::{Errno, FileStat};

/// How an ioctl's argument moves between the program and the handle (see
/// the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoctlArg {
    /// Nothing is copied: the argument is a plain value, or unused, and
    /// the handle's `data` is empty.
    Value,
    /// The argument points to this many bytes the program passes in
    /// (`_IOW`).
    In(usize),
    /// The argument points to this many bytes the handle fills (`_IOR`).
    Out(usize),
    /// Both: passed in, then written back (`_IOWR`).
    InOut(usize),
}

impl IoctlArg {
    /// What `request` encodes (`_IOC_DIR` and `_IOC_SIZE`, x86_64's
    /// layout): `Value` for an old-style number without a direction, or
    /// with a size of 0.
    pub fn of_request(request: u32) -> IoctlArg {
        let size = ((request >> 16) & 0x3fff) as usize;
        match (request >> 30, size) {
            (_, 0) | (0, _) => IoctlArg::Value,
            (1, n) => IoctlArg::In(n),
            (2, n) => IoctlArg::Out(n),
            (_, n) => IoctlArg::InOut(n),
        }
    }

    /// How many bytes the argument points to (0 for [`IoctlArg::Value`]).
    pub fn size(self) -> usize {
        match self {
            IoctlArg::Value => 0,
            IoctlArg::In(n) | IoctlArg::Out(n) | IoctlArg::InOut(n) => n,
        }
    }

    /// The bytes are read from the program before the call.
    pub fn copies_in(self) -> bool {
        matches!(self, IoctlArg::In(_) | IoctlArg::InOut(_))
    }

    /// The bytes are written back to the program after the call.
    pub fn copies_out(self) -> bool {
        matches!(self, IoctlArg::Out(_) | IoctlArg::InOut(_))
    }
}

/// A handle's way to tell the host that its readiness changed (see the
/// module docs). Cheap to clone; callable from any thread.
#[derive(Clone)]
pub struct Notifier(Arc<dyn Fn() + Send + Sync>);

impl Notifier {
    /// A notifier that runs `f` (hosts make these; a service only calls
    /// [`Notifier::notify`]).
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Notifier {
        Notifier(Arc::new(f))
    }

    /// The answer of [`FileHandle::poll`] may have changed. The host may
    /// call [`FileHandle::poll`] from inside this call: do not hold a lock
    /// that `poll` takes.
    pub fn notify(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifier")
    }
}

/// Readable, as poll(2)'s `POLLIN`.
pub const READABLE: u32 = libc::POLLIN as u32;
/// Writable, as poll(2)'s `POLLOUT`.
pub const WRITABLE: u32 = libc::POLLOUT as u32;

/// One entry of a directory listing, as [`FileHandle::read_dir`] gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Inode number (`d_ino`).
    pub ino: u64,
    /// The file type, as `d_type` (`libc::DT_REG`, `DT_DIR`, ...; `DT_UNKNOWN`
    /// when the listing does not know it).
    pub kind: u8,
    /// The name, without a NUL.
    pub name: &'a [u8],
    /// The cookie of the entry after this one: a later
    /// [`FileHandle::read_dir`] with it continues the listing there
    /// (`d_off`, what `telldir` reports).
    pub next: u64,
}

impl DirEntry<'_> {
    /// The `d_type` for file mode bits (`S_IFDIR | 0o755` gives `DT_DIR`).
    pub fn kind_of_mode(mode: u32) -> u8 {
        match mode & libc::S_IFMT {
            libc::S_IFREG => libc::DT_REG,
            libc::S_IFDIR => libc::DT_DIR,
            libc::S_IFLNK => libc::DT_LNK,
            libc::S_IFCHR => libc::DT_CHR,
            libc::S_IFBLK => libc::DT_BLK,
            libc::S_IFIFO => libc::DT_FIFO,
            libc::S_IFSOCK => libc::DT_SOCK,
            _ => libc::DT_UNKNOWN,
        }
    }
}

/// An open file a service serves (see the module docs). Every method has a
/// default: the kernel's answer for a file that does not support the call.
pub trait FileHandle: Send + Sync {
    /// Reads from byte `offset` into `buf`; returns how many bytes were read
    /// (0 at end of file). Short reads are allowed.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let _ = (offset, buf);
        Err(Errno::EINVAL)
    }

    /// Writes `data` at byte `offset`; returns how many bytes were written.
    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let _ = (offset, data);
        Err(Errno::EINVAL)
    }

    /// Status of the open file (fstat). The size also places `O_APPEND`
    /// writes and `lseek(SEEK_END)`; the type tells the host whether the
    /// file is a directory.
    fn stat(&self) -> Result<FileStat, Errno> {
        Err(Errno::ENOSYS)
    }

    /// Lists the directory from `cookie` on (0: from the start), calling
    /// `fill` for each entry in order, including `.` and `..`, until it
    /// returns `false` (the program's buffer is full: that entry was not
    /// taken and will be asked for again with its cookie).
    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let _ = (cookie, fill);
        Err(Errno::ENOTDIR)
    }

    /// Sets the file's length (ftruncate).
    fn truncate(&self, len: u64) -> Result<(), Errno> {
        let _ = len;
        Err(Errno::EINVAL)
    }

    /// Makes the file's data (and, unless `data_only`, its metadata)
    /// durable (fsync, fdatasync).
    fn sync(&self, data_only: bool) -> Result<(), Errno> {
        let _ = data_only;
        Ok(())
    }

    /// False for a file without positions (a device or a stream): reads and
    /// writes get offset 0 and the host keeps no offset; lseek, pread and
    /// pwrite fail with `ESPIPE`.
    fn seekable(&self) -> bool {
        true
    }

    /// An ioctl: `request` as the program gave it, `arg` its raw argument,
    /// `data` the bytes `arg` points to when the request number encodes a
    /// size (`_IOC_SIZE`; read from the program for `_IOC_WRITE` requests
    /// and written back for `_IOC_READ` ones), otherwise empty. Returns the
    /// call's value. The default, `ENOTTY`, is what the kernel answers for a
    /// request a file does not know.
    fn ioctl(&self, request: u32, arg: u64, data: &mut [u8]) -> Result<i64, Errno> {
        let _ = (request, arg, data);
        Err(Errno::new(libc::ENOTTY))
    }

    /// How the argument of `request` moves, for a request whose number
    /// does not say it right (see the module docs): the host copies `data`
    /// in and out by this answer instead of [`IoctlArg::of_request`]. The
    /// default, `None`, trusts the number.
    fn ioctl_arg(&self, request: u32) -> Option<IoctlArg> {
        let _ = request;
        None
    }

    /// The ioctl entry the host calls: [`FileHandle::ioctl`] with the
    /// caller's `memory` too, for an argument that points further into
    /// the program's memory (the handle reads and writes it there itself;
    /// a bad address is `EFAULT`). The default calls
    /// [`FileHandle::ioctl`]; a handle that wraps another forwards this,
    /// [`FileHandle::ioctl`] and [`FileHandle::ioctl_arg`].
    fn ioctl_with_memory(
        &self,
        request: u32,
        arg: u64,
        data: &mut [u8],
        memory: &dyn CallerMemory,
    ) -> Result<i64, Errno> {
        let _ = memory;
        self.ioctl(request, arg, data)
    }

    /// What the file is ready for now, as poll(2) event bits ([`READABLE`],
    /// [`WRITABLE`], `POLLHUP`, `POLLERR`, ...). The default, readable and
    /// writable, is a regular file's answer. A handle that answers
    /// `EAGAIN` must report the matching bit clear until the call can
    /// succeed, or the program's wait ends at once.
    fn poll(&self) -> u32 {
        READABLE | WRITABLE
    }

    /// Called once, when the file is opened, with the [`Notifier`] to call
    /// whenever [`FileHandle::poll`] may answer differently. The default
    /// drops it: the readiness of a regular file never changes.
    fn watch(&self, notifier: Notifier) {
        let _ = notifier;
    }

    /// The socket this handle is, for the socket calls (bind, connect,
    /// send, ...). Default: `None`, the calls fail with `ENOTSOCK`.
    fn as_socket(&self) -> Option<&dyn crate::socket::SocketHandle> {
        None
    }

    /// Where the file's bytes lie in a real file, if they do (see the
    /// module docs): while this answers `Some`, reading `n` bytes at
    /// `offset < len` must give what `pread` of the real file at
    /// `start + offset` gives, and (if `writable`) writing there must be
    /// the same as `pwrite` to the real file, with no cache of the
    /// handle's in between. The host may then move such bytes itself,
    /// without calling [`FileHandle::read`] or [`FileHandle::write`].
    /// Asked at every transfer, so the answer may change (a partition
    /// table read again); it must come at once, without waiting. Default:
    /// `None`.
    fn extent(&self) -> Option<Extent<'_>> {
        None
    }

    /// `posix_fadvise(POSIX_FADV_DONTNEED)` on bytes `offset..offset +
    /// len` (`len` 0: to the end of the file): a handle that keeps a cache
    /// of the file may drop what it holds there, as the kernel drops the
    /// clean pages. Default: nothing.
    fn drop_cached(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
}

/// A range of a real file that holds a served file's bytes
/// ([`FileHandle::extent`]).
#[derive(Clone, Copy, Debug)]
pub struct Extent<'a> {
    /// The real file (an fd of the service's process).
    pub file: BorrowedFd<'a>,
    /// Where the served file's byte 0 is in the real file.
    pub start: u64,
    /// How many bytes of the served file lie there; transfers at or past
    /// `len` go to the handle.
    pub len: u64,
    /// True if writes may go straight to the real file.
    pub writable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    impl FileHandle for Nothing {}

    #[test]
    fn defaults_are_the_kernels_answers() {
        let h = Nothing;
        assert_eq!(h.read(0, &mut [0; 4]), Err(Errno::EINVAL));
        assert_eq!(h.write(0, b"x"), Err(Errno::EINVAL));
        assert_eq!(h.read_dir(0, &mut |_| true), Err(Errno::ENOTDIR));
        assert_eq!(h.ioctl(0x5401, 0, &mut []), Err(Errno::new(libc::ENOTTY)));
        assert_eq!(h.sync(false), Ok(()));
        assert!(h.seekable());
        assert_eq!(h.poll(), READABLE | WRITABLE);
        assert!(h.as_socket().is_none());
    }

    #[test]
    fn ioctl_numbers_say_how_arguments_move() {
        // BLKGETSIZE64 is _IOR(0x12, 114, size_t).
        assert_eq!(IoctlArg::of_request(0x8008_1272), IoctlArg::Out(8));
        // TUNSETIFF is _IOW('T', 202, int).
        assert_eq!(IoctlArg::of_request(0x4004_54ca), IoctlArg::In(4));
        // _IOWR('T', 1, 16 bytes).
        assert_eq!(IoctlArg::of_request(0xc010_5401), IoctlArg::InOut(16));
        // BLKRRPART and HDIO_GETGEO: old numbers without a direction.
        assert_eq!(IoctlArg::of_request(0x125f), IoctlArg::Value);
        assert_eq!(IoctlArg::of_request(0x0301), IoctlArg::Value);
        assert_eq!(IoctlArg::InOut(16).size(), 16);
        assert!(IoctlArg::In(4).copies_in() && !IoctlArg::In(4).copies_out());
        assert!(IoctlArg::Out(4).copies_out() && !IoctlArg::Out(4).copies_in());
        assert!(!IoctlArg::Value.copies_in() && !IoctlArg::Value.copies_out());
        let h = Nothing;
        assert_eq!(h.ioctl_arg(0x0301), None);
        struct NoMemory;
        impl CallerMemory for NoMemory {
            fn read(&self, _: u64, _: &mut [u8]) -> Result<(), Errno> {
                Err(Errno::EFAULT)
            }
            fn write(&self, _: u64, _: &[u8]) -> Result<(), Errno> {
                Err(Errno::EFAULT)
            }
        }
        assert_eq!(
            h.ioctl_with_memory(0x0301, 0, &mut [], &NoMemory),
            Err(Errno::new(libc::ENOTTY))
        );
    }

    #[test]
    fn notifiers_call_back() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let n = Arc::new(AtomicUsize::new(0));
        let m = n.clone();
        let notifier = Notifier::new(move || {
            m.fetch_add(1, Ordering::SeqCst);
        });
        notifier.clone().notify();
        notifier.notify();
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn kinds_of_modes() {
        assert_eq!(DirEntry::kind_of_mode(libc::S_IFDIR | 0o755), libc::DT_DIR);
        assert_eq!(DirEntry::kind_of_mode(libc::S_IFREG), libc::DT_REG);
        assert_eq!(DirEntry::kind_of_mode(0), libc::DT_UNKNOWN);
    }
}
