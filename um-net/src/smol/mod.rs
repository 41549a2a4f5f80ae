//! `umnetsmoltcp` (alias `umnetlwip`): a user-level TCP/IP stack on
//! [smoltcp](https://docs.rs/smoltcp).
//!
//! Each mount is a stack of its own with a loopback interface (`127.0.0.1/8`
//! and `::1`): programs of the view that use it talk to each other over TCP
//! and UDP without the kernel's network, and see nothing of the host's.
//! Its sockets are served ([`viewos_core::Opened::Served`]): every call on
//! them goes through [`SocketHandle`].
//!
//! The stack is one smoltcp [`Interface`] and [`SocketSet`] behind a
//! mutex. Every call that changes a socket runs the interface at once (the
//! loopback device delivers what was sent) and then wakes the host for the
//! sockets whose readiness changed; a driver thread runs it on smoltcp's
//! timers (retransmissions, keep-alive, closing).
//!
//! Ping sockets (`SOCK_DGRAM` with `IPPROTO_ICMP`/`IPPROTO_ICMPV6`) and
//! raw ICMP sockets are in the `icmp` submodule; the stack answers echo requests to
//! its own addresses itself.
//!
//! Listening: smoltcp's TCP sockets take one connection each, so a
//! listening socket keeps `backlog` smoltcp sockets listening on its port;
//! accept hands over one that is connected and puts a fresh one in its
//! place.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use smoltcp::iface::{Config, Interface, PollResult, Route, SocketHandle as Slot, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint,
};

mod icmp;

use crate::ether::{self, EtherDevice};
use crate::netconf::{Configure, NetConf};
use crate::netlink::NetlinkSocket;
use viewos_core::handle::{FileHandle, Notifier, READABLE, WRITABLE};
use viewos_core::hook::CallerMemory;
use viewos_core::socket::{from_socket_addr, to_socket_addr, Received, SocketHandle};
use viewos_core::stack::NetStack;
use viewos_core::vde::{self, Port};
use viewos_core::{Errno, FileStat, IoctlArg, Opened};

/// How long a TCP socket on an Ethernet link waits to acknowledge data
/// (more data usually comes and is acknowledged with it).
const ETHER_ACK_DELAY: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(2);
/// The MTU of an Ethernet link.
const ETHER_MTU: u32 = 1500;
/// Bytes of each TCP socket's receive and send buffers.
const TCP_BUFFER: usize = 1 << 20;
/// Datagrams and bytes of each UDP socket's buffers.
const UDP_PACKETS: usize = 64;
const UDP_BUFFER: usize = 64 << 10;
/// Ports given to sockets that did not bind one.
const EPHEMERAL_FIRST: u16 = 49152;
/// The longest listen queue.
const MAX_BACKLOG: usize = 128;
/// How often the driver runs the interface at least.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// Runs of the interface per call at most (each delivers what the one
/// before sent over the loopback).
const MAX_ROUNDS: usize = 64;

const POLLHUP: u32 = libc::POLLHUP as u32;
const POLLERR: u32 = libc::POLLERR as u32;
const POLLRDHUP: u32 = libc::POLLRDHUP as u32;

fn err(e: i32) -> Errno {
    Errno::new(e)
}

/// The state of one TCP socket of a program.
#[derive(Default)]
struct TcpSock {
    /// Local address from bind (port 0 never: one is chosen).
    bound: Option<IpListenEndpoint>,
    /// The smoltcp socket of a connection (made or being made).
    conn: Option<Slot>,
    /// The smoltcp sockets listening for it, after listen(2).
    pool: Option<Vec<Slot>>,
    backlog: usize,
    /// A connect is under way.
    connecting: bool,
    /// The error a connect ended with, for `SO_ERROR`.
    error: Option<Errno>,
    /// shutdown(SHUT_RD) was called.
    read_shut: bool,
    /// shutdown(SHUT_WR) was called: the end of the connection may follow.
    wrote_fin: bool,
    /// The connection is open and nobody closed it on our side.
    open: bool,
    /// `SO_LINGER`'s time, when on. Zero: close resets the connection;
    /// other times close gracefully without waiting (close never blocks
    /// here).
    linger: Option<i32>,
    nodelay: bool,
}

/// The state of one UDP socket of a program.
struct UdpSock {
    slot: Slot,
    bound: bool,
    peer: Option<IpEndpoint>,
}

enum Kind {
    Tcp(TcpSock),
    Udp(UdpSock),
    Icmp(icmp::IcmpSock),
}

struct Sock {
    kind: Kind,
    /// `AF_INET` or `AF_INET6`.
    family: i32,
    /// `SO_REUSEADDR` was set (it has no effect here: ports are free
    /// again as soon as their socket is closed).
    reuse: bool,
    notifier: Option<Notifier>,
    /// Readiness the host was last told of.
    ready: u32,
}

/// The device under the interface.
enum Dev {
    /// Only the loopback: IP packets come straight back.
    Loop(Loopback),
    /// An Ethernet link (a VDE port), and the loopback's addresses on it.
    Ether(EtherDevice),
}

/// The interface and every socket.
struct Net {
    /// Links, addresses and routes, as `ip` set them.
    conf: NetConf,
    /// The VDE port of the Ethernet link, if any.
    port: Option<Arc<Port>>,
    iface: Interface,
    device: Dev,
    set: SocketSet<'static>,
    socks: HashMap<u64, Sock>,
    next_id: u64,
    /// Ports bound, per protocol and family ([`space`]).
    ports: HashSet<(u8, u16)>,
    next_port: u16,
    /// smoltcp sockets of closed program sockets, kept until their
    /// connection has ended.
    closing: Vec<Slot>,
}

/// The port space of a protocol (`udp` or TCP) and family: IPv4 and
/// IPv6 sockets take the same port apart.
fn space(udp: bool, family: i32) -> u8 {
    u8::from(udp) | (u8::from(family == libc::AF_INET6) << 1)
}

fn now() -> Instant {
    Instant::now()
}

impl Net {
    fn new() -> Net {
        Net::with_device(Dev::Loop(Loopback::new(Medium::Ip)), NetConf::loopback())
    }

