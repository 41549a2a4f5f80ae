//! [`FuseFs`]: a FUSE server's tree as a [`FileSystem`] of the view.
//!
//! The host hands a file system paths relative to its root with every
//! symlink resolved (see `viewos_core::fs`). `FuseFs` turns a path into a
//! node id by LOOKUP of each component from the root (node 1), caching
//! what the server says for as long as its entry timeout allows
//! ([`crate::nodes`]); attributes are always asked for again (GETATTR), so
//! a stat never shows stale sizes or times. Then each call is the FUSE
//! request the kernel would send for it.
//!
//! A node the server no longer knows (`ESTALE`, or `ENOENT` on a cached
//! node) is looked up again once. Capabilities the server lacks are
//! remembered: RENAME for RENAME2 without flags, MKNOD + OPEN for CREATE,
//! a check of the attributes for ACCESS.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use viewos_core::{Errno, FileStat, FileSystem, FsStat, Opened, SetTime};

use crate::client::{cstr, encode_dev, Client};
use crate::file::FuseFile;
use crate::perm::{self, Creds};
use crate::proto::{self, fattr, Attr, EntryOut, Opcode, OpenOut, SetattrIn, StatfsOut};
use crate::wire::Dec;

/// The magic number statfs reports for FUSE file systems.
pub const FUSE_SUPER_MAGIC: u64 = 0x6573_5546;

/// How a mount treats its callers.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Every change is `EROFS`.
    pub read_only: bool,
    /// `human` mode: check permissions from the attributes before each
    /// call, for [`Policy::caller`]. `false`: omnipotent, the server
    /// alone decides.
    pub human: bool,
    /// The ids the mount options give (`uid=`, `gid=`): checks are for
    /// them. `None`: for the program making the call
    /// ([`Creds::caller`]).
    pub ids: Option<Creds>,
}

impl Policy {
    /// Whose permissions are checked: the mount's ids, or the caller's.
    pub fn caller(&self) -> Creds {
        self.ids.clone().unwrap_or_else(Creds::caller)
    }

    /// In `human` mode, the credentials to check; `None` otherwise.
    fn human(&self) -> Option<Creds> {
        self.human.then(|| self.caller())
    }
}

/// A FUSE server's tree (see the module docs).
pub struct FuseFs {
    client: Arc<Client>,
    policy: Policy,
    no_rename2: AtomicBool,
    no_create: AtomicBool,
    no_access: AtomicBool,
}

fn is_stale(e: Errno) -> bool {
    e == Errno::ENOENT || e.raw() == libc::ESTALE
}

/// An xattr answer of a server without xattrs is what the kernel gives.
fn xattr_errno(e: Errno) -> Errno {
    if e == Errno::ENOSYS {
        Errno::EOPNOTSUPP
    } else {
        e
    }
}

