//! Calls that add, remove or rename names: mkdir, rmdir, unlink, rename,
//! link, symlink, mknod (and their `*at` forms), chroot.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use viewos_core::mounts::Mount;
use viewos_core::Errno;

use super::sys_path::{arg_fd, on_one, on_two, umask_of};
use super::{Call, Context, Verdict};
use crate::memory;

/// Implements mkdir(2).
pub fn mkdir(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let mode = a[1] as u32 & 0o7777 & !umask_of(call.tid);
    on_one(ctx, call, libc::AT_FDCWD, a[0], false, |m, p| {
        m.writable()?;
        m.fs.mkdir(p, mode).map(|_| 0)
    })
}

/// Implements mkdirat(2).
pub fn mkdirat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let mode = a[2] as u32 & 0o7777 & !umask_of(call.tid);
    on_one(ctx, call, arg_fd(a[0]), a[1], false, |m, p| {
        m.writable()?;
        m.fs.mkdir(p, mode).map(|_| 0)
    })
}

/// Implements rmdir(2).
pub fn rmdir(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], false, |m, p| {
        m.writable()?;
        m.fs.rmdir(p).map(|_| 0)
    })
}

/// Implements unlink(2).
pub fn unlink(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], false, |m, p| {
        m.writable()?;
        m.fs.unlink(p).map(|_| 0)
    })
}

/// Implements unlinkat(2).
pub fn unlinkat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = a[2] as i32;
    if flags & !libc::AT_REMOVEDIR != 0 {
        return Verdict::Native;
    }
    on_one(ctx, call, arg_fd(a[0]), a[1], false, |m, p| {
        if flags & libc::AT_REMOVEDIR != 0 {
            m.writable()?;
            m.fs.rmdir(p).map(|_| 0)
        } else {
            m.writable()?;
            m.fs.unlink(p).map(|_| 0)
        }
    })
}

/// Renames `(dirfd, path)` to `(dirfd, path)` with renameat2's `flags`.
fn rename_common(
    ctx: &Context,
    call: &Call<'_>,
    from: (i32, u64),
    to: (i32, u64),
    flags: u32,
) -> Verdict {
    on_two(ctx, call, (from.0, from.1, false), to, |m, f, t| {
        m.writable()?;
        m.fs.rename(f, t, flags).map(|_| 0)
    })
}

/// Implements rename(2).
pub fn rename(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    rename_common(ctx, call, (libc::AT_FDCWD, a[0]), (libc::AT_FDCWD, a[1]), 0)
}

/// Implements renameat(2) and renameat2(2).
pub fn renameat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = if call.entry.nr == libc::SYS_renameat2 as u64 {
        a[4] as u32
    } else {
        0
    };
    rename_common(ctx, call, (arg_fd(a[0]), a[1]), (arg_fd(a[2]), a[3]), flags)
}

/// Implements link(2).
pub fn link(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_two(
        ctx,
        call,
        (libc::AT_FDCWD, a[0], false),
        (libc::AT_FDCWD, a[1]),
        |m, f, t| {
            m.writable()?;
            m.fs.link(f, t).map(|_| 0)
        },
    )
}

/// Implements linkat(2).
pub fn linkat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = a[4] as i32;
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Verdict::Native;
    }
    let follow = flags & libc::AT_SYMLINK_FOLLOW != 0;
    on_two(
        ctx,
        call,
        (arg_fd(a[0]), a[1], follow),
        (arg_fd(a[2]), a[3]),
        |m, f, t| {
            m.writable()?;
            m.fs.link(f, t).map(|_| 0)
        },
    )
}

fn do_symlink(ctx: &Context, call: &Call<'_>, target_addr: u64, dirfd: i32, addr: u64) -> Verdict {
    let Ok(target_bytes) = memory::read_path(call.tid, target_addr) else {
        return Verdict::Native;
    };
    on_one(ctx, call, dirfd, addr, false, |m, p| {
        if target_bytes.is_empty() {
            return Err(Errno::ENOENT);
        }
        m.writable()?;
        m.fs.symlink(Path::new(OsStr::from_bytes(&target_bytes)), p)
            .map(|_| 0)
    })
}

/// Implements symlink(2).
pub fn symlink(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    do_symlink(ctx, call, a[0], libc::AT_FDCWD, a[1])
}

/// Implements symlinkat(2).
pub fn symlinkat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    do_symlink(ctx, call, a[0], arg_fd(a[1]), a[2])
}

/// Implements chroot(2). A root inside a virtual mount is not supported:
/// the host resolves every path from the real root. Real paths go to the
/// kernel (which refuses users without `CAP_SYS_CHROOT`).
pub fn chroot(ctx: &Context, call: &Call<'_>) -> Verdict {
    on_one(
        ctx,
        call,
        libc::AT_FDCWD,
        call.entry.args[0],
        true,
        |_, _| Err(Errno::ENOSYS),
    )
}

fn mknod_on(m: &Mount, p: &Path, tid: i32, mode: u32, dev: u64) -> Result<i64, Errno> {
    let kind = mode & libc::S_IFMT;
    let kind = if kind == 0 { libc::S_IFREG } else { kind };
    if ![
        libc::S_IFREG,
        libc::S_IFCHR,
        libc::S_IFBLK,
        libc::S_IFIFO,
        libc::S_IFSOCK,
    ]
    .contains(&kind)
    {
        return Err(Errno::EINVAL);
    }
    m.writable()?;
    let perm = mode & 0o7777 & !umask_of(tid);
    m.fs.mknod(p, kind | perm, dev).map(|_| 0)
}

/// Implements mknod(2).
pub fn mknod(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], false, |m, p| {
        mknod_on(m, p, call.tid, a[1] as u32, a[2])
    })
}

/// Implements mknodat(2).
pub fn mknodat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, arg_fd(a[0]), a[1], false, |m, p| {
        mknod_on(m, p, call.tid, a[2] as u32, a[3])
    })
}
