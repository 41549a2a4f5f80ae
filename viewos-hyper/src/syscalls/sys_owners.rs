//! The file calls whose answers depend on the view's identities
//! (`--root-id`, `-s`, [`crate::identity`]): the stat family (owners as
//! the view shows them), chown (remembered), mknod of device nodes
//! (placeholders), files a non-root view identity creates (made by the
//! host and remembered as its own), removals of remembered files
//! (forgotten), and opens of `/proc/PID/status` (a copy with the view's
//! ids).
//!
//! These handlers replace the family's usual ones only when the view has
//! identities ([`super::Entry::with_ids`]); without, nothing here runs and
//! none of these calls stops for it. Files of mounts still go to their
//! services.
//!
//! Real files are looked at by the host itself, through the caller's cwd
//! or fd in `/proc/TID/`, with the flags the program gave, and the answer
//! the kernel gave the host is changed in its owner fields only.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use viewos_core::{Errno, FileStat};

use super::caller_file::{last_errno, CallerFile};
use super::sys_identity::{ids, verdict};
use super::sys_path::{arg_fd, target_of, Target};
use super::{Call, Context, Verdict};
use crate::identity::{Identities, Presented};
use crate::memory;
use crate::stat_abi;

/// The process (or thread) whose status file the absolute, normalized
/// `path` names, as the caller sees it: `/proc/self/status`,
/// `/proc/thread-self/status`, `/proc/PID/status`,
/// `/proc/PID/task/TID/status`.
fn status_of(path: &Path, tid: i32) -> Option<i32> {
    let rest = path.to_str()?.strip_prefix("/proc/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let number = |s: &str| s.parse::<i32>().ok().filter(|&n| n > 0);
    let process = |s: &str| match s {
        "self" => Some(crate::resolve::tgid_of(tid)),
        _ => number(s),
    };
    match parts.as_slice() {
        ["thread-self", "status"] => Some(tid),
        [p, "status"] => process(p),
        // A thread of that process only (else the kernel's ENOENT).
        [p, "task", t, "status"] => {
            let (p, t) = (process(p)?, number(t)?);
            (crate::resolve::tgid_of(t) == p).then_some(t)
        }
        _ => None,
    }
}

/// Opening a status file of a process of the view for reading gives a
/// copy with the view's ids; everything else opens as without identities.
fn open_ids(ctx: &Context, call: &Call<'_>, dirfd: i32, addr: u64, flags: i32) -> Option<Verdict> {
    let identities = ctx.identity.as_ref()?;
    if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & (libc::O_PATH | libc::O_CREAT) != 0 {
        return None;
    }
    let raw = memory::read_path(call.tid, addr).ok()?;
    if !raw.ends_with(b"/status") {
        return None;
    }
    let abs = crate::resolve::absolute(&ctx.dirs, call.tid, dirfd, &raw)?;
    let abs = viewos_core::path::normalize(Path::new("/"), abs.as_os_str().as_bytes());
    let who = status_of(&abs, call.tid)?;
    let ids = identities.known(who)?;
    let real = std::fs::read_to_string(format!("/proc/{who}/status")).ok()?;
    let text = crate::identity::status_text(&real, &ids);
    Some(match crate::proc_mounts::memory_file(&text) {
        Ok(fd) => Verdict::InstallFd {
            fd,
            cloexec: flags & libc::O_CLOEXEC != 0,
        },
        Err(e) => Verdict::Error(Errno::from(e)),
    })
}

/// Implements open(2) in a view with identities.
pub fn open(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let (flags, mode) = (a[1] as i32, a[2] as u32);
    open_ids(ctx, call, libc::AT_FDCWD, a[0], flags)
        .or_else(|| create_file(ctx, call, libc::AT_FDCWD, a[0], flags, mode))
        .unwrap_or_else(|| super::sys_open::open(ctx, call))
}

/// Implements openat(2) in a view with identities.
pub fn openat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let (flags, mode) = (a[2] as i32, a[3] as u32);
    open_ids(ctx, call, arg_fd(a[0]), a[1], flags)
        .or_else(|| create_file(ctx, call, arg_fd(a[0]), a[1], flags, mode))
        .unwrap_or_else(|| super::sys_open::openat(ctx, call))
}

