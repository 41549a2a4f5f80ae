//! `umdevtap`: a virtual `/dev/net/tun` (char 10:200) whose TAP
//! interfaces are ports of a VDE switch (`-o vde=URL`, see [`viewos_core::vde`]):
//! a frame a program writes to its tap fd goes out on the switch, and
//! frames the switch delivers to the port are read from the fd.
//!
//! As the kernel's: each open is a new file that `TUNSETIFF` (with
//! `IFF_TAP`, and `IFF_NO_PI` or not) attaches to a new interface, named
//! from the request (`tap%d` by default); reads return one frame each
//! (prefixed with the 4-byte packet information unless `IFF_NO_PI`) and
//! wait while none has come (`EAGAIN` in non-blocking mode); writes send
//! one frame each. Before `TUNSETIFF`, reads, writes and the interface's
//! requests are `EBADFD`; unknown requests are `EINVAL`. Not here: `IFF_TUN`
//! (IP packets, which a switch of Ethernet frames does not carry: `EINVAL`),
//! multi-queue, virtio-net headers, and the interface itself (no
//! `SIOCSIFFLAGS`/`ip link` on it: it is no interface of a network stack).

use std::collections::{HashSet, VecDeque};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use viewos_core::device::{makedev, DeviceKind};
use viewos_core::handle::{READABLE, WRITABLE};
use viewos_core::{Errno, FileHandle, IoctlArg, Notifier};

use crate::node::Device;
use crate::numbers::TUN;
use viewos_core::vde::{self, Port, MAX_FRAME};

/// `TUNSETIFF`: attach to an interface (`struct ifreq`, written back).
pub const TUNSETIFF: u32 = 0x4004_54ca;
/// `TUNGETIFF`: the attached interface (`struct ifreq`).
pub const TUNGETIFF: u32 = 0x8004_54d2;
/// `TUNGETFEATURES`: the flags `TUNSETIFF` takes (`unsigned int`).
pub const TUNGETFEATURES: u32 = 0x8004_54cf;
/// Requests about the interface that take a plain value and change
/// nothing a program here can see: `TUNSETNOCSUM`, `TUNSETDEBUG`,
/// `TUNSETPERSIST`, `TUNSETOWNER`, `TUNSETLINK`, `TUNSETGROUP`,
/// `TUNSETOFFLOAD`.
const ACCEPTED: [u32; 7] = [
    0x4004_54c8,
    0x4004_54c9,
    0x4004_54cb,
    0x4004_54cc,
    0x4004_54cd,
    0x4004_54ce,
    0x4004_54d0,
];

/// `IFF_TUN`: IP packets.
pub const IFF_TUN: u16 = 0x0001;
/// `IFF_TAP`: Ethernet frames.
pub const IFF_TAP: u16 = 0x0002;
/// `IFF_NO_PI`: no packet information before each frame.
pub const IFF_NO_PI: u16 = 0x1000;
/// `IFF_ONE_QUEUE`: ignored by the kernel too.
pub const IFF_ONE_QUEUE: u16 = 0x2000;
/// `sizeof(struct ifreq)`.
const IFREQ: usize = 40;
/// `IFNAMSIZ`.
const IFNAMSIZ: usize = 16;
/// Frames kept for reading at most (the kernel's default `txqueuelen`);
/// more are dropped, as a full queue drops them.
const QUEUE: usize = 1000;

/// The device: where its interfaces plug in, and their names.
pub struct Tap {
    control: PathBuf,
    names: Arc<Mutex<HashSet<Vec<u8>>>>,
}

impl Tap {
    /// A tap device whose interfaces plug into the switch of `url`; the
    /// switch's control socket must exist (`ENOENT` otherwise).
    pub fn new(url: &str) -> Result<Tap, Errno> {
        let control = vde::control_socket(url);
        std::fs::symlink_metadata(&control)?;
        Ok(Tap {
            control,
            names: Arc::default(),
        })
    }
}

