//! A block device over a [`Store`]: the whole disk and, for a
//! partitionable disk, the partitions its table names, with the kernel's
//! rules for I/O at the ends, exclusive opens, read-only devices and
//! changing the partitions while the disk is in use.
//!
//! - I/O is bounded by the node: a read at or past the end gives 0 bytes,
//!   one that reaches past it is short; a write at or past the end is
//!   `ENOSPC`, one that reaches past it is short. Nothing is ever read or
//!   written outside the disk's capacity, fixed when the disk is made (an
//!   image's size rounded down to whole sectors).
//! - A read-only disk (its image could only be opened for reading, or
//!   `BLKROSET`) opens for writing but every write is `EPERM`.
//! - `O_EXCL` opens claim a node: a second claim of it, a claim of a
//!   partition of a claimed disk or of a disk with a claimed partition is
//!   `EBUSY`.
//! - The partitions are read from the table when the disk is made, and
//!   again at `BLKRRPART`, refused with `EBUSY` while a partition is open
//!   or another opener claims the disk. `BLKPG` adds, removes and resizes
//!   partitions without reading the table (see [`crate::blkioctl`]).
//!
//! The host sees a program's last close of a device a moment after it
//! happens (its release thread drops the handle), while the kernel's close
//! is over when it returns: a program that opens a disk exclusively right
//! after another one closed it and exited (`mkfs`, then `fuse2fs`) must
//! not find it busy. So a claim, a re-read or a removal that finds the
//! disk busy waits a little ([`RELEASE_GRACE`]) for handles to be dropped
//! before it answers `EBUSY`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use viewos_core::device::DeviceKind;
use viewos_core::hook::CallerMemory;
use viewos_core::{Errno, FileHandle, IoctlArg};

use crate::blkioctl;
use crate::node::Device;
use crate::numbers::Slot;
use crate::store::Store;
use crate::table::{self, Extent, Sectors, SECTOR};

/// How long a call that finds the disk busy waits for handles being
/// released (see the module docs).
pub const RELEASE_GRACE: Duration = if cfg!(test) {
    Duration::from_millis(50)
} else {
    Duration::from_millis(500)
};

/// Disk sequence numbers (`BLKGETDISKSEQ`): unique for each disk made.
static DISK_SEQ: AtomicU64 = AtomicU64::new(1);

/// A disk.
pub struct Disk {
    store: Box<dyn Store>,
    capacity: u64,
    slot: Slot,
    partitionable: bool,
    /// The store cannot be written.
    forced_read_only: bool,
    seq: u64,
    /// Read-ahead in sectors (`BLKRAGET`/`BLKRASET`).
    read_ahead: AtomicU64,
    /// The soft block size (`BLKBSZGET`/`BLKBSZSET`).
    block_size: AtomicU32,
    state: Mutex<State>,
    /// Signalled when a handle is dropped.
    released: Condvar,
}

/// What changes as programs use the disk.
#[derive(Default)]
struct State {
    parts: BTreeMap<u32, Extent>,
    /// Open handles per node.
    opens: HashMap<u32, u32>,
    /// Nodes an `O_EXCL` open holds.
    claimed: HashSet<u32>,
    /// Nodes made read-only with `BLKROSET`.
    read_only: HashSet<u32>,
}

/// How a [`Disk`] is made.
pub struct DiskConfig {
    /// Its bytes.
    pub store: Box<dyn Store>,
    /// Its size in bytes; rounded down to whole sectors.
    pub size: u64,
    /// Its device numbers.
    pub slot: Slot,
    /// It has a partition table (read now, and at `BLKRRPART`).
    pub partitionable: bool,
    /// The store cannot be written.
    pub read_only: bool,
}