impl FuseFs {
    /// The tree served over `client`, with `policy`.
    pub fn new(client: Arc<Client>, policy: Policy) -> FuseFs {
        FuseFs {
            client,
            policy,
            no_rename2: AtomicBool::new(false),
            no_create: AtomicBool::new(false),
            no_access: AtomicBool::new(false),
        }
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.policy.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// `Ok` unless `human` mode refuses `mask` on `nodeid`.
    fn human_check(&self, nodeid: u64, mask: u32) -> Result<(), Errno> {
        match self.policy.human() {
            Some(c) => perm::check(&c, &self.client.getattr(nodeid, None)?, mask),
            None => Ok(()),
        }
    }

    /// The node `path` leads to; the cache is used unless `fresh`.
    fn walk(&self, path: &Path, fresh: bool) -> Result<u64, Errno> {
        let nodes = &self.client.nodes;
        if !fresh && !self.policy.human {
            if let Some(id) = nodes.get(path) {
                return Ok(id);
            }
        }
        let mut id = proto::ROOT_ID;
        let mut cur = PathBuf::from("/");
        for c in path.components() {
            let name = match c {
                Component::RootDir => continue,
                Component::Normal(n) => n,
                _ => return Err(Errno::EINVAL),
            };
            self.human_check(id, perm::X)?;
            cur.push(name);
            id = match nodes.get(&cur).filter(|_| !fresh) {
                Some(i) => i,
                None => self.client.lookup(id, name.as_bytes(), &cur)?.nodeid,
            };
        }
        Ok(id)
    }

    /// Runs `f` on the node of `path`; once more with a fresh lookup if
    /// the cached node turned out stale.
    fn on_node<T>(&self, path: &Path, f: impl Fn(u64) -> Result<T, Errno>) -> Result<T, Errno> {
        let id = self.walk(path, false)?;
        match f(id) {
            Err(e) if is_stale(e) && id != proto::ROOT_ID => {
                let forgets = self.client.nodes.invalidate(path, true);
                self.client.forget(forgets);
                f(self.walk(path, true)?)
            }
            r => r,
        }
    }

    /// The directory holding `path` and the last name; in `human` mode
    /// the caller must be allowed to write and search it.
    fn parent<'a>(&self, path: &'a Path) -> Result<(u64, &'a OsStr), Errno> {
        let name = path.file_name().ok_or(Errno::EBUSY)?;
        let dir = path.parent().ok_or(Errno::EBUSY)?;
        let id = self.walk(dir, false)?;
        self.human_check(id, perm::W | perm::X)?;
        Ok((id, name))
    }

    fn attr(&self, path: &Path) -> Result<Attr, Errno> {
        self.on_node(path, |id| self.client.getattr(id, None))
    }

    /// Drops what the cache knew of `path` and below.
    fn invalidate(&self, path: &Path) {
        let forgets = self.client.nodes.invalidate(path, true);
        self.client.forget(forgets);
    }