/// Implements creat(2) in a view with identities.
pub fn creat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    create_file(ctx, call, libc::AT_FDCWD, a[0], flags, a[1] as u32)
        .unwrap_or_else(|| super::sys_open::creat(ctx, call))
}

// ---- Files a view user creates ----

/// The file-system ids of the caller if the files it creates must be
/// remembered as its own: any view identity but root's (root's files are
/// the real user's, shown as root's anyway).
fn creator(ctx: &Context, tid: i32) -> Option<(u32, u32)> {
    let ids = ctx.identity.as_ref()?.ids_of(tid);
    let (uid, gid) = (ids.uid[3], ids.gid[3]);
    (uid != 0 || gid != 0).then_some((uid, gid))
}

/// The host's handle of a real path argument the caller creates, if the
/// caller's creations must be remembered; `None`: the call runs as
/// without identities.
fn new_name(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
) -> Option<((u32, u32), CallerFile)> {
    let who = creator(ctx, call.tid)?;
    let path = memory::read_path(call.tid, addr).ok()?;
    match target_of(ctx, call, dirfd, (addr, &path), false) {
        Ok(Target::Real) => {}
        _ => return None,
    }
    Some((who, CallerFile::new(call.tid, dirfd, &path, false).ok()?))
}

/// Remembers the file the host just made at `f` as the creator's (its
/// group only where the kernel gave the creator's group, not a set-group-ID
/// directory's).
fn own_new(ctx: &Context, f: &CallerFile, (uid, gid): (u32, u32)) {
    let Some(ids) = &ctx.identity else {
        return;
    };
    if let Ok(st) = f.stat(libc::AT_SYMLINK_NOFOLLOW) {
        // SAFETY: getegid has no preconditions.
        let own_group = st.st_gid == unsafe { libc::getegid() };
        ids.remember(st.st_dev, st.st_ino, |o| {
            o.uid = Some(uid);
            o.gid = own_group.then_some(gid).or(o.gid);
        });
    }
}

/// An open that creates a file for a view user: the host creates it (only
/// if the name is new; an existing file is opened by the kernel as usual),
/// remembers it as the user's and gives the program the open file.
fn create_file(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
    mode: u32,
) -> Option<Verdict> {
    if flags & libc::O_CREAT == 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return None;
    }
    let (who, f) = new_name(ctx, call, dirfd, addr)?;
    let perm = mode & 0o7777 & !super::sys_path::umask_of(call.tid);
    let host_flags = flags | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: a valid fd (or AT_FDCWD) and our NUL-terminated path.
    let fd = unsafe { libc::openat(f.dirfd(), f.path.as_ptr(), host_flags, perm) };
    if fd < 0 {
        let e = last_errno();
        // An existing name: the kernel opens it (or refuses O_EXCL).
        return (e != Errno::EEXIST).then_some(Verdict::Error(e));
    }
    // SAFETY: a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    own_new(ctx, &f, who);
    Some(Verdict::InstallFd {
        fd,
        cloexec: flags & libc::O_CLOEXEC != 0,
    })
}

/// mkdir for a view user: made by the host and remembered as the user's.
fn make_dir(ctx: &Context, call: &Call<'_>, dirfd: i32, addr: u64, mode: u32) -> Option<Verdict> {
    let (who, f) = new_name(ctx, call, dirfd, addr)?;
    let perm = mode & 0o1777 & !super::sys_path::umask_of(call.tid);
    // SAFETY: a valid fd (or AT_FDCWD) and our NUL-terminated path.
    if unsafe { libc::mkdirat(f.dirfd(), f.path.as_ptr(), perm) } < 0 {
        return Some(Verdict::Error(last_errno()));
    }
    own_new(ctx, &f, who);
    Some(Verdict::Return(0))
}

/// Implements mkdir(2) in a view with identities.
pub fn mkdir(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    make_dir(ctx, call, libc::AT_FDCWD, a[0], a[1] as u32)
        .unwrap_or_else(|| super::sys_tree::mkdir(ctx, call))
}

/// Implements mkdirat(2) in a view with identities.
pub fn mkdirat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    make_dir(ctx, call, arg_fd(a[0]), a[1], a[2] as u32)
        .unwrap_or_else(|| super::sys_tree::mkdirat(ctx, call))
}

