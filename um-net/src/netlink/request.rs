//! The `NETLINK_ROUTE` requests a virtual stack answers: dumps and gets
//! of links, addresses and routes, and the changes `ip` makes, each
//! turned into a [`NetConf`] call and answered as the kernel would
//! (`NLMSG_ERROR` with 0 or `-errno`, `NLMSG_DONE` after a dump).

use std::net::IpAddr;

use viewos_core::creds::Creds;
use viewos_core::Errno;

use super::wire::{self, *};
use crate::netconf::{Configure, NetConf, Route};

/// `IFF_UP`, as netlink carries it.
const IFF_UP: u32 = libc::IFF_UP as u32;

/// The answers to one request (each a datagram), from the netlink socket
/// of port `port`.
pub fn answer(stack: &dyn Configure, h: &Header, payload: &[u8], port: u32) -> Vec<Vec<u8>> {
    let dump = h.flags & NLM_F_DUMP == NLM_F_DUMP;
    let ack = h.flags & NLM_F_ACK != 0;
    let reply = |kind: u16, flags: u16, p: &[u8]| message(kind, flags, h.seq, port, p);
    let status = |r: Result<(), Errno>| match r {
        Ok(()) if !ack => Vec::new(),
        Ok(()) => vec![error(h, payload, 0, port)],
        Err(e) => match extack(h.kind, family_of(payload), e.raw()) {
            Some(msg) => vec![error_with(h, payload, e.raw(), port, msg)],
            None => vec![error(h, payload, e.raw(), port)],
        },
    };
    if dump {
        let conf = stack.snapshot();
        let mut d: Vec<u8> = Vec::new();
        let want = family_of(payload);
        let wanted = |a: &IpAddr| want == 0 || want == family(a);
        match h.kind {
            RTM_GETLINK => {
                for l in &conf.links {
                    d.extend(reply(RTM_NEWLINK, NLM_F_MULTI, &link(l)));
                }
            }
            RTM_GETADDR => {
                // The kernel's order: IPv4 of every link, then IPv6.
                for v4 in [true, false] {
                    for l in &conf.links {
                        let mut mine: Vec<&(IpAddr, u8)> =
                            l.addrs.iter().filter(|(a, _)| a.is_ipv4() == v4).collect();
                        // IPv6: global, then loopback, then link-local.
                        mine.sort_by_key(|(a, _)| v6_order(a));
                        for &&(a, prefix) in mine.iter().filter(|(a, _)| wanted(a)) {
                            d.extend(reply(RTM_NEWADDR, NLM_F_MULTI, &addr(l, a, prefix)));
                        }
                    }
                }
            }
            RTM_GETROUTE => {
                for r in conf.main_routes().iter().filter(|r| wanted(&r.dst)) {
                    d.extend(reply(RTM_NEWROUTE, NLM_F_MULTI, &route(r)));
                }
            }
            // Other dumps (neighbours, rules, ...): nothing to show.
            k if k % 4 == 2 => {}
            _ => return status(Err(Errno::new(libc::EOPNOTSUPP))),
        }
        let mut out = Vec::new();
        if !d.is_empty() {
            out.push(d);
        }
        out.push(reply(NLMSG_DONE, NLM_F_MULTI, &0i32.to_ne_bytes()));
        return out;
    }
    let got = match h.kind {
        RTM_GETLINK => get_link(&stack.snapshot(), payload),
        RTM_GETROUTE => get_route(&stack.snapshot(), payload),
        RTM_NEWLINK | RTM_SETLINK => return status(set_link(stack, h, payload)),
        RTM_DELLINK => return status(Err(Errno::new(libc::EOPNOTSUPP))),
        RTM_NEWADDR | RTM_DELADDR => return status(change_addr(stack, h, payload)),
        RTM_NEWROUTE | RTM_DELROUTE => return status(change_route(stack, h, payload)),
        _ => return status(Err(Errno::new(libc::EOPNOTSUPP))),
    };
    match got {
        Ok((kind, p)) => {
            let mut out = vec![reply(kind, 0, &p)];
            if ack {
                out.push(error(h, payload, 0, port));
            }
            out
        }
        Err(e) => status(Err(e)),
    }
}

/// Where the kernel lists an IPv6 address among a link's (0 for IPv4).
fn v6_order(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V6(v) if v.is_loopback() => 1,
        IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => 2,
        _ => 0,
    }
}

/// The message the kernel gives with errno `e` for a request of `kind`
/// and address `family`, as `ip` shows it (`Error: ...`).
fn extack(kind: u16, family: u8, e: i32) -> Option<&'static str> {
    let v4 = i32::from(family) == libc::AF_INET;
    Some(match (kind, e) {
        (RTM_NEWADDR, libc::EEXIST) if v4 => "ipv4: Address already assigned.",
        (RTM_NEWADDR, libc::EEXIST) => "ipv6: address already assigned.",
        (RTM_DELADDR, libc::EADDRNOTAVAIL) if v4 => "ipv4: Address not found.",
        (RTM_DELADDR, libc::EADDRNOTAVAIL) => "ipv6: address not found.",
        (RTM_NEWROUTE, libc::EINVAL) => "Invalid prefix for given prefix length.",
        (RTM_NEWROUTE, libc::ENETUNREACH) => "Nexthop has invalid gateway.",
        (RTM_NEWROUTE, libc::ENETDOWN) => "Nexthop device is not up.",
        _ => return None,
    })
}