impl Device for Tap {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Char
    }

    fn rdev(&self, _node: u32) -> u64 {
        makedev(TUN.0, TUN.1)
    }

    fn capacity(&self, node: u32) -> Option<u64> {
        (node == 0).then_some(0)
    }

    fn open(&self, _node: u32, _flags: i32) -> Result<Box<dyn FileHandle>, Errno> {
        Ok(Box::new(TapHandle {
            control: self.control.clone(),
            names: self.names.clone(),
            iface: Mutex::new(None),
            frames: Arc::default(),
        }))
    }
}

/// Frames received and not yet read, and who to tell when more come.
#[derive(Default)]
struct Frames {
    queue: Mutex<VecDeque<Vec<u8>>>,
    notifier: Mutex<Option<Notifier>>,
    closed: AtomicBool,
}

impl Frames {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        let n = self
            .notifier
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(n) = n {
            n.notify();
        }
    }

    /// Receives frames from the port until it is shut.
    fn receive(self: Arc<Frames>, socket: UnixDatagram) {
        let mut buf = vec![0u8; MAX_FRAME];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) if n > 0 => {
                    let mut q = self.lock();
                    if q.len() < QUEUE {
                        q.push_back(buf[..n].to_vec());
                    }
                    drop(q);
                    self.notify();
                }
                Ok(_) if self.closed.load(Ordering::Acquire) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// An attached interface.
struct Iface {
    name: Vec<u8>,
    flags: u16,
    port: Port,
}

/// An open tap device.
struct TapHandle {
    control: PathBuf,
    names: Arc<Mutex<HashSet<Vec<u8>>>>,
    iface: Mutex<Option<Iface>>,
    frames: Arc<Frames>,
}

impl TapHandle {
    fn iface(&self) -> MutexGuard<'_, Option<Iface>> {
        self.iface.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The interface name `TUNSETIFF` asks for: `tap%d` when empty, `%d`
    /// replaced with the first free number.
    fn pick_name(&self, asked: &[u8]) -> Result<Vec<u8>, Errno> {
        let asked = if asked.is_empty() { b"tap%d" } else { asked };
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        let name = match asked.windows(2).position(|w| w == b"%d") {
            Some(at) => (0..)
                .map(|i: u32| {
                    let mut n = asked[..at].to_vec();
                    n.extend_from_slice(i.to_string().as_bytes());
                    n.extend_from_slice(&asked[at + 2..]);
                    n
                })
                .find(|n| !names.contains(n))
                .ok_or(Errno::EINVAL)?,
            None if names.contains(asked) => return Err(Errno::EBUSY),
            None => asked.to_vec(),
        };
        if name.len() >= IFNAMSIZ {
            return Err(Errno::EINVAL);
        }
        names.insert(name.clone());
        Ok(name)
    }

    fn set_iff(&self, ifr: &mut [u8]) -> Result<i64, Errno> {
        let mut iface = self.iface();
        if iface.is_some() {
            return Err(Errno::EEXIST);
        }
        let flags = u16::from_ne_bytes([ifr[16], ifr[17]]);
        if flags & (IFF_TUN | IFF_TAP) != IFF_TAP
            || flags & !(IFF_TAP | IFF_NO_PI | IFF_ONE_QUEUE) != 0
        {
            return Err(Errno::EINVAL);
        }
        let asked = &ifr[..IFNAMSIZ];
        let asked = &asked[..asked.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ)];
        let name = self.pick_name(asked)?;
        let description = format!("umdevtap {}", String::from_utf8_lossy(&name));
        let port = match Port::connect(&self.control, &description) {
            Ok(p) => p,
            Err(e) => {
                self.names
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&name);
                return Err(e.into());
            }
        };
        let frames = self.frames.clone();
        let socket = port.receiver()?;
        std::thread::Builder::new()
            .name("umdevtap".into())
            .spawn(move || frames.receive(socket))?;
        ifr[..IFNAMSIZ].fill(0);
        ifr[..name.len()].copy_from_slice(&name);
        *iface = Some(Iface { name, flags, port });
        Ok(0)
    }
}