/// symlink for a view user: made by the host and remembered as the user's.
fn make_symlink(
    ctx: &Context,
    call: &Call<'_>,
    target: u64,
    dirfd: i32,
    addr: u64,
) -> Option<Verdict> {
    let (who, f) = new_name(ctx, call, dirfd, addr)?;
    let target = memory::read_path(call.tid, target).ok()?;
    let target = CString::new(target).ok()?;
    // SAFETY: NUL-terminated strings we own and a valid fd (or AT_FDCWD).
    if unsafe { libc::symlinkat(target.as_ptr(), f.dirfd(), f.path.as_ptr()) } < 0 {
        return Some(Verdict::Error(last_errno()));
    }
    own_new(ctx, &f, who);
    Some(Verdict::Return(0))
}

/// Implements symlink(2) in a view with identities.
pub fn symlink(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    make_symlink(ctx, call, a[0], libc::AT_FDCWD, a[1])
        .unwrap_or_else(|| super::sys_tree::symlink(ctx, call))
}

/// Implements symlinkat(2) in a view with identities.
pub fn symlinkat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    make_symlink(ctx, call, a[0], arg_fd(a[1]), a[2])
        .unwrap_or_else(|| super::sys_tree::symlinkat(ctx, call))
}

/// A real file the view remembers something of, named by (`dirfd`, path
/// at `addr`) without following a last symlink: the host's handle of the
/// name, and the file's status. `None` when the view remembers nothing of
/// it (or it is not a real file): the call runs as without identities.
fn remembered(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
) -> Option<(CallerFile, libc::stat)> {
    let identities = ctx.identity.as_ref()?;
    if identities.no_files() {
        return None;
    }
    let path = memory::read_path(call.tid, addr).ok()?;
    match target_of(ctx, call, dirfd, (addr, &path), false) {
        Ok(Target::Real) => {}
        _ => return None,
    }
    let f = CallerFile::new(call.tid, dirfd, &path, false).ok()?;
    let st = f.stat(libc::AT_SYMLINK_NOFOLLOW).ok()?;
    identities.file(st.st_dev, st.st_ino)?;
    Some((f, st))
}

/// Removes a name of a file the view remembers: the host makes the call
/// (with the program's own credentials, which are the host's) and forgets
/// the file with its last name, so that a new file on the same inode does
/// not inherit what was remembered.
fn remove_name(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
) -> Option<Verdict> {
    let (f, st) = remembered(ctx, call, dirfd, addr)?;
    // SAFETY: a valid fd (or AT_FDCWD) and our NUL-terminated path.
    let r = unsafe { libc::unlinkat(f.dirfd(), f.path.as_ptr(), flags) };
    if r < 0 {
        return Some(Verdict::Error(last_errno()));
    }
    let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if dir || st.st_nlink <= 1 {
        if let Some(ids) = &ctx.identity {
            ids.forget(st.st_dev, st.st_ino);
        }
    }
    Some(Verdict::Return(0))
}

/// Implements unlink(2) in a view with identities.
pub fn unlink(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    remove_name(ctx, call, libc::AT_FDCWD, a[0], 0)
        .unwrap_or_else(|| super::sys_tree::unlink(ctx, call))
}

/// Implements rmdir(2) in a view with identities.
pub fn rmdir(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    remove_name(ctx, call, libc::AT_FDCWD, a[0], libc::AT_REMOVEDIR)
        .unwrap_or_else(|| super::sys_tree::rmdir(ctx, call))
}

/// Implements unlinkat(2) in a view with identities.
pub fn unlinkat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = a[2] as i32;
    if flags & !libc::AT_REMOVEDIR != 0 {
        return super::sys_tree::unlinkat(ctx, call);
    }
    remove_name(ctx, call, arg_fd(a[0]), a[1], flags)
        .unwrap_or_else(|| super::sys_tree::unlinkat(ctx, call))
}

