//! Program execution: execve(2), execveat(2).
//!
//! The kernel runs the exec; the host follows it with `PTRACE_EVENT_EXEC`
//! (see the tracer). Services that provide executables or interpreters hook
//! in here.

use std::os::fd::AsRawFd;

use viewos_core::{Errno, Opened};

use super::sys_path::{target, Target};
use super::{Call, Context, Verdict};
use crate::memory;

/// Implements execve(2).
pub fn execve(ctx: &Context, call: &Call<'_>) -> Verdict {
    log_path(ctx, call, call.entry.args[0]);
    exec_path(ctx, call, libc::AT_FDCWD, 0, false)
}

/// Implements execveat(2).
pub fn execveat(ctx: &Context, call: &Call<'_>) -> Verdict {
    log_path(ctx, call, call.entry.args[1]);
    let nofollow = call.entry.args[4] as i32 & libc::AT_SYMLINK_NOFOLLOW != 0;
    exec_path(ctx, call, call.entry.args[0] as i32, 1, nofollow)
}

/// A program on a virtual path runs from the file its mount opens: the
/// call is rewritten to exec that file through `/proc/HOST/fd/N` (the host
/// keeps it open while the thread lives, so an interpreter can still open
/// a script by that name).
fn exec_path(ctx: &Context, call: &Call<'_>, dirfd: i32, arg: usize, nofollow: bool) -> Verdict {
    let (mount, path) = match target(ctx, call, dirfd, call.entry.args[arg], !nofollow) {
        Ok(Target::Real) => return Verdict::Native,
        Ok(Target::Virtual(m, p)) => (m, p),
        Err(v) => return v,
    };
    let opened = mount.fs.lstat(&path).and_then(|st| {
        if st.is_dir() {
            return Err(Errno::EACCES);
        }
        mount.fs.access(&path, libc::X_OK)?;
        mount.fs.open(&path, libc::O_RDONLY | libc::O_CLOEXEC, 0)
    });
    let opened = opened.and_then(|o| match o {
        // A served program runs from a copy in memory.
        Opened::Served(h) => crate::served::copy_of(h.as_ref()).map(Opened::Backed),
        other => Ok(other),
    });
    match opened {
        Ok(Opened::Backed(fd)) => Verdict::RewritePath {
            arg,
            path: format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd()).into_bytes(),
            hold: Some(fd),
        },
        Ok(_) => Verdict::Error(Errno::ENOEXEC),
        Err(e) => Verdict::Error(e),
    }
}

fn log_path(ctx: &Context, call: &Call<'_>, addr: u64) {
    if ctx.log.enabled() {
        match memory::read_path(call.tid, addr) {
            Ok(p) => ctx.log.line(format_args!(
                "{} exec attempt {:?}",
                call.tid,
                String::from_utf8_lossy(&p)
            )),
            Err(e) => ctx.log.line(format_args!(
                "{} exec attempt <bad path: {:?}>",
                call.tid, e
            )),
        }
    }
}