impl FileHandle for TapHandle {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let with_pi = match &*self.iface() {
            None => return Err(Errno::new(libc::EBADFD)),
            Some(i) => i.flags & IFF_NO_PI == 0,
        };
        let Some(frame) = self.frames.lock().pop_front() else {
            return Err(Errno::new(libc::EAGAIN));
        };
        let mut out = Vec::with_capacity(frame.len() + 4);
        if with_pi {
            // struct tun_pi: flags, then the protocol (the EtherType).
            out.extend_from_slice(&0u16.to_ne_bytes());
            out.extend_from_slice(frame.get(12..14).unwrap_or(&[0, 0]));
        }
        out.extend_from_slice(&frame);
        let n = out.len().min(buf.len());
        buf[..n].copy_from_slice(&out[..n]);
        Ok(n)
    }

    fn write(&self, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let iface = self.iface();
        let Some(i) = &*iface else {
            return Err(Errno::new(libc::EBADFD));
        };
        let frame = if i.flags & IFF_NO_PI == 0 {
            data.get(4..).ok_or(Errno::EINVAL)?
        } else {
            data
        };
        // Shorter than an Ethernet header, or longer than a port carries.
        if frame.len() < 14 || frame.len() > MAX_FRAME {
            return Err(Errno::EINVAL);
        }
        // A switch that went away: the interface is down.
        i.port.send(frame).map_err(|_| Errno::EIO)?;
        Ok(data.len())
    }

    fn seekable(&self) -> bool {
        false
    }

    fn ioctl_arg(&self, request: u32) -> Option<IoctlArg> {
        match request {
            TUNSETIFF => Some(IoctlArg::InOut(IFREQ)),
            TUNGETIFF => Some(IoctlArg::Out(IFREQ)),
            r if ACCEPTED.contains(&r) => Some(IoctlArg::Value),
            _ => None,
        }
    }

    fn ioctl(&self, request: u32, _arg: u64, data: &mut [u8]) -> Result<i64, Errno> {
        match request {
            TUNSETIFF => self.set_iff(data.get_mut(..IFREQ).ok_or(Errno::EFAULT)?),
            TUNGETFEATURES => {
                let features = u32::from(IFF_TAP | IFF_NO_PI | IFF_ONE_QUEUE);
                data.get_mut(..4)
                    .ok_or(Errno::EFAULT)?
                    .copy_from_slice(&features.to_ne_bytes());
                Ok(0)
            }
            _ => {
                let iface = self.iface();
                let Some(i) = &*iface else {
                    return Err(Errno::new(libc::EBADFD));
                };
                match request {
                    TUNGETIFF => {
                        let ifr = data.get_mut(..IFREQ).ok_or(Errno::EFAULT)?;
                        ifr.fill(0);
                        ifr[..i.name.len()].copy_from_slice(&i.name);
                        ifr[16..18].copy_from_slice(&i.flags.to_ne_bytes());
                        Ok(0)
                    }
                    r if ACCEPTED.contains(&r) => Ok(0),
                    _ => Err(Errno::EINVAL),
                }
            }
        }
    }

    fn poll(&self) -> u32 {
        if self.frames.lock().is_empty() {
            WRITABLE
        } else {
            READABLE | WRITABLE
        }
    }

    fn watch(&self, notifier: Notifier) {
        *self
            .frames
            .notifier
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(notifier);
    }
}

