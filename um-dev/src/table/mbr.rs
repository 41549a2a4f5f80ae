//! The MBR (DOS) partition table: four primary entries in sector 0, and
//! logical partitions in a chain of extended boot records inside the
//! first extended primary partition, numbered from 5. Read as the kernel's
//! `msdos.c` reads it, checks included: the `55 AA` signature, boot
//! indicators of 0 or 0x80 only (otherwise sector 0 is a file system's
//! boot sector, not a table), and a protective `0xEE` entry leaves the
//! disk to the GPT parser.

use super::{le32, Entry, Sectors, MAX_PARTITION};

/// Where the four primary entries start in sector 0 (and in every EBR).
const ENTRIES: usize = 0x1be;
/// Bytes per entry.
const ENTRY_SIZE: usize = 16;
/// The partition type of a GPT's protective entry.
pub const PROTECTIVE: u8 = 0xee;
/// How many extended boot records may follow one another without a
/// partition between them (the kernel's `loopct`).
const MAX_EMPTY_LINKS: u32 = 100;

/// One 16-byte entry of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MbrEntry {
    /// Boot indicator: 0, or 0x80 for the active partition.
    pub boot: u8,
    /// Partition type (`0x83` Linux, `0x05` extended, ...).
    pub kind: u8,
    /// First sector, relative to the table's base.
    pub start: u32,
    /// Length in sectors.
    pub sectors: u32,
}

impl MbrEntry {
    /// Entry `i` (0..4) of the table in `sector`.
    pub fn read(sector: &[u8], i: usize) -> MbrEntry {
        let at = ENTRIES + i * ENTRY_SIZE;
        MbrEntry {
            boot: sector[at],
            kind: sector[at + 4],
            start: le32(sector, at + 8),
            sectors: le32(sector, at + 12),
        }
    }

    /// Writes the entry as entry `i` of `sector` (CHS fields left zero:
    /// for tests and tools of our own).
    pub fn write(&self, sector: &mut [u8], i: usize) {
        let at = ENTRIES + i * ENTRY_SIZE;
        sector[at..at + ENTRY_SIZE].fill(0);
        sector[at] = self.boot;
        sector[at + 4] = self.kind;
        sector[at + 8..at + 12].copy_from_slice(&self.start.to_le_bytes());
        sector[at + 12..at + 16].copy_from_slice(&self.sectors.to_le_bytes());
    }

    /// True for the types the kernel follows as extended partitions.
    pub fn is_extended(&self) -> bool {
        matches!(self.kind, 0x05 | 0x0f | 0x85)
    }
}

/// True if `sector` ends with the `55 AA` signature.
pub fn has_signature(sector: &[u8]) -> bool {
    sector.len() >= 512 && sector[510] == 0x55 && sector[511] == 0xaa
}

/// A FAT boot sector's fields look valid (the kernel's check for a FAT
/// file system on a whole disk, which also ends in `55 AA`).
fn looks_like_fat(sector: &[u8]) -> bool {
    let reserved = u16::from_le_bytes([sector[0x0e], sector[0x0f]]);
    let fats = sector[0x10];
    let media = sector[0x15];
    reserved != 0 && fats != 0 && (media >= 0xf8 || media == 0xf0)
}

/// The partitions of the MBR in `first` (sector 0); `None` if it is not
/// an MBR (a disk may still be recognized with no partitions: a FAT file
/// system on the whole disk).
pub fn parse(first: &[u8], sectors: &Sectors<'_>) -> Option<Vec<Entry>> {
    if !has_signature(first) {
        return None;
    }
    let primaries: Vec<MbrEntry> = (0..4).map(|i| MbrEntry::read(first, i)).collect();
    if primaries.iter().any(|p| p.boot != 0 && p.boot != 0x80) {
        return looks_like_fat(first).then(Vec::new);
    }
    if primaries.iter().any(|p| p.kind == PROTECTIVE) {
        return None;
    }
    let mut out = Vec::new();
    let mut next = 5;
    for (slot, p) in (1..).zip(&primaries) {
        let (start, size) = (u64::from(p.start), u64::from(p.sectors));
        if size == 0 {
            continue;
        }
        if p.is_extended() {
            // The extended partition itself shows as two sectors (room
            // for a boot loader, none for a file system).
            out.push(Entry {
                number: slot,
                start,
                sectors: size.min(2),
            });
            logical(sectors, start, size, &mut next, &mut out);
            continue;
        }
        out.push(Entry {
            number: slot,
            start,
            sectors: size,
        });
    }
    Some(out)
}

