//! `NETLINK_ROUTE` sockets of a virtual stack: the dumps that `ip link`,
//! `ip addr`, `ip route` and glibc's `getifaddrs` (so `hostname -I`) ask
//! for, and the changes `ip addr add/del`, `ip route add/del/get` and
//! `ip link set` make, on the stack's configuration
//! ([`crate::netconf::Configure`]), with the kernel's errnos.
//!
//! The wire format (`nlmsghdr`, `ifinfomsg`, `ifaddrmsg`, `rtmsg`,
//! attributes) is in [`wire`], the requests in [`request`]; the socket is
//! [`NetlinkSocket`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use viewos_core::handle::{FileHandle, Notifier, READABLE, WRITABLE};
use viewos_core::socket::{Received, SocketHandle};
use viewos_core::{Errno, FileStat};

use crate::netconf::Configure;

pub mod request;
pub mod wire;

/// Port ids of netlink sockets (any nonzero number the process does not
/// confuse with the kernel's 0).
static NEXT_PORT: AtomicU32 = AtomicU32::new(0x7000_0000);

/// The largest datagram a program can send.
const MAX_REQUEST: usize = 64 << 10;

struct State {
    replies: VecDeque<Vec<u8>>,
    notifier: Option<Notifier>,
    groups: u32,
}

/// A `NETLINK_ROUTE` socket of a virtual stack.
pub struct NetlinkSocket {
    port: u32,
    stack: Arc<dyn Configure>,
    state: Mutex<State>,
}