    /// A stack whose interface has `device` (and the addresses of its
    /// links in `conf`).
    fn with_device(mut device: Dev, conf: NetConf) -> Net {
        let (hw, mac) = match &device {
            Dev::Loop(_) => (HardwareAddress::Ip, [0; 6]),
            Dev::Ether(d) => (HardwareAddress::Ethernet(EthernetAddress(d.mac())), d.mac()),
        };
        let mut config = Config::new(hw);
        let [a, b, c, d, e, f] = mac;
        config.random_seed =
            u64::from(std::process::id()) ^ 0x5eed ^ u64::from_be_bytes([0, 0, a, b, c, d, e, f]);
        let iface = match &mut device {
            Dev::Loop(d) => Interface::new(config, d, now()),
            Dev::Ether(d) => Interface::new(config, d, now()),
        };
        let mut net = Net {
            conf,
            port: None,
            iface,
            device,
            set: SocketSet::new(Vec::new()),
            socks: HashMap::new(),
            next_id: 1,
            ports: HashSet::new(),
            next_port: EPHEMERAL_FIRST,
            closing: Vec::new(),
        };
        net.apply();
        net
    }

    /// Gives the interface the addresses of the up links (the loopback's
    /// last, so smoltcp's fallback source address is a real one) and the
    /// routes through a gateway.
    fn apply(&mut self) {
        let mut links: Vec<&crate::netconf::Link> =
            self.conf.links.iter().filter(|l| l.up).collect();
        links.sort_by_key(|l| l.kind == crate::netconf::LinkKind::Loopback);
        let addrs: Vec<IpCidr> = links
            .iter()
            .flat_map(|l| l.addrs.iter())
            .map(|&(a, p)| IpCidr::new(IpAddress::from(a), p))
            .collect();
        self.iface.update_ip_addrs(|list| {
            list.clear();
            for a in addrs {
                // More than smoltcp holds: the rest are shown, not used.
                let _ = list.push(a);
            }
        });
        let routes: Vec<Route> = self
            .conf
            .routes
            .iter()
            .filter_map(|r| {
                Some(Route {
                    cidr: IpCidr::new(IpAddress::from(r.dst), r.prefix),
                    via_router: IpAddress::from(r.gateway?),
                    preferred_until: None,
                    expires_at: None,
                })
            })
            .collect();
        self.iface.routes_mut().update(|table| {
            table.clear();
            for r in routes {
                let _ = table.push(r);
            }
        });
    }

    /// True for an address of the stack (of an up link, or of the
    /// loopback's subnet).
    fn is_local(&self, a: &IpAddress) -> bool {
        self.conf.route_get(IpAddr::from(*a)).is_ok_and(|l| l.local)
    }

    /// The source address for a connection to `dst`, `ENETUNREACH` if no
    /// route leads there.
    fn source_for(&self, dst: &IpAddress) -> Result<Option<IpAddress>, Errno> {
        let found = self.conf.route_get(IpAddr::from(*dst))?;
        Ok(found.src.map(IpAddress::from))
    }

    /// Runs the interface until nothing more happens; the notifiers of
    /// sockets whose readiness changed.
    fn pump(&mut self) -> Vec<Notifier> {
        for _ in 0..MAX_ROUNDS {
            let r = match &mut self.device {
                Dev::Loop(d) => self.iface.poll(now(), d, &mut self.set),
                Dev::Ether(d) => self.iface.poll(now(), d, &mut self.set),
            };
            if r == PollResult::None {
                break;
            }
        }
        // Data for a closed socket is answered with a reset, as Linux does.
        for &slot in &self.closing {
            let s = self.set.get_mut::<tcp::Socket>(slot);
            if s.recv_queue() > 0 {
                s.abort();
            }
        }
        let finished: Vec<Slot> = {
            let set = &self.set;
            let mut gone = Vec::new();
            self.closing.retain(|&slot| {
                let s = set.get::<tcp::Socket>(slot).state();
                let keep = !matches!(s, tcp::State::Closed | tcp::State::TimeWait);
                if !keep {
                    gone.push(slot);
                }
                keep
            });
            gone
        };
        for slot in finished {
            self.set.remove(slot);
        }
        let mut wake = Vec::new();
        let ids: Vec<u64> = self.socks.keys().copied().collect();
        for id in ids {
            self.settle(id);
            if let Some(Sock {
                kind: Kind::Icmp(i),
                family,
                ..
            }) = self.socks.get_mut(&id)
            {
                i.settle(&mut self.set, *family);
            }
            let ready = self.readiness(id);
            if let Some(s) = self.socks.get_mut(&id) {
                if s.ready != ready {
                    s.ready = ready;
                    if let Some(n) = &s.notifier {
                        wake.push(n.clone());
                    }
                }
            }
        }
        wake
    }

    /// Ends a connect that has finished (made or refused).
    fn settle(&mut self, id: u64) {
        let Some(Sock {
            kind: Kind::Tcp(t), ..
        }) = self.socks.get_mut(&id)
        else {
            return;
        };
        let Some(slot) = t.conn else { return };
        if !t.connecting {
            // A connection that ends while neither side closed it was
            // reset (or timed out): the next call says so, as Linux's
            // ECONNRESET. (A reset after the peer's FIN is Linux's EPIPE,
            // which send answers anyway.)
            let state = self.set.get::<tcp::Socket>(slot).state();
            match state {
                tcp::State::Established => t.open = !t.wrote_fin,
                tcp::State::CloseWait => t.open = false,
                tcp::State::Closed if t.open => {
                    t.open = false;
                    t.error = Some(err(libc::ECONNRESET));
                }
                _ => {}
            }
            return;
        }
        match self.set.get::<tcp::Socket>(slot).state() {
            tcp::State::SynSent | tcp::State::SynReceived => {}
            tcp::State::Closed => {
                t.connecting = false;
                t.error = Some(err(libc::ECONNREFUSED));
            }
            _ => t.connecting = false,
        }
    }

