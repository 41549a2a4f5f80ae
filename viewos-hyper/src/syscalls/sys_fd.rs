//! Calls on served files' fds: read, write and their positioned and
//! vectored forms, lseek, getdents, fstat, ftruncate, fsync, fcntl, ioctl,
//! and the rest of the fd family.
//!
//! These calls stop (at the tracer) only in processes that hold a
//! placeholder ([`crate::served`]). Each handler first asks whether its fd
//! is one; a real fd runs natively. For a placeholder the host answers from
//! the service's [`FileHandle`](viewos_core::FileHandle) and the open-file
//! state it keeps (offset, flags), with the kernel's errors for calls the
//! file cannot take.

use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use viewos_core::handle::{READABLE, WRITABLE};
use viewos_core::mounts::Mount;
use viewos_core::{DirEntry, Errno, IoctlArg};

use super::sys_attr;
use super::sys_path::arg_fd;
use super::{Call, Context, Verdict};
use crate::memory;
use crate::served::ServedFile;
use crate::stat_abi;
use crate::tracee_calls::{Arg, Plan, Step};

/// The most one call moves between a program and a service; longer reads
/// and writes are short, which the kernel allows.
pub(super) const MAX_TRANSFER: usize = 8 << 20;
/// The kernel's limit on iovecs per call.
const IOV_MAX: u64 = 1024;

/// Runs `op` on the served file that argument `arg` names; native if the
/// fd is not a placeholder.
fn on_served(
    ctx: &Context,
    call: &Call<'_>,
    arg: usize,
    op: impl FnOnce(&Arc<ServedFile>) -> Result<i64, Errno>,
) -> Verdict {
    match ctx.served.of_fd(call.tid, arg_fd(call.entry.args[arg])) {
        None => Verdict::Native,
        Some(f) => match op(&f) {
            Ok(v) => Verdict::Return(v),
            Err(e) => Verdict::Error(e),
        },
    }
}

/// Runs `op` on the file that the fd argument `arg` names when it is
/// virtual: a served file, or a real fd whose file lies, by its real path,
/// inside a mount of the view (a cow mount hands out its unchanged files
/// as real fds of TARGET's: a metadata change through one must copy the
/// file up, not change TARGET). Native otherwise.
pub(super) fn on_fd_file(
    ctx: &Context,
    call: &Call<'_>,
    arg: usize,
    op: impl FnOnce(&Mount, &Path) -> Result<i64, Errno>,
) -> Verdict {
    let fd = arg_fd(call.entry.args[arg]);
    if let Some(f) = ctx.served.of_fd(call.tid, fd) {
        return match op(&f.mount, &f.path) {
            Ok(v) => Verdict::Return(v),
            Err(e) => Verdict::Error(e),
        };
    }
    if fd < 0 || ctx.view.read().mounts().is_empty() {
        return Verdict::Native;
    }
    let Ok(real) = std::fs::read_link(format!("/proc/{}/fd/{fd}", call.tid)) else {
        return Verdict::Native;
    };
    let bytes = real.as_os_str().as_bytes();
    if bytes.first() != Some(&b'/') || bytes.ends_with(b" (deleted)") {
        return Verdict::Native;
    }
    match super::sys_path::resolve_absolute(ctx, call.tid, bytes, false) {
        Ok(crate::resolve::Resolved::Virtual { mount, path }) => match op(&mount, &path) {
            Ok(v) => Verdict::Return(v),
            Err(e) => Verdict::Error(e),
        },
        _ => Verdict::Native,
    }
}

/// Runs `op` on the served file that argument `arg` names, as a call that
/// may block: while the file answers `EAGAIN` and the fd is in blocking
/// mode (and `dontwait` is false), the thread sleeps until the file is
/// ready for `events` and makes the call again ([`Plan::wait`]). Native if
/// the fd is not a placeholder.
pub(super) fn on_served_waiting(
    ctx: &Context,
    call: &Call<'_>,
    arg: usize,
    events: u32,
    dontwait: bool,
    mut op: impl FnMut(&Arc<ServedFile>) -> Result<i64, Errno>,
) -> Verdict {
    let Some(f) = ctx.served.of_fd(call.tid, arg_fd(call.entry.args[arg])) else {
        return Verdict::Native;
    };
    // A handle that says "ready" and then "again" is asked a few times,
    // then waited on until it notifies.
    for _ in 0..3 {
        let r = op(&f);
        f.refresh();
        match r {
            Err(e) if e == Errno::new(libc::EAGAIN) && f.blocking() && !dontwait => {
                if ctx.served.wait(call.tid, &f, events) {
                    return Verdict::Calls(Plan::wait());
                }
            }
            Ok(v) => return Verdict::Return(v),
            Err(e) => return Verdict::Error(e),
        }
    }
    ctx.served.wait(call.tid, &f, 0);
    Verdict::Calls(Plan::wait())
}

