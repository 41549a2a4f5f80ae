//! The two test character devices of the seeds: `umdevnull`, a
//! `/dev/null` (reads end at once, writes take everything), and
//! `umdevtrivhd`, 64 KiB of memory as a character device (reads and
//! writes at positions inside it; reads end at its end, writes there are
//! `ENOSPC`).

use std::sync::{Arc, Mutex, PoisonError};

use viewos_core::device::{makedev, DeviceKind};
use viewos_core::{Errno, FileHandle};

use crate::node::Device;
use crate::numbers::{Slot, NULL};

/// The null device.
pub struct Null;

impl Device for Null {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Char
    }

    fn rdev(&self, _node: u32) -> u64 {
        makedev(NULL.0, NULL.1)
    }

    fn capacity(&self, node: u32) -> Option<u64> {
        (node == 0).then_some(0)
    }

    fn open(&self, _node: u32, _flags: i32) -> Result<Box<dyn FileHandle>, Errno> {
        Ok(Box::new(NullHandle))
    }
}

struct NullHandle;

impl FileHandle for NullHandle {
    fn read(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Ok(0)
    }

    fn write(&self, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        Ok(data.len())
    }
}

/// The size of a trivhd.
pub const TRIVHD_SIZE: usize = 64 << 10;

/// A 64 KiB RAM character device; its bytes last as long as the mount.
pub struct TrivHd {
    slot: Slot,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl TrivHd {
    /// A trivhd of zeros with the device number of minor 0 of `slot`.
    pub fn new(slot: Slot) -> TrivHd {
        TrivHd {
            slot,
            bytes: Arc::new(Mutex::new(vec![0; TRIVHD_SIZE])),
        }
    }
}

impl Device for TrivHd {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Char
    }

    fn rdev(&self, _node: u32) -> u64 {
        self.slot.rdev(0)
    }

    fn capacity(&self, node: u32) -> Option<u64> {
        (node == 0).then_some(TRIVHD_SIZE as u64)
    }

    fn open(&self, _node: u32, _flags: i32) -> Result<Box<dyn FileHandle>, Errno> {
        Ok(Box::new(TrivHandle(self.bytes.clone())))
    }
}

struct TrivHandle(Arc<Mutex<Vec<u8>>>);

impl FileHandle for TrivHandle {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(rest) = usize::try_from(offset).ok().and_then(|o| bytes.get(o..)) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(rest) = usize::try_from(offset)
            .ok()
            .and_then(|o| bytes.get_mut(o..))
            .filter(|r| !r.is_empty())
        else {
            return Err(Errno::new(libc::ENOSPC));
        };
        let n = rest.len().min(data.len());
        rest[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbers::{Numbers, TRIVHD_MAJOR};

    #[test]
    fn null_takes_everything_and_gives_nothing() {
        let h = Null.open(0, libc::O_RDWR).unwrap();
        assert_eq!(h.write(12345, &[1; 4096]), Ok(4096));
        assert_eq!(h.read(0, &mut [0; 16]), Ok(0));
        assert_eq!(Null.capacity(1), None);
    }

    #[test]
    fn trivhd_holds_64k_shared_by_its_opens() {
        let numbers = Arc::new(Numbers::default());
        let t = TrivHd::new(numbers.take(TRIVHD_MAJOR, 1).unwrap());
        let a = t.open(0, libc::O_RDWR).unwrap();
        let b = t.open(0, libc::O_RDONLY).unwrap();
        let end = TRIVHD_SIZE as u64;
        assert_eq!(a.write(end - 10, &[7; 100]), Ok(10));
        assert_eq!(a.write(end, &[7; 1]), Err(Errno::new(libc::ENOSPC)));
        let mut buf = [0u8; 100];
        assert_eq!(b.read(end - 20, &mut buf), Ok(20));
        assert_eq!(&buf[..20], &[[0u8; 10], [7u8; 10]].concat()[..]);
        assert_eq!(b.read(end, &mut buf), Ok(0));
        assert_eq!(b.read(u64::MAX, &mut buf), Ok(0));
    }
}
