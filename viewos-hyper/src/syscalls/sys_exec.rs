//! Program execution: execve(2), execveat(2).
//!
//! The kernel runs the exec; the host follows it with `PTRACE_EVENT_EXEC`
//! (see the tracer). Services that provide executables or interpreters hook
//! in here.

use super::{Call, Context, Verdict};
use crate::memory;

/// Implements execve(2): runs natively; the path goes to the debug log.
pub fn execve(ctx: &Context, call: &Call<'_>) -> Verdict {
    log_path(ctx, call, call.entry.args[0]);
    Verdict::Native
}

/// Implements execveat(2): runs natively; the path goes to the debug log.
pub fn execveat(ctx: &Context, call: &Call<'_>) -> Verdict {
    log_path(ctx, call, call.entry.args[1]);
    Verdict::Native
}

fn log_path(ctx: &Context, call: &Call<'_>, addr: u64) {
    if ctx.log.enabled() {
        match memory::read_path(call.tid, addr) {
            Ok(p) => ctx.log.line(format_args!(
                "{} exec attempt {:?}",
                call.tid,
                String::from_utf8_lossy(&p)
            )),
            Err(e) => ctx.log.line(format_args!(
                "{} exec attempt <bad path: {:?}>",
                call.tid, e
            )),
        }
    }
}
