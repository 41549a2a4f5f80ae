//! Ping sockets of a smoltcp stack: `socket(AF_INET, SOCK_DGRAM,
//! IPPROTO_ICMP)` and `socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)`, as
//! Linux's (what `ping` uses without privileges): the program sends echo
//! requests, ICMP header included, whose identifier the socket sets to
//! its own (its "port"), and receives the matching echo replies, without
//! their IP header. On the view's stack every user may open one (the
//! kernel's `ping_group_range` is the kernel's business).
//!
//! Raw ICMP sockets (`SOCK_RAW`, what `ping` uses when it runs as root)
//! send the program's ICMP messages unchanged and receive every ICMP
//! packet that arrives, with its IPv4 header (IPv6: without), as Linux's.
//! The stack lets every user of the view have them too: they reach only
//! the view's own network.

use std::sync::Arc;
use std::time::Duration;

use smoltcp::iface::{SocketHandle as Slot, SocketSet};
use smoltcp::socket::{icmp, raw};
use smoltcp::wire::{IpAddress, IpProtocol, IpVersion};
use viewos_core::handle::{FileHandle, Notifier, READABLE, WRITABLE};
use viewos_core::socket::{Received, SocketHandle};
use viewos_core::{Errno, FileStat, Opened};

use super::{endpoint_of, err, raw_of, Kind, Net, Shared, Sock};

/// `SO_RCVTIMEO_NEW` (64-bit `timeval`, the same layout on x86_64).
const SO_RCVTIMEO_NEW: i32 = 66;

/// The port space of identifiers (apart from TCP's and UDP's).
pub(super) const SPACE: u8 = 4;
/// Datagrams and bytes of each socket's buffers.
const PACKETS: usize = 32;
const BUFFER: usize = 64 << 10;
/// Echo request and reply types, IPv4 and IPv6.
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REQUEST_V6: u8 = 128;

/// A ping socket's state in the stack.
pub(super) struct IcmpSock {
    pub(super) slot: Slot,
    /// The identifier, once bound (explicitly or by the first send).
    pub(super) ident: Option<u16>,
    peer: Option<IpAddress>,
    /// A reply taken by `MSG_PEEK`, given again by the next receive.
    peeked: Option<(Vec<u8>, IpAddress)>,
    /// A raw socket: the smoltcp raw socket that receives for it.
    pub(super) raw: Option<Slot>,
    /// `SO_RCVTIMEO`, and when the receive waiting now gives up.
    timeout: Option<Duration>,
    pub(super) deadline: Option<std::time::Instant>,
    /// The deadline passed: the next receive ends the wait.
    expired: bool,
}

impl IcmpSock {
    /// What it is ready for.
    pub(super) fn readiness(&self, set: &SocketSet<'static>) -> u32 {
        let s = set.get::<icmp::Socket>(self.slot);
        let mut r = 0;
        // A ping socket's queue was sorted by `settle`: what is left for
        // the program is in `peeked`.
        let incoming = match self.raw {
            Some(raw) => set.get::<raw::Socket>(raw).can_recv(),
            None => false,
        };
        if self.peeked.is_some() || incoming || self.expired {
            r |= READABLE;
        }
        if s.can_send() {
            r |= WRITABLE;
        }
        r
    }
}

impl IcmpSock {
    /// After the interface ran: drops the echo requests a ping socket
    /// got (its own, when it pings its stack: they are not for it) and
    /// keeps the first reply aside, so readiness tells the truth.
    pub(super) fn settle(&mut self, set: &mut SocketSet<'static>, family: i32) {
        if self
            .deadline
            .is_some_and(|d| d <= std::time::Instant::now())
        {
            self.deadline = None;
            self.expired = true;
        }
        if self.raw.is_some() || self.peeked.is_some() {
            return;
        }
        let request = if family == libc::AF_INET {
            ECHO_REQUEST_V4
        } else {
            ECHO_REQUEST_V6
        };
        let s = set.get_mut::<icmp::Socket>(self.slot);
        while let Ok((p, from)) = s.recv() {
            if p.first() != Some(&request) {
                self.peeked = Some((p.to_vec(), from));
                return;
            }
        }
    }
}

/// A new ping socket (`raw`: a raw ICMP socket) of `domain`.
pub(super) fn socket(shared: &Arc<Shared>, domain: i32, raw: bool) -> Result<Opened, Errno> {
    let id = shared.with(|net| {
        let buffer =
            || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; PACKETS], vec![0; BUFFER]);
        let slot = net.set.add(icmp::Socket::new(buffer(), buffer()));
        let raw = raw.then(|| {
            let (version, protocol) = if domain == libc::AF_INET {
                (IpVersion::Ipv4, IpProtocol::Icmp)
            } else {
                (IpVersion::Ipv6, IpProtocol::Icmpv6)
            };
            let buffer = || {
                raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; PACKETS], vec![0; BUFFER])
            };
            // Sends nothing: the ICMP socket sends.
            let tx = raw::PacketBuffer::new(Vec::new(), Vec::new());
            net.set.add(raw::Socket::new(
                Some(version),
                Some(protocol),
                buffer(),
                tx,
            ))
        });
        let id = net.next_id;
        net.next_id += 1;
        net.socks.insert(
            id,
            Sock {
                kind: Kind::Icmp(IcmpSock {
                    slot,
                    ident: None,
                    peer: None,
                    peeked: None,
                    raw,
                    timeout: None,
                    deadline: None,
                    expired: false,
                }),
                family: domain,
                reuse: false,
                notifier: None,
                ready: 0,
            },
        );
        id
    });
    Ok(Opened::Served(Box::new(PingSocket {
        shared: shared.clone(),
        id,
        family: domain,
        raw,
    })))
}