/// A write that failed with `EPIPE` (a broken pipe or socket): the kernel
/// also sends the writing thread `SIGPIPE`.
pub(super) fn broken_pipe(tid: i32, v: Verdict) -> Verdict {
    if let Verdict::Error(e) = &v {
        if *e == Errno::new(libc::EPIPE) {
            // SAFETY: tgkill with plain integer arguments.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    crate::resolve::tgid_of(tid),
                    tid,
                    libc::SIGPIPE,
                )
            };
        }
    }
    v
}

/// Where a transfer happens: at the description's offset (which moves), or
/// at a given position.
#[derive(Clone, Copy)]
enum At {
    Cursor,
    Pos(u64),
}

fn position(pos: u64) -> Result<At, Errno> {
    if (pos as i64) < 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(At::Pos(pos))
    }
}

/// Reads into the program's `iov` (address, length) ranges, in order.
fn do_read(f: &ServedFile, tid: i32, iov: &[(u64, u64)], at: At) -> Result<i64, Errno> {
    f.readable()?;
    if f.is_dir {
        return Err(Errno::EISDIR);
    }
    let total = gathered_len(iov);
    let seekable = f.handle.seekable();
    let n = match at {
        At::Pos(p) => {
            if !seekable {
                return Err(Errno::new(libc::ESPIPE));
            }
            read_at(f, tid, iov, p, total)?
        }
        At::Cursor if seekable => {
            // The offset moves only once the data reached the program.
            let mut off = f.offset.lock();
            let n = read_at(f, tid, iov, *off, total)?;
            *off += n as u64;
            n
        }
        At::Cursor => read_at(f, tid, iov, 0, total)?,
    };
    Ok(n as i64)
}

/// Reads `total` bytes at `pos` into the program's `iov` ranges, through
/// the thread's scratch buffer.
fn read_at(
    f: &ServedFile,
    tid: i32,
    iov: &[(u64, u64)],
    pos: u64,
    total: usize,
) -> Result<usize, Errno> {
    memory::with_scratch(total, |buf| {
        let n = f.handle.read(pos, buf)?.min(total);
        scatter(tid, iov, &buf[..n])?;
        Ok(n)
    })
}

/// Writes the program's `iov` ranges, in order.
fn do_write(f: &ServedFile, tid: i32, iov: &[(u64, u64)], at: At) -> Result<i64, Errno> {
    f.writable()?;
    let total = gathered_len(iov);
    let seekable = f.handle.seekable();
    let append = *f.flags.lock() & libc::O_APPEND != 0;
    let n = match at {
        At::Pos(p) => {
            if !seekable {
                return Err(Errno::new(libc::ESPIPE));
            }
            // pwrite on an O_APPEND file appends, as Linux does.
            let p = if append { f.stat()?.size } else { p };
            write_at(f, tid, iov, p, total)?
        }
        At::Cursor if seekable => {
            let mut off = f.offset.lock();
            if append {
                *off = f.stat()?.size;
            }
            let n = write_at(f, tid, iov, *off, total)?;
            *off += n as u64;
            n
        }
        At::Cursor => write_at(f, tid, iov, 0, total)?,
    };
    f.changed();
    Ok(n as i64)
}

/// Writes the program's `iov` ranges (`total` bytes) at `pos`, through
/// the thread's scratch buffer.
fn write_at(
    f: &ServedFile,
    tid: i32,
    iov: &[(u64, u64)],
    pos: u64,
    total: usize,
) -> Result<usize, Errno> {
    memory::with_scratch(total, |data| {
        gather_into(tid, iov, data)?;
        Ok(f.handle.write(pos, data)?.min(total))
    })
}

pub(super) fn scatter(tid: i32, iov: &[(u64, u64)], mut data: &[u8]) -> Result<(), Errno> {
    for &(addr, len) in iov {
        if data.is_empty() {
            break;
        }
        let k = (len as usize).min(data.len());
        memory::write_all(tid, addr, &data[..k])?;
        data = &data[k..];
    }
    Ok(())
}

