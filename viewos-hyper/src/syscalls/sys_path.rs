//! Calls that name a file by path: the stat family, access, readlink,
//! mkdir, rmdir, unlink, rename, link, symlink, chmod, chown, truncate.
//!
//! Each handler reads its path arguments, resolves them
//! ([`crate::resolve`]) and either lets the kernel run the call (the path is
//! real) or asks the mount's [`FileSystem`] and writes the answer back. A
//! path the host cannot read is left to the kernel, which answers `EFAULT`
//! or `ENAMETOOLONG` itself.
//!
//! [`FileSystem`]: viewos_core::FileSystem

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use viewos_core::mounts::Mount;
use viewos_core::{Errno, FileStat, Opened, SetTime, Timespec};

use super::{Call, Context, Verdict};
use crate::memory;
use crate::resolve::{resolve, Resolved};
use crate::stat_abi;

/// Where one path argument leads, or the verdict to give at once.
enum Target {
    Real,
    Virtual(Mount, PathBuf),
}

fn target(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    follow: bool,
) -> Result<Target, Verdict> {
    let path = memory::read_path(call.tid, addr).map_err(|_| Verdict::Native)?;
    let resolved = resolve(
        ctx.view.read().mounts(),
        (&ctx.walks, &ctx.dirs),
        call.tid,
        (dirfd, !ctx.virtual_given.load(Ordering::Relaxed)),
        &path,
        follow,
    );
    match resolved {
        Ok(Resolved::Real) => Ok(Target::Real),
        Ok(Resolved::Virtual { mount, path }) => Ok(Target::Virtual(mount, path)),
        Err(e) => Err(Verdict::Error(e)),
    }
}

/// Runs `op` on the mount if the path is virtual; native otherwise.
fn on_one(
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
fn on_two(
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

fn arg_fd(v: u64) -> i32 {
    v as i32
}

fn write_out(tid: i32, addr: u64, bytes: &[u8]) -> Result<i64, Errno> {
    memory::write_all(tid, addr, bytes).map(|_| 0)
}

/// The caller's umask, applied to modes of created files as the kernel does.
fn umask_of(tid: i32) -> u32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
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

/// Implements newfstatat(2) (what glibc's stat, lstat and fstatat use).
pub fn newfstatat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = a[3] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |m, p| {
        stat_into(call.tid, &m.fs.lstat(p)?, a[2])
    })
}

/// Implements statx(2).
pub fn statx(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = a[2] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |m, p| {
        let st = m.fs.lstat(p)?;
        write_out(call.tid, a[4], &stat_abi::statx_bytes(&st))
    })
}

fn check_access_mode(mode: u64) -> Result<i32, Errno> {
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
fn access_on(m: &Mount, p: &Path, mode: i32) -> Result<i64, Errno> {
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

/// Implements rename(2).
pub fn rename(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_two(
        ctx,
        call,
        (libc::AT_FDCWD, a[0], false),
        (libc::AT_FDCWD, a[1]),
        |m, f, t| {
            m.writable()?;
            m.fs.rename(f, t, 0).map(|_| 0)
        },
    )
}

/// Implements renameat(2) and renameat2(2).
pub fn renameat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = if call.entry.nr == libc::SYS_renameat2 as u64 {
        a[4] as u32
    } else {
        0
    };
    on_two(
        ctx,
        call,
        (arg_fd(a[0]), a[1], false),
        (arg_fd(a[2]), a[3]),
        |m, f, t| {
            m.writable()?;
            m.fs.rename(f, t, flags).map(|_| 0)
        },
    )
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

/// Implements chmod(2).
pub fn chmod(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        m.writable()?;
        m.fs.chmod(p, a[1] as u32 & 0o7777).map(|_| 0)
    })
}

/// Implements fchmodat(2).
pub fn fchmodat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, arg_fd(a[0]), a[1], true, |m, p| {
        m.writable()?;
        m.fs.chmod(p, a[2] as u32 & 0o7777).map(|_| 0)
    })
}

fn ids(uid: u64, gid: u64) -> (Option<u32>, Option<u32>) {
    let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    (id(uid), id(gid))
}

/// Implements chown(2) and lchown(2).
pub fn chown(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_chown as u64;
    let (uid, gid) = ids(a[1], a[2]);
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
        m.writable()?;
        m.fs.chown(p, uid, gid).map(|_| 0)
    })
}

