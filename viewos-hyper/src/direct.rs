//! Real files the view's processes hold for direct transfers.
//!
//! A served file whose bytes lie in a real file
//! ([`viewos_core::handle::Extent`], e.g. a partition of a disk image) is
//! read and written by the program's own thread: the tracer turns its
//! read or write into `pread64`/`pwrite64` on a copy of the real file the
//! process holds, so the kernel copies the bytes once, from the page cache
//! straight into the program's buffer, and the thread stops only at the
//! call's entry and exit (`syscalls::sys_fd`).
//!
//! A thread gets its copy at its first such transfer: it opens the real
//! file through `/proc/HOST/fd/N` and moves it to a high number (half its
//! fd limit, close-on-exec), out of the way of the numbers the program
//! picks. Copies are kept by process (the thread group; a thread's group
//! is looked up once and remembered until the thread ends). The host keeps a copy of that same open file and
//! checks with `kcmp` before each use that the number still names it: a
//! program that closed or reused the number, or exec'd, just gets a new
//! copy.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use parking_lot::Mutex;

/// Which real file: its device and inode.
pub type FileKey = (u64, u64);

/// A copy of a real file installed in a process.
#[derive(Debug)]
struct Installed {
    /// Its number in the process.
    fd: i32,
    /// Opened for writing too.
    writable: bool,
    /// The host's copy of the same open file, for `kcmp`.
    copy: OwnedFd,
}

/// What a process holds, and what to do for a transfer.
#[derive(Debug, PartialEq, Eq)]
pub enum Holding {
    /// The process's copy is fd `0`: use it.
    Ready(i32),
    /// Give the process a copy first (closing the read-only one it has,
    /// if any, for a write).
    Install {
        /// A copy the process has that is not writable.
        replace: Option<i32>,
    },
    /// This process cannot hold copies: go through the handle.
    Refused,
}

/// The copies every process of the view holds.
#[derive(Debug, Default)]
pub struct DirectFds {
    /// By process (thread group) and file.
    held: Mutex<HashMap<(i32, FileKey), Installed>>,
    /// Processes that cannot hold copies.
    refused: Mutex<HashSet<i32>>,
    /// The thread group of each thread that made a transfer.
    groups: Mutex<HashMap<i32, i32>>,
}

/// True if fd `fd` of thread `tid` is the same open file as the host's
/// `copy`.
fn same_file(tid: i32, fd: i32, copy: &OwnedFd) -> bool {
    const KCMP_FILE: i32 = 0;
    // SAFETY: kcmp takes integers and only compares kernel objects.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            tid,
            std::process::id() as i32,
            KCMP_FILE,
            fd,
            copy.as_raw_fd(),
        )
    };
    r == 0
}

impl DirectFds {
    /// Thread `tid`'s thread group.
    fn group(&self, tid: i32) -> i32 {
        *self
            .groups
            .lock()
            .entry(tid)
            .or_insert_with(|| crate::resolve::tgid_of(tid))
    }

    /// What thread `tid`'s process holds of the real file `key`, for a
    /// transfer that writes if `write`.
    pub fn holding(&self, tid: i32, key: FileKey, write: bool) -> Holding {
        let tgid = self.group(tid);
        if self.refused.lock().contains(&tgid) {
            return Holding::Refused;
        }
        let mut held = self.held.lock();
        let Some(i) = held.get(&(tgid, key)) else {
            return Holding::Install { replace: None };
        };
        if !same_file(tid, i.fd, &i.copy) {
            held.remove(&(tgid, key));
            return Holding::Install { replace: None };
        }
        if write && !i.writable {
            return Holding::Install {
                replace: Some(i.fd),
            };
        }
        Holding::Ready(i.fd)
    }

    /// Records that thread `tid`'s process now holds the real file `key`
    /// as fd `fd`; `false` (and the process is refused from then on) if
    /// the host cannot keep a copy to check it by.
    pub fn installed(&self, tid: i32, key: FileKey, fd: i32, writable: bool) -> bool {
        let tgid = self.group(tid);
        match crate::pidfd::copy_fd(tgid, fd) {
            Ok(copy) => {
                self.held
                    .lock()
                    .insert((tgid, key), Installed { fd, writable, copy });
                true
            }
            Err(_) => {
                self.refuse(tid);
                false
            }
        }
    }

    /// Thread `tid`'s process gets no more copies (one could not be
    /// made).
    pub fn refuse(&self, tid: i32) {
        let tgid = self.group(tid);
        self.refused.lock().insert(tgid);
    }

    /// Thread `tid` ended; if it led its process, the process's copies
    /// are forgotten.
    pub fn thread_gone(&self, tid: i32) {
        self.groups.lock().remove(&tid);
        let mut held = self.held.lock();
        if !held.is_empty() {
            held.retain(|(p, _), _| *p != tid);
        }
        drop(held);
        self.refused.lock().remove(&tid);
    }
}

/// The device and inode of the real file `fd`.
pub fn file_key(fd: BorrowedFd<'_>) -> Option<FileKey> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills `st`, which is large enough, and we read it only
    // if the call succeeded.
    unsafe {
        if libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) != 0 {
            return None;
        }
        let st = st.assume_init();
        Some((st.st_dev, st.st_ino))
    }
}

/// The fd number copies go to in thread `tid`'s process: half its limit
/// on open files (at most 4096), so the program's own numbers stay free.
/// `None` when the limit is too small to spare one.
pub fn high_fd(tid: i32) -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit reads thread tid's limit into `lim`, which we own.
    let r = unsafe { libc::prlimit(tid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut lim) };
    if r != 0 || lim.rlim_cur < 128 {
        return None;
    }
    Some((lim.rlim_cur / 2).min(4096))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn a_copy_is_checked_by_the_open_file_it_names() {
        let d = DirectFds::default();
        let me = std::process::id() as i32;
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        let key = (1, 2);
        assert_eq!(
            d.holding(me, key, false),
            Holding::Install { replace: None }
        );
        let fd = f.into_raw_fd();
        assert!(d.installed(me, key, fd, false));
        assert_eq!(d.holding(me, key, false), Holding::Ready(fd));
        // A write needs a writable copy.
        assert_eq!(
            d.holding(me, key, true),
            Holding::Install { replace: Some(fd) }
        );
        // The number now names another open file: forgotten.
        let other = std::fs::File::open("/proc/self/exe").unwrap();
        // SAFETY: dup2 of fds this test owns.
        unsafe { libc::dup2(other.as_raw_fd(), fd) };
        assert_eq!(
            d.holding(me, key, false),
            Holding::Install { replace: None }
        );
        // SAFETY: closing the fd this test made.
        unsafe { libc::close(fd) };
        d.refuse(me);
        assert_eq!(d.holding(me, key, false), Holding::Refused);
        d.thread_gone(me);
        assert_eq!(
            d.holding(me, key, false),
            Holding::Install { replace: None }
        );
    }

    #[test]
    fn copies_go_high() {
        let me = std::process::id() as i32;
        let n = high_fd(me).unwrap();
        assert!((64..=4096).contains(&n));
    }
}
