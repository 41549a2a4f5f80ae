//! The seccomp-bpf filter installed in the first traced process.
//!
//! The filter decides in the kernel, for each system call, whether the host
//! must see it. It is inherited over fork, clone and exec, so one filter
//! covers the whole process tree of a view:
//! - calls that do not come by the native x86_64 path (`int 0x80`, x32)
//!   fail with `ENOSYS`: they can never bypass the view;
//! - io_uring calls fail with `ENOSYS`: a ring would run file and socket
//!   operations the host never sees;
//! - the calls in the trap set stop with `SECCOMP_RET_TRACE`;
//! - everything else runs natively without any stop.
//!
//! Numbers are looked up with a binary search tree of comparisons, so the
//! cost per call grows with the logarithm of the trap set, not its size.

use std::io;

use crate::arch::{AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_uint = 1 << 2;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_uint = 1 << 3;

// Classic BPF opcodes.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;

// Offsets into struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

/// What the filter does with one syscall number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop for the host's tracer (`SECCOMP_RET_TRACE`): the call can be
    /// changed (registers rewritten) before it runs.
    Trace,
    /// Wait for the host's supervisor (`SECCOMP_RET_USER_NOTIF`): the call
    /// is answered, or let run, without a ptrace stop; about half the cost.
    Notify,
    /// Fail at once with this errno, without a stop.
    Errno(i32),
}

impl Action {
    fn ret(self) -> u32 {
        match self {
            Action::Trace => SECCOMP_RET_TRACE,
            Action::Notify => SECCOMP_RET_USER_NOTIF,
            Action::Errno(e) => SECCOMP_RET_ERRNO | (e as u32 & 0xffff),
        }
    }
}

/// A compiled filter program.
#[derive(Clone, Debug)]
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    notifies: bool,
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Syscalls that must never run in a view: they are answered `ENOSYS` by
/// the filter itself.
pub fn refused_syscalls() -> Vec<(u32, Action)> {
    [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
    .iter()
    .map(|&nr| (nr as u32, Action::Errno(libc::ENOSYS)))
    .collect()
}

impl Filter {
    /// Builds a filter that applies `rules` (syscall number and action) and
    /// allows every other native call.
    pub fn new(rules: &[(u32, Action)]) -> Filter {
        let notifies = rules.iter().any(|r| r.1 == Action::Notify);
        let mut rules: Vec<(u32, Action)> = rules.to_vec();
        rules.sort_by_key(|r| r.0);
        rules.dedup_by_key(|r| r.0);
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let mut prog = vec![
            stmt(BPF_LD_W_ABS, OFF_ARCH),
            // Not x86_64: refuse.
            jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
            stmt(BPF_RET_K, enosys),
            stmt(BPF_LD_W_ABS, OFF_NR),
            // x32 (and any number with that bit or above): refuse.
            jump(BPF_JGE_K, X32_SYSCALL_BIT as u32, 0, 1),
            stmt(BPF_RET_K, enosys),
        ];
        // read (0) and write (1) are by far the most frequent calls: when
        // neither is trapped they leave before the tree.
        if rules.first().map_or(true, |r| r.0 >= 2) {
            prog.push(jump(BPF_JGE_K, 2, 1, 0));
            prog.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        }
        emit_tree(&rules, &mut prog);
        Filter { prog, notifies }
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.prog.len()
    }

    /// True if the program is empty (never: it always checks the ABI).
    pub fn is_empty(&self) -> bool {
        self.prog.is_empty()
    }

    /// Runs the program on a syscall the way the kernel would, for tests and
    /// for the debug log: returns the raw `SECCOMP_RET_*` value.
    pub fn evaluate(&self, arch: u32, nr: u32) -> u32 {
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        while pc < self.prog.len() {
            let ins = self.prog[pc];
            pc += 1;
            match ins.code {
                BPF_LD_W_ABS => acc = if ins.k == OFF_ARCH { arch } else { nr },
                BPF_JEQ_K => pc += if acc == ins.k { ins.jt } else { ins.jf } as usize,
                BPF_JGE_K => pc += if acc >= ins.k { ins.jt } else { ins.jf } as usize,
                BPF_JA => pc += ins.k as usize,
                BPF_RET_K => return ins.k,
                _ => unreachable!("the builder emits no other opcode"),
            }
        }
        unreachable!("every path of the program ends in a return")
    }

    /// The instructions as bytes (`struct sock_filter` array), to copy into
    /// another process.
    pub fn program_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prog.len() * 8);
        for ins in &self.prog {
            out.extend_from_slice(&ins.code.to_ne_bytes());
            out.push(ins.jt);
            out.push(ins.jf);
            out.extend_from_slice(&ins.k.to_ne_bytes());
        }
        out
    }

    /// True if some rule waits for the supervisor: installing the filter
    /// then creates a notification listener.
    pub fn notifies(&self) -> bool {
        self.notifies
    }

    /// Installs the filter in the calling thread (to be inherited by its
    /// children). Safe to call between fork and exec: it allocates nothing.
    /// Returns the notification listener's fd when [`Filter::notifies`].
    ///
    /// Without `CAP_SYS_ADMIN` the kernel demands `no_new_privs`; it is set
    /// only then (a traced process gains no privilege from set-user-ID
    /// programs anyway).
    pub fn install(&self) -> io::Result<Option<i32>> {
        let prog = libc::sock_fprog {
            len: self.prog.len() as u16,
            filter: self.prog.as_ptr() as *mut libc::sock_filter,
        };
        let attempt = |flags: libc::c_uint| -> libc::c_long {
            // SAFETY: `prog` points at our live instruction vector; the kernel
            // copies it during the call.
            unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    SECCOMP_SET_MODE_FILTER,
                    flags,
                    &prog as *const libc::sock_fprog,
                )
            }
        };
        let listener = if self.notifies {
            SECCOMP_FILTER_FLAG_NEW_LISTENER
        } else {
            0
        };
        let result = |ret: libc::c_long| (ret > 0).then_some(ret as i32);
        let mut need_nnp = false;
        for round in 0..2 {
            if need_nnp {
                // SAFETY: prctl with integer arguments only.
                if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let ret = attempt(SECCOMP_FILTER_FLAG_SPEC_ALLOW | listener);
            if ret >= 0 {
                return Ok(result(ret));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                // Older kernels without SPEC_ALLOW.
                Some(libc::EINVAL) => {
                    let ret = attempt(listener);
                    if ret >= 0 {
                        return Ok(result(ret));
                    }
                    return Err(io::Error::last_os_error());
                }
                Some(libc::EACCES) if round == 0 => need_nnp = true,
                _ => return Err(err),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EACCES))
    }
}

