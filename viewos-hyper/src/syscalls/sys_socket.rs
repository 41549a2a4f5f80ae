//! Sockets of network stacks mounted in the view
//! ([`viewos_core::stack`]: `/dev/net/default`, or the stack `mstack`
//! chose for the process) and of families a service claims. A stack or
//! service may hand over a kernel socket, which becomes the program's fd
//! (every later call runs natively). Otherwise socket(2) makes a served file
//! ([`crate::served`]) whose handle is the service's socket, and the
//! socket calls on its fd (bind, connect, listen, accept, send and receive
//! in all their forms, shutdown, names and options) go to that handle
//! ([`viewos_core::socket`]).
//!
//! Calls that wait (accept, connect, receiving, sending with full buffers)
//! sleep in the kernel until the socket is ready, unless the fd is
//! non-blocking or `MSG_DONTWAIT` is given ([`on_served_waiting`]).
//! Control messages are not carried: sending one fails with `EOPNOTSUPP`,
//! and none are received.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use viewos_core::handle::{READABLE, WRITABLE};
use viewos_core::mounts::Mount;
use viewos_core::real_socket::{RealSocket, SocketWatcher};
use viewos_core::socket::Received;
use viewos_core::stack::{Families, DEFAULT_STACK};
use viewos_core::{Errno, Opened, SocketHandle};

use super::sys_fd::{broken_pipe, gather, on_served_waiting, read_iov, scatter, MAX_TRANSFER};
use super::sys_open::served;
use super::{Call, Context, Verdict};
use crate::memory;
use crate::served::{socket_mount, ServedFile};

/// `struct sockaddr_storage`: the longest address.
const ADDR_MAX: u64 = 128;
/// The kernel's limit on messages per sendmmsg/recvmmsg.
const UIO_MAXIOV: u64 = 1024;
/// Size of `struct msghdr` and `struct mmsghdr`.
const MSGHDR: usize = 56;
const MMSGHDR: u64 = 64;
/// Longest option value passed through.
const OPT_MAX: usize = 64 << 10;
const SOCK_TYPE_MASK: i32 = 0xf;
const SOCK_FLAGS: i32 = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
/// Flags the host handles itself and does not pass to the service.
const HOST_FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_CMSG_CLOEXEC;

fn enotsock() -> Errno {
    Errno::new(libc::ENOTSOCK)
}

fn socket_of(f: &ServedFile) -> Result<&dyn SocketHandle, Errno> {
    f.handle.as_socket().ok_or_else(enotsock)
}

/// Runs `op` on the socket argument 0 names (see [`on_served_waiting`]).
fn on_socket(
    ctx: &Context,
    call: &Call<'_>,
    events: u32,
    dontwait: bool,
    mut op: impl FnMut(&ServedFile, &dyn SocketHandle) -> Result<i64, Errno>,
) -> Verdict {
    on_served_waiting(ctx, call, 0, events, dontwait, |f| op(f, socket_of(f)?))
}

/// An address the program passes: `len` bytes at `addr`.
fn read_addr(tid: i32, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    if len as i32 as i64 != len as i64 || len > ADDR_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len as usize];
    memory::read_exact(tid, addr, &mut raw)?;
    Ok(raw)
}

/// Gives the program an address: as much of `raw` as fits in the buffer
/// at `addr` whose length is at `len_at`, and the full length there.
fn write_addr(tid: i32, addr: u64, len_at: u64, raw: &[u8]) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    let mut b = [0u8; 4];
    memory::read_exact(tid, len_at, &mut b)?;
    let room = i32::from_ne_bytes(b);
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    memory::write_all(tid, addr, &raw[..raw.len().min(room as usize)])?;
    memory::write_all(tid, len_at, &(raw.len() as u32).to_ne_bytes())
}

/// Implements socket(2): with the calling process's network stack for
/// the families stacks take ([`viewos_core::stack`]), else with the
/// service that claims the family, else natively.
pub fn socket(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let (domain, kind, protocol) = (a[0] as i32, a[1] as i32, a[2] as i32);
    if let Some(v) = made_before(ctx, call) {
        return v;
    }
    if let Some(stack) = stack_for(ctx, call.tid, domain) {
        return on_stack(ctx, call, &stack, domain, kind, protocol);
    }
    let view = ctx.view.read();
    let Some(service) = view.socket_service(domain) else {
        return Verdict::Native;
    };
    if kind & !(SOCK_TYPE_MASK | SOCK_FLAGS) != 0 {
        return Verdict::Error(Errno::EINVAL);
    }
    let name = service.name().to_string();
    let made = service.socket(domain, kind & SOCK_TYPE_MASK, protocol);
    drop(view);
    give_socket(ctx, call, made, &name, kind)
}

