//! Calls that name a file by path, and what they share: resolving path
//! arguments and asking the mount. This file has the calls that only look
//! (the stat family, statfs, access, readlink); `sys_tree`, `sys_open`,
//! `sys_cwd` and `sys_attr` have the others.
//!
//! Each handler reads its path arguments, resolves them
//! ([`crate::resolve`]) and either lets the kernel run the call (the path is
//! real) or asks the mount's [`FileSystem`] and writes the answer back. A
//! path the host cannot read is left to the kernel, which answers `EFAULT`
//! or `ENAMETOOLONG` itself.
//!
//! [`FileSystem`]: viewos_core::FileSystem

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use viewos_core::mounts::Mount;
use viewos_core::{Errno, FileStat};

use super::{Call, Context, Verdict};
use crate::memory;
use crate::resolve::{resolve, Resolved};
use crate::stat_abi;

/// Where one path argument leads, or the verdict to give at once.
pub(super) enum Target {
    Real,
    Virtual(Mount, PathBuf),
}

pub(super) fn target(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    follow: bool,
) -> Result<Target, Verdict> {
    let path = memory::read_path(call.tid, addr).map_err(|e| unreadable(ctx, addr, e))?;
    target_of(ctx, call, dirfd, (addr, &path), follow)
}

/// The answer to a path argument at `addr` the host could not read
/// (`EFAULT`, `ENAMETOOLONG`, or `EPERM` for a process it may not read).
/// In a view with mounts the host gives the error itself: letting the
/// kernel read the argument again would let another thread map the page,
/// or finish the string, after the host looked, and the kernel would then
/// run the call on a path nobody checked. A NULL pointer is left to the
/// kernel, which reads nothing at some calls (`utimensat(fd, NULL, ..)`,
/// `AT_EMPTY_PATH`) and cannot be made to read a page at 0 otherwise.
pub(super) fn unreadable(ctx: &Context, addr: u64, e: Errno) -> Verdict {
    if addr == 0 || ctx.view.read().mounts().is_empty() {
        Verdict::Native
    } else {
        Verdict::Error(e)
    }
}

/// [`target`] for a path argument already read.
pub(super) fn target_of(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    (addr, path): (u64, &[u8]),
    follow: bool,
) -> Result<Target, Verdict> {
    super::host_call::remember_checked(addr, path);
    let resolved = resolve(
        ctx.view.read().mounts(),
        (&ctx.walks, &ctx.dirs),
        call.tid,
        (dirfd, !ctx.virtual_given.load(Ordering::Relaxed)),
        path,
        follow,
    );
    match resolved {
        Ok(Resolved::Real) => match real_under_served_dir(ctx, call, dirfd, (addr, path), follow) {
            Some(v) => Err(v),
            None => Ok(Target::Real),
        },
        Ok(Resolved::Virtual { mount, path }) => Ok(Target::Virtual(mount, path)),
        Err(e) => Err(Verdict::Error(e)),
    }
}

/// Where the absolute `path` leads in the view, resolved for thread `tid`
/// (`/proc/self` is its own), following a last symlink if `follow`.
pub(super) fn resolve_absolute(
    ctx: &Context,
    tid: i32,
    path: &[u8],
    follow: bool,
) -> Result<Resolved, Errno> {
    resolve(
        ctx.view.read().mounts(),
        (&ctx.walks, &ctx.dirs),
        tid,
        (libc::AT_FDCWD, true),
        path,
        follow,
    )
}

