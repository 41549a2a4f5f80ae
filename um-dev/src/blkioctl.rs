//! The block device ioctls (`<linux/fs.h>`, `<linux/hdreg.h>`,
//! `<linux/blkpg.h>`) that partitioning and file system tools use, with
//! the kernel's answers for a disk of 512-byte sectors. Requests not
//! listed are `ENOTTY`.
//!
//! Most of these requests are old-style numbers that encode no size
//! ([`arg_of`] tells the host how their argument moves); `BLKBSZGET` and
//! `BLKBSZSET` encode `size_t` but pass an `int`, as the kernel reads them.
//! `BLKPG`'s argument points to a partition record, read through the
//! caller's memory.
//!
//! The kernel asks `CAP_SYS_ADMIN` for `BLKRRPART`, `BLKPG`, `BLKROSET`,
//! `BLKFLSBUF` and `BLKRASET`; in a view the user owns their devices, so
//! these are allowed to anyone who opened the device.

use std::sync::atomic::Ordering;

use viewos_core::hook::CallerMemory;
use viewos_core::{Errno, IoctlArg};

use crate::disk::BlockHandle;
use crate::table::{Extent, SECTOR};

/// `HDIO_GETGEO`: the disk's geometry (`struct hd_geometry`).
pub const HDIO_GETGEO: u32 = 0x0301;
/// `BLKROSET`: make the device read-only (`int`) or not.
pub const BLKROSET: u32 = 0x125d;
/// `BLKROGET`: is the device read-only (`int`).
pub const BLKROGET: u32 = 0x125e;
/// `BLKRRPART`: re-read the partition table.
pub const BLKRRPART: u32 = 0x125f;
/// `BLKGETSIZE`: size in sectors (`unsigned long`).
pub const BLKGETSIZE: u32 = 0x1260;
/// `BLKFLSBUF`: flush buffers.
pub const BLKFLSBUF: u32 = 0x1261;
/// `BLKRASET`: set read-ahead (sectors, the argument's value).
pub const BLKRASET: u32 = 0x1262;
/// `BLKRAGET`: read-ahead in sectors (`long`).
pub const BLKRAGET: u32 = 0x1263;
/// `BLKFRASET`: set file system read-ahead.
pub const BLKFRASET: u32 = 0x1264;
/// `BLKFRAGET`: file system read-ahead (`long`).
pub const BLKFRAGET: u32 = 0x1265;
/// `BLKSECTGET`: most sectors per request (`unsigned short`).
pub const BLKSECTGET: u32 = 0x1267;
/// `BLKSSZGET`: logical sector size (`int`).
pub const BLKSSZGET: u32 = 0x1268;
/// `BLKPG`: partition changes (`struct blkpg_ioctl_arg`).
pub const BLKPG: u32 = 0x1269;
/// `BLKBSZGET`: soft block size (`int`, although the number says
/// `size_t`).
pub const BLKBSZGET: u32 = 0x8008_1270;
/// `BLKBSZSET`: set the soft block size (`int`).
pub const BLKBSZSET: u32 = 0x4008_1271;
/// `BLKGETSIZE64`: size in bytes (`u64`).
pub const BLKGETSIZE64: u32 = 0x8008_1272;
/// `BLKDISCARD`: discard a range (`u64[2]`).
pub const BLKDISCARD: u32 = 0x1277;
/// `BLKIOMIN`: minimum I/O size (`unsigned int`).
pub const BLKIOMIN: u32 = 0x1278;
/// `BLKIOOPT`: optimal I/O size (`unsigned int`).
pub const BLKIOOPT: u32 = 0x1279;
/// `BLKALIGNOFF`: alignment offset (`int`).
pub const BLKALIGNOFF: u32 = 0x127a;
/// `BLKPBSZGET`: physical sector size (`unsigned int`).
pub const BLKPBSZGET: u32 = 0x127b;
/// `BLKDISCARDZEROES`: discarded blocks read as zeros (`unsigned int`).
pub const BLKDISCARDZEROES: u32 = 0x127c;
/// `BLKSECDISCARD`: securely discard a range.
pub const BLKSECDISCARD: u32 = 0x127d;
/// `BLKROTATIONAL`: a rotating disk (`unsigned short`).
pub const BLKROTATIONAL: u32 = 0x127e;
/// `BLKZEROOUT`: zero a range (`u64[2]`: start, length in bytes).
pub const BLKZEROOUT: u32 = 0x127f;
/// `BLKGETDISKSEQ`: the disk's sequence number (`u64`).
pub const BLKGETDISKSEQ: u32 = 0x8008_1280;
/// `BLKGETZONESZ`: zone size in sectors (`u32`; 0, not zoned).
pub const BLKGETZONESZ: u32 = 0x8004_1284;
/// `BLKGETNRZONES`: number of zones (`u32`).
pub const BLKGETNRZONES: u32 = 0x8004_1285;

