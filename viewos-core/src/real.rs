//! The real file system as a [`FileSystem`]: every call is made on the
//! real file at the same (absolute) path, with the host's credentials.
//!
//! The base of nesting ([`crate::nesting`]): a service's own I/O ends here
//! when no virtual mount is on its way. Modules may use it as the
//! passthrough layer of their own file systems.

// The real file system is reached through libc for the calls std does not
// offer (access, renameat2 flags, lchown, truncate by path, xattrs).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::fs::{FileStat, FileSystem, FsStat, Opened, SetTime};
use crate::Errno;

/// The real file system; paths are real absolute paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

fn io<T>(r: std::io::Result<T>) -> Result<T, Errno> {
    r.map_err(Errno::from)
}

fn cpath(p: &Path) -> Result<CString, Errno> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn xname(name: &[u8]) -> Result<CString, Errno> {
    CString::new(name).map_err(|_| Errno::EINVAL)
}

/// Calls `f` once for the size (null buffer) and again with a buffer of
/// that size, as often as the value grows in between (`ERANGE`).
fn sized(f: impl Fn(*mut libc::c_void, usize) -> isize) -> Result<Vec<u8>, Errno> {
    loop {
        let len = f(std::ptr::null_mut(), 0);
        if len < 0 {
            return Err(Errno::from(std::io::Error::last_os_error()));
        }
        let mut buf = vec![0u8; len as usize];
        let got = f(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(Errno::from(e));
        }
    }
}

fn check(ret: libc::c_int) -> Result<(), Errno> {
    if ret == 0 {
        Ok(())
    } else {
        Err(Errno::from(std::io::Error::last_os_error()))
    }
}

impl FileSystem for RealFs {
    fn open(&self, path: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        let c = cpath(path)?;
        // The host's copy must not leak into programs it starts; the
        // program's own O_CLOEXEC is applied when the fd is handed over.
        let flags = (flags | libc::O_CLOEXEC | libc::O_NOCTTY) & !libc::O_ASYNC;
        // SAFETY: `c` is a valid NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags, mode as libc::c_uint) };
        if fd < 0 {
            return Err(Errno::from(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        Ok(Opened::Backed(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        io(std::fs::symlink_metadata(path)).map(|m| FileStat::from_metadata(&m))
    }

    fn readlink(&self, path: &Path) -> Result<PathBuf, Errno> {
        io(std::fs::read_link(path))
    }

    fn access(&self, path: &Path, mode: i32) -> Result<(), Errno> {
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated path.
        check(unsafe { libc::access(c.as_ptr(), mode) })
    }

    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated path.
        check(unsafe { libc::mkdir(c.as_ptr(), mode) })
    }

    fn rmdir(&self, path: &Path) -> Result<(), Errno> {
        io(std::fs::remove_dir(path))
    }

    fn unlink(&self, path: &Path) -> Result<(), Errno> {
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated path.
        check(unsafe { libc::unlink(c.as_ptr()) })
    }

    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        let (a, b) = (cpath(from)?, cpath(to)?);
        // SAFETY: both paths are valid NUL-terminated strings.
        check(unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                flags,
            )
        })
    }

    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        io(std::fs::hard_link(from, to))
    }

    fn symlink(&self, target: &Path, path: &Path) -> Result<(), Errno> {
        io(std::os::unix::fs::symlink(target, path))
    }

    fn chmod(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated path.
        check(unsafe { libc::chmod(c.as_ptr(), mode) })
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated path; -1 leaves an id as is.
        check(unsafe { libc::lchown(c.as_ptr(), uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX)) })
    }

    fn statfs(&self, path: &Path) -> Result<FsStat, Errno> {
        let c = cpath(path)?;
        // The kernel's struct statfs on x86_64: fifteen 64-bit words
        // (f_flags included, which libc's struct hides in its spare words).
        let mut w = [0u64; 15];
        // SAFETY: statfs writes 120 bytes into `w`, which has that size.
        let r = unsafe { libc::syscall(libc::SYS_statfs, c.as_ptr(), w.as_mut_ptr()) };
        check(r as libc::c_int)?;
        Ok(FsStat {
            fs_type: w[0],
            block_size: w[1],
            blocks: w[2],
            blocks_free: w[3],
            blocks_available: w[4],
            files: w[5],
            files_free: w[6],
            fsid: w[7],
            name_max: w[8],
            fragment_size: w[9],
            flags: w[10],
        })
    }

    fn utimens(&self, path: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        let c = cpath(path)?;
        let ts = |t: SetTime| match t {
            SetTime::Now => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
            SetTime::Omit => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            SetTime::At(t) => libc::timespec {
                tv_sec: t.sec,
                tv_nsec: t.nsec as i64,
            },
        };
        let times = [ts(atime), ts(mtime)];
        // SAFETY: a valid path and two timespecs.
        check(unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    }

    fn mknod(&self, path: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        let c = cpath(path)?;
        // SAFETY: a valid NUL-terminated path.
        check(unsafe { libc::mknod(c.as_ptr(), mode, rdev) })
    }

    fn getxattr(&self, path: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let (c, n) = (cpath(path)?, xname(name)?);
        // SAFETY: `buf`/`len` describe a live buffer (or null and 0).
        sized(|buf, len| unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf, len) })
    }

    fn setxattr(&self, path: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        let (c, n) = (cpath(path)?, xname(name)?);
        // SAFETY: valid strings and a value buffer of the given length.
        check(unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags,
            )
        })
    }

    fn listxattr(&self, path: &Path) -> Result<Vec<u8>, Errno> {
        let c = cpath(path)?;
        // SAFETY: `buf`/`len` describe a live buffer (or null and 0).
        sized(|buf, len| unsafe { libc::llistxattr(c.as_ptr(), buf.cast(), len) })
    }

    fn removexattr(&self, path: &Path, name: &[u8]) -> Result<(), Errno> {
        let (c, n) = (cpath(path)?, xname(name)?);
        // SAFETY: valid NUL-terminated strings.
        check(unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) })
    }

    fn truncate(&self, path: &Path, len: u64) -> Result<(), Errno> {
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated path.
        check(unsafe { libc::truncate(c.as_ptr(), len as libc::off_t) })
    }
}
