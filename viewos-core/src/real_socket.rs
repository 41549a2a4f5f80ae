//! A kernel socket as a [`SocketHandle`]: the passthrough for services
//! whose sockets are the host's own (a gateway to the kernel's stack, a
//! stack reached through another namespace), and the reference for hosts'
//! served sockets.
//!
//! The socket is non-blocking in the service, as every handle must be. A
//! [`SocketWatcher`] thread waits on all of a service's sockets with one
//! edge-triggered epoll set and calls each socket's [`Notifier`] when it
//! becomes readable or writable.

// Sockets need their calls from libc: std has no raw sockaddr interface.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use crate::fs::FileStat;
use crate::handle::{FileHandle, Notifier};
use crate::socket::{Received, SocketHandle};
use crate::Errno;

fn last() -> Errno {
    Errno::from(io::Error::last_os_error())
}

fn check(r: libc::c_int) -> Result<libc::c_int, Errno> {
    if r < 0 {
        Err(last())
    } else {
        Ok(r)
    }
}

fn sized(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(last())
    } else {
        Ok(r as usize)
    }
}

/// The largest socket address (`struct sockaddr_storage`).
const ADDR_MAX: usize = std::mem::size_of::<libc::sockaddr_storage>();

/// One epoll set and thread watching the readiness of many sockets.
pub struct SocketWatcher {
    epoll: OwnedFd,
    notifiers: Mutex<HashMap<RawFd, Notifier>>,
}

impl SocketWatcher {
    /// A watcher with its thread started.
    pub fn start() -> Result<Arc<SocketWatcher>, Errno> {
        // SAFETY: epoll_create1 has no memory arguments.
        let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        let w = Arc::new(SocketWatcher {
            // SAFETY: a new fd we own.
            epoll: unsafe { OwnedFd::from_raw_fd(ep) },
            notifiers: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&w);
        std::thread::Builder::new()
            .name("viewos-sockets".into())
            .spawn(move || {
                let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
                loop {
                    let Some(w) = weak.upgrade() else { return };
                    let ep = w.epoll.as_raw_fd();
                    drop(w);
                    // SAFETY: epoll_wait fills at most `events.len()`
                    // entries. The timeout lets the thread notice that its
                    // watcher is gone.
                    let n = unsafe {
                        libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 1000)
                    };
                    let Some(w) = weak.upgrade() else { return };
                    for ev in events.iter().take(n.max(0) as usize) {
                        let fd = ev.u64 as RawFd;
                        let notifier = w.notifiers.lock().ok().and_then(|m| m.get(&fd).cloned());
                        if let Some(n) = notifier {
                            n.notify();
                        }
                    }
                }
            })
            .map_err(Errno::from)?;
        Ok(w)
    }

    fn add(&self, fd: RawFd, notifier: Notifier) -> Result<(), Errno> {
        if let Ok(mut m) = self.notifiers.lock() {
            m.insert(fd, notifier);
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        // SAFETY: the kernel copies the event.
        check(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })
            .map(|_| ())
    }

    fn remove(&self, fd: RawFd) {
        // SAFETY: no event argument is read for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
        if let Ok(mut m) = self.notifiers.lock() {
            m.remove(&fd);
        }
    }
}

/// A kernel socket served to a view's program.
pub struct RealSocket {
    fd: OwnedFd,
    /// A stream socket (`MSG_TRUNC` discards data there instead of
    /// reporting a datagram's length).
    stream: bool,
    watcher: Arc<SocketWatcher>,
}

impl RealSocket {
    /// A new kernel socket, as socket(2) makes it.
    pub fn new(
        domain: i32,
        kind: i32,
        protocol: i32,
        watcher: Arc<SocketWatcher>,
    ) -> Result<RealSocket, Errno> {
        let kind = kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket has no memory arguments.
        let fd = check(unsafe { libc::socket(domain, kind, protocol) })?;
        // SAFETY: a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RealSocket::of(fd, watcher))
    }

    /// Serves the kernel socket `fd` (made non-blocking here): for a host
    /// that cannot hand a kernel socket to a program as its own fd.
    pub fn from_fd(fd: OwnedFd, watcher: Arc<SocketWatcher>) -> Result<RealSocket, Errno> {
        // SAFETY: fcntl on an fd we own, with integer arguments only.
        let flags = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
        // SAFETY: as above.
        check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
        Ok(RealSocket::of(fd, watcher))
    }

