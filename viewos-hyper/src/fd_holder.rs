//! The fd holder: a small process beside the host that keeps the files
//! the host hands programs of the view by name.
//!
//! Some files reach a program as a path it opens itself: a program a mount
//! gives is exec'd through such a name, the memory copy of a served file
//! is mmap'd through one (`syscalls`, the tracer). Those names used to be
//! `/proc/HOST/fd/N`, which needs the host to be dumpable, and a dumpable
//! host is open to every process of its user: `/proc/HOST/mem`, `environ`
//! and its other fds, in views whose path calls the host does not stop (a
//! view without mounts). So the host hands such files to this holder and
//! names them `/proc/HOLDER/fd/M`, and makes itself not dumpable: the
//! kernel then keeps programs of the view out of the host whatever the
//! view traps. The holder holds nothing else (its stdio and every other
//! fd are closed), and the guards treat it as the host (signals, ptrace,
//! its `/proc` entries but `fd/M`).
//!
//! The holder is forked twice at the host's start (so it is no child of
//! the host, whose tracer waits for any child) and runs a loop of raw
//! system calls (nothing that allocates or locks): over a
//! `SOCK_SEQPACKET` pair, "keep this fd" (answered with its number in the
//! holder) and "drop number M". It ends when the host's end of the pair
//! closes, that is when the host ends, however it ends. The host drops a
//! kept file once its own fd is closed or reused (a sweep every second,
//! and before each new keep).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// A message to the holder.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Request {
    /// [`KEEP`] or [`DROP`].
    op: u32,
    /// The holder's fd to drop.
    num: i32,
}

const KEEP: u32 = 1;
const DROP: u32 = 2;

/// The running holder, as the host sees it.
struct Holder {
    pid: i32,
    sock: OwnedFd,
    /// Host fd -> (the file's device and inode, the holder's number).
    kept: Mutex<HashMap<RawFd, (u64, u64, i32)>>,
}

static HOLDER: OnceLock<Option<Holder>> = OnceLock::new();

/// Starts the holder (once) and makes the host not dumpable. Without a
/// holder (the fork failed) the host stays dumpable and names its files
/// `/proc/HOST/fd/N` as before. `UMVIEW_DUMPABLE=1` in umview's
/// environment leaves the host dumpable, so its user can watch its
/// `/proc` entries (fds) from outside, as the soak run does; that opens
/// the host to the programs of the view again.
pub fn start() {
    let holder = HOLDER.get_or_init(|| {
        let h = spawn()?;
        if std::env::var("UMVIEW_DUMPABLE").as_deref() != Ok("1") {
            // SAFETY: prctl(PR_SET_DUMPABLE) on ourselves; no memory.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        }
        std::thread::Builder::new()
            .name("fd-holder-sweep".into())
            .spawn(|| loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                sweep();
            })
            .ok()?;
        Some(h)
    });
    let _ = holder;
}

/// The holder's pid, if it runs.
pub fn pid() -> Option<i32> {
    HOLDER.get().and_then(|h| h.as_ref()).map(|h| h.pid)
}

fn spawn() -> Option<Holder> {
    let mut pair = [0i32; 2];
    // SAFETY: socketpair fills the array we own.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } != 0
    {
        return None;
    }
    // SAFETY: new fds we own.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // SAFETY: fork(2). The child and grandchild only make raw system
    // calls (no allocation, no locks) until they exit, so this is safe in
    // a process that has threads.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return None;
    }
    if child == 0 {
        // SAFETY: as above.
        unsafe {
            let holder = libc::fork();
            if holder == 0 {
                holder_main(theirs.as_raw_fd());
            }
            libc::_exit(i32::from(holder < 0));
        }
    }
    drop(theirs);
    let mut status = 0;
    // SAFETY: waitpid on our own child, into our local.
    unsafe { libc::waitpid(child, &mut status, 0) };
    // The holder's first word is its pid.
    let mut pid: i32 = 0;
    // SAFETY: recv into an i32 we own.
    let n = unsafe {
        libc::recv(
            ours.as_raw_fd(),
            (&mut pid as *mut i32).cast(),
            std::mem::size_of::<i32>(),
            0,
        )
    };
    if n != std::mem::size_of::<i32>() as isize || pid <= 0 {
        return None;
    }
    Some(Holder {
        pid,
        sock: ours,
        kept: Mutex::new(HashMap::new()),
    })
}

