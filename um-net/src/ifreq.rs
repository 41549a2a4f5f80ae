//! The classic interface ioctls on a socket of a virtual stack
//! (`SIOCGIFCONF`, `SIOCGIFADDR`, `SIOCGIFFLAGS`, ...), the way
//! `ifconfig`, `if_nametoindex` and older programs ask about interfaces,
//! answered from the stack's configuration ([`Configure`]).
//!
//! Their argument is a `struct ifreq` (40 bytes: the name, then a union)
//! or, for `SIOCGIFCONF`, a `struct ifconf` pointing to an array of them.

use std::net::IpAddr;

use viewos_core::hook::CallerMemory;
use viewos_core::{Errno, IoctlArg};

use crate::netconf::{Configure, Link, LinkKind, NetConf};

/// `SIOCGIFNAME`.
const SIOCGIFNAME: u32 = 0x8910;
/// `SIOCGIFCONF`.
const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCSIFFLAGS: u32 = 0x8914;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFDSTADDR: u32 = 0x8917;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMETRIC: u32 = 0x891d;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCSIFMTU: u32 = 0x8922;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const SIOCGIFTXQLEN: u32 = 0x8942;
const SIOCGIFMAP: u32 = 0x8970;

/// `sizeof(struct ifreq)`.
const IFREQ: usize = 40;
/// `IFNAMSIZ`.
const IFNAMSIZ: usize = 16;
/// `sizeof(struct ifconf)` on x86_64 (an int, padding, a pointer).
const IFCONF: usize = 16;
/// `ARPHRD_ETHER`, `ARPHRD_LOOPBACK`.
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;

/// How the argument of `request` moves, for the requests served here.
pub fn ioctl_arg(request: u32) -> Option<IoctlArg> {
    match request {
        SIOCGIFCONF => Some(IoctlArg::InOut(IFCONF)),
        SIOCGIFNAME | SIOCGIFFLAGS | SIOCSIFFLAGS | SIOCGIFADDR | SIOCGIFDSTADDR
        | SIOCGIFBRDADDR | SIOCGIFNETMASK | SIOCGIFMETRIC | SIOCGIFMTU | SIOCSIFMTU
        | SIOCGIFHWADDR | SIOCGIFINDEX | SIOCGIFTXQLEN | SIOCGIFMAP => Some(IoctlArg::InOut(IFREQ)),
        _ => None,
    }
}

/// The name in an ifreq.
fn name_of(req: &[u8]) -> Result<&str, Errno> {
    let raw = req.get(..IFNAMSIZ).ok_or(Errno::EFAULT)?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    std::str::from_utf8(&raw[..end]).map_err(|_| Errno::ENODEV)
}

/// A `struct sockaddr_in` of `a` (IPv4), as the union holds it.
fn sockaddr_in(a: Option<IpAddr>) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    if let Some(IpAddr::V4(v)) = a {
        s[4..8].copy_from_slice(&v.octets());
    }
    s
}

/// The link's first IPv4 address and prefix (`EADDRNOTAVAIL` if none,
/// as the kernel answers).
fn ipv4_of(l: &Link) -> Result<(IpAddr, u8), Errno> {
    l.addrs
        .iter()
        .copied()
        .find(|(a, _)| a.is_ipv4())
        .ok_or(Errno::new(libc::EADDRNOTAVAIL))
}

/// Serves the interface ioctl `request` on a socket of `stack`; `data`
/// is the copied `struct ifreq` or `struct ifconf`; `ENOTTY` for other
/// requests.
pub fn ioctl(
    stack: &dyn Configure,
    request: u32,
    data: &mut [u8],
    memory: &dyn CallerMemory,
) -> Result<i64, Errno> {
    if ioctl_arg(request).is_none() {
        return Err(Errno::new(libc::ENOTTY));
    }
    if request == SIOCGIFCONF {
        return ifconf(&stack.snapshot(), data, memory);
    }
    if data.len() < IFREQ {
        return Err(Errno::EFAULT);
    }
    let conf = stack.snapshot();
    if request == SIOCGIFNAME {
        let index = i32::from_ne_bytes([data[16], data[17], data[18], data[19]]);
        let l = conf.link(u32::try_from(index).map_err(|_| Errno::ENODEV)?)?;
        data[..IFNAMSIZ].fill(0);
        data[..l.name.len().min(IFNAMSIZ - 1)]
            .copy_from_slice(&l.name.as_bytes()[..l.name.len().min(IFNAMSIZ - 1)]);
        return Ok(0);
    }
    let l = conf.by_name(name_of(data)?)?.clone();
    let union = &mut data[IFNAMSIZ..IFREQ];
    let int = |u: &mut [u8], v: i32| u[..4].copy_from_slice(&v.to_ne_bytes());
    match request {
        SIOCGIFFLAGS => union[..2].copy_from_slice(&(l.flags() as u16).to_ne_bytes()),
        SIOCSIFFLAGS => {
            let flags = u16::from_ne_bytes([union[0], union[1]]);
            let up = flags & libc::IFF_UP as u16 != 0;
            stack.change(&mut |c| c.set_link(l.index, Some(up), None))?;
        }
        SIOCGIFADDR | SIOCGIFDSTADDR => {
            let (a, _) = ipv4_of(&l)?;
            union[..16].copy_from_slice(&sockaddr_in(Some(a)));
        }
        SIOCGIFBRDADDR => {
            ipv4_of(&l)?;
            // No broadcast address was set (`ip addr add` without `brd`).
            union[..16].copy_from_slice(&sockaddr_in(None));
        }
        SIOCGIFNETMASK => {
            let (_, p) = ipv4_of(&l)?;
            let mask = crate::netconf::network(IpAddr::V4([255; 4].into()), p);
            union[..16].copy_from_slice(&sockaddr_in(Some(mask)));
        }
        SIOCGIFMETRIC => int(union, 0),
        SIOCGIFMTU => int(union, l.mtu as i32),
        SIOCSIFMTU => {
            let mtu = i32::from_ne_bytes([union[0], union[1], union[2], union[3]]);
            let mtu = u32::try_from(mtu).map_err(|_| Errno::EINVAL)?;
            stack.change(&mut |c| c.set_link(l.index, None, Some(mtu)))?;
        }
        SIOCGIFHWADDR => {
            let family = match l.kind {
                LinkKind::Loopback => ARPHRD_LOOPBACK,
                LinkKind::Ethernet(_) => ARPHRD_ETHER,
            };
            union[..16].fill(0);
            union[..2].copy_from_slice(&family.to_ne_bytes());
            union[2..8].copy_from_slice(&l.mac());
        }
        SIOCGIFINDEX => int(union, l.index as i32),
        SIOCGIFTXQLEN => int(union, 1000),
        // SIOCGIFMAP: no device memory, IRQ or DMA.
        _ => union.fill(0),
    }
    Ok(0)
}

