//! The view's control channel ([`viewos_core::control`]): requests from
//! `um_add_service`, `um_del_service`, `um_ls_service`, `um_mov_service`,
//! `viewname`, `vuname` and `mstack` running inside the view, and
//! programs' msocket calls.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use viewos_core::control::{MSocketArg, Op, SetStackArg, MAX_ANSWER};
use viewos_core::mounts::Mount;
use viewos_core::{Errno, Opened};

use super::{Call, Context, Verdict};
use crate::memory;
use crate::served::REAL;

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
    if op == Op::MSocket {
        return msocket(ctx, call, &arg);
    }
    let out_len = (a[4] as usize).min(MAX_ANSWER);
    // Changing the view is for root (CAP_SYS_ADMIN) in a view with
    // identities, as mount is.
    let changes = !matches!(
        op,
        Op::ListServices | Op::GetName | Op::BecomeRoot | Op::MSocket | Op::SetStack
    );
    if changes && !super::sys_identity::capable(ctx, call.tid, super::sys_identity::CAP_SYS_ADMIN) {
        return Verdict::Error(Errno::EPERM);
    }
    if op == Op::BecomeRoot {
        return match &ctx.identity {
            Some(ids) => {
                ids.set(call.tid, crate::identity::Ids::root());
                Verdict::Return(0)
            }
            None => Verdict::Error(Errno::new(libc::EOPNOTSUPP)),
        };
    }
    let answer = match run(ctx, call.tid, op, &arg) {
        Ok(bytes) => bytes,
        Err(Failure::Errno(e)) => return Verdict::Error(e),
        Err(Failure::Explained(e, message)) => {
            // The message goes to the caller's buffer, NUL-terminated.
            let mut m = message.into_bytes();
            m.truncate(out_len.saturating_sub(1));
            m.push(0);
            let _ = memory::write_all(call.tid, a[3], &m);
            return Verdict::Error(e);
        }
    };
    if answer.len() > out_len {
        return Verdict::Error(Errno::new(libc::ERANGE));
    }
    match memory::write_all(call.tid, a[3], &answer) {
        Ok(()) => Verdict::Return(answer.len() as i64),
        Err(e) => Verdict::Error(e),
    }
}

/// The stack mounted on the path `raw` names (relative to `tid`'s cwd):
/// `ENOENT` when nothing is there, `EINVAL` when it is not a stack.
fn stack_at(ctx: &Context, tid: i32, raw: &[u8]) -> Result<(PathBuf, Mount), Errno> {
    let path = super::sys_mount::mount_point_of(ctx, tid, raw, true)?;
    let view = ctx.view.read();
    if let Some(m) = view.net_stack_at(&path) {
        return Ok((path, m.clone()));
    }
    let exists = match view.mounts().lookup(&path) {
        Some((m, rel)) => m.fs.lstat(&rel).is_ok(),
        None => std::fs::symlink_metadata(&path).is_ok(),
    };
    Err(if exists { Errno::EINVAL } else { Errno::ENOENT })
}

/// msocket ([`viewos_core::control::msocket`]): a socket of the stack at
/// the argument's path, or of the caller's default stack for an empty
/// one (the kernel's when none is mounted).
fn msocket(ctx: &Context, call: &Call<'_>, arg: &[u8]) -> Verdict {
    if let Some(v) = super::sys_socket::made_before(ctx, call) {
        return v;
    }
    let m = match MSocketArg::decode(arg) {
        Ok(m) => m,
        Err(e) => return Verdict::Error(e),
    };
    let stack = if m.path.is_empty() {
        match super::sys_socket::stack_for(ctx, call.tid, m.domain) {
            Some(s) => s,
            None => {
                let made = kernel_socket(&m);
                return super::sys_socket::give_socket(ctx, call, made, REAL, m.kind);
            }
        }
    } else {
        match stack_at(ctx, call.tid, &m.path) {
            Ok((_, s)) => s,
            Err(e) => return Verdict::Error(e),
        }
    };
    super::sys_socket::on_stack(ctx, call, &stack, m.domain, m.kind, m.protocol)
}

/// A socket of the kernel's own stack, made by the host for the caller.
fn kernel_socket(m: &MSocketArg) -> Result<Opened, Errno> {
    // SAFETY: socket has no memory arguments.
    let fd = unsafe { libc::socket(m.domain, m.kind | libc::SOCK_CLOEXEC, m.protocol) };
    if fd < 0 {
        return Err(Errno::from(std::io::Error::last_os_error()));
    }
    // SAFETY: a new fd we own.
    Ok(Opened::Backed(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn text(arg: &[u8]) -> Result<&str, Errno> {
    std::str::from_utf8(arg).map_err(|_| Errno::EINVAL)
}

/// A failed request: an errno, and perhaps a message for the user.
enum Failure {
    Errno(Errno),
    Explained(Errno, String),
}

impl From<Errno> for Failure {
    fn from(e: Errno) -> Failure {
        Failure::Errno(e)
    }
}

fn run(ctx: &Context, call_tid: i32, op: Op, arg: &[u8]) -> Result<Vec<u8>, Failure> {
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
            let name = name.trim();
            let service = match crate::modules::load(&ctx.modules, name, options) {
                Ok(s) => s,
                Err(crate::modules::LoadError::Unknown) => return Err(Errno::ENOENT.into()),
                Err(crate::modules::LoadError::Failed(e)) => return Err(e.into()),
                Err(e) => {
                    if ctx.log.enabled() {
                        ctx.log.line(format_args!("um_add_service {name}: {e}"));
                    }
                    return Err(Failure::Explained(Errno::new(libc::ELIBBAD), e.to_string()));
                }
            };
            let mut view = ctx.view.write();
            if view.services().any(|s| s.name() == service.name()) {
                return Err(Errno::EEXIST.into());
            }
            // The filter was made at start: a service needing system calls
            // it does not stop would see nothing.
            let hooks = service.hooked_syscalls();
            let hooks_trapped = match &ctx.hooked {
                Some(trapped) => hooks.iter().all(|nr| trapped.contains(nr)),
                None => true,
            };
            if !ctx.trapped.contains(service.interest()) || !hooks_trapped {
                return Err(Errno::new(libc::ENOTSUP).into());
            }
            view.add_service(service)?;
            if !hooks.is_empty() {
                ctx.hooks_loaded
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            Ok(Vec::new())
        }
        Op::DelService => {
            ctx.view.write().remove_service(text(arg)?)?;
            Ok(Vec::new())
        }
        Op::BecomeRoot => Err(Errno::EINVAL.into()),
        Op::MovService => {
            let spec = text(arg)?;
            let (name, pos) = spec.split_once('\0').ok_or(Errno::EINVAL)?;
            let pos: usize = pos.trim().parse().map_err(|_| Errno::EINVAL)?;
            if pos == 0 {
                return Err(Errno::EINVAL.into());
            }
            ctx.view.write().move_service(name, pos - 1)?;
            Ok(Vec::new())
        }
        Op::SetStack => {
            let s = SetStackArg::decode(arg)?;
            let (path, _) = stack_at(ctx, call_tid, &s.path)?;
            let tgid = crate::resolve::tgid_of(call_tid);
            ctx.stacks.choose(tgid, s.families, path);
            Ok(Vec::new())
        }
        // Answered before: its result is an fd.
        Op::MSocket => Err(Errno::EINVAL.into()),
    }
}
