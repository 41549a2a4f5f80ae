//! Calls that change real files by path, made by the host itself in a
//! view with mounts: unlink, rename, mkdir, chmod, truncate, utimes, set
//! and remove xattrs and the rest of [`SPECS`].
//!
//! Like opens ([`super::host_open`]), such a call must not be left to the
//! kernel once the host has checked its path: the kernel would read the
//! path again from the program's memory, where another thread can have
//! changed it to a name the view hides or protects (a file below a `cow`
//! mount's target, say). So when a handler decides a call is real
//! (`Verdict::Native`), [`make`] runs the same syscall in the host with
//! the bytes the resolver checked ([`remember_checked`]): a relative path
//! through the caller's directory (`/proc/TID/cwd`, `/proc/TID/fd/N`,
//! opened by the host), the other pointer arguments copied in. mkdir and
//! mknod get the program's umask.
//!
//! A call whose path the handler never checked (a NULL pointer the kernel
//! does not read, flags the kernel refuses first) stays the kernel's, as
//! do calls of programs whose credentials are not the host's (see
//! `host_open`).

use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use viewos_core::Errno;

use super::caller_file::{caller_dir, last_errno, own_proc_path};
use super::{Call, Context, Verdict};
use crate::memory;

/// What one argument of a call in [`SPECS`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    /// A value, passed as it is.
    Val,
    /// A path relative to the cwd.
    Path,
    /// A directory fd; the next argument is a path relative to it.
    Dir,
    /// A path relative to the directory fd before it.
    DirPath,
    /// A string the kernel takes as it is (a symlink's target, an xattr
    /// name), at most this many bytes with its NUL.
    Str(usize),
    /// A buffer the kernel reads, this many bytes (or a null pointer).
    In(usize),
    /// A buffer the kernel reads, as many bytes as argument N says.
    InLen(usize),
}

use Arg::{Dir, DirPath, In, InLen, Path, Str, Val};

/// The kernel's limits on what [`Arg::Str`] and [`Arg::InLen`] read.
const PATH_MAX: usize = 4096;
const XATTR_NAME_MAX: usize = 256;
const XATTR_SIZE_MAX: usize = 65536;

/// One call the host makes itself.
struct Spec {
    nr: libc::c_long,
    args: &'static [Arg],
    /// The call creates with a mode the umask applies to.
    umask: bool,
}

const fn spec(nr: libc::c_long, args: &'static [Arg], umask: bool) -> Spec {
    Spec { nr, args, umask }
}

/// The calls, by number.
static SPECS: &[Spec] = &[
    spec(libc::SYS_rename, &[Path, Path], false),
    spec(libc::SYS_mkdir, &[Path, Val], true),
    spec(libc::SYS_rmdir, &[Path], false),
    spec(libc::SYS_link, &[Path, Path], false),
    spec(libc::SYS_unlink, &[Path], false),
    spec(libc::SYS_symlink, &[Str(PATH_MAX), Path], false),
    spec(libc::SYS_chmod, &[Path, Val], false),
    spec(libc::SYS_chown, &[Path, Val, Val], false),
    spec(libc::SYS_lchown, &[Path, Val, Val], false),
    spec(libc::SYS_truncate, &[Path, Val], false),
    spec(libc::SYS_utime, &[Path, In(16)], false),
    spec(libc::SYS_mknod, &[Path, Val, Val], true),
    spec(
        libc::SYS_setxattr,
        &[Path, Str(XATTR_NAME_MAX), InLen(3), Val, Val],
        false,
    ),
    spec(
        libc::SYS_lsetxattr,
        &[Path, Str(XATTR_NAME_MAX), InLen(3), Val, Val],
        false,
    ),
    spec(libc::SYS_removexattr, &[Path, Str(XATTR_NAME_MAX)], false),
    spec(libc::SYS_lremovexattr, &[Path, Str(XATTR_NAME_MAX)], false),
    spec(libc::SYS_utimes, &[Path, In(32)], false),
    spec(libc::SYS_mkdirat, &[Dir, DirPath, Val], true),
    spec(libc::SYS_mknodat, &[Dir, DirPath, Val, Val], true),
    spec(libc::SYS_fchownat, &[Dir, DirPath, Val, Val, Val], false),
    spec(libc::SYS_futimesat, &[Dir, DirPath, In(32)], false),
    spec(libc::SYS_unlinkat, &[Dir, DirPath, Val], false),
    spec(libc::SYS_renameat, &[Dir, DirPath, Dir, DirPath], false),
    spec(libc::SYS_linkat, &[Dir, DirPath, Dir, DirPath, Val], false),
    spec(libc::SYS_symlinkat, &[Str(PATH_MAX), Dir, DirPath], false),
    spec(libc::SYS_fchmodat, &[Dir, DirPath, Val], false),
    spec(libc::SYS_utimensat, &[Dir, DirPath, In(32), Val], false),
    spec(
        libc::SYS_renameat2,
        &[Dir, DirPath, Dir, DirPath, Val],
        false,
    ),
    spec(libc::SYS_fchmodat2, &[Dir, DirPath, Val, Val], false),
];

