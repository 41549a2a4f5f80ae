//! The current directory: chdir into a virtual directory, getcwd.

use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use viewos_core::mounts::Mount;
use viewos_core::Errno;

use super::sys_path::{target, Target};
use super::{Call, Context, Verdict};
use crate::memory;

/// Implements chdir(2). Into a virtual directory: the kernel's cwd becomes
/// the placeholder standing for it ([`crate::virtual_dirs`]).
pub fn chdir(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let (mount, path) = match target(ctx, call, libc::AT_FDCWD, a[0], true) {
        Ok(Target::Real) => return Verdict::Native,
        Ok(Target::Virtual(m, p)) => (m, p),
        Err(v) => return v,
    };
    let checked = mount.fs.lstat(&path).and_then(|st| {
        if !st.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        enter(ctx, &mount, &path)
    });
    match checked {
        Ok(placeholder) => Verdict::RewritePath {
            arg: 0,
            path: placeholder,
            hold: None,
        },
        Err(e) => Verdict::Error(e),
    }
}

/// Entering the virtual directory `path` of `mount` (chdir, fchdir), once
/// it is known to be a directory: checks search permission and returns the
/// placeholder the kernel's cwd becomes.
pub(super) fn enter(ctx: &Context, mount: &Mount, path: &Path) -> Result<Vec<u8>, Errno> {
    mount.fs.access(path, libc::X_OK)?;
    let placeholder = ctx.dirs.placeholder_for(&mount.view_path(path))?;
    // From now on a cwd may be virtual.
    ctx.virtual_given.store(true, Ordering::Relaxed);
    Ok(placeholder.into_os_string().into_vec())
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
