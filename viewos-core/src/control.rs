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
//! The result is the number of bytes written to `out`, or `-errno`; for
//! [`Op::MSocket`] it is the new fd ([`msocket`]: a socket of a network
//! stack chosen by path, see [`crate::stack`]).

// The client makes the raw system call.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::stack::Families;
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
    /// msocket: makes a socket with a stack chosen by path and installs
    /// it in the caller; `arg` is an [`MSocketArg`]. Unlike the other
    /// operations the result is the new fd, not a length
    /// ([`msocket`]).
    MSocket = 7,
    /// mstack: from now on the caller's process and its new children make
    /// sockets of some families with the stack at a path; `arg` is a
    /// [`SetStackArg`] ([`set_stack`]).
    SetStack = 8,
    /// Makes the calling process root again in a view with identities
    /// (`viewsudo`): every id 0, every capability. `EOPNOTSUPP` in a view
    /// without identities.
    BecomeRoot = 9,
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
            7 => Op::MSocket,
            8 => Op::SetStack,
            9 => Op::BecomeRoot,
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

/// The argument of [`Op::MSocket`]: `domain`, `kind` and `protocol` as
/// native-endian 32-bit integers, then the stack's path (no NUL; empty for
/// the caller's default stack).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MSocketArg {
    /// socket(2)'s domain.
    pub domain: i32,
    /// socket(2)'s type, with `SOCK_NONBLOCK` and `SOCK_CLOEXEC` if wanted.
    pub kind: i32,
    /// socket(2)'s protocol.
    pub protocol: i32,
    /// The path of the stack; empty for the default.
    pub path: Vec<u8>,
}

impl MSocketArg {
    /// The bytes passed to the host.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.path.len());
        for v in [self.domain, self.kind, self.protocol] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&self.path);
        out
    }

    /// The argument `raw` encodes; `EINVAL` if it is too short or the path
    /// holds a NUL.
    pub fn decode(raw: &[u8]) -> Result<MSocketArg, Errno> {
        let word = |i: usize| -> Result<i32, Errno> {
            let b = raw.get(i * 4..i * 4 + 4).ok_or(Errno::EINVAL)?;
            Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        let path = raw.get(12..).ok_or(Errno::EINVAL)?.to_vec();
        if path.contains(&0) {
            return Err(Errno::EINVAL);
        }
        Ok(MSocketArg {
            domain: word(0)?,
            kind: word(1)?,
            protocol: word(2)?,
            path,
        })
    }
}

/// The argument of [`Op::SetStack`]: the [`Families`] bits as a
/// native-endian 32-bit integer, then the stack's path (no NUL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetStackArg {
    /// The families that use the stack.
    pub families: Families,
    /// The path of the stack.
    pub path: Vec<u8>,
}

impl SetStackArg {
    /// The bytes passed to the host.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.families.bits().to_ne_bytes().to_vec();
        out.extend_from_slice(&self.path);
        out
    }

    /// The argument `raw` encodes; `EINVAL` if it is too short, names no
    /// family or an unknown one, or has an empty path or one with a NUL.
    pub fn decode(raw: &[u8]) -> Result<SetStackArg, Errno> {
        let b = raw.get(..4).ok_or(Errno::EINVAL)?;
        let bits = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let families = Families::from_bits(bits)
            .filter(|f| !f.is_empty())
            .ok_or(Errno::EINVAL)?;
        let path = raw[4..].to_vec();
        if path.is_empty() || path.contains(&0) {
            return Err(Errno::EINVAL);
        }
        Ok(SetStackArg { families, path })
    }
}

/// msocket: a socket of `domain`, `kind` (with `SOCK_NONBLOCK` and
/// `SOCK_CLOEXEC` if wanted) and `protocol` made with the stack mounted on
/// `path` (`None`: the caller's default stack, as socket(2) would use).
/// `ENOENT` when nothing is at `path`, `EINVAL` when what is there is not
/// a stack, the stack's own errno (`EAFNOSUPPORT` for a family it does not
/// have) otherwise; `ENOSYS` outside a view.
pub fn msocket(
    path: Option<&Path>,
    domain: i32,
    kind: i32,
    protocol: i32,
) -> Result<OwnedFd, Errno> {
    let arg = MSocketArg {
        domain,
        kind,
        protocol,
        path: path
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_default(),
    }
    .encode();
    // SAFETY: `arg` is a live buffer whose length is passed; no answer
    // buffer. Outside a view the kernel only answers ENOSYS.
    let r = unsafe {
        libc::syscall(
            CONTROL_SYSCALL,
            Op::MSocket as u64,
            arg.as_ptr(),
            arg.len(),
            std::ptr::null_mut::<u8>(),
            0usize,
        )
    };
    if r < 0 {
        return Err(Errno::from(std::io::Error::last_os_error()));
    }
    // SAFETY: the host installed a new fd with this number for us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// mstack: the calling process, and the children it makes from now on,
/// make sockets of `families` with the stack mounted on `path` (see
/// [`crate::stack`]). `ENOENT` when nothing is at `path`, `EINVAL` when it
/// is not a stack; `ENOSYS` outside a view.
pub fn set_stack(path: &Path, families: Families) -> Result<(), Errno> {
    let arg = SetStackArg {
        families,
        path: path.as_os_str().as_bytes().to_vec(),
    };
    request(Op::SetStack, &arg.encode()).map(|_| ())
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
            Op::MSocket,
            Op::SetStack,
            Op::BecomeRoot,
        ] {
            assert_eq!(Op::from_raw(op as u64), Some(op));
        }
        assert_eq!(Op::from_raw(99), None);
    }

    #[test]
    fn stack_arguments_round_trip() {
        let m = MSocketArg {
            domain: libc::AF_INET,
            kind: libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            protocol: 0,
            path: b"/dev/net/native".to_vec(),
        };
        assert_eq!(MSocketArg::decode(&m.encode()), Ok(m));
        assert_eq!(MSocketArg::decode(&[1, 2, 3]), Err(Errno::EINVAL));
        let mut nul = MSocketArg::decode(&[0; 12]).unwrap().encode();
        nul.push(0);
        assert_eq!(MSocketArg::decode(&nul), Err(Errno::EINVAL));
        let s = SetStackArg {
            families: Families::INET4,
            path: b"/dev/net/null".to_vec(),
        };
        assert_eq!(SetStackArg::decode(&s.encode()), Ok(s));
        assert_eq!(SetStackArg::decode(&[0, 0, 0, 0, b'/']), Err(Errno::EINVAL));
        assert_eq!(SetStackArg::decode(&1u32.to_ne_bytes()), Err(Errno::EINVAL));
        let mut bad = (1u32 << 20).to_ne_bytes().to_vec();
        bad.push(b'/');
        assert_eq!(SetStackArg::decode(&bad), Err(Errno::EINVAL));
        assert_eq!(
            msocket(None, libc::AF_INET, libc::SOCK_STREAM, 0).err(),
            Some(Errno::ENOSYS)
        );
    }
}
