//! The GUID partition table, read as the kernel's `efi.c` reads it
//! without `gpt` on its command line: sector 0 must be a protective MBR
//! (an entry of type `0xEE` starting at sector 1; other entries beside it
//! make a hybrid MBR, accepted too), and the primary header at sector 1
//! must be valid: its signature, size, CRC, own position, usable range
//! inside the disk, 128-byte entries, and the CRC of the entry array.
//! Partition `N` is entry `N - 1`; unused entries (a zero type) and those
//! reaching past the last sector are skipped.

use super::crc32::crc32;
use super::mbr::{has_signature, MbrEntry, PROTECTIVE};
use super::{le32, le64, Entry, Sectors, MAX_PARTITION, SECTOR};

/// "EFI PART".
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The size of the header's fields (the rest of its sector is reserved).
pub const HEADER_SIZE: usize = 92;
/// The only entry size the kernel accepts.
pub const ENTRY_SIZE: usize = 128;
/// The largest entry array the kernel reads (`KMALLOC_MAX_SIZE`).
const MAX_ARRAY: u64 = 4 << 20;

/// The fields of a GPT header this parser uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The header's own sector.
    pub my_lba: u64,
    /// First sector a partition may use.
    pub first_usable: u64,
    /// Last sector a partition may use.
    pub last_usable: u64,
    /// First sector of the entry array.
    pub entries_lba: u64,
    /// Number of entries.
    pub entries: u32,
    /// Bytes per entry.
    pub entry_size: u32,
    /// CRC of the entry array.
    pub entries_crc: u32,
}

impl Header {
    /// The header in `sector`, if its signature, size and CRC are right.
    pub fn read(sector: &[u8]) -> Option<Header> {
        if &sector[..8] != SIGNATURE {
            return None;
        }
        let size = le32(sector, 12) as usize;
        if !(HEADER_SIZE..=SECTOR as usize).contains(&size) {
            return None;
        }
        let mut copy = sector[..size].to_vec();
        copy[16..20].fill(0);
        if crc32(&copy) != le32(sector, 16) {
            return None;
        }
        Some(Header {
            my_lba: le64(sector, 24),
            first_usable: le64(sector, 40),
            last_usable: le64(sector, 48),
            entries_lba: le64(sector, 72),
            entries: le32(sector, 80),
            entry_size: le32(sector, 84),
            entries_crc: le32(sector, 88),
        })
    }
}

/// True if sector 0 is a protective (or hybrid) MBR.
fn protective_mbr(first: &[u8]) -> bool {
    has_signature(first)
        && (0..4)
            .map(|i| MbrEntry::read(first, i))
            .any(|e| e.kind == PROTECTIVE && e.start == 1)
}

