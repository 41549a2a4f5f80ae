//! A mount's SOURCE used as an image: a disk image, or any file of the
//! view that a service stores its data in, read and written at positions.
//!
//! The image is opened through the `io` a mount gets (see
//! [`crate::nesting`]), so an image that exists only in the view (a file
//! inside another virtual mount, a partition of a virtual disk) works as
//! well as a real file. A real file comes back from the open as a kernel fd
//! and is read with `pread`/`pwrite`; a file some service serves is read
//! and written through its [`FileHandle`].

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{Errno, FileHandle, FileSystem, Opened};

/// An open image.
pub struct Image {
    file: Backing,
    writable: bool,
}

enum Backing {
    /// A real file.
    Real(File),
    /// A file a service of the view serves.
    Served(Box<dyn FileHandle>),
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.file {
            Backing::Real(_) => "real",
            Backing::Served(_) => "served",
        };
        f.debug_struct("Image")
            .field("file", &kind)
            .field("writable", &self.writable)
            .finish()
    }
}

/// How [`Image::open`] opens an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// For reading only.
    ReadOnly,
    /// For reading and writing; the open fails if writing is not allowed.
    ReadWrite,
    /// For reading and writing if allowed (`EACCES`, `EROFS`, `EPERM`),
    /// otherwise for reading ([`Image::is_writable`] tells which).
    ReadWriteIfAllowed,
}

impl Image {
    /// Opens `source`, an absolute path of the view as `io` sees it.
    /// `EINVAL` for an empty or `none` source; `ENOENT` for a relative one
    /// (the host makes the SOURCE of a mount absolute when it names a file
    /// of the view, so a relative one names none); `ENOTBLK` for a
    /// directory; and the open's own errors.
    pub fn open(io: &dyn FileSystem, source: &str, access: Access) -> Result<Image, Errno> {
        let path = Path::new(source);
        if source.is_empty() || source == "none" {
            return Err(Errno::EINVAL);
        }
        if !path.is_absolute() {
            return Err(Errno::ENOENT);
        }
        // Not lstat: a symlink to an image is the image.
        if io.lstat(path)?.is_dir() {
            return Err(Errno::new(libc::ENOTBLK));
        }
        let open = |flags: i32| io.open(path, flags | libc::O_CLOEXEC, 0);
        let (opened, writable) = match access {
            Access::ReadOnly => (open(libc::O_RDONLY)?, false),
            Access::ReadWrite => (open(libc::O_RDWR)?, true),
            Access::ReadWriteIfAllowed => match open(libc::O_RDWR) {
                Ok(o) => (o, true),
                Err(e)
                    if e == Errno::EACCES || e == Errno::EROFS || e == Errno::new(libc::EPERM) =>
                {
                    (open(libc::O_RDONLY)?, false)
                }
                Err(e) => return Err(e),
            },
        };
        let file = match opened {
            Opened::Backed(fd) => Backing::Real(File::from(fd)),
            Opened::Served(handle) => Backing::Served(handle),
        };
        Ok(Image { file, writable })
    }

    /// A real file as an image (for tests and for services that opened
    /// the file themselves).
    pub fn from_file(file: File, writable: bool) -> Image {
        Image {
            file: Backing::Real(file),
            writable,
        }
    }

    /// The real file, when the image is one (not a file a service of the
    /// view serves), and how many of its bytes exist now: a regular
    /// file's size (an image can shrink under a mount), `u64::MAX` for a
    /// device, whose end never moves.
    pub fn real_fd(&self) -> Option<(std::os::fd::BorrowedFd<'_>, u64)> {
        use std::os::fd::AsFd;
        match &self.file {
            Backing::Real(f) => {
                let m = f.metadata().ok()?;
                let len = if m.is_file() { m.len() } else { u64::MAX };
                Some((f.as_fd(), len))
            }
            Backing::Served(_) => None,
        }
    }

    /// True if the image was opened for writing.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The image's size in bytes (a device's capacity, see
    /// [`crate::FileStat::size`]).
    pub fn len(&self) -> Result<u64, Errno> {
        match &self.file {
            Backing::Real(f) => {
                use std::os::unix::fs::MetadataExt;
                let m = f.metadata()?;
                if crate::device::DeviceKind::of_mode(m.mode()).is_some() {
                    // A real device: its size is where its end is.
                    use std::io::{Seek, SeekFrom};
                    let mut f = f;
                    Ok(f.seek(SeekFrom::End(0))?)
                } else {
                    Ok(m.len())
                }
            }
            Backing::Served(h) => Ok(h.stat()?.size),
        }
    }

