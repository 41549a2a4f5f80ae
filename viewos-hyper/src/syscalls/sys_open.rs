//! Opening files by path: open, creat, openat, openat2. A virtual file
//! becomes a real fd in the caller; `/proc/self/mounts` and its other
//! names show the view's mounts.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::merged_dir::{extras_of, MergedDir};
use viewos_core::device::DeviceKind;
use viewos_core::mounts::Mount;
use viewos_core::real_file::RealFile;
use viewos_core::{Errno, FileHandle, FileStat, FileSystem, Interest, Opened};

use super::sys_path::{arg_fd, target_of, umask_of, Target};
use super::{Call, Context, Verdict};
use crate::memory;
use crate::resolve::tgid_of;
use crate::served::Pending;

/// open(2), creat(2), openat(2), openat2(2) on a virtual path: the mount
/// opens the file and the program gets it as a new fd.
fn open_common(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    addr: u64,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Verdict {
    if !ctx.served.is_empty() {
        if let Some(v) = parked(ctx, call) {
            return v;
        }
    }
    // The path is read once, for both questions below.
    let raw = match memory::read_path(call.tid, addr) {
        Ok(raw) => raw,
        Err(e) => return super::sys_path::unreadable(ctx, addr, e),
    };
    if let Some(v) = mount_listing(ctx, call, dirfd, &raw, flags) {
        return v;
    }
    let creating = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    let follow = flags & libc::O_NOFOLLOW == 0
        && flags & (libc::O_CREAT | libc::O_EXCL) != (libc::O_CREAT | libc::O_EXCL);
    let (mount, path) = match target_of(ctx, call, dirfd, (addr, &raw), follow) {
        Ok(Target::Real) => {
            if let Some(v) = real_device(ctx, call, dirfd, &raw, flags, follow) {
                return v;
            }
            return listing_with_mount_points(ctx, call, dirfd, &raw, flags).unwrap_or_else(|| {
                super::host_open::open_real(ctx, call, dirfd, &raw, (flags, mode, resolve))
            });
        }
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
            // A device node stays writable on a read-only mount, as the
            // kernel's (its EROFS is for files, directories and links).
            let device = mount
                .fs
                .lstat(&path)
                .is_ok_and(|st| DeviceKind::of_mode(st.mode).is_some());
            if !device {
                return Verdict::Error(e);
            }
        }
    }
    if let Some(v) = mount_device(ctx, call, &mount, &path, flags) {
        return v;
    }
    let opened = mount.fs.open(&path, flags, mode);
    // A directory of the mount holding mount points missing from it is
    // listed with them ([`crate::merged_dir`]).
    let extras = if flags & libc::O_DIRECTORY != 0 && opened.is_ok() {
        extras_of(ctx.view.read().mounts(), &mount.view_path(&path))
    } else {
        Vec::new()
    };
    match opened {
        Ok(Opened::Backed(fd)) if !extras.is_empty() => {
            let dir = Box::new(RealFile::new(std::fs::File::from(fd)));
            let handle = Box::new(MergedDir::new(dir, extras));
            served(ctx, call, mount, path, handle, flags)
        }
        Ok(Opened::Backed(fd)) => {
            // From now on a dirfd or cwd may be virtual.
            ctx.virtual_given.store(true, Ordering::Relaxed);
            remember_backed_dir(ctx, call, &fd, mount.view_path(&path));
            Verdict::InstallFd {
                fd,
                cloexec: flags & libc::O_CLOEXEC != 0,
            }
        }
        Ok(Opened::Served(handle)) => {
            let handle = if extras.is_empty() {
                handle
            } else {
                Box::new(MergedDir::new(handle, extras))
            };
            served(ctx, call, mount, path, handle, flags)
        }
        // A kind of file this host cannot hand over.
        Ok(_) => Verdict::Error(Errno::ENOSYS),
        Err(e) => Verdict::Error(e),
    }
}

/// A directory a mount gave as a real fd: names relative to it resolve
/// from the view's path it was opened by
/// ([`crate::virtual_dirs::VirtualDirs::add_backed_dir`]), when its real
/// path does not lead to it in the view (a mount on `/` hides every real
/// path); where the real path still names the real directory, the kernel
/// resolves from the fd as before.
fn remember_backed_dir(
    ctx: &Context,
    call: &Call<'_>,
    fd: &std::os::fd::OwnedFd,
    view_path: PathBuf,
) {
    use std::os::fd::AsRawFd;
    // SAFETY: fstat fills the buffer we own; the fd is ours.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0
        || st.st_mode & libc::S_IFMT != libc::S_IFDIR
    {
        return;
    }
    let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return;
    };
    if real == view_path {
        return;
    }
    let names_itself = matches!(
        super::sys_path::resolve_absolute(ctx, call.tid, real.as_os_str().as_bytes(), true),
        Ok(crate::resolve::Resolved::Real)
    );
    if !names_itself {
        ctx.dirs.add_backed_dir(real, view_path);
    }
}