    /// What socket `id` is ready for, as poll(2) bits.
    fn readiness(&self, id: u64) -> u32 {
        let Some(s) = self.socks.get(&id) else {
            return POLLERR;
        };
        match &s.kind {
            Kind::Icmp(i) => i.readiness(&self.set),
            Kind::Udp(u) => {
                let sock = self.set.get::<udp::Socket>(u.slot);
                let mut r = 0;
                if sock.can_recv() {
                    r |= READABLE;
                }
                if sock.can_send() {
                    r |= WRITABLE;
                }
                r
            }
            Kind::Tcp(t) => {
                if let Some(pool) = &t.pool {
                    return if pool.iter().any(|&p| self.connected(p)) {
                        READABLE
                    } else {
                        0
                    };
                }
                let mut r = if t.error.is_some() { POLLERR } else { 0 };
                let Some(slot) = t.conn else {
                    // Never connected: as Linux answers.
                    return r | WRITABLE | POLLHUP;
                };
                let sock = self.set.get::<tcp::Socket>(slot);
                match sock.state() {
                    // The kernel answers nothing; but the host's stand-in
                    // for a served fd cannot be neither readable nor
                    // writable, and writable would end a program's wait
                    // for the connection at once. Readable, not writable:
                    // programs wait for POLLOUT during a connect.
                    tcp::State::SynSent | tcp::State::SynReceived => return r | READABLE,
                    tcp::State::Closed if t.error.is_some() => {
                        return r | READABLE | WRITABLE | POLLHUP
                    }
                    _ => {}
                }
                if sock.can_recv() || !sock.may_recv() || t.read_shut {
                    r |= READABLE;
                }
                if !sock.may_recv() {
                    r |= POLLRDHUP;
                }
                if sock.can_send() || !sock.may_send() {
                    r |= WRITABLE;
                }
                if !sock.may_send() && !sock.may_recv() {
                    r |= POLLHUP;
                }
                r
            }
        }
    }

    /// True for a pool socket whose connection is made (or made and
    /// already closing).
    fn connected(&self, slot: Slot) -> bool {
        !matches!(
            self.set.get::<tcp::Socket>(slot).state(),
            tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
        )
    }

    /// A free port for protocol `udp`.
    fn ephemeral(&mut self, space: u8) -> Result<u16, Errno> {
        for _ in 0..=(u16::MAX - EPHEMERAL_FIRST) {
            let p = self.next_port;
            self.next_port = if p == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                p + 1
            };
            if self.ports.insert((space, p)) {
                return Ok(p);
            }
        }
        Err(err(libc::EADDRNOTAVAIL))
    }

    /// Takes `port` (0: any) for protocol `udp`.
    fn take_port(&mut self, space: u8, port: u16) -> Result<u16, Errno> {
        if port == 0 {
            return self.ephemeral(space);
        }
        if !self.ports.insert((space, port)) {
            return Err(err(libc::EADDRINUSE));
        }
        Ok(port)
    }

    fn new_tcp(&mut self, nodelay: bool) -> Slot {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        );
        // Over a loopback, delayed ACKs only slow the sender down.
        s.set_ack_delay(None);
        s.set_nagle_enabled(!nodelay);
        // Over a switch frames get lost when queues fill: send no faster
        // than the path takes them; and an ACK for every segment doubles
        // the frames each hop carries (iperf3 between two views, release
        // build, loaded machine: 115-180 Mbit/s with ACKs delayed 2 ms,
        // once 550; 45-120 without).
        if matches!(self.device, Dev::Ether(_)) {
            s.set_congestion_control(tcp::CongestionControl::Reno);
            s.set_ack_delay(Some(ETHER_ACK_DELAY));
        }
        self.set.add(s)
    }

    fn new_udp(&mut self) -> Slot {
        let meta = || vec![udp::PacketMetadata::EMPTY; UDP_PACKETS];
        let s = udp::Socket::new(
            udp::PacketBuffer::new(meta(), vec![0; UDP_BUFFER]),
            udp::PacketBuffer::new(meta(), vec![0; UDP_BUFFER]),
        );
        self.set.add(s)
    }

    fn tcp(&mut self, id: u64) -> Result<&mut TcpSock, Errno> {
        match self.socks.get_mut(&id).map(|s| &mut s.kind) {
            Some(Kind::Tcp(t)) => Ok(t),
            _ => Err(Errno::EBADF),
        }
    }

    fn udp(&mut self, id: u64) -> Result<&mut UdpSock, Errno> {
        match self.socks.get_mut(&id).map(|s| &mut s.kind) {
            Some(Kind::Udp(u)) => Ok(u),
            _ => Err(Errno::EBADF),
        }
    }

    /// Forgets socket `id`: its connection closes gracefully, its
    /// listeners go, its port is free again.
    fn close(&mut self, id: u64) {
        let Some(s) = self.socks.remove(&id) else {
            return;
        };
        match s.kind {
            Kind::Tcp(t) => {
                if let Some(pool) = t.pool {
                    for slot in pool {
                        self.set.remove(slot);
                    }
                }
                if let Some(slot) = t.conn {
                    let s = self.set.get_mut::<tcp::Socket>(slot);
                    // Unread data, or SO_LINGER with a zero time: the
                    // connection is reset, as Linux does.
                    if s.recv_queue() > 0 || t.linger == Some(0) {
                        s.abort();
                    } else {
                        s.close();
                    }
                    self.closing.push(slot);
                }
                if let Some(b) = t.bound {
                    self.ports.remove(&(space(false, s.family), b.port));
                }
            }
            Kind::Udp(u) => {
                let port = self.set.get::<udp::Socket>(u.slot).endpoint().port;
                self.set.remove(u.slot);
                if u.bound {
                    self.ports.remove(&(space(true, s.family), port));
                }
            }
            Kind::Icmp(i) => {
                self.set.remove(i.slot);
                if let Some(raw) = i.raw {
                    self.set.remove(raw);
                }
                if let Some(ident) = i.ident {
                    self.ports.remove(&(icmp::SPACE, ident));
                }
            }
        }
    }
}

/// What the stack shares with its sockets and driver thread.
struct Shared {
    net: Mutex<Net>,
    /// Set when the driver should run the interface at once.
    kick: Mutex<bool>,
    kicked: Condvar,
}

impl Shared {
    /// Frames came from the switch: the interface runs now, here if the
    /// stack is free, else in the driver (the receiver never waits).
    fn frames_arrived(&self) {
        let wake = match self.net.try_lock() {
            Ok(mut net) => net.pump(),
            Err(_) => {
                *self.kick.lock().unwrap_or_else(|p| p.into_inner()) = true;
                self.kicked.notify_one();
                return;
            }
        };
        for n in wake {
            n.notify();
        }
    }

    /// Waits up to `delay` or until kicked.
    fn wait(&self, delay: Duration) {
        let mut k = self.kick.lock().unwrap_or_else(|p| p.into_inner());
        if !*k {
            k = match self.kicked.wait_timeout(k, delay) {
                Ok((k, _)) => k,
                Err(p) => p.into_inner().0,
            };
        }
        *k = false;
    }