/// The same call made again after the fd filter was added (a served
/// socket's placeholder waits for it): the socket made the first time.
pub(super) fn made_before(ctx: &Context, call: &Call<'_>) -> Option<Verdict> {
    if ctx.served.is_empty() {
        return None;
    }
    super::sys_open::parked(ctx, call)
}

/// The stack socket(2) of `domain` uses in thread `tid`'s process: the
/// one its process chose (`mstack`) if still mounted, else the view's
/// default; `None` for the kernel's.
pub(super) fn stack_for(ctx: &Context, tid: i32, domain: i32) -> Option<Mount> {
    let family = Families::of_domain(domain)?;
    let chosen = ctx.stacks.path_for(tid, family);
    let view = ctx.view.read();
    if view.mounts().is_empty() {
        return None;
    }
    chosen
        .and_then(|p| view.net_stack_at(&p))
        .or_else(|| view.net_stack_at(Path::new(DEFAULT_STACK)))
        .cloned()
}

/// Makes a socket with the stack mounted as `stack` and gives it to the
/// caller (socket(2), msocket).
pub(super) fn on_stack(
    ctx: &Context,
    call: &Call<'_>,
    stack: &Mount,
    domain: i32,
    kind: i32,
    protocol: i32,
) -> Verdict {
    let Some(net) = stack.fs.net_stack() else {
        return Verdict::Error(Errno::EINVAL);
    };
    if kind & !(SOCK_TYPE_MASK | SOCK_FLAGS) != 0 {
        return Verdict::Error(Errno::EINVAL);
    }
    let made = net.socket(domain, kind & SOCK_TYPE_MASK, protocol);
    give_socket(ctx, call, made, &stack.service, kind)
}

/// Gives the caller the socket a service or stack made: a kernel socket
/// becomes its fd (with the `SOCK_NONBLOCK` and `SOCK_CLOEXEC` of `kind`),
/// a served one a placeholder.
pub(super) fn give_socket(
    ctx: &Context,
    call: &Call<'_>,
    made: Result<Opened, Errno>,
    service: &str,
    kind: i32,
) -> Verdict {
    let made = match made {
        // Without seccomp every call stops at the tracer, which can only
        // hand over files it can reopen by /proc path: sockets cannot be,
        // so they are served (that mode is for debugging, not speed).
        Ok(Opened::Backed(fd)) if !ctx.fd_filter_needed => served_kernel_socket(fd),
        other => other,
    };
    match made {
        Ok(Opened::Backed(fd)) => match set_nonblocking(&fd, kind & libc::SOCK_NONBLOCK != 0) {
            Ok(()) => Verdict::InstallFd {
                fd,
                cloexec: kind & libc::SOCK_CLOEXEC != 0,
            },
            Err(e) => Verdict::Error(e),
        },
        Ok(Opened::Served(handle)) => served(
            ctx,
            call,
            socket_mount(service),
            PathBuf::new(),
            handle,
            open_flags(kind),
        ),
        // A kind of file this host cannot hand over.
        Ok(_) => Verdict::Error(Errno::ENOSYS),
        Err(e) => Verdict::Error(e),
    }
}

/// A kernel socket served by the host ([`RealSocket`]).
fn served_kernel_socket(fd: OwnedFd) -> Result<Opened, Errno> {
    static WATCHER: OnceLock<Arc<SocketWatcher>> = OnceLock::new();
    let watcher = match WATCHER.get() {
        Some(w) => w.clone(),
        None => {
            let w = SocketWatcher::start()?;
            WATCHER.get_or_init(|| w).clone()
        }
    };
    Ok(Opened::Served(Box::new(RealSocket::from_fd(fd, watcher)?)))
}

