//! The FUSE protocol (version 7, as the Linux kernel's `fuse.h` defines
//! it), seen from the client side: operation codes, the request structures
//! a client encodes and the reply structures it decodes.
//!
//! Every request is a 40-byte [`InHeader`] followed by the operation's
//! arguments; every reply a 16-byte [`OutHeader`] (with a negative errno,
//! or 0) followed by the result. Structures are encoded field by field
//! ([`crate::wire`]); each has a `SIZE`, checked against the kernel's in
//! the tests below.

use viewos_core::Errno;

use crate::wire::{Dec, Enc};

/// The protocol's major version.
pub const KERNEL_VERSION: u32 = 7;
/// The minor version this client speaks (7.31: `fuse_in_header` has
/// `total_extlen`, `fuse_init_in` has `flags2`; nothing newer is used).
pub const KERNEL_MINOR_VERSION: u32 = 31;
/// The node id of the root directory.
pub const ROOT_ID: u64 = 1;

/// FUSE operation codes.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Opcode {
    Lookup = 1,
    Forget = 2,
    Getattr = 3,
    Setattr = 4,
    Readlink = 5,
    Symlink = 6,
    Mknod = 8,
    Mkdir = 9,
    Unlink = 10,
    Rmdir = 11,
    Rename = 12,
    Link = 13,
    Open = 14,
    Read = 15,
    Write = 16,
    Statfs = 17,
    Release = 18,
    Fsync = 20,
    Setxattr = 21,
    Getxattr = 22,
    Listxattr = 23,
    Removexattr = 24,
    Flush = 25,
    Init = 26,
    Opendir = 27,
    Readdir = 28,
    Releasedir = 29,
    Fsyncdir = 30,
    Access = 34,
    Create = 35,
    Interrupt = 36,
    Destroy = 38,
    BatchForget = 42,
    Rename2 = 45,
}

impl Opcode {
    /// The kernel's name (`"LOOKUP"`), for debug logs.
    pub fn name(self) -> &'static str {
        use Opcode::*;
        match self {
            Lookup => "LOOKUP",
            Forget => "FORGET",
            Getattr => "GETATTR",
            Setattr => "SETATTR",
            Readlink => "READLINK",
            Symlink => "SYMLINK",
            Mknod => "MKNOD",
            Mkdir => "MKDIR",
            Unlink => "UNLINK",
            Rmdir => "RMDIR",
            Rename => "RENAME",
            Link => "LINK",
            Open => "OPEN",
            Read => "READ",
            Write => "WRITE",
            Statfs => "STATFS",
            Release => "RELEASE",
            Fsync => "FSYNC",
            Setxattr => "SETXATTR",
            Getxattr => "GETXATTR",
            Listxattr => "LISTXATTR",
            Removexattr => "REMOVEXATTR",
            Flush => "FLUSH",
            Init => "INIT",
            Opendir => "OPENDIR",
            Readdir => "READDIR",
            Releasedir => "RELEASEDIR",
            Fsyncdir => "FSYNCDIR",
            Access => "ACCESS",
            Create => "CREATE",
            Interrupt => "INTERRUPT",
            Destroy => "DESTROY",
            BatchForget => "BATCH_FORGET",
            Rename2 => "RENAME2",
        }
    }

    /// True for the operations the server never answers.
    pub fn no_reply(self) -> bool {
        matches!(
            self,
            Opcode::Forget | Opcode::BatchForget | Opcode::Interrupt
        )
    }
}

/// `FUSE_INIT` flags this client may offer.
pub mod init_flags {
    /// Reads may be sent concurrently.
    pub const ASYNC_READ: u32 = 1 << 0;
    /// `O_TRUNC` is handled by OPEN itself.
    pub const ATOMIC_O_TRUNC: u32 = 1 << 3;
    /// Writes larger than a page.
    pub const BIG_WRITES: u32 = 1 << 5;
    /// The client applies the umask itself.
    pub const DONT_MASK: u32 = 1 << 6;
    /// `max_pages` in the reply is meaningful.
    pub const MAX_PAGES: u32 = 1 << 22;
}