impl Disk {
    /// A disk; its partitions are read from its table (a table that
    /// cannot be read gives none, as when the kernel adds a disk).
    pub fn new(config: DiskConfig) -> Arc<Disk> {
        let disk = Disk {
            store: config.store,
            capacity: config.size / SECTOR * SECTOR,
            slot: config.slot,
            partitionable: config.partitionable,
            forced_read_only: config.read_only,
            seq: DISK_SEQ.fetch_add(1, Ordering::Relaxed),
            read_ahead: AtomicU64::new(256),
            block_size: AtomicU32::new(default_block_size(config.size / SECTOR * SECTOR)),
            state: Mutex::new(State::default()),
            released: Condvar::new(),
        };
        if disk.partitionable {
            let parts = disk.scan().unwrap_or_default();
            disk.lock().parts = parts;
        }
        Arc::new(disk)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state once `busy` is false, waiting up to [`RELEASE_GRACE`] for
    /// handles to be dropped; `EBUSY` if it stays busy.
    fn lock_when_free(
        &self,
        busy: impl Fn(&State) -> bool,
    ) -> Result<MutexGuard<'_, State>, Errno> {
        let deadline = Instant::now() + RELEASE_GRACE;
        let mut s = self.lock();
        while busy(&s) {
            let now = Instant::now();
            if now >= deadline {
                return Err(Errno::EBUSY);
            }
            s = self
                .released
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(s)
    }

    /// The disk's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// True if the disk has a partition table.
    pub fn partitionable(&self) -> bool {
        self.partitionable
    }

    /// The disk's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Where `node` lies (0: the whole disk), if it exists.
    pub fn extent(&self, node: u32) -> Option<Extent> {
        if node == 0 {
            return Some(Extent {
                start: 0,
                len: self.capacity,
            });
        }
        self.lock().parts.get(&node).copied()
    }

    /// The partitions, by number.
    pub fn partitions(&self) -> BTreeMap<u32, Extent> {
        self.lock().parts.clone()
    }

    /// True if writes to `node` are refused.
    pub fn read_only(&self, node: u32) -> bool {
        self.forced_read_only || self.lock().read_only.contains(&node)
    }

    /// `BLKROSET` on `node`. Clearing it does not make a disk whose store
    /// is read-only writable (as for the kernel's read-only disks).
    pub fn set_read_only(&self, node: u32, on: bool) {
        let mut s = self.lock();
        if on {
            s.read_only.insert(node);
        } else {
            s.read_only.remove(&node);
        }
    }

    /// Read-ahead in sectors.
    pub fn read_ahead(&self) -> &AtomicU64 {
        &self.read_ahead
    }

    /// The soft block size.
    pub fn block_size(&self) -> &AtomicU32 {
        &self.block_size
    }

    /// Reads `buf` from `node` at `offset`: short at the node's end, 0
    /// bytes past it.
    pub fn read(&self, node: u32, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let e = self.extent(node).ok_or(Errno::EIO)?;
        if offset >= e.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(e.len - offset) as usize;
        self.store.read_at(e.start + offset, &mut buf[..n])?;
        Ok(n)
    }

    /// Writes `data` to `node` at `offset`: `EPERM` on a read-only node,
    /// short at the node's end, `ENOSPC` past it.
    pub fn write(&self, node: u32, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        if self.read_only(node) {
            return Err(Errno::new(libc::EPERM));
        }
        if data.is_empty() {
            return Ok(0);
        }
        let e = self.extent(node).ok_or(Errno::EIO)?;
        if offset >= e.len {
            return Err(Errno::new(libc::ENOSPC));
        }
        let n = (data.len() as u64).min(e.len - offset) as usize;
        self.store.write_at(e.start + offset, &data[..n])?;
        Ok(n)
    }

    /// Makes what was written durable.
    pub fn sync(&self) -> Result<(), Errno> {
        self.store.sync()
    }

    /// Where `node`'s bytes lie in the disk's real image file, if it has
    /// one (see [`FileHandle::extent`]).
    pub fn real_extent(&self, node: u32) -> Option<viewos_core::handle::Extent<'_>> {
        let (file, writable, held) = self.store.real_file()?;
        let e = self.extent(node)?;
        Some(viewos_core::handle::Extent {
            file,
            start: e.start,
            // Past what the image holds, the store answers (EIO).
            len: e.len.min(held.saturating_sub(e.start)),
            writable: writable && !self.read_only(node),
        })
    }

    /// The partitions the table names now, fitted to the disk.
    fn scan(&self) -> Result<BTreeMap<u32, Extent>, Errno> {
        let read = |offset: u64, buf: &mut [u8]| self.store.read_at(offset, buf);
        let sectors = Sectors::new(&read, self.capacity / SECTOR);
        let entries = table::scan(&sectors)?;
        Ok(table::fit(&entries, self.capacity / SECTOR))
    }

    /// `BLKRRPART` through a whole-disk handle (`exclusive`: it claimed
    /// the disk): the partitions become the table's.
    pub fn reread(&self, exclusive: bool) -> Result<(), Errno> {
        if !self.partitionable {
            return Err(Errno::EINVAL);
        }
        let busy = |s: &State| {
            s.opens.iter().any(|(&n, &c)| n != 0 && c > 0) || (!exclusive && s.claimed.contains(&0))
        };
        drop(self.lock_when_free(busy)?);
        let scanned = self.scan();
        // Checked again: the table was read without the lock.
        let mut s = self.lock_when_free(busy)?;
        // The kernel drops the old partitions before it reads the table:
        // a table it cannot read leaves none.
        s.parts = scanned.as_ref().cloned().unwrap_or_default();
        scanned.map(|_| ())
    }

