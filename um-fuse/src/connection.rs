//! A FUSE client connection: requests to a FUSE server and their replies,
//! over one socket that keeps message boundaries.
//!
//! The transport is an `AF_UNIX` `SOCK_SEQPACKET` socket pair ([`pair`]):
//! one message is one request or one reply, exactly as reads and writes of
//! `/dev/fuse` are, so the server's end is a plain fd that an in-process
//! `fuser` session, or an unmodified FUSE program, can use as its
//! `/dev/fuse`.
//!
//! [`Connection::new`] does the `FUSE_INIT` handshake. Then any number of
//! host threads may call [`Connection::request`] at once, or send several
//! requests before waiting ([`Connection::submit`], [`Connection::wait`]):
//! each request gets its own `unique` number. There is no reader thread:
//! one of the waiting threads at a time takes replies off the socket and
//! hands each to its waiter, until its own came; then another waiter takes
//! over. A thread that is the only one waiting so reads its own reply,
//! with no thread woken in between. When the server goes away (its end is
//! closed, or it dies), every waiting and every later request fails with
//! `ENOTCONN`: nothing waits forever on a dead server.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use viewos_core::Errno;

use crate::proto::{self, InHeader, InitIn, InitOut, Opcode, OutHeader};
use crate::wire::{Dec, Enc};

/// The largest WRITE (and READ) this client sends: 128 KiB, what the
/// kernel uses by default.
pub const MAX_TRANSFER: usize = 128 * 1024;

/// A connected socket pair for one FUSE session: `(client, server)`. The
/// server's end is what a FUSE server reads requests from and writes
/// replies to, as it would `/dev/fuse`.
///
/// Both ends get send buffers of up to [`SOCKET_BUFFER`] bytes (as far as
/// `net.core.wmem_max` allows): a server can then queue several replies of
/// a read-ahead, and the client several WRITEs, without waiting for the
/// other side to take each.
pub fn pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let (client, server) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Errno::new(e as i32))?;
    for end in [&client, &server] {
        let _ = socket::setsockopt(end, socket::sockopt::SndBuf, &SOCKET_BUFFER);
    }
    Ok((client, server))
}

/// The send buffer asked for each end of a session's socket pair.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Who the requests are from, and whether to log them.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `uid` of the request headers.
    pub uid: u32,
    /// `gid` of the request headers.
    pub gid: u32,
    /// Headers carry the calling program's ids where the host knows them
    /// (a view with identities, [`Creds::caller_if_known`]), as the
    /// kernel's FUSE sends the caller's; `uid` and `gid` otherwise.
    ///
    /// [`Creds::caller_if_known`]: viewos_core::creds::Creds::caller_if_known
    pub per_caller: bool,
    /// Log every request and its answer to stderr, with this label.
    pub debug: Option<String>,
}

/// What a request is waiting for: its reply, or the reason it will get
/// none.
type Answer = Result<Vec<u8>, Errno>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The requests in flight, and whether the server is gone.
#[derive(Default)]
struct Pending {
    /// By `unique`: `None` until the reply came.
    answers: HashMap<u64, Option<Answer>>,
    /// A waiter is receiving replies.
    receiving: bool,
    dead: bool,
}

/// The requests in flight and the waiters' meeting point.
#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when an answer was filled in or the receiver left.
    changed: Condvar,
}

impl Shared {
    /// The server is gone: every waiter gets `ENOTCONN`.
    fn disconnect(&self) {
        let mut p = lock(&self.pending);
        p.dead = true;
        for a in p.answers.values_mut() {
            if a.is_none() {
                *a = Some(Err(Errno::new(libc::ENOTCONN)));
            }
        }
        drop(p);
        self.changed.notify_all();
    }
}

/// A FUSE session seen from the client (see the module docs).
pub struct Connection {
    sock: OwnedFd,
    shared: Shared,
    config: Config,
    next_unique: AtomicU64,
    init: InitOut,
    max_write: usize,
    max_read: usize,
    closed: AtomicBool,
    /// The largest reply body taken off the socket.
    max_reply: usize,
    /// The server, waited for at close.
    server: Mutex<Option<Server>>,
}