/// `SIOCGIFCONF`: an ifreq with name and IPv4 address for each address
/// of each up link, as many as fit; with a null buffer, the length all
/// would take.
fn ifconf(conf: &NetConf, data: &mut [u8], memory: &dyn CallerMemory) -> Result<i64, Errno> {
    if data.len() < IFCONF {
        return Err(Errno::EFAULT);
    }
    let len = i32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
    let buf = u64::from_ne_bytes([
        data[8], data[9], data[10], data[11], data[12], data[13], data[14], data[15],
    ]);
    let mut entries = Vec::new();
    for l in conf.links.iter().filter(|l| l.up) {
        for &(a, _) in l.addrs.iter().filter(|(a, _)| a.is_ipv4()) {
            let mut r = [0u8; IFREQ];
            let n = l.name.len().min(IFNAMSIZ - 1);
            r[..n].copy_from_slice(&l.name.as_bytes()[..n]);
            r[IFNAMSIZ..IFNAMSIZ + 16].copy_from_slice(&sockaddr_in(Some(a)));
            entries.push(r);
        }
    }
    let written = if buf == 0 {
        entries.len() * IFREQ
    } else {
        let room = usize::try_from(len).map_err(|_| Errno::EINVAL)? / IFREQ;
        let out: Vec<u8> = entries.iter().take(room).flatten().copied().collect();
        memory.write(buf, &out)?;
        out.len()
    };
    data[..4].copy_from_slice(&(written as i32).to_ne_bytes());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::sync::Mutex;

    struct Mem(RefCell<Vec<u8>>);
    impl CallerMemory for Mem {
        fn read(&self, _addr: u64, _buf: &mut [u8]) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
        fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
            let mut m = self.0.borrow_mut();
            let at = addr as usize - 0x1000;
            m[at..at + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    fn ifreq(name: &str) -> Vec<u8> {
        let mut r = vec![0u8; IFREQ];
        r[..name.len()].copy_from_slice(name.as_bytes());
        r
    }

    #[test]
    fn interfaces_answer_the_classic_ioctls() {
        let stack = Mutex::new(NetConf::loopback());
        let mem = Mem(RefCell::new(vec![0; 200]));
        let mut r = ifreq("lo");
        ioctl(&stack, SIOCGIFADDR, &mut r, &mem).unwrap();
        assert_eq!(&r[20..24], &[127, 0, 0, 1]);
        ioctl(&stack, SIOCGIFNETMASK, &mut r, &mem).unwrap();
        assert_eq!(&r[20..24], &[255, 0, 0, 0]);
        ioctl(&stack, SIOCGIFINDEX, &mut r, &mem).unwrap();
        assert_eq!(&r[16..20], &1i32.to_ne_bytes());
        let mut r = ifreq("eth9");
        assert_eq!(
            ioctl(&stack, SIOCGIFFLAGS, &mut r, &mem),
            Err(Errno::ENODEV)
        );
        assert_eq!(
            ioctl(&stack, 0x89ff, &mut r, &mem),
            Err(Errno::new(libc::ENOTTY))
        );
        let mut c = [0u8; IFCONF];
        c[..4].copy_from_slice(&200i32.to_ne_bytes());
        c[8..].copy_from_slice(&0x1000u64.to_ne_bytes());
        ioctl(&stack, SIOCGIFCONF, &mut c, &mem).unwrap();
        assert_eq!(&c[..4], &40i32.to_ne_bytes());
        assert_eq!(&mem.0.borrow()[..3], b"lo\0");
        let mut r = ifreq("lo");
        r[16..18].copy_from_slice(&0u16.to_ne_bytes());
        ioctl(&stack, SIOCSIFFLAGS, &mut r, &mem).unwrap();
        assert!(!stack.snapshot().links[0].up);
    }
}