    fn lock(&self) -> MutexGuard<'_, Net> {
        // A panic while the lock was held leaves a stack still usable.
        self.net.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` on the stack, then the interface, then wakes the sockets
    /// whose readiness changed.
    fn with<R>(&self, op: impl FnOnce(&mut Net) -> R) -> R {
        let (r, wake) = {
            let mut net = self.lock();
            let r = op(&mut net);
            (r, net.pump())
        };
        // The driver is not woken: the call ran the interface itself, and
        // the driver looks at the timers at least every MAX_SLEEP.
        for n in wake {
            n.notify();
        }
        r
    }
}

impl Configure for Shared {
    fn snapshot(&self) -> NetConf {
        self.lock().conf.clone()
    }

    fn change(
        &self,
        change: &mut dyn FnMut(&mut NetConf) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        self.with(|net| {
            let mut next = net.conf.clone();
            change(&mut next)?;
            net.conf = next;
            net.apply();
            Ok(())
        })
    }
}

/// A smoltcp stack (a mount of `umnetsmoltcp`).
pub struct SmolStack {
    shared: Arc<Shared>,
}

impl SmolStack {
    /// A new stack with its loopback interface, and its driver thread.
    pub fn new() -> Result<SmolStack, Errno> {
        SmolStack::start(Net::new())
    }

    /// A new stack with a loopback and an Ethernet link named `name`
    /// plugged into the VDE switch of `url` (`vde:///path`, a switch's
    /// directory or its control socket), down and without addresses as a
    /// new interface of the kernel's: `ip` sets it up.
    pub fn with_vde(name: &str, url: &str) -> Result<SmolStack, Errno> {
        let ctl = vde::control_socket(url);
        let port = Port::connect(&ctl, &format!("umnet {name}")).map_err(|e| {
            eprintln!(
                "umnet: {name}: cannot plug into the VDE switch {}: {e}",
                ctl.display()
            );
            Errno::from(e)
        })?;
        port.set_send_timeout(Some(ether::SEND_TIMEOUT))
            .map_err(Errno::from)?;
        let port = Arc::new(port);
        let receiver = port.receiver().map_err(Errno::from)?;
        let mac = ether::new_mac();
        let mut conf = NetConf::loopback();
        conf.add_ethernet(name, mac, ETHER_MTU);
        let inbox = ether::Inbox::default();
        let device = EtherDevice::new(mac, Some(port.clone()), inbox.clone(), ETHER_MTU as usize);
        let stack = SmolStack::start(Net::with_device(Dev::Ether(device), conf))?;
        stack.shared.lock().port = Some(port);
        let weak = Arc::downgrade(&stack.shared);
        std::thread::Builder::new()
            .name("umnet-vde".into())
            .spawn(move || {
                ether::receive_loop(receiver, |frames| {
                    let Some(shared) = weak.upgrade() else {
                        return false;
                    };
                    ether::queue(&inbox, mac, frames);
                    shared.frames_arrived();
                    true
                })
            })
            .map_err(Errno::from)?;
        Ok(stack)
    }

    fn start(net: Net) -> Result<SmolStack, Errno> {
        let shared = Arc::new(Shared {
            net: Mutex::new(net),
            kick: Mutex::new(false),
            kicked: Condvar::new(),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("umnet-smoltcp".into())
            .spawn(move || drive(weak))
            .map_err(Errno::from)?;
        Ok(SmolStack { shared })
    }
}

impl Drop for SmolStack {
    fn drop(&mut self) {
        // The receiver thread ends when its port is shut.
        if let Some(p) = self.shared.lock().port.take() {
            p.shut();
        }
    }
}

/// The driver: runs the interface on smoltcp's timers until the stack is
/// gone.
fn drive(weak: Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let (wake, delay) = {
            let mut net = shared.lock();
            let wake = net.pump();
            let until_deadline = net
                .socks
                .values()
                .filter_map(|s| match &s.kind {
                    Kind::Icmp(i) => i.deadline,
                    _ => None,
                })
                .min()
                .map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let Net { iface, set, .. } = &mut *net;
            let delay = iface
                .poll_delay(now(), set)
                .map(|d| Duration::from_micros(d.total_micros()))
                .unwrap_or(MAX_SLEEP)
                .min(until_deadline.unwrap_or(MAX_SLEEP))
                .clamp(Duration::from_millis(1), MAX_SLEEP);
            (wake, delay)
        };
        for n in wake {
            n.notify();
        }
        // The stack can go while the driver waits, at most MAX_SLEEP.
        shared.wait(delay);
        drop(shared);
    }
}

impl NetStack for SmolStack {
    fn socket(&self, domain: i32, kind: i32, protocol: i32) -> Result<Opened, Errno> {
        if domain == libc::AF_NETLINK {
            return netlink_socket(self.shared.clone(), kind, protocol);
        }
        if domain != libc::AF_INET && domain != libc::AF_INET6 {
            return Err(err(libc::EAFNOSUPPORT));
        }
        // The kernel's first check (IPPROTO_MAX).
        if !(0..263).contains(&protocol) {
            return Err(Errno::EINVAL);
        }
        let tcp = match (kind, protocol) {
            // Ping sockets, for every user: the view's stack decides.
            (libc::SOCK_DGRAM | libc::SOCK_RAW, libc::IPPROTO_ICMP) if domain == libc::AF_INET => {
                return icmp::socket(&self.shared, domain, kind == libc::SOCK_RAW)
            }
            (libc::SOCK_DGRAM | libc::SOCK_RAW, libc::IPPROTO_ICMPV6)
                if domain == libc::AF_INET6 =>
            {
                return icmp::socket(&self.shared, domain, kind == libc::SOCK_RAW)
            }
            (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => true,
            (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => false,
            (libc::SOCK_STREAM | libc::SOCK_DGRAM, _) => return Err(err(libc::EPROTONOSUPPORT)),
            (libc::SOCK_RAW, _) => return Err(err(libc::EPERM)),
            _ => return Err(err(libc::ESOCKTNOSUPPORT)),
        };
        let id = self.shared.with(|net| {
            let kind = if tcp {
                Kind::Tcp(TcpSock::default())
            } else {
                Kind::Udp(UdpSock {
                    slot: net.new_udp(),
                    bound: false,
                    peer: None,
                })
            };
            let id = net.next_id;
            net.next_id += 1;
            net.socks.insert(
                id,
                Sock {
                    kind,
                    reuse: false,
                    family: domain,
                    notifier: None,
                    ready: 0,
                },
            );
            id
        });
        Ok(Opened::Served(Box::new(SmolSocket {
            shared: self.shared.clone(),
            id,
            family: domain,
            stream: tcp,
        })))
    }
}

/// A `NETLINK_ROUTE` socket showing the stack ([`crate::netlink`]).
fn netlink_socket(stack: Arc<dyn Configure>, kind: i32, protocol: i32) -> Result<Opened, Errno> {
    if kind != libc::SOCK_RAW && kind != libc::SOCK_DGRAM {
        return Err(err(libc::ESOCKTNOSUPPORT));
    }
    if protocol != libc::NETLINK_ROUTE {
        return Err(err(libc::EPROTONOSUPPORT));
    }
    Ok(Opened::Served(Box::new(NetlinkSocket::new(stack))))
}

/// The address of `raw` for a socket of `family`: `EAFNOSUPPORT` for
/// another family.
fn endpoint_of(raw: &[u8], family: i32) -> Result<IpEndpoint, Errno> {
    let a = to_socket_addr(raw)?;
    let ok = matches!(
        (&a, family),
        (SocketAddr::V4(_), libc::AF_INET) | (SocketAddr::V6(_), libc::AF_INET6)
    );
    if !ok {
        return Err(err(libc::EAFNOSUPPORT));
    }
    Ok(IpEndpoint::new(IpAddress::from(a.ip()), a.port()))
}

/// The `struct sockaddr` of `addr` (unspecified for `None`) and `port`.
fn raw_of(family: i32, addr: Option<IpAddress>, port: u16) -> Vec<u8> {
    let ip = match (addr, family) {
        (Some(IpAddress::Ipv4(a)), _) => IpAddr::V4(a),
        (Some(IpAddress::Ipv6(a)), _) => IpAddr::V6(a),
        (None, libc::AF_INET6) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        (None, _) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    };
    from_socket_addr(&SocketAddr::new(ip, port))
}

/// A socket of a smoltcp stack, as a program holds it.
pub struct SmolSocket {
    shared: Arc<Shared>,
    id: u64,
    family: i32,
    stream: bool,
}

impl Drop for SmolSocket {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.with(|net| net.close(id));
    }
}

impl FileHandle for SmolSocket {
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

