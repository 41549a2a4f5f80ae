//! `hello`: what a third party writes to add a file system to View-OS.
//!
//! A read-only file system holding one file, `hello.txt`. Loaded with
//! `umview -p ./libhello_service.so[,mountpoint]` it mounts itself on
//! `/hello` (or the given path); `mount -t hello none DIR` mounts it again.
//! The same code links statically into a host (see the `embed` example).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use viewos_core::{Errno, FileStat, FileSystem, MountRequest, Opened, Service, Timespec};

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
        let at = if options.is_empty() {
            "/hello"
        } else {
            options
        };
        if !at.starts_with('/') {
            return Err(Errno::EINVAL);
        }
        Ok(Box::new(Hello {
            at: PathBuf::from(at),
        }))
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
        Ok(Arc::new(HelloFs::new()?))
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

/// The file system. Opened files are backed by a private real directory
/// holding a copy of the file, so programs read and list them natively.
pub struct HelloFs {
    mirror: PathBuf,
}

impl HelloFs {
    fn new() -> Result<HelloFs, Errno> {
        static MOUNTS: AtomicUsize = AtomicUsize::new(0);
        let n = MOUNTS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hello-{}-{n}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        std::fs::write(dir.join(NAME), TEXT).map_err(Errno::from)?;
        Ok(HelloFs { mirror: dir })
    }

    fn stat(dir: bool) -> FileStat {
        let (mode, size) = match dir {
            true => (libc::S_IFDIR | 0o555, 0),
            false => (libc::S_IFREG | 0o444, TEXT.len() as u64),
        };
        let t = Timespec::default();
        let (atime, mtime, ctime) = (t, t, t);
        let ino = 1 + u64::from(!dir);
        FileStat {
            ino,
            mode,
            nlink: 1,
            size,
            blksize: 4096,
            atime,
            mtime,
            ctime,
            ..Default::default()
        }
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
        // The mirror holds exactly what the view shows: hand it out.
        let real = if dir {
            self.mirror.clone()
        } else {
            self.mirror.join(NAME)
        };
        let f = std::fs::File::open(real).map_err(Errno::from)?;
        Ok(Opened::Backed(f.into()))
    }
}

impl Drop for HelloFs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.mirror);
    }
}

viewos_core::declare_module!(Hello::create);
