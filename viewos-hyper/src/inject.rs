//! Adding the fd filter to a running process.
//!
//! A process that gets its first served file's placeholder must from then
//! on stop at its fd calls ([`crate::served`]). Its own filter cannot be
//! changed, but a process can add filters, so the host makes it call
//! `seccomp(SECCOMP_SET_MODE_FILTER, TSYNC, prog)` itself:
//! 1. the open waiting at the supervisor is handed to the tracer, which
//!    interrupts the thread; the kernel withdraws the notification and
//!    prepares to restart the call (`-ERESTARTSYS`);
//! 2. at that stop ([`begin`]) the registers are saved, the program is
//!    written below the stack's red zone, and the call to restart becomes
//!    `seccomp`; the thread goes on to its syscall stops;
//! 3. at the exit of `seccomp` ([`finish`]) the saved registers come back
//!    with the instruction pointer on the `syscall` instruction again, so
//!    the open is made once more: it reaches the supervisor, which now
//!    installs the placeholder.
//!
//! `TSYNC` puts the filter in every thread of the process (they share the
//! fd table); children inherit it. The second filter holds no listener
//! (a filter chain may have only one) and uses `SECCOMP_RET_TRACE`.

use std::sync::OnceLock;

use viewos_core::Errno;

use crate::filter::Filter;
use crate::memory;
use crate::ptrace;

const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_FILTER_FLAG_TSYNC: u64 = 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u64 = 1 << 2;
/// Length of the `syscall` instruction.
const SYSCALL_INSN_LEN: u64 = 2;

/// The fd filter (built once).
pub fn fd_filter() -> &'static Filter {
    static FILTER: OnceLock<Filter> = OnceLock::new();
    FILTER.get_or_init(|| Filter::new(&crate::syscalls::fd_filter_rules()))
}

/// What an injected call is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `seccomp`: the fd filter ([`begin`]).
    FdFilter,
    /// `openat` of a program for its exec's `AT_EXECFD` ([`begin_open`]).
    ExecFd,
}

/// An injection under way in one thread.
#[derive(Clone, Copy)]
pub struct Injection {
    /// The registers at the interrupt stop, to restore.
    saved: libc::user_regs_struct,
    /// Where the call's data was written (the `struct sock_fprog`, or the
    /// path to open).
    marker: u64,
    /// What the call is for.
    pub purpose: Purpose,
    /// The call's entry stop was seen.
    pub entered: bool,
}

impl Injection {
    /// True if the syscall entry `nr` with `args` is the injected call.
    pub fn is_ours(&self, nr: u64, args: &[u64; 6]) -> bool {
        match self.purpose {
            Purpose::FdFilter => {
                nr == libc::SYS_seccomp as u64
                    && args[0] == SECCOMP_SET_MODE_FILTER
                    && args[2] == self.marker
            }
            Purpose::ExecFd => nr == libc::SYS_openat as u64 && args[1] == self.marker,
        }
    }
}

/// At the interrupt stop of thread `tid`, whose call `nr` (an exec) waits
/// to be restarted, or at the entry stop of that call (`at_entry`): turns
/// the call into `openat(AT_FDCWD, path, O_RDONLY)` (not close-on-exec:
/// the fd is for the new image). At its exit ([`restore`]) the exec is
/// made again. `None` if the call is not waiting to be restarted.
pub fn begin_open(
    tid: i32,
    nr: u64,
    path: &[u8],
    at_entry: bool,
) -> Result<Option<Injection>, Errno> {
    let esrch = |_| Errno::new(libc::ESRCH);
    let regs = ptrace::get_regs(tid).map_err(esrch)?;
    if !at_entry && !ptrace::restarting(&regs, nr) {
        return Ok(None);
    }
    // Below what an earlier rewrite of this exec put on the stack.
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
    let rsp = memory::below_earlier_rewrites(regs.rsp, &args);
    let path_at = memory::put_on_stack(tid, rsp, path)?;
    let mut call = regs;
    call.orig_rax = libc::SYS_openat as u64;
    call.rdi = libc::AT_FDCWD as i64 as u64;
    call.rsi = path_at;
    call.rdx = libc::O_RDONLY as u64;
    call.r10 = 0;
    ptrace::set_regs(tid, &call).map_err(esrch)?;
    Ok(Some(Injection {
        saved: regs,
        marker: path_at,
        purpose: Purpose::ExecFd,
        // At an entry stop the call is already entered: its exit is next.
        entered: at_entry,
    }))
}

/// At the exit stop of an injected call: puts the thread back on its
/// original call, to be made again.
pub fn restore(tid: i32, inj: &Injection) -> Result<(), Errno> {
    let mut regs = inj.saved;
    regs.rax = inj.saved.orig_rax;
    regs.rip -= SYSCALL_INSN_LEN;
    ptrace::set_regs(tid, &regs).map_err(|_| Errno::new(libc::ESRCH))
}

/// At the interrupt stop of thread `tid`, whose call `nr` waits to be
/// restarted: turns the restart into the `seccomp` call. `None` if the call
/// is not waiting to be restarted (a signal came first; it will be made
/// and handed over again).
pub fn begin(tid: i32, nr: u64) -> Result<Option<Injection>, Errno> {
    let esrch = |_| Errno::new(libc::ESRCH);
    let regs = ptrace::get_regs(tid).map_err(esrch)?;
    if !ptrace::restarting(&regs, nr) {
        return Ok(None);
    }
    let prog = fd_filter().program_bytes();
    let count = (prog.len() / 8) as u16;
    // Below the red zone: the program, then the sock_fprog pointing at it.
    let prog_at = (regs.rsp - 128 - prog.len() as u64) & !15;
    let fprog_at = (prog_at - 16) & !15;
    let mut fprog = [0u8; 16];
    fprog[..2].copy_from_slice(&count.to_ne_bytes());
    fprog[8..].copy_from_slice(&prog_at.to_ne_bytes());
    memory::write_all(tid, prog_at, &prog)?;
    memory::write_all(tid, fprog_at, &fprog)?;
    let mut call = regs;
    call.orig_rax = libc::SYS_seccomp as u64;
    call.rdi = SECCOMP_SET_MODE_FILTER;
    call.rsi = SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    call.rdx = fprog_at;
    ptrace::set_regs(tid, &call).map_err(esrch)?;
    Ok(Some(Injection {
        saved: regs,
        marker: fprog_at,
        purpose: Purpose::FdFilter,
        entered: false,
    }))
}

/// At the exit stop of the injected call: puts the thread back on its
/// original call, to be made again. Returns the call's result: `Ok` when
/// the filter is in place.
pub fn finish(tid: i32, inj: &Injection, result: i64) -> Result<(), Errno> {
    restore(tid, inj)?;
    match result {
        0 => Ok(()),
        // TSYNC names a thread that could not be synchronized.
        r if r > 0 => Err(Errno::new(libc::EAGAIN)),
        r => Err(Errno::new((-r) as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::AUDIT_ARCH_X86_64;

    #[test]
    fn the_fd_filter_traces_fd_calls_only() {
        let f = fd_filter();
        let trace = 0x7ff0_0000;
        assert_eq!(f.evaluate(AUDIT_ARCH_X86_64, libc::SYS_read as u32), trace);
        assert_eq!(
            f.evaluate(AUDIT_ARCH_X86_64, libc::SYS_getdents64 as u32),
            trace
        );
        assert_eq!(
            f.evaluate(AUDIT_ARCH_X86_64, libc::SYS_openat as u32),
            0x7fff_0000
        );
        assert_eq!(f.program_bytes().len(), f.len() * 8);
    }
}