/// The partitions of a GPT disk whose sector 0 is `first`; `None` if it
/// has no valid GPT.
pub fn parse(first: &[u8], sectors: &Sectors<'_>) -> Option<Vec<Entry>> {
    if !protective_mbr(first) {
        return None;
    }
    let last = sectors.count().checked_sub(1)?;
    let h = Header::read(&sectors.sector(1)?)?;
    if h.my_lba != 1
        || h.first_usable > last
        || h.last_usable > last
        || h.last_usable < h.first_usable
        || h.entry_size as usize != ENTRY_SIZE
    {
        return None;
    }
    let array = u64::from(h.entries) * ENTRY_SIZE as u64;
    if array > MAX_ARRAY {
        return None;
    }
    let entries = sectors.bytes(h.entries_lba, array as usize)?;
    if crc32(&entries) != h.entries_crc {
        return None;
    }
    let mut out = Vec::new();
    for (i, e) in entries.chunks_exact(ENTRY_SIZE).enumerate() {
        let number = i as u32 + 1;
        if number > MAX_PARTITION {
            break;
        }
        let (start, end) = (le64(e, 32), le64(e, 40));
        let unused = e[..16].iter().all(|&b| b == 0);
        if unused || start > last || end > last || end < start {
            continue;
        }
        out.push(Entry {
            number,
            start,
            sectors: end - start + 1,
        });
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::tests::MemDisk;
    use super::super::{scan, Sectors};
    use super::*;

    /// Writes a protective MBR and a primary GPT with `parts` (entry
    /// index, first and last sector) on `d`, as a partitioning tool
    /// would (128 entries from sector 2).
    pub fn write_gpt(d: &mut MemDisk, parts: &[(usize, u64, u64)]) {
        let count = d.sectors();
        let mut mbr = [0u8; 512];
        MbrEntry {
            boot: 0,
            kind: PROTECTIVE,
            start: 1,
            sectors: (count - 1).min(u32::MAX as u64) as u32,
        }
        .write(&mut mbr, 0);
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        d.put(0, &mbr);
        let mut array = vec![0u8; 128 * ENTRY_SIZE];
        for &(i, start, end) in parts {
            let e = &mut array[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE];
            // The Linux file system type GUID, any non-zero one will do.
            e[..16].copy_from_slice(&[0xaf; 16]);
            e[16..32].copy_from_slice(&[i as u8 + 1; 16]);
            e[32..40].copy_from_slice(&start.to_le_bytes());
            e[40..48].copy_from_slice(&end.to_le_bytes());
        }
        d.put(2 * SECTOR, &array);
        let mut h = [0u8; 512];
        h[..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        h[24..32].copy_from_slice(&1u64.to_le_bytes());
        h[32..40].copy_from_slice(&(count - 1).to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(count - 34).to_le_bytes());
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&crc32(&array).to_le_bytes());
        let crc = crc32(&h[..HEADER_SIZE]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        d.put(SECTOR, &h);
    }

    fn parts(d: &MemDisk) -> Result<Vec<(u32, u64, u64)>, viewos_core::Errno> {
        let read = d.read();
        Ok(scan(&Sectors::new(&read, d.sectors()))?
            .iter()
            .map(|e| (e.number, e.start, e.sectors))
            .collect())
    }

    #[test]
    fn entries_are_partitions_by_index() {
        let mut d = MemDisk::new(10_000);
        write_gpt(&mut d, &[(0, 2048, 4095), (2, 4096, 9000)]);
        assert_eq!(parts(&d), Ok(vec![(1, 2048, 2048), (3, 4096, 4905)]));
    }

    #[test]
    fn broken_headers_and_arrays_give_no_partitions() {
        let mut d = MemDisk::new(10_000);
        write_gpt(&mut d, &[(0, 2048, 4095)]);
        // A changed entry without a new array CRC.
        let mut bad = MemDisk(d.0.clone());
        bad.put(2 * SECTOR + 40, &5000u64.to_le_bytes());
        assert_eq!(parts(&bad), Ok(vec![]));
        // A changed header without a new header CRC.
        let mut bad = MemDisk(d.0.clone());
        bad.put(SECTOR + 80, &4u32.to_le_bytes());
        assert_eq!(parts(&bad), Ok(vec![]));
        // Without the protective MBR the sector is not a GPT disk (and
        // the blank MBR is no table either).
        let mut bad = MemDisk(d.0.clone());
        bad.put(0, &[0u8; 512]);
        assert_eq!(parts(&bad), Ok(vec![]));
    }

    /// Changes header bytes at `at` and makes its CRC right again.
    fn patch_header(d: &mut MemDisk, at: usize, bytes: &[u8]) {
        let h = SECTOR as usize;
        d.0[h + at..h + at + bytes.len()].copy_from_slice(bytes);
        d.0[h + 16..h + 20].fill(0);
        let crc = crc32(&d.0[h..h + HEADER_SIZE]);
        d.0[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn a_disk_shorter_than_its_gpt() {
        // Made for 10000 sectors, cut to 6000: the header's usable range
        // reaches past the end, so the kernel takes no GPT (and the MBR is
        // protective: nothing).
        let mut d = MemDisk::new(10_000);
        write_gpt(&mut d, &[(0, 2048, 4095), (1, 4096, 9000)]);
        let mut cut = MemDisk(d.0[..6000 * SECTOR as usize].to_vec());
        assert_eq!(parts(&cut), Ok(vec![]));
        // A header whose entry array lies past the end: the array cannot
        // be read; that is the kernel's "partition table beyond EOD"
        // (EIO).
        patch_header(&mut cut, 40, &34u64.to_le_bytes());
        patch_header(&mut cut, 48, &5000u64.to_le_bytes());
        // Now valid: the entry reaching past the end is skipped.
        assert_eq!(parts(&cut), Ok(vec![(1, 2048, 2048)]));
        patch_header(&mut cut, 72, &5990u64.to_le_bytes());
        assert_eq!(parts(&cut), Err(viewos_core::Errno::EIO));
    }

    #[test]
    fn entries_past_the_last_sector_are_skipped() {
        let mut d = MemDisk::new(10_000);
        write_gpt(
            &mut d,
            &[(0, 2048, 4095), (1, 4096, 10_000), (2, 9000, 8000)],
        );
        assert_eq!(parts(&d), Ok(vec![(1, 2048, 2048)]));
    }
}