/// `BLKPG` operations.
const BLKPG_ADD_PARTITION: i32 = 1;
const BLKPG_DEL_PARTITION: i32 = 2;
const BLKPG_RESIZE_PARTITION: i32 = 3;
/// `sizeof(struct blkpg_ioctl_arg)`: `int op, flags, datalen; void *data`.
const BLKPG_ARG_SIZE: usize = 24;
/// `sizeof(struct blkpg_partition)`: `long long start, length; int pno;
/// char devname[64], volname[64]`, padded to 8.
const BLKPG_PARTITION_SIZE: usize = 152;

/// The largest request, in sectors, `BLKSECTGET` reports.
const MAX_SECTORS: u16 = 2560;
/// The geometry disks report (the BIOS convention the seeds' disks show).
const HEADS: u8 = 255;
const SECTORS_PER_TRACK: u8 = 63;

/// How the argument of a block request moves, for the requests whose
/// number does not say it (or says it wrong).
pub fn arg_of(request: u32) -> Option<IoctlArg> {
    Some(match request {
        HDIO_GETGEO => IoctlArg::Out(16),
        BLKROSET => IoctlArg::In(4),
        BLKROGET | BLKSSZGET | BLKIOMIN | BLKIOOPT | BLKALIGNOFF | BLKPBSZGET
        | BLKDISCARDZEROES => IoctlArg::Out(4),
        BLKGETSIZE | BLKRAGET | BLKFRAGET => IoctlArg::Out(8),
        BLKSECTGET | BLKROTATIONAL => IoctlArg::Out(2),
        BLKPG => IoctlArg::In(BLKPG_ARG_SIZE),
        BLKBSZGET => IoctlArg::Out(4),
        BLKBSZSET => IoctlArg::In(4),
        BLKZEROOUT => IoctlArg::In(16),
        // The kernel refuses these before it reads the argument.
        BLKRRPART | BLKFLSBUF | BLKRASET | BLKFRASET | BLKDISCARD | BLKSECDISCARD => {
            IoctlArg::Value
        }
        _ => return None,
    })
}

fn put(data: &mut [u8], bytes: &[u8]) -> Result<i64, Errno> {
    data.get_mut(..bytes.len())
        .ok_or(Errno::EFAULT)?
        .copy_from_slice(bytes);
    Ok(0)
}