pub(super) fn gather(tid: i32, iov: &[(u64, u64)]) -> Result<Vec<u8>, Errno> {
    let mut data = vec![0u8; gathered_len(iov)];
    gather_into(tid, iov, &mut data)?;
    Ok(data)
}

/// How many bytes of `iov` a call moves (at most [`MAX_TRANSFER`]).
fn gathered_len(iov: &[(u64, u64)]) -> usize {
    iov.iter()
        .fold(0usize, |n, r| n.saturating_add(r.1 as usize))
        .min(MAX_TRANSFER)
}

/// Reads the program's `iov` ranges, in order, into `data` (of
/// [`gathered_len`] bytes).
fn gather_into(tid: i32, iov: &[(u64, u64)], data: &mut [u8]) -> Result<(), Errno> {
    let mut at = 0;
    for &(addr, len) in iov {
        let k = (len as usize).min(data.len() - at);
        if k == 0 {
            continue;
        }
        memory::read_exact(tid, addr, &mut data[at..at + k])?;
        at += k;
        if at == data.len() {
            break;
        }
    }
    Ok(())
}

/// The program's iovec array: `cnt` entries at `addr`.
pub(super) fn read_iov(tid: i32, addr: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; cnt as usize * 16];
    memory::read_exact(tid, addr, &mut raw)?;
    let mut out = Vec::with_capacity(cnt as usize);
    let mut total: u64 = 0;
    for c in raw.chunks_exact(16) {
        let base = u64::from_ne_bytes(c[..8].try_into().unwrap_or_default());
        let len = u64::from_ne_bytes(c[8..].try_into().unwrap_or_default());
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        if total > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        out.push((base, len));
    }
    Ok(out)
}

/// A read or write of one buffer (`buf`, `count` bytes) on a served file
/// whose bytes lie in a real file ([`viewos_core::handle::Extent`]): the
/// thread makes the transfer itself with pread64/pwrite64 on its copy of
/// the real file ([`crate::direct`]; it is given one first if it has
/// none), so the kernel copies the bytes once, as for a real file. `None`
/// when the call goes to the handle instead: a directory, a wrong access
/// mode (the handle path gives the error), an append, a transfer at or
/// past the range's end, a process that cannot hold copies.
///
/// A transfer at the offset moves it at once by what the range allows,
/// and back by what the call did not move when it ends.
fn direct(
    ctx: &Context,
    f: &Arc<ServedFile>,
    call: &Call<'_>,
    write: bool,
    buf: u64,
    count: u64,
    at: At,
) -> Option<Verdict> {
    use crate::direct::Holding;
    if f.is_dir || !f.handle.seekable() {
        return None;
    }
    let access = if write { f.writable() } else { f.readable() };
    if access.is_err() || (write && *f.flags.lock() & libc::O_APPEND != 0) {
        return None;
    }
    let ext = f.handle.extent()?;
    if write && !ext.writable {
        return None;
    }
    let key = crate::direct::file_key(ext.file)?;
    let tid = call.tid;
    let holding = ctx.served.direct.holding(tid, key, write);
    let v = Arg::Val;
    let mut steps = Vec::new();
    let mut hold = None;
    let (fd_arg, install) = match holding {
        Holding::Refused => return None,
        Holding::Ready(fd) => (v(fd as u64), None),
        Holding::Install { replace } => {
            let high = crate::direct::high_fd(tid)?;
            let file = ext.file.try_clone_to_owned().ok()?;
            let mode = if ext.writable {
                libc::O_RDWR
            } else {
                libc::O_RDONLY
            };
            let open = open_host_fd(call, &file, mode).ok()?;
            if let Some(old) = replace {
                steps.push(Step {
                    nr: libc::SYS_close as u64,
                    args: [v(old as u64), v(0), v(0), v(0), v(0), v(0)],
                });
            }
            let opened = steps.len();
            steps.push(open);
            steps.push(Step {
                nr: libc::SYS_fcntl as u64,
                args: [
                    Arg::ResultOf(opened),
                    v(libc::F_DUPFD_CLOEXEC as u64),
                    v(high),
                    v(0),
                    v(0),
                    v(0),
                ],
            });
            steps.push(Step {
                nr: libc::SYS_close as u64,
                args: [Arg::ResultOf(opened), v(0), v(0), v(0), v(0), v(0)],
            });
            hold = Some(file);
            (Arg::ResultOf(opened + 1), Some((opened + 1, ext.writable)))
        }
    };
    let mut off = f.offset.lock();
    let pos = match at {
        At::Pos(p) => p,
        At::Cursor => *off,
    };
    let n = count
        .min(MAX_TRANSFER as u64)
        .min(ext.len.saturating_sub(pos));
    let real_pos = ext.start.checked_add(pos)?;
    if n == 0 || real_pos > i64::MAX as u64 {
        return None;
    }
    let moves = matches!(at, At::Cursor);
    if moves {
        *off = pos + n;
    }
    drop(off);
    if write {
        f.changed();
    }
    let file = f.clone();
    let direct = ctx.served.direct.clone();
    let done = move |answer: i64, results: &[i64]| {
        if moves && answer < n as i64 {
            let short = n - answer.max(0) as u64;
            let mut off = file.offset.lock();
            *off = off.saturating_sub(short);
        }
        if let Some((step, writable)) = install {
            match results.get(step) {
                Some(&fd) if fd >= 0 => {
                    direct.installed(tid, key, fd as i32, writable);
                }
                _ => direct.refuse(tid),
            }
        }
    };
    let (nr, answer) = if write {
        (libc::SYS_pwrite64, steps.len())
    } else {
        (libc::SYS_pread64, steps.len())
    };
    steps.push(Step {
        nr: nr as u64,
        args: [fd_arg, v(buf), v(n), v(real_pos), v(0), v(0)],
    });
    Some(Verdict::Calls(Plan {
        steps,
        answer,
        hold,
        restart: false,
        done: Some(crate::tracee_calls::Done(Box::new(done))),
    }))
}