/// The holder's loop (in the forked grandchild; never returns).
fn holder_main(sock: RawFd) -> ! {
    // SAFETY: raw system calls on our own fds and stack buffers only.
    unsafe {
        // Keep nothing but the socket (at 3) and /dev/null as stdio, so
        // kept files get numbers above 3.
        let s = if sock == 3 { 3 } else { libc::dup2(sock, 3) };
        if s != 3 {
            libc::_exit(1);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        for fd in 0..3 {
            libc::close(fd);
            libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        }
        // The session and signals of the terminal are not ours.
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"umview-fdhold".as_ptr(), 0, 0, 0);
        let me = libc::getpid();
        libc::send(
            3,
            (&me as *const i32).cast(),
            std::mem::size_of::<i32>(),
            libc::MSG_NOSIGNAL,
        );
        loop {
            let mut req = Request::default();
            let mut cbuf = [0u64; 8];
            let mut iov = libc::iovec {
                iov_base: (&mut req as *mut Request).cast(),
                iov_len: std::mem::size_of::<Request>(),
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&cbuf);
            let n = libc::recvmsg(3, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n == 0 {
                libc::_exit(0);
            }
            if n < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                libc::_exit(0);
            }
            let mut answer: i32 = -libc::EINVAL;
            if req.op == KEEP {
                let c = libc::CMSG_FIRSTHDR(&msg);
                if !c.is_null()
                    && (*c).cmsg_level == libc::SOL_SOCKET
                    && (*c).cmsg_type == libc::SCM_RIGHTS
                {
                    let mut fd: i32 = -1;
                    std::ptr::copy_nonoverlapping(
                        libc::CMSG_DATA(c),
                        (&mut fd as *mut i32).cast::<u8>(),
                        4,
                    );
                    // Programs open it by number: not close-on-exec
                    // matters not (the holder never execs).
                    answer = fd;
                }
            } else if req.op == DROP && req.num > 3 {
                libc::close(req.num);
                answer = 0;
            }
            let reply = answer;
            libc::send(
                3,
                (&reply as *const i32).cast(),
                std::mem::size_of::<i32>(),
                libc::MSG_NOSIGNAL,
            );
        }
    }
}

/// The device and inode of `fd`'s file.
fn identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: an all-integer struct the kernel fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on an fd number; a closed one is EBADF.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

/// Sends one request (with `fd`, for KEEP) and reads the answer.
fn ask(h: &Holder, req: Request, fd: Option<RawFd>) -> Option<i32> {
    let mut req = req;
    let mut cbuf = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: (&mut req as *mut Request).cast(),
        iov_len: std::mem::size_of::<Request>(),
    };
    // SAFETY: a zeroed msghdr we fill with our buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is arithmetic.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
        // SAFETY: the control buffer is large enough for one fd.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::copy_nonoverlapping((&fd as *const i32).cast::<u8>(), libc::CMSG_DATA(c), 4);
        }
    }
    // The tracer's thread is woken by signals: calls interrupted before
    // they did anything are made again.
    let interrupted = || std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
    loop {
        // SAFETY: sendmsg reads the msghdr and buffers we own.
        if unsafe { libc::sendmsg(h.sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } >= 0 {
            break;
        }
        if !interrupted() {
            return None;
        }
    }
    let mut answer: i32 = 0;
    loop {
        // SAFETY: recv into an i32 we own.
        let n = unsafe {
            libc::recv(
                h.sock.as_raw_fd(),
                (&mut answer as *mut i32).cast(),
                std::mem::size_of::<i32>(),
                0,
            )
        };
        if n == std::mem::size_of::<i32>() as isize {
            return Some(answer);
        }
        if n >= 0 || !interrupted() {
            return None;
        }
    }
}

/// Drops the kept files whose host fd is closed or now another file.
fn sweep() {
    let Some(Some(h)) = HOLDER.get() else {
        return;
    };
    let mut kept = h.kept.lock();
    let stale: Vec<RawFd> = kept
        .iter()
        .filter(|(&fd, &(dev, ino, _))| identity(fd) != Some((dev, ino)))
        .map(|(&fd, _)| fd)
        .collect();
    for fd in stale {
        if let Some((_, _, num)) = kept.remove(&fd) {
            ask(h, Request { op: DROP, num }, None);
        }
    }
}

/// Closes the host's `fd` and, at once, the holder's copy of it (a kept
/// copy would keep the file open: a served file's placeholder would not
/// be released before the next sweep).
pub fn release(fd: OwnedFd) {
    if let Some(Some(h)) = HOLDER.get() {
        let mut kept = h.kept.lock();
        if let Some((_, _, num)) = kept.remove(&fd.as_raw_fd()) {
            ask(h, Request { op: DROP, num }, None);
        }
    }
    drop(fd);
}

/// The name a traced program opens the host's fd `fd` by: in the holder
/// (`/proc/HOLDER/fd/M`), or `/proc/HOST/fd/N` without one.
pub fn path_of(fd: &(impl AsRawFd + ?Sized)) -> String {
    let raw = fd.as_raw_fd();
    let Some(Some(h)) = HOLDER.get() else {
        return format!("/proc/{}/fd/{raw}", std::process::id());
    };
    let Some((dev, ino)) = identity(raw) else {
        return format!("/proc/{}/fd/{raw}", h.pid);
    };
    let mut kept = h.kept.lock();
    if let Some(&(d, i, num)) = kept.get(&raw) {
        if (d, i) == (dev, ino) {
            return format!("/proc/{}/fd/{num}", h.pid);
        }
        // The number was reused: the holder's old file goes.
        kept.remove(&raw);
        ask(h, Request { op: DROP, num }, None);
    }
    match ask(h, Request { op: KEEP, num: 0 }, Some(raw)) {
        Some(num) if num > 3 => {
            kept.insert(raw, (dev, ino, num));
            format!("/proc/{}/fd/{num}", h.pid)
        }
        // The holder failed: a name that opens nothing.
        _ => format!("/proc/{}/fd/-1", h.pid),
    }
}
