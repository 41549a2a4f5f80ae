//! The host guards itself: calls by which a program in the view could
//! read or change the host's memory (`process_vm_readv`/`writev`,
//! `ptrace`), stop or kill it (the kill family), or get a handle on it
//! (`pidfd_open`) fail when they name one of the host's threads, as they
//! would against a process the caller may not touch (`EPERM`). A program
//! cannot make itself unreadable to the host (`prctl(PR_SET_DUMPABLE, 0)`
//! is answered as done and not made: the kernel would then refuse the
//! host every read of the program's memory, so every path it names would
//! go unchecked). Everything else runs natively. The host's `/proc` entries are guarded where paths
//! are resolved ([`crate::resolve`]).

use super::{Call, Context, Verdict};
use viewos_core::Errno;

/// True if `id` (a pid or tid as a syscall argument) is one of the host's
/// threads.
fn is_host(id: u64) -> bool {
    crate::host_threads::is_host_thread(i64::from(id as i32))
}

fn refuse_host(id: u64) -> Verdict {
    if is_host(id) {
        Verdict::Error(Errno::EPERM)
    } else {
        Verdict::Native
    }
}

/// kill(2): a signal to the host (by its pid) is refused.
pub fn kill(_ctx: &Context, call: &Call<'_>) -> Verdict {
    refuse_host(call.entry.args[0])
}

/// ptrace(2) on one of the host's threads: attaching gets `EPERM`, any
/// other request `ESRCH` (the host is no tracee of the caller).
pub fn ptrace(_ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if !is_host(a[1]) {
        return Verdict::Native;
    }
    match a[0] as i64 {
        r if r == libc::PTRACE_ATTACH as i64 || r == libc::PTRACE_SEIZE as i64 => {
            Verdict::Error(Errno::EPERM)
        }
        _ => Verdict::Error(Errno::new(libc::ESRCH)),
    }
}

/// Calls whose first argument is a process or thread (process_vm_readv
/// and writev, rt_sigqueueinfo, pidfd_open, tkill).
pub fn first_is_process(_ctx: &Context, call: &Call<'_>) -> Verdict {
    refuse_host(call.entry.args[0])
}

/// pidfd_send_signal(2) through a `/proc/HOST` directory fd.
pub fn pidfd_send_signal(_ctx: &Context, call: &Call<'_>) -> Verdict {
    let fd = call.entry.args[0] as i32;
    let link = std::fs::read_link(format!("/proc/{}/fd/{fd}", call.tid));
    let names_host = |l: &std::path::Path| {
        l.to_str()
            .and_then(|s| s.strip_prefix("/proc/"))
            .is_some_and(|id| crate::host_threads::names_host_thread(id.as_bytes()))
    };
    match link {
        Ok(l) if names_host(&l) => Verdict::Error(Errno::EPERM),
        _ => Verdict::Native,
    }
}

/// tgkill(2), rt_tgsigqueueinfo(2): a thread group and a thread.
pub fn tgkill(_ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if is_host(a[0]) || is_host(a[1]) {
        Verdict::Error(Errno::EPERM)
    } else {
        Verdict::Native
    }
}

/// prctl(2): `PR_SET_DUMPABLE` to 0 succeeds without being applied. An
/// unprivileged host cannot read the memory of a process that is not
/// dumpable (`process_vm_readv` is `EPERM`), so the process would name
/// paths the host cannot check. Other options run natively (the kernel
/// refuses bad values of `PR_SET_DUMPABLE` itself).
pub fn prctl(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    if a[0] == libc::PR_SET_DUMPABLE as u64 && a[1] == 0 {
        ctx.log.line(format_args!(
            "{} prctl(PR_SET_DUMPABLE, 0) answered, not made: the host keeps reading its memory",
            call.tid
        ));
        return Verdict::Return(0);
    }
    Verdict::Native
}
