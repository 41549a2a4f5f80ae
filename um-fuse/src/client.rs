//! What a mount's file system and its open files share: the connection,
//! the node cache, and the conversions between FUSE's attributes and the
//! view's.

use std::path::Path;

use viewos_core::{Errno, FileStat, Timespec};

use crate::cache::Caches;
use crate::connection::Connection;
use crate::nodes::{Forget, Nodes};
use crate::proto::{self, Attr, AttrOut, EntryOut, Opcode};
use crate::wire::Dec;

/// One mount's session with its server. Dropping it gives every counted
/// node back (FORGET) and ends the session.
pub struct Client {
    /// The connection to the server.
    pub conn: Connection,
    /// Paths and node ids.
    pub nodes: Nodes,
    /// The device number stat reports for every file of the mount.
    pub dev: u64,
    /// What the server sent of each file.
    pub caches: Caches,
}

impl Client {
    /// A client over `conn`; files report device `dev`.
    pub fn new(conn: Connection, dev: u64) -> Client {
        Client {
            conn,
            nodes: Nodes::new(),
            dev,
            caches: Caches::default(),
        }
    }

    /// Sends a FORGET for each node given back.
    pub fn forget(&self, forgets: impl IntoIterator<Item = Forget>) {
        for (nodeid, nlookup) in forgets {
            self.caches.forget(nodeid);
            let _ = self
                .conn
                .request(Opcode::Forget, nodeid, &[&proto::forget_in(nlookup)]);
        }
    }

    /// A request whose reply is an entry for `path` (LOOKUP, MKDIR,
    /// CREATE's first half, ...): decodes it and counts the node.
    pub fn entry(&self, reply: &[u8], path: &Path) -> Result<EntryOut, Errno> {
        let e = EntryOut::decode(&mut Dec::new(reply))?;
        if e.nodeid == 0 {
            return Err(Errno::ENOENT);
        }
        if !attr_is_valid(&e.attr) {
            return Err(Errno::EIO);
        }
        self.caches
            .observe(e.nodeid, &e.attr, e.attr_valid.duration());
        let f = self
            .nodes
            .learned(path, e.nodeid, e.attr.mode, e.entry_valid.duration());
        self.forget(f);
        Ok(e)
    }

    /// LOOKUP of `name` in directory `parent`, for `path`.
    pub fn lookup(&self, parent: u64, name: &[u8], path: &Path) -> Result<EntryOut, Errno> {
        let reply = self.conn.request(Opcode::Lookup, parent, &[&cstr(name)])?;
        self.entry(&reply, path)
    }

    /// GETATTR of `nodeid` (through open file `fh` when given).
    pub fn getattr(&self, nodeid: u64, fh: Option<u64>) -> Result<Attr, Errno> {
        let reply = self
            .conn
            .request(Opcode::Getattr, nodeid, &[&proto::getattr_in(fh)])?;
        let out = AttrOut::decode(&mut Dec::new(&reply))?;
        if !attr_is_valid(&out.attr) {
            return Err(Errno::EIO);
        }
        self.caches
            .observe(nodeid, &out.attr, out.attr_valid.duration());
        Ok(out.attr)
    }

    /// SETATTR of `nodeid`; a new size is applied to its cache.
    pub fn setattr(&self, nodeid: u64, s: &proto::SetattrIn) -> Result<(), Errno> {
        let cache = self.caches.get(nodeid);
        let _writing = cache.as_ref().map(|c| c.writing());
        let r = self.conn.request(Opcode::Setattr, nodeid, &[&s.encode()]);
        if let Some(c) = &cache {
            if s.valid & proto::fattr::SIZE != 0 {
                match r {
                    Ok(_) => c.resized(s.size),
                    Err(_) => c.invalidate(),
                }
            }
        }
        let reply = r?;
        if let (Some(c), Ok(out)) = (&cache, AttrOut::decode(&mut Dec::new(&reply))) {
            c.observe(&out.attr, out.attr_valid.duration());
        }
        Ok(())
    }

    /// FUSE attributes as the view's stat.
    pub fn stat(&self, a: &Attr) -> FileStat {
        let ts = |sec: u64, nsec: u32| Timespec {
            sec: sec as i64,
            nsec: nsec.min(999_999_999),
        };
        FileStat {
            dev: self.dev,
            ino: a.ino,
            mode: a.mode,
            nlink: a.nlink as u64,
            uid: a.uid,
            gid: a.gid,
            rdev: decode_dev(a.rdev),
            size: a.size,
            blksize: if a.blksize == 0 {
                4096
            } else {
                a.blksize as u64
            },
            blocks: a.blocks,
            atime: ts(a.atime, a.atimensec),
            mtime: ts(a.mtime, a.mtimensec),
            ctime: ts(a.ctime, a.ctimensec),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let all = self.nodes.drain();
        self.forget(all);
        self.conn.close();
    }
}

/// `name` with its terminating NUL; a name with a NUL inside cannot be
/// sent (the host never gives one).
pub fn cstr(name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len() + 1);
    v.extend_from_slice(name);
    v.push(0);
    v
}

/// A device number in FUSE's 32-bit encoding (the kernel's
/// `new_encode_dev`) as a `dev_t` (glibc's `makedev`).
pub fn decode_dev(d: u32) -> u64 {
    let major = ((d & 0xfff00) >> 8) as u64;
    let minor = ((d & 0xff) | ((d >> 12) & 0xfff00)) as u64;
    ((major & 0xfffff000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffffff00) << 12)
        | (minor & 0xff)
}

/// A `dev_t` in FUSE's 32-bit encoding.
pub fn encode_dev(dev: u64) -> u32 {
    let major = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)) as u32;
    let minor = ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32;
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip() {
        for (maj, min) in [(1u32, 3u32), (8, 17), (259, 0x1234), (0, 0)] {
            let dev = libc::makedev(maj, min);
            assert_eq!(decode_dev(encode_dev(dev)), dev, "{maj}:{min}");
        }
        // /dev/null is 1:3, which the kernel encodes as 0x103.
        assert_eq!(encode_dev(libc::makedev(1, 3)), 0x103);
    }
}

/// Attributes kernel FUSE accepts from a server (`fuse_invalid_attr`): a
/// mode with a file type, and a size that fits a signed 64-bit `off_t`.
/// Others are `EIO`, as there: a program must never see a file of no
/// type or a negative size.
fn attr_is_valid(a: &proto::Attr) -> bool {
    let kind = a.mode & libc::S_IFMT;
    let typed = [
        libc::S_IFREG,
        libc::S_IFDIR,
        libc::S_IFLNK,
        libc::S_IFCHR,
        libc::S_IFBLK,
        libc::S_IFIFO,
        libc::S_IFSOCK,
    ]
    .contains(&kind);
    typed && a.size <= i64::MAX as u64
}

#[cfg(test)]
mod attr_tests {
    use super::*;

    #[test]
    fn attributes_kernel_fuse_refuses_are_refused() {
        let mut a = proto::Attr {
            mode: libc::S_IFREG | 0o644,
            ..Default::default()
        };
        assert!(attr_is_valid(&a));
        a.mode = 0o644;
        assert!(!attr_is_valid(&a));
        a.mode = libc::S_IFDIR | 0o755;
        a.size = u64::MAX;
        assert!(!attr_is_valid(&a));
        a.size = i64::MAX as u64;
        assert!(attr_is_valid(&a));
    }
}
