//! The `umbinfmt` service: the registry of formats, the file system that
//! shows it, and the exec matcher.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use viewos_core::binfmt::{ExecRequest, Interpreter};
use viewos_core::{
    DirEntry, Errno, FileHandle, FileStat, FileSystem, Interest, MountRequest, Opened, Service,
    SharedFd,
};

use crate::format::{parse_command, parse_register, Command, Registration};

/// One registered format.
struct Entry {
    reg: Registration,
    enabled: bool,
    /// The interpreter opened at registration (`F`).
    file: Option<SharedFd>,
    /// Inode number of its file.
    ino: u64,
}

/// What every mount of the service shows (the kernel keeps one list too).
#[derive(Default)]
struct Registry {
    /// Newest first: the kernel tries the latest registration first.
    entries: Vec<Entry>,
    /// binfmt_misc as a whole is enabled (`status`).
    disabled: bool,
    /// Mounts made; the last umount removes every entry, as the kernel's.
    mounts: usize,
    next_ino: u64,
}

/// The `umbinfmt` service (see the crate docs).
pub struct UmBinfmt {
    registry: Arc<Mutex<Registry>>,
}

impl UmBinfmt {
    /// Module factory (`umview -p umbinfmt`); takes no options.
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        if !options.is_empty() {
            return Err(Errno::EINVAL);
        }
        Ok(Box::new(UmBinfmt::new()))
    }

    /// A service with no format registered.
    pub fn new() -> UmBinfmt {
        UmBinfmt {
            registry: Arc::new(Mutex::new(Registry {
                next_ino: FIRST_ENTRY_INO,
                ..Registry::default()
            })),
        }
    }
}

impl Default for UmBinfmt {
    fn default() -> UmBinfmt {
        UmBinfmt::new()
    }
}

impl Service for UmBinfmt {
    fn name(&self) -> &str {
        "umbinfmt"
    }

    fn description(&self) -> &str {
        "binfmt_misc: executable formats of the view"
    }

    fn interest(&self) -> Interest {
        Interest::PATH | Interest::EXEC
    }

    fn mounts_file_systems(&self) -> bool {
        true
    }

    /// `umbinfmt`, and the kernel's own `binfmt_misc` (so that
    /// `mount -t binfmt_misc` in the view mounts the view's).
    fn handles_fstype(&self, fstype: &str) -> bool {
        fstype == "umbinfmt" || fstype == "binfmt_misc"
    }

    fn mount(
        &self,
        _request: &MountRequest,
        io: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        self.registry.lock().mounts += 1;
        Ok(Arc::new(BinfmtFs {
            registry: self.registry.clone(),
            io,
            owner: owner(),
        }))
    }

    fn exec_interpreter(&self, request: &ExecRequest<'_>) -> Option<Result<Interpreter, Errno>> {
        let registry = self.registry.lock();
        if registry.disabled {
            return None;
        }
        let e = registry
            .entries
            .iter()
            .find(|e| e.enabled && e.reg.matcher.matches(request.filename, request.head))?;
        Some(Ok(Interpreter {
            path: PathBuf::from(std::ffi::OsStr::from_bytes(&e.reg.interpreter)),
            file: e.file.clone(),
            preserve_argv0: e.reg.flags.preserve_argv0,
            open_binary: e.reg.flags.open_binary,
            credentials: e.reg.flags.credentials,
        }))
    }
}

/// The uid and gid the files show: the view's user (the kernel's
/// binfmt_misc shows root's, who alone may write it; in a view its user
/// does).
fn owner() -> (u32, u32) {
    std::fs::metadata("/proc/self").map_or((0, 0), |m| (m.uid(), m.gid()))
}

const ROOT_INO: u64 = 1;
const STATUS_INO: u64 = 2;
const REGISTER_INO: u64 = 3;
const FIRST_ENTRY_INO: u64 = 4;

/// A file of the mount.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Root,
    Status,
    Register,
    Entry(Vec<u8>),
}

/// One mount: `register`, `status` and one file per entry.
struct BinfmtFs {
    registry: Arc<Mutex<Registry>>,
    /// The view below the mount, to open `F` interpreters.
    io: Arc<dyn FileSystem>,
    owner: (u32, u32),
}

