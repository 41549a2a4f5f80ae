//! The supervisor: answers the system calls the filter sends to the
//! seccomp notification listener (`SECCOMP_RET_USER_NOTIF`).
//!
//! These are calls the host answers without changing registers: it reads
//! the arguments, dispatches exactly as for a ptrace stop, and replies with a
//! value, an errno, or "run it as it is" (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
//! A notification costs about half a ptrace stop, and with
//! `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` the supervisor runs on the CPU of
//! the waiting thread. A supervisor thread serves each listener (one per
//! program started in the view); it ends when no process uses the filter
//! any more.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::ptrace::SyscallEntry;
use crate::syscalls::{self, Call, Context, Escalated, Escalation, TracerWork, Verdict};

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

/// Starts the supervisor for `listener`.
pub fn start(listener: OwnedFd, ctx: Arc<Context>) -> io::Result<()> {
    // SAFETY: SET_FLAGS takes the flag word itself as its argument (not a
    // pointer). Older kernels lack the flag: the listener works, slower.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        );
    }
    let pool = Arc::new(Pool {
        listener,
        ctx,
        receivers: AtomicUsize::new(1),
        answering: AtomicUsize::new(0),
        calls: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let receiver = pool.clone();
    std::thread::Builder::new()
        .name("viewos-supervisor".into())
        .spawn(move || receiver.receive())?;
    let watcher = pool.clone();
    std::thread::Builder::new()
        .name("viewos-sup-watch".into())
        .spawn(move || watcher.watch())?;
    Ok(())
}

/// How long one call may keep the receiving thread before another thread
/// starts receiving the listener's calls.
const TAKEOVER_AFTER: Duration = Duration::from_millis(10);

/// The threads serving one listener.
///
/// One thread receives and answers the calls: one thread blocked on a
/// listener is what keeps the caller and its supervisor on one CPU (the
/// sync wake-up), and several threads blocked on it were measured slower
/// (the kernel wakes them all). But a call can take long: a service waiting
/// for a FUSE server that is itself a program of the view, whose own calls
/// come to this listener. So a watcher looks every [`TAKEOVER_AFTER`]: if
/// the same call has kept the receiving thread all that time, the watcher
/// becomes a receiver itself (and a new watcher starts). A receiver that
/// finishes its call while another receives leaves, so the pool shrinks
/// back to one receiver once the long calls end.
struct Pool {
    listener: OwnedFd,
    ctx: Arc<Context>,
    /// Threads receiving calls.
    receivers: AtomicUsize,
    /// Receivers answering a call right now.
    answering: AtomicUsize,
    /// Calls received so far.
    calls: AtomicU64,
    /// Nobody uses the filter any more.
    done: AtomicBool,
}

impl Pool {
    /// A receiving thread: answers calls until the listener is orphaned,
    /// or until it finishes a call while another thread receives.
    fn receive(self: Arc<Self>) {
        let fd = self.listener.as_raw_fd();
        loop {
            // RECV blocks until a call arrives (a blocking RECV is woken on
            // the caller's CPU with the sync flag, and costs no extra poll).
            let mut notif = Notif::default();
            // SAFETY: RECV fills a zeroed seccomp_notif we own.
            if unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &mut notif as *mut Notif) } != 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // ENOENT: a caller was interrupted, or nobody uses the
                    // filter any more; a poll tells which.
                    _ if listener_orphaned(fd) => {
                        self.done.store(true, Ordering::Release);
                        self.receivers.fetch_sub(1, Ordering::AcqRel);
                        return;
                    }
                    _ => continue,
                }
            }
            self.calls.fetch_add(1, Ordering::AcqRel);
            self.answering.fetch_add(1, Ordering::AcqRel);
            answer(fd, &self.ctx, &notif);
            self.answering.fetch_sub(1, Ordering::AcqRel);
            let receivers = self.receivers.load(Ordering::Acquire);
            if receivers > 1 && self.answering.load(Ordering::Acquire) < receivers - 1 {
                // Another receiver is free (it took over while this call
                // was long): leave, if still not the last one.
                let before = self.receivers.fetch_sub(1, Ordering::AcqRel);
                if before > 1 {
                    return;
                }
                self.receivers.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// True when every receiver is answering a call.
    fn all_busy(&self) -> bool {
        self.answering.load(Ordering::Acquire) >= self.receivers.load(Ordering::Acquire)
    }

    /// The watcher: wakes every [`TAKEOVER_AFTER`] and starts receiving if
    /// every receiver has been answering a call all that time (busy at
    /// both looks, and no call received in between).
    fn watch(self: Arc<Self>) {
        let mut last = None;
        loop {
            std::thread::sleep(TAKEOVER_AFTER);
            if self.done.load(Ordering::Acquire) {
                return;
            }
            let now = self.all_busy().then(|| self.calls.load(Ordering::Acquire));
            if now.is_some() && now == last {
                // Become a receiver; a new watcher takes this one's place.
                self.receivers.fetch_add(1, Ordering::AcqRel);
                let watcher = self.clone();
                // Without a new watcher (no thread could be made), this
                // receiver still serves; only later long calls wait.
                let _ = std::thread::Builder::new()
                    .name("viewos-sup-watch".into())
                    .spawn(move || watcher.watch());
                if self.ctx.log.enabled() {
                    self.ctx.log.line(format_args!(
                        "supervisor: a call is taking long; another thread receives"
                    ));
                }
                return self.receive();
            }
            last = now;
        }
    }
}