/// Emits a binary search over the sorted `rules`; every leaf ends in its
/// own return instructions so no short jump is ever out of range.
fn emit_tree(rules: &[(u32, Action)], prog: &mut Vec<libc::sock_filter>) {
    if rules.len() <= 4 {
        for &(nr, action) in rules {
            prog.push(jump(BPF_JEQ_K, nr, 0, 1));
            prog.push(stmt(BPF_RET_K, action.ret()));
        }
        prog.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        return;
    }
    let mid = rules.len() / 2;
    let (left, right) = rules.split_at(mid);
    // if nr >= right[0] goto right; else fall into left.
    prog.push(jump(BPF_JGE_K, right[0].0, 0, 1));
    let ja_at = prog.len();
    prog.push(stmt(BPF_JA, 0));
    emit_tree(left, prog);
    prog[ja_at].k = (prog.len() - ja_at - 1) as u32;
    emit_tree(right, prog);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::AUDIT_ARCH_I386;

    #[test]
    fn traps_exactly_the_rules() {
        let traced: Vec<u32> = (0..300).filter(|n| n % 7 == 3).collect();
        let mut rules: Vec<(u32, Action)> = traced.iter().map(|&n| (n, Action::Trace)).collect();
        rules.extend(refused_syscalls());
        let f = Filter::new(&rules);
        for nr in 0..460u32 {
            let got = f.evaluate(AUDIT_ARCH_X86_64, nr);
            let want = if let Some(r) = rules.iter().find(|r| r.0 == nr) {
                r.1.ret()
            } else {
                SECCOMP_RET_ALLOW
            };
            assert_eq!(got, want, "syscall {nr}");
        }
    }

    #[test]
    fn foreign_abis_are_refused() {
        let f = Filter::new(&[(59, Action::Trace)]);
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(f.evaluate(AUDIT_ARCH_I386, 11), enosys);
        assert_eq!(f.evaluate(AUDIT_ARCH_X86_64, 0x4000_0000 | 59), enosys);
        assert_eq!(f.evaluate(AUDIT_ARCH_X86_64, u32::MAX), enosys);
        assert_eq!(f.evaluate(AUDIT_ARCH_X86_64, 59), SECCOMP_RET_TRACE);
        assert_eq!(f.evaluate(AUDIT_ARCH_X86_64, 0), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn io_uring_is_refused() {
        let f = Filter::new(&refused_syscalls());
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(
            f.evaluate(AUDIT_ARCH_X86_64, libc::SYS_io_uring_setup as u32),
            enosys
        );
    }

    #[test]
    fn empty_rule_set_allows_native_calls() {
        let f = Filter::new(&[]);
        assert_eq!(f.evaluate(AUDIT_ARCH_X86_64, 1), SECCOMP_RET_ALLOW);
        assert!(!f.is_empty());
    }
}