/// `fuse_setattr_in.valid` bits.
pub mod fattr {
    /// `mode` is set.
    pub const MODE: u32 = 1 << 0;
    /// `uid` is set.
    pub const UID: u32 = 1 << 1;
    /// `gid` is set.
    pub const GID: u32 = 1 << 2;
    /// `size` is set.
    pub const SIZE: u32 = 1 << 3;
    /// `atime` is set.
    pub const ATIME: u32 = 1 << 4;
    /// `mtime` is set.
    pub const MTIME: u32 = 1 << 5;
    /// `fh` is set.
    pub const FH: u32 = 1 << 6;
    /// atime is the current time.
    pub const ATIME_NOW: u32 = 1 << 7;
    /// mtime is the current time.
    pub const MTIME_NOW: u32 = 1 << 8;
}

/// `fuse_getattr_in.getattr_flags`: `fh` is meaningful.
pub const GETATTR_FH: u32 = 1;
/// `fuse_release_in.release_flags`: flush as well.
pub const RELEASE_FLUSH: u32 = 1;
/// `fuse_fsync_in.fsync_flags`: data only.
pub const FSYNC_FDATASYNC: u32 = 1;
/// Offset of the name in a `fuse_dirent`.
pub const DIRENT_NAME_OFFSET: usize = 24;
/// The longest name a server may give (the kernel's `FUSE_NAME_MAX`).
pub const NAME_MAX: usize = 1024;

/// `fuse_in_header`: the start of every request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InHeader {
    /// Length of the whole request.
    pub len: u32,
    /// The operation.
    pub opcode: u32,
    /// The request's number; its reply carries it.
    pub unique: u64,
    /// The node the operation is on.
    pub nodeid: u64,
    /// Caller's user id.
    pub uid: u32,
    /// Caller's group id.
    pub gid: u32,
    /// Caller's process id.
    pub pid: u32,
}

impl InHeader {
    /// Encoded size.
    pub const SIZE: usize = 40;

    /// Appends the header.
    pub fn encode(&self, e: &mut Enc) {
        e.u32(self.len)
            .u32(self.opcode)
            .u64(self.unique)
            .u64(self.nodeid);
        e.u32(self.uid).u32(self.gid).u32(self.pid).u16(0).u16(0);
    }

    /// Reads a header (a test server's side).
    pub fn decode(d: &mut Dec<'_>) -> Result<InHeader, Errno> {
        let h = InHeader {
            len: d.u32()?,
            opcode: d.u32()?,
            unique: d.u64()?,
            nodeid: d.u64()?,
            uid: d.u32()?,
            gid: d.u32()?,
            pid: d.u32()?,
        };
        d.skip(4)?;
        Ok(h)
    }
}

/// `fuse_out_header`: the start of every reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutHeader {
    /// Length of the whole reply.
    pub len: u32,
    /// 0, or a negative errno.
    pub error: i32,
    /// The request this answers (0: a notification).
    pub unique: u64,
}

impl OutHeader {
    /// Encoded size.
    pub const SIZE: usize = 16;

    /// Reads a header.
    pub fn decode(d: &mut Dec<'_>) -> Result<OutHeader, Errno> {
        Ok(OutHeader {
            len: d.u32()?,
            error: d.i32()?,
            unique: d.u64()?,
        })
    }

    /// Appends the header (a test server's side).
    pub fn encode(&self, e: &mut Enc) {
        e.u32(self.len).u32(self.error as u32).u64(self.unique);
    }
}

/// `fuse_init_in`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InitIn {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Largest readahead.
    pub max_readahead: u32,
    /// Offered capabilities.
    pub flags: u32,
}

impl InitIn {
    /// Encoded size (with `flags2` and the unused words of 7.36).
    pub const SIZE: usize = 64;

    /// Appends the structure.
    pub fn encode(&self, e: &mut Enc) {
        e.u32(self.major)
            .u32(self.minor)
            .u32(self.max_readahead)
            .u32(self.flags);
        e.u32(0).zeros(11 * 4);
    }
}

/// `fuse_init_out`, as much of it as the server sent (old servers send
/// the 8 or 24 bytes of their version).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InitOut {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Largest readahead.
    pub max_readahead: u32,
    /// Accepted capabilities.
    pub flags: u32,
    /// Largest WRITE the server takes (0 if it did not say).
    pub max_write: u32,
    /// Largest request in pages, with [`init_flags::MAX_PAGES`].
    pub max_pages: u16,
}

impl InitOut {
    /// Full encoded size.
    pub const SIZE: usize = 64;

