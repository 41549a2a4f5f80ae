//! The message formats of `NETLINK_ROUTE`, as `linux/netlink.h`,
//! `linux/rtnetlink.h`, `linux/if_link.h` and `linux/if_addr.h` define
//! them: headers, attributes, and the link, address and route messages
//! of a stack's configuration ([`crate::netconf`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::netconf::{Link, LinkKind, Lookup, Route};

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
/// `NLM_F_REPLACE`.
pub const NLM_F_REPLACE: u16 = 0x100;
/// `NLM_F_EXCL`.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `RTM_NEWLINK`.
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_DELLINK`.
pub const RTM_DELLINK: u16 = 17;
/// `RTM_GETLINK`.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_SETLINK`.
pub const RTM_SETLINK: u16 = 19;
/// `RTM_NEWADDR`.
pub const RTM_NEWADDR: u16 = 20;
/// `RTM_DELADDR`.
pub const RTM_DELADDR: u16 = 21;
/// `RTM_GETADDR`.
pub const RTM_GETADDR: u16 = 22;
/// `RTM_NEWROUTE`.
pub const RTM_NEWROUTE: u16 = 24;
/// `RTM_DELROUTE`.
pub const RTM_DELROUTE: u16 = 25;
/// `RTM_GETROUTE`.
pub const RTM_GETROUTE: u16 = 26;