    fn of(fd: OwnedFd, watcher: Arc<SocketWatcher>) -> RealSocket {
        let mut s = RealSocket {
            fd,
            stream: false,
            watcher,
        };
        s.stream = crate::socket::is_stream(&s);
        s
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn name(&self, peer: bool) -> Result<Vec<u8>, Errno> {
        let mut buf = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        let p = buf.as_mut_ptr().cast();
        // SAFETY: the kernel writes at most `len` bytes into `buf`.
        let r = unsafe {
            if peer {
                libc::getpeername(self.raw(), p, &mut len)
            } else {
                libc::getsockname(self.raw(), p, &mut len)
            }
        };
        check(r)?;
        Ok(buf[..(len as usize).min(ADDR_MAX)].to_vec())
    }
}

impl Drop for RealSocket {
    fn drop(&mut self) {
        self.watcher.remove(self.raw());
    }
}

impl FileHandle for RealSocket {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.recv(buf, 0).map(|r| r.len)
    }

    fn write(&self, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.send(data, 0, None)
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        // SAFETY: fstat fills a zeroed stat we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        check(unsafe { libc::fstat(self.raw(), &mut st) })?;
        Ok(FileStat {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            blksize: st.st_blksize as u64,
            ..FileStat::default()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn ioctl(&self, request: u32, _arg: u64, data: &mut [u8]) -> Result<i64, Errno> {
        // Requests whose argument the host copied in and out (sized ones).
        if data.is_empty() {
            return Err(Errno::new(libc::ENOTTY));
        }
        // SAFETY: the request encodes `data`'s size; the kernel stays in it.
        let r = unsafe { libc::ioctl(self.raw(), request as _, data.as_mut_ptr()) };
        check(r).map(i64::from)
    }

    fn poll(&self) -> u32 {
        let mut p = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP | libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one pollfd we own, no wait.
        unsafe { libc::poll(&mut p, 1, 0) };
        p.revents as u32
    }

    fn watch(&self, notifier: Notifier) {
        let _ = self.watcher.add(self.raw(), notifier);
    }

    fn as_socket(&self) -> Option<&dyn SocketHandle> {
        Some(self)
    }
}

impl SocketHandle for RealSocket {
    fn bind(&self, addr: &[u8]) -> Result<(), Errno> {
        // SAFETY: the kernel reads `addr.len()` bytes of `addr`.
        check(unsafe { libc::bind(self.raw(), addr.as_ptr().cast(), addr.len() as _) }).map(|_| ())
    }

    fn connect(&self, addr: &[u8]) -> Result<(), Errno> {
        // SAFETY: as bind.
        check(unsafe { libc::connect(self.raw(), addr.as_ptr().cast(), addr.len() as _) })
            .map(|_| ())
    }

    fn take_error(&self) -> Result<Option<Errno>, Errno> {
        let v = self.get_option(libc::SOL_SOCKET, libc::SO_ERROR, 4)?;
        let e = v
            .get(..4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        Ok((e != 0).then(|| Errno::new(e)))
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        // SAFETY: no memory arguments.
        check(unsafe { libc::listen(self.raw(), backlog) }).map(|_| ())
    }

    fn accept(&self) -> Result<(Box<dyn FileHandle>, Vec<u8>), Errno> {
        let mut buf = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `buf`.
        let fd = check(unsafe {
            libc::accept4(
                self.raw(),
                buf.as_mut_ptr().cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        })?;
        // SAFETY: a new fd we own.
        let sock = RealSocket::of(unsafe { OwnedFd::from_raw_fd(fd) }, self.watcher.clone());
        Ok((Box::new(sock), buf[..(len as usize).min(ADDR_MAX)].to_vec()))
    }

    fn send(&self, data: &[u8], flags: i32, to: Option<&[u8]>) -> Result<usize, Errno> {
        let flags = flags | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let (addr, len) = match to {
            Some(a) => (a.as_ptr(), a.len()),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: the kernel reads `data` and `len` bytes of the address.
        sized(unsafe {
            libc::sendto(
                self.raw(),
                data.as_ptr().cast(),
                data.len(),
                flags,
                addr.cast(),
                len as _,
            )
        })
    }

    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Received, Errno> {
        let mut from = [0u8; ADDR_MAX];
        let mut from_len = ADDR_MAX as libc::socklen_t;
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: a zeroed msghdr is valid; its pointers are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = from.as_mut_ptr().cast();
        msg.msg_namelen = from_len;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // MSG_TRUNC makes recvmsg return a datagram's whole length (on a
        // stream it throws the data away: only the program asks for that).
        let trunc = if self.stream { 0 } else { libc::MSG_TRUNC };
        let ask = flags | libc::MSG_DONTWAIT | trunc;
        // SAFETY: the kernel writes into `buf` and `from` within the
        // lengths the msghdr gives.
        let n = sized(unsafe { libc::recvmsg(self.raw(), &mut msg, ask) })?;
        from_len = msg.msg_namelen.min(ADDR_MAX as _);
        let len = n.min(buf.len());
        Ok(Received {
            len,
            full_len: n,
            from: from[..from_len as usize].to_vec(),
        })
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        // SAFETY: no memory arguments.
        check(unsafe { libc::shutdown(self.raw(), how) }).map(|_| ())
    }

    fn local_addr(&self) -> Result<Vec<u8>, Errno> {
        self.name(false)
    }

    fn peer_addr(&self) -> Result<Vec<u8>, Errno> {
        self.name(true)
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        // SAFETY: the kernel reads `value.len()` bytes.
        check(unsafe {
            libc::setsockopt(
                self.raw(),
                level,
                name,
                value.as_ptr().cast(),
                value.len() as _,
            )
        })
        .map(|_| ())
    }

    fn get_option(&self, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; len.min(4096)];
        let mut l = buf.len() as libc::socklen_t;
        // SAFETY: the kernel writes at most `l` bytes into `buf`.
        check(unsafe {
            libc::getsockopt(self.raw(), level, name, buf.as_mut_ptr().cast(), &mut l)
        })?;
        buf.truncate(l as usize);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::{from_socket_addr, to_socket_addr};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn wait_for(mut ok: impl FnMut() -> bool) {
        for _ in 0..500 {
            if ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("condition never became true");
    }

    #[test]
    fn tcp_through_handles_with_notifications() {
        let w = SocketWatcher::start().unwrap();
        let server = RealSocket::new(libc::AF_INET, libc::SOCK_STREAM, 0, w.clone()).unwrap();
        server
            .bind(&from_socket_addr(&"127.0.0.1:0".parse().unwrap()))
            .unwrap();
        server.listen(4).unwrap();
        let addr = server.local_addr().unwrap();
        assert_eq!(server.accept().err(), Some(Errno::new(libc::EAGAIN)));
        assert_eq!(server.poll() & libc::POLLIN as u32, 0);

        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        server.watch(Notifier::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        let client = RealSocket::new(libc::AF_INET, libc::SOCK_STREAM, 0, w.clone()).unwrap();
        match client.connect(&addr) {
            Ok(()) => {}
            Err(e) => assert_eq!(e, Errno::new(libc::EINPROGRESS)),
        }
        // The listening socket's notifier fires when the connection waits.
        wait_for(|| wakes.load(Ordering::SeqCst) > 0);
        assert_ne!(server.poll() & libc::POLLIN as u32, 0);
        let (conn, peer) = server.accept().unwrap();
        assert_eq!(
            to_socket_addr(&peer),
            to_socket_addr(&client.local_addr().unwrap())
        );
        wait_for(|| client.poll() & libc::POLLOUT as u32 != 0);
        assert_eq!(client.take_error(), Ok(None));
        assert_eq!(client.send(b"hello", 0, None), Ok(5));
        wait_for(|| conn.poll() & libc::POLLIN as u32 != 0);
        let mut buf = [0u8; 16];
        let sock = conn.as_socket().unwrap();
        let peeked = sock.recv(&mut buf, libc::MSG_PEEK).unwrap();
        assert_eq!(peeked.len, 5);
        assert_eq!(conn.read(0, &mut buf), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(conn.read(0, &mut buf), Err(Errno::new(libc::EAGAIN)));
        client.shutdown(libc::SHUT_WR).unwrap();
        wait_for(|| conn.read(0, &mut buf) == Ok(0));
    }

    #[test]
    fn datagrams_report_their_sender_and_length() {
        let w = SocketWatcher::start().unwrap();
        let a = RealSocket::new(libc::AF_INET, libc::SOCK_DGRAM, 0, w.clone()).unwrap();
        a.bind(&from_socket_addr(&"127.0.0.1:0".parse().unwrap()))
            .unwrap();
        let b = RealSocket::new(libc::AF_INET, libc::SOCK_DGRAM, 0, w).unwrap();
        b.bind(&from_socket_addr(&"127.0.0.1:0".parse().unwrap()))
            .unwrap();
        let to = a.local_addr().unwrap();
        assert_eq!(b.send(b"0123456789", 0, Some(&to)), Ok(10));
        wait_for(|| a.poll() & libc::POLLIN as u32 != 0);
        let mut small = [0u8; 4];
        let r = a.recv(&mut small, 0).unwrap();
        assert_eq!((r.len, r.full_len), (4, 10));
        assert_eq!(
            to_socket_addr(&r.from),
            to_socket_addr(&b.local_addr().unwrap())
        );
    }
}