/// An fd call (its fd in argument 0) the tracer answers on its own
/// thread: `Native` if the fd is no served file; read, write, pread64
/// and pwrite64 of a served file whose bytes lie in a real file, by
/// [`direct`] (which never waits); `None` for every other call.
pub(super) fn at_tracer(ctx: &Context, call: &Call<'_>) -> Option<Verdict> {
    let a = call.entry.args;
    let Some(f) = ctx.served.of_fd(call.tid, arg_fd(a[0])) else {
        return Some(Verdict::Native);
    };
    let (write, at) = match call.entry.nr as i64 {
        libc::SYS_read => (false, At::Cursor),
        libc::SYS_write => (true, At::Cursor),
        libc::SYS_pread64 => (false, position(a[3]).ok()?),
        libc::SYS_pwrite64 => (true, position(a[3]).ok()?),
        _ => return None,
    };
    direct(ctx, &f, call, write, a[1], a[2], at)
}

/// Implements read(2).
pub fn read(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served_waiting(ctx, call, 0, READABLE, false, |f| {
        do_read(f, call.tid, &[(a[1], a[2])], At::Cursor)
    })
}

/// Implements write(2).
pub fn write(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let v = on_served_waiting(ctx, call, 0, WRITABLE, false, |f| {
        do_write(f, call.tid, &[(a[1], a[2])], At::Cursor)
    });
    broken_pipe(call.tid, v)
}

/// Implements pread64(2).
pub fn pread64(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served(ctx, call, 0, |f| {
        do_read(f, call.tid, &[(a[1], a[2])], position(a[3])?)
    })
}

/// Implements pwrite64(2).
pub fn pwrite64(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served(ctx, call, 0, |f| {
        do_write(f, call.tid, &[(a[1], a[2])], position(a[3])?)
    })
}

/// Where a vectored call happens: readv/writev at the offset, preadv and
/// pwritev at arg 3, preadv2/pwritev2 at arg 3 unless it is -1.
fn vectored_at(call: &Call<'_>) -> Result<At, Errno> {
    let a = call.entry.args;
    let nr = call.entry.nr as i64;
    if nr == libc::SYS_readv || nr == libc::SYS_writev {
        return Ok(At::Cursor);
    }
    if (nr == libc::SYS_preadv2 || nr == libc::SYS_pwritev2) && a[3] as i64 == -1 {
        return Ok(At::Cursor);
    }
    position(a[3])
}

/// Implements readv(2), preadv(2), preadv2(2).
pub fn readv(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served_waiting(ctx, call, 0, READABLE, false, |f| {
        let iov = read_iov(call.tid, a[1], a[2])?;
        do_read(f, call.tid, &iov, vectored_at(call)?)
    })
}

/// Implements writev(2), pwritev(2), pwritev2(2).
pub fn writev(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let v = on_served_waiting(ctx, call, 0, WRITABLE, false, |f| {
        let iov = read_iov(call.tid, a[1], a[2])?;
        do_write(f, call.tid, &iov, vectored_at(call)?)
    });
    broken_pipe(call.tid, v)
}