    /// Reads the reply; fields the server did not send are 0.
    pub fn decode(d: &mut Dec<'_>) -> Result<InitOut, Errno> {
        let mut o = InitOut {
            major: d.u32()?,
            minor: d.u32()?,
            ..InitOut::default()
        };
        if d.remaining() >= 16 {
            o.max_readahead = d.u32()?;
            o.flags = d.u32()?;
            d.skip(4)?; // max_background, congestion_threshold
            o.max_write = d.u32()?;
        }
        if d.remaining() >= 8 {
            d.skip(4)?; // time_gran
            o.max_pages = d.u16()?;
        }
        Ok(o)
    }
}

/// `fuse_attr`: a node's attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Attr {
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
    pub atimensec: u32,
    pub mtimensec: u32,
    pub ctimensec: u32,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub blksize: u32,
}

impl Attr {
    /// Encoded size.
    pub const SIZE: usize = 88;

    /// Reads the structure.
    pub fn decode(d: &mut Dec<'_>) -> Result<Attr, Errno> {
        let a = Attr {
            ino: d.u64()?,
            size: d.u64()?,
            blocks: d.u64()?,
            atime: d.u64()?,
            mtime: d.u64()?,
            ctime: d.u64()?,
            atimensec: d.u32()?,
            mtimensec: d.u32()?,
            ctimensec: d.u32()?,
            mode: d.u32()?,
            nlink: d.u32()?,
            uid: d.u32()?,
            gid: d.u32()?,
            rdev: d.u32()?,
            blksize: d.u32()?,
        };
        d.skip(4)?; // flags
        Ok(a)
    }

    /// Appends the structure (a test server's side).
    pub fn encode(&self, e: &mut Enc) {
        e.u64(self.ino).u64(self.size).u64(self.blocks);
        e.u64(self.atime).u64(self.mtime).u64(self.ctime);
        e.u32(self.atimensec)
            .u32(self.mtimensec)
            .u32(self.ctimensec);
        e.u32(self.mode).u32(self.nlink).u32(self.uid).u32(self.gid);
        e.u32(self.rdev).u32(self.blksize).u32(0);
    }
}

/// A validity period as FUSE gives it (seconds and nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Valid {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds.
    pub nsec: u32,
}

impl Valid {
    /// As a duration (absurd values are capped at a day).
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::new(self.sec.min(86_400), self.nsec.min(999_999_999))
    }
}

/// `fuse_entry_out`: the answer to LOOKUP and to every creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryOut {
    /// The node (0: a negative entry, "no such name").
    pub nodeid: u64,
    /// Generation of the node id.
    pub generation: u64,
    /// How long the name stays valid.
    pub entry_valid: Valid,
    /// How long the attributes stay valid.
    pub attr_valid: Valid,
    /// The attributes.
    pub attr: Attr,
}

impl EntryOut {
    /// Encoded size.
    pub const SIZE: usize = 128;

    /// Reads the structure.
    pub fn decode(d: &mut Dec<'_>) -> Result<EntryOut, Errno> {
        let nodeid = d.u64()?;
        let generation = d.u64()?;
        let (es, as_) = (d.u64()?, d.u64()?);
        let (en, an) = (d.u32()?, d.u32()?);
        Ok(EntryOut {
            nodeid,
            generation,
            entry_valid: Valid { sec: es, nsec: en },
            attr_valid: Valid { sec: as_, nsec: an },
            attr: Attr::decode(d)?,
        })
    }

    /// Appends the structure (a test server's side).
    pub fn encode(&self, e: &mut Enc) {
        e.u64(self.nodeid).u64(self.generation);
        e.u64(self.entry_valid.sec).u64(self.attr_valid.sec);
        e.u32(self.entry_valid.nsec).u32(self.attr_valid.nsec);
        self.attr.encode(e);
    }
}

/// `fuse_attr_out`: the answer to GETATTR and SETATTR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttrOut {
    /// How long the attributes stay valid.
    pub attr_valid: Valid,
    /// The attributes.
    pub attr: Attr,
}

impl AttrOut {
    /// Encoded size.
    pub const SIZE: usize = 104;