/// Follows the chain of extended boot records of the extended partition
/// at `first` (`first_size` sectors), adding its logical partitions from
/// number `*next` on.
fn logical(
    sectors: &Sectors<'_>,
    first: u64,
    first_size: u64,
    next: &mut u32,
    out: &mut Vec<Entry>,
) {
    let (mut this, mut this_size) = (first, first_size);
    let mut empty_links = 0;
    loop {
        empty_links += 1;
        if empty_links > MAX_EMPTY_LINKS || *next > MAX_PARTITION {
            return;
        }
        let Some(ebr) = sectors.sector(this) else {
            return;
        };
        if !has_signature(&ebr) {
            return;
        }
        let entries: Vec<MbrEntry> = (0..4).map(|i| MbrEntry::read(&ebr, i)).collect();
        for (i, p) in entries.iter().enumerate() {
            if p.sectors == 0 || p.is_extended() {
                continue;
            }
            let (offs, size) = (u64::from(p.start), u64::from(p.sectors));
            let at = this + offs;
            // The third and fourth entries sometimes hold garbage: only
            // ones inside this EBR's and the extended partition's space.
            if i >= 2 && (offs + size > this_size || at < first || at + size > first + first_size) {
                continue;
            }
            out.push(Entry {
                number: *next,
                start: at,
                sectors: size,
            });
            empty_links = 0;
            *next += 1;
            if *next > MAX_PARTITION {
                return;
            }
        }
        // The link to the next EBR, relative to the extended partition.
        let Some(link) = entries.iter().find(|p| p.sectors != 0 && p.is_extended()) else {
            return;
        };
        this = first + u64::from(link.start);
        this_size = u64::from(link.sectors);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::MemDisk;
    use super::super::{scan, Sectors, SECTOR};
    use super::*;

    fn entry(kind: u8, start: u32, sectors: u32) -> MbrEntry {
        MbrEntry {
            boot: 0,
            kind,
            start,
            sectors,
        }
    }

    /// A table of `entries` (up to four) at sector `lba` of `d`.
    fn table(d: &mut MemDisk, lba: u64, entries: &[MbrEntry]) {
        let mut s = [0u8; 512];
        for (i, e) in entries.iter().enumerate() {
            e.write(&mut s, i);
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        d.put(lba * SECTOR, &s);
    }

    fn parts(d: &MemDisk) -> Vec<(u32, u64, u64)> {
        let read = d.read();
        scan(&Sectors::new(&read, d.sectors()))
            .unwrap()
            .iter()
            .map(|e| (e.number, e.start, e.sectors))
            .collect()
    }

    #[test]
    fn primary_partitions() {
        let mut d = MemDisk::new(10_000);
        table(
            &mut d,
            0,
            &[
                entry(0x83, 2048, 4000),
                entry(0, 0, 0),
                entry(0x0c, 6048, 3000),
            ],
        );
        assert_eq!(parts(&d), vec![(1, 2048, 4000), (3, 6048, 3000)]);
    }

    #[test]
    fn logical_partitions_follow_the_chain_of_ebrs() {
        let mut d = MemDisk::new(20_000);
        // Extended partition at 4096, 15000 sectors; two logical ones.
        table(
            &mut d,
            0,
            &[entry(0x83, 2048, 2048), entry(0x05, 4096, 15_000)],
        );
        // EBR 1 at 4096: logical at +2048 (6144), link to the EBR at
        // extended + 8192.
        table(
            &mut d,
            4096,
            &[entry(0x83, 2048, 4000), entry(0x05, 8192, 5000)],
        );
        // EBR 2 at 12288: logical at +2048 (14336), end of the chain.
        table(&mut d, 12_288, &[entry(0x82, 2048, 2000)]);
        assert_eq!(
            parts(&d),
            vec![
                (1, 2048, 2048),
                (2, 4096, 2),
                (5, 6144, 4000),
                (6, 14_336, 2000)
            ]
        );
    }

    #[test]
    fn a_chain_that_loops_ends() {
        let mut d = MemDisk::new(20_000);
        table(&mut d, 0, &[entry(0x05, 4096, 15_000)]);
        // An EBR whose link points back at itself, with no partition.
        table(&mut d, 4096, &[entry(0, 0, 0), entry(0x05, 0, 100)]);
        assert_eq!(parts(&d), vec![(1, 4096, 2)]);
        // With a partition in it: the chain repeats until the numbers
        // run out, as the kernel's does.
        table(&mut d, 4096, &[entry(0x83, 10, 10), entry(0x05, 0, 100)]);
        let p = parts(&d);
        assert_eq!(p.len(), 1 + (MAX_PARTITION as usize - 4));
        assert_eq!(p.last().map(|e| e.0), Some(MAX_PARTITION));
    }

    #[test]
    fn a_chain_past_the_end_of_the_disk_stops_there() {
        let mut d = MemDisk::new(8192);
        table(&mut d, 0, &[entry(0x0f, 4096, 50_000)]);
        table(
            &mut d,
            4096,
            &[entry(0x83, 2048, 100), entry(0x05, 40_000, 100)],
        );
        // The first logical partition is there; the next EBR is not.
        assert_eq!(parts(&d), vec![(1, 4096, 2), (5, 6144, 100)]);
    }

    #[test]
    fn garbage_in_the_last_entries_of_an_ebr_is_ignored() {
        let mut d = MemDisk::new(20_000);
        table(&mut d, 0, &[entry(0x05, 4096, 8000)]);
        table(
            &mut d,
            4096,
            &[
                entry(0x83, 2048, 1000),
                entry(0, 0, 0),
                entry(0x83, 100, 90_000), // past the extended partition
                entry(0x83, 3100, 100),   // inside: taken
            ],
        );
        assert_eq!(
            parts(&d),
            vec![(1, 4096, 2), (5, 6144, 1000), (6, 7196, 100)]
        );
    }

    #[test]
    fn not_tables() {
        let mut d = MemDisk::new(100);
        // No signature.
        let mut s = [0u8; 512];
        entry(0x83, 1, 10).write(&mut s, 0);
        d.put(0, &s);
        assert_eq!(parts(&d), vec![]);
        // A FAT boot sector: bad boot indicators, but valid FAT fields.
        s[510] = 0x55;
        s[511] = 0xaa;
        s[0x1be] = 0x12;
        s[0x0e] = 1;
        s[0x10] = 2;
        s[0x15] = 0xf8;
        d.put(0, &s);
        assert_eq!(parts(&d), vec![]);
        // A protective MBR without a GPT: no partitions.
        table(&mut d, 0, &[entry(PROTECTIVE, 1, 99)]);
        assert_eq!(parts(&d), vec![]);
    }
}
