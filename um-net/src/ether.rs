//! The Ethernet device of a smoltcp stack with a VDE link
//! (`-o vd0=vde:///path/to/switch`): frames to the stack's own MAC
//! address come straight back (so the loopback's addresses work on the
//! same interface), broadcast and multicast frames go both to the switch
//! and back, and the rest go to the switch. Frames from the switch are
//! queued by a receiver thread ([`receive_loop`]).

use std::collections::VecDeque;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use viewos_core::vde::{Port, MAX_FRAME};

/// An Ethernet frame's header length.
const HEADER: usize = 14;
/// Frames queued for the stack at most (more are dropped, as a full
/// queue of a NIC drops them).
const QUEUE: usize = 4096;
/// How long a frame may wait for room in the switch's queue before it is
/// dropped (TCP sends it again).
pub const SEND_TIMEOUT: Duration = Duration::from_millis(250);

/// A locally administered unicast MAC address, different for each call.
pub fn new_mac() -> [u8; 6] {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let x = (std::process::id() ^ t.rotate_left(11) ^ n.wrapping_mul(0x9e37_79b9)).to_be_bytes();
    [0x02, 0x56, x[0], x[1], x[2], x[3]]
}

/// Frames received from the switch, not yet taken by the stack: the
/// receiver thread fills it without waiting for the stack's lock, so the
/// switch's queue to us (only `net.unix.max_dgram_qlen` datagrams deep)
/// is drained at once.
pub type Inbox = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// Queues `frames` from the switch in `inbox`, but for our own (from
/// `mac`), short ones, and those past a full queue.
pub fn queue(inbox: &Inbox, mac: [u8; 6], frames: Vec<Vec<u8>>) {
    let mut q = inbox.lock().unwrap_or_else(|p| p.into_inner());
    for f in frames {
        if f.len() >= HEADER && f[6..12] != mac && q.len() < QUEUE {
            q.push_back(f);
        }
    }
}

/// The stack's Ethernet interface.
pub struct EtherDevice {
    mac: [u8; 6],
    /// The switch, if the link is plugged in.
    port: Option<Arc<Port>>,
    /// Frames looped back, and those taken from the inbox.
    rx: VecDeque<Vec<u8>>,
    inbox: Inbox,
    mtu: usize,
}

impl EtherDevice {
    /// A device with address `mac` plugged into `port`.
    /// Frames from the switch come through `inbox`.
    pub fn new(mac: [u8; 6], port: Option<Arc<Port>>, inbox: Inbox, mtu: usize) -> EtherDevice {
        EtherDevice {
            mac,
            port,
            rx: VecDeque::new(),
            inbox,
            mtu,
        }
    }

    /// Its MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sends `frame` where its destination says.
    fn deliver(&mut self, frame: Vec<u8>) {
        if frame.len() < HEADER {
            return;
        }
        let dst = &frame[..6];
        let to_us = dst == self.mac;
        let group = dst[0] & 1 != 0;
        if !to_us {
            if let Some(p) = &self.port {
                // A dead or full switch loses the frame, as a cable would.
                let _ = p.send(&frame);
            }
        }
        if (to_us || group) && self.rx.len() < QUEUE {
            self.rx.push_back(frame);
        }
    }
}

/// A received frame.
pub struct Rx(Vec<u8>);

impl RxToken for Rx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

/// Room for a frame to send.
pub struct Tx<'a>(&'a mut EtherDevice);

impl TxToken for Tx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        self.0.deliver(frame);
        r
    }
}

impl Device for EtherDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Rx, Tx<'_>)> {
        if self.rx.is_empty() {
            let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut self.rx, &mut inbox);
        }
        let frame = self.rx.pop_front()?;
        Some((Rx(frame), Tx(self)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Tx<'_>> {
        Some(Tx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + HEADER;
        caps
    }
}

/// Receives frames from the switch on `socket` and hands each batch to
/// `deliver` until the port is shut or `deliver` answers `false` (the
/// stack is gone).
pub fn receive_loop(socket: UnixDatagram, mut deliver: impl FnMut(Vec<Vec<u8>>) -> bool) {
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let n = match socket.recv(&mut buf) {
            Ok(n) if n > 0 => n,
            // A signal of the host's (its tracer's SIGCHLDs) interrupts
            // the wait: not the end of the link.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The port was shut (or failed): the link is gone.
            _ => return,
        };
        let mut batch = vec![buf[..n].to_vec()];
        // What else is there already, without waiting.
        while batch.len() < 64 {
            match recv_now(&socket, &mut buf) {
                Ok(n) if n > 0 => batch.push(buf[..n].to_vec()),
                _ => break,
            }
        }
        if !deliver(batch) {
            return;
        }
    }
}

/// A datagram if one is queued now (0 if none).
#[allow(unsafe_code)]
fn recv_now(socket: &UnixDatagram, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd we own, no wait.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    if ready > 0 && fd.revents & libc::POLLIN != 0 {
        socket.recv(buf)
    } else {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_to_us_and_to_all_come_back() {
        let mac = new_mac();
        assert_eq!(mac[0] & 3, 2, "local and unicast");
        assert_ne!(mac, new_mac());
        let inbox = Inbox::default();
        let mut d = EtherDevice::new(mac, None, inbox.clone(), 1500);
        let mut to_us = mac.to_vec();
        to_us.extend_from_slice(&[0; 10]);
        d.deliver(to_us.clone());
        let mut bcast = vec![0xff; 6];
        bcast.extend_from_slice(&[0; 10]);
        d.deliver(bcast);
        let mut other = vec![0x02, 0, 0, 0, 0, 9];
        other.extend_from_slice(&[0; 10]);
        d.deliver(other);
        assert_eq!(d.rx.len(), 2);
        // Our own frames from the switch are not taken again.
        let mut own = vec![0xff; 6];
        own.extend_from_slice(&mac);
        own.extend_from_slice(&[0; 4]);
        queue(&inbox, mac, vec![own, vec![1, 2]]);
        assert!(inbox.lock().unwrap().is_empty());
        assert_eq!(d.capabilities().max_transmission_unit, 1514);
    }
}