    fn ioctl_arg(&self, request: u32) -> Option<IoctlArg> {
        crate::ifreq::ioctl_arg(request)
    }

    fn ioctl_with_memory(
        &self,
        request: u32,
        _arg: u64,
        data: &mut [u8],
        memory: &dyn CallerMemory,
    ) -> Result<i64, Errno> {
        crate::ifreq::ioctl(self.shared.as_ref(), request, data, memory)
    }

    fn as_socket(&self) -> Option<&dyn SocketHandle> {
        Some(self)
    }
}

impl SocketHandle for SmolSocket {
    fn bind(&self, addr: &[u8]) -> Result<(), Errno> {
        let family = self.family;
        let ep = endpoint_of(addr, self.family)?;
        let listen_addr = if ep.addr.is_unspecified() {
            None
        } else if self.shared.lock().is_local(&ep.addr) {
            Some(ep.addr)
        } else {
            return Err(err(libc::EADDRNOTAVAIL));
        };
        let (id, stream) = (self.id, self.stream);
        self.shared.with(|net| {
            if stream {
                let t = net.tcp(id)?;
                if t.bound.is_some() || t.conn.is_some() {
                    return Err(Errno::EINVAL);
                }
                let port = net.take_port(space(false, family), ep.port)?;
                net.tcp(id)?.bound = Some(IpListenEndpoint {
                    addr: listen_addr,
                    port,
                });
            } else {
                if net.udp(id)?.bound {
                    return Err(Errno::EINVAL);
                }
                let port = net.take_port(space(true, family), ep.port)?;
                let slot = net.udp(id)?.slot;
                let bound = net.set.get_mut::<udp::Socket>(slot).bind(IpListenEndpoint {
                    addr: listen_addr,
                    port,
                });
                if bound.is_err() {
                    net.ports.remove(&(space(true, family), port));
                    return Err(Errno::EINVAL);
                }
                net.udp(id)?.bound = true;
            }
            Ok(())
        })
    }

    fn connect(&self, addr: &[u8]) -> Result<(), Errno> {
        let family = self.family;
        let remote = endpoint_of(addr, self.family)?;
        let source = self.shared.lock().source_for(&remote.addr)?;
        if remote.port == 0 {
            return Err(err(libc::ECONNREFUSED));
        }
        let (id, stream) = (self.id, self.stream);
        self.shared.with(|net| {
            if !stream {
                if !net.udp(id)?.bound {
                    let port = net.ephemeral(space(true, family))?;
                    let slot = net.udp(id)?.slot;
                    let _ = net
                        .set
                        .get_mut::<udp::Socket>(slot)
                        .bind(IpListenEndpoint { addr: None, port });
                    net.udp(id)?.bound = true;
                }
                net.udp(id)?.peer = Some(remote);
                return Ok(());
            }
            let t = net.tcp(id)?;
            if t.pool.is_some() {
                return Err(Errno::EINVAL);
            }
            if t.connecting {
                return Err(err(libc::EALREADY));
            }
            if t.conn.is_some() {
                return Err(err(libc::EISCONN));
            }
            let nodelay = t.nodelay;
            let mut local = match t.bound {
                Some(b) => b,
                None => {
                    let port = net.ephemeral(space(false, family))?;
                    let b = IpListenEndpoint { addr: None, port };
                    net.tcp(id)?.bound = Some(b);
                    b
                }
            };
            // The source address of the route, not smoltcp's guess.
            local.addr = local.addr.or(source);
            let slot = net.new_tcp(nodelay);
            let Net { iface, set, .. } = net;
            if set
                .get_mut::<tcp::Socket>(slot)
                .connect(iface.context(), remote, local)
                .is_err()
            {
                set.remove(slot);
                return Err(err(libc::EADDRNOTAVAIL));
            }
            let t = net.tcp(id)?;
            t.conn = Some(slot);
            t.connecting = true;
            t.error = None;
            Err(err(libc::EINPROGRESS))
        })
    }