impl Drop for TapHandle {
    fn drop(&mut self) {
        self.frames.closed.store(true, Ordering::Release);
        if let Some(i) = self.iface().take() {
            self.names
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&i.name);
            // Dropping the port shuts its socket: the receiver ends.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    /// A one-port switch in a thread: answers the request with the
    /// address of its data socket and echoes every frame back.
    fn echo_switch(dir: &std::path::Path) -> PathBuf {
        let ctl = dir.join("ctl");
        let data_path = dir.join("data");
        let listener = UnixListener::bind(&ctl).unwrap();
        let data = UnixDatagram::bind(&data_path).unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut req = [0u8; 12 + 110 + 128];
            c.read_exact(&mut req).unwrap();
            let peer = vde::parse_reply(&req[12..122]).unwrap();
            let mut reply = [0u8; 110];
            reply[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
            let p = data_path.to_str().unwrap().as_bytes();
            reply[2..2 + p.len()].copy_from_slice(p);
            c.write_all(&reply).unwrap();
            let mut buf = [0u8; 2000];
            while let Ok(n) = data.recv(&mut buf) {
                let _ = data.send_to(&buf[..n], &peer);
            }
            drop(c);
        });
        ctl
    }

    fn ifreq(name: &[u8], flags: u16) -> Vec<u8> {
        let mut r = vec![0u8; IFREQ];
        r[..name.len()].copy_from_slice(name);
        r[16..18].copy_from_slice(&flags.to_ne_bytes());
        r
    }

    #[test]
    fn frames_go_to_the_switch_and_back() {
        let dir = std::env::temp_dir().join(format!("umdev-tap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        echo_switch(&dir);
        let tap = Tap::new(dir.to_str().unwrap()).unwrap();
        let h = tap.open(0, libc::O_RDWR).unwrap();
        let frame: Vec<u8> = [
            [0xffu8; 6].as_slice(),
            &[2, 0, 0, 0, 0, 1],
            &[0x08, 0],
            b"hello",
        ]
        .concat();
        assert_eq!(h.write(0, &frame), Err(Errno::new(libc::EBADFD)));
        assert_eq!(h.read(0, &mut [0; 64]), Err(Errno::new(libc::EBADFD)));
        assert_eq!(
            h.ioctl(TUNSETIFF, 0, &mut ifreq(b"", IFF_TUN)),
            Err(Errno::EINVAL)
        );
        let mut r = ifreq(b"", IFF_TAP | IFF_NO_PI);
        assert_eq!(h.ioctl(TUNSETIFF, 0, &mut r), Ok(0));
        assert_eq!(&r[..5], b"tap0\0");
        assert_eq!(h.ioctl(TUNSETIFF, 0, &mut r), Err(Errno::EEXIST));
        assert_eq!(h.ioctl(0x4004_54ff, 0, &mut []), Err(Errno::EINVAL));
        assert_eq!(h.poll(), WRITABLE);
        assert_eq!(h.write(0, &frame), Ok(frame.len()));
        assert_eq!(h.write(0, &frame[..10]), Err(Errno::EINVAL));
        let mut buf = [0u8; 64];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let n = loop {
            match h.read(0, &mut buf) {
                Ok(n) => break n,
                Err(e) if e == Errno::new(libc::EAGAIN) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(&buf[..n], &frame[..]);
        // Other opens get the next names; a name in use is taken.
        let h2 = TapHandle {
            control: dir.join("ctl"),
            names: tap.names.clone(),
            iface: Mutex::new(None),
            frames: Arc::default(),
        };
        assert_eq!(h2.pick_name(b""), Ok(b"tap1".to_vec()));
        assert_eq!(h2.pick_name(b"vde%d"), Ok(b"vde0".to_vec()));
        assert_eq!(h2.pick_name(b"tap0"), Err(Errno::EBUSY));
        assert_eq!(h2.pick_name(b"a-very-long-name%d"), Err(Errno::EINVAL));
        drop(h);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_switch_fails_the_mount() {
        assert_eq!(Tap::new("/nonexistent/switch").err(), Some(Errno::ENOENT));
    }
}
