//! TARGET's files served by a copy-on-write mount (`-o served`, and
//! `O_PATH` handles): reads come from TARGET's file, and the status is
//! the view's, so a change made through the fd (`fchmod`, which the host
//! sends to the mount as a change of the path, copying the file up) shows
//! on the same fd as it would on a real file.

use std::path::PathBuf;
use std::sync::Arc;

use viewos_core::{DirEntry, Errno, FileHandle, FileStat};

use crate::cow_lookup::Lookup;

/// One of TARGET's files, opened for reading through a cow mount.
pub struct CowFile {
    inner: Box<dyn FileHandle>,
    look: Arc<Lookup>,
    path: PathBuf,
}

impl CowFile {
    /// Serves `inner`, TARGET's file at `path` of the mount `look`.
    pub fn new(inner: Box<dyn FileHandle>, look: Arc<Lookup>, path: PathBuf) -> CowFile {
        CowFile { inner, look, path }
    }
}

impl FileHandle for CowFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.inner.read(offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.inner.write(offset, data)
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        // Copied up since it was opened: the layer's copy is the file now.
        match self.look.find(&self.path) {
            Ok(node) if node.upper.is_some() => node.stat().ok_or(Errno::ENOENT),
            _ => self.inner.stat(),
        }
    }

    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        self.inner.read_dir(cookie, fill)
    }

    fn seekable(&self) -> bool {
        self.inner.seekable()
    }

    fn extent(&self) -> Option<viewos_core::handle::Extent<'_>> {
        self.inner.extent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{into_handle, Layer};
    use crate::testdir::TestDir;
    use std::path::Path;
    use viewos_core::real::RealFs;

    #[test]
    fn status_follows_a_copy_up() {
        let t = TestDir::new("cow-file");
        t.write("low/f", "data");
        t.mkdir("up");
        let look = Arc::new(Lookup::new(
            Layer::new(Arc::new(RealFs), t.join("up")),
            Layer::new(Arc::new(RealFs), t.join("low")),
        ));
        let h = into_handle(
            look.lower()
                .fs()
                .open(&t.join("low/f"), libc::O_RDONLY, 0)
                .unwrap(),
        )
        .unwrap();
        let f = CowFile::new(h, look.clone(), PathBuf::from("/f"));
        let before = f.stat().unwrap();
        let st = look.lower().lstat(Path::new("/f")).unwrap();
        crate::copy_up::copy(&look, Path::new("/f"), &st, true).unwrap();
        std::fs::write(t.join("up/f"), "longer data").unwrap();
        look.invalidate();
        assert_eq!(before.size, 4);
        assert_eq!(f.stat().unwrap().size, 11);
        let mut buf = [0u8; 8];
        assert_eq!(f.read(0, &mut buf).unwrap(), 4);
    }
}
