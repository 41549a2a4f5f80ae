//! Direct access to the image beside `fatfs`, for what `fatfs` 0.3 gets
//! wrong or hides.
//!
//! - [`Shared`] lets the volume keep a handle on the storage it gave to
//!   `fatfs`; each handle has its own position, so neither disturbs the
//!   other. `fatfs` keeps no cache of the disk's contents, so what one
//!   writes the other reads.
//! - [`cluster_of`] reads an entry's first cluster, which `fatfs` 0.3 does
//!   not expose, from its `Debug` form (the crate is pinned to 0.3.6; a
//!   unit test guards the format).
//! - `fatfs` 0.3 writes long-name slots before a new directory's `.` and
//!   `..` and points a root child's `..` at the FAT32 root cluster instead
//!   of 0; it also leaves `..` alone when a directory moves. Both break
//!   `fsck.fat`; [`Shared::set_dot_entries`] rewrites them as the
//!   specification wants.

use std::cell::RefCell;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::rc::Rc;

use fatfs::DirEntry;
use viewos_core::Errno;

use super::check::{FatKind, Geometry};

/// One handle on storage shared by several users.
pub(crate) struct Shared<S> {
    inner: Rc<RefCell<S>>,
    pos: u64,
}

impl<S> Shared<S> {
    /// The first handle on `storage`.
    pub(crate) fn new(storage: S) -> Shared<S> {
        Shared {
            inner: Rc::new(RefCell::new(storage)),
            pos: 0,
        }
    }

    /// Another handle, at offset 0.
    pub(crate) fn handle(&self) -> Shared<S> {
        Shared {
            inner: Rc::clone(&self.inner),
            pos: 0,
        }
    }
}

impl<S: Seek> Seek for Shared<S> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let mut inner = self.inner.try_borrow_mut().map_err(io::Error::other)?;
        let at = match pos {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => inner
                .seek(SeekFrom::Start(self.pos))?
                .wrapping_add_signed(d),
            SeekFrom::End(d) => inner.seek(SeekFrom::End(0))?.wrapping_add_signed(d),
        };
        self.pos = inner.seek(SeekFrom::Start(at))?;
        Ok(self.pos)
    }
}

impl<S: Read + Seek> Read for Shared<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut inner = self.inner.try_borrow_mut().map_err(io::Error::other)?;
        inner.seek(SeekFrom::Start(self.pos))?;
        let n = inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: Write + Seek> Write for Shared<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.inner.try_borrow_mut().map_err(io::Error::other)?;
        inner.seek(SeekFrom::Start(self.pos))?;
        let n = inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .try_borrow_mut()
            .map_err(io::Error::other)?
            .flush()
    }
}

/// The number after `field: ` in a `Debug` text.
fn debug_field(text: &str, field: &str) -> Option<u32> {
    let key = format!("{field}: ");
    let start = text.find(&key)? + key.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The first cluster of `e` (0: none), checked against the volume's
/// cluster range (`EIO` if outside, so that `fatfs` never follows it).
pub(crate) fn cluster_of<S: Read + Write + Seek>(
    e: &DirEntry<'_, S>,
    geometry: &Geometry,
) -> Result<u32, Errno> {
    let text = format!("{e:?}");
    let lo = debug_field(&text, "first_cluster_lo").ok_or(Errno::EIO)?;
    let hi = match geometry.kind {
        FatKind::Fat32 => debug_field(&text, "first_cluster_hi").ok_or(Errno::EIO)?,
        _ => 0,
    };
    let cluster = (hi << 16) | lo;
    if cluster == 0 || (2..geometry.clusters + 2).contains(&cluster) {
        Ok(cluster)
    } else {
        Err(Errno::EIO)
    }
}

/// Size of a directory slot.
const SLOT: usize = 32;

impl<S: Read + Write + Seek> Shared<S> {
    /// Makes the first two slots of the directory at `cluster` its `.`
    /// (pointing at `cluster`) and `..` (pointing at `parent`, 0 for the
    /// root). With `fresh`, the directory was just made by `fatfs`, which
    /// put a long-name slot before each: those four slots become two.
    pub(crate) fn set_dot_entries(
        &mut self,
        geometry: &Geometry,
        cluster: u32,
        parent: u32,
        fresh: bool,
    ) -> Result<(), Errno> {
        if !(2..geometry.clusters + 2).contains(&cluster) {
            return Err(Errno::EIO);
        }
        let at = geometry.data_offset + u64::from(cluster - 2) * geometry.cluster_bytes();
        let mut slots = [0u8; 4 * SLOT];
        self.seek(SeekFrom::Start(at))?;
        self.read_exact(&mut slots)?;
        let named = |i: usize, name: &[u8; 11]| &slots[i * SLOT..i * SLOT + 11] == name;
        let (dot, dotdot) = if fresh && named(1, b".          ") && named(3, b"..         ") {
            (1, 3)
        } else if named(0, b".          ") && named(1, b"..         ") {
            (0, 1)
        } else {
            return Err(Errno::EIO);
        };
        let mut out = [0u8; 4 * SLOT];
        out[..SLOT].copy_from_slice(&slots[dot * SLOT..(dot + 1) * SLOT]);
        out[SLOT..2 * SLOT].copy_from_slice(&slots[dotdot * SLOT..(dotdot + 1) * SLOT]);
        if !fresh {
            out[2 * SLOT..].copy_from_slice(&slots[2 * SLOT..]);
        }
        for (slot, target) in [(0, cluster), (1, parent)] {
            let base = slot * SLOT;
            out[base + 26..base + 28].copy_from_slice(&(target as u16).to_le_bytes());
            let hi = if geometry.kind == FatKind::Fat32 {
                (target >> 16) as u16
            } else {
                0
            };
            out[base + 20..base + 22].copy_from_slice(&hi.to_le_bytes());
        }
        self.seek(SeekFrom::Start(at))?;
        self.write_all(&out)?;
        self.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_fields_are_found() {
        let text = "DirFileEntryData { name: [65], first_cluster_hi: 1, modify_time: 2, \
                    first_cluster_lo: 300, size: 4 }";
        assert_eq!(debug_field(text, "first_cluster_hi"), Some(1));
        assert_eq!(debug_field(text, "first_cluster_lo"), Some(300));
        assert_eq!(debug_field(text, "nothing"), None);
    }

    #[test]
    fn handles_keep_their_own_positions() {
        let a = Shared::new(io::Cursor::new(vec![0u8; 16]));
        let (mut a, mut b) = (a.handle(), a);
        a.seek(SeekFrom::Start(4)).unwrap();
        b.write_all(b"xy").unwrap();
        a.write_all(b"z").unwrap();
        let mut buf = [0u8; 5];
        b.seek(SeekFrom::Start(0)).unwrap();
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"xy\0\0z");
    }
}