    /// `BLKPG_ADD_PARTITION`: partition `number` at `extent` (checked to
    /// be inside the disk).
    pub fn add_partition(&self, number: u32, extent: Extent) -> Result<(), Errno> {
        if !self.partitionable {
            return Err(Errno::EINVAL);
        }
        let mut s = self.lock();
        if s.parts.values().any(|p| p.overlaps(&extent)) {
            return Err(Errno::EBUSY);
        }
        if number > table::MAX_PARTITION {
            return Err(Errno::EINVAL);
        }
        if s.parts.contains_key(&number) {
            return Err(Errno::EBUSY);
        }
        s.parts.insert(number, extent);
        Ok(())
    }

    /// `BLKPG_DEL_PARTITION`.
    pub fn delete_partition(&self, number: u32) -> Result<(), Errno> {
        if !self.lock().parts.contains_key(&number) {
            return Err(Errno::new(libc::ENXIO));
        }
        let mut s = self.lock_when_free(|s| s.opens.get(&number).copied().unwrap_or(0) > 0)?;
        if !s.parts.contains_key(&number) {
            return Err(Errno::new(libc::ENXIO));
        }
        s.parts.remove(&number);
        s.read_only.remove(&number);
        Ok(())
    }

    /// `BLKPG_RESIZE_PARTITION`: the start must stay.
    pub fn resize_partition(&self, number: u32, extent: Extent) -> Result<(), Errno> {
        let mut s = self.lock();
        let old = *s.parts.get(&number).ok_or(Errno::new(libc::ENXIO))?;
        if old.start != extent.start {
            return Err(Errno::EINVAL);
        }
        let overlaps = s
            .parts
            .iter()
            .any(|(&n, p)| n != number && p.overlaps(&extent));
        if overlaps {
            return Err(Errno::EBUSY);
        }
        s.parts.insert(number, extent);
        Ok(())
    }

    /// Counts an open of `node`, claiming it for an `O_EXCL` open.
    fn opened(&self, node: u32, exclusive: bool) -> Result<(), Errno> {
        if node != 0 && !self.lock().parts.contains_key(&node) {
            return Err(Errno::new(libc::ENXIO));
        }
        let taken = |s: &State| {
            exclusive
                && (s.claimed.contains(&node)
                    || (node != 0 && s.claimed.contains(&0))
                    || (node == 0 && !s.claimed.is_empty()))
        };
        let mut s = self.lock_when_free(taken)?;
        if node != 0 && !s.parts.contains_key(&node) {
            return Err(Errno::new(libc::ENXIO));
        }
        if exclusive {
            s.claimed.insert(node);
        }
        *s.opens.entry(node).or_default() += 1;
        Ok(())
    }

    fn closed(&self, node: u32, exclusive: bool) {
        let mut s = self.lock();
        if exclusive {
            s.claimed.remove(&node);
        }
        if let Some(c) = s.opens.get_mut(&node) {
            *c -= 1;
            if *c == 0 {
                s.opens.remove(&node);
            }
        }
        drop(s);
        self.released.notify_all();
    }
}

/// The soft block size the kernel starts a disk with: the largest power
/// of two up to a page that divides its size.
fn default_block_size(size: u64) -> u32 {
    let mut b = 4096u32;
    while b > 512 && size % u64::from(b) != 0 {
        b /= 2;
    }
    b
}

/// A disk as the device of a mount.
pub struct DiskDevice(pub Arc<Disk>);

impl Device for DiskDevice {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Block
    }

    fn rdev(&self, node: u32) -> u64 {
        self.0.slot.rdev(node)
    }

    fn numbered(&self) -> Option<Vec<u32>> {
        self.0
            .partitionable
            .then(|| self.0.lock().parts.keys().copied().collect())
    }

    fn capacity(&self, node: u32) -> Option<u64> {
        self.0.extent(node).map(|e| e.len)
    }

    fn open(&self, node: u32, flags: i32) -> Result<Box<dyn FileHandle>, Errno> {
        // O_EXCL without O_CREAT: an exclusive open of a block device.
        let exclusive = flags & libc::O_EXCL != 0;
        self.0.opened(node, exclusive)?;
        Ok(Box::new(BlockHandle {
            disk: self.0.clone(),
            node,
            exclusive,
            writer: flags & libc::O_ACCMODE != libc::O_RDONLY,
        }))
    }
}