/// `IFLA_IFNAME`.
pub const IFLA_IFNAME: u16 = 3;
/// `IFLA_MTU`.
pub const IFLA_MTU: u16 = 4;
/// `IFLA_LINKINFO` (`ip link add TYPE`).
pub const IFLA_LINKINFO: u16 = 18;
/// `IFA_ADDRESS`.
pub const IFA_ADDRESS: u16 = 1;
/// `IFA_LOCAL`.
pub const IFA_LOCAL: u16 = 2;
/// `RTA_DST`.
pub const RTA_DST: u16 = 1;
/// `RTA_OIF`.
pub const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`.
pub const RTA_GATEWAY: u16 = 5;
/// `RTA_TABLE`.
pub const RTA_TABLE: u16 = 15;
/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u8 = 254;
/// `RTN_UNICAST`.
pub const RTN_UNICAST: u8 = 1;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_QDISC: u16 = 6;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_GROUP: u16 = 27;
const IFA_LABEL: u16 = 3;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_PREF: u16 = 20;
const RTA_UID: u16 = 25;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const IFA_F_PERMANENT: u8 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_BOOT: u8 = 3;
const RTN_LOCAL: u8 = 2;
const RTM_F_CLONED: u32 = 0x200;
const RTCF_LOCAL: u32 = 0x8000_0000;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_DOWN: u8 = 2;
const IF_OPER_UP: u8 = 6;

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

fn u16_at(d: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([d[o], d[o + 1]])
}

fn u32_at(d: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}

/// The messages in `data`, each header with its payload, up to the
/// first header whose length does not fit (the rest is ignored, as
/// the kernel does: programs send their request buffers whole).
pub fn parse(mut data: &[u8]) -> Vec<(Header, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let h = Header {
            len: u32_at(data, 0),
            kind: u16_at(data, 4),
            flags: u16_at(data, 6),
            seq: u32_at(data, 8),
            pid: u32_at(data, 12),
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

/// The attributes after a message's fixed part of `fixed` bytes: each
/// kind (without the nested and byte-order bits) and value. `None` if
/// the payload is shorter than its fixed part or an attribute's length
/// is wrong (the kernel's `EINVAL`).
pub fn attributes(payload: &[u8], fixed: usize) -> Option<Vec<(u16, &[u8])>> {
    let mut data = payload.get(fixed..)?;
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = usize::from(u16_at(data, 0));
        if len < 4 || len > data.len() {
            return None;
        }
        out.push((u16_at(data, 2) & 0x3fff, &data[4..len]));
        data = &data[align(len).min(data.len())..];
    }
    Some(out)
}

/// The value of attribute `kind`, if present.
pub fn find<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

/// A `u32` attribute's value; `None` if it is not 4 bytes.
pub fn as_u32(v: &[u8]) -> Option<u32> {
    (v.len() == 4).then(|| u32_at(v, 0))
}

/// A string attribute's value, up to its NUL.
pub fn as_str(v: &[u8]) -> Option<&str> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    std::str::from_utf8(&v[..end]).ok()
}

/// An address attribute of `family`; `None` for a wrong length.
pub fn as_ip(v: &[u8], family: u8) -> Option<IpAddr> {
    match (i32::from(family), v.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
        (libc::AF_INET6, 16) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(v);
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
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
    let mut echo = message(
        request.kind,
        request.flags,
        request.seq,
        request.pid,
        if errno == 0 { &[] } else { request_payload },
    );
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

fn family_and_bytes(a: IpAddr) -> (u8, Vec<u8>) {
    match a {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    }
}

/// The address family of `a`, as netlink gives it.
pub fn family(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    }
}

/// The `RTM_NEWLINK` payload of `iface`.
pub fn link(iface: &Link) -> Vec<u8> {
    let ether = matches!(iface.kind, LinkKind::Ethernet(_));
    let mut p = vec![0, 0]; // ifi_family: AF_UNSPEC
    let hw = if ether { ARPHRD_ETHER } else { ARPHRD_LOOPBACK };
    p.extend_from_slice(&hw.to_ne_bytes());
    p.extend_from_slice(&(iface.index as i32).to_ne_bytes());
    p.extend_from_slice(&iface.flags().to_ne_bytes());
    p.extend_from_slice(&0u32.to_ne_bytes()); // ifi_change
    attr(&mut p, IFLA_IFNAME, &cstr(&iface.name));
    attr(&mut p, IFLA_TXQLEN, &1000u32.to_ne_bytes());
    let oper = match (ether, iface.up) {
        (_, false) => IF_OPER_DOWN,
        (false, true) => IF_OPER_UNKNOWN,
        (true, true) => IF_OPER_UP,
    };
    attr(&mut p, IFLA_OPERSTATE, &[oper]);
    attr(&mut p, IFLA_LINKMODE, &[0]);
    attr(&mut p, IFLA_MTU, &iface.mtu.to_ne_bytes());
    attr(&mut p, IFLA_GROUP, &0u32.to_ne_bytes());
    let qdisc = if ether { "pfifo_fast" } else { "noqueue" };
    attr(&mut p, IFLA_QDISC, &cstr(qdisc));
    attr(&mut p, IFLA_ADDRESS, &iface.mac());
    attr(
        &mut p,
        IFLA_BROADCAST,
        &if ether { [0xff; 6] } else { [0; 6] },
    );
    p
}

/// The scope of an address (or a route to it) on `iface`.
fn scope_of(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(v) if v.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V6(v) if v.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => RT_SCOPE_LINK,
        _ => RT_SCOPE_UNIVERSE,
    }
}

/// `NLM_F_CAPPED`: an error does not echo the request's payload.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// An `NLMSG_ERROR` answering `request` with `-errno` and the message
/// the kernel gives as an extended ack (`ip` prints `Error: MESSAGE`).
pub fn error_with(
    request: &Header,
    request_payload: &[u8],
    errno: i32,
    pid: u32,
    msg: &str,
) -> Vec<u8> {
    let mut m = error(request, request_payload, errno, pid);
    m[6..8].copy_from_slice(&NLM_F_ACK_TLVS.to_ne_bytes());
    attr(&mut m, NLMSGERR_ATTR_MSG, &cstr(msg));
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// The `RTM_NEWADDR` payload of `addr`/`prefix` on `iface`.
pub fn addr(iface: &Link, addr: IpAddr, prefix: u8) -> Vec<u8> {
    let (family, bytes) = family_and_bytes(addr);
    let mut p = vec![family, prefix, IFA_F_PERMANENT, scope_of(addr)];
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

/// A `struct rtmsg` and the table attribute.
fn rtmsg(
    family: u8,
    dst_len: u8,
    table: u8,
    proto: u8,
    scope: u8,
    kind: u8,
    flags: u32,
) -> Vec<u8> {
    let mut p = vec![family, dst_len, 0, 0, table, proto, scope, kind];
    p.extend_from_slice(&flags.to_ne_bytes());
    attr(&mut p, RTA_TABLE, &u32::from(table).to_ne_bytes());
    p
}

/// The `RTM_NEWROUTE` payload of route `r` of the main table.
pub fn route(r: &Route) -> Vec<u8> {
    let (family, dst) = family_and_bytes(r.dst);
    let (proto, scope) = match (r.connected, r.gateway) {
        (true, _) => (RTPROT_KERNEL, RT_SCOPE_LINK),
        (false, None) => (RTPROT_BOOT, RT_SCOPE_LINK),
        (false, Some(_)) => (RTPROT_BOOT, RT_SCOPE_UNIVERSE),
    };
    // IPv6 routes have the kernel's metrics (and show scope universe).
    let v6 = r.dst.is_ipv6();
    let scope = if v6 { RT_SCOPE_UNIVERSE } else { scope };
    let mut p = rtmsg(
        family,
        r.prefix,
        RT_TABLE_MAIN,
        proto,
        scope,
        RTN_UNICAST,
        0,
    );
    if r.prefix > 0 {
        attr(&mut p, RTA_DST, &dst);
    }
    if v6 {
        let metric: u32 = if r.connected { 256 } else { 1024 };
        attr(&mut p, RTA_PRIORITY, &metric.to_ne_bytes());
    }
    if let Some(src) = r.src {
        attr(&mut p, RTA_PREFSRC, &family_and_bytes(src).1);
    }
    if let Some(g) = r.gateway {
        attr(&mut p, RTA_GATEWAY, &family_and_bytes(g).1);
    }
    attr(&mut p, RTA_OIF, &r.oif.to_ne_bytes());
    if v6 {
        attr(&mut p, RTA_PREF, &[0]);
    }
    p
}

/// The `RTM_NEWROUTE` payload answering `ip route get dst` (a cloned
/// route, as the kernel's), for a caller of `uid`.
pub fn route_get(dst: IpAddr, l: &Lookup, uid: u32) -> Vec<u8> {
    let (family, bytes) = family_and_bytes(dst);
    let max = if dst.is_ipv4() { 32 } else { 128 };
    let mut p = if l.local {
        let flags = RTM_F_CLONED | RTCF_LOCAL;
        rtmsg(
            family,
            max,
            RT_TABLE_MAIN,
            RTPROT_KERNEL,
            RT_SCOPE_HOST,
            RTN_LOCAL,
            flags,
        )
    } else {
        rtmsg(
            family,
            max,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
            RTM_F_CLONED,
        )
    };
    attr(&mut p, RTA_DST, &bytes);
    attr(&mut p, RTA_OIF, &l.oif.to_ne_bytes());
    if let Some(src) = l.src {
        attr(&mut p, RTA_PREFSRC, &family_and_bytes(src).1);
    }
    if let Some(g) = l.gateway {
        attr(&mut p, RTA_GATEWAY, &family_and_bytes(g).1);
    }
    attr(&mut p, RTA_UID, &uid.to_ne_bytes());
    p
}

/// The address family a request asks for (its first byte), 0 for all.
pub fn family_of(payload: &[u8]) -> u8 {
    payload.first().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_and_bad_lengths_fail() {
        let mut p = vec![0u8; 8];
        attr(&mut p, IFA_LOCAL, &[10, 0, 0, 1]);
        attr(&mut p, IFLA_IFNAME, b"vd0\0");
        let a = attributes(&p, 8).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            as_ip(find(&a, IFA_LOCAL).unwrap(), libc::AF_INET as u8),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(as_str(find(&a, IFLA_IFNAME).unwrap()), Some("vd0"));
        assert_eq!(as_ip(&[1, 2, 3], libc::AF_INET as u8), None);
        assert!(attributes(&p, 200).is_none());
        let mut bad = vec![0u8; 8];
        bad.extend_from_slice(&[40, 0, 1, 0, 1, 2]);
        assert!(attributes(&bad, 8).is_none());
    }
}