    fn take_error(&self) -> Result<Option<Errno>, Errno> {
        let id = self.id;
        self.shared.with(|net| match net.socks.get_mut(&id) {
            Some(Sock {
                kind: Kind::Tcp(t), ..
            }) => Ok(t.error.take()),
            _ => Ok(None),
        })
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        let family = self.family;
        if !self.stream {
            return Err(err(libc::EOPNOTSUPP));
        }
        let id = self.id;
        let backlog = (backlog.max(1) as usize).min(MAX_BACKLOG);
        self.shared.with(|net| {
            let t = net.tcp(id)?;
            if t.conn.is_some() {
                return Err(Errno::EINVAL);
            }
            let nodelay = t.nodelay;
            let local = match t.bound {
                Some(b) => b,
                None => {
                    let port = net.ephemeral(space(false, family))?;
                    let b = IpListenEndpoint { addr: None, port };
                    net.tcp(id)?.bound = Some(b);
                    b
                }
            };
            let mut pool = net.tcp(id)?.pool.take().unwrap_or_default();
            while pool.len() < backlog {
                let slot = net.new_tcp(nodelay);
                if net.set.get_mut::<tcp::Socket>(slot).listen(local).is_err() {
                    net.set.remove(slot);
                    return Err(Errno::EINVAL);
                }
                pool.push(slot);
            }
            let t = net.tcp(id)?;
            t.pool = Some(pool);
            t.backlog = backlog;
            Ok(())
        })
    }

    fn accept(&self) -> Result<(Box<dyn FileHandle>, Vec<u8>), Errno> {
        if !self.stream {
            return Err(err(libc::EOPNOTSUPP));
        }
        let (id, family) = (self.id, self.family);
        let (new_id, peer) = self.shared.with(|net| {
            let t = net.tcp(id)?;
            let (Some(pool), Some(local)) = (t.pool.clone(), t.bound) else {
                return Err(Errno::EINVAL);
            };
            let nodelay = t.nodelay;
            let Some(i) = pool.iter().position(|&p| net.connected(p)) else {
                return Err(Errno::new(libc::EAGAIN));
            };
            let slot = pool[i];
            // A fresh listener takes the connection's place in the queue.
            let fresh = net.new_tcp(nodelay);
            let _ = net.set.get_mut::<tcp::Socket>(fresh).listen(local);
            if let Some(p) = net.tcp(id)?.pool.as_mut() {
                p[i] = fresh;
            }
            let sock = net.set.get::<tcp::Socket>(slot);
            let peer = sock
                .remote_endpoint()
                .map(|e| raw_of(family, Some(e.addr), e.port))
                .unwrap_or_default();
            let new_id = net.next_id;
            net.next_id += 1;
            net.socks.insert(
                new_id,
                Sock {
                    kind: Kind::Tcp(TcpSock {
                        // Accepted connections share the listener's port:
                        // not recorded, so closing one frees nothing.
                        bound: None,
                        conn: Some(slot),
                        nodelay,
                        ..TcpSock::default()
                    }),
                    reuse: false,
                    family,
                    notifier: None,
                    ready: 0,
                },
            );
            Ok((new_id, peer))
        })?;
        let s = SmolSocket {
            shared: self.shared.clone(),
            id: new_id,
            family,
            stream: true,
        };
        Ok((Box::new(s), peer))
    }

    fn send(&self, data: &[u8], flags: i32, to: Option<&[u8]>) -> Result<usize, Errno> {
        let _ = flags;
        let (id, family) = (self.id, self.family);
        if self.stream {
            return self.shared.with(|net| {
                let t = net.tcp(id)?;
                if t.connecting {
                    return Err(Errno::new(libc::EAGAIN));
                }
                if t.error == Some(err(libc::ECONNRESET)) {
                    t.error = None;
                    return Err(err(libc::ECONNRESET));
                }
                let Some(slot) = t.conn else {
                    return Err(err(if t.pool.is_some() {
                        libc::ENOTCONN
                    } else {
                        libc::EPIPE
                    }));
                };
                let sock = net.set.get_mut::<tcp::Socket>(slot);
                if !sock.may_send() {
                    return Err(err(libc::EPIPE));
                }
                if data.is_empty() {
                    return Ok(0);
                }
                match sock.send_slice(data) {
                    Ok(0) => Err(Errno::new(libc::EAGAIN)),
                    Ok(n) => Ok(n),
                    Err(_) => Err(err(libc::EPIPE)),
                }
            });
        }
        let to = match to {
            Some(raw) => Some(endpoint_of(raw, family)?),
            None => None,
        };
        self.shared.with(|net| {
            let u = net.udp(id)?;
            let Some(dest) = to.or(u.peer) else {
                return Err(err(libc::EDESTADDRREQ));
            };
            net.source_for(&dest.addr)?;
            let u = net.udp(id)?;
            if !u.bound {
                let port = net.ephemeral(space(true, family))?;
                let slot = net.udp(id)?.slot;
                let _ = net
                    .set
                    .get_mut::<udp::Socket>(slot)
                    .bind(IpListenEndpoint { addr: None, port });
                net.udp(id)?.bound = true;
            }
            let slot = net.udp(id)?.slot;
            let sock = net.set.get_mut::<udp::Socket>(slot);
            if data.len() > sock.payload_send_capacity() {
                return Err(err(libc::EMSGSIZE));
            }
            match sock.send_slice(data, dest) {
                Ok(()) => Ok(data.len()),
                Err(udp::SendError::BufferFull) => Err(Errno::new(libc::EAGAIN)),
                Err(udp::SendError::Unaddressable) => Err(err(libc::ENETUNREACH)),
            }
        })
    }

    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Received, Errno> {
        let peek = flags & libc::MSG_PEEK != 0;
        let (id, family) = (self.id, self.family);
        if self.stream {
            return self.shared.with(|net| {
                let t = net.tcp(id)?;
                if t.error == Some(err(libc::ECONNRESET)) {
                    t.error = None;
                    return Err(err(libc::ECONNRESET));
                }
                if t.read_shut {
                    return Ok(Received::default());
                }
                let Some(slot) = t.conn else {
                    return Err(err(if t.connecting {
                        libc::EAGAIN
                    } else {
                        libc::ENOTCONN
                    }));
                };
                let sock = net.set.get_mut::<tcp::Socket>(slot);
                if matches!(sock.state(), tcp::State::SynSent | tcp::State::SynReceived) {
                    return Err(Errno::new(libc::EAGAIN));
                }
                let got = if peek {
                    sock.peek_slice(buf)
                } else {
                    sock.recv_slice(buf)
                };
                let n = match got {
                    Ok(0) if !buf.is_empty() && sock.may_recv() => {
                        return Err(Errno::new(libc::EAGAIN))
                    }
                    Ok(n) => n,
                    // The peer closed, or the connection is gone.
                    Err(_) => 0,
                };
                Ok(Received {
                    len: n,
                    full_len: n,
                    from: Vec::new(),
                })
            });
        }
        self.shared.with(|net| {
            let slot = net.udp(id)?.slot;
            let sock = net.set.get_mut::<udp::Socket>(slot);
            let (payload, meta) = if peek {
                match sock.peek() {
                    Ok((p, m)) => (p, *m),
                    Err(_) => return Err(Errno::new(libc::EAGAIN)),
                }
            } else {
                match sock.recv() {
                    Ok(x) => x,
                    Err(_) => return Err(Errno::new(libc::EAGAIN)),
                }
            };
            let n = payload.len().min(buf.len());
            buf[..n].copy_from_slice(&payload[..n]);
            Ok(Received {
                len: n,
                full_len: payload.len(),
                from: raw_of(family, Some(meta.endpoint.addr), meta.endpoint.port),
            })
        })
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let id = self.id;
        if !self.stream {
            return Err(err(libc::ENOTCONN));
        }
        self.shared.with(|net| {
            let t = net.tcp(id)?;
            let Some(slot) = t.conn else {
                return Err(err(libc::ENOTCONN));
            };
            if how == libc::SHUT_RD || how == libc::SHUT_RDWR {
                t.read_shut = true;
            }
            if how == libc::SHUT_WR || how == libc::SHUT_RDWR {
                t.wrote_fin = true;
                t.open = false;
                net.set.get_mut::<tcp::Socket>(slot).close();
            }
            Ok(())
        })
    }

