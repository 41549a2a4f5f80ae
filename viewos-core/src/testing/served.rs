//! `ServedFs`: another file system with every open file served through a
//! [`FileHandle`](crate::FileHandle) instead of handed over, the reference
//! for hosts' served fds.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::{FileStat, FileSystem, FsStat, Opened, SetTime};
use crate::nesting::forward_fs;
use crate::real_file::RealFile;
use crate::Errno;

/// Wraps a file system whose opens give real files ([`Opened::Backed`]) and
/// serves each of them itself ([`RealFile`]): reads, writes, listings and
/// status go through [`FileHandle`](crate::FileHandle) calls, so a view shows exactly the same files as
/// with the wrapped file system, by the other path.
pub struct ServedFs {
    inner: Arc<dyn FileSystem>,
}

impl ServedFs {
    /// Serves the files of `inner`.
    pub fn new(inner: Arc<dyn FileSystem>) -> ServedFs {
        ServedFs { inner }
    }

    fn route(&self, p: &Path) -> Result<(Arc<dyn FileSystem>, PathBuf), Errno> {
        Ok((self.inner.clone(), p.to_path_buf()))
    }

    fn route2(&self, a: &Path, b: &Path) -> Result<(Arc<dyn FileSystem>, PathBuf, PathBuf), Errno> {
        Ok((self.inner.clone(), a.to_path_buf(), b.to_path_buf()))
    }

    fn serve(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        match self.inner.open(p, flags, mode)? {
            Opened::Backed(fd) => Ok(Opened::Served(Box::new(RealFile::new(File::from(fd))))),
            other => Ok(other),
        }
    }
}

forward_fs!(ServedFs, route, route2, serve);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::real::RealFs;

    #[test]
    fn serves_real_files_and_listings() {
        let dir = std::env::temp_dir().join(format!("served-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), b"hello").unwrap();
        std::fs::write(dir.join("b"), b"").unwrap();
        let fs = ServedFs::new(Arc::new(RealFs));
        let Opened::Served(h) = fs.open(&dir.join("a"), libc::O_RDWR, 0).unwrap() else {
            panic!("not served");
        };
        let mut buf = [0u8; 16];
        assert_eq!(h.read(1, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        assert_eq!(h.write(5, b"!").unwrap(), 1);
        assert_eq!(h.stat().unwrap().size, 6);
        let Opened::Served(d) = fs
            .open(&dir, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .unwrap()
        else {
            panic!("not served");
        };
        let mut names = Vec::new();
        d.read_dir(0, &mut |e| {
            names.push(String::from_utf8_lossy(e.name).into_owned());
            true
        })
        .unwrap();
        names.sort();
        assert_eq!(names, [".", "..", "a", "b"]);
        // A cookie continues where a full buffer stopped.
        let mut first = None;
        d.read_dir(0, &mut |e| {
            first = Some(e.next);
            false
        })
        .unwrap();
        let mut rest = 0;
        d.read_dir(first.unwrap(), &mut |_| {
            rest += 1;
            true
        })
        .unwrap();
        // The refused entry was not taken: the three others follow it.
        assert_eq!(rest, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
