//! System calls the host has a stopped thread make in place of its own.
//!
//! Some answers need the program's own kernel context: mapping a served
//! file needs a real fd *in the program* for mmap. At the stop of such a
//! call the tracer runs a short [`Sequence`] of calls in the thread (open a
//! memory copy through `/proc/HOST/fd/N`, mmap it, close it again): each
//! call is set up in the registers, the `syscall` instruction made again
//! (instruction pointer moved back over it), and its result read at its
//! exit stop. At the end the registers are restored and the original call
//! returns the result of the step that answers it.
//!
//! A blocking call on a served file that cannot go on yet waits the same
//! way ([`Plan::wait`]): the thread sleeps in `pause` in the kernel, where
//! signals find it as in any blocking call, until the host interrupts it
//! (the file became ready) or a signal does; then its own call is made
//! again, after the signal's handler if one runs (`-ERESTARTSYS`: with
//! `SA_RESTART` the call is made again, otherwise it fails with `EINTR`,
//! as the kernel does for a blocking socket call).

use std::os::fd::OwnedFd;

use viewos_core::Errno;

use crate::ptrace;

/// Length of the `syscall` instruction.
const SYSCALL_INSN_LEN: u64 = 2;

/// An argument of a step.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    /// This value.
    Val(u64),
    /// The result of an earlier step.
    ResultOf(usize),
}

/// One call of a sequence.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Syscall number.
    pub nr: u64,
    /// Its arguments.
    pub args: [Arg; 6],
}

/// What the tracer asks the thread to do instead of its call.
#[derive(Debug)]
pub struct Plan {
    /// The calls, in order. A step whose `ResultOf` argument names a failed
    /// step is left out.
    pub steps: Vec<Step>,
    /// The step whose result the original call returns (an earlier step's
    /// failure is returned instead).
    pub answer: usize,
    /// A host fd the steps name, kept open until the end.
    pub hold: Option<OwnedFd>,
    /// At the end, make the thread's own call again instead of answering
    /// it (see [`Plan::wait`]).
    pub restart: bool,
    /// Called on the tracer's thread with the answer and every step's
    /// result, once the thread has the answer.
    pub done: Option<Done>,
}

/// A [`Done`]'s function: the answer, then every step's result.
pub type DoneFn = dyn FnOnce(i64, &[i64]) + Send;

/// What a [`Plan`] does with its answer ([`Plan::done`]).
pub struct Done(pub Box<DoneFn>);

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Done")
    }
}

impl Plan {
    /// Sleep until interrupted, then make the call again.
    pub fn wait() -> Plan {
        Plan {
            steps: vec![Step {
                nr: libc::SYS_pause as u64,
                args: [Arg::Val(0); 6],
            }],
            answer: 0,
            hold: None,
            restart: true,
            done: None,
        }
    }

    /// True for a [`Plan::wait`].
    pub fn is_wait(&self) -> bool {
        self.restart
    }
}

/// A sequence under way in one thread.
#[derive(Debug)]
pub struct Sequence {
    saved: libc::user_regs_struct,
    plan: Plan,
    results: Vec<i64>,
}

fn esrch(_: std::io::Error) -> Errno {
    Errno::new(libc::ESRCH)
}

impl Sequence {
    /// At the entry (or seccomp) stop of the thread's own call: turns it
    /// into the first step.
    pub fn begin(tid: i32, plan: Plan) -> Result<Sequence, Errno> {
        let saved = ptrace::get_regs(tid).map_err(esrch)?;
        let seq = Sequence {
            saved,
            plan,
            results: Vec::new(),
        };
        let mut regs = saved;
        seq.load(&mut regs, 0)?;
        regs.orig_rax = seq.plan.steps[0].nr;
        ptrace::set_regs(tid, &regs).map_err(esrch)?;
        Ok(seq)
    }

    fn arg(&self, a: Arg) -> Option<u64> {
        match a {
            Arg::Val(v) => Some(v),
            Arg::ResultOf(i) => self.results.get(i).filter(|&&r| r >= 0).map(|&r| r as u64),
        }
    }

    /// Puts step `i`'s arguments in `regs`; `EINVAL` if one is missing.
    fn load(&self, regs: &mut libc::user_regs_struct, i: usize) -> Result<(), Errno> {
        let step = self.plan.steps.get(i).ok_or(Errno::EINVAL)?;
        let mut v = [0u64; 6];
        for (slot, a) in v.iter_mut().zip(step.args) {
            *slot = self.arg(a).ok_or(Errno::EINVAL)?;
        }
        regs.rdi = v[0];
        regs.rsi = v[1];
        regs.rdx = v[2];
        regs.r10 = v[3];
        regs.r8 = v[4];
        regs.r9 = v[5];
        Ok(())
    }

    /// True while the thread waits ([`Plan::wait`]).
    pub fn is_wait(&self) -> bool {
        self.plan.is_wait()
    }

    /// At an exit stop: records the result and starts the next step that
    /// can run. Returns `true` while the sequence goes on, `false` when it
    /// is over and the thread is back on its way with the answer.
    pub fn exit_stop(&mut self, tid: i32, result: i64) -> bool {
        self.results.push(result);
        if self.plan.restart {
            // Interrupted, by the host or a signal: the kernel restarts the
            // call unless a handler without SA_RESTART runs.
            let mut regs = self.saved;
            regs.rax = (-ptrace::ERESTARTSYS) as u64;
            let _ = ptrace::set_regs(tid, &regs);
            return false;
        }
        while self.results.len() < self.plan.steps.len() {
            let i = self.results.len();
            let mut regs = self.saved;
            if self.load(&mut regs, i).is_ok() {
                regs.rax = self.plan.steps[i].nr;
                regs.orig_rax = self.plan.steps[i].nr;
                regs.rip = self.saved.rip - SYSCALL_INSN_LEN;
                if ptrace::set_regs(tid, &regs).is_ok() {
                    return true;
                }
                return false;
            }
            // An argument failed earlier: the step is left out.
            self.results.push(-(libc::EBADF as i64));
        }
        let answer = self.results[..self.plan.answer]
            .iter()
            .copied()
            .find(|&r| r < 0)
            .or_else(|| self.results.get(self.plan.answer).copied())
            .unwrap_or(-(libc::EIO as i64));
        let mut regs = self.saved;
        regs.rax = answer as u64;
        let _ = ptrace::set_regs(tid, &regs);
        if let Some(done) = self.plan.done.take() {
            (done.0)(answer, &self.results);
        }
        false
    }
}
