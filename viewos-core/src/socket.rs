//! Sockets a service serves: the [`SocketHandle`] trait.
//!
//! A service that claims a socket family ([`Service::handles_socket`])
//! makes the sockets of that family the view's programs create
//! ([`Service::socket`]). The program's fd is a served file like any other
//! ([`crate::handle`]), whose handle also answers the socket calls through
//! [`FileHandle::as_socket`]:
//!
//! | program's call | method |
//! |---|---|
//! | bind | [`SocketHandle::bind`] |
//! | connect | [`SocketHandle::connect`] |
//! | listen | [`SocketHandle::listen`] |
//! | accept, accept4 | [`SocketHandle::accept`] |
//! | send, sendto, sendmsg, sendmmsg, write, writev | [`SocketHandle::send`] |
//! | recv, recvfrom, recvmsg, recvmmsg, read, readv | [`SocketHandle::recv`] |
//! | shutdown | [`SocketHandle::shutdown`] |
//! | getsockname, getpeername | [`SocketHandle::local_addr`], [`SocketHandle::peer_addr`] |
//! | setsockopt, getsockopt | [`SocketHandle::set_option`], [`SocketHandle::get_option`] |
//!
//! Addresses are the raw `struct sockaddr` bytes the program passed (and
//! the service returns them the same way): a service reads the family it
//! claimed; [`to_socket_addr`] and [`from_socket_addr`] convert the IP ones.
//!
//! As for every handle, nothing blocks: a call that would wait answers
//! `EAGAIN` (`EINPROGRESS` for a connect under way), keeps
//! [`FileHandle::poll`] up to date and notifies the host when it changes.
//! The host makes blocking calls of programs wait in the kernel and retry
//! (a connect in progress finishes with [`SocketHandle::take_error`]), and
//! handles `MSG_DONTWAIT`, `O_NONBLOCK` and `SIGPIPE` itself.
//!
//! [`Service::handles_socket`]: crate::Service::handles_socket
//! [`Service::socket`]: crate::Service::socket

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::handle::FileHandle;
use crate::Errno;

/// What [`SocketHandle::recv`] received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Bytes put in the buffer.
    pub len: usize,
    /// The datagram's whole length when it was longer than the buffer
    /// (`MSG_TRUNC` is reported then); `len` otherwise.
    pub full_len: usize,
    /// The sender's address, for datagram sockets (empty when none).
    pub from: Vec<u8>,
}

/// A socket a service serves. Every method has a default: the kernel's
/// answer for a socket that does not support the call.
pub trait SocketHandle: FileHandle {
    /// Gives the socket a local address.
    fn bind(&self, addr: &[u8]) -> Result<(), Errno> {
        let _ = addr;
        Err(Errno::new(libc::EOPNOTSUPP))
    }

    /// Connects to `addr`; `EINPROGRESS` while a connection is under way
    /// (the socket then polls writable once it is done).
    fn connect(&self, addr: &[u8]) -> Result<(), Errno> {
        let _ = addr;
        Err(Errno::new(libc::EOPNOTSUPP))
    }

    /// The error a connect in progress ended with (`SO_ERROR`, cleared by
    /// reading it): `None` when it succeeded.
    fn take_error(&self) -> Result<Option<Errno>, Errno> {
        Ok(None)
    }

    /// Accepts connections, at most `backlog` waiting.
    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        let _ = backlog;
        Err(Errno::new(libc::EOPNOTSUPP))
    }

    /// Takes a waiting connection: its socket and the peer's address;
    /// `EAGAIN` when none waits.
    fn accept(&self) -> Result<(Box<dyn FileHandle>, Vec<u8>), Errno> {
        Err(Errno::new(libc::EOPNOTSUPP))
    }

    /// Sends `data` (to `to`, for an unconnected datagram socket) with
    /// `flags` (`MSG_OOB`, `MSG_MORE`, ...; the host has taken out
    /// `MSG_DONTWAIT` and `MSG_NOSIGNAL`). Returns the bytes taken; `EAGAIN`
    /// when none can be; `EPIPE` when the socket can send no more (the host
    /// raises `SIGPIPE`).
    fn send(&self, data: &[u8], flags: i32, to: Option<&[u8]>) -> Result<usize, Errno> {
        let _ = (data, flags, to);
        Err(Errno::new(libc::EOPNOTSUPP))
    }

    /// Receives into `buf` with `flags` (`MSG_PEEK`, `MSG_TRUNC`,
    /// `MSG_OOB`; not `MSG_DONTWAIT`); `EAGAIN` when nothing waits; a
    /// length of 0 at the end of a stream.
    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Received, Errno> {
        let _ = (buf, flags);
        Err(Errno::new(libc::EOPNOTSUPP))
    }

    /// Shuts down reading, writing or both (`SHUT_RD`, `SHUT_WR`,
    /// `SHUT_RDWR`).
    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let _ = how;
        Err(Errno::new(libc::EOPNOTSUPP))
    }

    /// The local address (getsockname).
    fn local_addr(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::new(libc::EOPNOTSUPP))
    }

    /// The peer's address (getpeername); `ENOTCONN` when not connected.
    fn peer_addr(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::new(libc::ENOTCONN))
    }

    /// setsockopt(`level`, `name`, `value`).
    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        let _ = (level, name, value);
        Err(Errno::new(libc::ENOPROTOOPT))
    }

    /// getsockopt(`level`, `name`): the value, at most `len` bytes.
    fn get_option(&self, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let _ = (level, name, len);
        Err(Errno::new(libc::ENOPROTOOPT))
    }
}