/// The index of the link a request names: its `ifi_index`/`ifa_index`,
/// else its `IFLA_IFNAME`. `ENODEV` if there is no such link.
fn link_index(conf: &NetConf, index: u32, attrs: &[(u16, &[u8])]) -> Result<u32, Errno> {
    if index != 0 {
        return conf.link(index).map(|l| l.index);
    }
    let name = find(attrs, IFLA_IFNAME)
        .and_then(as_str)
        .ok_or(Errno::ENODEV)?;
    conf.by_name(name).map(|l| l.index)
}

/// A message's attributes, kind and value.
type Attrs<'a> = Vec<(u16, &'a [u8])>;

/// `struct ifinfomsg`: its index, flags and change mask, and attributes.
fn ifinfomsg(payload: &[u8]) -> Result<(u32, u32, u32, Attrs<'_>), Errno> {
    const SIZE: usize = 16;
    let attrs = attributes(payload, SIZE).ok_or(Errno::EINVAL)?;
    let u =
        |o: usize| u32::from_ne_bytes([payload[o], payload[o + 1], payload[o + 2], payload[o + 3]]);
    Ok((u(4), u(8), u(12), attrs))
}

/// `RTM_GETLINK` of one link (`ip link show dev X`, and how `ip` finds
/// a name's index).
fn get_link(conf: &NetConf, payload: &[u8]) -> Result<(u16, Vec<u8>), Errno> {
    let (index, _, _, attrs) = ifinfomsg(payload)?;
    let i = link_index(conf, index, &attrs)?;
    Ok((RTM_NEWLINK, link(conf.link(i)?)))
}

/// `RTM_NEWLINK`/`RTM_SETLINK` on a link that exists: up or down, MTU.
/// New links (`ip link add`) are not supported.
fn set_link(stack: &dyn Configure, h: &Header, payload: &[u8]) -> Result<(), Errno> {
    let (index, flags, change, attrs) = ifinfomsg(payload)?;
    let conf = stack.snapshot();
    let i = match link_index(&conf, index, &attrs) {
        Ok(i) => i,
        Err(_) if h.flags & NLM_F_CREATE != 0 || find(&attrs, IFLA_LINKINFO).is_some() => {
            return Err(Errno::new(libc::EOPNOTSUPP))
        }
        Err(e) => return Err(e),
    };
    if h.kind == RTM_NEWLINK && h.flags & NLM_F_EXCL != 0 {
        return Err(Errno::new(libc::EEXIST));
    }
    // ifi_change 0 with flags: every flag (the old interface); neither:
    // no change of flags.
    let up = if change & IFF_UP != 0 || (change == 0 && flags != 0) {
        Some(flags & IFF_UP != 0)
    } else {
        None
    };
    let mtu = match find(&attrs, IFLA_MTU) {
        Some(v) => Some(as_u32(v).ok_or(Errno::EINVAL)?),
        None => None,
    };
    stack.change(&mut |c| c.set_link(i, up, mtu))
}

/// `RTM_NEWADDR` (`ip addr add`, `replace`) and `RTM_DELADDR`.
fn change_addr(stack: &dyn Configure, h: &Header, payload: &[u8]) -> Result<(), Errno> {
    let attrs = attributes(payload, 8).ok_or(Errno::EINVAL)?;
    let (family, prefix) = (payload[0], payload[1]);
    let index = u32::from_ne_bytes([payload[4], payload[5], payload[6], payload[7]]);
    if i32::from(family) != libc::AF_INET && i32::from(family) != libc::AF_INET6 {
        return Err(Errno::new(libc::EAFNOSUPPORT));
    }
    let raw = find(&attrs, IFA_LOCAL)
        .or_else(|| find(&attrs, IFA_ADDRESS))
        .ok_or(Errno::EINVAL)?;
    let a = as_ip(raw, family).ok_or(Errno::EINVAL)?;
    if h.kind == RTM_NEWADDR {
        if index == 0 {
            return Err(Errno::ENODEV);
        }
        let replace = h.flags & NLM_F_REPLACE != 0 || h.flags & NLM_F_EXCL == 0;
        stack.change(&mut |c| c.add_addr(index, a, prefix, replace))
    } else {
        stack.change(&mut |c| {
            c.link(index)?;
            c.del_addr(index, a, prefix)
        })
    }
}

/// `struct rtmsg`'s fields a change uses, and its attributes.
struct RtMsg<'a> {
    family: u8,
    dst_len: u8,
    table: u8,
    kind: u8,
    attrs: Attrs<'a>,
}

fn rtmsg(payload: &[u8]) -> Result<RtMsg<'_>, Errno> {
    let attrs = attributes(payload, 12).ok_or(Errno::EINVAL)?;
    Ok(RtMsg {
        family: payload[0],
        dst_len: payload[1],
        table: payload[4],
        kind: payload[7],
        attrs,
    })
}