    /// Reads the structure.
    pub fn decode(d: &mut Dec<'_>) -> Result<AttrOut, Errno> {
        let sec = d.u64()?;
        let nsec = d.u32()?;
        d.skip(4)?;
        Ok(AttrOut {
            attr_valid: Valid { sec, nsec },
            attr: Attr::decode(d)?,
        })
    }

    /// Appends the structure (a test server's side).
    pub fn encode(&self, e: &mut Enc) {
        e.u64(self.attr_valid.sec).u32(self.attr_valid.nsec).u32(0);
        self.attr.encode(e);
    }
}

/// `fuse_getattr_in`.
pub fn getattr_in(fh: Option<u64>) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(if fh.is_some() { GETATTR_FH } else { 0 }).u32(0);
    e.u64(fh.unwrap_or(0));
    e.into_bytes()
}

/// `fuse_setattr_in`: what to change. Only the fields named in `valid`
/// count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SetattrIn {
    pub valid: u32,
    pub fh: u64,
    pub size: u64,
    pub atime: u64,
    pub mtime: u64,
    pub atimensec: u32,
    pub mtimensec: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl SetattrIn {
    /// Encoded size.
    pub const SIZE: usize = 88;

    /// The encoded structure.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new();
        e.u32(self.valid).u32(0).u64(self.fh).u64(self.size).u64(0);
        e.u64(self.atime).u64(self.mtime).u64(0);
        e.u32(self.atimensec).u32(self.mtimensec).u32(0);
        e.u32(self.mode).u32(0).u32(self.uid).u32(self.gid).u32(0);
        e.into_bytes()
    }
}

/// `fuse_mknod_in` (then the name).
pub fn mknod_in(mode: u32, rdev: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(mode).u32(rdev).u32(0).u32(0);
    e.into_bytes()
}

/// `fuse_mkdir_in` (then the name).
pub fn mkdir_in(mode: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(mode).u32(0);
    e.into_bytes()
}

/// `fuse_rename2_in` (then both names); `fuse_rename_in` is its first 8
/// bytes.
pub fn rename2_in(newdir: u64, flags: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(newdir).u32(flags).u32(0);
    e.into_bytes()
}

/// `fuse_link_in` (then the new name).
pub fn link_in(oldnodeid: u64) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(oldnodeid);
    e.into_bytes()
}

/// `fuse_open_in`.
pub fn open_in(flags: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(flags).u32(0);
    e.into_bytes()
}

/// `fuse_create_in` (then the name).
pub fn create_in(flags: u32, mode: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(flags).u32(mode).u32(0).u32(0);
    e.into_bytes()
}

/// `fuse_open_out`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOut {
    /// The server's file handle.
    pub fh: u64,
    /// `FOPEN_*` flags.
    pub open_flags: u32,
}

impl OpenOut {
    /// Encoded size.
    pub const SIZE: usize = 16;

    /// Reads the structure.
    pub fn decode(d: &mut Dec<'_>) -> Result<OpenOut, Errno> {
        let o = OpenOut {
            fh: d.u64()?,
            open_flags: d.u32()?,
        };
        d.skip(4)?;
        Ok(o)
    }
}

/// `fuse_release_in`.
pub fn release_in(fh: u64, flags: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(fh).u32(flags).u32(0).u64(0);
    e.into_bytes()
}

/// `fuse_flush_in`.
pub fn flush_in(fh: u64) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(fh).u32(0).u32(0).u64(0);
    e.into_bytes()
}

/// `fuse_read_in` (READ and READDIR).
pub fn read_in(fh: u64, offset: u64, size: u32, flags: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(fh)
        .u64(offset)
        .u32(size)
        .u32(0)
        .u64(0)
        .u32(flags)
        .u32(0);
    e.into_bytes()
}

/// `fuse_write_in` (then the data).
pub fn write_in(fh: u64, offset: u64, size: u32, flags: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(fh)
        .u64(offset)
        .u32(size)
        .u32(0)
        .u64(0)
        .u32(flags)
        .u32(0);
    e.into_bytes()
}

/// `fuse_fsync_in`.
pub fn fsync_in(fh: u64, data_only: bool) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(fh)
        .u32(if data_only { FSYNC_FDATASYNC } else { 0 })
        .u32(0);
    e.into_bytes()
}

/// `fuse_setxattr_in` of the protocol before `SETXATTR_EXT` (then the
/// name and the value).
pub fn setxattr_in(size: u32, flags: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(size).u32(flags);
    e.into_bytes()
}

