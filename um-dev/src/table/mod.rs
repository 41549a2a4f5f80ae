//! Partition tables: which partitions a disk has, read the way the Linux
//! kernel reads them (`block/partitions/efi.c`, `msdos.c` and `core.c`),
//! so that a disk in a view shows the partitions it would show as a real
//! disk.
//!
//! A GPT comes first: a protective MBR (an entry of type `0xEE` starting
//! at sector 1) and a valid primary header, checked by their CRCs
//! ([`gpt`]). Otherwise an MBR: four primary entries and the logical
//! partitions of the first extended one, numbered from 5 ([`mbr`]). A disk
//! with a protective MBR but no valid GPT has no partitions (the MBR
//! parser leaves such disks alone). Then, as the kernel adds partitions
//! ([`fit`]): one that starts past the end of the disk is left out, one
//! that ends past it is cut at the end, empty ones are skipped; overlaps
//! are allowed (only `BLKPG` refuses them).
//!
//! Everything here is plain parsing over a reader of the disk's bytes, in
//! 512-byte sectors.

pub mod crc32;
pub mod gpt;
pub mod mbr;

use std::cell::Cell;
use std::collections::BTreeMap;

use viewos_core::Errno;

/// Bytes in a sector: the logical block size of every disk here.
pub const SECTOR: u64 = 512;

/// The highest partition number a disk can have (the kernel's
/// `DISK_MAX_PARTS - 1`).
pub const MAX_PARTITION: u32 = 255;

/// One partition as a table describes it, in sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its number (1..4 primary, 5.. logical, or a GPT entry's index + 1).
    pub number: u32,
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
}

/// Where a partition lies on its disk, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Extent {
    /// The first byte after the partition.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }

    /// True if the two share a byte.
    pub fn overlaps(&self, other: &Extent) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// Fills a buffer with the disk's bytes at an offset.
pub type ReadAt<'a> = &'a dyn Fn(u64, &mut [u8]) -> Result<(), Errno>;

/// Reads whole sectors of a disk for a parser, remembering whether one
/// past the end was asked for (the kernel's `access_beyond_eod`).
pub struct Sectors<'a> {
    read: ReadAt<'a>,
    count: u64,
    beyond_end: Cell<bool>,
}

impl<'a> Sectors<'a> {
    /// A disk of `count` sectors whose bytes `read(offset, buf)` fills.
    pub fn new(read: ReadAt<'a>, count: u64) -> Sectors<'a> {
        Sectors {
            read,
            count,
            beyond_end: Cell::new(false),
        }
    }

    /// The disk's size in sectors.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sector `lba`, or `None` if it is past the end or cannot be read.
    pub fn sector(&self, lba: u64) -> Option<[u8; SECTOR as usize]> {
        if lba >= self.count {
            self.beyond_end.set(true);
            return None;
        }
        let mut buf = [0u8; SECTOR as usize];
        (self.read)(lba * SECTOR, &mut buf).ok()?;
        Some(buf)
    }

    /// `n` bytes from sector `lba` on, sector by sector; `None` if one of
    /// them cannot be read.
    pub fn bytes(&self, lba: u64, n: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        let mut at = lba;
        while out.len() < n {
            let s = self.sector(at)?;
            let k = (n - out.len()).min(s.len());
            out.extend_from_slice(&s[..k]);
            at += 1;
        }
        Some(out)
    }
}

/// The partitions of the disk `sectors` reads, as the table says them.
/// `EIO` when no table could be read because of a read error or a table
/// that reaches past the end of the disk (what the kernel's `BLKRRPART`
/// answers then); a disk with no table has no partitions.
pub fn scan(sectors: &Sectors<'_>) -> Result<Vec<Entry>, Errno> {
    // The sector 0 everything starts from; the MBR parser fails the same
    // way on an unreadable one.
    if sectors.count() == 0 {
        return Ok(Vec::new());
    }
    let first = sectors.sector(0).ok_or(Errno::EIO)?;
    if let Some(entries) = gpt::parse(&first, sectors) {
        return Ok(entries);
    }
    if let Some(entries) = mbr::parse(&first, sectors) {
        return Ok(entries);
    }
    if sectors.beyond_end.get() {
        Err(Errno::EIO)
    } else {
        Ok(Vec::new())
    }
}

/// The partitions of a disk of `count` sectors, as the kernel adds the
/// `entries` of its table: empty ones and those starting past the end are
/// left out, those ending past it are cut at the end, numbers past
/// [`MAX_PARTITION`] are dropped.
pub fn fit(entries: &[Entry], count: u64) -> BTreeMap<u32, Extent> {
    let mut out = BTreeMap::new();
    for e in entries {
        if e.sectors == 0 || e.start >= count || e.number == 0 || e.number > MAX_PARTITION {
            continue;
        }
        let sectors = e.sectors.min(count - e.start);
        out.insert(
            e.number,
            Extent {
                start: e.start * SECTOR,
                len: sectors * SECTOR,
            },
        );
    }
    out
}

/// A little-endian `u32` at `at` of `b`.
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A little-endian `u64` at `at` of `b`.
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | u64::from(le32(b, at + 4)) << 32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A disk in memory, for the parsers' tests.
    pub struct MemDisk(pub Vec<u8>);

    impl MemDisk {
        pub fn new(sectors: u64) -> MemDisk {
            MemDisk(vec![0; (sectors * SECTOR) as usize])
        }

        pub fn put(&mut self, offset: u64, data: &[u8]) {
            let o = offset as usize;
            self.0[o..o + data.len()].copy_from_slice(data);
        }

        pub fn read(&self) -> impl Fn(u64, &mut [u8]) -> Result<(), Errno> + '_ {
            |offset, buf| {
                let o = offset as usize;
                let src = self.0.get(o..o + buf.len()).ok_or(Errno::EIO)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }

        pub fn sectors(&self) -> u64 {
            self.0.len() as u64 / SECTOR
        }
    }

    #[test]
    fn a_blank_disk_has_no_partitions() {
        let d = MemDisk::new(100);
        let read = d.read();
        assert_eq!(scan(&Sectors::new(&read, d.sectors())), Ok(vec![]));
        let none = |_: u64, _: &mut [u8]| Err(Errno::EIO);
        assert_eq!(scan(&Sectors::new(&none, 100)), Err(Errno::EIO));
        assert_eq!(scan(&Sectors::new(&none, 0)), Ok(vec![]));
    }

    #[test]
    fn partitions_are_fitted_to_the_disk_as_the_kernel_adds_them() {
        let e = |number, start, sectors| Entry {
            number,
            start,
            sectors,
        };
        let fitted = fit(
            &[
                e(1, 2048, 1000),
                e(2, 3000, 10_000), // ends past the end: cut
                e(3, 20_000, 10),   // starts past the end: left out
                e(4, 2500, 0),      // empty
                e(5, 2100, 100),    // overlaps 1: allowed
                e(300, 10, 10),     // no such number
            ],
            8192,
        );
        let ext = |s: u64, n: u64| Extent {
            start: s * SECTOR,
            len: n * SECTOR,
        };
        assert_eq!(
            fitted.into_iter().collect::<Vec<_>>(),
            vec![
                (1, ext(2048, 1000)),
                (2, ext(3000, 8192 - 3000)),
                (5, ext(2100, 100))
            ]
        );
        assert!(ext(0, 10).overlaps(&ext(9, 1)));
        assert!(!ext(0, 10).overlaps(&ext(10, 1)));
    }
}
