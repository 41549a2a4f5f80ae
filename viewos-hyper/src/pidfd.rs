//! Copies of other processes' fds (`pidfd_open` + `pidfd_getfd`), for the
//! listener a new program made and the fds a mount(2) names (`fd=N`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A copy of fd `fd` of process `pid` (a thread-group leader); the kernel
/// checks that the host may trace it.
pub fn copy_fd(pid: i32, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open and pidfd_getfd take integers and return new fds,
    // each owned at once.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(copy as i32))
    }
}