/// A rename over a file the view remembers: made by the host, and the
/// replaced file forgotten with its last name.
fn rename_over(
    ctx: &Context,
    call: &Call<'_>,
    old: (i32, u64),
    new: (i32, u64),
    flags: u32,
) -> Option<Verdict> {
    let (target, st) = remembered(ctx, call, new.0, new.1)?;
    let old_path = memory::read_path(call.tid, old.1).ok()?;
    match target_of(ctx, call, old.0, (old.1, &old_path), false) {
        Ok(Target::Real) => {}
        _ => return None,
    }
    let source = CallerFile::new(call.tid, old.0, &old_path, false).ok()?;
    // SAFETY: valid fds (or AT_FDCWD) and our NUL-terminated paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            source.dirfd(),
            source.path.as_ptr(),
            target.dirfd(),
            target.path.as_ptr(),
            flags,
        )
    };
    if r < 0 {
        return Some(Verdict::Error(last_errno()));
    }
    // The same file under both names replaces nothing.
    let same = source
        .stat(libc::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|s| (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino));
    let exchanged = flags & libc::RENAME_EXCHANGE != 0;
    if !same && !exchanged && (st.st_nlink <= 1 || st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
        if let Some(ids) = &ctx.identity {
            ids.forget(st.st_dev, st.st_ino);
        }
    }
    Some(Verdict::Return(0))
}

/// Implements rename(2) in a view with identities.
pub fn rename(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    rename_over(ctx, call, (libc::AT_FDCWD, a[0]), (libc::AT_FDCWD, a[1]), 0)
        .unwrap_or_else(|| super::sys_tree::rename(ctx, call))
}

/// Implements renameat(2) and renameat2(2) in a view with identities.
pub fn renameat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = if call.entry.nr == libc::SYS_renameat2 as u64 {
        a[4] as u32
    } else {
        0
    };
    rename_over(ctx, call, (arg_fd(a[0]), a[1]), (arg_fd(a[2]), a[3]), flags)
        .unwrap_or_else(|| super::sys_tree::renameat(ctx, call))
}

/// The owner fields of a file's status as the view shows them.
fn present_stat(ids: &Identities, st: &libc::stat) -> Presented {
    ids.present(
        st.st_dev,
        st.st_ino,
        Presented {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
            rdev: st.st_rdev,
        },
    )
}

fn present_file_stat(ids: &Identities, st: &mut FileStat) {
    let p = ids.present(
        st.dev,
        st.ino,
        Presented {
            uid: st.uid,
            gid: st.gid,
            mode: st.mode,
            rdev: st.rdev,
        },
    );
    st.uid = p.uid;
    st.gid = p.gid;
    st.mode = p.mode;
    st.rdev = p.rdev;
}

/// Where a stat call writes its answer.
#[derive(Clone, Copy)]
enum Out {
    /// `struct stat` at this address.
    Stat(u64),
    /// `struct statx` at this address, with the program's mask.
    Statx(u64, u32),
}

/// Writes the status of a file the service gave.
fn write_virtual(ids: &Identities, tid: i32, mut st: FileStat, out: Out) -> Result<i64, Errno> {
    present_file_stat(ids, &mut st);
    match out {
        Out::Stat(addr) => memory::write_all(tid, addr, &stat_abi::stat_bytes(&st)),
        Out::Statx(addr, _) => memory::write_all(tid, addr, &stat_abi::statx_bytes(&st)),
    }
    .map(|_| 0)
}

fn major(dev: u64) -> u32 {
    libc::major(dev)
}
fn minor(dev: u64) -> u32 {
    libc::minor(dev)
}

/// Looks at a real file as the caller would, and writes the answer with
/// the owners the view shows.
fn write_real(
    ids: &Identities,
    tid: i32,
    f: &CallerFile,
    flags: i32,
    out: Out,
) -> Result<i64, Errno> {
    match out {
        Out::Stat(addr) => {
            let st = f.stat(flags)?;
            let p = present_stat(ids, &st);
            let mut shown = st;
            shown.st_uid = p.uid;
            shown.st_gid = p.gid;
            shown.st_mode = p.mode;
            shown.st_rdev = p.rdev;
            // SAFETY: libc::stat is plain integers; viewing it as bytes.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&shown as *const libc::stat).cast::<u8>(),
                    std::mem::size_of::<libc::stat>(),
                )
            };
            memory::write_all(tid, addr, bytes).map(|_| 0)
        }
        Out::Statx(addr, mask) => {
            // SAFETY: an all-integer struct the kernel fills.
            let mut stx: libc::statx = unsafe { std::mem::zeroed() };
            // SAFETY: a valid fd, our NUL-terminated path and our struct.
            let r = unsafe { libc::statx(f.dirfd(), f.path.as_ptr(), flags, mask, &mut stx) };
            if r < 0 {
                return Err(last_errno());
            }
            let dev = libc::makedev(stx.stx_dev_major, stx.stx_dev_minor);
            let p = ids.present(
                dev,
                stx.stx_ino,
                Presented {
                    uid: stx.stx_uid,
                    gid: stx.stx_gid,
                    mode: stx.stx_mode as u32,
                    rdev: libc::makedev(stx.stx_rdev_major, stx.stx_rdev_minor),
                },
            );
            stx.stx_uid = p.uid;
            stx.stx_gid = p.gid;
            stx.stx_mode = p.mode as u16;
            stx.stx_rdev_major = major(p.rdev);
            stx.stx_rdev_minor = minor(p.rdev);
            // SAFETY: libc::statx is plain integers; viewing it as bytes.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&stx as *const libc::statx).cast::<u8>(),
                    std::mem::size_of::<libc::statx>(),
                )
            };
            memory::write_all(tid, addr, bytes).map(|_| 0)
        }
    }
}