/// Implements lseek(2). On a directory the offset is the listing cookie.
pub fn lseek(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served(ctx, call, 0, |f| {
        if !f.handle.seekable() {
            return Err(Errno::new(libc::ESPIPE));
        }
        let off = a[1] as i64;
        let mut cur = f.offset.lock();
        let size = || f.stat().map(|s| s.size as i64);
        let new = match a[2] as i32 {
            libc::SEEK_SET => off,
            libc::SEEK_CUR => (*cur as i64).checked_add(off).ok_or(Errno::EINVAL)?,
            libc::SEEK_END if !f.is_dir => size()?.checked_add(off).ok_or(Errno::EINVAL)?,
            // The whole file is data: the only hole is at its end.
            libc::SEEK_DATA if !f.is_dir => {
                if off < 0 || off >= size()? {
                    return Err(Errno::new(libc::ENXIO));
                }
                off
            }
            libc::SEEK_HOLE if !f.is_dir => {
                let s = size()?;
                if off < 0 || off >= s {
                    return Err(Errno::new(libc::ENXIO));
                }
                s
            }
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *cur = new as u64;
        Ok(new)
    })
}

/// One `struct linux_dirent64` (or, `old`, `struct linux_dirent`) for `e`.
fn encode_dirent(e: &DirEntry<'_>, old: bool) -> Vec<u8> {
    let head = if old { 18 } else { 19 };
    let tail = if old { 2 } else { 1 }; // NUL (and d_type last for the old one)
    let len = (head + e.name.len() + tail + 7) & !7;
    let mut b = vec![0u8; len];
    b[0..8].copy_from_slice(&e.ino.to_ne_bytes());
    b[8..16].copy_from_slice(&e.next.to_ne_bytes());
    b[16..18].copy_from_slice(&(len as u16).to_ne_bytes());
    if old {
        b[18..18 + e.name.len()].copy_from_slice(e.name);
        b[len - 1] = e.kind;
    } else {
        b[18] = e.kind;
        b[19..19 + e.name.len()].copy_from_slice(e.name);
    }
    b
}

/// getdents64(2) and getdents(2): as many entries from the cookie on as fit
/// in the program's buffer.
fn list(ctx: &Context, call: &Call<'_>, old: bool) -> Verdict {
    let a = call.entry.args;
    on_served(ctx, call, 0, |f| {
        if f.is_path_only() {
            return Err(Errno::EBADF);
        }
        if !f.is_dir {
            return Err(Errno::ENOTDIR);
        }
        let room = (a[2] as usize).min(1 << 20);
        let mut cookie = f.offset.lock();
        let mut out: Vec<u8> = Vec::new();
        let mut next = *cookie;
        let mut refused = false;
        f.handle.read_dir(*cookie, &mut |e| {
            let rec = encode_dirent(&e, old);
            if out.len() + rec.len() > room {
                refused = true;
                return false;
            }
            out.extend_from_slice(&rec);
            next = e.next;
            true
        })?;
        if out.is_empty() && refused {
            // Not even one entry fits.
            return Err(Errno::EINVAL);
        }
        memory::write_all(call.tid, a[1], &out)?;
        *cookie = next;
        Ok(out.len() as i64)
    })
}

/// Implements getdents64(2).
pub fn getdents64(ctx: &Context, call: &Call<'_>) -> Verdict {
    list(ctx, call, false)
}

/// Implements getdents(2).
pub fn getdents(ctx: &Context, call: &Call<'_>) -> Verdict {
    list(ctx, call, true)
}

/// Implements fstat(2).
pub fn fstat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served(ctx, call, 0, |f| {
        let st = f.stat()?;
        memory::write_all(call.tid, a[1], &stat_abi::stat_bytes(&st)).map(|_| 0)
    })
}

/// Implements fstatfs(2).
pub fn fstatfs(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served(ctx, call, 0, |f| {
        let st = f.mount.fs.statfs(&f.path)?;
        memory::write_all(call.tid, a[1], &stat_abi::statfs_bytes(&st)).map(|_| 0)
    })
}

/// Implements ftruncate(2).
pub fn ftruncate(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served(ctx, call, 0, |f| {
        if (a[1] as i64) < 0 || f.is_dir || f.writable().is_err() {
            return Err(Errno::EINVAL);
        }
        f.mount.writable()?;
        f.handle.truncate(a[1])?;
        f.changed();
        Ok(0)
    })
}

