//! The configuration of a virtual stack as `ip` sees it: its links, their
//! addresses, and its routes, with the changes `ip` asks for and the
//! errnos the kernel answers to bad ones.
//!
//! This is the model only: a stack keeps one [`NetConf`] and applies it
//! to its interface after every change ([`Configure`]).

use std::net::IpAddr;

use viewos_core::Errno;

/// The kind of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// The loopback (`lo`).
    Loopback,
    /// An Ethernet interface with this MAC address (a VDE port).
    Ethernet([u8; 6]),
}

/// One interface of a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its index (1 for the loopback).
    pub index: u32,
    /// Its name (`lo`, `vd0`).
    pub name: String,
    /// Loopback or Ethernet.
    pub kind: LinkKind,
    /// Administratively up (`ip link set up`).
    pub up: bool,
    /// MTU.
    pub mtu: u32,
    /// Its addresses, with their prefix lengths, oldest first.
    pub addrs: Vec<(IpAddr, u8)>,
}

impl Link {
    /// The `IFF_*` flags `ip link` shows.
    pub fn flags(&self) -> u32 {
        let mut f = match self.kind {
            LinkKind::Loopback => libc::IFF_LOOPBACK,
            LinkKind::Ethernet(_) => libc::IFF_BROADCAST | libc::IFF_MULTICAST,
        } as u32;
        if self.up {
            f |= (libc::IFF_UP | libc::IFF_RUNNING | libc::IFF_LOWER_UP) as u32;
        }
        f
    }

    /// The MAC address (all zeros for the loopback).
    pub fn mac(&self) -> [u8; 6] {
        match self.kind {
            LinkKind::Loopback => [0; 6],
            LinkKind::Ethernet(m) => m,
        }
    }
}

/// A route of the main table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination network (host bits zero).
    pub dst: IpAddr,
    /// Its prefix length (0: a default route).
    pub prefix: u8,
    /// The next hop, if not on the link.
    pub gateway: Option<IpAddr>,
    /// The outgoing link's index.
    pub oif: u32,
    /// The source address the kernel would pick (connected routes).
    pub src: Option<IpAddr>,
    /// Made by an address (`proto kernel scope link`), not by `ip route`.
    pub connected: bool,
}

/// How [`NetConf::route_get`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The address is one of the stack's own (`local`).
    pub local: bool,
    /// The next hop, if any.
    pub gateway: Option<IpAddr>,
    /// The outgoing link.
    pub oif: u32,
    /// The source address to use.
    pub src: Option<IpAddr>,
}

/// The links and routes of a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConf {
    /// Its links, by index.
    pub links: Vec<Link>,
    /// Routes added with `ip route` (connected ones are derived).
    pub routes: Vec<Route>,
}

/// A stack whose configuration `ip` changes: the netlink socket's view of
/// it.
pub trait Configure: Send + Sync {
    /// The configuration now.
    fn snapshot(&self) -> NetConf;

    /// Applies `change` to the configuration; on `Ok` the stack uses the
    /// new one, on an error nothing changed.
    fn change(
        &self,
        change: &mut dyn FnMut(&mut NetConf) -> Result<(), Errno>,
    ) -> Result<(), Errno>;
}