/// A path argument, or an empty one where `AT_EMPTY_PATH` allows a null
/// pointer; the verdict for an unreadable path otherwise
/// ([`super::sys_path::unreadable`]).
fn read_path_arg(ctx: &Context, tid: i32, addr: u64, flags: i32) -> Result<Vec<u8>, Verdict> {
    if addr == 0 && flags & libc::AT_EMPTY_PATH != 0 {
        return Ok(Vec::new());
    }
    memory::read_path(tid, addr).map_err(|e| super::sys_path::unreadable(ctx, addr, e))
}

/// What one stat family call names: a served file, a file of a mount, a
/// real file; or the verdict to give at once.
enum Named {
    Service(Result<FileStat, Errno>),
    Real(CallerFile),
}

/// Finds the file a call with (`dirfd`, path at `addr`, `flags`) names.
fn named(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
) -> Result<Named, Verdict> {
    let path = read_path_arg(ctx, call.tid, addr, flags)?;
    if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        if let Some(f) = ctx.served.of_fd(call.tid, dirfd) {
            return Ok(Named::Service(f.stat()));
        }
    } else {
        let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
        match target_of(ctx, call, dirfd, (addr, &path), follow)? {
            Target::Virtual(m, p) => return Ok(Named::Service(m.fs.lstat(&p))),
            Target::Real => {}
        }
    }
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    CallerFile::new(call.tid, dirfd, &path, follow)
        .map(Named::Real)
        .map_err(Verdict::Error)
}

/// The stat family with the view's owners.
fn stat_call(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
    out: Out,
) -> Verdict {
    let identities = match ids(ctx) {
        Ok(i) => i,
        Err(v) => return v,
    };
    match named(ctx, call, dirfd, addr, flags) {
        Ok(Named::Service(st)) => {
            verdict(st.and_then(|st| write_virtual(identities, call.tid, st, out)))
        }
        Ok(Named::Real(f)) => verdict(write_real(identities, call.tid, &f, flags, out)),
        Err(v) => v,
    }
}

/// Implements stat(2) in a view with identities.
pub fn stat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    stat_call(ctx, call, libc::AT_FDCWD, a[0], 0, Out::Stat(a[1]))
}

/// Implements lstat(2) in a view with identities.
pub fn lstat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = libc::AT_SYMLINK_NOFOLLOW;
    stat_call(ctx, call, libc::AT_FDCWD, a[0], flags, Out::Stat(a[1]))
}

/// Implements newfstatat(2) in a view with identities.
pub fn newfstatat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    stat_call(ctx, call, arg_fd(a[0]), a[1], a[3] as i32, Out::Stat(a[2]))
}

/// Implements statx(2) in a view with identities.
pub fn statx(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let out = Out::Statx(a[4], a[3] as u32);
    stat_call(ctx, call, arg_fd(a[0]), a[1], a[2] as i32, out)
}

/// Implements fstat(2) in a view with identities.
pub fn fstat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let identities = match ids(ctx) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let fd = arg_fd(a[0]);
    if let Some(f) = ctx.served.of_fd(call.tid, fd) {
        return verdict(
            f.stat()
                .and_then(|st| write_virtual(identities, call.tid, st, Out::Stat(a[1]))),
        );
    }
    let r = CallerFile::new(call.tid, fd, b"", true).and_then(|f| {
        write_real(
            identities,
            call.tid,
            &f,
            libc::AT_EMPTY_PATH,
            Out::Stat(a[1]),
        )
    });
    verdict(r)
}

