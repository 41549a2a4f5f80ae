//! mount(2) and umount2(2).
//!
//! A mount whose type a loaded service claims (`mount -t unreal none /mnt`,
//! `mount -t umfuseext2 image /mnt`) is made in the view: the service
//! returns a file system and the view's mount table gets it, nothing
//! changes outside the view. The target is resolved as the kernel would,
//! in the view (so a mount can sit inside another virtual mount). Other
//! mounts (no type, a type no service claims, binds and remounts) run
//! natively, and the kernel answers them (usually `EPERM` for an
//! unprivileged user). umount2 of a view's mount point removes the latest
//! mount there.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use viewos_core::{Errno, MountRequest, SharedFd};

use super::{Call, Context, Verdict};
use crate::memory;
use crate::resolve::{self, Resolved};

/// The longest option string accepted (the kernel copies one page).
const MAX_DATA: usize = 4096;

/// Where a mount point argument leads: its canonical path in the view,
/// checked to be an existing directory, or with `on_files` (a service
/// making device nodes, [`viewos_core::Service::mounts_on_files`]) any
/// file or a missing name in an existing directory.
fn mount_point(ctx: &Context, tid: i32, addr: u64, on_files: bool) -> Result<PathBuf, Errno> {
    let raw = memory::read_path(tid, addr)?;
    mount_point_of(ctx, tid, &raw, on_files)
}

/// [`mount_point`] of the path `raw`, relative to `tid`'s cwd.
pub(super) fn mount_point_of(
    ctx: &Context,
    tid: i32,
    raw: &[u8],
    on_files: bool,
) -> Result<PathBuf, Errno> {
    if raw.is_empty() {
        return Err(Errno::ENOENT);
    }
    let view = ctx.view.read();
    match resolve::resolve(
        view.mounts(),
        (&ctx.walks, &ctx.dirs),
        tid,
        (libc::AT_FDCWD, false),
        raw,
        true,
    )? {
        Resolved::Virtual { mount, path } => {
            match mount.fs.lstat(&path) {
                Ok(st) if st.is_dir() || on_files => {}
                Ok(_) => return Err(Errno::ENOTDIR),
                Err(e) if e == Errno::ENOENT && on_files && path != Path::new("/") => {
                    // The walk checked the parent is a directory.
                }
                Err(e) => return Err(e),
            }
            Ok(mount.view_path(&path))
        }
        Resolved::Real => {
            let abs =
                resolve::absolute(&ctx.dirs, tid, libc::AT_FDCWD, raw).ok_or(Errno::ENOENT)?;
            let canon = match std::fs::canonicalize(&abs) {
                Ok(c) => c,
                Err(e) if on_files && e.kind() == std::io::ErrorKind::NotFound => {
                    // A new name in an existing directory.
                    let (parent, name) = match (abs.parent(), abs.file_name()) {
                        (Some(p), Some(n)) if n != ".." => (p, n),
                        _ => return Err(Errno::ENOENT),
                    };
                    let parent = std::fs::canonicalize(parent).map_err(Errno::from)?;
                    if !parent.is_dir() {
                        return Err(Errno::ENOTDIR);
                    }
                    return Ok(parent.join(name));
                }
                Err(e) => return Err(Errno::from(e)),
            };
            if !on_files && !canon.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            Ok(canon)
        }
    }
}

