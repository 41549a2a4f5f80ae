//! Disk images of the image submodules (`umfusefat`, `umfuseiso9660`):
//! the mount's SOURCE opened through the view below the mount, as a
//! seekable byte store.
//!
//! The image is opened with `io` (see `viewos_core::nesting`), so an image
//! that exists only in the view (inside another virtual mount) can be
//! mounted too. A real file comes back as a kernel fd and is used as a
//! [`File`]; a file some service serves is read and written through its
//! handle.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use viewos_core::{Errno, FileHandle, FileSystem, MountRequest, Opened};

/// An open image.
pub enum Image {
    /// A real file.
    File(File),
    /// A file served by a service of the view, with our position in it.
    Served {
        /// The open file.
        handle: Box<dyn FileHandle>,
        /// The position of the next read or write.
        pos: u64,
    },
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Image::File(file) => f.debug_tuple("File").field(file).finish(),
            Image::Served { pos, .. } => f.debug_struct("Served").field("pos", pos).finish(),
        }
    }
}

impl Image {
    /// Opens the SOURCE of `request` (an absolute path of the view) for
    /// reading, and for writing unless `read_only`.
    pub fn open(
        request: &MountRequest,
        io: &Arc<dyn FileSystem>,
        read_only: bool,
    ) -> Result<Image, Errno> {
        let source = Path::new(&request.source);
        if request.source.is_empty() || request.source == "none" {
            return Err(Errno::EINVAL);
        }
        if !source.is_absolute() {
            return Err(Errno::EINVAL);
        }
        let st = io.lstat(source)?;
        if st.is_dir() {
            return Err(Errno::new(libc::ENOTBLK));
        }
        let flags = if read_only {
            libc::O_RDONLY
        } else {
            libc::O_RDWR
        };
        Ok(match io.open(source, flags | libc::O_CLOEXEC, 0)? {
            Opened::Backed(fd) => Image::File(File::from(fd)),
            Opened::Served(handle) => Image::Served { handle, pos: 0 },
            _ => return Err(Errno::EINVAL),
        })
    }
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw())
}

impl Read for Image {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Image::File(f) => f.read(buf),
            Image::Served { handle, pos } => {
                let n = handle.read(*pos, buf).map_err(io_err)?;
                *pos += n as u64;
                Ok(n)
            }
        }
    }
}

impl Write for Image {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Image::File(f) => f.write(data),
            Image::Served { handle, pos } => {
                let n = handle.write(*pos, data).map_err(io_err)?;
                *pos += n as u64;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Image::File(f) => f.flush(),
            Image::Served { handle, .. } => handle.sync(true).map_err(io_err),
        }
    }
}

impl Seek for Image {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match self {
            Image::File(f) => f.seek(to),
            Image::Served { handle, pos } => {
                let base = match to {
                    SeekFrom::Start(n) => {
                        *pos = n;
                        return Ok(n);
                    }
                    SeekFrom::Current(d) => (*pos, d),
                    SeekFrom::End(d) => (handle.stat().map_err(io_err)?.size, d),
                };
                let new = base
                    .0
                    .checked_add_signed(base.1)
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
                *pos = new;
                Ok(new)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use viewos_core::real::RealFs;

    #[test]
    fn real_images_open_and_bad_sources_are_refused() {
        let dir = std::env::temp_dir().join(format!("umfuse-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("img");
        std::fs::write(&file, b"0123456789").unwrap();
        let io: Arc<dyn FileSystem> = Arc::new(RealFs);
        let req = |source: &str| MountRequest {
            source: source.into(),
            ..MountRequest::default()
        };
        let mut img = Image::open(&req(file.to_str().unwrap()), &io, true).unwrap();
        let mut buf = [0u8; 4];
        img.seek(SeekFrom::Start(3)).unwrap();
        img.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"3456");
        assert_eq!(
            Image::open(&req("relative.img"), &io, true).err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            Image::open(&req("none"), &io, true).err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            Image::open(&req(dir.to_str().unwrap()), &io, true).err(),
            Some(Errno::new(libc::ENOTBLK))
        );
        assert_eq!(
            Image::open(&req(dir.join("missing").to_str().unwrap()), &io, true).err(),
            Some(Errno::ENOENT)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