/// Dispatches one received call and answers it (or hands it to the
/// tracer).
/// Lets the first call that stops at a new `listener` run as it is: the
/// launched `child`'s own `kill(self, SIGSTOP)` (the kill family is always
/// trapped, see `syscalls::sys_guard`), made before any supervisor runs.
/// Waits as long as the child lives and has not stopped (checked without
/// taking its status, which the launcher waits for next).
pub fn let_one_through(listener: &OwnedFd, child: i32) {
    let fd = listener.as_raw_fd();
    let interrupted = || io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
    // The tracer's thread gets signals (wake-ups): every wait here is
    // made again when one interrupts it.
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes the one pollfd we own.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if ready == 1 && pfd.revents & libc::POLLIN != 0 {
            let mut notif = Notif::default();
            // SAFETY: RECV fills a zeroed seccomp_notif we own.
            if unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &mut notif as *mut Notif) } != 0 {
                // Interrupted, or the caller went away: look again.
                continue;
            }
            let resp = Resp {
                id: notif.id,
                flags: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
                ..Resp::default()
            };
            // SAFETY: SEND reads a seccomp_notif_resp we own.
            unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp as *const Resp) };
            return;
        }
        if ready < 0 && !interrupted() {
            return;
        }
        // SAFETY: waitid fills the siginfo we own; WNOWAIT leaves the
        // child's state to be taken later.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                child as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WSTOPPED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
            )
        };
        if r != 0 && interrupted() {
            continue;
        }
        // SAFETY: si_pid is set by waitid (0 when nothing changed).
        if r != 0 || unsafe { info.si_pid() } != 0 {
            // Gone, or stopped some other way: nothing to let through.
            return;
        }
    }
}