/// A ping socket, as a program holds it.
pub struct PingSocket {
    shared: Arc<Shared>,
    id: u64,
    family: i32,
    /// A raw ICMP socket.
    raw: bool,
}

fn sock(net: &mut Net, id: u64) -> Result<&mut IcmpSock, Errno> {
    match net.socks.get_mut(&id).map(|s| &mut s.kind) {
        Some(Kind::Icmp(i)) => Ok(i),
        _ => Err(Errno::EBADF),
    }
}

/// Binds socket `id` to `ident` (0: a free one); its identifier.
fn bind_ident(net: &mut Net, id: u64, ident: u16) -> Result<u16, Errno> {
    if let Some(i) = sock(net, id)?.ident {
        return if ident == 0 || ident == i {
            Ok(i)
        } else {
            Err(Errno::EINVAL)
        };
    }
    let ident = net.take_port(SPACE, ident)?;
    let i = sock(net, id)?;
    i.ident = Some(ident);
    let slot = i.slot;
    if net
        .set
        .get_mut::<icmp::Socket>(slot)
        .bind(icmp::Endpoint::Ident(ident))
        .is_err()
    {
        return Err(Errno::EINVAL);
    }
    Ok(ident)
}

/// The answer of a receive that finds nothing: `EAGAIN`, and the host
/// waits if the program's fd blocks. The host has no timed wait, so a
/// socket with `SO_RCVTIMEO` (ping relies on it between probes) keeps its
/// own deadline, turns readable when it passes, and ends the wait with
/// `EINTR` (the kernel's answer is `EAGAIN`, which the host would wait
/// on; ping, like most programs, treats both as "nothing yet").
fn nothing(i: &mut IcmpSock, flags: i32) -> Errno {
    if flags & libc::MSG_DONTWAIT == 0 {
        if i.expired {
            i.expired = false;
            return Errno::new(libc::EINTR);
        }
        if let (Some(t), None) = (i.timeout, i.deadline) {
            i.deadline = Some(std::time::Instant::now() + t);
        }
    }
    Errno::new(libc::EAGAIN)
}

/// A `struct timeval` (as `SO_RCVTIMEO` takes it); `None` for zero.
fn timeval(v: &[u8]) -> Result<Option<Duration>, Errno> {
    let b = v.get(..16).ok_or(Errno::EINVAL)?;
    let sec = i64::from_ne_bytes(b[..8].try_into().map_err(|_| Errno::EINVAL)?);
    let usec = i64::from_ne_bytes(b[8..].try_into().map_err(|_| Errno::EINVAL)?);
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::new(libc::EDOM));
    }
    let d = Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64);
    Ok((!d.is_zero()).then_some(d))
}

/// What a raw socket of `family` hands the program for the IP packet
/// `p`, and its source: IPv4 packets whole, IPv6 ones without their
/// header. `None` for a packet too short.
fn raw_packet(family: i32, p: &[u8]) -> Option<(Vec<u8>, IpAddress)> {
    if family == libc::AF_INET {
        let src = p.get(12..16)?;
        let src = IpAddress::v4(src[0], src[1], src[2], src[3]);
        Some((p.to_vec(), src))
    } else {
        let mut src = [0u8; 16];
        src.copy_from_slice(p.get(8..24)?);
        Some((p.get(40..)?.to_vec(), IpAddress::Ipv6(src.into())))
    }
}

impl Drop for PingSocket {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.with(|net| net.close(id));
    }
}

impl FileHandle for PingSocket {
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
            ino: self.id,
            blksize: 4096,
            ..FileStat::default()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> u32 {
        self.shared.lock().readiness(self.id)
    }

    fn watch(&self, notifier: Notifier) {
        let id = self.id;
        self.shared.with(|net| {
            let ready = net.readiness(id);
            if let Some(s) = net.socks.get_mut(&id) {
                s.notifier = Some(notifier);
                s.ready = ready;
            }
        });
    }

    fn as_socket(&self) -> Option<&dyn SocketHandle> {
        Some(self)
    }
}

impl SocketHandle for PingSocket {
    fn bind(&self, addr: &[u8]) -> Result<(), Errno> {
        let ep = endpoint_of(addr, self.family)?;
        let id = self.id;
        self.shared.with(|net| {
            if !ep.addr.is_unspecified() && !net.is_local(&ep.addr) {
                return Err(err(libc::EADDRNOTAVAIL));
            }
            bind_ident(net, id, ep.port).map(|_| ())
        })
    }

