//! `hello`: what a third party writes to add a file system to View-OS.
//!
//! A read-only file system holding one file, `hello.txt`. Loaded with
//! `umview -p ./libhello_service.so[,mountpoint]` it mounts itself on
//! `/hello` (or the given path); `mount -t hello none DIR` mounts it again.
//! The same code links statically into a host (see the `embed` example).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use viewos_core::{
    DirEntry, Errno, FileHandle, FileStat, FileSystem, MountRequest, Opened, Service,
};

/// The file's name and contents.
pub const NAME: &str = "hello.txt";
/// See [`NAME`].
pub const TEXT: &str = "hello from a third-party View-OS service\n";

/// The service: mounts [`HelloFs`].
pub struct Hello {
    at: PathBuf,
}

impl Hello {
    /// Module factory: the option is the mount point (default `/hello`).
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        let at = if options.is_empty() { "/hello" } else { options };
        if !at.starts_with('/') {
            return Err(Errno::EINVAL);
        }
        Ok(Box::new(Hello { at: PathBuf::from(at) }))
    }
}

impl Service for Hello {
    fn name(&self) -> &str {
        "hello"
    }
    fn description(&self) -> &str {
        "a read-only file system with one file (example)"
    }
    fn mounts_file_systems(&self) -> bool {
        true
    }
    fn mount(
        &self,
        _: &MountRequest,
        _: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        Ok(Arc::new(HelloFs))
    }
    fn initial_mounts(&self) -> Vec<MountRequest> {
        vec![MountRequest {
            source: "none".into(),
            target: self.at.clone(),
            fstype: "hello".into(),
            ..MountRequest::default()
        }]
    }
}

/// The file system. It serves its files itself: programs get fds whose
/// reads, status and listings come to `HelloFile`.
pub struct HelloFs;

impl HelloFs {
    fn stat(dir: bool) -> FileStat {
        let (mode, size) = match dir {
            true => (libc::S_IFDIR | 0o555, 0),
            false => (libc::S_IFREG | 0o444, TEXT.len() as u64),
        };
        let (ino, nlink, blksize) = (1 + u64::from(!dir), 1, 4096);
        FileStat { ino, mode, nlink, size, blksize, ..Default::default() }
    }

    fn which(path: &Path) -> Result<bool, Errno> {
        match path.to_str() {
            Some("/") => Ok(true),
            Some(p) if p.strip_prefix('/') == Some(NAME) => Ok(false),
            _ => Err(Errno::ENOENT),
        }
    }
}

impl FileSystem for HelloFs {
    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        Self::which(path).map(Self::stat)
    }

    fn access(&self, path: &Path, mode: i32) -> Result<(), Errno> {
        let dir = Self::which(path)?;
        if mode & libc::W_OK != 0 || (mode & libc::X_OK != 0 && !dir) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    fn open(&self, path: &Path, flags: i32, _mode: u32) -> Result<Opened, Errno> {
        let dir = Self::which(path)?;
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return Err(if dir { Errno::EISDIR } else { Errno::EROFS });
        }
        if !dir && flags & libc::O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        Ok(Opened::Served(Box::new(HelloFile { dir })))
    }
}

/// One open file or the open root directory.
struct HelloFile {
    dir: bool,
}

impl FileHandle for HelloFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let rest = TEXT.as_bytes().get(offset as usize..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        Ok(HelloFs::stat(self.dir))
    }

    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let names: [&[u8]; 3] = [b".", b"..", NAME.as_bytes()];
        for (i, name) in names.into_iter().enumerate().skip(cookie as usize) {
            let (ino, next) = (i as u64 + 1, i as u64 + 1);
            let kind = if i < 2 { libc::DT_DIR } else { libc::DT_REG };
            if !fill(DirEntry { ino, kind, name, next }) {
                break;
            }
        }
        Ok(())
    }
}

viewos_core::declare_module!(Hello::create);
