//! Facts about the one architecture the host supports: x86_64.
//!
//! Syscalls that arrive by another entry path (32-bit `int 0x80`, x32) are
//! never run: the seccomp filter refuses them with `ENOSYS` before they can
//! bypass the view, and the plain-ptrace path does the same.

/// `AUDIT_ARCH_X86_64`: the `arch` field of a native 64-bit syscall.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// `AUDIT_ARCH_I386`: the `arch` field of a syscall made with `int 0x80`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// Bit set in the syscall number of x32 ABI calls.
pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;

/// Size of the red zone below the stack pointer that the ABI lets a leaf
/// function use; the host never writes scratch data there.
pub const RED_ZONE: u64 = 128;