/// A configuration kept in memory only (tests, stacks without an
/// interface to apply it to).
impl Configure for std::sync::Mutex<NetConf> {
    fn snapshot(&self) -> NetConf {
        self.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn change(
        &self,
        change: &mut dyn FnMut(&mut NetConf) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut c = self.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = c.clone();
        change(&mut next)?;
        *c = next;
        Ok(())
    }
}

/// The EUI-64 link-local address of MAC address `mac` (`fe80::/64`).
pub fn link_local(mac: [u8; 6]) -> IpAddr {
    let [a, b, c, d, e, f] = mac;
    let mut x = [0u8; 16];
    x[..2].copy_from_slice(&[0xfe, 0x80]);
    x[8..].copy_from_slice(&[a ^ 2, b, c, 0xff, 0xfe, d, e, f]);
    IpAddr::V6(std::net::Ipv6Addr::from(x))
}

/// The longest prefix of a family.
fn max_prefix(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// `a` with only its first `prefix` bits.
pub fn network(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let bits = u32::from(v);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v) => {
            let bits = u128::from(v);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// True when `a` lies in `net`/`prefix`.
pub fn contains(net: IpAddr, prefix: u8, a: IpAddr) -> bool {
    net.is_ipv4() == a.is_ipv4() && network(net, prefix) == network(a, prefix)
}

impl NetConf {
    /// A stack with only its loopback, up, with `127.0.0.1/8` and `::1`.
    pub fn loopback() -> NetConf {
        NetConf {
            links: vec![Link {
                index: 1,
                name: "lo".into(),
                kind: LinkKind::Loopback,
                up: true,
                mtu: 65536,
                addrs: vec![
                    (IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8),
                    (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 128),
                ],
            }],
            routes: Vec::new(),
        }
    }

    /// Adds an Ethernet link named `name`, down and without addresses, as
    /// a new TAP or VDE interface starts; its index.
    pub fn add_ethernet(&mut self, name: &str, mac: [u8; 6], mtu: u32) -> u32 {
        let index = self.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
        self.links.push(Link {
            index,
            name: name.into(),
            kind: LinkKind::Ethernet(mac),
            up: false,
            mtu,
            addrs: Vec::new(),
        });
        index
    }

    /// The link of `index`.
    pub fn link(&self, index: u32) -> Result<&Link, Errno> {
        self.links
            .iter()
            .find(|l| l.index == index)
            .ok_or(Errno::ENODEV)
    }

    fn link_mut(&mut self, index: u32) -> Result<&mut Link, Errno> {
        self.links
            .iter_mut()
            .find(|l| l.index == index)
            .ok_or(Errno::ENODEV)
    }

    /// The link named `name`.
    pub fn by_name(&self, name: &str) -> Result<&Link, Errno> {
        self.links
            .iter()
            .find(|l| l.name == name)
            .ok_or(Errno::ENODEV)
    }

    /// `ip addr add`: `EEXIST` if the link has it with that prefix
    /// (unless `replace`), `ENODEV` for no such link, `EINVAL` for a
    /// prefix too long or an address that cannot be an interface's.
    pub fn add_addr(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix: u8,
        replace: bool,
    ) -> Result<(), Errno> {
        if prefix > max_prefix(&addr) || addr.is_unspecified() || addr.is_multicast() {
            return Err(Errno::EINVAL);
        }
        let link = self.link_mut(index)?;
        if let Some(at) = link.addrs.iter().position(|&(a, _)| a == addr) {
            if link.addrs[at].1 == prefix && !replace {
                return Err(Errno::new(libc::EEXIST));
            }
            link.addrs[at].1 = prefix;
            return Ok(());
        }
        link.addrs.push((addr, prefix));
        Ok(())
    }

    /// `ip addr del`: `EADDRNOTAVAIL` if the link does not have it (with
    /// that prefix). Routes whose gateway it no longer reaches go too.
    pub fn del_addr(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), Errno> {
        let link = self.link_mut(index)?;
        let at = link
            .addrs
            .iter()
            .position(|&(a, p)| a == addr && p == prefix)
            .ok_or(Errno::new(libc::EADDRNOTAVAIL))?;
        link.addrs.remove(at);
        self.drop_unreachable();
        Ok(())
    }

    /// `ip link set up/down` and `mtu`: `ENODEV` for no such link,
    /// `EINVAL` for an MTU below IPv4's 68 or above 65536. A link going
    /// down loses the routes through it, as in the kernel.
    pub fn set_link(
        &mut self,
        index: u32,
        up: Option<bool>,
        mtu: Option<u32>,
    ) -> Result<(), Errno> {
        if let Some(m) = mtu {
            if !(68..=65536).contains(&m) {
                return Err(Errno::EINVAL);
            }
        }
        let link = self.link_mut(index)?;
        if let Some(m) = mtu {
            link.mtu = m;
        }
        if let Some(up) = up {
            link.up = up;
            // An Ethernet link that comes up gets its IPv6 link-local
            // address, as the kernel gives it.
            if let (true, LinkKind::Ethernet(mac)) = (up, link.kind) {
                let ll = link_local(mac);
                if !link.addrs.iter().any(|&(a, _)| a == ll) {
                    link.addrs.push((ll, 64));
                }
            }
            if !up {
                self.routes.retain(|r| r.oif != index);
            }
        }
        Ok(())
    }

    /// The routes of the main table `ip route` shows: one per address
    /// of each up link's subnet (not the loopback's), then the added ones.
    pub fn main_routes(&self) -> Vec<Route> {
        let mut out = Vec::new();
        for l in self.links.iter().filter(|l| l.up) {
            for &(a, p) in &l.addrs {
                // The loopback's IPv4 and host routes are in the local
                // table only.
                if l.kind == LinkKind::Loopback && (a.is_ipv4() || p == 128) {
                    continue;
                }
                // IPv6 link routes show as the kernel's too.
                let r = Route {
                    dst: network(a, p),
                    prefix: p,
                    gateway: None,
                    oif: l.index,
                    src: a.is_ipv4().then_some(a),
                    connected: true,
                };
                if !out
                    .iter()
                    .any(|o: &Route| o.dst == r.dst && o.prefix == r.prefix)
                {
                    out.push(r);
                }
            }
        }
        out.extend(self.routes.iter().copied());
        // The kernel's order: by destination, longer prefixes first.
        out.sort_by_key(|r| (r.dst.is_ipv6(), r.dst, std::cmp::Reverse(r.prefix)));
        out
    }

    /// The up link with an address whose subnet holds `a` (`oif` 0: any).
    fn on_link(&self, a: IpAddr, oif: u32) -> Option<(u32, IpAddr)> {
        self.links
            .iter()
            .filter(|l| l.up && (oif == 0 || l.index == oif))
            .find_map(|l| {
                l.addrs
                    .iter()
                    .find(|&&(x, p)| contains(x, p, a))
                    .map(|&(x, _)| (l.index, x))
            })
    }

    /// `ip route add`: `EINVAL` for host bits set in the destination or
    /// a prefix too long, `ENODEV` for no device and no gateway or an
    /// unknown device, `ENETDOWN` for a device that is down,
    /// `ENETUNREACH` for a gateway no link reaches, `EEXIST` for a route
    /// to that destination already there (unless `replace`).
    pub fn add_route(&mut self, mut r: Route, replace: bool) -> Result<(), Errno> {
        if r.prefix > max_prefix(&r.dst) || network(r.dst, r.prefix) != r.dst {
            return Err(Errno::EINVAL);
        }
        if r.gateway.is_some_and(|g| g.is_ipv4() != r.dst.is_ipv4()) {
            return Err(Errno::EINVAL);
        }
        match r.gateway {
            Some(g) => {
                let (oif, _) = self
                    .on_link(g, r.oif)
                    .ok_or(Errno::new(libc::ENETUNREACH))?;
                r.oif = oif;
            }
            None if r.oif == 0 => return Err(Errno::ENODEV),
            None if !self.link(r.oif)?.up => return Err(Errno::new(libc::ENETDOWN)),
            None => {}
        }
        r.connected = false;
        r.src = None;
        let same = |o: &Route| o.dst == r.dst && o.prefix == r.prefix;
        if let Some(at) = self.routes.iter().position(same) {
            if !replace {
                return Err(Errno::new(libc::EEXIST));
            }
            self.routes[at] = r;
            return Ok(());
        }
        self.routes.push(r);
        Ok(())
    }

    /// `ip route del`: the added route to `dst`/`prefix` (through
    /// `gateway` and `oif` when given); `ESRCH` if there is none.
    pub fn del_route(
        &mut self,
        dst: IpAddr,
        prefix: u8,
        gateway: Option<IpAddr>,
        oif: u32,
    ) -> Result<(), Errno> {
        let at = self
            .routes
            .iter()
            .position(|r| {
                r.dst.is_ipv4() == dst.is_ipv4()
                    && r.dst == network(dst, prefix)
                    && r.prefix == prefix
                    && (gateway.is_none() || r.gateway == gateway)
                    && (oif == 0 || r.oif == oif)
            })
            .ok_or(Errno::new(libc::ESRCH))?;
        self.routes.remove(at);
        Ok(())
    }

    /// Drops the added routes whose gateway no link reaches any more.
    fn drop_unreachable(&mut self) {
        let keep: Vec<bool> = self
            .routes
            .iter()
            .map(|r| r.gateway.map_or(true, |g| self.on_link(g, r.oif).is_some()))
            .collect();
        let mut k = keep.into_iter();
        self.routes.retain(|_| k.next().unwrap_or(true));
    }

    /// True for an address of an up link of the stack.
    pub fn is_local(&self, a: IpAddr) -> bool {
        self.links
            .iter()
            .filter(|l| l.up)
            .any(|l| l.addrs.iter().any(|&(x, _)| x == a))
    }

    /// `ip route get`: where a packet to `dst` goes; `ENETUNREACH` if
    /// nowhere. The loopback's subnet counts as local (`127.0.0.2`).
    pub fn route_get(&self, dst: IpAddr) -> Result<Lookup, Errno> {
        let lo = self.links.iter().find(|l| l.kind == LinkKind::Loopback);
        if let Some(lo) = lo.filter(|l| l.up) {
            let subnet = lo.addrs.iter().find(|&&(x, p)| contains(x, p, dst));
            if self.is_local(dst) || subnet.is_some() {
                let src = if self.is_local(dst) {
                    Some(dst)
                } else {
                    subnet.map(|&(x, _)| x)
                };
                return Ok(Lookup {
                    local: true,
                    gateway: None,
                    oif: lo.index,
                    src,
                });
            }
        }
        let best = self
            .main_routes()
            .into_iter()
            .filter(|r| contains(r.dst, r.prefix, dst))
            .max_by_key(|r| r.prefix)
            .ok_or(Errno::new(libc::ENETUNREACH))?;
        let hop = best.gateway.unwrap_or(dst);
        let src = self
            .on_link(hop, best.oif)
            .map(|(_, s)| s)
            .or(best.src)
            .or_else(|| {
                self.link(best.oif)
                    .ok()
                    .and_then(|l| l.addrs.iter().find(|(a, _)| a.is_ipv4() == dst.is_ipv4()))
                    .map(|&(a, _)| a)
            });
        Ok(Lookup {
            local: false,
            gateway: best.gateway,
            oif: best.oif,
            src,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn conf() -> NetConf {
        let mut c = NetConf::loopback();
        let i = c.add_ethernet("vd0", [2, 0, 0, 0, 0, 1], 1500);
        assert_eq!(i, 2);
        c
    }

    #[test]
    fn addresses_come_and_go_with_the_kernels_errnos() {
        let mut c = conf();
        assert_eq!(c.add_addr(9, ip("10.0.0.1"), 24, false), Err(Errno::ENODEV));
        assert_eq!(c.add_addr(2, ip("10.0.0.1"), 33, false), Err(Errno::EINVAL));
        c.add_addr(2, ip("10.0.0.1"), 24, false).unwrap();
        assert_eq!(
            c.add_addr(2, ip("10.0.0.1"), 24, false),
            Err(Errno::new(libc::EEXIST))
        );
        assert_eq!(c.add_addr(2, ip("10.0.0.1"), 24, true), Ok(()));
        // Down: no routes, not local.
        assert!(c.main_routes().is_empty());
        assert!(!c.is_local(ip("10.0.0.1")));
        c.set_link(2, Some(true), None).unwrap();
        assert!(c.is_local(ip("10.0.0.1")));
        let r = c.main_routes();
        assert_eq!((r[0].dst, r[0].prefix, r[0].oif), (ip("10.0.0.0"), 24, 2));
        assert_eq!(
            c.del_addr(2, ip("10.0.0.1"), 16),
            Err(Errno::new(libc::EADDRNOTAVAIL))
        );
        c.del_addr(2, ip("10.0.0.1"), 24).unwrap();
        // What is left: the link-local address's route.
        let r = c.main_routes();
        assert_eq!((r.len(), r[0].dst, r[0].prefix), (1, ip("fe80::"), 64));
        assert_eq!(link_local([2, 0, 0, 0, 0, 1]), ip("fe80::ff:fe00:1"));
        assert_eq!(c.set_link(2, None, Some(10)), Err(Errno::EINVAL));
        assert_eq!(c.set_link(7, Some(true), None), Err(Errno::ENODEV));
    }

    #[test]
    fn routes_follow_the_kernels_rules() {
        let mut c = conf();
        c.add_addr(2, ip("10.0.0.1"), 24, false).unwrap();
        let via = |dst: &str, prefix, gw: &str| Route {
            dst: ip(dst),
            prefix,
            gateway: Some(ip(gw)),
            oif: 0,
            src: None,
            connected: false,
        };
        // The link is down.
        assert_eq!(
            c.add_route(via("0.0.0.0", 0, "10.0.0.254"), false),
            Err(Errno::new(libc::ENETUNREACH))
        );
        c.set_link(2, Some(true), None).unwrap();
        c.add_route(via("0.0.0.0", 0, "10.0.0.254"), false).unwrap();
        assert_eq!(
            c.add_route(via("0.0.0.0", 0, "10.0.0.254"), false),
            Err(Errno::new(libc::EEXIST))
        );
        assert_eq!(
            c.add_route(via("10.5.0.1", 16, "10.0.0.254"), false),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            c.add_route(via("10.5.0.0", 16, "10.9.0.254"), false),
            Err(Errno::new(libc::ENETUNREACH))
        );
        let g = c.route_get(ip("192.0.2.7")).unwrap();
        assert_eq!(
            (g.gateway, g.oif, g.src),
            (Some(ip("10.0.0.254")), 2, Some(ip("10.0.0.1")))
        );
        let g = c.route_get(ip("10.0.0.9")).unwrap();
        assert_eq!((g.gateway, g.oif), (None, 2));
        assert!(c.route_get(ip("127.0.0.5")).unwrap().local);
        assert!(c.route_get(ip("10.0.0.1")).unwrap().local);
        assert_eq!(
            c.route_get(ip("2001:db8::1")),
            Err(Errno::new(libc::ENETUNREACH))
        );
        assert_eq!(
            c.del_route(ip("10.7.0.0"), 16, None, 0),
            Err(Errno::new(libc::ESRCH))
        );
        c.del_route(ip("0.0.0.0"), 0, None, 0).unwrap();
        assert_eq!(
            c.route_get(ip("192.0.2.7")),
            Err(Errno::new(libc::ENETUNREACH))
        );
        // Down takes the routes through the link away.
        c.add_route(via("0.0.0.0", 0, "10.0.0.254"), false).unwrap();
        c.set_link(2, Some(false), None).unwrap();
        assert!(c.routes.is_empty());
        assert_eq!(network(ip("10.1.2.3"), 16), ip("10.1.0.0"));
        assert_eq!(network(ip("2001:db8::1"), 32), ip("2001:db8::"));
    }
}