/// An open disk or partition.
pub struct BlockHandle {
    /// The disk.
    pub disk: Arc<Disk>,
    /// 0 for the whole disk, N for partition N.
    pub node: u32,
    /// Opened with `O_EXCL`: it claims the node.
    pub exclusive: bool,
    /// Opened for writing.
    pub writer: bool,
}

impl FileHandle for BlockHandle {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.disk.read(self.node, offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.disk.write(self.node, offset, data)
    }

    fn sync(&self, _data_only: bool) -> Result<(), Errno> {
        self.disk.sync()
    }

    fn extent(&self) -> Option<viewos_core::handle::Extent<'_>> {
        let mut e = self.disk.real_extent(self.node)?;
        e.writable &= self.writer;
        Some(e)
    }

    fn ioctl_arg(&self, request: u32) -> Option<IoctlArg> {
        blkioctl::arg_of(request)
    }

    fn ioctl(&self, request: u32, arg: u64, data: &mut [u8]) -> Result<i64, Errno> {
        blkioctl::ioctl(self, request, arg, data, None)
    }

    fn ioctl_with_memory(
        &self,
        request: u32,
        arg: u64,
        data: &mut [u8],
        memory: &dyn CallerMemory,
    ) -> Result<i64, Errno> {
        blkioctl::ioctl(self, request, arg, data, Some(memory))
    }
}

