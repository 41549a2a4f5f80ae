//! Changing a file's attributes by path: mode, owner, length, times,
//! extended attributes; and file handles.

use std::path::Path;

use viewos_core::mounts::Mount;
use viewos_core::{Errno, SetTime, Timespec};

use super::sys_path::{arg_fd, on_one};
use super::{Call, Context, Verdict};
use crate::memory;

/// Implements chmod(2).
pub fn chmod(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        chmod_on(m, p, a[1])
    })
}

/// chmod of the file `p` of `m` (chmod, fchmodat, fchmod).
pub(super) fn chmod_on(m: &Mount, p: &Path, mode: u64) -> Result<i64, Errno> {
    m.writable()?;
    m.fs.chmod(p, mode as u32 & 0o7777).map(|_| 0)
}

/// Implements fchmodat(2).
pub fn fchmodat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, arg_fd(a[0]), a[1], true, |m, p| {
        chmod_on(m, p, a[2])
    })
}

/// chown of the file `p` of `m` to the raw uid and gid arguments (-1 leaves
/// one as it is): chown, lchown, fchownat, fchown.
pub(super) fn chown_on(m: &Mount, p: &Path, uid: u64, gid: u64) -> Result<i64, Errno> {
    let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    m.writable()?;
    m.fs.chown(p, id(uid), id(gid)).map(|_| 0)
}

/// Implements chown(2) and lchown(2).
pub fn chown(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_chown as u64;
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
        chown_on(m, p, a[1], a[2])
    })
}

/// Implements fchownat(2).
pub fn fchownat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = a[4] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |m, p| {
        chown_on(m, p, a[2], a[3])
    })
}

/// Implements truncate(2).
pub fn truncate(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        if (a[1] as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        m.writable()?;
        m.fs.truncate(p, a[1]).map(|_| 0)
    })
}

/// Reads `count` `struct timespec`s (utimensat) into [`SetTime`]s; a null
/// pointer means "now" for both, as the kernel reads it.
fn read_timespecs(tid: i32, addr: u64) -> Result<[SetTime; 2], Errno> {
    if addr == 0 {
        return Ok([SetTime::Now, SetTime::Now]);
    }
    let mut raw = [0u8; 32];
    memory::read_exact(tid, addr, &mut raw)?;
    let word = |i: usize| i64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let one = |sec: i64, nsec: i64| -> Result<SetTime, Errno> {
        match nsec {
            libc::UTIME_NOW => Ok(SetTime::Now),
            libc::UTIME_OMIT => Ok(SetTime::Omit),
            0..=999_999_999 => Ok(SetTime::At(Timespec {
                sec,
                nsec: nsec as u32,
            })),
            _ => Err(Errno::EINVAL),
        }
    };
    Ok([one(word(0), word(1))?, one(word(2), word(3))?])
}

/// Reads two `struct timeval`s (utimes, futimesat); null means now.
fn read_timevals(tid: i32, addr: u64) -> Result<[SetTime; 2], Errno> {
    if addr == 0 {
        return Ok([SetTime::Now, SetTime::Now]);
    }
    let mut raw = [0u8; 32];
    memory::read_exact(tid, addr, &mut raw)?;
    let word = |i: usize| i64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let one = |sec: i64, usec: i64| -> Result<SetTime, Errno> {
        if !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        Ok(SetTime::At(Timespec {
            sec,
            nsec: (usec * 1000) as u32,
        }))
    };
    Ok([one(word(0), word(1))?, one(word(2), word(3))?])
}

fn utimens_on(m: &Mount, p: &Path, times: [SetTime; 2]) -> Result<i64, Errno> {
    m.writable()?;
    m.fs.utimens(p, times[0], times[1]).map(|_| 0)
}

/// Implements utimensat(2).
pub fn utimensat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if a[1] == 0 {
        // futimens(fd): the kernel's, unless the fd's file is virtual.
        return super::sys_fd::on_fd_file(ctx, call, 0, |m, p| {
            utimens_on(m, p, read_timespecs(call.tid, a[2])?)
        });
    }
    let follow = a[3] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |m, p| {
        utimens_on(m, p, read_timespecs(call.tid, a[2])?)
    })
}

/// Implements utimes(2).
pub fn utimes(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        utimens_on(m, p, read_timevals(call.tid, a[1])?)
    })
}

/// Implements futimesat(2).
pub fn futimesat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, arg_fd(a[0]), a[1], true, |m, p| {
        utimens_on(m, p, read_timevals(call.tid, a[2])?)
    })
}