    /// `EEXIST` if `path` names something: the kernel answers a creation
    /// on an existing name so, before the read-only and permission checks
    /// and without asking the server (fuse2fs takes a MKDIR of an existing
    /// directory for a corrupt file system and goes read-only).
    fn must_be_new(&self, path: &Path) -> Result<(), Errno> {
        match self.walk(path, false) {
            Ok(_) => Err(Errno::EEXIST),
            Err(e) if e == Errno::ENOENT => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A creation in `path`'s directory: `op` with `head` then the name.
    fn create_node(&self, path: &Path, op: Opcode, head: &[u8]) -> Result<EntryOut, Errno> {
        self.must_be_new(path)?;
        self.writable()?;
        let (dir, name) = self.parent(path)?;
        let reply = self
            .client
            .conn
            .request(op, dir, &[head, &cstr(name.as_bytes())])?;
        self.client.entry(&reply, path)
    }

    /// A removal of `path` with `op`.
    fn remove(&self, path: &Path, op: Opcode) -> Result<(), Errno> {
        self.writable()?;
        let (dir, name) = self.parent(path)?;
        let r = self.client.conn.request(op, dir, &[&cstr(name.as_bytes())]);
        self.invalidate(path);
        r.map(|_| ())
    }

    fn setattr(&self, path: &Path, s: SetattrIn) -> Result<(), Errno> {
        self.writable()?;
        self.on_node(path, |id| self.client.setattr(id, &s))
    }

    /// In `human` mode: the caller must own `path`.
    fn human_owner(&self, path: &Path) -> Result<(), Errno> {
        match self.policy.human() {
            Some(c) => perm::owns(&c, &self.attr(path)?),
            None => Ok(()),
        }
    }

    /// Opens an existing node: OPENDIR for directories, OPEN otherwise.
    fn open_node(&self, path: &Path, id: u64, flags: i32) -> Result<Opened, Errno> {
        let kind = match self.client.nodes.kind(id) {
            Some(k) => k,
            None => self.client.getattr(id, None)?.mode & libc::S_IFMT,
        };
        let acc = flags & libc::O_ACCMODE;
        let is_dir = kind == libc::S_IFDIR;
        if flags & libc::O_DIRECTORY != 0 && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if flags & libc::O_PATH != 0 {
            return Ok(Opened::Served(Box::new(FuseFile::path_only(
                self.client.clone(),
                id,
            ))));
        }
        if is_dir && (acc != libc::O_RDONLY || flags & libc::O_CREAT != 0) {
            return Err(Errno::EISDIR);
        }
        match kind {
            libc::S_IFLNK => return Err(Errno::ELOOP),
            libc::S_IFDIR | libc::S_IFREG => {}
            _ => return Err(Errno::new(libc::ENXIO)),
        }
        let write = acc != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        if write {
            self.writable()?;
        }
        if let Some(c) = &self.policy.human() {
            let attr = self.client.getattr(id, None)?;
            let mut mask = 0;
            if acc != libc::O_WRONLY {
                mask |= perm::R;
            }
            if write {
                mask |= perm::W;
            }
            perm::check(c, &attr, mask)?;
        }
        let mut oflags = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_CLOEXEC);
        let trunc = !is_dir && flags & libc::O_TRUNC != 0;
        if trunc && !self.client.conn.has(proto::init_flags::ATOMIC_O_TRUNC) {
            oflags &= !libc::O_TRUNC;
            self.client.setattr(
                id,
                &SetattrIn {
                    valid: fattr::SIZE,
                    ..SetattrIn::default()
                },
            )?;
        }
        let op = if is_dir {
            Opcode::Opendir
        } else {
            Opcode::Open
        };
        let reply = self
            .client
            .conn
            .request(op, id, &[&proto::open_in(oflags as u32)])?;
        let out = OpenOut::decode(&mut Dec::new(&reply))?;
        let _ = path;
        Ok(Opened::Served(Box::new(FuseFile::new(
            self.client.clone(),
            id,
            out.fh,
            is_dir,
            oflags as u32,
            out.open_flags,
        ))))
    }

    /// `O_CREAT` on a name that does not exist: CREATE, or MKNOD then OPEN
    /// for servers without CREATE.
    fn create_file(&self, path: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        self.writable()?;
        let mode = libc::S_IFREG | (mode & 0o7777);
        if !self.no_create.load(Ordering::Relaxed) {
            let (dir, name) = self.parent(path)?;
            let cflags = (flags & !(libc::O_NOCTTY | libc::O_CLOEXEC)) as u32;
            let r = self.client.conn.request(
                Opcode::Create,
                dir,
                &[&proto::create_in(cflags, mode), &cstr(name.as_bytes())],
            );
            match r {
                Ok(reply) => {
                    let entry = self.client.entry(&reply, path)?;
                    let mut d = Dec::new(reply.get(EntryOut::SIZE..).unwrap_or_default());
                    let out = OpenOut::decode(&mut d)?;
                    let oflags = cflags & !((libc::O_CREAT | libc::O_EXCL) as u32);
                    return Ok(Opened::Served(Box::new(FuseFile::new(
                        self.client.clone(),
                        entry.nodeid,
                        out.fh,
                        false,
                        oflags,
                        out.open_flags,
                    ))));
                }
                Err(e) if e == Errno::ENOSYS => self.no_create.store(true, Ordering::Relaxed),
                Err(e) => return Err(e),
            }
        }
        let entry = self.create_node(path, Opcode::Mknod, &proto::mknod_in(mode, 0))?;
        let flags = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC);
        self.open_node(path, entry.nodeid, flags)
    }
}