    fn local_addr(&self) -> Result<Vec<u8>, Errno> {
        let (id, family) = (self.id, self.family);
        let mut net = self.shared.lock();
        if self.stream {
            let t = net.tcp(id)?;
            if let Some(slot) = t.conn {
                if let Some(e) = net.set.get::<tcp::Socket>(slot).local_endpoint() {
                    return Ok(raw_of(family, Some(e.addr), e.port));
                }
            }
            let t = net.tcp(id)?;
            return Ok(match t.bound {
                Some(b) => raw_of(family, b.addr, b.port),
                None => raw_of(family, None, 0),
            });
        }
        let slot = net.udp(id)?.slot;
        let e = net.set.get::<udp::Socket>(slot).endpoint();
        Ok(raw_of(family, e.addr, e.port))
    }

    fn peer_addr(&self) -> Result<Vec<u8>, Errno> {
        let (id, family) = (self.id, self.family);
        let mut net = self.shared.lock();
        if self.stream {
            let t = net.tcp(id)?;
            let slot = t.conn.ok_or_else(|| err(libc::ENOTCONN))?;
            let sock = net.set.get::<tcp::Socket>(slot);
            return match sock.remote_endpoint() {
                Some(e) if sock.is_active() => Ok(raw_of(family, Some(e.addr), e.port)),
                _ => Err(err(libc::ENOTCONN)),
            };
        }
        match net.udp(id)?.peer {
            Some(e) => Ok(raw_of(family, Some(e.addr), e.port)),
            None => Err(err(libc::ENOTCONN)),
        }
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        let int = value
            .get(..4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        match (level, name) {
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) if self.stream => {
                let on = int.ok_or(Errno::EINVAL)? != 0;
                let id = self.id;
                self.shared.with(|net| {
                    let t = net.tcp(id)?;
                    t.nodelay = on;
                    if let Some(slot) = t.conn {
                        net.set.get_mut::<tcp::Socket>(slot).set_nagle_enabled(!on);
                    }
                    Ok(())
                })
            }
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                // struct linger: l_onoff, l_linger.
                let v = value.get(..8).ok_or(Errno::EINVAL)?;
                let on = i32::from_ne_bytes([v[0], v[1], v[2], v[3]]) != 0;
                let time = i32::from_ne_bytes([v[4], v[5], v[6], v[7]]);
                let id = self.id;
                self.shared.with(|net| {
                    if let Ok(t) = net.tcp(id) {
                        t.linger = on.then_some(time.max(0));
                    }
                });
                Ok(())
            }
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => {
                let on = int.ok_or(Errno::EINVAL)? != 0;
                let id = self.id;
                self.shared.with(|net| {
                    if let Some(s) = net.socks.get_mut(&id) {
                        s.reuse = on;
                    }
                });
                Ok(())
            }
            // Accepted and without effect on this stack.
            (libc::SOL_SOCKET, libc::SO_REUSEPORT)
            | (libc::SOL_SOCKET, libc::SO_KEEPALIVE)
            | (libc::SOL_SOCKET, libc::SO_BROADCAST)
            | (libc::SOL_SOCKET, libc::SO_RCVBUF)
            | (libc::SOL_SOCKET, libc::SO_SNDBUF)
            | (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)
            | (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL)
            | (libc::IPPROTO_TCP, libc::TCP_KEEPCNT)
            | (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => {
                if int.is_none() {
                    return Err(Errno::EINVAL);
                }
                Ok(())
            }
            _ => Err(err(libc::ENOPROTOOPT)),
        }
    }