/// An address attribute of a route message, if present.
fn rt_addr(m: &RtMsg<'_>, kind: u16) -> Result<Option<IpAddr>, Errno> {
    match find(&m.attrs, kind) {
        Some(v) => as_ip(v, m.family).map(Some).ok_or(Errno::EINVAL),
        None => Ok(None),
    }
}

/// The unspecified address of a family (a default route's destination).
fn any_of(family: u8) -> Result<IpAddr, Errno> {
    match i32::from(family) {
        libc::AF_INET => Ok(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        libc::AF_INET6 => Ok(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        _ => Err(Errno::new(libc::EAFNOSUPPORT)),
    }
}

/// `RTM_NEWROUTE` (`ip route add`, `replace`) and `RTM_DELROUTE`, in the
/// main table.
fn change_route(stack: &dyn Configure, h: &Header, payload: &[u8]) -> Result<(), Errno> {
    let m = rtmsg(payload)?;
    let table = find(&m.attrs, RTA_TABLE)
        .and_then(as_u32)
        .unwrap_or(u32::from(m.table));
    if table != 0 && table != u32::from(RT_TABLE_MAIN) {
        return Err(Errno::new(libc::EOPNOTSUPP));
    }
    let dst = rt_addr(&m, RTA_DST)?.map_or_else(|| any_of(m.family), Ok)?;
    let gateway = rt_addr(&m, RTA_GATEWAY)?;
    let oif = find(&m.attrs, RTA_OIF).and_then(as_u32).unwrap_or(0);
    if h.kind == RTM_DELROUTE {
        return stack.change(&mut |c| c.del_route(dst, m.dst_len, gateway, oif));
    }
    // Only unicast routes (no blackhole, unreachable, prohibit).
    if m.kind != RTN_UNICAST && m.kind != 0 {
        return Err(Errno::new(libc::EOPNOTSUPP));
    }
    let replace = h.flags & NLM_F_REPLACE != 0;
    let r = Route {
        dst,
        prefix: m.dst_len,
        gateway,
        oif,
        src: None,
        connected: false,
    };
    stack.change(&mut |c| {
        if oif != 0 {
            c.link(oif)?;
        }
        c.add_route(r, replace)
    })
}

/// `RTM_GETROUTE` of one destination (`ip route get`).
fn get_route(conf: &NetConf, payload: &[u8]) -> Result<(u16, Vec<u8>), Errno> {
    let m = rtmsg(payload)?;
    let dst = rt_addr(&m, RTA_DST)?.map_or_else(|| any_of(m.family), Ok)?;
    let found = conf.route_get(dst)?;
    let uid = Creds::of_process().uid;
    Ok((RTM_NEWROUTE, wire::route_get(dst, &found, uid)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn errno_of(out: &[Vec<u8>]) -> i32 {
        let msgs = parse(&out[0]);
        assert_eq!(msgs[0].0.kind, NLMSG_ERROR);
        -i32::from_ne_bytes(msgs[0].1[..4].try_into().unwrap())
    }

    fn addr_req(kind: u16, flags: u16, index: u32, a: [u8; 4], prefix: u8) -> (Header, Vec<u8>) {
        let mut p = vec![libc::AF_INET as u8, prefix, 0, 0];
        p.extend_from_slice(&index.to_ne_bytes());
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&IFA_LOCAL.to_ne_bytes());
        p.extend_from_slice(&a);
        let m = message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, 1, 0, &p);
        let (h, _) = parse(&m)[0];
        (h, p)
    }

    #[test]
    fn addresses_are_added_and_deleted_with_acks_and_errnos() {
        let mut c = NetConf::loopback();
        c.add_ethernet("vd0", [2, 0, 0, 0, 0, 1], 1500);
        let s = Mutex::new(c);
        let excl = NLM_F_CREATE | NLM_F_EXCL;
        let (h, p) = addr_req(RTM_NEWADDR, excl, 2, [10, 0, 0, 1], 24);
        assert_eq!(errno_of(&answer(&s, &h, &p, 5)), 0);
        assert_eq!(errno_of(&answer(&s, &h, &p, 5)), libc::EEXIST);
        let (h, p) = addr_req(RTM_NEWADDR, excl, 9, [10, 0, 0, 1], 24);
        assert_eq!(errno_of(&answer(&s, &h, &p, 5)), libc::ENODEV);
        let (h, p) = addr_req(RTM_DELADDR, 0, 2, [10, 0, 0, 2], 24);
        assert_eq!(errno_of(&answer(&s, &h, &p, 5)), libc::EADDRNOTAVAIL);
        let (h, p) = addr_req(RTM_DELADDR, 0, 2, [10, 0, 0, 1], 24);
        assert_eq!(errno_of(&answer(&s, &h, &p, 5)), 0);
        assert!(s.snapshot().links[1].addrs.is_empty());
        // A truncated message is EINVAL.
        let m = message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK, 1, 0, &[2, 24]);
        let (h, p) = parse(&m)[0];
        assert_eq!(errno_of(&answer(&s, &h, p, 5)), libc::EINVAL);
    }
}