/// Implements fchownat(2).
pub fn fchownat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = a[4] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    let (uid, gid) = ids(a[2], a[3]);
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |m, p| {
        m.writable()?;
        m.fs.chown(p, uid, gid).map(|_| 0)
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

/// open(2), creat(2), openat(2), openat2(2) on a virtual path: the mount
/// opens the file and the program gets it as a new fd.
fn open_common(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
    mode: u32,
) -> Verdict {
    if let Some(v) = mount_listing(ctx, call, dirfd, addr, flags) {
        return v;
    }
    let creating = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    let follow = flags & libc::O_NOFOLLOW == 0
        && flags & (libc::O_CREAT | libc::O_EXCL) != (libc::O_CREAT | libc::O_EXCL);
    let (mount, path) = match target(ctx, call, dirfd, addr, follow) {
        Ok(Target::Real) => return Verdict::Native,
        Ok(Target::Virtual(m, p)) => (m, p),
        Err(v) => return v,
    };
    let mode = if creating {
        mode & 0o7777 & !umask_of(call.tid)
    } else {
        0
    };
    let writes = flags & libc::O_ACCMODE != libc::O_RDONLY
        || flags & libc::O_TRUNC != 0
        || (creating && mount.fs.lstat(&path).is_err());
    if writes {
        if let Err(e) = mount.writable() {
            return Verdict::Error(e);
        }
    }
    match mount.fs.open(&path, flags, mode) {
        Ok(Opened::Backed(fd)) => {
            // From now on a dirfd or cwd may be virtual.
            ctx.virtual_given.store(true, Ordering::Relaxed);
            Verdict::InstallFd {
                fd,
                cloexec: flags & libc::O_CLOEXEC != 0,
            }
        }
        // A kind of file this host cannot hand over.
        Ok(_) => Verdict::Error(Errno::ENOSYS),
        Err(e) => Verdict::Error(e),
    }
}

/// Opening `/proc/self/mounts` (and its other names) for reading in a view
/// with mounts gets the real listing followed by the view's.
fn mount_listing(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
) -> Option<Verdict> {
    if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_PATH != 0 {
        return None;
    }
    let view = ctx.view.read();
    if view.mounts().is_empty() {
        return None;
    }
    let raw = memory::read_path(call.tid, addr).ok()?;
    if !(raw.ends_with(b"mounts") || raw.ends_with(b"mountinfo") || raw.ends_with(b"mtab")) {
        return None;
    }
    let abs = crate::resolve::absolute(&ctx.dirs, call.tid, dirfd, &raw)?;
    let abs = viewos_core::path::normalize(Path::new("/"), abs.as_os_str().as_bytes());
    let listing = crate::proc_mounts::listing_of(&abs)?;
    let text = crate::proc_mounts::render(listing, call.tid, view.mounts()).ok()?;
    drop(view);
    match crate::proc_mounts::memory_file(&text) {
        Ok(fd) => Some(Verdict::InstallFd {
            fd,
            cloexec: flags & libc::O_CLOEXEC != 0,
        }),
        Err(e) => Some(Verdict::Error(Errno::from(e))),
    }
}

/// Implements open(2).
pub fn open(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    open_common(ctx, call, libc::AT_FDCWD, a[0], a[1] as i32, a[2] as u32)
}

/// Implements creat(2): open with `O_CREAT | O_WRONLY | O_TRUNC`.
pub fn creat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    open_common(ctx, call, libc::AT_FDCWD, a[0], flags, a[1] as u32)
}

/// Implements openat(2).
pub fn openat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    open_common(ctx, call, arg_fd(a[0]), a[1], a[2] as i32, a[3] as u32)
}

/// `struct open_how` of openat2(2).
#[repr(C)]
#[derive(Default)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Implements openat2(2). A virtual path with `resolve` restrictions gets
/// `EXDEV` (what the kernel gives when a restricted lookup would cross
/// into another mount): the restrictions are not applied to views yet.
pub fn openat2(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let size = a[3] as usize;
    if size < std::mem::size_of::<OpenHow>() || size > 4096 {
        // The kernel answers EINVAL (too small) or E2BIG itself.
        return Verdict::Native;
    }
    let mut raw = [0u8; 24];
    if memory::read_exact(call.tid, a[2], &mut raw).is_err() {
        return Verdict::Native;
    }
    let word = |i: usize| u64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let how = OpenHow {
        flags: word(0),
        mode: word(1),
        resolve: word(2),
    };
    if how.flags > i32::MAX as u64 || how.mode > 0o7777 {
        return Verdict::Native;
    }
    // The kernel's own checks of open_how, whatever the path.
    let flags = how.flags as i32;
    let creating = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    const RESOLVE_ALL: u64 = 0x3f;
    const RESOLVE_BENEATH: u64 = 0x08;
    const RESOLVE_IN_ROOT: u64 = 0x10;
    if (how.mode != 0 && !creating)
        || how.resolve & !RESOLVE_ALL != 0
        || how.resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) == RESOLVE_BENEATH | RESOLVE_IN_ROOT
    {
        return Verdict::Error(Errno::EINVAL);
    }
    if how.resolve != 0 {
        // The kernel's checks would run on the real tree, not the view's:
        // only unrestricted lookups are answered for virtual paths.
        let follow = how.flags as i32 & libc::O_NOFOLLOW == 0;
        return match target(ctx, call, arg_fd(a[0]), a[1], follow) {
            Ok(Target::Real) => Verdict::Native,
            Ok(Target::Virtual(..)) => Verdict::Error(Errno::new(libc::EXDEV)),
            Err(v) => v,
        };
    }
    open_common(
        ctx,
        call,
        arg_fd(a[0]),
        a[1],
        how.flags as i32,
        how.mode as u32,
    )
}