    fn get_option(&self, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let _ = len;
        let int = |v: i32| Ok(v.to_ne_bytes().to_vec());
        let id = self.id;
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_TYPE) => int(if self.stream {
                libc::SOCK_STREAM
            } else {
                libc::SOCK_DGRAM
            }),
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => int(self.family),
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int(if self.stream {
                libc::IPPROTO_TCP
            } else {
                libc::IPPROTO_UDP
            }),
            (libc::SOL_SOCKET, libc::SO_ERROR) => {
                let e = self.take_error()?;
                int(e.map_or(0, |e| e.raw()))
            }
            (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => {
                let mut net = self.shared.lock();
                let listening = self.stream && net.tcp(id)?.pool.is_some();
                int(listening as i32)
            }
            (libc::SOL_SOCKET, libc::SO_RCVBUF) | (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
                int(if self.stream { TCP_BUFFER } else { UDP_BUFFER } as i32)
            }
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => {
                let net = self.shared.lock();
                int(net.socks.get(&id).is_some_and(|s| s.reuse) as i32)
            }
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => int(0),
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                let mut net = self.shared.lock();
                let linger = if self.stream {
                    net.tcp(id)?.linger
                } else {
                    None
                };
                let mut v = i32::from(linger.is_some()).to_ne_bytes().to_vec();
                v.extend_from_slice(&linger.unwrap_or(0).to_ne_bytes());
                Ok(v)
            }
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) if self.stream => {
                let mut net = self.shared.lock();
                int(net.tcp(id)?.nodelay as i32)
            }
            _ => Err(err(libc::ENOPROTOOPT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(stack: &SmolStack, domain: i32, kind: i32) -> Box<dyn FileHandle> {
        match stack.socket(domain, kind, 0) {
            Ok(Opened::Served(h)) => h,
            _ => panic!("a served socket"),
        }
    }

    fn v4(port: u16) -> Vec<u8> {
        from_socket_addr(&SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn port_of(raw: &[u8]) -> u16 {
        to_socket_addr(raw).unwrap().port()
    }

    fn until<T>(mut f: impl FnMut() -> Result<T, Errno>) -> T {
        for _ in 0..2000 {
            match f() {
                Err(e) if e == Errno::new(libc::EAGAIN) => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                r => return r.unwrap(),
            }
        }
        panic!("never ready");
    }

    #[test]
    fn tcp_over_the_loopback() {
        let stack = SmolStack::new().unwrap();
        let server = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        let s = server.as_socket().unwrap();
        s.bind(&v4(0)).unwrap();
        s.listen(4).unwrap();
        let port = port_of(&s.local_addr().unwrap());
        assert!(port >= EPHEMERAL_FIRST);
        assert_eq!(s.accept().err(), Some(Errno::new(libc::EAGAIN)));
        let client = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        let c = client.as_socket().unwrap();
        assert_eq!(c.connect(&v4(port)), Err(err(libc::EINPROGRESS)));
        let (conn, peer) = until(|| s.accept());
        let cs = conn.as_socket().unwrap();
        assert_eq!(c.take_error(), Ok(None));
        assert_eq!(port_of(&c.local_addr().unwrap()), port_of(&peer));
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < data.len() {
            if sent < data.len() {
                if let Ok(n) = c.send(&data[sent..], 0, None) {
                    sent += n;
                }
            }
            match cs.recv(&mut buf, 0) {
                Ok(r) => got.extend_from_slice(&buf[..r.len]),
                Err(e) => assert_eq!(e, Errno::new(libc::EAGAIN)),
            }
        }
        assert_eq!(got, data);
        c.shutdown(libc::SHUT_WR).unwrap();
        let r = until(|| cs.recv(&mut buf, 0));
        assert_eq!(r.len, 0);
        assert_eq!(cs.poll() & READABLE, READABLE);
        // The port is taken while the listener lives.
        let other = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        assert_eq!(
            other.as_socket().unwrap().bind(&v4(port)),
            Err(err(libc::EADDRINUSE))
        );
    }

    #[test]
    fn a_reset_connection_says_so_once() {
        let stack = SmolStack::new().unwrap();
        let server = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        let s = server.as_socket().unwrap();
        s.bind(&v4(0)).unwrap();
        s.listen(1).unwrap();
        let port = port_of(&s.local_addr().unwrap());
        let client = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        let c = client.as_socket().unwrap();
        assert_eq!(c.connect(&v4(port)), Err(err(libc::EINPROGRESS)));
        let (conn, _) = until(|| s.accept());
        assert_eq!(c.send(b"unread", 0, None), Ok(6));
        // Closed with data unread: a reset, as Linux sends.
        drop(conn);
        let mut buf = [0u8; 16];
        let first = (0..1000)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(1));
                c.recv(&mut buf, 0)
            })
            .find(|r| *r != Err(Errno::new(libc::EAGAIN)));
        assert_eq!(
            first.map(|r| r.map(|r| r.len)),
            Some(Err(err(libc::ECONNRESET)))
        );
        assert_eq!(c.recv(&mut buf, 0).map(|r| r.len), Ok(0));
    }

    #[test]
    fn linger_zero_resets_at_close() {
        let stack = SmolStack::new().unwrap();
        let server = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        let s = server.as_socket().unwrap();
        s.bind(&v4(0)).unwrap();
        s.listen(1).unwrap();
        let port = port_of(&s.local_addr().unwrap());
        let client = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        let c = client.as_socket().unwrap();
        let _ = c.connect(&v4(port));
        let (conn, _) = until(|| s.accept());
        let linger: Vec<u8> = [1i32, 0].iter().flat_map(|v| v.to_ne_bytes()).collect();
        conn.as_socket()
            .unwrap()
            .set_option(libc::SOL_SOCKET, libc::SO_LINGER, &linger)
            .unwrap();
        assert_eq!(
            conn.as_socket()
                .unwrap()
                .get_option(libc::SOL_SOCKET, libc::SO_LINGER, 8),
            Ok(linger)
        );
        drop(conn);
        let mut buf = [0u8; 4];
        let first = (0..1000)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(1));
                c.recv(&mut buf, 0)
            })
            .find(|r| *r != Err(Errno::new(libc::EAGAIN)));
        assert_eq!(
            first.map(|r| r.map(|r| r.len)),
            Some(Err(err(libc::ECONNRESET)))
        );
    }

    #[test]
    fn refused_and_unreachable() {
        let stack = SmolStack::new().unwrap();
        let c = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        let s = c.as_socket().unwrap();
        assert_eq!(s.connect(&v4(9)), Err(err(libc::EINPROGRESS)));
        for _ in 0..1000 {
            if c.poll() & POLLERR != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(s.take_error(), Ok(Some(err(libc::ECONNREFUSED))));
        let far = from_socket_addr(&SocketAddr::from(([10, 1, 2, 3], 80)));
        let c2 = sock(&stack, libc::AF_INET, libc::SOCK_STREAM);
        assert_eq!(
            c2.as_socket().unwrap().connect(&far),
            Err(err(libc::ENETUNREACH))
        );
        assert_eq!(
            stack.socket(libc::AF_UNIX, libc::SOCK_STREAM, 0).err(),
            Some(err(libc::EAFNOSUPPORT))
        );
        assert_eq!(
            stack
                .socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP)
                .err(),
            Some(err(libc::EPERM))
        );
    }

    #[test]
    fn udp_datagrams() {
        let stack = SmolStack::new().unwrap();
        let a = sock(&stack, libc::AF_INET, libc::SOCK_DGRAM);
        let b = sock(&stack, libc::AF_INET, libc::SOCK_DGRAM);
        let (sa, sb) = (a.as_socket().unwrap(), b.as_socket().unwrap());
        sa.bind(&v4(5353)).unwrap();
        assert_eq!(sb.send(b"hello", 0, Some(&v4(5353))), Ok(5));
        let mut buf = [0u8; 3];
        let r = until(|| sa.recv(&mut buf, 0));
        assert_eq!((r.len, r.full_len), (3, 5));
        assert_eq!(&buf, b"hel");
        assert_eq!(port_of(&r.from), port_of(&sb.local_addr().unwrap()));
        assert_eq!(sb.send(b"x", 0, None), Err(err(libc::EDESTADDRREQ)));
    }
}