/// Implements utime(2) (`struct utimbuf`: two longs).
pub fn utime(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        let times = if a[1] == 0 {
            [SetTime::Now, SetTime::Now]
        } else {
            let mut raw = [0u8; 16];
            memory::read_exact(call.tid, a[1], &mut raw)?;
            let w =
                |i: usize| i64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
            [
                SetTime::At(Timespec { sec: w(0), nsec: 0 }),
                SetTime::At(Timespec { sec: w(1), nsec: 0 }),
            ]
        };
        utimens_on(m, p, times)
    })
}

/// The longest attribute name and value the kernel accepts.
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;

fn xattr_name(tid: i32, addr: u64) -> Result<Vec<u8>, Errno> {
    let name = memory::read_cstring(tid, addr, XATTR_NAME_MAX + 1).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            Errno::new(libc::ERANGE)
        } else {
            e
        }
    })?;
    if name.is_empty() {
        return Err(Errno::new(libc::ERANGE));
    }
    Ok(name)
}

/// Copies an attribute value or name list out as get/listxattr do: size 0
/// asks the length, a short buffer is `ERANGE`.
fn xattr_out(tid: i32, buf: u64, size: u64, data: &[u8]) -> Result<i64, Errno> {
    if size == 0 {
        return Ok(data.len() as i64);
    }
    if (size as usize) < data.len() {
        return Err(Errno::new(libc::ERANGE));
    }
    memory::write_all(tid, buf, data)?;
    Ok(data.len() as i64)
}

/// getxattr(2) and lgetxattr(2).
pub fn getxattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_getxattr as u64;
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
        getxattr_on(call, m, p)
    })
}

/// The get/fgetxattr answer for the file `p` of `m`; the arguments after
/// the first are the same for both.
pub(super) fn getxattr_on(call: &Call<'_>, m: &Mount, p: &Path) -> Result<i64, Errno> {
    let a = call.entry.args;
    let name = xattr_name(call.tid, a[1])?;
    let value = m.fs.getxattr(p, &name)?;
    xattr_out(call.tid, a[2], a[3], &value)
}

/// setxattr(2) and lsetxattr(2).
pub fn setxattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_setxattr as u64;
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
        setxattr_on(call, m, p)
    })
}

/// The set/fsetxattr answer (see [`getxattr_on`]).
pub(super) fn setxattr_on(call: &Call<'_>, m: &Mount, p: &Path) -> Result<i64, Errno> {
    let a = call.entry.args;
    let name = xattr_name(call.tid, a[1])?;
    let size = a[3] as usize;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::new(libc::E2BIG));
    }
    let flags = a[4] as i32;
    if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let mut value = vec![0u8; size];
    memory::read_exact(call.tid, a[2], &mut value)?;
    m.writable()?;
    m.fs.setxattr(p, &name, &value, flags).map(|_| 0)
}

/// listxattr(2) and llistxattr(2).
pub fn listxattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_listxattr as u64;
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
        listxattr_on(call, m, p)
    })
}

/// The list/flistxattr answer (see [`getxattr_on`]).
pub(super) fn listxattr_on(call: &Call<'_>, m: &Mount, p: &Path) -> Result<i64, Errno> {
    let a = call.entry.args;
    let names = m.fs.listxattr(p)?;
    xattr_out(call.tid, a[1], a[2], &names)
}

/// removexattr(2) and lremovexattr(2).
pub fn removexattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_removexattr as u64;
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
        removexattr_on(call, m, p)
    })
}

/// The remove/fremovexattr answer (see [`getxattr_on`]).
pub(super) fn removexattr_on(call: &Call<'_>, m: &Mount, p: &Path) -> Result<i64, Errno> {
    let name = xattr_name(call.tid, call.entry.args[1])?;
    m.writable()?;
    m.fs.removexattr(p, &name).map(|_| 0)
}

/// Implements open_by_handle_at(2). A handle names a file without a path,
/// around every mount of the view (a hidden file's handle, made outside,
/// would open it): in a view with mounts it is refused with `EPERM`, the
/// kernel's answer to a caller without `CAP_DAC_READ_SEARCH`.
pub fn open_by_handle_at(ctx: &Context, _call: &Call<'_>) -> Verdict {
    if ctx.view.read().mounts().is_empty() {
        Verdict::Native
    } else {
        Verdict::Error(Errno::EPERM)
    }
}

/// name_to_handle_at(2): virtual files have no kernel file handles.
pub fn name_to_handle_at(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = a[4] as i32 & libc::AT_SYMLINK_FOLLOW != 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |_, _| {
        Err(Errno::EOPNOTSUPP)
    })
}
