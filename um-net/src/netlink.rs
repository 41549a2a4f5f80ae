//! `NETLINK_ROUTE` sockets of a virtual stack, read-only: the dumps that
//! `ip link`, `ip addr`, `ip route` and glibc's `getifaddrs` (so
//! `hostname -I`) ask for, answered with the stack's interfaces and
//! addresses ([`Interfaces`]). Requests that would change the stack are
//! refused with `EOPNOTSUPP`, acknowledged the netlink way.
//!
//! The wire format (`nlmsghdr`, `ifinfomsg`, `ifaddrmsg`, `rtmsg`,
//! attributes) is in [`wire`]; the socket is [`NetlinkSocket`].

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use viewos_core::handle::{FileHandle, Notifier, READABLE, WRITABLE};
use viewos_core::socket::{Received, SocketHandle};
use viewos_core::{Errno, FileStat};

/// One interface of a stack, as netlink shows it.
#[derive(Clone, Debug)]
pub struct Link {
    /// Its index (1 for the loopback).
    pub index: u32,
    /// Its name (`lo`).
    pub name: String,
    /// `IFF_*` flags.
    pub flags: u32,
    /// MTU.
    pub mtu: u32,
    /// Its addresses, with their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
}

/// The interfaces of a stack.
pub type Interfaces = Vec<Link>;

/// The message formats of `NETLINK_ROUTE`, as `linux/netlink.h` and
/// `linux/rtnetlink.h` define them.
pub mod wire {
    use std::net::IpAddr;

    /// `struct nlmsghdr`'s size.
    pub const NLMSG_HDRLEN: usize = 16;
    /// `NLMSG_ERROR`.
    pub const NLMSG_ERROR: u16 = 2;
    /// `NLMSG_DONE`.
    pub const NLMSG_DONE: u16 = 3;
    /// `NLM_F_REQUEST`.
    pub const NLM_F_REQUEST: u16 = 1;
    /// `NLM_F_MULTI`.
    pub const NLM_F_MULTI: u16 = 2;
    /// `NLM_F_ACK`.
    pub const NLM_F_ACK: u16 = 4;
    /// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
    pub const NLM_F_DUMP: u16 = 0x300;
    /// `RTM_NEWLINK`, `RTM_GETLINK`.
    pub const RTM_NEWLINK: u16 = 16;
    /// `RTM_GETLINK`.
    pub const RTM_GETLINK: u16 = 18;
    /// `RTM_NEWADDR`.
    pub const RTM_NEWADDR: u16 = 20;
    /// `RTM_GETADDR`.
    pub const RTM_GETADDR: u16 = 22;
    /// `RTM_GETROUTE`.
    pub const RTM_GETROUTE: u16 = 26;

    const IFLA_ADDRESS: u16 = 1;
    const IFLA_BROADCAST: u16 = 2;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_MTU: u16 = 4;
    const IFLA_QDISC: u16 = 6;
    const IFLA_TXQLEN: u16 = 13;
    const IFLA_OPERSTATE: u16 = 16;
    const IFLA_LINKMODE: u16 = 17;
    const IFA_ADDRESS: u16 = 1;
    const IFA_LOCAL: u16 = 2;
    const IFA_LABEL: u16 = 3;
    const IFA_CACHEINFO: u16 = 6;
    const IFA_FLAGS: u16 = 8;
    const ARPHRD_LOOPBACK: u16 = 772;
    const IFA_F_PERMANENT: u8 = 0x80;
    const RT_SCOPE_HOST: u8 = 254;