/// `CAP_CHOWN`.
const CAP_CHOWN: u32 = 0;
/// `CAP_MKNOD`.
const CAP_MKNOD: u32 = 27;

/// chown of a real file, if the caller's view identity may change it as
/// the kernel would let it: made by the kernel when the host is root,
/// else remembered (for a file of the real user only).
fn chown_real(
    ctx: &Context,
    call: &Call<'_>,
    f: &CallerFile,
    flags: i32,
    uid: u64,
    gid: u64,
) -> Verdict {
    let identities = match ids(ctx) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let r = (|| {
        let st = f.stat(flags)?;
        let shown = present_stat(identities, &st);
        let caller = identities.ids_of(call.tid);
        let (uid, gid) = (uid as u32, gid as u32);
        let new_uid = (uid != u32::MAX).then_some(uid);
        let new_gid = (gid != u32::MAX).then_some(gid);
        if caller.cap_effective & (1 << CAP_CHOWN) == 0 {
            let creds = caller.creds();
            let uid_ok = new_uid.map_or(true, |u| u == shown.uid);
            let gid_ok = new_gid.map_or(true, |g| g == shown.gid || creds.in_group(g));
            if shown.uid != creds.uid || !uid_ok || !gid_ok {
                return Err(Errno::EPERM);
            }
        }
        if identities.host_is_root() {
            // Allowed in the view: the kernel does it for real.
            return Ok(None);
        }
        // The host may not say who owns another user's file.
        // SAFETY: geteuid has no preconditions.
        if st.st_uid != unsafe { libc::geteuid() } {
            return Err(Errno::EPERM);
        }
        identities.remember(st.st_dev, st.st_ino, |o| {
            if new_uid.is_some() {
                o.uid = new_uid;
            }
            if new_gid.is_some() {
                o.gid = new_gid;
            }
        });
        Ok(Some(0))
    })();
    match r {
        Ok(None) => Verdict::Native,
        Ok(Some(v)) => Verdict::Return(v),
        Err(e) => Verdict::Error(e),
    }
}

/// The chown family: a mount's files go to the service, real ones are
/// really changed when the host is root, else remembered.
fn chown_call(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
    ids: (u64, u64),
) -> Verdict {
    let path = match read_path_arg(ctx, call.tid, addr, flags) {
        Ok(p) => p,
        Err(v) => return v,
    };
    if !(path.is_empty() && flags & libc::AT_EMPTY_PATH != 0) {
        let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
        match target_of(ctx, call, dirfd, (addr, &path), follow) {
            Ok(Target::Virtual(m, p)) => return chown_virtual(ctx, call, &m, &p, ids),
            Ok(Target::Real) => {}
            Err(v) => return v,
        }
    } else if let Some(f) = ctx.served.of_fd(call.tid, dirfd) {
        return verdict(super::sys_attr::chown_on(&f.mount, &f.path, ids.0, ids.1));
    }
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    match CallerFile::new(call.tid, dirfd, &path, follow) {
        Ok(f) => chown_real(ctx, call, &f, flags, ids.0, ids.1),
        Err(e) => Verdict::Error(e),
    }
}

/// chown of a file of a mount in a view with identities: the mount's own
/// answer, unless it refuses (`EPERM`: the host may not give the file to
/// another user) a caller the view lets change owners; then, as for real
/// files, the view remembers the new owners of the file the mount keeps
/// (a cow mount copies it into its layer first, by a chown to no one).
fn chown_virtual(
    ctx: &Context,
    call: &Call<'_>,
    m: &viewos_core::mounts::Mount,
    p: &std::path::Path,
    (uid, gid): (u64, u64),
) -> Verdict {
    match super::sys_attr::chown_on(m, p, uid, gid) {
        Err(e) if e == Errno::EPERM => {}
        r => return verdict(r),
    }
    let identities = match ids(ctx) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let caller = identities.ids_of(call.tid);
    if identities.host_is_root() || caller.cap_effective & (1 << CAP_CHOWN) == 0 {
        return Verdict::Error(Errno::EPERM);
    }
    let nobody = u64::from(u32::MAX);
    if let Err(e) = super::sys_attr::chown_on(m, p, nobody, nobody) {
        return Verdict::Error(e);
    }
    let st = match m.fs.lstat(p) {
        Ok(st) => st,
        Err(e) => return Verdict::Error(e),
    };
    // SAFETY: geteuid has no preconditions.
    if st.uid != unsafe { libc::geteuid() } {
        return Verdict::Error(Errno::EPERM);
    }
    let (uid, gid) = (uid as u32, gid as u32);
    identities.remember(st.dev, st.ino, |o| {
        if uid != u32::MAX {
            o.uid = Some(uid);
        }
        if gid != u32::MAX {
            o.gid = Some(gid);
        }
    });
    Verdict::Return(0)
}