impl Drop for BinfmtFs {
    fn drop(&mut self) {
        let mut r = self.registry.lock();
        r.mounts -= 1;
        if r.mounts == 0 {
            r.entries.clear();
            r.disabled = false;
        }
    }
}

impl BinfmtFs {
    fn node(&self, path: &Path) -> Result<Node, Errno> {
        let bytes = path.as_os_str().as_bytes();
        let name = match bytes.strip_prefix(b"/") {
            Some(b"") => return Ok(Node::Root),
            Some(name) if !name.contains(&b'/') => name,
            _ => return Err(Errno::ENOENT),
        };
        match name {
            b"status" => Ok(Node::Status),
            b"register" => Ok(Node::Register),
            _ if self
                .registry
                .lock()
                .entries
                .iter()
                .any(|e| e.reg.name == name) =>
            {
                Ok(Node::Entry(name.to_vec()))
            }
            _ => Err(Errno::ENOENT),
        }
    }

    fn stat_of(&self, node: &Node) -> Result<FileStat, Errno> {
        let (mode, ino) = match node {
            Node::Root => (libc::S_IFDIR | 0o755, ROOT_INO),
            Node::Status => (libc::S_IFREG | 0o644, STATUS_INO),
            Node::Register => (libc::S_IFREG | 0o200, REGISTER_INO),
            Node::Entry(name) => {
                let r = self.registry.lock();
                let e = r.entries.iter().find(|e| &e.reg.name == name);
                (libc::S_IFREG | 0o644, e.ok_or(Errno::ENOENT)?.ino)
            }
        };
        Ok(FileStat {
            ino,
            mode,
            nlink: if ino == ROOT_INO { 2 } else { 1 },
            uid: self.owner.0,
            gid: self.owner.1,
            blksize: 4096,
            ..FileStat::default()
        })
    }
}

impl FileSystem for BinfmtFs {
    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        let node = self.node(path)?;
        self.stat_of(&node)
    }

    fn access(&self, path: &Path, mode: i32) -> Result<(), Errno> {
        let st = self.lstat(path)?;
        let want = (mode & 7) as u32;
        // The view's user owns the files: the owner's bits decide.
        if (st.mode >> 6) & want != want {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    fn open(&self, path: &Path, flags: i32, _mode: u32) -> Result<Opened, Errno> {
        let node = self.node(path)?;
        let write = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if node == Node::Root && (write || flags & libc::O_TRUNC != 0) {
            return Err(Errno::EISDIR);
        }
        if node != Node::Root && flags & libc::O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
            return Err(Errno::EEXIST);
        }
        let stat = self.stat_of(&node)?;
        Ok(Opened::Served(Box::new(BinfmtFile {
            node,
            stat,
            registry: self.registry.clone(),
            io: self.io.clone(),
        })))
    }

    fn statfs(&self, _path: &Path) -> Result<viewos_core::FsStat, Errno> {
        Ok(viewos_core::FsStat {
            fs_type: BINFMTFS_MAGIC,
            block_size: 4096,
            fragment_size: 4096,
            name_max: 255,
            ..viewos_core::FsStat::default()
        })
    }

    // Creating, removing or changing files is refused, as on the kernel's.
    fn mkdir(&self, _: &Path, _: u32) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
    fn unlink(&self, _: &Path) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
    fn mknod(&self, _: &Path, _: u32, _: u64) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
}

/// `BINFMTFS_MAGIC`, statfs's type of binfmt_misc.
const BINFMTFS_MAGIC: u64 = 0x4249_4e4d;

/// An open file of the mount.
struct BinfmtFile {
    node: Node,
    stat: FileStat,
    registry: Arc<Mutex<Registry>>,
    io: Arc<dyn FileSystem>,
}

impl BinfmtFile {
    fn text(&self) -> Result<Vec<u8>, Errno> {
        let r = self.registry.lock();
        match &self.node {
            Node::Status => Ok(if r.disabled {
                b"disabled\n".to_vec()
            } else {
                b"enabled\n".to_vec()
            }),
            Node::Entry(name) => r
                .entries
                .iter()
                .find(|e| &e.reg.name == name)
                .map(|e| e.reg.status_text(e.enabled))
                .ok_or(Errno::ENOENT),
            Node::Register | Node::Root => Err(Errno::EINVAL),
        }
    }