/// A real path relative to a directory the host stands in for (a served
/// directory, a placeholder cwd, a directory a mount gave as a real fd):
/// the kernel would look the names up in the wrong directory, so the path
/// argument becomes an absolute one the kernel resolves the same way:
/// below a served real directory (a listing with mount points added,
/// [`crate::merged_dir`]) its canonical path joined with the name;
/// otherwise the real path the walk reached (a path leaving a mount by
/// `..` or a symlink, or entering a mount's `except` path).
fn real_under_served_dir(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    (addr, path): (u64, &[u8]),
    follow: bool,
) -> Option<Verdict> {
    if path.is_empty() || path[0] == b'/' || !ctx.virtual_given.load(Ordering::Relaxed) {
        return None;
    }
    let served = (dirfd >= 0 && !ctx.served.is_empty())
        .then(|| ctx.served.of_fd(call.tid, dirfd))
        .flatten();
    let base = match &served {
        Some(f) if f.is_real_dir() => {
            let mut abs = f.path.as_os_str().as_bytes().to_vec();
            if !abs.ends_with(b"/") {
                abs.push(b'/');
            }
            abs.extend_from_slice(path);
            return rewrite_arg(call, addr, abs);
        }
        Some(f) if f.is_dir => f.view_path(),
        Some(_) => return None,
        None => crate::resolve::virtual_base(&ctx.dirs, call.tid, dirfd)?,
    };
    let real = crate::resolve::real_path_below(
        ctx.view.read().mounts(),
        (&ctx.walks, &ctx.dirs),
        call.tid,
        &base,
        path,
        follow,
    )?;
    rewrite_arg(call, addr, real.into_os_string().into_vec())
}

/// The call with its path argument at `addr` replaced by `path`.
fn rewrite_arg(call: &Call<'_>, addr: u64, path: Vec<u8>) -> Option<Verdict> {
    if addr == 0 {
        // A path the host read itself, not an argument.
        return None;
    }
    let arg = call.entry.args.iter().position(|&a| a == addr)?;
    Some(Verdict::RewritePath {
        arg,
        path,
        hold: None,
    })
}

/// Runs `op` on the mount if the path is virtual; native otherwise.
pub(super) fn on_one(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    follow: bool,
    op: impl FnOnce(&Mount, &Path) -> Result<i64, Errno>,
) -> Verdict {
    match target(ctx, call, dirfd, addr, follow) {
        Ok(Target::Real) => Verdict::Native,
        Ok(Target::Virtual(m, p)) => to_verdict(op(&m, &p)),
        Err(v) => v,
    }
}

/// Two-path calls (rename, link): both real runs natively, both in one
/// mount goes to it, anything else crosses file systems: `EXDEV`.
#[allow(clippy::too_many_arguments)]
pub(super) fn on_two(
    ctx: &Context,
    call: &Call<'_>,
    (dirfd1, addr1, follow1): (i32, u64, bool),
    (dirfd2, addr2): (i32, u64),
    op: impl FnOnce(&Mount, &Path, &Path) -> Result<i64, Errno>,
) -> Verdict {
    let a = match target(ctx, call, dirfd1, addr1, follow1) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let b = match target(ctx, call, dirfd2, addr2, false) {
        Ok(t) => t,
        Err(v) => return v,
    };
    match (a, b) {
        (Target::Real, Target::Real) => Verdict::Native,
        (Target::Virtual(m1, p1), Target::Virtual(m2, p2))
            if std::sync::Arc::ptr_eq(&m1.fs, &m2.fs) =>
        {
            to_verdict(op(&m1, &p1, &p2))
        }
        _ => Verdict::Error(Errno::new(libc::EXDEV)),
    }
}

fn to_verdict(r: Result<i64, Errno>) -> Verdict {
    match r {
        Ok(v) => Verdict::Return(v),
        Err(e) => Verdict::Error(e),
    }
}

pub(super) fn arg_fd(v: u64) -> i32 {
    v as i32
}

pub(super) fn write_out(tid: i32, addr: u64, bytes: &[u8]) -> Result<i64, Errno> {
    memory::write_all(tid, addr, bytes).map(|_| 0)
}

/// The caller's umask, applied to modes of created files as the kernel does.
pub(super) fn umask_of(tid: i32) -> u32 {
    crate::resolve::status_field(tid, "Umask:")
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}