/// True for a stream socket (its `SO_TYPE` is `SOCK_STREAM`).
pub fn is_stream(s: &dyn SocketHandle) -> bool {
    s.get_option(libc::SOL_SOCKET, libc::SO_TYPE, 4)
        .is_ok_and(|v| v.get(..4) == Some(&libc::SOCK_STREAM.to_ne_bytes()[..]))
}

/// The address an IPv4 or IPv6 `struct sockaddr` holds; `EINVAL` for a
/// short one, `EAFNOSUPPORT` for another family.
pub fn to_socket_addr(raw: &[u8]) -> Result<SocketAddr, Errno> {
    let family = raw
        .get(..2)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .ok_or(Errno::EINVAL)?;
    let port = |raw: &[u8]| u16::from_be_bytes([raw[2], raw[3]]);
    match i32::from(family) {
        libc::AF_INET if raw.len() >= 16 => {
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port(raw))))
        }
        libc::AF_INET6 if raw.len() >= 28 => {
            let flow = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&raw[8..24]);
            let scope = u32::from_ne_bytes([raw[24], raw[25], raw[26], raw[27]]);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port(raw),
                flow,
                scope,
            )))
        }
        libc::AF_INET | libc::AF_INET6 => Err(Errno::EINVAL),
        _ => Err(Errno::new(libc::EAFNOSUPPORT)),
    }
}

/// The `struct sockaddr_in` or `sockaddr_in6` bytes of `addr`.
pub fn from_socket_addr(addr: &SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut raw = vec![0u8; 16];
            raw[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            raw[2..4].copy_from_slice(&a.port().to_be_bytes());
            raw[4..8].copy_from_slice(&a.ip().octets());
            raw
        }
        SocketAddr::V6(a) => {
            let mut raw = vec![0u8; 28];
            raw[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            raw[2..4].copy_from_slice(&a.port().to_be_bytes());
            raw[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            raw[8..24].copy_from_slice(&a.ip().octets());
            raw[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            raw
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_round_trip() {
        for text in ["127.0.0.1:8080", "[::1]:443", "[fe80::1%3]:22"] {
            let a: SocketAddr = match text.parse() {
                Ok(a) => a,
                // The scope id form is not parsed by std: build it.
                Err(_) => SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 22, 0, 3)),
            };
            assert_eq!(to_socket_addr(&from_socket_addr(&a)), Ok(a));
        }
    }

    #[test]
    fn bad_addresses_are_refused() {
        assert_eq!(to_socket_addr(&[]), Err(Errno::EINVAL));
        let mut short = from_socket_addr(&"1.2.3.4:5".parse().unwrap());
        short.truncate(8);
        assert_eq!(to_socket_addr(&short), Err(Errno::EINVAL));
        let unix = (libc::AF_UNIX as u16).to_ne_bytes();
        assert_eq!(
            to_socket_addr(&[unix[0], unix[1], 0, 0]),
            Err(Errno::new(libc::EAFNOSUPPORT))
        );
    }

    struct Plain;
    impl FileHandle for Plain {}
    impl SocketHandle for Plain {}

    #[test]
    fn defaults_are_the_kernels_answers() {
        assert_eq!(Plain.bind(&[]), Err(Errno::new(libc::EOPNOTSUPP)));
        assert_eq!(Plain.peer_addr(), Err(Errno::new(libc::ENOTCONN)));
        assert_eq!(
            Plain.get_option(libc::SOL_SOCKET, libc::SO_TYPE, 4),
            Err(Errno::new(libc::ENOPROTOOPT))
        );
        assert_eq!(Plain.take_error(), Ok(None));
    }
}