impl Drop for BlockHandle {
    fn drop(&mut self) {
        self.disk.closed(self.node, self.exclusive);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::numbers::{Numbers, DISK_MAJOR, MINORS_PER_DISK};
    use crate::store::RamStore;

    /// A RAM disk of `sectors` sectors whose first bytes are `head`.
    pub fn ram_disk(sectors: u64, head: &[u8], partitionable: bool) -> Arc<Disk> {
        let store = RamStore::new(sectors * SECTOR);
        store.write_at(0, head).unwrap();
        let numbers = Arc::new(Numbers::default());
        Disk::new(DiskConfig {
            store: Box::new(store),
            size: sectors * SECTOR,
            slot: numbers.take(DISK_MAJOR, MINORS_PER_DISK).unwrap(),
            partitionable,
            read_only: false,
        })
    }

    /// An MBR with primary partitions (type, first sector, sectors).
    pub fn mbr(parts: &[(u8, u32, u32)]) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        for (i, &(kind, start, sectors)) in parts.iter().enumerate() {
            crate::table::mbr::MbrEntry {
                boot: 0,
                kind,
                start,
                sectors,
            }
            .write(&mut s, i);
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }

    fn open(d: &Arc<Disk>, node: u32, flags: i32) -> Result<Box<dyn FileHandle>, Errno> {
        DiskDevice(d.clone()).open(node, flags)
    }

    #[test]
    fn io_is_bounded_by_the_node() {
        let d = ram_disk(100, &mbr(&[(0x83, 10, 20)]), true);
        let p = open(&d, 1, libc::O_RDWR).unwrap();
        let end = 20 * SECTOR;
        assert_eq!(p.write(end - 100, &[1u8; 300]), Ok(100));
        assert_eq!(p.write(end, &[1u8; 1]), Err(Errno::new(libc::ENOSPC)));
        assert_eq!(
            p.write(end + 4096, &[1u8; 1]),
            Err(Errno::new(libc::ENOSPC))
        );
        assert_eq!(p.write(end, &[]), Ok(0));
        let mut buf = [0u8; 300];
        assert_eq!(p.read(end - 100, &mut buf), Ok(100));
        assert!(buf[..100].iter().all(|&b| b == 1));
        assert_eq!(p.read(end, &mut buf), Ok(0));
        // The bytes went to the partition's place on the disk, and no
        // further.
        let whole = open(&d, 0, libc::O_RDONLY).unwrap();
        let mut w = [0u8; 200];
        assert_eq!(whole.read(30 * SECTOR - 100, &mut w), Ok(200));
        assert!(w[..100].iter().all(|&b| b == 1));
        assert!(w[100..].iter().all(|&b| b == 0));
        assert_eq!(whole.read(100 * SECTOR, &mut w), Ok(0));
    }

    #[test]
    fn read_only_disks_refuse_writes_with_eperm() {
        let d = ram_disk(10, &[], false);
        let h = open(&d, 0, libc::O_RDWR).unwrap();
        d.set_read_only(0, true);
        assert_eq!(h.write(0, b"x"), Err(Errno::new(libc::EPERM)));
        d.set_read_only(0, false);
        assert_eq!(h.write(0, b"x"), Ok(1));
    }

    #[test]
    fn exclusive_opens_exclude_each_other_and_the_disk() {
        let d = ram_disk(100, &mbr(&[(0x83, 10, 20), (0x83, 30, 20)]), true);
        let p1 = open(&d, 1, libc::O_RDWR | libc::O_EXCL).unwrap();
        assert_eq!(open(&d, 1, libc::O_EXCL).err(), Some(Errno::EBUSY));
        assert_eq!(open(&d, 0, libc::O_EXCL).err(), Some(Errno::EBUSY));
        // Other partitions, and plain opens, are free.
        let p2 = open(&d, 2, libc::O_EXCL).unwrap();
        let _plain = open(&d, 1, libc::O_RDONLY).unwrap();
        drop((p1, p2));
        let whole = open(&d, 0, libc::O_EXCL).unwrap();
        assert_eq!(open(&d, 2, libc::O_EXCL).err(), Some(Errno::EBUSY));
        drop(whole);
        assert!(open(&d, 2, libc::O_EXCL).is_ok());
        assert_eq!(open(&d, 3, 0).err(), Some(Errno::new(libc::ENXIO)));
    }

    #[test]
    fn a_claim_waits_for_a_release_under_way() {
        let d = ram_disk(100, &[], false);
        let first = open(&d, 0, libc::O_RDWR | libc::O_EXCL).unwrap();
        // Released from another thread, as the host's release thread does
        // a moment after the program's last close.
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(RELEASE_GRACE / 5);
            drop(first);
        });
        assert!(open(&d, 0, libc::O_RDWR | libc::O_EXCL).is_ok());
        dropper.join().unwrap();
    }

    #[test]
    fn rereading_follows_the_table_unless_a_partition_is_open() {
        let d = ram_disk(100, &mbr(&[(0x83, 10, 20)]), true);
        assert_eq!(d.partitions().keys().copied().collect::<Vec<_>>(), vec![1]);
        let whole = open(&d, 0, libc::O_RDWR).unwrap();
        whole
            .write(0, &mbr(&[(0x83, 10, 20), (0x0c, 40, 50)]))
            .unwrap();
        // Written, not yet read.
        assert_eq!(d.partitions().len(), 1);
        let p1 = open(&d, 1, libc::O_RDONLY).unwrap();
        assert_eq!(d.reread(false), Err(Errno::EBUSY));
        drop(p1);
        assert_eq!(d.reread(false), Ok(()));
        assert_eq!(
            d.partitions().keys().copied().collect::<Vec<_>>(),
            vec![1, 2]
        );
        // Someone else holds the disk exclusively.
        let excl = open(&d, 0, libc::O_RDONLY | libc::O_EXCL).unwrap();
        assert_eq!(d.reread(false), Err(Errno::EBUSY));
        assert_eq!(d.reread(true), Ok(()));
        drop(excl);
        let flat = ram_disk(10, &[], false);
        assert_eq!(flat.reread(false), Err(Errno::EINVAL));
    }

    #[test]
    fn blkpg_changes_check_overlaps_and_use() {
        let d = ram_disk(1000, &[], true);
        let ext = |s: u64, n: u64| Extent {
            start: s * SECTOR,
            len: n * SECTOR,
        };
        assert_eq!(d.add_partition(1, ext(100, 100)), Ok(()));
        assert_eq!(d.add_partition(2, ext(150, 100)), Err(Errno::EBUSY));
        assert_eq!(d.add_partition(1, ext(300, 10)), Err(Errno::EBUSY));
        assert_eq!(d.add_partition(256, ext(300, 10)), Err(Errno::EINVAL));
        assert_eq!(d.add_partition(2, ext(200, 100)), Ok(()));
        assert_eq!(d.resize_partition(1, ext(100, 150)), Err(Errno::EBUSY));
        assert_eq!(d.resize_partition(1, ext(101, 50)), Err(Errno::EINVAL));
        assert_eq!(d.resize_partition(1, ext(100, 50)), Ok(()));
        assert_eq!(
            d.resize_partition(3, ext(100, 50)),
            Err(Errno::new(libc::ENXIO))
        );
        let p2 = open(&d, 2, libc::O_RDONLY).unwrap();
        assert_eq!(d.delete_partition(2), Err(Errno::EBUSY));
        drop(p2);
        assert_eq!(d.delete_partition(2), Ok(()));
        assert_eq!(d.delete_partition(2), Err(Errno::new(libc::ENXIO)));
        assert_eq!(d.extent(1), Some(ext(100, 50)));
    }

    #[test]
    fn block_sizes_start_as_the_kernels() {
        assert_eq!(default_block_size(1 << 20), 4096);
        assert_eq!(default_block_size(3 * 512), 512);
        assert_eq!(default_block_size(1024 * 3), 1024);
    }
}
