//! The view's control channel ([`viewos_core::control`]): requests from
//! `um_add_service`, `um_del_service`, `um_ls_service`, `um_mov_service`,
//! `viewname` and `vuname` running inside the view.

use viewos_core::control::{Op, MAX_ANSWER};
use viewos_core::Errno;

use super::{Call, Context, Verdict};
use crate::memory;

/// The longest argument accepted.
const MAX_ARG: usize = 4096;

/// Implements the control system call.
pub fn control(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let Some(op) = Op::from_raw(a[0]) else {
        return Verdict::Error(Errno::EINVAL);
    };
    let arg_len = a[2] as usize;
    if arg_len > MAX_ARG {
        return Verdict::Error(Errno::new(libc::E2BIG));
    }
    let mut arg = vec![0u8; arg_len];
    if memory::read_exact(call.tid, a[1], &mut arg).is_err() {
        return Verdict::Error(Errno::EFAULT);
    }
    let answer = match run(ctx, op, &arg) {
        Ok(bytes) => bytes,
        Err(e) => return Verdict::Error(e),
    };
    let out_len = (a[4] as usize).min(MAX_ANSWER);
    if answer.len() > out_len {
        return Verdict::Error(Errno::new(libc::ERANGE));
    }
    match memory::write_all(call.tid, a[3], &answer) {
        Ok(()) => Verdict::Return(answer.len() as i64),
        Err(e) => Verdict::Error(e),
    }
}

fn text(arg: &[u8]) -> Result<&str, Errno> {
    std::str::from_utf8(arg).map_err(|_| Errno::EINVAL)
}

fn run(ctx: &Context, op: Op, arg: &[u8]) -> Result<Vec<u8>, Errno> {
    match op {
        Op::ListServices => {
            let view = ctx.view.read();
            let mut out = String::new();
            for s in view.services() {
                out.push_str(&format!("{}: {}\n", s.name(), s.description()));
            }
            Ok(out.into_bytes())
        }
        Op::GetName => Ok(ctx.view.read().config().name.clone().into_bytes()),
        Op::SetName => {
            ctx.view.write().set_name(text(arg)?);
            Ok(Vec::new())
        }
        Op::AddService => {
            let spec = text(arg)?;
            let (name, options) = spec.split_once(',').unwrap_or((spec, ""));
            let factory = ctx.modules.get(name).ok_or(Errno::ENOENT)?;
            let service = factory(options)?;
            let mut view = ctx.view.write();
            if view.services().any(|s| s.name() == service.name()) {
                return Err(Errno::EEXIST);
            }
            // The filter was made at start: a service needing system calls
            // it does not stop would see nothing.
            if !ctx.trapped.contains(service.interest()) {
                return Err(Errno::new(libc::ENOTSUP));
            }
            view.add_service(service)?;
            Ok(Vec::new())
        }
        Op::DelService => {
            ctx.view.write().remove_service(text(arg)?)?;
            Ok(Vec::new())
        }
        Op::MovService => {
            let spec = text(arg)?;
            let (name, pos) = spec.split_once('\0').ok_or(Errno::EINVAL)?;
            let pos: usize = pos.trim().parse().map_err(|_| Errno::EINVAL)?;
            if pos == 0 {
                return Err(Errno::EINVAL);
            }
            ctx.view.write().move_service(name, pos - 1)?;
            Ok(Vec::new())
        }
    }
}
