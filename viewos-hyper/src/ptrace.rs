//! Thin, typed wrappers over the ptrace requests the host uses.
//!
//! Every function here acts on one stopped thread. A thread that dies while
//! the host talks to it makes these calls fail with `ESRCH`; callers treat
//! that as "the exit will be reported by waitpid" and move on.

use std::io;

use crate::arch::AUDIT_ARCH_X86_64;

const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;

/// `ptrace_syscall_info.op` values.
const INFO_ENTRY: u8 = 1;
const INFO_EXIT: u8 = 2;
const INFO_SECCOMP: u8 = 3;

/// The kernel's `struct ptrace_syscall_info` (linux/ptrace.h).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawSyscallInfo {
    op: u8,
    pad: [u8; 3],
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    /// `entry`/`seccomp`: nr, args[6], (ret_data); `exit`: rval, is_error.
    data: [u64; 8],
}

/// Where in its syscall a thread is stopped, with what the kernel reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallStop {
    /// At entry (seccomp stop or syscall-entry stop): the call is about to
    /// run and can still be changed or skipped.
    Entry(SyscallEntry),
    /// At exit: the call has run and returned `rval` (negative errno on
    /// error).
    Exit {
        /// The value the call returns.
        rval: i64,
    },
    /// Not in a syscall stop.
    None,
}

/// A syscall at entry: number, arguments and the ABI it came by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallEntry {
    /// `AUDIT_ARCH_*` of the entry path.
    pub arch: u32,
    /// The syscall number as the thread passed it.
    pub nr: u64,
    /// The six raw arguments.
    pub args: [u64; 6],
    /// The thread's stack pointer.
    pub stack_pointer: u64,
}

impl SyscallEntry {
    /// True for a native x86_64 call (not `int 0x80`, not x32).
    pub fn is_native_abi(&self) -> bool {
        self.arch == AUDIT_ARCH_X86_64 && self.nr & crate::arch::X32_SYSCALL_BIT == 0
    }
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Reads what `tid` is doing in its current syscall stop.
pub fn syscall_info(tid: i32) -> io::Result<SyscallStop> {
    let mut info = RawSyscallInfo {
        op: 0,
        pad: [0; 3],
        arch: 0,
        instruction_pointer: 0,
        stack_pointer: 0,
        data: [0; 8],
    };
    // SAFETY: PTRACE_GET_SYSCALL_INFO writes at most `size` bytes into `info`,
    // which is a properly sized and aligned repr(C) buffer we own.
    let ret = unsafe {
        libc::ptrace(
            PTRACE_GET_SYSCALL_INFO,
            tid,
            std::mem::size_of::<RawSyscallInfo>(),
            &mut info as *mut RawSyscallInfo,
        )
    };
    check(ret)?;
    Ok(match info.op {
        INFO_ENTRY | INFO_SECCOMP => SyscallStop::Entry(SyscallEntry {
            arch: info.arch,
            nr: info.data[0],
            args: [
                info.data[1],
                info.data[2],
                info.data[3],
                info.data[4],
                info.data[5],
                info.data[6],
            ],
            stack_pointer: info.stack_pointer,
        }),
        INFO_EXIT => SyscallStop::Exit {
            rval: info.data[0] as i64,
        },
        _ => SyscallStop::None,
    })
}

/// The kernel's "make the call again" code, which its signal code turns
/// into a restart, or `EINTR` after a handler without `SA_RESTART`.
pub const ERESTARTSYS: i64 = 512;

/// True if `regs` are those of a thread whose call `nr` was interrupted
/// and is about to be made again (`-ERESTARTSYS`); false if it was not
/// (a signal came first).
pub fn restarting(regs: &libc::user_regs_struct, nr: u64) -> bool {
    regs.rax as i64 == -ERESTARTSYS && regs.orig_rax == nr
}

/// Reads all general registers of `tid`.
pub fn get_regs(tid: i32) -> io::Result<libc::user_regs_struct> {
    let mut regs = std::mem::MaybeUninit::<libc::user_regs_struct>::zeroed();
    // SAFETY: PTRACE_GETREGS fills a user_regs_struct; the buffer is ours and
    // zero-initialized, so it is valid even if the kernel writes less.
    let ret = unsafe { libc::ptrace(libc::PTRACE_GETREGS, tid, 0, regs.as_mut_ptr()) };
    check(ret)?;
    // SAFETY: zeroed memory is a valid user_regs_struct (plain integers).
    Ok(unsafe { regs.assume_init() })
}

/// Writes all general registers of `tid`.
pub fn set_regs(tid: i32, regs: &libc::user_regs_struct) -> io::Result<()> {
    // SAFETY: PTRACE_SETREGS only reads a user_regs_struct from our memory.
    let ret = unsafe { libc::ptrace(libc::PTRACE_SETREGS, tid, 0, regs as *const _) };
    check(ret).map(drop)
}

/// Makes the syscall `tid` is entering not run; it returns `value` instead.
/// Valid at a seccomp stop (no exit stop follows) and at a syscall-entry stop
/// (the exit stop still comes, see [`set_return`]).
pub fn skip_syscall(tid: i32, value: i64) -> io::Result<()> {
    let mut regs = get_regs(tid)?;
    regs.orig_rax = u64::MAX;
    regs.rax = value as u64;
    set_regs(tid, &regs)
}

/// Sets the value the syscall `tid` is leaving returns (exit stop).
pub fn set_return(tid: i32, value: i64) -> io::Result<()> {
    let mut regs = get_regs(tid)?;
    regs.rax = value as u64;
    set_regs(tid, &regs)
}

/// The event message of the last `PTRACE_EVENT_*` stop (new pid, former
/// tid, seccomp data).
pub fn event_msg(tid: i32) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: PTRACE_GETEVENTMSG writes one unsigned long into `msg`.
    let ret = unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, tid, 0, &mut msg as *mut _) };
    check(ret)?;
    Ok(msg as u64)
}