fn spec_of(nr: u64) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.nr as u64 == nr)
}

thread_local! {
    /// The path arguments the resolver checked for the call this thread
    /// is deciding, by address, in the order they were read.
    static CHECKED: RefCell<Vec<(u64, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

/// Forgets the paths of the previous call (at the start of each call).
pub(super) fn clear_checked() {
    CHECKED.with(|c| c.borrow_mut().clear());
}

/// Remembers that the path argument at `addr` was resolved as `bytes`.
pub(super) fn remember_checked(addr: u64, bytes: &[u8]) {
    if addr != 0 {
        CHECKED.with(|c| c.borrow_mut().push((addr, bytes.to_vec())));
    }
}

/// The checked bytes of the path argument at `addr` (the first not yet
/// taken).
fn take_checked(addr: u64) -> Option<Vec<u8>> {
    CHECKED.with(|c| {
        let mut c = c.borrow_mut();
        let i = c.iter().position(|(a, _)| *a == addr)?;
        Some(c.remove(i).1)
    })
}

/// True if a `Native` verdict for this call must become a call the host
/// makes ([`make`]).
pub(super) fn applies(ctx: &Context, call: &Call<'_>) -> bool {
    ctx.fd_filter_needed && spec_of(call.entry.nr).is_some() && !ctx.view.read().mounts().is_empty()
}

/// What the host keeps alive while it makes the call.
#[derive(Default)]
struct Held {
    strings: Vec<CString>,
    buffers: Vec<Vec<u8>>,
    dirs: Vec<OwnedFd>,
}

/// Makes the call `call` (which its handler found real) in the host, from
/// the paths the resolver checked; `Native` if a path was not checked.
pub(super) fn make(ctx: &Context, call: &Call<'_>) -> Verdict {
    let Some(spec) = spec_of(call.entry.nr) else {
        return Verdict::Native;
    };
    if !super::host_open::same_credentials(call.tid) {
        if ctx.log.enabled() {
            ctx.log.line(format_args!(
                "{} credentials differ from the host's: the kernel makes the call",
                call.tid
            ));
        }
        return Verdict::Native;
    }
    let a = call.entry.args;
    let mut args = a;
    let mut held = Held::default();
    for (i, kind) in spec.args.iter().enumerate() {
        let r = match *kind {
            Val | Dir => Ok(()),
            Path => path_arg(call.tid, libc::AT_FDCWD, a[i], &mut held).map(|p| {
                args[i] = p;
            }),
            DirPath => {
                let dirfd = a[i - 1] as i32;
                dir_path_arg(call.tid, dirfd, a[i], &mut held).map(|(d, p)| {
                    args[i - 1] = d as u64;
                    args[i] = p;
                })
            }
            Str(max) => string_arg(call.tid, a[i], max, &mut held).map(|p| {
                args[i] = p;
            }),
            In(len) => buffer_arg(call.tid, a[i], len, &mut held).map(|p| {
                args[i] = p;
            }),
            InLen(n) => {
                let len = a[n] as usize;
                if len > XATTR_SIZE_MAX {
                    Err(Some(Errno::new(libc::E2BIG)))
                } else {
                    buffer_arg(call.tid, a[i], len, &mut held).map(|p| {
                        args[i] = p;
                    })
                }
            }
        };
        match r {
            Ok(()) => {}
            Err(Some(e)) => return Verdict::Error(e),
            // A path the resolver did not check: the kernel's.
            Err(None) => return Verdict::Native,
        }
    }
    let old = spec
        .umask
        .then(|| super::host_open::thread_umask(super::sys_path::umask_of(call.tid)));
    // SAFETY: the syscall's own number with its arguments, the pointers
    // among them replaced by buffers and strings in `held`, alive until
    // after the call; the kernel checks the rest as for the program.
    let r = unsafe {
        libc::syscall(
            spec.nr, args[0], args[1], args[2], args[3], args[4], args[5],
        )
    };
    let e = last_errno();
    if let Some(old) = old {
        super::host_open::thread_umask(old);
    }
    drop(held);
    if r < 0 {
        Verdict::Error(e)
    } else {
        Verdict::Return(r)
    }
}

type ArgResult<T> = Result<T, Option<Errno>>;

/// A path without a directory argument: absolute as checked, relative
/// through the host's fd of the caller's cwd (`/proc/self/fd/D/NAME`).
fn path_arg(tid: i32, dirfd: i32, addr: u64, held: &mut Held) -> ArgResult<u64> {
    let bytes = take_checked(addr).ok_or(None)?;
    if bytes.is_empty() {
        return Err(Some(Errno::ENOENT));
    }
    let bytes = own_proc_path(tid, &bytes, true);
    let path = match caller_dir(tid, dirfd, &bytes).map_err(Some)? {
        Some(dir) => {
            let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            p.extend_from_slice(&bytes);
            held.dirs.push(dir);
            p
        }
        None => bytes,
    };
    let c = CString::new(path).map_err(|_| Some(Errno::EINVAL))?;
    let p = c.as_ptr() as u64;
    held.strings.push(c);
    Ok(p)
}

/// A path with its directory argument: the checked bytes, and the host's
/// fd of the caller's directory when the path is relative (or empty, for
/// `AT_EMPTY_PATH`).
fn dir_path_arg(tid: i32, dirfd: i32, addr: u64, held: &mut Held) -> ArgResult<(i32, u64)> {
    let bytes = take_checked(addr).ok_or(None)?;
    let bytes = own_proc_path(tid, &bytes, true);
    let d = match caller_dir(tid, dirfd, &bytes).map_err(Some)? {
        Some(dir) => {
            let raw = dir.as_raw_fd();
            held.dirs.push(dir);
            raw
        }
        None => libc::AT_FDCWD,
    };
    let c = CString::new(bytes).map_err(|_| Some(Errno::EINVAL))?;
    let p = c.as_ptr() as u64;
    held.strings.push(c);
    Ok((d, p))
}

/// A string the kernel takes as it is.
fn string_arg(tid: i32, addr: u64, max: usize, held: &mut Held) -> ArgResult<u64> {
    let bytes = memory::read_cstring(tid, addr, max).map_err(|e| {
        // An xattr name too long is ERANGE, a path ENAMETOOLONG.
        Some(if e == Errno::ENAMETOOLONG && max == XATTR_NAME_MAX {
            Errno::new(libc::ERANGE)
        } else {
            e
        })
    })?;
    let c = CString::new(bytes).map_err(|_| Some(Errno::EINVAL))?;
    let p = c.as_ptr() as u64;
    held.strings.push(c);
    Ok(p)
}

/// A buffer the kernel reads (a null pointer stays null).
fn buffer_arg(tid: i32, addr: u64, len: usize, held: &mut Held) -> ArgResult<u64> {
    if addr == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; len];
    memory::read_exact(tid, addr, &mut buf).map_err(Some)?;
    let p = buf.as_ptr() as u64;
    held.buffers.push(buf);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_args_come_before_their_paths() {
        for s in SPECS {
            for (i, a) in s.args.iter().enumerate() {
                if *a == DirPath {
                    assert!(i > 0 && s.args[i - 1] == Dir, "{}", s.nr);
                }
                if *a == Dir {
                    assert_eq!(s.args.get(i + 1), Some(&DirPath), "{}", s.nr);
                }
            }
        }
    }

    #[test]
    fn checked_paths_are_taken_in_order() {
        clear_checked();
        remember_checked(10, b"a");
        remember_checked(10, b"b");
        remember_checked(0, b"never");
        assert_eq!(take_checked(10).as_deref(), Some(&b"a"[..]));
        assert_eq!(take_checked(10).as_deref(), Some(&b"b"[..]));
        assert_eq!(take_checked(10), None);
        assert_eq!(take_checked(0), None);
    }
}
