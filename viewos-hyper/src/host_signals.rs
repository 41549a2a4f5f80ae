//! Signals addressed to the host itself.
//!
//! `umview` shares its process group with the program it runs, so a program
//! that signals its own group (`kill -TERM 0`, the usual way a script ends
//! its jobs) signals the host too. Such a signal is meant for the programs,
//! which receive it natively; the host must not die of it. A signal from
//! outside the view (another process, the kernel, the terminal) keeps its
//! default effect on the host: a terminating signal ends the host, and
//! `PTRACE_O_EXITKILL` then ends every process of the view; a stop signal
//! stops it.
//!
//! The handler only records the signal and its sender in atomics (all it may
//! do); the event loop, interrupted in `waitpid`, decides with
//! [`take_pending`] and [`apply_default`].

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Signals whose default action ends or stops the host and that can be
/// caught. SIGINT and SIGQUIT are not here: umview ignores them while a
/// view runs, like a shell waiting for its foreground job.
const GUARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSTKFLT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// Bit N set: signal N arrived and is not handled yet.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// The sender of the last arrival of each signal (0: the kernel or unknown).
static SENDER: [AtomicI32; 65] = [const { AtomicI32::new(0) }; 65];

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if !(1..=64).contains(&sig) {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, pid) = unsafe { ((*info).si_code, (*info).si_pid()) };
    // si_pid is meaningful for signals sent by a process (kill, tkill,
    // sigqueue); the terminal and the kernel send with si_code > 0.
    let sender = if code <= 0 { pid } else { 0 };
    SENDER[sig as usize].store(sender, Ordering::Relaxed);
    PENDING.fetch_or(1u64 << (sig - 1), Ordering::AcqRel);
}

/// Installs the recording handler for every guarded signal that has its
/// default action (a signal the host was started with ignored stays ignored,
/// and the programs inherit that). No `SA_RESTART`: the event loop's
/// `waitpid` returns `EINTR` so the signal is looked at at once.
pub fn install() {
    for &sig in GUARDED {
        // SAFETY: zeroed sigactions are valid; we read the current one and
        // fill a new handler and flags; the handler only touches atomics.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                continue;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The signals that arrived since the last call, with their senders.
pub fn take_pending() -> Vec<(i32, i32)> {
    let bits = PENDING.swap(0, Ordering::AcqRel);
    (1..=64)
        .filter(|s| bits & (1u64 << (s - 1)) != 0)
        .map(|s| (s, SENDER[s as usize].load(Ordering::Relaxed)))
        .collect()
}

/// Gives `sig` its default effect on the host: stop signals stop it (and it
/// goes on when continued), the others end it.
pub fn apply_default(sig: i32) {
    // SAFETY: plain signal calls on our own process.
    unsafe {
        if matches!(sig, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU) {
            libc::raise(libc::SIGSTOP);
        } else {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_sender_of_a_self_sent_signal() {
        install();
        // Sent to this very thread, so it is handled before tgkill returns.
        // SAFETY: sending a caught signal to our own thread.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                libc::gettid(),
                libc::SIGUSR2,
            )
        };
        let pending = take_pending();
        let me = std::process::id() as i32;
        assert!(pending.contains(&(libc::SIGUSR2, me)), "{pending:?}");
        assert!(take_pending().is_empty());
    }
}