/// Resumes `tid`, delivering `sig` (0 for none). With `trace_syscalls` the
/// thread stops again at its next syscall entry or exit (`PTRACE_SYSCALL`),
/// otherwise only at the next seccomp trap, event or signal (`PTRACE_CONT`).
pub fn resume(tid: i32, sig: i32, trace_syscalls: bool) -> io::Result<()> {
    let req = if trace_syscalls {
        libc::PTRACE_SYSCALL
    } else {
        libc::PTRACE_CONT
    };
    // SAFETY: resuming requests take no pointers; `sig` is passed by value.
    let ret = unsafe { libc::ptrace(req, tid, 0, sig as libc::c_long) };
    check(ret).map(drop)
}

/// Stops a running thread (`PTRACE_INTERRUPT`): it reports
/// `PTRACE_EVENT_STOP`.
pub fn interrupt(tid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_INTERRUPT takes no pointers.
    let ret = unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) };
    check(ret).map(drop)
}

/// Lets a thread in group-stop wait for SIGCONT while staying traced.
pub fn listen(tid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_LISTEN takes no pointers.
    let ret = unsafe { libc::ptrace(libc::PTRACE_LISTEN, tid, 0, 0) };
    check(ret).map(drop)
}

/// Attaches to `pid` without stopping it (`PTRACE_SEIZE`) with `options`.
pub fn seize(pid: i32, options: libc::c_int) -> io::Result<()> {
    // SAFETY: PTRACE_SEIZE takes the options by value, no pointers.
    let ret = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, options as libc::c_long) };
    check(ret).map(drop)
}

/// The options every traced thread carries: events for fork/vfork/clone/
/// exec, seccomp stops, syscall stops marked with 0x80, and death of every
/// traced thread when the host dies (`PTRACE_O_EXITKILL`).
pub const TRACE_OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_EXITKILL;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_info_layout_matches_kernel() {
        // 24 bytes of header + the union (seccomp variant: 8 + 48 + 4,
        // padded to 64).
        assert_eq!(std::mem::size_of::<RawSyscallInfo>(), 88);
    }

    #[test]
    fn native_abi_detection() {
        let mut e = SyscallEntry {
            arch: AUDIT_ARCH_X86_64,
            nr: 0,
            args: [0; 6],
            stack_pointer: 0,
        };
        assert!(e.is_native_abi());
        e.nr = crate::arch::X32_SYSCALL_BIT | 1;
        assert!(!e.is_native_abi());
        e.nr = 1;
        e.arch = crate::arch::AUDIT_ARCH_I386;
        assert!(!e.is_native_abi());
    }
}