/// Implements fsync(2) and fdatasync(2).
pub fn fsync(ctx: &Context, call: &Call<'_>) -> Verdict {
    let data_only = call.entry.nr == libc::SYS_fdatasync as u64;
    on_served(ctx, call, 0, |f| {
        if f.is_path_only() {
            return Err(Errno::EBADF);
        }
        f.handle.sync(data_only).map(|_| 0)
    })
}

/// fadvise64, readahead, sync_file_range, flock: accepted as the kernel
/// accepts them on a regular file (they change nothing a program can see
/// in one view); fadvise's `POSIX_FADV_DONTNEED` lets the handle drop
/// what it caches ([`viewos_core::FileHandle::drop_cached`]).
pub fn accepted(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let nr = call.entry.nr as i64;
    on_served(ctx, call, 0, |f| {
        if f.is_path_only() {
            return Err(Errno::EBADF);
        }
        if nr == libc::SYS_flock {
            let op = a[1] as i32 & !libc::LOCK_NB;
            if ![libc::LOCK_SH, libc::LOCK_EX, libc::LOCK_UN].contains(&op) {
                return Err(Errno::EINVAL);
            }
        }
        if nr == libc::SYS_readahead && f.is_dir {
            return Err(Errno::EINVAL);
        }
        if nr == libc::SYS_fadvise64 && a[3] as i32 == libc::POSIX_FADV_DONTNEED {
            f.handle.drop_cached(a[1], a[2]);
        }
        Ok(0)
    })
}

/// fallocate(2): mode 0 (allocate, growing the file if the range ends
/// past it) is a truncate for a served file; other modes are not supported.
pub fn fallocate(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_served(ctx, call, 0, |f| {
        let (mode, off, len) = (a[1] as i32, a[2] as i64, a[3] as i64);
        if off < 0 || len <= 0 {
            return Err(Errno::EINVAL);
        }
        f.writable()?;
        if f.is_dir {
            return Err(Errno::new(libc::EISDIR));
        }
        if mode != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        f.mount.writable()?;
        let end = off.checked_add(len).ok_or(Errno::new(libc::EFBIG))? as u64;
        if end > f.stat()?.size {
            f.handle.truncate(end)?;
            f.changed();
        }
        Ok(0)
    })
}

/// The status flags F_SETFL can change.
const SETFL_MASK: i32 =
    libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME;

/// The kernel's `O_LARGEFILE`, which it always shows on 64-bit (libc's
/// constant is 0 there).
const O_LARGEFILE: i32 = 0o100000;
const F_SETSIG: i32 = 10;
const F_GETSIG: i32 = 11;
const F_SETOWN_EX: i32 = 15;
const F_GETOWN_EX: i32 = 16;

/// Implements fcntl(2). Descriptor flags and duplication are the kernel's
/// (they belong to the fd, which is real); status flags and locks are
/// answered here.
pub fn fcntl(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let cmd = a[1] as i32;
    if matches!(
        cmd,
        libc::F_DUPFD
            | libc::F_DUPFD_CLOEXEC
            | libc::F_GETFD
            | libc::F_SETFD
            | libc::F_GETOWN
            | libc::F_SETOWN
            | F_GETOWN_EX
            | F_SETOWN_EX
            | F_GETSIG
            | F_SETSIG
    ) {
        return Verdict::Native;
    }
    on_served(ctx, call, 0, |f| match cmd {
        libc::F_GETFL => Ok((*f.flags.lock() | O_LARGEFILE) as i64),
        libc::F_SETFL => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            let mut flags = f.flags.lock();
            *flags = (*flags & !SETFL_MASK) | (a[2] as i32 & SETFL_MASK);
            Ok(0)
        }
        libc::F_SETLK | libc::F_SETLKW | libc::F_OFD_SETLK | libc::F_OFD_SETLKW => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            // One view's processes share the file; no other holder exists.
            Ok(0)
        }
        libc::F_GETLK | libc::F_OFD_GETLK => {
            // struct flock starts with l_type: no conflicting lock.
            let unlocked = (libc::F_UNLCK as i16).to_ne_bytes();
            memory::write_all(call.tid, a[2], &unlocked).map(|_| 0)
        }
        _ => Err(Errno::EINVAL),
    })
}

const FIONREAD: u32 = 0x541b;
const TIOCOUTQ: u32 = 0x5411;
const SIOCATMARK: u32 = 0x8905;
const FIONBIO: u32 = 0x5421;
const FIOASYNC: u32 = 0x5452;
const FIOCLEX: u32 = 0x5451;
const FIONCLEX: u32 = 0x5450;