    /// A message's header.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Header {
        /// Length of the whole message.
        pub len: u32,
        /// `RTM_*`, `NLMSG_*`.
        pub kind: u16,
        /// `NLM_F_*`.
        pub flags: u16,
        /// Sequence number.
        pub seq: u32,
        /// Sender's port id.
        pub pid: u32,
    }

    /// The messages in `data`, each header with its payload, up to the
    /// first header whose length does not fit (the rest is ignored, as
    /// the kernel does: programs send their request buffers whole).
    pub fn parse(mut data: &[u8]) -> Vec<(Header, &[u8])> {
        let mut out = Vec::new();
        while data.len() >= NLMSG_HDRLEN {
            let u32_at =
                |o: usize| u32::from_ne_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
            let u16_at = |o: usize| u16::from_ne_bytes([data[o], data[o + 1]]);
            let h = Header {
                len: u32_at(0),
                kind: u16_at(4),
                flags: u16_at(6),
                seq: u32_at(8),
                pid: u32_at(12),
            };
            let len = h.len as usize;
            if len < NLMSG_HDRLEN || len > data.len() {
                break;
            }
            out.push((h, &data[NLMSG_HDRLEN..len]));
            data = &data[align(len).min(data.len())..];
        }
        out
    }

    /// `n` rounded up to 4.
    pub fn align(n: usize) -> usize {
        (n + 3) & !3
    }

    /// A message: header then `payload`, with its length filled in.
    pub fn message(kind: u16, flags: u16, seq: u32, pid: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut m = Vec::with_capacity(align(len));
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&pid.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(align(len), 0);
        m
    }

    /// An `NLMSG_ERROR` answering `request` with `-errno` (0: an ack).
    pub fn error(request: &Header, request_payload: &[u8], errno: i32, pid: u32) -> Vec<u8> {
        let mut p = (-errno).to_ne_bytes().to_vec();
        // The request's header (and, for an error, its payload).
        let echo = message(
            request.kind,
            request.flags,
            request.seq,
            request.pid,
            if errno == 0 { &[] } else { request_payload },
        );
        let mut echo = echo;
        echo[..4].copy_from_slice(&request.len.to_ne_bytes());
        p.extend_from_slice(&echo[..if errno == 0 { NLMSG_HDRLEN } else { echo.len() }]);
        message(NLMSG_ERROR, 0, request.seq, pid, &p)
    }

    fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        out.extend_from_slice(&(len as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(align(out.len()), 0);
    }

    fn cstr(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    /// The `RTM_NEWLINK` payload of `iface`.
    pub fn link(iface: &super::Link) -> Vec<u8> {
        let mut p = Vec::new();
        p.push(0); // ifi_family: AF_UNSPEC
        p.push(0);
        p.extend_from_slice(&ARPHRD_LOOPBACK.to_ne_bytes());
        p.extend_from_slice(&(iface.index as i32).to_ne_bytes());
        p.extend_from_slice(&iface.flags.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes()); // ifi_change
        attr(&mut p, IFLA_IFNAME, &cstr(&iface.name));
        attr(&mut p, IFLA_TXQLEN, &1000u32.to_ne_bytes());
        attr(&mut p, IFLA_OPERSTATE, &[0]); // IF_OPER_UNKNOWN, as lo
        attr(&mut p, IFLA_LINKMODE, &[0]);
        attr(&mut p, IFLA_MTU, &iface.mtu.to_ne_bytes());
        attr(&mut p, IFLA_QDISC, &cstr("noqueue"));
        attr(&mut p, IFLA_ADDRESS, &[0; 6]);
        attr(&mut p, IFLA_BROADCAST, &[0; 6]);
        p
    }

    /// The `RTM_NEWADDR` payload of `addr`/`prefix` on `iface`.
    pub fn addr(iface: &super::Link, addr: IpAddr, prefix: u8) -> Vec<u8> {
        let (family, bytes) = match addr {
            IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
            IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
        };
        let mut p = vec![family, prefix, IFA_F_PERMANENT, RT_SCOPE_HOST];
        p.extend_from_slice(&iface.index.to_ne_bytes());
        attr(&mut p, IFA_ADDRESS, &bytes);
        if family == libc::AF_INET as u8 {
            attr(&mut p, IFA_LOCAL, &bytes);
            attr(&mut p, IFA_LABEL, &cstr(&iface.name));
        }
        attr(&mut p, IFA_FLAGS, &u32::from(IFA_F_PERMANENT).to_ne_bytes());
        // Preferred and valid lifetimes forever, no time stamps.
        let mut cache = Vec::new();
        for v in [u32::MAX, u32::MAX, 0, 0] {
            cache.extend_from_slice(&v.to_ne_bytes());
        }
        attr(&mut p, IFA_CACHEINFO, &cache);
        p
    }

    /// The address family a dump request asks for (its first byte), 0
    /// for all.
    pub fn family_of(payload: &[u8]) -> u8 {
        payload.first().copied().unwrap_or(0)
    }
}

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
    interfaces: Interfaces,
    state: Mutex<State>,
}

impl NetlinkSocket {
    /// A socket showing `interfaces`.
    pub fn new(interfaces: Interfaces) -> NetlinkSocket {
        NetlinkSocket {
            port: NEXT_PORT.fetch_add(1, Ordering::Relaxed),
            interfaces,
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

    /// The answers to one request (each a datagram).
    fn answer(&self, h: &wire::Header, payload: &[u8]) -> Vec<Vec<u8>> {
        use wire::*;
        let dump = h.flags & NLM_F_DUMP == NLM_F_DUMP;
        let multi = |kind: u16, p: &[u8]| message(kind, NLM_F_MULTI, h.seq, self.port, p);
        let done = || {
            message(
                NLMSG_DONE,
                NLM_F_MULTI,
                h.seq,
                self.port,
                &0i32.to_ne_bytes(),
            )
        };
        match h.kind {
            RTM_GETLINK if dump => {
                let mut d: Vec<u8> = Vec::new();
                for i in &self.interfaces {
                    d.extend(multi(RTM_NEWLINK, &link(i)));
                }
                vec![d, done()]
            }
            RTM_GETADDR if dump => {
                let want = family_of(payload);
                let mut d: Vec<u8> = Vec::new();
                for i in &self.interfaces {
                    for &(a, prefix) in &i.addrs {
                        let fam = if a.is_ipv4() {
                            libc::AF_INET
                        } else {
                            libc::AF_INET6
                        } as u8;
                        if want == 0 || want == fam {
                            d.extend(multi(RTM_NEWADDR, &addr(i, a, prefix)));
                        }
                    }
                }
                vec![d, done()]
            }
            // Only the loopback: the main table has no routes.
            RTM_GETROUTE if dump => vec![done()],
            // Other dumps: nothing to show.
            _ if dump && h.kind % 4 == 2 => vec![done()],
            // Changes (and single gets) are not supported.
            _ => vec![error(h, payload, libc::EOPNOTSUPP, self.port)],
        }
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
            out.extend(self.answer(&h, payload));
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
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn lo() -> Interfaces {
        vec![Link {
            index: 1,
            name: "lo".into(),
            flags: (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as u32,
            mtu: 65535,
            addrs: vec![
                (IpAddr::V4(Ipv4Addr::LOCALHOST), 8),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            ],
        }]
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
    fn changes_are_refused_and_garbage_ignored() {
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
        assert_eq!(msgs[0].1[..4], (-libc::EOPNOTSUPP).to_ne_bytes());
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
