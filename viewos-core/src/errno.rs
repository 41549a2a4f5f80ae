//! Errno values: the only kind of error a program inside a view ever sees.

use std::fmt;

/// A Linux error number (`EPERM` = 1, `ENOENT` = 2, ...).
///
/// Services answer failures with an `Errno`; the host writes `-errno` into
/// the traced program's return register, exactly as the kernel does.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(libc::EPERM);
    /// No such file or directory.
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// Interrupted system call.
    pub const EINTR: Errno = Errno(libc::EINTR);
    /// Input/output error.
    pub const EIO: Errno = Errno(libc::EIO);
    /// Bad file descriptor.
    pub const EBADF: Errno = Errno(libc::EBADF);
    /// Out of memory.
    pub const ENOMEM: Errno = Errno(libc::ENOMEM);
    /// Permission denied.
    pub const EACCES: Errno = Errno(libc::EACCES);
    /// Bad address.
    pub const EFAULT: Errno = Errno(libc::EFAULT);
    /// Device or resource busy.
    pub const EBUSY: Errno = Errno(libc::EBUSY);
    /// File exists.
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    /// No such device.
    pub const ENODEV: Errno = Errno(libc::ENODEV);
    /// Not a directory.
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    /// Is a directory.
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// Inappropriate ioctl for device.
    pub const ENOTTY: Errno = Errno(libc::ENOTTY);
    /// Read-only file system.
    pub const EROFS: Errno = Errno(libc::EROFS);
    /// File name too long.
    pub const ENAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);
    /// Function not implemented.
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
    /// Directory not empty.
    pub const ENOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    /// Too many levels of symbolic links.
    pub const ELOOP: Errno = Errno(libc::ELOOP);
    /// Operation not supported.
    pub const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
    /// Exec format error.
    pub const ENOEXEC: Errno = Errno(libc::ENOEXEC);

    /// Wraps a raw errno number.
    pub const fn new(raw: i32) -> Errno {
        Errno(raw)
    }

    /// The raw errno number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The symbolic name (`"ENOENT"`), or `"E?"` for numbers this crate
    /// does not name.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::ENXIO => "ENXIO",
            libc::E2BIG => "E2BIG",
            libc::ENOEXEC => "ENOEXEC",
            libc::EBADF => "EBADF",
            libc::ECHILD => "ECHILD",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::EXDEV => "EXDEV",
            libc::ENODEV => "ENODEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::EINVAL => "EINVAL",
            libc::ENFILE => "ENFILE",
            libc::EMFILE => "EMFILE",
            libc::ENOTTY => "ENOTTY",
            libc::EFBIG => "EFBIG",
            libc::ENOSPC => "ENOSPC",
            libc::ESPIPE => "ESPIPE",
            libc::EROFS => "EROFS",
            libc::EMLINK => "EMLINK",
            libc::EPIPE => "EPIPE",
            libc::ERANGE => "ERANGE",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOSYS => "ENOSYS",
            libc::ENOTEMPTY => "ENOTEMPTY",
            libc::ELOOP => "ELOOP",
            libc::ENODATA => "ENODATA",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::ENOTCONN => "ENOTCONN",
            _ => "E?",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = std::io::Error::from_raw_os_error(self.0);
        write!(f, "{} ({})", self.name(), msg)
    }
}

impl std::error::Error for Errno {}

impl From<std::io::Error> for Errno {
    /// An I/O error with an OS code keeps it; any other becomes `EIO`.
    fn from(e: std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree_with_libc() {
        assert_eq!(Errno::ENOENT.raw(), 2);
        assert_eq!(Errno::ENOENT.name(), "ENOENT");
        assert_eq!(Errno::new(9999).name(), "E?");
        assert_eq!(format!("{:?}", Errno::EFAULT), "EFAULT(14)");
    }

    #[test]
    fn io_errors_keep_their_code() {
        let e = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(Errno::from(e), Errno::EACCES);
        let e = std::io::Error::other("no code");
        assert_eq!(Errno::from(e), Errno::EIO);
    }
}