/// Implements ioctl(2): the generic file requests here, the others to the
/// handle with their argument copied in and out by the size the request
/// number encodes, or the handle says ([`viewos_core::IoctlArg`]).
pub fn ioctl(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let req = a[1] as u32;
    if req == FIOCLEX || req == FIONCLEX {
        // Close-on-exec belongs to the fd: the kernel's.
        return Verdict::Native;
    }
    on_served(ctx, call, 0, |f| {
        if f.is_path_only() {
            return Err(Errno::EBADF);
        }
        match req {
            FIONBIO | FIOASYNC => {
                let mut v = [0u8; 4];
                memory::read_exact(call.tid, a[2], &mut v)?;
                let bit = if req == FIONBIO {
                    libc::O_NONBLOCK
                } else {
                    libc::O_ASYNC
                };
                let mut flags = f.flags.lock();
                if i32::from_ne_bytes(v) != 0 {
                    *flags |= bit;
                } else {
                    *flags &= !bit;
                }
                return Ok(0);
            }
            FIONREAD if !f.is_dir && f.handle.seekable() => {
                let size = f.stat()?.size;
                let left = size.saturating_sub(*f.offset.lock()).min(i32::MAX as u64) as i32;
                return memory::write_all(call.tid, a[2], &left.to_ne_bytes()).map(|_| 0);
            }
            _ => {}
        }
        let layout = f.handle.ioctl_arg(req).unwrap_or(match req {
            // Old-style requests with an int result: copied out as the
            // sized ones are.
            FIONREAD | TIOCOUTQ | SIOCATMARK => IoctlArg::Out(4),
            _ => IoctlArg::of_request(req),
        });
        let mut data = vec![0u8; layout.size()];
        if layout.copies_in() {
            memory::read_exact(call.tid, a[2], &mut data)?;
        }
        let memory = memory::Tracee(call.tid);
        let v = f.handle.ioctl_with_memory(req, a[2], &mut data, &memory)?;
        if layout.copies_out() {
            memory::write_all(call.tid, a[2], &data)?;
        }
        Ok(v)
    })
}

/// A step that opens the host's fd `fd` in the stopped thread, through
/// `/proc/HOST/fd/N` (its path put below the thread's stack), with
/// `mode` and close-on-exec.
fn open_host_fd(call: &Call<'_>, fd: &impl AsRawFd, mode: i32) -> Result<Step, Errno> {
    let path = crate::host_threads::host_fd_path(fd);
    let at = memory::put_on_stack(call.tid, call.entry.stack_pointer, path.as_bytes())?;
    let v = Arg::Val;
    Ok(Step {
        nr: libc::SYS_openat as u64,
        args: [
            v(libc::AT_FDCWD as i64 as u64),
            v(at),
            v((mode | libc::O_CLOEXEC) as u64),
            v(0),
            v(0),
            v(0),
        ],
    })
}

/// Implements mmap(2) of a served file: the program maps a memory copy
/// of it. The tracer has the thread open the copy through
/// `/proc/HOST/fd/N`, map it with the program's arguments, and close it
/// ([`crate::tracee_calls`]). A shared writable mapping's pages go back to
/// the service at munmap, msync and the file's release.
pub fn mmap(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if a[3] as i32 & libc::MAP_ANONYMOUS != 0 {
        return Verdict::Native;
    }
    let Some(f) = ctx.served.of_fd(call.tid, arg_fd(a[4])) else {
        return Verdict::Native;
    };
    let plan = (|| {
        if f.is_path_only() {
            return Err(Errno::EBADF);
        }
        if f.is_dir {
            return Err(Errno::new(libc::ENODEV));
        }
        f.readable().map_err(|_| Errno::EACCES)?;
        let shared = a[3] as i32 & 0x3 != libc::MAP_PRIVATE;
        let writes = shared && a[2] as i32 & libc::PROT_WRITE != 0;
        if writes {
            f.writable().map_err(|_| Errno::EACCES)?;
        }
        let copy = f.map_copy(writes)?;
        let mode = if writes { libc::O_RDWR } else { libc::O_RDONLY };
        let v = Arg::Val;
        Ok(Plan {
            restart: false,
            done: None,
            steps: vec![
                open_host_fd(call, &copy, mode)?,
                Step {
                    nr: libc::SYS_mmap as u64,
                    args: [
                        v(a[0]),
                        v(a[1]),
                        v(a[2]),
                        v(a[3]),
                        Arg::ResultOf(0),
                        v(a[5]),
                    ],
                },
                Step {
                    nr: libc::SYS_close as u64,
                    args: [Arg::ResultOf(0), v(0), v(0), v(0), v(0), v(0)],
                },
            ],
            answer: 1,
            hold: Some(copy.try_clone()?),
        })
    })();
    match plan {
        Ok(p) => Verdict::Calls(p),
        Err(e) => Verdict::Error(e),
    }
}

