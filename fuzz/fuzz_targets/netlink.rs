//! Fuzz target `netlink`: um-net's `NETLINK_ROUTE` socket and interface
//! ioctls on a fresh stack configuration (a loopback with its addresses
//! and a down Ethernet link `vd0`).
//!
//! Input: one selector byte, then datagrams, each a little-endian `u16`
//! length and that many bytes, sent in order to one `NetlinkSocket` (as
//! `ip` sends its requests); every answer queued is read back and must be
//! a whole netlink message. With the selector's top bit set, the last
//! datagram is instead an interface ioctl: its first byte picks the
//! request (`SIOCGIFCONF`, `SIOCGIFADDR`, `SIOCSIFFLAGS`, ...), the rest
//! is the `struct ifreq` (or `struct ifconf`) the program passed.

#![no_main]

use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use um_net::ifreq;
use um_net::netconf::NetConf;
use um_net::netlink::{wire, NetlinkSocket};
use viewos_core::hook::CallerMemory;
use viewos_core::socket::SocketHandle;
use viewos_core::Errno;

/// The interface ioctls `ifreq` serves.
const IOCTLS: [u32; 15] = [
    0x8910, 0x8912, 0x8913, 0x8914, 0x8915, 0x8917, 0x8919, 0x891b, 0x891d, 0x8921, 0x8922, 0x8927,
    0x8933, 0x8942, 0x8970,
];

/// The program's memory for `SIOCGIFCONF`: 4 KiB at 0x1000, nothing
/// else mapped.
struct Memory;

impl CallerMemory for Memory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        check(addr, buf.len())?;
        buf.fill(0);
        Ok(())
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        check(addr, data.len())
    }
}

fn check(addr: u64, len: usize) -> Result<(), Errno> {
    let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    if addr >= 0x1000 && end <= 0x2000 {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

fn datagrams(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(&data[2..2 + n]);
        data = &data[2 + n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut conf = NetConf::loopback();
    conf.add_ethernet("vd0", [0x02, 0, 0, 0, 0, 1], 1500);
    let stack = Arc::new(Mutex::new(conf));
    let sock = NetlinkSocket::new(stack.clone());
    let mut grams = datagrams(rest);
    let ioctl = if selector & 0x80 != 0 {
        grams.pop()
    } else {
        None
    };
    let mut buf = vec![0u8; 1 << 16];
    for g in grams {
        let _ = sock.send(g, 0, None);
        while let Ok(r) = sock.recv(&mut buf, 0) {
            let reply = &buf[..r.len];
            assert!(r.len == r.full_len, "a reply longer than 64 KiB");
            let msgs = wire::parse(reply);
            assert!(!msgs.is_empty(), "an answer that is no netlink message");
            let total: usize = msgs.iter().map(|(h, _)| wire::align(h.len as usize)).sum();
            assert!(
                total >= reply.len(),
                "trailing bytes after the answer's messages"
            );
        }
    }
    if let Some(g) = ioctl {
        let Some((&which, arg)) = g.split_first() else {
            return;
        };
        let request = IOCTLS[usize::from(which) % IOCTLS.len()];
        let size = if request == 0x8912 { 16 } else { 40 };
        let mut arg = arg.to_vec();
        // Mostly the size the request copies in, sometimes shorter.
        if which & 0x80 == 0 {
            arg.resize(size, 0);
        }
        let _ = ifreq::ioctl(stack.as_ref(), request, &mut arg, &Memory);
    }
});