/// `fuse_getxattr_in` (then the name, for GETXATTR).
pub fn getxattr_in(size: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(size).u32(0);
    e.into_bytes()
}

/// `fuse_access_in`.
pub fn access_in(mask: u32) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(mask).u32(0);
    e.into_bytes()
}

/// `fuse_forget_in`.
pub fn forget_in(nlookup: u64) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(nlookup);
    e.into_bytes()
}

/// `fuse_batch_forget_in` followed by its `fuse_forget_one`s.
pub fn batch_forget_in(nodes: &[(u64, u64)]) -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(nodes.len() as u32).u32(0);
    for &(nodeid, nlookup) in nodes {
        e.u64(nodeid).u64(nlookup);
    }
    e.into_bytes()
}

/// `fuse_kstatfs` inside `fuse_statfs_out`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StatfsOut {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

impl StatfsOut {
    /// Encoded size.
    pub const SIZE: usize = 80;

    /// Reads the structure.
    pub fn decode(d: &mut Dec<'_>) -> Result<StatfsOut, Errno> {
        Ok(StatfsOut {
            blocks: d.u64()?,
            bfree: d.u64()?,
            bavail: d.u64()?,
            files: d.u64()?,
            ffree: d.u64()?,
            bsize: d.u32()?,
            namelen: d.u32()?,
            frsize: d.u32()?,
        })
    }
}

/// One `fuse_dirent` of a READDIR reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dirent<'a> {
    /// Inode number.
    pub ino: u64,
    /// Offset of the next entry (the cookie to continue from).
    pub off: u64,
    /// `DT_*` type.
    pub kind: u32,
    /// The name.
    pub name: &'a [u8],
}

/// One entry at the start of `data` and the length of its record.
///
/// A name that cannot be a directory entry's is `EIO`, as the kernel's
/// FUSE answers it (empty, longer than [`NAME_MAX`], or with a `/`), and
/// so is one with a NUL byte (a program would see it cut there): a
/// server must not make a program see `..`-like paths or names that are
/// not there.
fn dirent(data: &[u8]) -> Result<(Dirent<'_>, usize), Errno> {
    let mut d = Dec::new(data);
    let (ino, off) = (d.u64()?, d.u64()?);
    let (namelen, kind) = (d.u32()? as usize, d.u32()?);
    if namelen == 0 || namelen > NAME_MAX {
        return Err(Errno::EIO);
    }
    let name = d.take(namelen)?;
    if name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(Errno::EIO);
    }
    let rec = (DIRENT_NAME_OFFSET + namelen + 7) & !7;
    let entry = Dirent {
        ino,
        off,
        kind,
        name,
    };
    Ok((entry, rec.min(data.len())))
}

