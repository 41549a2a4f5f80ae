//! Device numbers for the nodes umdev makes.
//!
//! Numbers follow the kernel's where it has one for the kind of device:
//! disk images are block major 3 (the first IDE disks, `hda`), RAM disks
//! block major 1 (`ram`), null devices char 1:3 (`/dev/null`'s), tap
//! devices char 10:200 (`/dev/net/tun`'s), and the 64 KiB RAM character
//! devices char major 60 (reserved for local use). A disk takes 256 minors
//! ([`Slot`]): its whole-disk node and partitions 1..255, as the kernel
//! allows a disk 256 minors. Numbers are unique in one umdev service while
//! their device lives.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use viewos_core::device::makedev;

/// Block major of disk images.
pub const DISK_MAJOR: u32 = 3;
/// Block major of RAM disks.
pub const RAMDISK_MAJOR: u32 = 1;
/// Char major of the 64 KiB RAM character devices.
pub const TRIVHD_MAJOR: u32 = 60;
/// The number of every null device (`/dev/null`'s).
pub const NULL: (u32, u32) = (1, 3);
/// The number of every tap device (`/dev/net/tun`'s).
pub const TUN: (u32, u32) = (10, 200);
/// Minors per disk.
pub const MINORS_PER_DISK: u32 = 256;

/// The slots in use, by major.
#[derive(Default)]
pub struct Numbers {
    used: Mutex<BTreeSet<(u32, u32)>>,
}

/// A range of minors of one major, held until dropped.
pub struct Slot {
    numbers: Arc<Numbers>,
    major: u32,
    index: u32,
    width: u32,
}

impl Numbers {
    /// The first free slot of `width` minors of `major` (minors up to
    /// 2^20, the kernel's limit).
    pub fn take(self: &Arc<Numbers>, major: u32, width: u32) -> Option<Slot> {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        let max = (1u32 << 20) / width;
        let index = (0..max).find(|i| !used.contains(&(major, *i)))?;
        used.insert((major, index));
        Some(Slot {
            numbers: self.clone(),
            major,
            index,
            width,
        })
    }
}

impl Slot {
    /// The device number of minor `n` of the slot (0 the disk, N its
    /// partition N).
    pub fn rdev(&self, n: u32) -> u64 {
        makedev(self.major, self.index * self.width + n.min(self.width - 1))
    }

    /// The slot's index among those of its major.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.numbers
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(self.major, self.index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use viewos_core::device::{major, minor};

    #[test]
    fn slots_are_unique_while_held() {
        let n = Arc::new(Numbers::default());
        let a = n.take(DISK_MAJOR, MINORS_PER_DISK).unwrap();
        let b = n.take(DISK_MAJOR, MINORS_PER_DISK).unwrap();
        let r = n.take(RAMDISK_MAJOR, MINORS_PER_DISK).unwrap();
        assert_eq!((major(a.rdev(0)), minor(a.rdev(0))), (3, 0));
        assert_eq!((major(b.rdev(2)), minor(b.rdev(2))), (3, 258));
        assert_eq!((major(r.rdev(1)), minor(r.rdev(1))), (1, 1));
        drop(a);
        let c = n.take(DISK_MAJOR, MINORS_PER_DISK).unwrap();
        assert_eq!(c.index(), 0);
    }
}
