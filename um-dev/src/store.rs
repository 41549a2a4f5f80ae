//! Where a disk's bytes live: an image file of the view ([`ImageStore`])
//! or memory ([`RamStore`]). A disk never asks for bytes past its
//! capacity, which it fixes when it is made; a store that cannot give a
//! byte inside it answers `EIO`.

use std::os::fd::BorrowedFd;
use std::sync::{Mutex, PoisonError};

use viewos_core::image::Image;
use viewos_core::Errno;

/// A disk's bytes.
pub trait Store: Send + Sync {
    /// Fills `buf` from byte `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;

    /// Writes `data` at byte `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Errno>;

    /// Makes what was written durable.
    fn sync(&self) -> Result<(), Errno>;

    /// The real file whose bytes the store's are (at the same offsets),
    /// whether it may be written, and how many bytes it holds now (a
    /// shrunk image reads `EIO` past its end); `None` for memory.
    fn real_file(&self) -> Option<(BorrowedFd<'_>, bool, u64)> {
        None
    }
}

/// A disk image.
pub struct ImageStore(pub Image);

impl Store for ImageStore {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        // Shorter than when the disk was made: its end is gone.
        if self.0.read_at(offset, buf)? < buf.len() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.0.write_at(offset, data)
    }

    fn sync(&self) -> Result<(), Errno> {
        self.0.sync()
    }

    fn real_file(&self) -> Option<(BorrowedFd<'_>, bool, u64)> {
        self.0
            .real_fd()
            .map(|(fd, len)| (fd, self.0.is_writable(), len))
    }
}

/// Bytes of memory per chunk of a RAM disk.
const CHUNK: usize = 64 << 10;

/// A RAM disk: chunks of memory made at their first write (a chunk never
/// written reads as zeros), so a large disk costs only what it holds.
pub struct RamStore {
    chunks: Vec<Mutex<Option<Box<[u8]>>>>,
}

impl RamStore {
    /// A RAM disk of `len` bytes.
    pub fn new(len: u64) -> RamStore {
        let n = len.div_ceil(CHUNK as u64) as usize;
        RamStore {
            chunks: (0..n).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Calls `f(chunk, offset in chunk, range of the caller's buffer)` for
    /// each chunk the range `offset..offset + len` touches.
    fn each(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(&Mutex<Option<Box<[u8]>>>, usize, std::ops::Range<usize>),
    ) -> Result<(), Errno> {
        let mut done = 0;
        while done < len {
            let at = offset + done as u64;
            let i = (at / CHUNK as u64) as usize;
            let within = (at % CHUNK as u64) as usize;
            let k = (CHUNK - within).min(len - done);
            let chunk = self.chunks.get(i).ok_or(Errno::EIO)?;
            f(chunk, within, done..done + k);
            done += k;
        }
        Ok(())
    }
}

impl Store for RamStore {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.each(offset, buf.len(), |chunk, within, range| {
            let c = chunk.lock().unwrap_or_else(PoisonError::into_inner);
            let n = range.len();
            match &*c {
                Some(bytes) => buf[range].copy_from_slice(&bytes[within..within + n]),
                None => buf[range].fill(0),
            }
        })
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.each(offset, data.len(), |chunk, within, range| {
            let mut c = chunk.lock().unwrap_or_else(PoisonError::into_inner);
            let n = range.len();
            let bytes = c.get_or_insert_with(|| vec![0u8; CHUNK].into_boxed_slice());
            bytes[within..within + n].copy_from_slice(&data[range]);
        })
    }

    fn sync(&self) -> Result<(), Errno> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_reads_zeros_until_written_across_chunks() {
        let r = RamStore::new(3 * CHUNK as u64);
        let mut buf = vec![1u8; 100];
        r.read_at(CHUNK as u64 - 50, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        let data: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        r.write_at(2 * CHUNK as u64 - 100, &data).unwrap();
        let mut back = vec![0u8; 200];
        r.read_at(2 * CHUNK as u64 - 100, &mut back).unwrap();
        assert_eq!(back, data);
        // Only the two chunks written hold memory.
        let held = r
            .chunks
            .iter()
            .filter(|c| c.lock().unwrap().is_some())
            .count();
        assert_eq!(held, 2);
        // Past the end: the disk never asks, but the store says EIO.
        assert_eq!(r.read_at(3 * CHUNK as u64, &mut [0u8; 1]), Err(Errno::EIO));
    }

    #[test]
    fn an_image_that_shrank_reads_eio() {
        let dir = std::env::temp_dir().join(format!("umdev-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("img");
        std::fs::write(&path, vec![7u8; 1024]).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let s = ImageStore(Image::from_file(file, true));
        let mut buf = [0u8; 512];
        s.read_at(512, &mut buf).unwrap();
        assert_eq!(buf, [7u8; 512]);
        std::fs::write(&path, vec![7u8; 600]).unwrap();
        assert_eq!(s.read_at(512, &mut buf), Err(Errno::EIO));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