/// A request in flight ([`Connection::submit`]).
pub struct Ticket {
    op: Opcode,
    nodeid: u64,
    unique: u64,
}

/// Who serves a session, when umfuse started it.
enum Server {
    /// An in-process file system's thread.
    Thread(JoinHandle<()>),
    /// A FUSE program the view started for the mount.
    Program(Arc<viewos_core::launch::Helper>),
}

/// How long [`Connection::close`] waits for an in-process server to end
/// (and write back what it holds) after the session is shut down.
const SERVER_END_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long [`Connection::close`] waits for a FUSE program to exit.
const PROGRAM_END_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Connection {
    /// Starts a session over `sock` (the client end of [`pair`]): starts
    /// the `FUSE_INIT` handshake. A server that
    /// speaks another major version, or one older than 7.9, is `EPROTO`.
    pub fn new(sock: OwnedFd, config: Config) -> Result<Connection, Errno> {
        let shared = Shared::default();
        let mut conn = Connection {
            sock,
            shared,
            config,
            next_unique: AtomicU64::new(2),
            init: InitOut::default(),
            max_write: 4096,
            max_read: MAX_TRANSFER,
            closed: AtomicBool::new(false),
            max_reply: MAX_TRANSFER + 64 * 1024 + 4096,
            server: Mutex::new(None),
        };
        conn.handshake()?;
        Ok(conn)
    }

    fn handshake(&mut self) -> Result<(), Errno> {
        use proto::init_flags::*;
        let mut e = Enc::new();
        InitIn {
            major: proto::KERNEL_VERSION,
            minor: proto::KERNEL_MINOR_VERSION,
            max_readahead: MAX_TRANSFER as u32,
            flags: ASYNC_READ | ATOMIC_O_TRUNC | BIG_WRITES | DONT_MASK | MAX_PAGES,
        }
        .encode(&mut e);
        let reply = self.request(Opcode::Init, 0, &[&e.0])?;
        let out = InitOut::decode(&mut Dec::new(&reply))?;
        if out.major != proto::KERNEL_VERSION || out.minor < 9 {
            return Err(Errno::new(libc::EPROTO));
        }
        self.max_write = (out.max_write as usize).clamp(4096, MAX_TRANSFER);
        if out.flags & MAX_PAGES != 0 && out.max_pages > 0 {
            self.max_read = (out.max_pages as usize * 4096).clamp(4096, MAX_TRANSFER);
        }
        self.init = out;
        Ok(())
    }

    /// The server's answer to `FUSE_INIT`.
    pub fn init(&self) -> &InitOut {
        &self.init
    }

    /// True if the server accepted capability `flag` (`proto::init_flags`).
    pub fn has(&self, flag: u32) -> bool {
        self.init.flags & flag != 0
    }

    /// The largest WRITE to send.
    pub fn max_write(&self) -> usize {
        self.max_write
    }

    /// The largest READ to ask for.
    pub fn max_read(&self) -> usize {
        self.max_read
    }

    /// The request header for `op` on `nodeid` with `body` bytes after it.
    fn header(&self, op: Opcode, nodeid: u64, unique: u64, body: usize) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(InHeader::SIZE));
        let (uid, gid) = match self
            .config
            .per_caller
            .then(viewos_core::creds::Creds::caller_if_known)
            .flatten()
        {
            Some(c) => (c.uid, c.gid),
            None => (self.config.uid, self.config.gid),
        };
        InHeader {
            len: (InHeader::SIZE + body) as u32,
            opcode: op as u32,
            unique,
            nodeid,
            uid,
            gid,
            pid: std::process::id(),
        }
        .encode(&mut e);
        e.into_bytes()
    }

    /// Sends one message made of `parts` (gathered by the kernel: the
    /// arguments are not copied into one buffer first).
    fn send(&self, parts: &[&[u8]]) -> Result<(), Errno> {
        let iov: Vec<std::io::IoSlice<'_>> =
            parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
        loop {
            match socket::sendmsg::<()>(
                self.sock.as_raw_fd(),
                &iov,
                &[],
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) => {
                    return Err(Errno::new(libc::ENOTCONN))
                }
                Err(e) => return Err(Errno::new(e as i32)),
            }
        }
    }

    /// Sends request `op` on `nodeid` with `args` (the operation's
    /// structures and names, in order) and waits for its reply: the bytes
    /// after the reply header, or the server's errno.
    pub fn request(&self, op: Opcode, nodeid: u64, args: &[&[u8]]) -> Result<Vec<u8>, Errno> {
        if op.no_reply() {
            let unique = self.next_unique.fetch_add(2, Ordering::Relaxed);
            self.log(op, nodeid, unique, None);
            return self
                .send_message(op, nodeid, unique, args)
                .map(|()| Vec::new());
        }
        let t = self.submit(op, nodeid, args)?;
        self.wait(t)
    }

    fn send_message(
        &self,
        op: Opcode,
        nodeid: u64,
        unique: u64,
        args: &[&[u8]],
    ) -> Result<(), Errno> {
        let body = args.iter().map(|a| a.len()).sum::<usize>();
        let head = self.header(op, nodeid, unique, body);
        let mut parts = Vec::with_capacity(args.len() + 1);
        parts.push(&head[..]);
        parts.extend_from_slice(args);
        self.send(&parts)
    }

    /// Sends request `op` (one that is answered) without waiting for the
    /// reply: several requests can be in flight at once (read-ahead,
    /// big writes), each waited for with [`Connection::wait`].
    pub fn submit(&self, op: Opcode, nodeid: u64, args: &[&[u8]]) -> Result<Ticket, Errno> {
        if op.no_reply() {
            return Err(Errno::EINVAL);
        }
        let unique = self.next_unique.fetch_add(2, Ordering::Relaxed);
        {
            let mut p = lock(&self.shared.pending);
            if p.dead {
                return Err(Errno::new(libc::ENOTCONN));
            }
            p.answers.insert(unique, None);
        }
        if let Err(e) = self.send_message(op, nodeid, unique, args) {
            lock(&self.shared.pending).answers.remove(&unique);
            self.log(op, nodeid, unique, Some(&Err(e)));
            return Err(e);
        }
        Ok(Ticket { op, nodeid, unique })
    }

    /// Waits for the reply to a request sent with [`Connection::submit`].
    pub fn wait(&self, t: Ticket) -> Result<Vec<u8>, Errno> {
        let answer = self.answer_of(t.unique);
        self.log(t.op, t.nodeid, t.unique, Some(&answer));
        answer
    }

    /// Waits for the answer to request `unique`, receiving replies while
    /// no other waiter does (see the module docs).
    fn answer_of(&self, unique: u64) -> Answer {
        let sh = &self.shared;
        let mut p = lock(&sh.pending);
        loop {
            match p.answers.get(&unique) {
                Some(Some(_)) => {
                    let a = p.answers.remove(&unique).flatten();
                    return a.unwrap_or(Err(Errno::EIO));
                }
                Some(None) => {}
                None => return Err(Errno::EIO),
            }
            if p.dead {
                p.answers.remove(&unique);
                return Err(Errno::new(libc::ENOTCONN));
            }
            if p.receiving {
                p = sh.changed.wait(p).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            p.receiving = true;
            drop(p);
            let got = receive(&self.sock, self.max_reply);
            p = lock(&sh.pending);
            p.receiving = false;
            match got {
                Ok(Some((header, body, n))) => self.route(&mut p, header, body, n),
                Ok(None) => {}
                Err(()) => {
                    drop(p);
                    sh.disconnect();
                    p = lock(&sh.pending);
                }
            }
            sh.changed.notify_all();
        }
    }

    /// Files reply `header` + `body` (a message of `n` bytes) under its
    /// request.
    fn route(&self, p: &mut Pending, header: OutHeader, body: Vec<u8>, n: usize) {
        if header.unique == 0 {
            return; // a notification: none is asked for
        }
        let Some(slot) = p.answers.get_mut(&header.unique).filter(|a| a.is_none()) else {
            if let Some(l) = &self.config.debug {
                eprintln!("umfuse {l}: reply to unknown request #{}", header.unique);
            }
            return;
        };
        *slot = Some(
            if header.len as usize != n || body.len() + OutHeader::SIZE != n {
                Err(Errno::EIO)
            } else if header.error == 0 {
                Ok(body)
            } else if (-4095..0).contains(&header.error) {
                Err(Errno::new(-header.error))
            } else {
                Err(Errno::EIO)
            },
        );
    }

    fn log(&self, op: Opcode, nodeid: u64, unique: u64, answer: Option<&Answer>) {
        let Some(label) = &self.config.debug else {
            return;
        };
        let what = match answer {
            None => "sent".to_string(),
            Some(Ok(b)) => format!("ok, {} bytes", b.len()),
            Some(Err(e)) => e.name().to_string(),
        };
        eprintln!(
            "umfuse {label}: #{unique} {} node {nodeid}: {what}",
            op.name()
        );
    }

    /// Ends the session: `DESTROY` (answered before the server stops
    /// reading), then the socket is shut down. Later
    /// requests fail with `ENOTCONN`. Called by `Drop` too.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.request(Opcode::Destroy, 0, &[]);
        let _ = socket::shutdown(self.sock.as_raw_fd(), socket::Shutdown::Both);
        self.shared.disconnect();
        // Bounded: a server that never ends must not hold up the host.
        match lock(&self.server).take() {
            Some(Server::Thread(server)) => {
                let deadline = std::time::Instant::now() + SERVER_END_WAIT;
                while !server.is_finished() && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                if server.is_finished() {
                    let _ = server.join();
                }
            }
            Some(Server::Program(helper)) => {
                let _ = helper.wait(PROGRAM_END_WAIT);
            }
            None => {}
        }
    }

    /// Hands over the thread of an in-process server: [`Connection::close`]
    /// waits (a bounded time) for it to end, so that the file system has
    /// written back everything when the mount is gone.
    pub fn own_server(&self, thread: JoinHandle<()>) {
        *lock(&self.server) = Some(Server::Thread(thread));
    }

    /// Hands over the FUSE program serving the session: as
    /// [`Connection::own_server`], [`Connection::close`] waits for it to
    /// exit (it writes back at `DESTROY` and when the session ends).
    pub fn own_program(&self, helper: Arc<viewos_core::launch::Helper>) {
        *lock(&self.server) = Some(Server::Program(helper));
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

/// Takes one reply off the socket: its header, its body (received
/// straight into a buffer of its size, so it is not copied again) and the
/// message's whole length (a body longer than `max` bytes is cut, which
/// the caller sees by the lengths). `Ok(None)`: a message too short for a
/// header, dropped; `Err`: the socket ended.
///
/// Unsafe code is allowed here only, to receive into the body's
/// uninitialized capacity (no zeroing, no second copy of every READ).
#[allow(unsafe_code)]
fn receive(sock: &OwnedFd, max: usize) -> Result<Option<(OutHeader, Vec<u8>, usize)>, ()> {
    let mut head = [0u8; OutHeader::SIZE];
    // The length of the next message, without taking it.
    let len = loop {
        match socket::recv(
            sock.as_raw_fd(),
            &mut head,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
        ) {
            Ok(0) => return Err(()),
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Err(()),
        }
    };
    let body_len = len.saturating_sub(OutHeader::SIZE).min(max);
    let mut body: Vec<u8> = Vec::with_capacity(body_len);
    let mut iov = [
        libc::iovec {
            iov_base: head.as_mut_ptr().cast(),
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: body.as_mut_ptr().cast(),
            iov_len: body_len,
        },
    ];
    // SAFETY: a zeroed msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len();
    let n = loop {
        // SAFETY: the iovecs point to `head` and to `body`'s
        // `body_len` bytes of capacity, both alive and unaliased for
        // the call; the kernel writes at most their lengths.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if r >= 0 {
            break r as usize;
        }
        if nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            return Err(());
        }
    };
    if n == 0 {
        return Err(());
    }
    let got = n.saturating_sub(OutHeader::SIZE).min(body_len);
    // SAFETY: the kernel initialized the first `got` bytes of `body`'s
    // capacity (what the message held past the header, at most
    // `body_len`).
    unsafe { body.set_len(got) };
    let Ok(header) = OutHeader::decode(&mut Dec::new(&head[..n.min(OutHeader::SIZE)])) else {
        return Ok(None);
    };
    Ok(Some((header, body, n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeServer;

    #[test]
    fn handshake_and_concurrent_requests_are_routed() {
        // The fake server answers GETATTR with the node id in the reply
        // body: each of the threads must get the answer to its own request.
        let (client, server) = pair().unwrap();
        let fake = FakeServer::start(server, |h, _| match h.opcode {
            3 => Some(Ok(h.nodeid.to_ne_bytes().to_vec())),
            _ => Some(Err(libc::ENOSYS)),
        });
        let conn = Arc::new(Connection::new(client, Config::default()).unwrap());
        assert_eq!(conn.init().minor, proto::KERNEL_MINOR_VERSION);
        assert_eq!(conn.max_write(), MAX_TRANSFER);
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let c = conn.clone();
                std::thread::spawn(move || {
                    for j in 0..50u64 {
                        let id = 100 * i + j;
                        let r = c.request(Opcode::Getattr, id, &[&[0u8; 16]]).unwrap();
                        assert_eq!(r, id.to_ne_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(conn.request(Opcode::Readlink, 1, &[]), Err(Errno::ENOSYS));
        drop(conn);
        fake.join();
    }

    #[test]
    fn a_dead_server_fails_pending_and_later_requests() {
        let (client, server) = pair().unwrap();
        // Answers INIT, then swallows one request and dies.
        let fake = FakeServer::start(server, |h, _| match h.opcode {
            3 => None,
            _ => Some(Err(libc::ENOSYS)),
        });
        let conn = Connection::new(client, Config::default()).unwrap();
        assert_eq!(
            conn.request(Opcode::Getattr, 1, &[&[0u8; 16]]),
            Err(Errno::new(libc::ENOTCONN))
        );
        assert_eq!(
            conn.request(Opcode::Getattr, 1, &[&[0u8; 16]]),
            Err(Errno::new(libc::ENOTCONN))
        );
        fake.join();
    }

    #[test]
    fn unmount_gives_counted_nodes_back() {
        use crate::client::Client;
        use std::sync::mpsc;
        let (client, server) = pair().unwrap();
        let (tx, rx) = mpsc::channel();
        // LOOKUP answers node 13; every request is reported.
        let fake = FakeServer::start(server, move |h, args| {
            let _ = tx.send((h.opcode, h.nodeid, args.to_vec()));
            match h.opcode {
                1 => {
                    let mut e = crate::wire::Enc::new();
                    let entry = proto::EntryOut {
                        nodeid: 13,
                        entry_valid: proto::Valid { sec: 60, nsec: 0 },
                        attr: proto::Attr {
                            mode: libc::S_IFREG | 0o644,
                            ..proto::Attr::default()
                        },
                        ..proto::EntryOut::default()
                    };
                    entry.encode(&mut e);
                    Some(Ok(e.0))
                }
                _ => Some(Err(libc::ENOSYS)),
            }
        });
        let conn = Connection::new(client, Config::default()).unwrap();
        let c = Client::new(conn, 0);
        let p = std::path::Path::new("/ab");
        assert_eq!(c.lookup(1, b"ab", p).unwrap().nodeid, 13);
        assert_eq!(c.lookup(1, b"ab", p).unwrap().nodeid, 13);
        assert_eq!(c.nodes.get(p), Some(13));
        // Dropping the client forgets node 13's two lookups, then DESTROYs.
        drop(c);
        fake.join();
        let seen: Vec<_> = rx.try_iter().collect();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!((seen[0].0, seen[0].1, &seen[0].2[..]), (1, 1, &b"ab\0"[..]));
        assert_eq!((seen[2].0, seen[2].1), (2, 13));
        assert_eq!(seen[2].2, proto::forget_in(2));
    }

    #[test]
    fn old_protocols_are_refused() {
        let (client, server) = pair().unwrap();
        let fake = FakeServer::with_init(server, 7, 8, |_, _| Some(Err(libc::ENOSYS)));
        assert_eq!(
            Connection::new(client, Config::default()).err(),
            Some(Errno::new(libc::EPROTO))
        );
        fake.join();
    }
}