/// access(2), faccessat(2) and faccessat2(2) in a view with identities: a
/// file of a mount is the mount's answer (for the caller's credentials);
/// a real file is checked against what the view shows of it (owner,
/// group, mode) with the view's ids, the real ones or, with `AT_EACCESS`,
/// the effective ones, as the kernel does. `W_OK` on a read-only file
/// system is `EROFS`.
fn access_call(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    mode: u64,
    flags: i32,
) -> Verdict {
    let mode = match super::sys_path::check_access_mode(mode) {
        Ok(m) => m,
        Err(e) => return Verdict::Error(e),
    };
    if flags & !(libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Verdict::Error(Errno::EINVAL);
    }
    let identities = match ids(ctx) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let path = match read_path_arg(ctx, call.tid, addr, flags) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    if !(path.is_empty() && flags & libc::AT_EMPTY_PATH != 0) {
        match target_of(ctx, call, dirfd, (addr, &path), follow) {
            Ok(Target::Virtual(m, p)) => return verdict(super::sys_path::access_on(&m, &p, mode)),
            Ok(Target::Real) => {}
            Err(v) => return v,
        }
    } else if ctx.served.of_fd(call.tid, dirfd).is_some() {
        return Verdict::Native;
    }
    let r = (|| {
        let f = CallerFile::new(call.tid, dirfd, &path, follow)?;
        let stat_flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        let st = f.stat(stat_flags | (flags & libc::AT_EMPTY_PATH))?;
        if mode == libc::F_OK {
            return Ok(0);
        }
        let shown = present_stat(identities, &st);
        let caller = identities.ids_of(call.tid);
        let which = if flags & libc::AT_EACCESS != 0 { 3 } else { 0 };
        let creds = viewos_core::creds::Creds {
            uid: caller.uid[which],
            gid: caller.gid[which],
            groups: caller.groups.clone(),
        };
        creds.may(shown.mode, shown.uid, shown.gid, mode as u32)?;
        if mode & libc::W_OK != 0 && read_only_fs(&f) {
            return Err(Errno::EROFS);
        }
        Ok(0)
    })();
    verdict(r)
}

/// True if the file `f` names lies on a read-only file system.
fn read_only_fs(f: &CallerFile) -> bool {
    // SAFETY: a valid fd (or AT_FDCWD) and our NUL-terminated path; the
    // O_PATH fd is ours and closed at once.
    let fd = unsafe { libc::openat(f.dirfd(), f.path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-integer struct the kernel fills.
    let mut fs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a buffer we own.
    unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut fs) == 0 && fs.f_flag & libc::ST_RDONLY != 0 }
}

/// Implements access(2) in a view with identities.
pub fn access(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    access_call(ctx, call, libc::AT_FDCWD, a[0], a[1], 0)
}

/// Implements faccessat(2) and faccessat2(2) in a view with identities.
pub fn faccessat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = if call.entry.nr == libc::SYS_faccessat2 as u64 {
        a[3] as i32
    } else {
        0
    };
    access_call(ctx, call, arg_fd(a[0]), a[1], a[2], flags)
}

/// Implements chown(2) and lchown(2) in a view with identities.
pub fn chown(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = if call.entry.nr == libc::SYS_lchown as u64 {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    chown_call(ctx, call, libc::AT_FDCWD, a[0], flags, (a[1], a[2]))
}

/// Implements fchownat(2) in a view with identities.
pub fn fchownat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = a[4] as i32;
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Verdict::Error(Errno::EINVAL);
    }
    chown_call(ctx, call, arg_fd(a[0]), a[1], flags, (a[2], a[3]))
}

/// Implements fchown(2) in a view with identities.
pub fn fchown(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let fd = arg_fd(a[0]);
    if let Some(f) = ctx.served.of_fd(call.tid, fd) {
        return verdict(super::sys_attr::chown_on(&f.mount, &f.path, a[1], a[2]));
    }
    match CallerFile::new(call.tid, fd, b"", true) {
        Ok(f) => chown_real(ctx, call, &f, libc::AT_EMPTY_PATH, a[1], a[2]),
        Err(e) => Verdict::Error(e),
    }
}