    fn register(&self, data: &[u8]) -> Result<usize, Errno> {
        let reg = parse_register(data)?;
        if reg.name == b"status" || reg.name == b"register" {
            return Err(Errno::EEXIST);
        }
        if self
            .registry
            .lock()
            .entries
            .iter()
            .any(|e| e.reg.name == reg.name)
        {
            return Err(Errno::EEXIST);
        }
        let file = if reg.flags.fix_binary {
            open_interpreter(self.io.as_ref(), &reg.interpreter)?
        } else {
            None
        };
        let mut r = self.registry.lock();
        if r.entries.iter().any(|e| e.reg.name == reg.name) {
            return Err(Errno::EEXIST);
        }
        let ino = r.next_ino;
        r.next_ino += 1;
        r.entries.insert(
            0,
            Entry {
                reg,
                enabled: true,
                file,
                ino,
            },
        );
        Ok(data.len())
    }

    fn command(&self, data: &[u8]) -> Result<usize, Errno> {
        let command = parse_command(data)?;
        let mut r = self.registry.lock();
        match &self.node {
            Node::Status => match command {
                Command::Nothing => return Ok(0),
                Command::Disable => r.disabled = true,
                Command::Enable => r.disabled = false,
                Command::Remove => r.entries.clear(),
            },
            Node::Entry(name) => {
                let i = r
                    .entries
                    .iter()
                    .position(|e| &e.reg.name == name)
                    .ok_or(Errno::ENOENT)?;
                match command {
                    Command::Nothing => return Ok(0),
                    Command::Disable => r.entries[i].enabled = false,
                    Command::Enable => r.entries[i].enabled = true,
                    Command::Remove => {
                        r.entries.remove(i);
                    }
                }
            }
            Node::Register | Node::Root => return Err(Errno::EINVAL),
        }
        Ok(data.len())
    }
}

/// Opens an `F` interpreter at registration, as the kernel's `open_exec`:
/// it must exist, be a regular file and executable. A relative path is
/// taken from the view's root.
fn open_interpreter(io: &dyn FileSystem, path: &[u8]) -> Result<Option<SharedFd>, Errno> {
    let mut abs = PathBuf::from("/");
    abs.push(std::ffi::OsStr::from_bytes(path));
    let opened = io.open(&abs, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let fd = match opened {
        Opened::Backed(fd) => fd,
        // A served interpreter has no file to keep: found by path.
        Opened::Served(_) => return Ok(None),
        _ => return Ok(None),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(Errno::from)?;
    if !meta.is_file() {
        return Err(Errno::EACCES);
    }
    io.access(&abs, libc::X_OK)?;
    Ok(Some(SharedFd::new(file.into())))
}

impl FileHandle for BinfmtFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.node == Node::Root {
            return Err(Errno::EISDIR);
        }
        let text = self.text()?;
        let rest = text.get(offset as usize..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn write(&self, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        match self.node {
            Node::Register => self.register(data),
            Node::Root => Err(Errno::EISDIR),
            _ => self.command(data),
        }
    }

    fn truncate(&self, _len: u64) -> Result<(), Errno> {
        Ok(())
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        Ok(self.stat)
    }

    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        if self.node != Node::Root {
            return Err(Errno::ENOTDIR);
        }
        let mut names: Vec<(u64, u8, Vec<u8>)> = vec![
            (ROOT_INO, libc::DT_DIR, b".".to_vec()),
            (ROOT_INO, libc::DT_DIR, b"..".to_vec()),
            (STATUS_INO, libc::DT_REG, b"status".to_vec()),
            (REGISTER_INO, libc::DT_REG, b"register".to_vec()),
        ];
        {
            let r = self.registry.lock();
            // Oldest first, as the kernel's directory lists them.
            for e in r.entries.iter().rev() {
                names.push((e.ino, libc::DT_REG, e.reg.name.clone()));
            }
        }
        for (i, (ino, kind, name)) in names.iter().enumerate().skip(cookie as usize) {
            let next = i as u64 + 1;
            if !fill(DirEntry {
                ino: *ino,
                kind: *kind,
                name,
                next,
            }) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
