//! A check of a FAT image before `fatfs` opens it.
//!
//! `fatfs` trusts what it reads: a cluster number out of range makes its
//! offset arithmetic overflow, and a cycle in a cluster chain makes it walk
//! (or free) that chain forever. This module reads the boot sector and the
//! first allocation table itself, with every offset checked, and refuses
//! an image whose geometry is inconsistent (`EINVAL`), shorter than the
//! volume it describes (`EINVAL`), or whose table holds an out-of-range
//! link or a cycle (`EIO`). What `fatfs` then writes keeps those
//! properties, so the check is needed only once, at mount.

use std::io::{Read, Seek, SeekFrom};

use viewos_core::Errno;

/// The three FAT variants, told apart by their cluster count as the
/// Microsoft specification says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FatKind {
    /// 12-bit entries, fewer than 4085 clusters.
    Fat12,
    /// 16-bit entries, fewer than 65525 clusters.
    Fat16,
    /// 28-bit entries.
    Fat32,
}

/// The layout a boot sector describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Bytes per sector.
    pub bytes_per_sector: u64,
    /// Sectors per cluster.
    pub sectors_per_cluster: u64,
    /// Offset of the first allocation table.
    pub fat_offset: u64,
    /// Bytes of one allocation table.
    pub fat_bytes: u64,
    /// Data clusters (numbered from 2).
    pub clusters: u32,
    /// The variant.
    pub kind: FatKind,
    /// First cluster of the root directory (FAT32 only).
    pub root_cluster: u32,
    /// Bytes of the whole volume.
    pub volume_bytes: u64,
    /// Offset of cluster 2, the first data cluster.
    pub data_offset: u64,
}

fn le16(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2)
        .map_or(0, |s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn le32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |s| {
        u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    })
}

impl Geometry {
    /// Parses and checks a 512-byte boot sector.
    pub(crate) fn parse(boot: &[u8]) -> Result<Geometry, Errno> {
        if boot.len() < 512 || boot[510] != 0x55 || boot[511] != 0xAA {
            return Err(Errno::EINVAL);
        }
        let bps = le16(boot, 11);
        let spc = u64::from(boot[13]);
        let reserved = le16(boot, 14);
        let fats = u64::from(boot[16]);
        let root_entries = le16(boot, 17);
        let total = match le16(boot, 19) {
            0 => le32(boot, 32),
            n => n,
        };
        let fat_sectors = match le16(boot, 22) {
            0 => le32(boot, 36),
            n => n,
        };
        let sane = (512..=4096).contains(&bps)
            && bps.is_power_of_two()
            && (1..=128).contains(&spc)
            && spc.is_power_of_two()
            && reserved >= 1
            && (1..=2).contains(&fats)
            && fat_sectors >= 1;
        if !sane {
            return Err(Errno::EINVAL);
        }
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let meta = reserved + fats * fat_sectors + root_sectors;
        let data = total.checked_sub(meta).ok_or(Errno::EINVAL)?;
        let clusters = data / spc;
        let kind = match clusters {
            0 => return Err(Errno::EINVAL),
            1..=4084 => FatKind::Fat12,
            4085..=65524 => FatKind::Fat16,
            _ => FatKind::Fat32,
        };
        // 0x0FFFFFF5 is the largest cluster number FAT32 can link to.
        let clusters = u32::try_from(clusters)
            .ok()
            .filter(|&c| c < 0x0FFF_FFF5)
            .ok_or(Errno::EINVAL)?;
        let entry_bits = match kind {
            FatKind::Fat12 => 12,
            FatKind::Fat16 => 16,
            FatKind::Fat32 => 32,
        };
        let fat_bytes = fat_sectors * bps;
        if (u64::from(clusters) + 2) * entry_bits > fat_bytes * 8 {
            return Err(Errno::EINVAL);
        }
        if (kind == FatKind::Fat32) != (root_entries == 0) {
            return Err(Errno::EINVAL);
        }
        let root_cluster = if kind == FatKind::Fat32 {
            le32(boot, 44) as u32
        } else {
            0
        };
        Ok(Geometry {
            bytes_per_sector: bps,
            sectors_per_cluster: spc,
            fat_offset: reserved * bps,
            fat_bytes,
            clusters,
            kind,
            root_cluster,
            volume_bytes: total * bps,
            data_offset: meta * bps,
        })
    }