/// The entries of a READDIR reply; a malformed entry ends the list with
/// `EIO`.
pub fn dirents(mut data: &[u8]) -> impl Iterator<Item = Result<Dirent<'_>, Errno>> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        match dirent(data) {
            Ok((e, rec)) => {
                data = &data[rec..];
                Some(Ok(e))
            }
            Err(e) => {
                data = &[];
                Some(Err(e))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_the_kernels() {
        let mut e = Enc::new();
        InHeader::default().encode(&mut e);
        assert_eq!(e.0.len(), InHeader::SIZE);
        let mut e = Enc::new();
        OutHeader::default().encode(&mut e);
        assert_eq!(e.0.len(), OutHeader::SIZE);
        let mut e = Enc::new();
        InitIn::default().encode(&mut e);
        assert_eq!(e.0.len(), InitIn::SIZE);
        let mut e = Enc::new();
        Attr::default().encode(&mut e);
        assert_eq!(e.0.len(), Attr::SIZE);
        let mut e = Enc::new();
        EntryOut::default().encode(&mut e);
        assert_eq!(e.0.len(), EntryOut::SIZE);
        let mut e = Enc::new();
        AttrOut::default().encode(&mut e);
        assert_eq!(e.0.len(), AttrOut::SIZE);
        assert_eq!(SetattrIn::default().encode().len(), SetattrIn::SIZE);
        assert_eq!(getattr_in(None).len(), 16);
        assert_eq!(mknod_in(0, 0).len(), 16);
        assert_eq!(mkdir_in(0).len(), 8);
        assert_eq!(rename2_in(0, 0).len(), 16);
        assert_eq!(link_in(0).len(), 8);
        assert_eq!(open_in(0).len(), 8);
        assert_eq!(create_in(0, 0).len(), 16);
        assert_eq!(release_in(0, 0).len(), 24);
        assert_eq!(flush_in(0).len(), 24);
        assert_eq!(read_in(0, 0, 0, 0).len(), 40);
        assert_eq!(write_in(0, 0, 0, 0).len(), 40);
        assert_eq!(fsync_in(0, true).len(), 16);
        assert_eq!(setxattr_in(0, 0).len(), 8);
        assert_eq!(getxattr_in(0).len(), 8);
        assert_eq!(access_in(0).len(), 8);
        assert_eq!(forget_in(0).len(), 8);
        assert_eq!(batch_forget_in(&[(1, 2), (3, 4)]).len(), 8 + 2 * 16);
    }

    #[test]
    fn replies_decode() {
        let attr = Attr {
            ino: 5,
            size: 1234,
            mode: libc::S_IFREG | 0o640,
            nlink: 2,
            mtime: 99,
            mtimensec: 7,
            ..Attr::default()
        };
        let entry = EntryOut {
            nodeid: 9,
            generation: 3,
            entry_valid: Valid { sec: 1, nsec: 5 },
            attr_valid: Valid { sec: 2, nsec: 6 },
            attr,
        };
        let mut e = Enc::new();
        entry.encode(&mut e);
        assert_eq!(EntryOut::decode(&mut Dec::new(&e.0)), Ok(entry));
        assert_eq!(
            EntryOut::decode(&mut Dec::new(&e.0[..100])),
            Err(Errno::EIO)
        );
        // An init reply of a 7.22 server is 24 bytes.
        let mut e = Enc::new();
        e.u32(7)
            .u32(22)
            .u32(0)
            .u32(init_flags::BIG_WRITES)
            .u32(0)
            .u32(65536);
        let o = InitOut::decode(&mut Dec::new(&e.0)).unwrap();
        assert_eq!((o.minor, o.max_write, o.max_pages), (22, 65536, 0));
    }

    #[test]
    fn dirents_are_padded_to_eight_bytes() {
        let mut e = Enc::new();
        for (i, name) in [&b"."[..], b"..", b"a-long-name"].iter().enumerate() {
            e.u64(10 + i as u64)
                .u64(i as u64 + 1)
                .u32(name.len() as u32);
            e.u32(libc::DT_DIR as u32).bytes(name);
            let pad = (8 - (DIRENT_NAME_OFFSET + name.len()) % 8) % 8;
            e.zeros(pad);
        }
        let all: Vec<_> = dirents(&e.0).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].name, b"a-long-name");
        assert_eq!((all[2].ino, all[2].off), (12, 3));
        // A cut entry is an error, not a read past the end.
        let bad: Vec<_> = dirents(&e.0[..e.0.len() - 8]).collect();
        assert_eq!(bad.last(), Some(&Err(Errno::EIO)));
    }

    /// A server's names that no directory entry can have end the listing
    /// with `EIO` (found by the `fuse_reply` fuzz target's check that a
    /// listing shows only file names).
    #[test]
    fn dirents_with_impossible_names_are_eio() {
        let one = |name: &[u8], namelen: u32| {
            let mut e = Enc::new();
            e.u64(5).u64(1).u32(namelen).u32(libc::DT_REG as u32);
            e.bytes(name)
                .zeros((8 - (DIRENT_NAME_OFFSET + name.len()) % 8) % 8);
            e.into_bytes()
        };
        for (name, len) in [
            (&b"../etc"[..], 6),
            (b"a/b", 3),
            (b"a\0b", 3),
            (b"", 0),
            (&[b'x'; NAME_MAX + 1][..], NAME_MAX as u32 + 1),
        ] {
            let data = one(name, len);
            let all: Vec<_> = dirents(&data).collect();
            assert_eq!(
                all,
                vec![Err(Errno::EIO)],
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
        let data = one(&[b'x'; NAME_MAX], NAME_MAX as u32);
        assert_eq!(
            dirents(&data).next().map(|e| e.map(|e| e.name.len())),
            Some(Ok(NAME_MAX))
        );
    }
}