impl FileSystem for FuseFs {
    fn open(&self, path: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        if flags & libc::O_CREAT != 0 {
            match self.walk(path, false) {
                Ok(_) if flags & libc::O_EXCL != 0 => return Err(Errno::EEXIST),
                Ok(_) => {}
                Err(e) if e == Errno::ENOENT => match self.create_file(path, flags, mode) {
                    Err(e) if e == Errno::EEXIST && flags & libc::O_EXCL == 0 => {}
                    r => return r,
                },
                Err(e) => return Err(e),
            }
        }
        self.on_node(path, |id| self.open_node(path, id, flags))
    }

    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        Ok(self.client.stat(&self.attr(path)?))
    }

    fn readlink(&self, path: &Path) -> Result<PathBuf, Errno> {
        let target = self.on_node(path, |id| {
            self.client.conn.request(Opcode::Readlink, id, &[])
        })?;
        Ok(PathBuf::from(OsStr::from_bytes(&target)))
    }

    fn access(&self, path: &Path, mode: i32) -> Result<(), Errno> {
        let mask = (mode & 7) as u32;
        if mask & perm::W != 0 {
            self.writable()?;
        }
        if let Some(c) = &self.policy.human() {
            return perm::check(c, &self.attr(path)?, mask);
        }
        if !self.no_access.load(Ordering::Relaxed) {
            let r = self.on_node(path, |id| {
                self.client
                    .conn
                    .request(Opcode::Access, id, &[&proto::access_in(mask)])
            });
            match r {
                Err(e) if e == Errno::ENOSYS => self.no_access.store(true, Ordering::Relaxed),
                r => return r.map(|_| ()),
            }
        }
        let attr = self.attr(path)?;
        if mask == 0 {
            return Ok(());
        }
        perm::check(&self.policy.caller(), &attr, mask)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        self.create_node(path, Opcode::Mkdir, &proto::mkdir_in(mode & 0o7777))
            .map(|_| ())
    }

    fn rmdir(&self, path: &Path) -> Result<(), Errno> {
        self.remove(path, Opcode::Rmdir)
    }

    fn unlink(&self, path: &Path) -> Result<(), Errno> {
        self.remove(path, Opcode::Unlink)
    }

    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        self.writable()?;
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        let (fname, tname) = (cstr(fname.as_bytes()), cstr(tname.as_bytes()));
        let conn = &self.client.conn;
        let mut r = Err(Errno::ENOSYS);
        if flags != 0 || !self.no_rename2.load(Ordering::Relaxed) {
            let head = proto::rename2_in(tdir, flags);
            r = conn.request(Opcode::Rename2, fdir, &[&head, &fname, &tname]);
            if r == Err(Errno::ENOSYS) {
                if flags != 0 {
                    return Err(Errno::EINVAL);
                }
                self.no_rename2.store(true, Ordering::Relaxed);
            }
        }
        if r == Err(Errno::ENOSYS) {
            let head = proto::link_in(tdir);
            r = conn.request(Opcode::Rename, fdir, &[&head, &fname, &tname]);
        }
        self.invalidate(from);
        self.invalidate(to);
        r.map(|_| ())
    }

    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        self.writable()?;
        let id = self.walk(from, false)?;
        self.create_node(to, Opcode::Link, &proto::link_in(id))
            .map(|_| ())
    }

    fn symlink(&self, target: &Path, path: &Path) -> Result<(), Errno> {
        self.must_be_new(path)?;
        self.writable()?;
        let (dir, name) = self.parent(path)?;
        let reply = self.client.conn.request(
            Opcode::Symlink,
            dir,
            &[&cstr(name.as_bytes()), &cstr(target.as_os_str().as_bytes())],
        )?;
        self.client.entry(&reply, path).map(|_| ())
    }

    fn chmod(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        self.human_owner(path)?;
        self.setattr(
            path,
            SetattrIn {
                valid: fattr::MODE,
                mode: mode & 0o7777,
                ..SetattrIn::default()
            },
        )
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        if let Some(c) = &self.policy.human() {
            perm::may_chown(c, &self.attr(path)?, uid, gid)?;
        }
        let mut s = SetattrIn::default();
        if let Some(u) = uid {
            s.valid |= fattr::UID;
            s.uid = u;
        }
        if let Some(g) = gid {
            s.valid |= fattr::GID;
            s.gid = g;
        }
        if s.valid == 0 {
            return self.attr(path).map(|_| ());
        }
        self.setattr(path, s)
    }

    fn utimens(&self, path: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        if let Some(c) = &self.policy.human() {
            let attr = self.attr(path)?;
            let explicit = matches!(atime, SetTime::At(_)) || matches!(mtime, SetTime::At(_));
            if explicit {
                perm::owns(c, &attr)?;
            } else if perm::owns(c, &attr).is_err() {
                perm::check(c, &attr, perm::W)?;
            }
        }
        let mut s = SetattrIn::default();
        match atime {
            SetTime::Now => s.valid |= fattr::ATIME | fattr::ATIME_NOW,
            SetTime::At(t) => {
                s.valid |= fattr::ATIME;
                s.atime = t.sec as u64;
                s.atimensec = t.nsec;
            }
            SetTime::Omit => {}
        }
        match mtime {
            SetTime::Now => s.valid |= fattr::MTIME | fattr::MTIME_NOW,
            SetTime::At(t) => {
                s.valid |= fattr::MTIME;
                s.mtime = t.sec as u64;
                s.mtimensec = t.nsec;
            }
            SetTime::Omit => {}
        }
        if s.valid == 0 {
            return self.attr(path).map(|_| ());
        }
        self.setattr(path, s)
    }

    fn mknod(&self, path: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        self.create_node(
            path,
            Opcode::Mknod,
            &proto::mknod_in(mode, encode_dev(rdev)),
        )
        .map(|_| ())
    }

    fn getxattr(&self, path: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let name = cstr(name);
        self.on_node(path, |id| {
            sized(|size| {
                self.client
                    .conn
                    .request(Opcode::Getxattr, id, &[&proto::getxattr_in(size), &name])
            })
        })
        .map_err(xattr_errno)
    }

    fn setxattr(&self, path: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        self.writable()?;
        self.human_owner(path)?;
        let head = proto::setxattr_in(value.len() as u32, flags as u32);
        let name = cstr(name);
        self.on_node(path, |id| {
            self.client
                .conn
                .request(Opcode::Setxattr, id, &[&head, &name, value])
        })
        .map(|_| ())
        .map_err(xattr_errno)
    }

    fn listxattr(&self, path: &Path) -> Result<Vec<u8>, Errno> {
        self.on_node(path, |id| {
            sized(|size| {
                self.client
                    .conn
                    .request(Opcode::Listxattr, id, &[&proto::getxattr_in(size)])
            })
        })
        .map_err(xattr_errno)
    }

    fn removexattr(&self, path: &Path, name: &[u8]) -> Result<(), Errno> {
        self.writable()?;
        self.human_owner(path)?;
        let name = cstr(name);
        self.on_node(path, |id| {
            self.client.conn.request(Opcode::Removexattr, id, &[&name])
        })
        .map(|_| ())
        .map_err(xattr_errno)
    }

    fn statfs(&self, path: &Path) -> Result<FsStat, Errno> {
        let reply = self.on_node(path, |id| self.client.conn.request(Opcode::Statfs, id, &[]))?;
        let s = StatfsOut::decode(&mut Dec::new(&reply))?;
        Ok(FsStat {
            fs_type: FUSE_SUPER_MAGIC,
            block_size: s.bsize as u64,
            blocks: s.blocks,
            blocks_free: s.bfree,
            blocks_available: s.bavail,
            files: s.files,
            files_free: s.ffree,
            fsid: 0,
            name_max: s.namelen as u64,
            fragment_size: if s.frsize == 0 { s.bsize } else { s.frsize } as u64,
            flags: if self.policy.read_only {
                libc::ST_RDONLY
            } else {
                0
            },
        })
    }

    fn truncate(&self, path: &Path, len: u64) -> Result<(), Errno> {
        if let Some(c) = &self.policy.human() {
            perm::check(c, &self.attr(path)?, perm::W)?;
        }
        self.setattr(
            path,
            SetattrIn {
                valid: fattr::SIZE,
                size: len,
                ..SetattrIn::default()
            },
        )
    }
}