/// A file the service serves: the program gets a placeholder
/// ([`crate::served`]), once its process stops at fd calls.
pub(super) fn served(
    ctx: &Context,
    call: &Call<'_>,
    mount: Mount,
    path: PathBuf,
    handle: Box<dyn FileHandle>,
    flags: i32,
) -> Verdict {
    let fd = match ctx.served.create(handle, mount, path, flags) {
        Ok(p) => {
            // Names relative to the fd resolve from the virtual directory,
            // and its `/proc/PID/fd/N` link leads to the virtual file.
            ctx.dirs.add_link(p.link, p.file.view_path());
            p.fd
        }
        Err(e) => return Verdict::Error(e),
    };
    ctx.virtual_given.store(true, Ordering::Relaxed);
    let cloexec = flags & libc::O_CLOEXEC != 0;
    if !ctx.fd_filter_needed || ctx.served.has_fd_filter(tgid_of(call.tid)) {
        return Verdict::InstallFd { fd, cloexec };
    }
    ctx.served.park(
        call.tid,
        Pending {
            nr: call.entry.nr,
            args: call.entry.args,
            fd,
            cloexec,
            failed: None,
        },
    );
    Verdict::InjectFdFilter
}

/// The same call made again after the fd filter was added: install the
/// placeholder made the first time (the open is not repeated).
pub(super) fn parked(ctx: &Context, call: &Call<'_>) -> Option<Verdict> {
    let p = ctx
        .served
        .unpark(call.tid, call.entry.nr, &call.entry.args)?;
    if let Some(e) = p.failed {
        return Some(Verdict::Error(e));
    }
    if ctx.served.has_fd_filter(tgid_of(call.tid)) {
        return Some(Verdict::InstallFd {
            fd: p.fd,
            cloexec: p.cloexec,
        });
    }
    // Interrupted before the filter was in: try again.
    ctx.served.park(call.tid, p);
    Some(Verdict::InjectFdFilter)
}

/// Opening a device node whose number a service claims
/// ([`viewos_core::device`]): the service opens it. `None` when the file
/// is not such a node (or no service claims devices).
fn open_claimed_device(
    ctx: &Context,
    call: &Call<'_>,
    st: &FileStat,
    path: PathBuf,
    flags: i32,
    access: impl FnOnce(i32) -> Result<(), Errno>,
) -> Option<Verdict> {
    let kind = DeviceKind::of_mode(st.mode)?;
    let view = ctx.view.read();
    let service = view.device_service(kind, st.rdev)?;
    let name = service.name().to_string();
    // The node's permissions, as the kernel checks them at open.
    let want = match flags & libc::O_ACCMODE {
        libc::O_RDONLY => libc::R_OK,
        libc::O_WRONLY => libc::W_OK,
        _ => libc::R_OK | libc::W_OK,
    };
    if flags & libc::O_PATH == 0 {
        if let Err(e) = access(want) {
            return Some(Verdict::Error(e));
        }
    }
    let opened = service.open_device(kind, st.rdev, flags);
    drop(view);
    Some(match opened {
        Ok(Opened::Backed(fd)) => Verdict::InstallFd {
            fd,
            cloexec: flags & libc::O_CLOEXEC != 0,
        },
        Ok(Opened::Served(handle)) => served(
            ctx,
            call,
            crate::served::device_mount(&name),
            path,
            handle,
            flags,
        ),
        Ok(_) => Verdict::Error(Errno::ENOSYS),
        Err(e) => Verdict::Error(e),
    })
}

/// A real device node a service claims.
fn real_device(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    raw: &[u8],
    flags: i32,
    follow: bool,
) -> Option<Verdict> {
    let exclusive = libc::O_CREAT | libc::O_EXCL;
    if !ctx.trapped.contains(Interest::DEVICE) || flags & exclusive == exclusive {
        return None;
    }
    let abs = crate::resolve::absolute(&ctx.dirs, call.tid, dirfd, raw)?;
    let meta = if follow {
        std::fs::metadata(&abs)
    } else {
        std::fs::symlink_metadata(&abs)
    };
    let st = FileStat::from_metadata(&meta.ok()?);
    let access = |mode| viewos_core::real::RealFs.access(&abs, mode);
    open_claimed_device(ctx, call, &st, abs.clone(), flags, access)
}

/// A device node of a mount whose number a service claims.
fn mount_device(
    ctx: &Context,
    call: &Call<'_>,
    mount: &Mount,
    path: &Path,
    flags: i32,
) -> Option<Verdict> {
    if !ctx.trapped.contains(Interest::DEVICE) {
        return None;
    }
    let st = mount.fs.lstat(path).ok()?;
    let access = |mode| mount.fs.access(path, mode);
    open_claimed_device(ctx, call, &st, path.to_path_buf(), flags, access)
}

