//! System calls services hook by number ([`viewos_core::hook`]): asked
//! before the host's own handling, in the services' search order.

use viewos_core::hook::{Hooked, SyscallRequest};
use viewos_core::Errno;

use super::{Call, Context, Verdict};
use crate::memory::Tracee;

/// The answer of the first service hooking `call`'s number that answers
/// it; `None` when every one lets it go on.
pub fn dispatch(ctx: &Context, call: &Call<'_>) -> Option<Verdict> {
    let nr = call.entry.nr as i64;
    // With a filter, only the numbers it stops for hooks can be hooked:
    // the view's other trapped calls (every path call) skip the services.
    if let Some(hooked) = &ctx.hooked {
        if hooked.binary_search(&nr).is_err() {
            return None;
        }
    }
    let view = ctx.view.read();
    let memory = Tracee(call.tid);
    let request = SyscallRequest {
        nr,
        args: call.entry.args,
        tid: call.tid,
        memory: &memory,
    };
    for service in view.services() {
        if !service.hooked_syscalls().contains(&nr) {
            continue;
        }
        let answer =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| service.syscall(&request)))
                .unwrap_or(Err(Errno::EIO));
        let verdict = match answer {
            Ok(Hooked::Native) => continue,
            Ok(Hooked::Return(v)) => Verdict::Return(v),
            Err(e) => Verdict::Error(e),
        };
        if ctx.log.enabled() {
            ctx.log.line(format_args!(
                "{} syscall {nr} hooked by {} -> {verdict:?}",
                call.tid,
                service.name()
            ));
        }
        return Some(verdict);
    }
    None
}