/// GETXATTR / LISTXATTR as the kernel asks them: the size first (a
/// request of size 0 answers a `fuse_getxattr_out`), then the value in a
/// buffer of that size, again if it grew in between (`ERANGE`).
fn sized(ask: impl Fn(u32) -> Result<Vec<u8>, Errno>) -> Result<Vec<u8>, Errno> {
    for _ in 0..8 {
        let reply = ask(0)?;
        let size = Dec::new(&reply).u32()?;
        if size == 0 {
            return Ok(Vec::new());
        }
        match ask(size) {
            Err(e) if e.raw() == libc::ERANGE => continue,
            r => return r,
        }
    }
    Err(Errno::new(libc::ERANGE))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::connection::{self, Connection};
    use crate::proto::Valid;
    use crate::testing::FakeServer;
    use crate::wire::Enc;

    /// A server whose root holds the directory `d` (node 2) and which
    /// records every creation it is asked for (and answers it EIO).
    fn server_with_d(asked: Arc<Mutex<Vec<u32>>>) -> (FuseFs, FakeServer) {
        let (client_end, server_end) = connection::pair().unwrap();
        let fake = FakeServer::start(server_end, move |h, args| match h.opcode {
            1 if h.nodeid == proto::ROOT_ID && args.starts_with(b"d\0") => {
                let mut e = Enc::new();
                EntryOut {
                    nodeid: 2,
                    generation: 0,
                    entry_valid: Valid { sec: 60, nsec: 0 },
                    attr_valid: Valid { sec: 60, nsec: 0 },
                    attr: Attr {
                        ino: 2,
                        mode: libc::S_IFDIR | 0o755,
                        nlink: 2,
                        ..Attr::default()
                    },
                }
                .encode(&mut e);
                Some(Ok(e.0))
            }
            1 => Some(Err(libc::ENOENT)),
            6 | 8 | 9 | 13 => {
                asked.lock().unwrap().push(h.opcode);
                Some(Err(libc::EIO))
            }
            _ => Some(Err(libc::ENOSYS)),
        });
        let conn = Connection::new(client_end, connection::Config::default()).unwrap();
        let fs = FuseFs::new(Arc::new(Client::new(conn, 0)), Policy::default());
        (fs, fake)
    }

    #[test]
    fn creations_on_existing_names_are_eexist_without_asking_the_server() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (fs, fake) = server_with_d(asked.clone());
        let p = Path::new;
        assert_eq!(fs.mkdir(p("/d"), 0o755), Err(Errno::EEXIST));
        assert_eq!(fs.symlink(p("x"), p("/d")), Err(Errno::EEXIST));
        assert_eq!(
            fs.mknod(p("/d"), libc::S_IFIFO | 0o644, 0),
            Err(Errno::EEXIST)
        );
        assert_eq!(fs.link(p("/d"), p("/d")), Err(Errno::EEXIST));
        assert_eq!(fs.mkdir(p("/"), 0o755), Err(Errno::EEXIST));
        assert!(
            asked.lock().unwrap().is_empty(),
            "{:?}",
            asked.lock().unwrap()
        );
        // A new name does reach the server.
        assert_eq!(fs.mkdir(p("/new"), 0o755), Err(Errno::EIO));
        assert_eq!(fs.symlink(p("x"), p("/d/new")), Err(Errno::EIO));
        assert_eq!(*asked.lock().unwrap(), [9, 6]);
        drop(fs);
        fake.join();
    }
}