/// munmap(2) and msync(2) in a process holding served files: shared
/// writable mappings of them are written back first; the call itself is
/// the kernel's.
pub fn sync_mappings(ctx: &Context, _call: &Call<'_>) -> Verdict {
    ctx.served.write_back_all();
    Verdict::Native
}

/// Implements fchmod(2).
pub fn fchmod(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_fd_file(ctx, call, 0, |m, p| sys_attr::chmod_on(m, p, a[1]))
}

/// Implements fchown(2).
pub fn fchown(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_fd_file(ctx, call, 0, |m, p| sys_attr::chown_on(m, p, a[1], a[2]))
}

/// Implements fgetxattr(2).
pub fn fgetxattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    on_served(ctx, call, 0, |f| {
        sys_attr::getxattr_on(call, &f.mount, &f.path)
    })
}

/// Implements fsetxattr(2).
pub fn fsetxattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    on_fd_file(ctx, call, 0, |m, p| sys_attr::setxattr_on(call, m, p))
}

/// Implements flistxattr(2).
pub fn flistxattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    on_served(ctx, call, 0, |f| {
        sys_attr::listxattr_on(call, &f.mount, &f.path)
    })
}

/// Implements fremovexattr(2).
pub fn fremovexattr(ctx: &Context, call: &Call<'_>) -> Verdict {
    on_fd_file(ctx, call, 0, |m, p| sys_attr::removexattr_on(call, m, p))
}

/// Implements fchdir(2) into a served directory: the cwd becomes the
/// placeholder directory standing for it, as for chdir.
pub fn fchdir(ctx: &Context, call: &Call<'_>) -> Verdict {
    let Some(f) = ctx.served.of_fd(call.tid, arg_fd(call.entry.args[0])) else {
        return Verdict::Native;
    };
    if !f.is_dir {
        return Verdict::Error(Errno::ENOTDIR);
    }
    match super::sys_cwd::enter(ctx, &f.mount, &f.path) {
        Ok(path) => Verdict::RewriteCall {
            nr: libc::SYS_chdir as u64,
            arg: 0,
            path,
        },
        Err(e) => Verdict::Error(e),
    }
}

/// sendfile, splice, tee, vmsplice with a served fd on either side:
/// `EINVAL`, the kernel's answer for files it cannot splice (programs then
/// copy with read and write).
pub fn splice_family(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let nr = call.entry.nr as i64;
    let fds: &[u64] = if nr == libc::SYS_vmsplice {
        &a[..1]
    } else if nr == libc::SYS_sendfile || nr == libc::SYS_tee {
        &a[..2]
    } else {
        &[a[0], a[2]]
    };
    let served = fds
        .iter()
        .any(|&fd| ctx.served.of_fd(call.tid, arg_fd(fd)).is_some());
    if !served {
        Verdict::Native
    } else if nr == libc::SYS_copy_file_range {
        // Across file systems: cp falls back to read and write.
        Verdict::Error(Errno::new(libc::EXDEV))
    } else {
        Verdict::Error(Errno::EINVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirents_have_the_kernels_layout() {
        let e = DirEntry {
            ino: 7,
            kind: libc::DT_REG,
            name: b"abc",
            next: 3,
        };
        let new = encode_dirent(&e, false);
        assert_eq!(new.len(), 24);
        assert_eq!(u16::from_ne_bytes([new[16], new[17]]), 24);
        assert_eq!(new[18], libc::DT_REG);
        assert_eq!(&new[19..23], b"abc\0");
        let old = encode_dirent(&e, true);
        assert_eq!(old.len(), 24);
        assert_eq!(&old[18..22], b"abc\0");
        assert_eq!(old[23], libc::DT_REG);
        let long = DirEntry {
            name: &[b'x'; 5],
            ..e
        };
        // 19 + 5 + 1 = 25, rounded to 32.
        assert_eq!(encode_dirent(&long, false).len(), 32);
    }
}