/// Sets or clears `O_NONBLOCK` on a kernel socket (its file description
/// is the one the program gets).
pub(super) fn set_nonblocking(fd: &OwnedFd, on: bool) -> Result<(), Errno> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(Errno::from(std::io::Error::last_os_error()));
    }
    let want = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if want != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, want) } < 0 {
        return Err(Errno::from(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The open flags of a socket made with `SOCK_*` flags.
fn open_flags(kind: i32) -> i32 {
    let mut flags = libc::O_RDWR;
    if kind & libc::SOCK_NONBLOCK != 0 {
        flags |= libc::O_NONBLOCK;
    }
    if kind & libc::SOCK_CLOEXEC != 0 {
        flags |= libc::O_CLOEXEC;
    }
    flags
}

/// Implements socketpair(2): the kernel's, unless a service claims the
/// family (then `EOPNOTSUPP`, what the IP families answer).
pub fn socketpair(ctx: &Context, call: &Call<'_>) -> Verdict {
    if ctx
        .view
        .read()
        .socket_service(call.entry.args[0] as i32)
        .is_some()
    {
        return Verdict::Error(Errno::new(libc::EOPNOTSUPP));
    }
    Verdict::Native
}

/// Implements bind(2).
pub fn bind(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_socket(ctx, call, 0, true, |_, s| {
        s.bind(&read_addr(call.tid, a[1], a[2])?).map(|_| 0)
    })
}

/// Implements connect(2). A blocking connect waits until the connection
/// is made or refused.
pub fn connect(ctx: &Context, call: &Call<'_>) -> Verdict {
    use std::sync::atomic::Ordering;
    let a = call.entry.args;
    on_socket(ctx, call, WRITABLE, false, |f, s| {
        if f.connecting.load(Ordering::Acquire) {
            // Woken (or restarted after a signal) during a blocking connect.
            if f.handle.poll() & WRITABLE == 0 {
                return Err(Errno::new(libc::EAGAIN));
            }
            f.connecting.store(false, Ordering::Release);
            return match s.take_error()? {
                None => Ok(0),
                Some(e) => Err(e),
            };
        }
        match s.connect(&read_addr(call.tid, a[1], a[2])?) {
            Err(e) if e == Errno::new(libc::EINPROGRESS) && f.blocking() => {
                f.connecting.store(true, Ordering::Release);
                Err(Errno::new(libc::EAGAIN))
            }
            r => r.map(|_| 0),
        }
    })
}

/// Implements listen(2).
pub fn listen(ctx: &Context, call: &Call<'_>) -> Verdict {
    let backlog = call.entry.args[1] as i32;
    on_socket(ctx, call, 0, true, |_, s| s.listen(backlog).map(|_| 0))
}

/// Implements accept(2) and accept4(2): the new connection is a served
/// socket of the same service.
pub fn accept(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = if call.entry.nr == libc::SYS_accept4 as u64 {
        a[3] as i32
    } else {
        0
    };
    if flags & !SOCK_FLAGS != 0 {
        return Verdict::Error(Errno::EINVAL);
    }
    let mut accepted = None;
    let v = on_socket(ctx, call, READABLE, false, |f, s| {
        let (handle, peer) = s.accept()?;
        accepted = Some((handle, peer, f.mount.service.clone()));
        Ok(0)
    });
    let Some((handle, peer, service)) = accepted else {
        return v;
    };
    if let Err(e) = write_addr(call.tid, a[1], a[2], &peer) {
        // As the kernel does: the connection is lost.
        return Verdict::Error(e);
    }
    let placeholder = match ctx.served.create(
        handle,
        socket_mount(&service),
        PathBuf::new(),
        open_flags(flags),
    ) {
        Ok(p) => p,
        Err(e) => return Verdict::Error(e),
    };
    Verdict::InstallFd {
        fd: placeholder.fd,
        cloexec: flags & libc::SOCK_CLOEXEC != 0,
    }
}

/// Sends `data` with the program's `flags`.
fn send_on(s: &dyn SocketHandle, data: &[u8], flags: i32, to: Option<&[u8]>) -> Result<i64, Errno> {
    s.send(data, flags & !HOST_FLAGS, to).map(|n| n as i64)
}

/// The outcome of a send: `SIGPIPE` for a broken connection unless
/// `MSG_NOSIGNAL`.
fn sending(call: &Call<'_>, flags: i32, v: Verdict) -> Verdict {
    if flags & libc::MSG_NOSIGNAL == 0 {
        broken_pipe(call.tid, v)
    } else {
        v
    }
}

/// The error for a send whose data could not be read (`e`): a stream
/// socket that cannot send reports that first, as the kernel checks the
/// connection before it copies the data.
fn state_first(s: &dyn SocketHandle, e: Errno) -> Errno {
    if viewos_core::socket::is_stream(s) {
        if let Err(state) = s.send(&[], 0, None) {
            return state;
        }
    }
    e
}

/// Implements sendto(2) (and send(3), which is sendto without address).
pub fn sendto(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = a[3] as i32;
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    let v = on_socket(ctx, call, WRITABLE, dontwait, |_, s| {
        let data = gather(call.tid, &[(a[1], a[2])]).map_err(|e| state_first(s, e))?;
        let to = if a[4] == 0 {
            None
        } else {
            Some(read_addr(call.tid, a[4], a[5])?)
        };
        send_on(s, &data, flags, to.as_deref())
    });
    sending(call, flags, v)
}

/// Receives into the program's `iov` ranges; the value the call returns
/// and what was received.
fn recv_into(
    tid: i32,
    s: &dyn SocketHandle,
    iov: &[(u64, u64)],
    flags: i32,
) -> Result<(i64, Received), Errno> {
    let total = iov
        .iter()
        .map(|r| r.1 as usize)
        .sum::<usize>()
        .min(MAX_TRANSFER);
    let mut buf = vec![0u8; total];
    let r = s.recv(&mut buf, flags & !HOST_FLAGS)?;
    let n = r.len.min(total);
    scatter(tid, iov, &buf[..n])?;
    let value = if flags & libc::MSG_TRUNC != 0 {
        r.full_len
    } else {
        n
    };
    Ok((value as i64, r))
}

/// Implements recvfrom(2) (and recv(3)).
pub fn recvfrom(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = a[3] as i32;
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    on_socket(ctx, call, READABLE, dontwait, |_, s| {
        let (value, r) = recv_into(call.tid, s, &[(a[1], a[2])], flags)?;
        write_addr(call.tid, a[4], a[5], &r.from)?;
        Ok(value)
    })
}

/// A `struct msghdr` of the program's.
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: Vec<(u64, u64)>,
    control: u64,
    controllen: u64,
}

fn read_msghdr(tid: i32, at: u64) -> Result<MsgHdr, Errno> {
    let mut raw = [0u8; MSGHDR];
    memory::read_exact(tid, at, &mut raw)?;
    let u64_at = |o: usize| u64::from_ne_bytes(raw[o..o + 8].try_into().unwrap_or_default());
    let namelen = u32::from_ne_bytes(raw[8..12].try_into().unwrap_or_default());
    Ok(MsgHdr {
        name: u64_at(0),
        namelen,
        iov: read_iov(tid, u64_at(16), u64_at(24))?,
        control: u64_at(32),
        controllen: u64_at(40),
    })
}

fn sendmsg_one(tid: i32, s: &dyn SocketHandle, at: u64, flags: i32) -> Result<i64, Errno> {
    let m = read_msghdr(tid, at)?;
    if m.control != 0 && m.controllen != 0 {
        return Err(Errno::new(libc::EOPNOTSUPP));
    }
    let to = if m.name == 0 || m.namelen == 0 {
        None
    } else {
        Some(read_addr(tid, m.name, u64::from(m.namelen))?)
    };
    let data = gather(tid, &m.iov).map_err(|e| state_first(s, e))?;
    send_on(s, &data, flags, to.as_deref())
}

fn recvmsg_one(tid: i32, s: &dyn SocketHandle, at: u64, flags: i32) -> Result<i64, Errno> {
    let m = read_msghdr(tid, at)?;
    let (value, r) = recv_into(tid, s, &m.iov, flags)?;
    if m.name != 0 {
        let n = r.from.len().min(m.namelen as usize);
        memory::write_all(tid, m.name, &r.from[..n])?;
    }
    memory::write_all(tid, at + 8, &(r.from.len() as u32).to_ne_bytes())?;
    // No control messages.
    memory::write_all(tid, at + 40, &0u64.to_ne_bytes())?;
    let mut out_flags = 0i32;
    if r.full_len > r.len {
        out_flags |= libc::MSG_TRUNC;
    }
    memory::write_all(tid, at + 48, &out_flags.to_ne_bytes())?;
    Ok(value)
}

/// Implements sendmsg(2).
pub fn sendmsg(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = a[2] as i32;
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    let v = on_socket(ctx, call, WRITABLE, dontwait, |_, s| {
        sendmsg_one(call.tid, s, a[1], flags)
    });
    sending(call, flags, v)
}

/// Implements recvmsg(2).
pub fn recvmsg(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let flags = a[2] as i32;
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    on_socket(ctx, call, READABLE, dontwait, |_, s| {
        recvmsg_one(call.tid, s, a[1], flags)
    })
}

/// sendmmsg(2) and recvmmsg(2): the messages one by one, each one's
/// length in its `msg_len`. Only the first may wait; the call returns how
/// many went through once one would wait or fails.
fn many(
    ctx: &Context,
    call: &Call<'_>,
    events: u32,
    one: fn(i32, &dyn SocketHandle, u64, i32) -> Result<i64, Errno>,
) -> Verdict {
    let a = call.entry.args;
    let (vec, vlen, flags) = (a[1], a[2].min(UIO_MAXIOV), a[3] as i32);
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    let v = on_socket(ctx, call, events, dontwait, |_, s| {
        let mut done = 0u64;
        while done < vlen {
            let at = vec + done * MMSGHDR;
            match one(call.tid, s, at, flags) {
                Ok(n) => {
                    memory::write_all(call.tid, at + MSGHDR as u64, &(n as u32).to_ne_bytes())?;
                    done += 1;
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done as i64)
    });
    if events & WRITABLE != 0 {
        sending(call, flags, v)
    } else {
        v
    }
}

/// Implements sendmmsg(2).
pub fn sendmmsg(ctx: &Context, call: &Call<'_>) -> Verdict {
    many(ctx, call, WRITABLE, sendmsg_one)
}

/// Implements recvmmsg(2) (the timeout is not applied).
pub fn recvmmsg(ctx: &Context, call: &Call<'_>) -> Verdict {
    many(ctx, call, READABLE, recvmsg_one)
}

/// Implements shutdown(2).
pub fn shutdown(ctx: &Context, call: &Call<'_>) -> Verdict {
    let how = call.entry.args[1] as i32;
    on_socket(ctx, call, 0, true, |_, s| {
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        s.shutdown(how).map(|_| 0)
    })
}

/// Implements getsockname(2).
pub fn getsockname(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_socket(ctx, call, 0, true, |_, s| {
        let raw = s.local_addr()?;
        write_addr(call.tid, a[1], a[2], &raw).map(|_| 0)
    })
}

/// Implements getpeername(2).
pub fn getpeername(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_socket(ctx, call, 0, true, |_, s| {
        let raw = s.peer_addr()?;
        write_addr(call.tid, a[1], a[2], &raw).map(|_| 0)
    })
}

/// Implements setsockopt(2).
pub fn setsockopt(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_socket(ctx, call, 0, true, |_, s| {
        let len = a[4] as i32;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let mut value = vec![0u8; (len as usize).min(OPT_MAX)];
        memory::read_exact(call.tid, a[3], &mut value)?;
        s.set_option(a[1] as i32, a[2] as i32, &value).map(|_| 0)
    })
}

/// Implements getsockopt(2).
pub fn getsockopt(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    on_socket(ctx, call, 0, true, |_, s| {
        let mut b = [0u8; 4];
        memory::read_exact(call.tid, a[4], &mut b)?;
        let len = i32::from_ne_bytes(b);
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let value = s.get_option(a[1] as i32, a[2] as i32, (len as usize).min(OPT_MAX))?;
        let n = value.len().min(len as usize);
        memory::write_all(call.tid, a[3], &value[..n])?;
        memory::write_all(call.tid, a[4], &(n as u32).to_ne_bytes()).map(|_| 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_flags_become_open_flags() {
        assert_eq!(open_flags(libc::SOCK_STREAM), libc::O_RDWR);
        assert_eq!(
            open_flags(libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC
        );
    }

    #[test]
    fn the_host_keeps_its_own_flags() {
        let f = libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        assert_eq!(f & !HOST_FLAGS, libc::MSG_PEEK);
    }
}