    /// True if the image is empty.
    pub fn is_empty(&self) -> Result<bool, Errno> {
        Ok(self.len()? == 0)
    }

    /// Reads at `offset` until `buf` is full or the image ends; returns
    /// how many bytes were read.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let n = match &self.file {
                Backing::Real(f) => match f.read_at(&mut buf[done..], at) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                },
                Backing::Served(h) => h.read(at, &mut buf[done..])?,
            };
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Writes all of `data` at `offset` (`EBADF` if the image is not
    /// open for writing; `EIO` if the file takes no more).
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        if !self.writable {
            return Err(Errno::EBADF);
        }
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let n = match &self.file {
                Backing::Real(f) => match f.write_at(&data[done..], at) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                },
                Backing::Served(h) => h.write(at, &data[done..])?,
            };
            if n == 0 {
                return Err(Errno::EIO);
            }
            done += n;
        }
        Ok(())
    }

    /// Makes what was written durable (fdatasync).
    pub fn sync(&self) -> Result<(), Errno> {
        match &self.file {
            Backing::Real(f) => Ok(f.sync_data()?),
            Backing::Served(h) => h.sync(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::real::RealFs;
    use crate::real_file::RealFile;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("core-image-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn real_images_are_read_and_written_at_positions() {
        let d = dir("real");
        let file = d.join("img");
        std::fs::write(&file, b"0123456789").unwrap();
        let img = Image::open(&RealFs, file.to_str().unwrap(), Access::ReadWrite).unwrap();
        assert!(img.is_writable());
        assert_eq!(img.len(), Ok(10));
        let mut buf = [0u8; 4];
        assert_eq!(img.read_at(3, &mut buf), Ok(4));
        assert_eq!(&buf, b"3456");
        // Short at the end.
        assert_eq!(img.read_at(8, &mut buf), Ok(2));
        img.write_at(9, b"xyz").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"012345678xyz");
        let ro = Image::open(&RealFs, file.to_str().unwrap(), Access::ReadOnly).unwrap();
        assert_eq!(ro.write_at(0, b"a"), Err(Errno::EBADF));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_sources_are_refused() {
        let d = dir("bad");
        for s in ["", "none"] {
            assert_eq!(
                Image::open(&RealFs, s, Access::ReadOnly).err(),
                Some(Errno::EINVAL)
            );
        }
        assert_eq!(
            Image::open(&RealFs, "relative.img", Access::ReadOnly).err(),
            Some(Errno::ENOENT)
        );
        assert_eq!(
            Image::open(&RealFs, d.to_str().unwrap(), Access::ReadOnly).err(),
            Some(Errno::new(libc::ENOTBLK))
        );
        let missing = d.join("missing");
        assert_eq!(
            Image::open(&RealFs, missing.to_str().unwrap(), Access::ReadOnly).err(),
            Some(Errno::ENOENT)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_read_only_file_falls_back_to_reading_when_allowed() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("ro");
        let file = d.join("img");
        std::fs::write(&file, b"abc").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
        let path = file.to_str().unwrap();
        let img = Image::open(&RealFs, path, Access::ReadWriteIfAllowed).unwrap();
        if crate::creds::Creds::of_process().is_root() {
            // Root may write a file whatever its mode.
            assert!(img.is_writable());
            assert!(Image::open(&RealFs, path, Access::ReadWrite).is_ok());
        } else {
            assert!(!img.is_writable());
            assert_eq!(
                Image::open(&RealFs, path, Access::ReadWrite).err(),
                Some(Errno::EACCES)
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn served_images_go_through_their_handle() {
        let d = dir("served");
        let file = d.join("img");
        std::fs::write(&file, b"hello").unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
            .unwrap();
        let img = Image {
            file: Backing::Served(Box::new(RealFile::new(f))),
            writable: true,
        };
        assert_eq!(img.len(), Ok(5));
        img.write_at(5, b" world").unwrap();
        let mut buf = [0u8; 11];
        assert_eq!(img.read_at(0, &mut buf), Ok(11));
        assert_eq!(&buf, b"hello world");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
