//! The supervisor: answers the system calls the filter sends to the
//! seccomp notification listener (`SECCOMP_RET_USER_NOTIF`).
//!
//! These are calls the host answers without changing registers: it reads
//! the arguments, dispatches exactly as for a ptrace stop, and replies with a
//! value, an errno, or "run it as it is" (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
//! A notification costs about half a ptrace stop, and with
//! `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` the supervisor runs on the CPU of
//! the waiting thread. One supervisor thread serves each listener (one per
//! program started in the view); it ends when no process uses the filter
//! any more.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use crate::ptrace::SyscallEntry;
use crate::syscalls::{self, Call, Context, Verdict};

const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const SECCOMP_IOCTL_NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;
const SECCOMP_IOCTL_NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Resp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// Lock the shared context; a panic in another holder must not take the
/// view down, so a poisoned lock is used as it is.
pub fn lock(ctx: &Mutex<Context>) -> std::sync::MutexGuard<'_, Context> {
    ctx.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a supervisor thread for `listener`.
pub fn start(listener: OwnedFd, ctx: Arc<Mutex<Context>>) -> io::Result<()> {
    // SAFETY: the ioctl takes a pointer to a u64 flag word we own.
    unsafe {
        let flags: u64 = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
        // Older kernels lack the flag: the listener works, only slower.
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            &flags as *const u64,
        );
    }
    std::thread::Builder::new()
        .name("viewos-supervisor".into())
        .spawn(move || serve(listener, ctx))
        .map(drop)
}

fn serve(listener: OwnedFd, ctx: Arc<Mutex<Context>>) {
    let fd = listener.as_raw_fd();
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polling one pollfd we own.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        if n < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: no process uses the filter any more.
            return;
        }
        let mut notif = Notif::default();
        // SAFETY: RECV fills a zeroed seccomp_notif we own.
        if unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &mut notif as *mut Notif) } != 0 {
            // ENOENT: the caller was interrupted or died; anything else:
            // try again (the next poll tells whether the listener is gone).
            continue;
        }
        let entry = SyscallEntry {
            arch: notif.data.arch,
            nr: notif.data.nr as u32 as u64,
            args: notif.data.args,
            stack_pointer: 0,
        };
        let tid = notif.pid as i32;
        let verdict = syscalls::dispatch(&mut lock(&ctx), &Call { tid, entry: &entry });
        let mut resp = Resp {
            id: notif.id,
            ..Resp::default()
        };
        match verdict {
            Verdict::Native => resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE,
            Verdict::Return(v) => resp.val = v,
            Verdict::Error(e) => resp.error = -e.raw(),
        }
        // The thread we read from must still be the one that asked (its id
        // could have been reused if it died meanwhile).
        // SAFETY: ID_VALID reads a u64 we own.
        let valid =
            unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &notif.id as *const u64) } == 0;
        if valid {
            // SAFETY: SEND reads a seccomp_notif_resp we own. A failure means
            // the caller was interrupted: its call will be made again.
            unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp as *const Resp) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_struct_sizes() {
        assert_eq!(std::mem::size_of::<Notif>(), 80);
        assert_eq!(std::mem::size_of::<Resp>(), 24);
    }
}
