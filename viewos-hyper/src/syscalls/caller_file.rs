//! The host acting on a program's path argument itself: the caller's
//! directory (`/proc/TID/cwd`, `/proc/TID/fd/N`) as a host fd, and the
//! names that mean "the calling process" (`/proc/self`, `/dev/stdin`...)
//! spelled with the caller's ids, since for the host they would mean the
//! host. Used where the host makes a file call for a program
//! (`sys_owners` for identities, `host_open` for opens of real files).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use viewos_core::Errno;

/// A directory fd of the host standing for the caller's `dirfd` (its cwd
/// for `AT_FDCWD`); `None` for an absolute path, which needs none.
pub(super) fn caller_dir(tid: i32, dirfd: i32, path: &[u8]) -> Result<Option<OwnedFd>, Errno> {
    if path.first() == Some(&b'/') {
        return Ok(None);
    }
    let link = if dirfd == libc::AT_FDCWD {
        format!("/proc/{tid}/cwd")
    } else if dirfd < 0 {
        return Err(Errno::EBADF);
    } else {
        format!("/proc/{tid}/fd/{dirfd}")
    };
    let c = CString::new(link).map_err(|_| Errno::EINVAL)?;
    // SAFETY: opening a NUL-terminated path we own.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    // SAFETY: a new fd we own.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

pub(super) fn last_errno() -> Errno {
    Errno::new(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// `path` with the names that mean "the calling process" spelled with the
/// caller's ids: the host looks files up itself, and for it `/proc/self`
/// is the host. Covers `/proc/self`, `/proc/thread-self` and the `/dev`
/// links into them (`/dev/fd`, `/dev/stdin`, `/dev/stdout`,
/// `/dev/stderr`) at the start of an absolute path; `follow`: the call
/// follows a last symlink.
pub(super) fn own_proc_path(tid: i32, path: &[u8], follow: bool) -> Vec<u8> {
    // The name itself is a symlink: only a walk through it, or a call
    // that follows it, goes to the process.
    let starts = |prefix: &[u8]| {
        path.strip_prefix(prefix)
            .filter(|rest| (rest.is_empty() && follow) || rest.first() == Some(&b'/'))
    };
    let tgid = || crate::resolve::tgid_of(tid);
    let swap = |rest: &[u8], with: String| {
        let mut out = with.into_bytes();
        out.extend_from_slice(rest);
        out
    };
    if let Some(rest) = starts(b"/proc/self") {
        return swap(rest, format!("/proc/{}", tgid()));
    }
    if let Some(rest) = starts(b"/proc/thread-self") {
        return swap(rest, format!("/proc/{}/task/{tid}", tgid()));
    }
    if let Some(rest) = starts(b"/dev/fd") {
        return swap(rest, format!("/proc/{}/fd", tgid()));
    }
    for (name, fd) in [
        (&b"/dev/stdin"[..], 0),
        (b"/dev/stdout", 1),
        (b"/dev/stderr", 2),
    ] {
        if let Some(rest) = starts(name) {
            return swap(rest, format!("/proc/{}/fd/{fd}", tgid()));
        }
    }
    path.to_vec()
}

/// The caller's file (`dirfd`, `path`, `flags` as a *at call has them):
/// the host's directory fd and the path as a C string.
pub(super) struct CallerFile {
    dir: Option<OwnedFd>,
    /// The path, relative to [`CallerFile::dirfd`] or absolute.
    pub path: CString,
}

impl CallerFile {
    /// The file of (`dirfd`, `path`); `follow`: the call follows a last
    /// symlink.
    pub fn new(tid: i32, dirfd: i32, path: &[u8], follow: bool) -> Result<CallerFile, Errno> {
        let path = own_proc_path(tid, path, follow);
        Ok(CallerFile {
            dir: caller_dir(tid, dirfd, &path)?,
            path: CString::new(path).map_err(|_| Errno::EINVAL)?,
        })
    }

    pub fn dirfd(&self) -> i32 {
        self.dir.as_ref().map_or(libc::AT_FDCWD, |d| d.as_raw_fd())
    }

    /// fstatat(2) as the caller would make it.
    pub fn stat(&self, flags: i32) -> Result<libc::stat, Errno> {
        // SAFETY: an all-integer struct the kernel fills.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd (or AT_FDCWD), our NUL-terminated path and
        // our struct.
        let r = unsafe { libc::fstatat(self.dirfd(), self.path.as_ptr(), &mut st, flags) };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_names_are_the_callers() {
        let me = std::process::id() as i32;
        let p = |path: &str, follow: bool| {
            String::from_utf8(own_proc_path(me, path.as_bytes(), follow)).unwrap_or_default()
        };
        assert_eq!(p("/proc/self/fd/0", false), format!("/proc/{me}/fd/0"));
        assert_eq!(
            p("/proc/thread-self", true),
            format!("/proc/{me}/task/{me}")
        );
        assert_eq!(p("/dev/stdin", true), format!("/proc/{me}/fd/0"));
        assert_eq!(p("/dev/fd/3", false), format!("/proc/{me}/fd/3"));
        // The links themselves, and names that only look alike.
        assert_eq!(p("/dev/stdin", false), "/dev/stdin");
        assert_eq!(p("/proc/self", false), "/proc/self");
        assert_eq!(p("/proc/selfish", true), "/proc/selfish");
        assert_eq!(p("self/fd", true), "self/fd");
    }
}