impl NetlinkSocket {
    /// A socket showing and changing `stack`.
    pub fn new(stack: Arc<dyn Configure>) -> NetlinkSocket {
        NetlinkSocket {
            port: NEXT_PORT.fetch_add(1, Ordering::Relaxed),
            stack,
            state: Mutex::new(State {
                replies: VecDeque::new(),
                notifier: None,
                groups: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        let n = self.state().notifier.clone();
        if let Some(n) = n {
            n.notify();
        }
    }
}

/// A `struct sockaddr_nl` for port `pid`.
fn sockaddr_nl(pid: u32, groups: u32) -> Vec<u8> {
    let mut a = (libc::AF_NETLINK as u16).to_ne_bytes().to_vec();
    a.extend_from_slice(&[0, 0]);
    a.extend_from_slice(&pid.to_ne_bytes());
    a.extend_from_slice(&groups.to_ne_bytes());
    a
}

impl FileHandle for NetlinkSocket {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.recv(buf, 0).map(|r| r.len)
    }

    fn write(&self, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.send(data, 0, None)
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        Ok(FileStat {
            mode: libc::S_IFSOCK | 0o777,
            nlink: 1,
            blksize: 4096,
            ..FileStat::default()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> u32 {
        if self.state().replies.is_empty() {
            WRITABLE
        } else {
            READABLE | WRITABLE
        }
    }

    fn watch(&self, notifier: Notifier) {
        self.state().notifier = Some(notifier);
    }

    fn as_socket(&self) -> Option<&dyn SocketHandle> {
        Some(self)
    }
}

impl SocketHandle for NetlinkSocket {
    fn bind(&self, addr: &[u8]) -> Result<(), Errno> {
        if addr.len() < 12 || u16::from_ne_bytes([addr[0], addr[1]]) != libc::AF_NETLINK as u16 {
            return Err(Errno::EINVAL);
        }
        self.state().groups = u32::from_ne_bytes([addr[8], addr[9], addr[10], addr[11]]);
        Ok(())
    }

    fn connect(&self, addr: &[u8]) -> Result<(), Errno> {
        if addr.len() < 12 || u16::from_ne_bytes([addr[0], addr[1]]) != libc::AF_NETLINK as u16 {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    fn send(&self, data: &[u8], _flags: i32, _to: Option<&[u8]>) -> Result<usize, Errno> {
        if data.len() > MAX_REQUEST {
            return Err(Errno::new(libc::EMSGSIZE));
        }
        // Garbage is ignored without an error, as the kernel does.
        let mut out = Vec::new();
        for (h, payload) in wire::parse(data) {
            if h.flags & wire::NLM_F_REQUEST == 0 {
                continue;
            }
            // A dump ends with NLMSG_DONE; anything else is answered
            // with an NLMSG_ERROR, which is its ack too.
            out.extend(request::answer(self.stack.as_ref(), &h, payload, self.port));
        }
        if !out.is_empty() {
            self.state().replies.extend(out);
            self.notify();
        }
        Ok(data.len())
    }

    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Received, Errno> {
        let mut st = self.state();
        let Some(front) = st.replies.front() else {
            return Err(Errno::new(libc::EAGAIN));
        };
        let n = front.len().min(buf.len());
        buf[..n].copy_from_slice(&front[..n]);
        let full = front.len();
        if flags & libc::MSG_PEEK == 0 {
            st.replies.pop_front();
        }
        Ok(Received {
            len: n,
            full_len: full,
            from: sockaddr_nl(0, 0),
        })
    }

    fn local_addr(&self) -> Result<Vec<u8>, Errno> {
        Ok(sockaddr_nl(self.port, self.state().groups))
    }

    fn peer_addr(&self) -> Result<Vec<u8>, Errno> {
        Ok(sockaddr_nl(0, 0))
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        let _ = (name, value);
        match level {
            libc::SOL_NETLINK | libc::SOL_SOCKET => Ok(()),
            _ => Err(Errno::new(libc::ENOPROTOOPT)),
        }
    }

    fn get_option(&self, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let _ = len;
        let int = |v: i32| Ok(v.to_ne_bytes().to_vec());
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_TYPE) => int(libc::SOCK_RAW),
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => int(libc::AF_NETLINK),
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int(libc::NETLINK_ROUTE),
            (libc::SOL_SOCKET, libc::SO_RCVBUF) | (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
                int(212_992)
            }
            (libc::SOL_SOCKET, libc::SO_ERROR) => int(0),
            _ => Err(Errno::new(libc::ENOPROTOOPT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> Arc<dyn Configure> {
        Arc::new(Mutex::new(crate::netconf::NetConf::loopback()))
    }

    fn dump(s: &NetlinkSocket, kind: u16, family: u8) -> Vec<(wire::Header, Vec<u8>)> {
        let req = wire::message(
            kind,
            wire::NLM_F_REQUEST | wire::NLM_F_DUMP,
            7,
            0,
            &[family, 0, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(s.send(&req, 0, None), Ok(req.len()));
        let mut all = Vec::new();
        let mut buf = vec![0u8; 8192];
        while let Ok(r) = s.recv(&mut buf, 0) {
            for (h, p) in wire::parse(&buf[..r.len]) {
                all.push((h, p.to_vec()));
            }
        }
        all
    }

    #[test]
    fn dumps_show_the_interfaces() {
        let s = NetlinkSocket::new(lo());
        let links = dump(&s, wire::RTM_GETLINK, 0);
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].0.kind, wire::RTM_NEWLINK);
        assert_eq!(links[0].0.pid, s.port);
        assert_eq!(links[0].0.seq, 7);
        assert_eq!(links[1].0.kind, wire::NLMSG_DONE);
        let addrs = dump(&s, wire::RTM_GETADDR, libc::AF_INET as u8);
        assert_eq!(addrs.len(), 2);
        assert_eq!(addrs[0].1[..2], [libc::AF_INET as u8, 8]);
        assert_eq!(dump(&s, wire::RTM_GETADDR, 0).len(), 3);
        assert_eq!(dump(&s, wire::RTM_GETROUTE, 0).len(), 1);
        assert_eq!(s.poll(), WRITABLE);
    }

    #[test]
    fn short_changes_are_refused_and_garbage_ignored() {
        let s = NetlinkSocket::new(lo());
        let req = wire::message(
            20,
            wire::NLM_F_REQUEST | wire::NLM_F_ACK,
            9,
            0,
            &[2, 8, 0, 0],
        );
        s.send(&req, 0, None).unwrap();
        let mut buf = [0u8; 256];
        let r = s.recv(&mut buf, 0).unwrap();
        let msgs = wire::parse(&buf[..r.len]);
        assert_eq!(msgs[0].0.kind, wire::NLMSG_ERROR);
        assert_eq!(msgs[0].1[..4], (-libc::EINVAL).to_ne_bytes());
        assert_eq!(
            s.send(&[1, 2, 3, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0, None),
            Ok(16)
        );
        assert_eq!(s.recv(&mut buf, 0).err(), Some(Errno::new(libc::EAGAIN)));
        assert!(wire::parse(&[255, 0, 0, 0]).is_empty());
        // A request buffer sent whole: the message, then zeros.
        let mut padded = wire::message(wire::RTM_GETLINK, wire::NLM_F_REQUEST, 1, 0, &[0; 16]);
        padded.resize(152, 0);
        assert_eq!(wire::parse(&padded).len(), 1);
    }
}