fn answer(fd: i32, ctx: &Context, notif: &Notif) {
    let entry = SyscallEntry {
        arch: notif.data.arch,
        nr: notif.data.nr as u32 as u64,
        args: notif.data.args,
        stack_pointer: 0,
    };
    let tid = notif.pid as i32;
    let verdict = syscalls::dispatch(ctx, &Call { tid, entry: &entry });
    let mut resp = Resp {
        id: notif.id,
        ..Resp::default()
    };
    match &verdict {
        // Letting the call run needs no check that the caller is still
        // the same thread: the kernel runs it or nothing happens.
        Verdict::Native => resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE,
        Verdict::Return(v) => resp.val = *v,
        Verdict::Error(e) => resp.error = -e.raw(),
        Verdict::RewritePath { .. } => {
            let Verdict::RewritePath { arg, path, hold } = verdict else {
                return;
            };
            // No answer: the tracer interrupts the waiting call,
            // rewrites it, and the kernel makes it again.
            escalate(ctx, tid, entry.nr, Escalated::Rewrite { arg, path, hold });
            return;
        }
        Verdict::ExecRewrite(_) => {
            let Verdict::ExecRewrite(exec) = verdict else {
                return;
            };
            // No answer: the tracer interrupts the waiting exec and makes
            // it the new one.
            escalate(ctx, tid, entry.nr, Escalated::Exec(exec));
            return;
        }
        Verdict::InjectFdFilter => {
            // No answer: the tracer adds the fd filter to the caller's
            // process and the kernel makes the call again.
            escalate(ctx, tid, entry.nr, Escalated::InjectFdFilter);
            return;
        }
        Verdict::OpenForExec(_) => {
            let Verdict::OpenForExec(fd) = verdict else {
                return;
            };
            // No answer: the tracer has the thread open the program, and
            // the kernel makes the exec again.
            escalate(ctx, tid, entry.nr, Escalated::OpenForExec(fd));
            return;
        }
        // Register rewrites are for calls stopped at the tracer.
        Verdict::RewriteCall { .. } | Verdict::Calls(_) => resp.error = -libc::ENOSYS,
        Verdict::InstallFd { fd: file, .. } if is_path_only(file.as_raw_fd()) => {
            let Verdict::InstallFd { fd: file, cloexec } = verdict else {
                return;
            };
            // The kernel's fd passing refuses O_PATH files: the program
            // opens it itself, through the host's /proc fd.
            escalate(ctx, tid, entry.nr, Escalated::Reopen { fd: file, cloexec });
            return;
        }
        Verdict::InstallFd { fd: file, cloexec } => {
            match install_fd(fd, notif.id, file.as_raw_fd(), *cloexec) {
                // Installed, and the call answered with its number.
                Ok(()) => return,
                Err(libc::ENOENT) => return,
                // The program has no free fd (EMFILE) or the like.
                Err(e) => resp.error = -e,
            }
        }
    }
    // An answer made from the caller's memory must go to that caller
    // (its id could have been reused if it died meanwhile).
    // SAFETY: ID_VALID reads a u64 we own.
    let valid = verdict.is_native()
        || unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &notif.id as *const u64) } == 0;
    if valid {
        // SAFETY: SEND reads a seccomp_notif_resp we own. A failure means
        // the caller was interrupted: its call will be made again.
        unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp as *const Resp) };
    }
}

/// True for an `O_PATH` file.
fn is_path_only(fd: i32) -> bool {
    // SAFETY: F_GETFL on an fd we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_PATH != 0
}

/// Hands thread `tid`'s waiting call `nr` to the tracer.
fn escalate(ctx: &Context, tid: i32, nr: u64, what: Escalated) {
    ctx.inbox
        .push(TracerWork::Escalation(Escalation { tid, nr, what }));
}

/// `struct seccomp_notif_addfd`.
#[repr(C)]
struct AddFd {
    id: u64,
    flags: u32,
    srcfd: u32,
    newfd: u32,
    newfd_flags: u32,
}

const SECCOMP_IOCTL_NOTIF_ADDFD: libc::c_ulong = 0x4018_2103;
const SECCOMP_ADDFD_FLAG_SEND: u32 = 1 << 1;

/// Puts a copy of `src` in the caller of notification `id` at its lowest
/// free fd and answers the call with that number, in one step
/// (`SECCOMP_ADDFD_FLAG_SEND`). Errors are errno values.
fn install_fd(listener: i32, id: u64, src: i32, cloexec: bool) -> Result<(), i32> {
    let add = AddFd {
        id,
        flags: SECCOMP_ADDFD_FLAG_SEND,
        srcfd: src as u32,
        newfd: 0,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: ADDFD reads a seccomp_notif_addfd we own.
    let r = unsafe { libc::ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add as *const AddFd) };
    if r < 0 {
        Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(())
    }
}

/// True when no process uses the listener's filter any more.
fn listener_orphaned(fd: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polling one pollfd we own, without waiting.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n < 0 || (pfd.revents & libc::POLLIN == 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_struct_sizes() {
        assert_eq!(std::mem::size_of::<Notif>(), 80);
        assert_eq!(std::mem::size_of::<Resp>(), 24);
        assert_eq!(std::mem::size_of::<AddFd>(), 24);
    }
}
