//! `echodev`: a character device whose reads give back what was written
//! to it, claimed by number.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::device::{makedev, DeviceKind};
use crate::fs::{FileStat, Opened};
use crate::handle::{FileHandle, Notifier, READABLE, WRITABLE};
use crate::{Errno, Interest, Service};

/// How many bytes the device holds.
const CAPACITY: usize = 64 << 10;

/// The `echodev` test service (`umview -p echodev[,MAJOR:MINOR]`): it
/// claims one character device number (default 1:7, `/dev/full`'s) and
/// serves it as a loop: bytes written by any program come out of the next
/// reads, in order. Reads of an empty device and writes to a full one
/// would block ([`FileHandle`]'s `EAGAIN` and readiness), which makes it
/// the test of blocking served files and of devices by number.
pub struct EchoDev {
    rdev: u64,
    state: Arc<Mutex<Loop>>,
}

#[derive(Default)]
struct Loop {
    data: VecDeque<u8>,
    watchers: Vec<(u64, Notifier)>,
    next_id: u64,
}

impl Loop {
    fn poll(&self) -> u32 {
        let mut bits = 0;
        if !self.data.is_empty() {
            bits |= READABLE;
        }
        if self.data.len() < CAPACITY {
            bits |= WRITABLE;
        }
        bits
    }

    /// The notifiers to call once the lock is released (a host's
    /// notifier asks [`FileHandle::poll`], which takes the lock).
    fn watchers(&self) -> Vec<Notifier> {
        self.watchers.iter().map(|(_, n)| n.clone()).collect()
    }
}

impl EchoDev {
    /// The factory for a module registry: the device number as
    /// `MAJOR:MINOR`, or nothing for 1:7.
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        let rdev = if options.is_empty() {
            makedev(1, 7)
        } else {
            let (ma, mi) = options.split_once(':').ok_or(Errno::EINVAL)?;
            let ma = ma.parse().map_err(|_| Errno::EINVAL)?;
            let mi = mi.parse().map_err(|_| Errno::EINVAL)?;
            makedev(ma, mi)
        };
        Ok(Box::new(EchoDev {
            rdev,
            state: Arc::default(),
        }))
    }
}

impl Service for EchoDev {
    fn name(&self) -> &str {
        "echodev"
    }

    fn description(&self) -> &str {
        "a character device that reads back what was written (test service)"
    }

    fn interest(&self) -> Interest {
        Interest::DEVICE
    }

    fn handles_device(&self, kind: DeviceKind, rdev: u64) -> bool {
        kind == DeviceKind::Char && rdev == self.rdev
    }

    fn open_device(&self, _kind: DeviceKind, rdev: u64, _flags: i32) -> Result<Opened, Errno> {
        let id = {
            let mut s = self.state.lock().map_err(|_| Errno::EIO)?;
            s.next_id += 1;
            s.next_id
        };
        Ok(Opened::Served(Box::new(EchoHandle {
            id,
            rdev,
            state: self.state.clone(),
        })))
    }
}

/// One open of the device.
struct EchoHandle {
    id: u64,
    rdev: u64,
    state: Arc<Mutex<Loop>>,
}

impl EchoHandle {
    fn with<T>(&self, f: impl FnOnce(&mut Loop) -> T) -> Result<T, Errno> {
        let mut s = self.state.lock().map_err(|_| Errno::EIO)?;
        Ok(f(&mut s))
    }
}

fn notify(watchers: Vec<Notifier>) {
    for n in watchers {
        n.notify();
    }
}

impl FileHandle for EchoHandle {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let (n, watchers) = self.with(|s| {
            if s.data.is_empty() {
                return Err(Errno::new(libc::EAGAIN));
            }
            let n = buf.len().min(s.data.len());
            for (b, d) in buf.iter_mut().zip(s.data.drain(..n)) {
                *b = d;
            }
            Ok((n, s.watchers()))
        })??;
        notify(watchers);
        Ok(n)
    }

    fn write(&self, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let (n, watchers) = self.with(|s| {
            let room = CAPACITY - s.data.len();
            if room == 0 && !data.is_empty() {
                return Err(Errno::new(libc::EAGAIN));
            }
            let n = data.len().min(room);
            s.data.extend(&data[..n]);
            Ok((n, s.watchers()))
        })??;
        notify(watchers);
        Ok(n)
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        Ok(FileStat {
            mode: libc::S_IFCHR | 0o666,
            rdev: self.rdev,
            nlink: 1,
            blksize: 4096,
            ..FileStat::default()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> u32 {
        self.with(|s| s.poll()).unwrap_or(0)
    }

    fn watch(&self, notifier: Notifier) {
        let _ = self.with(|s| s.watchers.push((self.id, notifier)));
    }
}

impl Drop for EchoHandle {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self.with(|s| s.watchers.retain(|(i, _)| *i != id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn open(s: &dyn Service) -> Box<dyn FileHandle> {
        match s.open_device(DeviceKind::Char, makedev(1, 7), libc::O_RDWR) {
            Ok(Opened::Served(h)) => h,
            _ => panic!("not served"),
        }
    }

    #[test]
    fn loops_bytes_and_notifies() {
        let s = EchoDev::create("").unwrap();
        assert!(s.handles_device(DeviceKind::Char, makedev(1, 7)));
        assert!(!s.handles_device(DeviceKind::Block, makedev(1, 7)));
        assert!(!s.handles_device(DeviceKind::Char, makedev(1, 3)));
        let (r, w) = (open(s.as_ref()), open(s.as_ref()));
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        r.watch(Notifier::new(move || {
            h.fetch_add(1, Ordering::SeqCst);
        }));
        let mut buf = [0u8; 8];
        assert_eq!(r.read(0, &mut buf), Err(Errno::new(libc::EAGAIN)));
        assert_eq!(r.poll(), WRITABLE);
        assert_eq!(w.write(0, b"abc"), Ok(3));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(r.poll(), READABLE | WRITABLE);
        assert_eq!(r.read(0, &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"abc");
        // Reading made room: a notification too.
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        drop(r);
        assert_eq!(w.write(0, b"x"), Ok(1));
        // The dropped reader is no longer notified.
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn full_device_would_block() {
        let s = EchoDev::create("10:20").unwrap();
        assert!(s.handles_device(DeviceKind::Char, makedev(10, 20)));
        let h = match s.open_device(DeviceKind::Char, makedev(10, 20), libc::O_RDWR) {
            Ok(Opened::Served(h)) => h,
            _ => panic!("not served"),
        };
        assert_eq!(h.write(0, &vec![7u8; CAPACITY + 5]), Ok(CAPACITY));
        assert_eq!(h.poll(), READABLE);
        assert_eq!(h.write(0, b"x"), Err(Errno::new(libc::EAGAIN)));
        assert!(EchoDev::create("bogus").is_err());
    }
}