fn optional_string(tid: i32, addr: u64, max: usize) -> Result<String, Errno> {
    if addr == 0 {
        return Ok(String::new());
    }
    let bytes = memory::read_cstring(tid, addr, max)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A relative SOURCE that names an existing file of the view (an image in
/// the cwd) becomes an absolute path of the view, as mount(8) makes it
/// (services have no cwd); anything else (`none`, `host:/dir`) is left as
/// it is.
fn absolute_source(ctx: &Context, tid: i32, source: String) -> String {
    if source.is_empty() || source.starts_with('/') {
        return source;
    }
    let raw = source.as_bytes();
    let view = ctx.view.read();
    let exists = match resolve::resolve(
        view.mounts(),
        (&ctx.walks, &ctx.dirs),
        tid,
        (libc::AT_FDCWD, false),
        raw,
        false,
    ) {
        Ok(Resolved::Virtual { mount, path }) => mount.fs.lstat(&path).is_ok(),
        Ok(Resolved::Real) => resolve::absolute(&ctx.dirs, tid, libc::AT_FDCWD, raw)
            .is_some_and(|p| std::fs::symlink_metadata(p).is_ok()),
        Err(_) => false,
    };
    if !exists {
        return source;
    }
    match resolve::absolute(&ctx.dirs, tid, libc::AT_FDCWD, raw) {
        Some(abs) => {
            let norm = viewos_core::path::normalize(Path::new("/"), abs.as_os_str().as_bytes());
            norm.to_string_lossy().into_owned()
        }
        None => source,
    }
}

/// The number of an `fd=N` option (libfuse names its `/dev/fuse` so).
fn fd_option(options: &str) -> Option<i32> {
    options
        .split(',')
        .find_map(|o| o.strip_prefix("fd="))
        .and_then(|n| n.parse().ok())
}

/// A copy of fd `n` of the process of thread `tid`.
/// `EINVAL` if it has no such fd, as the kernel's FUSE mount answers.
fn copy_caller_fd(tid: i32, n: i32) -> Result<OwnedFd, Errno> {
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    crate::pidfd::copy_fd(resolve::tgid_of(tid), n).map_err(|e| match Errno::from(e) {
        e if e == Errno::EBADF => Errno::EINVAL,
        e => e,
    })
}

/// Implements mount(2).
pub fn mount(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if !super::sys_identity::capable(ctx, call.tid, super::sys_identity::CAP_SYS_ADMIN) {
        return Verdict::Error(Errno::EPERM);
    }
    let fstype = match optional_string(call.tid, a[2], 256) {
        Ok(t) if !t.is_empty() => t,
        // No type (bind, remount, propagation) or unreadable: the kernel's.
        _ => return Verdict::Native,
    };
    let on_files = match ctx
        .view
        .read()
        .services()
        .find(|s| s.handles_fstype(&fstype))
    {
        Some(s) => s.mounts_on_files(&fstype),
        None => return Verdict::Native,
    };
    let request = (|| {
        let source = optional_string(call.tid, a[0], libc::PATH_MAX as usize)?;
        let source = absolute_source(ctx, call.tid, source);
        let target = mount_point(ctx, call.tid, a[1], on_files)?;
        let options = optional_string(call.tid, a[4], MAX_DATA)?;
        let fd = match fd_option(&options) {
            Some(n) => Some(SharedFd::new(copy_caller_fd(call.tid, n)?)),
            None => None,
        };
        Ok::<_, Errno>(MountRequest {
            source,
            target,
            fstype,
            flags: a[3],
            options,
            fd,
            launcher: None,
        })
    })();
    let request = match request {
        Ok(r) => r,
        Err(e) => return Verdict::Error(e),
    };
    let target = request.target.clone();
    if let Some(joined) = ctx.view.read().join_mount(&request) {
        // A helper a service started, mounting for that service's mount.
        return match joined {
            Ok(()) => Verdict::Return(0),
            Err(e) => Verdict::Error(e),
        };
    }
    // The service mounts with the view unlocked: it may wait on programs
    // of the view (a FUSE server it started), whose calls read the view.
    let prepared = ctx.view.read().prepare_mount(&request);
    let mounted = prepared.and_then(|prepared| prepared.mount(request));
    match mounted.map(|m| ctx.view.write().push_mount(m)) {
        Ok(()) => {
            if ctx.log.enabled() {
                ctx.log
                    .line(format_args!("{} mounted on {}", call.tid, target.display()));
            }
            Verdict::Return(0)
        }
        Err(e) => Verdict::Error(e),
    }
}

/// Implements umount2(2).
pub fn umount2(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if !super::sys_identity::capable(ctx, call.tid, super::sys_identity::CAP_SYS_ADMIN) {
        return Verdict::Error(Errno::EPERM);
    }
    let Ok(raw) = memory::read_path(call.tid, a[0]) else {
        return Verdict::Native;
    };
    let Some(abs) = resolve::absolute(&ctx.dirs, call.tid, libc::AT_FDCWD, &raw) else {
        return Verdict::Native;
    };
    let target = viewos_core::path::normalize(Path::new("/"), abs.as_os_str().as_bytes());
    let mut view = ctx.view.write();
    if view.mounts().iter().any(|m| m.request.target == target) {
        let removed = view.umount(&target);
        drop(view);
        // The file system closes here, with the view unlocked (it may
        // wait on its server, a program of the view).
        return match removed {
            Ok(_) => {
                ctx.dirs.forget_below(&target);
                Verdict::Return(0)
            }
            Err(e) => Verdict::Error(e),
        };
    }
    drop(view);
    // A symlink to a mount point, or a path inside a mount that is not one.
    match mount_point(ctx, call.tid, a[0], true) {
        Ok(canon) => {
            let mut view = ctx.view.write();
            if view.mounts().iter().any(|m| m.request.target == canon) {
                let removed = view.umount(&canon);
                drop(view);
                match removed {
                    Ok(_) => {
                        ctx.dirs.forget_below(&canon);
                        Verdict::Return(0)
                    }
                    Err(e) => Verdict::Error(e),
                }
            } else if view.mounts().lookup(&canon).is_some() {
                Verdict::Error(Errno::EINVAL)
            } else {
                Verdict::Native
            }
        }
        Err(_) => Verdict::Native,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn fd_options_are_found() {
        assert_eq!(fd_option("fd=5,rootmode=40000,user_id=0"), Some(5));
        assert_eq!(fd_option("rootmode=40000,fd=12"), Some(12));
        assert_eq!(fd_option("rw,nofd=3"), None);
        assert_eq!(fd_option("fd=x"), None);
        assert_eq!(fd_option(""), None);
    }

    #[test]
    fn a_callers_fd_is_copied() {
        let tid = std::process::id() as i32;
        let fd = copy_caller_fd(tid, 0);
        // Our own stdin exists under cargo test (or is closed: EINVAL).
        match fd {
            Ok(f) => assert!(f.as_raw_fd() > 2),
            Err(e) => assert_eq!(e, Errno::EINVAL),
        }
        assert_eq!(copy_caller_fd(tid, 1 << 20).err(), Some(Errno::EINVAL));
        assert_eq!(copy_caller_fd(tid, -1).err(), Some(Errno::EINVAL));
    }
}
