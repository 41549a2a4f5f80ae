//! The in-view control protocol: how a program inside a view talks to its
//! host (`um_add_service`, `um_ls_service`, `viewname`, ...).
//!
//! The channel is a system call number Linux does not use,
//! [`CONTROL_SYSCALL`]. The host's seccomp filter sends it to the host, so
//! only processes of a view reach a host, and each reaches its own; outside
//! any view the kernel answers `ENOSYS`, which the client functions report
//! as [`Errno::ENOSYS`] (the commands print `not inside a view`).
//!
//! A request is `syscall(CONTROL_SYSCALL, op, arg, arg_len, out, out_len)`:
//! `arg` is the operation's argument bytes, `out` a buffer for its answer.
//! The result is the number of bytes written to `out`, or `-errno`.

// The client makes the raw system call.
#![allow(unsafe_code)]

use crate::Errno;

/// The system call number of the control channel (no Linux system call has
/// it; x86_64 numbers end well below).
pub const CONTROL_SYSCALL: i64 = 0x7_1e05;

/// Control operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    /// The loaded services, one `name: description` line each, in search
    /// order.
    ListServices = 1,
    /// The view's name.
    GetName = 2,
    /// Sets the view's name to `arg`.
    SetName = 3,
    /// Loads the module `arg` (`NAME[,OPTIONS]`) at the end of the search
    /// order.
    AddService = 4,
    /// Unloads the service named `arg` (`EBUSY` while it has mounts).
    DelService = 5,
    /// Moves a service in the search order: `arg` is `NAME\0POSITION`
    /// (1 is first; past the end means last).
    MovService = 6,
    /// Makes the calling process root again in a view with identities
    /// (`viewsudo`): every id 0, every capability. `EOPNOTSUPP` in a view
    /// without identities.
    BecomeRoot = 7,
}

impl Op {
    /// The operation with number `n`.
    pub fn from_raw(n: u64) -> Option<Op> {
        Some(match n {
            1 => Op::ListServices,
            2 => Op::GetName,
            3 => Op::SetName,
            4 => Op::AddService,
            5 => Op::DelService,
            6 => Op::MovService,
            7 => Op::BecomeRoot,
            _ => return None,
        })
    }
}

/// The largest answer the host gives.
pub const MAX_ANSWER: usize = 64 * 1024;

/// Makes one control request; the answer's bytes.
pub fn request(op: Op, arg: &[u8]) -> Result<Vec<u8>, Errno> {
    request_explained(op, arg).map_err(|(e, _)| e)
}

/// [`request`], with the host's explanation of a failure when it gave one.
pub fn request_explained(op: Op, arg: &[u8]) -> Result<Vec<u8>, (Errno, Option<String>)> {
    let mut out = vec![0u8; MAX_ANSWER];
    // SAFETY: `arg` and `out` are live buffers whose lengths are passed;
    // outside a view the kernel only answers ENOSYS.
    let r = unsafe {
        libc::syscall(
            CONTROL_SYSCALL,
            op as u64,
            arg.as_ptr(),
            arg.len(),
            out.as_mut_ptr(),
            out.len(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        let message = out
            .iter()
            .position(|&b| b == 0)
            .filter(|&n| n > 0)
            .map(|n| String::from_utf8_lossy(&out[..n]).into_owned());
        return Err((Errno::new(e), message));
    }
    out.truncate(r as usize);
    Ok(out)
}

/// Runs a control request for a command line tool: prints the answer (if
/// `print`) and maps failures to a message and exit status 1
/// (`not inside a view` outside any view).
pub fn command(tool: &str, op: Op, arg: &[u8], print: bool) -> std::process::ExitCode {
    command_explained(tool, op, arg, print, |_| None)
}

/// [`command`], with `explain` giving a tool's own wording for some
/// errors.
pub fn command_explained(
    tool: &str,
    op: Op,
    arg: &[u8],
    print: bool,
    explain: impl Fn(Errno) -> Option<String>,
) -> std::process::ExitCode {
    match request_explained(op, arg) {
        Ok(out) => {
            if print {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&out);
            }
            std::process::ExitCode::SUCCESS
        }
        Err((e, _)) if e == Errno::ENOSYS => {
            eprintln!("{tool}: not inside a view");
            std::process::ExitCode::from(1)
        }
        Err((_, Some(message))) => {
            eprintln!("{tool}: {message}");
            std::process::ExitCode::from(1)
        }
        Err((e, None)) => {
            match explain(e) {
                Some(why) => eprintln!("{tool}: {why}"),
                None => eprintln!("{tool}: {e}"),
            }
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_view_the_channel_is_enosys() {
        assert_eq!(request(Op::GetName, b""), Err(Errno::ENOSYS));
    }

    #[test]
    fn ops_round_trip() {
        for op in [
            Op::ListServices,
            Op::GetName,
            Op::SetName,
            Op::AddService,
            Op::DelService,
            Op::MovService,
            Op::BecomeRoot,
        ] {
            assert_eq!(Op::from_raw(op as u64), Some(op));
        }
        assert_eq!(Op::from_raw(99), None);
    }
}