fn int_in(data: &[u8]) -> Result<i32, Errno> {
    let b = data.get(..4).ok_or(Errno::EFAULT)?;
    Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(data: &[u8], at: usize) -> Result<u64, Errno> {
    let b = data.get(at..at + 8).ok_or(Errno::EFAULT)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    Ok(u64::from_ne_bytes(w))
}

/// `struct hd_geometry` for a node of `sectors` sectors starting at
/// sector `start`: 255 heads, 63 sectors a track, the cylinders that fit
/// (at most 65535).
fn geometry(sectors: u64, start: u64) -> [u8; 16] {
    let per_cylinder = u64::from(HEADS) * u64::from(SECTORS_PER_TRACK);
    let cylinders = (sectors / per_cylinder).min(u64::from(u16::MAX)) as u16;
    let mut g = [0u8; 16];
    g[0] = HEADS;
    g[1] = SECTORS_PER_TRACK;
    g[2..4].copy_from_slice(&cylinders.to_ne_bytes());
    g[8..16].copy_from_slice(&start.to_ne_bytes());
    g
}

/// Answers `request` on the open node `h`; `data` is the argument as
/// [`arg_of`] or the number says, `memory` the caller's (for `BLKPG`).
pub fn ioctl(
    h: &BlockHandle,
    request: u32,
    arg: u64,
    data: &mut [u8],
    memory: Option<&dyn CallerMemory>,
) -> Result<i64, Errno> {
    let disk = &h.disk;
    let extent = disk.extent(h.node).ok_or(Errno::EIO)?;
    match request {
        BLKGETSIZE64 => put(data, &extent.len.to_ne_bytes()),
        BLKGETSIZE => put(data, &(extent.len / SECTOR).to_ne_bytes()),
        BLKSSZGET | BLKPBSZGET | BLKIOMIN => put(data, &(SECTOR as u32).to_ne_bytes()),
        BLKIOOPT | BLKALIGNOFF | BLKDISCARDZEROES | BLKGETZONESZ | BLKGETNRZONES => {
            put(data, &0u32.to_ne_bytes())
        }
        BLKROTATIONAL => put(data, &0u16.to_ne_bytes()),
        BLKSECTGET => put(data, &MAX_SECTORS.to_ne_bytes()),
        BLKGETDISKSEQ => put(data, &disk.seq().to_ne_bytes()),
        BLKBSZGET => put(
            data,
            &(disk.block_size().load(Ordering::Relaxed) as i32).to_ne_bytes(),
        ),
        BLKBSZSET => {
            let n = int_in(data)?;
            if !(512..=4096).contains(&n) || n.count_ones() != 1 {
                return Err(Errno::EINVAL);
            }
            disk.block_size().store(n as u32, Ordering::Relaxed);
            Ok(0)
        }
        BLKRAGET | BLKFRAGET => put(
            data,
            &(disk.read_ahead().load(Ordering::Relaxed) as i64).to_ne_bytes(),
        ),
        BLKRASET | BLKFRASET => {
            // The value in sectors, kept in whole pages as the kernel does.
            disk.read_ahead().store(arg / 8 * 8, Ordering::Relaxed);
            Ok(0)
        }
        BLKROGET => put(data, &i32::from(disk.read_only(h.node)).to_ne_bytes()),
        BLKROSET => {
            disk.set_read_only(h.node, int_in(data)? != 0);
            Ok(0)
        }
        HDIO_GETGEO => put(data, &geometry(extent.len / SECTOR, extent.start / SECTOR)),
        BLKFLSBUF => disk.sync().map(|_| 0),
        BLKDISCARD | BLKSECDISCARD => {
            if !h.writer {
                return Err(Errno::EBADF);
            }
            // A device without discard, as the kernel answers for one.
            Err(Errno::EOPNOTSUPP)
        }
        BLKZEROOUT => zero_out(h, extent, data),
        BLKRRPART => {
            if h.node != 0 {
                return Err(Errno::EINVAL);
            }
            disk.reread(h.exclusive).map(|_| 0)
        }
        BLKPG => blkpg(h, data, memory),
        _ => Err(Errno::new(libc::ENOTTY)),
    }
}

/// `BLKZEROOUT`: the range `[start, start + len)` of the node, both
/// multiples of the sector size, inside the node.
fn zero_out(h: &BlockHandle, extent: Extent, data: &[u8]) -> Result<i64, Errno> {
    if !h.writer {
        return Err(Errno::EBADF);
    }
    let (start, len) = (u64_at(data, 0)?, u64_at(data, 8)?);
    if start % SECTOR != 0 || len % SECTOR != 0 || len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    if end > extent.len {
        return Err(Errno::EINVAL);
    }
    let zeros = vec![0u8; (len.min(1 << 20)) as usize];
    let mut at = start;
    while at < end {
        let n = (end - at).min(zeros.len() as u64) as usize;
        let w = h.disk.write(h.node, at, &zeros[..n])?;
        at += w as u64;
    }
    Ok(0)
}

/// `BLKPG`: `data` is the `struct blkpg_ioctl_arg`, whose `data` points to
/// the `struct blkpg_partition` in the caller's memory.
fn blkpg(h: &BlockHandle, data: &[u8], memory: Option<&dyn CallerMemory>) -> Result<i64, Errno> {
    let op = int_in(data)?;
    let ptr = u64_at(data, 16)?;
    let memory = memory.ok_or(Errno::EFAULT)?;
    let mut p = [0u8; BLKPG_PARTITION_SIZE];
    memory.read(ptr, &mut p)?;
    if h.node != 0 {
        return Err(Errno::EINVAL);
    }
    let start = u64_at(&p, 0)? as i64;
    let length = u64_at(&p, 8)? as i64;
    let pno = int_in(&p[16..])?;
    if pno <= 0 {
        return Err(Errno::EINVAL);
    }
    let number = pno as u32;
    let disk = &h.disk;
    if op == BLKPG_DEL_PARTITION {
        return disk.delete_partition(number).map(|_| 0);
    }
    if start < 0 || length <= 0 || start.checked_add(length).is_none() {
        return Err(Errno::EINVAL);
    }
    let (start, length) = (start as u64, length as u64);
    if (start | length) % SECTOR != 0
        || start >= disk.capacity()
        || start + length > disk.capacity()
    {
        return Err(Errno::EINVAL);
    }
    let extent = Extent { start, len: length };
    match op {
        BLKPG_ADD_PARTITION => disk.add_partition(number, extent).map(|_| 0),
        BLKPG_RESIZE_PARTITION => disk.resize_partition(number, extent).map(|_| 0),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::tests::{mbr, ram_disk};
    use crate::disk::DiskDevice;
    use crate::node::Device;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use viewos_core::FileHandle;

    /// A program's memory: a few buffers at made-up addresses.
    #[derive(Default)]
    struct Memory(Mutex<HashMap<u64, Vec<u8>>>);

    impl CallerMemory for Memory {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
            let m = self.0.lock().unwrap();
            let b = m.get(&addr).ok_or(Errno::EFAULT)?;
            buf.copy_from_slice(b.get(..buf.len()).ok_or(Errno::EFAULT)?);
            Ok(())
        }
        fn write(&self, _: u64, _: &[u8]) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
    }

    fn call(
        h: &dyn FileHandle,
        req: u32,
        arg: u64,
        input: &[u8],
        m: &Memory,
    ) -> (Result<i64, Errno>, Vec<u8>) {
        let layout = h.ioctl_arg(req).unwrap_or(IoctlArg::of_request(req));
        let mut data = vec![0u8; layout.size()];
        if layout.copies_in() {
            data.copy_from_slice(&input[..layout.size()]);
        }
        let r = h.ioctl_with_memory(req, arg, &mut data, m);
        (r, data)
    }

    fn u64_of(b: &[u8]) -> u64 {
        u64::from_ne_bytes(b[..8].try_into().unwrap())
    }

    #[test]
    fn sizes_and_geometry_of_disks_and_partitions() {
        let d = ram_disk(100_000, &mbr(&[(0x83, 2048, 40_000)]), true);
        let m = Memory::default();
        let whole = DiskDevice(d.clone()).open(0, libc::O_RDONLY).unwrap();
        let part = DiskDevice(d.clone()).open(1, libc::O_RDONLY).unwrap();
        let (r, b) = call(&*whole, BLKGETSIZE64, 0, &[], &m);
        assert_eq!((r, u64_of(&b)), (Ok(0), 100_000 * 512));
        let (_, b) = call(&*part, BLKGETSIZE64, 0, &[], &m);
        assert_eq!(u64_of(&b), 40_000 * 512);
        let (_, b) = call(&*part, BLKGETSIZE, 0, &[], &m);
        assert_eq!(u64_of(&b), 40_000);
        for req in [BLKSSZGET, BLKPBSZGET, BLKIOMIN] {
            let (_, b) = call(&*whole, req, 0, &[], &m);
            assert_eq!(b, 512u32.to_ne_bytes(), "{req:#x}");
        }
        let (_, b) = call(&*whole, BLKBSZGET, 0, &[], &m);
        assert_eq!(b.len(), 4, "BLKBSZGET passes an int");
        let (_, g) = call(&*part, HDIO_GETGEO, 0, &[], &m);
        assert_eq!((g[0], g[1]), (255, 63));
        assert_eq!(
            u16::from_ne_bytes([g[2], g[3]]),
            (40_000 / (255 * 63)) as u16
        );
        assert_eq!(u64_of(&g[8..]), 2048);
        let (r, _) = call(&*whole, 0x5331, 0, &[], &m);
        assert_eq!(r, Err(Errno::new(libc::ENOTTY)), "CDROM_GET_CAPABILITY");
    }

    #[test]
    fn rereading_and_discards_as_the_kernel() {
        let d = ram_disk(1000, &mbr(&[(0x83, 100, 100)]), true);
        let m = Memory::default();
        let whole = DiskDevice(d.clone()).open(0, libc::O_RDONLY).unwrap();
        let part = DiskDevice(d.clone()).open(1, libc::O_RDWR).unwrap();
        assert_eq!(call(&*part, BLKRRPART, 0, &[], &m).0, Err(Errno::EINVAL));
        assert_eq!(call(&*whole, BLKRRPART, 0, &[], &m).0, Err(Errno::EBUSY));
        assert_eq!(call(&*whole, BLKDISCARD, 0, &[], &m).0, Err(Errno::EBADF));
        assert_eq!(
            call(&*part, BLKDISCARD, 0, &[], &m).0,
            Err(Errno::EOPNOTSUPP)
        );
        drop(part);
        assert_eq!(call(&*whole, BLKRRPART, 0, &[], &m).0, Ok(0));
    }

    #[test]
    fn zero_out_checks_its_range() {
        let d = ram_disk(100, &[], false);
        let m = Memory::default();
        let h = DiskDevice(d.clone()).open(0, libc::O_RDWR).unwrap();
        h.write(1024, &[9u8; 1024]).unwrap();
        let range = |s: u64, l: u64| [s.to_ne_bytes(), l.to_ne_bytes()].concat();
        assert_eq!(call(&*h, BLKZEROOUT, 0, &range(1024, 512), &m).0, Ok(0));
        let mut b = [0u8; 1024];
        h.read(1024, &mut b).unwrap();
        assert!(b[..512].iter().all(|&x| x == 0) && b[512..].iter().all(|&x| x == 9));
        for (s, l) in [(1, 512), (0, 100), (0, 0), (99 * 512, 1024)] {
            assert_eq!(
                call(&*h, BLKZEROOUT, 0, &range(s, l), &m).0,
                Err(Errno::EINVAL)
            );
        }
    }

    /// A `struct blkpg_ioctl_arg` pointing at `addr`, and the
    /// `struct blkpg_partition` to put there.
    fn blkpg_args(op: i32, addr: u64, start: i64, length: i64, pno: i32) -> (Vec<u8>, Vec<u8>) {
        let mut a = vec![0u8; BLKPG_ARG_SIZE];
        a[..4].copy_from_slice(&op.to_ne_bytes());
        a[8..12].copy_from_slice(&(BLKPG_PARTITION_SIZE as i32).to_ne_bytes());
        a[16..24].copy_from_slice(&addr.to_ne_bytes());
        let mut p = vec![0u8; BLKPG_PARTITION_SIZE];
        p[..8].copy_from_slice(&start.to_ne_bytes());
        p[8..16].copy_from_slice(&length.to_ne_bytes());
        p[16..20].copy_from_slice(&pno.to_ne_bytes());
        (a, p)
    }

    #[test]
    fn blkpg_reads_the_partition_through_the_callers_memory() {
        let d = ram_disk(1000, &[], true);
        let whole = DiskDevice(d.clone()).open(0, libc::O_RDWR).unwrap();
        let m = Memory::default();
        let run = |op, start, length, pno| {
            let (a, p) = blkpg_args(op, 0x1000, start, length, pno);
            m.0.lock().unwrap().insert(0x1000, p);
            call(&*whole, BLKPG, 0x2000, &a, &m).0
        };
        assert_eq!(run(BLKPG_ADD_PARTITION, 512 * 100, 512 * 100, 3), Ok(0));
        assert_eq!(d.extent(3).map(|e| e.start), Some(512 * 100));
        assert_eq!(
            run(BLKPG_ADD_PARTITION, 512 * 150, 512 * 10, 4),
            Err(Errno::EBUSY)
        );
        assert_eq!(run(BLKPG_ADD_PARTITION, 100, 512, 4), Err(Errno::EINVAL));
        assert_eq!(
            run(BLKPG_ADD_PARTITION, 512 * 990, 512 * 20, 4),
            Err(Errno::EINVAL)
        );
        assert_eq!(run(BLKPG_ADD_PARTITION, 0, 512, 0), Err(Errno::EINVAL));
        assert_eq!(run(BLKPG_RESIZE_PARTITION, 512 * 100, 512 * 200, 3), Ok(0));
        assert_eq!(run(BLKPG_DEL_PARTITION, 0, 0, 3), Ok(0));
        assert_eq!(
            run(BLKPG_DEL_PARTITION, 0, 0, 3),
            Err(Errno::new(libc::ENXIO))
        );
        assert_eq!(run(9, 0, 512, 3), Err(Errno::EINVAL));
        // A bad second pointer is the program's fault.
        let (a, _) = blkpg_args(BLKPG_ADD_PARTITION, 0x9999, 0, 512, 1);
        assert_eq!(call(&*whole, BLKPG, 0x2000, &a, &m).0, Err(Errno::EFAULT));
    }
}