    fn connect(&self, addr: &[u8]) -> Result<(), Errno> {
        let ep = endpoint_of(addr, self.family)?;
        let id = self.id;
        self.shared.with(|net| {
            net.source_for(&ep.addr)?;
            sock(net, id)?.peer = Some(ep.addr);
            Ok(())
        })
    }

    fn send(&self, data: &[u8], _flags: i32, to: Option<&[u8]>) -> Result<usize, Errno> {
        let want = if self.family == libc::AF_INET {
            ECHO_REQUEST_V4
        } else {
            ECHO_REQUEST_V6
        };
        // Only echo requests, with their 8-byte header, as Linux; a raw
        // socket sends any message.
        if data.len() < 8 || (!self.raw && (data[0] != want || data[1] != 0)) {
            return Err(Errno::EINVAL);
        }
        let raw = self.raw;
        let to = match to {
            Some(raw) => Some(endpoint_of(raw, self.family)?.addr),
            None => None,
        };
        let id = self.id;
        self.shared.with(|net| {
            let dest = to.or(sock(net, id)?.peer).ok_or(err(libc::EDESTADDRREQ))?;
            net.source_for(&dest)?;
            let mut packet = data.to_vec();
            if !raw {
                let ident = bind_ident(net, id, 0)?;
                packet[4..6].copy_from_slice(&ident.to_be_bytes());
            }
            let slot = sock(net, id)?.slot;
            let s = net.set.get_mut::<icmp::Socket>(slot);
            if packet.len() > s.payload_send_capacity() {
                return Err(err(libc::EMSGSIZE));
            }
            match s.send_slice(&packet, dest) {
                Ok(()) => Ok(data.len()),
                Err(icmp::SendError::BufferFull) => Err(Errno::new(libc::EAGAIN)),
                Err(icmp::SendError::Unaddressable) => Err(err(libc::ENETUNREACH)),
            }
        })
    }

    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Received, Errno> {
        let (id, family) = (self.id, self.family);
        self.shared.with(|net| {
            let i = sock(net, id)?;
            let raw = i.raw;
            let got = match (i.peeked.take(), raw) {
                (Some(p), _) => p,
                (None, Some(raw)) => {
                    let s = net.set.get_mut::<raw::Socket>(raw);
                    match s.recv().ok().and_then(|p| raw_packet(family, p)) {
                        Some(got) => got,
                        None => return Err(nothing(sock(net, id)?, flags)),
                    }
                }
                (None, None) => return Err(nothing(i, flags)),
            };
            let i = sock(net, id)?;
            i.deadline = None;
            i.expired = false;
            let n = got.0.len().min(buf.len());
            buf[..n].copy_from_slice(&got.0[..n]);
            let r = Received {
                len: n,
                full_len: got.0.len(),
                from: raw_of(family, Some(got.1), 0),
            };
            if flags & libc::MSG_PEEK != 0 {
                sock(net, id)?.peeked = Some(got);
            }
            Ok(r)
        })
    }

    fn local_addr(&self) -> Result<Vec<u8>, Errno> {
        let mut net = self.shared.lock();
        let ident = sock(&mut net, self.id)?.ident.unwrap_or(0);
        Ok(raw_of(self.family, None, ident))
    }

    fn peer_addr(&self) -> Result<Vec<u8>, Errno> {
        let mut net = self.shared.lock();
        match sock(&mut net, self.id)?.peer {
            Some(a) => Ok(raw_of(self.family, Some(a), 0)),
            None => Err(err(libc::ENOTCONN)),
        }
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        if level == libc::SOL_SOCKET && (name == libc::SO_RCVTIMEO || name == SO_RCVTIMEO_NEW) {
            let t = timeval(value)?;
            let id = self.id;
            return self.shared.with(|net| {
                sock(net, id)?.timeout = t;
                Ok(())
            });
        }
        match level {
            // Accepted without effect: TTLs, error queues, time stamps,
            // filters, buffer sizes (what ping sets).
            libc::SOL_IP | libc::SOL_IPV6 | libc::SOL_SOCKET | libc::SOL_RAW => {
                if value.is_empty() {
                    Err(Errno::EINVAL)
                } else {
                    Ok(())
                }
            }
            _ => Err(err(libc::ENOPROTOOPT)),
        }
    }

    fn get_option(&self, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let _ = len;
        let int = |v: i32| Ok(v.to_ne_bytes().to_vec());
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_TYPE) => int(if self.raw {
                libc::SOCK_RAW
            } else {
                libc::SOCK_DGRAM
            }),
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => int(self.family),
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int(if self.family == libc::AF_INET {
                libc::IPPROTO_ICMP
            } else {
                libc::IPPROTO_ICMPV6
            }),
            (libc::SOL_SOCKET, libc::SO_ERROR) => int(0),
            (libc::SOL_SOCKET, libc::SO_RCVBUF) | (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
                int(BUFFER as i32)
            }
            _ => Err(err(libc::ENOPROTOOPT)),
        }
    }
}