/// Opening a real directory that holds mount points missing from the real
/// file system: its listing is served with their names added
/// ([`crate::merged_dir`]). `None`: the kernel's open is exact.
fn listing_with_mount_points(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    raw: &[u8],
    flags: i32,
) -> Option<Verdict> {
    use crate::merged_dir::may_hold_extras;
    if flags & libc::O_DIRECTORY == 0
        || flags & libc::O_ACCMODE != libc::O_RDONLY
        || flags & (libc::O_PATH | libc::O_CREAT) != 0
    {
        return None;
    }
    let view = ctx.view.read();
    let mounts = view.mounts();
    if mounts.is_empty() || !may_hold_extras(mounts, raw) {
        return None;
    }
    let abs = crate::resolve::absolute(&ctx.dirs, call.tid, dirfd, raw)?;
    // Only a path without symlinks is where its lexical form says.
    if ctx.walks.walk(abs.as_os_str().as_bytes(), true) != crate::walk_cache::Walk::Plain {
        return None;
    }
    let dir = viewos_core::path::normalize(Path::new("/"), abs.as_os_str().as_bytes());
    let extras = extras_of(mounts, &dir);
    drop(view);
    if extras.is_empty() {
        return None;
    }
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(&dir)
        .ok()?;
    // The real directory, as a file of the real file system.
    let real = Mount {
        request: viewos_core::MountRequest {
            target: PathBuf::from("/"),
            ..Default::default()
        },
        service: crate::served::REAL.into(),
        fs: std::sync::Arc::new(viewos_core::real::RealFs),
    };
    let handle = Box::new(MergedDir::new(Box::new(RealFile::new(file)), extras));
    Some(served(ctx, call, real, dir, handle, flags))
}

/// Opening `/proc/self/mounts` (and its other names) for reading in a view
/// with mounts gets the real listing followed by the view's.
fn mount_listing(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    raw: &[u8],
    flags: i32,
) -> Option<Verdict> {
    if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_PATH != 0 {
        return None;
    }
    let view = ctx.view.read();
    if view.mounts().is_empty() {
        return None;
    }
    if !(raw.ends_with(b"mounts") || raw.ends_with(b"mountinfo") || raw.ends_with(b"mtab")) {
        return None;
    }
    let abs = crate::resolve::absolute(&ctx.dirs, call.tid, dirfd, raw)?;
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
    open_common(
        ctx,
        call,
        libc::AT_FDCWD,
        a[0],
        open_flags(a[1]),
        a[2] as u32,
        0,
    )
}

/// The flags open(2) and openat(2) act on: they drop bits they do not
/// know (openat2 refuses them).
fn open_flags(arg: u64) -> i32 {
    arg as i32 & 0o37777703
}

/// Implements creat(2): open with `O_CREAT | O_WRONLY | O_TRUNC`.
pub fn creat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    open_common(ctx, call, libc::AT_FDCWD, a[0], flags, a[1] as u32, 0)
}

/// Implements openat(2).
pub fn openat(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    open_common(
        ctx,
        call,
        arg_fd(a[0]),
        a[1],
        open_flags(a[2]),
        a[3] as u32,
        0,
    )
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
    // The kernel reads the struct itself, bytes past the ones it knows
    // included (they must be zero: E2BIG). Errors are given here, not
    // left to the kernel, which would read the struct and the path again.
    let mut whole = vec![0u8; size];
    if let Err(e) = memory::read_exact(call.tid, a[2], &mut whole) {
        return super::sys_path::unreadable(ctx, a[2], e);
    }
    if whole[24..].iter().any(|&b| b != 0) {
        return Verdict::Error(Errno::new(libc::E2BIG));
    }
    let raw = &whole[..24];
    let word = |i: usize| u64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let how = OpenHow {
        flags: word(0),
        mode: word(1),
        resolve: word(2),
    };
    if how.flags > i32::MAX as u64 || how.mode > 0o7777 {
        return Verdict::Error(Errno::EINVAL);
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
    // Restrictions a virtual path always meets: a mount has no magic links
    // (those are /proc's).
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_CACHED: u64 = 0x20;
    let restricted = how.resolve & !RESOLVE_NO_MAGICLINKS;
    if restricted != 0 {
        // The kernel's checks would run on the real tree, not the view's:
        // a lookup restricted otherwise is refused for virtual paths, as
        // the kernel refuses one it cannot check (EXDEV; EAGAIN for a
        // lookup that must come from the cache, which makes the caller try
        // again without RESOLVE_CACHED).
        let follow = how.flags as i32 & libc::O_NOFOLLOW == 0;
        let raw = match memory::read_path(call.tid, a[1]) {
            Ok(raw) => raw,
            Err(e) => return super::sys_path::unreadable(ctx, a[1], e),
        };
        return match target_of(ctx, call, arg_fd(a[0]), (a[1], &raw), follow) {
            Ok(Target::Real) => super::host_open::open_real(
                ctx,
                call,
                arg_fd(a[0]),
                &raw,
                (how.flags as i32, how.mode as u32, how.resolve),
            ),
            Ok(Target::Virtual(..)) if restricted == RESOLVE_CACHED => {
                Verdict::Error(Errno::new(libc::EAGAIN))
            }
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
        how.resolve,
    )
}