/// mknod of a device node on a real path without privileges: a regular
/// placeholder file, and the view remembers its type and device number.
fn mknod_call(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    mode: u32,
    dev: u64,
) -> Verdict {
    let kind = mode & libc::S_IFMT;
    let device = kind == libc::S_IFCHR || kind == libc::S_IFBLK;
    let plain = |ctx: &Context, call: &Call<'_>| {
        if dirfd == libc::AT_FDCWD && call.entry.nr == libc::SYS_mknod as u64 {
            super::sys_tree::mknod(ctx, call)
        } else {
            super::sys_tree::mknodat(ctx, call)
        }
    };
    let identities = match ids(ctx) {
        Ok(i) => i,
        Err(v) => return v,
    };
    if !device {
        return make_node(ctx, call, dirfd, addr, mode).unwrap_or_else(|| plain(ctx, call));
    }
    let path = match memory::read_path(call.tid, addr) {
        Ok(p) => p,
        Err(e) => return super::sys_path::unreadable(ctx, addr, e),
    };
    match target_of(ctx, call, dirfd, (addr, &path), false) {
        Ok(Target::Virtual(..)) | Err(_) => return plain(ctx, call),
        Ok(Target::Real) => {}
    }
    let caller = identities.ids_of(call.tid);
    if caller.cap_effective & (1 << CAP_MKNOD) == 0 {
        return Verdict::Error(Errno::EPERM);
    }
    if identities.host_is_root() {
        return Verdict::Native;
    }
    let r = (|| {
        let f = CallerFile::new(call.tid, dirfd, &path, false)?;
        let perm = mode & 0o7777 & !super::sys_path::umask_of(call.tid);
        // SAFETY: a valid fd (or AT_FDCWD) and our NUL-terminated path.
        let fd = unsafe {
            libc::openat(
                f.dirfd(),
                f.path.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                perm,
            )
        };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: a new fd we own.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-integer struct the kernel fills.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: our fd and our struct.
        if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } < 0 {
            return Err(last_errno());
        }
        identities.remember(st.st_dev, st.st_ino, |o| {
            o.file_type = Some(kind);
            o.rdev = dev;
        });
        Ok(0)
    })();
    verdict(r)
}

/// mknod of a fifo, socket or regular file for a view user: made by the
/// host and remembered as the user's.
fn make_node(ctx: &Context, call: &Call<'_>, dirfd: i32, addr: u64, mode: u32) -> Option<Verdict> {
    let kind = match mode & libc::S_IFMT {
        0 => libc::S_IFREG,
        k @ (libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK) => k,
        // Anything else: the kernel's EINVAL.
        _ => return None,
    };
    let (who, f) = new_name(ctx, call, dirfd, addr)?;
    let perm = mode & 0o7777 & !super::sys_path::umask_of(call.tid);
    // SAFETY: a valid fd (or AT_FDCWD) and our NUL-terminated path.
    if unsafe { libc::mknodat(f.dirfd(), f.path.as_ptr(), kind | perm, 0) } < 0 {
        return Some(Verdict::Error(last_errno()));
    }
    own_new(ctx, &f, who);
    Some(Verdict::Return(0))
}

/// Implements mknod(2) in a view with identities.
pub fn mknod(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    mknod_call(ctx, call, libc::AT_FDCWD, a[0], a[1] as u32, a[2])
}

/// Implements mknodat(2) in a view with identities.
pub fn mknodat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    mknod_call(ctx, call, arg_fd(a[0]), a[1], a[2] as u32, a[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names() {
        let me = std::process::id() as i32;
        assert_eq!(status_of(Path::new("/proc/self/status"), me), Some(me));
        assert_eq!(status_of(Path::new("/proc/42/status"), me), Some(42));
        assert_eq!(
            status_of(Path::new(&format!("/proc/self/task/{me}/status")), me),
            Some(me)
        );
        assert_eq!(status_of(Path::new("/proc/self/task/1/status"), me), None);
        assert_eq!(status_of(Path::new("/proc/self/stat"), me), None);
        assert_eq!(status_of(Path::new("/etc/status"), me), None);
    }
}