/// Implements statfs(2) (follows a final symlink).
pub fn statfs(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_one(ctx, call, libc::AT_FDCWD, a[0], true, |m, p| {
        let st = m.fs.statfs(p)?;
        write_out(call.tid, a[1], &stat_abi::statfs_bytes(&st))
    })
}

/// Implements chdir(2). Into a virtual directory: the kernel's cwd becomes
/// the placeholder standing for it ([`crate::virtual_dirs`]).
pub fn chdir(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let (mount, path) = match target(ctx, call, libc::AT_FDCWD, a[0], true) {
        Ok(Target::Real) => return Verdict::Native,
        Ok(Target::Virtual(m, p)) => (m, p),
        Err(v) => return v,
    };
    let checked = (|| {
        let st = mount.fs.lstat(&path)?;
        if !st.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        mount.fs.access(&path, libc::X_OK)?;
        let rel = path.strip_prefix("/").unwrap_or(&path);
        let virt = if rel.as_os_str().is_empty() {
            mount.request.target.clone()
        } else {
            mount.request.target.join(rel)
        };
        ctx.dirs.placeholder_for(&virt)
    })();
    match checked {
        Ok(placeholder) => {
            // From now on a cwd may be virtual.
            ctx.virtual_given.store(true, Ordering::Relaxed);
            Verdict::RewritePath {
                arg: 0,
                path: placeholder.into_os_string().into_vec(),
                hold: None,
            }
        }
        Err(e) => Verdict::Error(e),
    }
}

/// Implements getcwd(2): a placeholder cwd is reported as the virtual
/// directory it stands for.
pub fn getcwd(ctx: &Context, call: &Call<'_>) -> Verdict {
    if !ctx.virtual_given.load(Ordering::Relaxed) {
        return Verdict::Native;
    }
    let Ok(real) = std::fs::read_link(format!("/proc/{}/cwd", call.tid)) else {
        return Verdict::Native;
    };
    let Some(virt) = ctx.dirs.virtual_of(&real) else {
        return Verdict::Native;
    };
    let mut bytes = virt.into_os_string().into_vec();
    bytes.push(0);
    let a = call.entry.args;
    if (a[1] as usize) < bytes.len() {
        return Verdict::Error(Errno::new(libc::ERANGE));
    }
    match memory::write_all(call.tid, a[0], &bytes) {
        Ok(()) => Verdict::Return(bytes.len() as i64),
        Err(e) => Verdict::Error(e),
    }
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
        // futimens(fd): an fd call, the kernel's.
        return Verdict::Native;
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
        let name = xattr_name(call.tid, a[1])?;
        let value = m.fs.getxattr(p, &name)?;
        xattr_out(call.tid, a[2], a[3], &value)
    })
}

/// setxattr(2) and lsetxattr(2).
pub fn setxattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_setxattr as u64;
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
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
    })
}

/// listxattr(2) and llistxattr(2).
pub fn listxattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_listxattr as u64;
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
        let names = m.fs.listxattr(p)?;
        xattr_out(call.tid, a[1], a[2], &names)
    })
}

/// removexattr(2) and lremovexattr(2).
pub fn removexattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = call.entry.nr == libc::SYS_removexattr as u64;
    on_one(ctx, call, libc::AT_FDCWD, a[0], follow, |m, p| {
        let name = xattr_name(call.tid, a[1])?;
        m.writable()?;
        m.fs.removexattr(p, &name).map(|_| 0)
    })
}

/// name_to_handle_at(2): virtual files have no kernel file handles.
pub fn name_to_handle_at(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let follow = a[4] as i32 & libc::AT_SYMLINK_FOLLOW != 0;
    on_one(ctx, call, arg_fd(a[0]), a[1], follow, |_, _| {
        Err(Errno::EOPNOTSUPP)
    })
}