    /// Bytes per cluster.
    pub(crate) fn cluster_bytes(&self) -> u64 {
        self.bytes_per_sector * self.sectors_per_cluster
    }
}

/// What an allocation table entry says about the cluster after this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// Not allocated (or the end: nothing follows).
    End,
    /// The chain goes on at this cluster.
    Next(u32),
    /// A value no valid chain holds.
    Invalid,
}

/// The first allocation table, read into memory.
struct Table<'a> {
    bytes: &'a [u8],
    geometry: Geometry,
}

impl Table<'_> {
    /// The entry of `cluster` (2..clusters+2).
    fn link(&self, cluster: u32) -> Link {
        let n = cluster as usize;
        let raw = match self.geometry.kind {
            FatKind::Fat12 => {
                let v = le16(self.bytes, n + n / 2) as u32;
                if n % 2 == 1 {
                    v >> 4
                } else {
                    v & 0xFFF
                }
            }
            FatKind::Fat16 => le16(self.bytes, 2 * n) as u32,
            FatKind::Fat32 => le32(self.bytes, 4 * n) as u32 & 0x0FFF_FFFF,
        };
        let bad = match self.geometry.kind {
            FatKind::Fat12 => 0xFF7,
            FatKind::Fat16 => 0xFFF7,
            FatKind::Fat32 => 0x0FFF_FFF7,
        };
        match raw {
            0 => Link::End,
            r if r >= bad => Link::End,
            r if r >= 2 && r < self.geometry.clusters + 2 => Link::Next(r),
            _ => Link::Invalid,
        }
    }
}

/// Reads the boot sector and the first allocation table of `disk` and
/// checks them (see the module docs); leaves `disk` at offset 0.
pub(crate) fn check_image<S: Read + Seek>(disk: &mut S) -> Result<Geometry, Errno> {
    let len = disk.seek(SeekFrom::End(0))?;
    let mut boot = [0u8; 512];
    disk.seek(SeekFrom::Start(0))?;
    disk.read_exact(&mut boot).map_err(|_| Errno::EINVAL)?;
    let geometry = Geometry::parse(&boot)?;
    if geometry.volume_bytes > len {
        return Err(Errno::EINVAL);
    }
    let mut fat = vec![0u8; geometry.fat_bytes as usize];
    disk.seek(SeekFrom::Start(geometry.fat_offset))?;
    disk.read_exact(&mut fat).map_err(|_| Errno::EIO)?;
    disk.seek(SeekFrom::Start(0))?;
    let table = Table {
        bytes: &fat,
        geometry,
    };
    check_chains(&table)?;
    if geometry.kind == FatKind::Fat32
        && !(2..geometry.clusters + 2).contains(&geometry.root_cluster)
    {
        return Err(Errno::EIO);
    }
    Ok(geometry)
}

/// Checks that every link is in range and that no chain loops, in one pass
/// over the table (each cluster is walked once).
fn check_chains(table: &Table<'_>) -> Result<(), Errno> {
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let count = table.geometry.clusters as usize + 2;
    let mut state = vec![UNSEEN; count];
    let mut path = Vec::new();
    for start in 2..count as u32 {
        let mut c = start;
        path.clear();
        loop {
            match state[c as usize] {
                DONE => break,
                ON_PATH => return Err(Errno::EIO),
                _ => {}
            }
            state[c as usize] = ON_PATH;
            path.push(c);
            match table.link(c) {
                Link::End => break,
                Link::Invalid => return Err(Errno::EIO),
                Link::Next(n) => c = n,
            }
        }
        for &p in &path {
            state[p as usize] = DONE;
        }
    }
    Ok(())
}
