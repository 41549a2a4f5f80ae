//! Syscall-number hooks: a service may ask to see system calls by number
//! ([`Service::hooked_syscalls`](crate::Service::hooked_syscalls)) and
//! answer them itself, for what no family of the API covers (`uname`,
//! `sethostname`, `getrandom`, ...).
//!
//! The hook sees the raw call: its number and six arguments, and the
//! caller's memory to read arguments from and write results to. It either
//! answers the call ([`Hooked::Return`], or an error) or lets it go on
//! ([`Hooked::Native`]) to the next service hooking the number, then to
//! the host's own handling, then to the kernel. Numbers the host refuses
//! outright (32-bit entry paths, `io_uring_setup`) cannot be hooked.

use crate::Errno;

/// The memory of the process making a hooked call.
pub trait CallerMemory {
    /// Reads `buf.len()` bytes at `addr`; `EFAULT` if they are not all
    /// readable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;

    /// Writes `data` at `addr`; `EFAULT` if it is not all writable.
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno>;
}

/// A hooked system call, as the program made it (x86_64 numbers).
pub struct SyscallRequest<'a> {
    /// The system call number (`libc::SYS_uname`).
    pub nr: i64,
    /// Its six raw arguments.
    pub args: [u64; 6],
    /// The calling thread's id.
    pub tid: i32,
    /// The caller's memory.
    pub memory: &'a dyn CallerMemory,
}

/// What a hook decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hooked {
    /// Not this service's business: the call goes on.
    Native,
    /// The call is answered with this return value.
    Return(i64),
}