fn stat_into(tid: i32, st: &FileStat, buf: u64) -> Result<i64, Errno> {
    write_out(tid, buf, &stat_abi::stat_bytes(st))
}

/// Implements stat(2).
pub fn stat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        stat_into(call.tid, &m.fs.lstat(p)?, a[1])
    })
}

/// Implements lstat(2).
pub fn lstat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], false, |m, p| {
        stat_into(call.tid, &m.fs.lstat(p)?, a[1])
    })
}

/// The status of a served file named by its fd with an empty path and
/// `AT_EMPTY_PATH` (how glibc's fstat asks); `None` for anything else.
fn served_fd_stat(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
) -> Option<Result<FileStat, Errno>> {
    if ctx.served.is_empty() || flags & libc::AT_EMPTY_PATH == 0 {
        return None;
    }
    let empty = addr == 0 || memory::read_path(call.tid, addr).is_ok_and(|p| p.is_empty());
    if !empty {
        return None;
    }
    ctx.served.of_fd(call.tid, dirfd).map(|f| f.stat())
}

/// Implements newfstatat(2) (what glibc's stat, lstat, fstatat and fstat
/// use).
pub fn newfstatat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if let Some(st) = served_fd_stat(ctx, call, arg_fd(a[0]), a[1], a[3] as i32) {
        return to_verdict(st.and_then(|st| stat_into(call.tid, &st, a[2])));
    }
    let follow = a[3] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |m, p| {
        stat_into(call.tid, &m.fs.lstat(p)?, a[2])
    })
}

/// Implements statx(2).
pub fn statx(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if let Some(st) = served_fd_stat(ctx, call, arg_fd(a[0]), a[1], a[2] as i32) {
        return to_verdict(
            st.and_then(|st| write_out(call.tid, a[4], &stat_abi::statx_bytes(&st))),
        );
    }
    let follow = a[2] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |m, p| {
        let st = m.fs.lstat(p)?;
        write_out(call.tid, a[4], &stat_abi::statx_bytes(&st))
    })
}

pub(super) fn check_access_mode(mode: u64) -> Result<i32, Errno> {
    if mode & !0o7 != 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(mode as i32)
    }
}

/// Implements access(2).
pub fn access(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        access_on(m, p, check_access_mode(a[1])?)
    })
}

/// Implements faccessat(2) and faccessat2(2).
pub fn faccessat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr != libc::SYS_faccessat2 as u64
        || a[3] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |m, p| {
        access_on(m, p, check_access_mode(a[2])?)
    })
}

/// access(2) on a mount: `W_OK` on a read-only one is `EROFS` once the file
/// is known to exist (the kernel's order).
pub(super) fn access_on(m: &Mount, p: &Path, mode: i32) -> Result<i64, Errno> {
    m.fs.access(p, mode)?;
    if mode & libc::W_OK != 0 {
        m.writable()?;
    }
    Ok(0)
}

fn do_readlink(m: &Mount, p: &Path, tid: i32, buf: u64, size: u64) -> Result<i64, Errno> {
    if size as i64 <= 0 {
        return Err(Errno::EINVAL);
    }
    let target = m.fs.readlink(p)?;
    let bytes = target.as_os_str().as_bytes();
    let n = bytes.len().min(size as usize);
    write_out(tid, buf, &bytes[..n])?;
    Ok(n as i64)
}

/// Implements readlink(2).
pub fn readlink(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], false, |m, p| {
        do_readlink(m, p, call.tid, a[1], a[2])
    })
}

/// Implements readlinkat(2).
pub fn readlinkat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, arg_fd(a[0]), a[1], false, |m, p| {
        do_readlink(m, p, call.tid, a[2], a[3])
    })
}

/// Implements statfs(2) (follows a final symlink).
pub fn statfs(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        let st = m.fs.statfs(p)?;
        write_out(call.tid, a[1], &stat_abi::statfs_bytes(&st))
    })
}
