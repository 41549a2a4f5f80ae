//! [`IsoVolume`]: an ISO 9660 image served by inode number.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use fuser::{FileAttr, FileType, INodeNo};
use viewos_core::fs::FsStat;
use viewos_core::Errno;

use super::descriptor;
use super::names;
use super::options::IsoOptions;
use super::record::{Record, FLAG_MORE, SECTOR};
use super::susp::{self, RockRidge};

/// `statfs`'s magic number for ISO 9660.
const ISOFS_SUPER_MAGIC: u64 = 0x9660;
/// The root's inode number.
const ROOT: u64 = 1;
/// The largest directory read (bytes).
const MAX_DIR_BYTES: u64 = 16 << 20;
/// The deepest directory served.
const MAX_DEPTH: u32 = 1024;
/// The most extents joined into one file.
const MAX_EXTENTS: usize = 4096;

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoEntry {
    /// Inode number.
    pub ino: u64,
    /// File type.
    pub kind: FileType,
    /// Name (bytes: Rock Ridge names need not be UTF-8).
    pub name: Vec<u8>,
}

/// Which names and attributes the volume shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    /// Rock Ridge, its entries after this many bytes of system use.
    Rock(usize),
    /// The Joliet tree.
    Joliet,
    /// Plain ISO 9660 identifiers.
    Plain,
}

/// What the volume knows of a file it has shown.
#[derive(Clone, Debug)]
struct Node {
    kind: FileType,
    /// Data extents: (first sector, bytes).
    extents: Vec<(u32, u32)>,
    size: u64,
    perm: u16,
    nlink: u32,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
    atime: SystemTime,
    ctime: SystemTime,
    symlink: Option<Vec<u8>>,
    parent: u64,
    depth: u32,
}

/// A mounted ISO 9660 image on storage `S`, read-only.
pub struct IsoVolume<S: Read + Seek> {
    disk: S,
    len: u64,
    options: IsoOptions,
    naming: Naming,
    nodes: HashMap<u64, Node>,
}

impl<S: Read + Seek> std::fmt::Debug for IsoVolume<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsoVolume")
            .field("naming", &self.naming)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S: Read + Seek> IsoVolume<S> {
    /// Opens the image on `storage` with the mount `options` (see
    /// [`IsoOptions`]); an image that is not ISO 9660 is `EINVAL`.
    pub fn new(mut disk: S, options: &str) -> Result<Self, Errno> {
        let owner = std::fs::metadata("/proc/self").map_or((0, 0), |m| (m.uid(), m.gid()));
        let options = IsoOptions::parse(options, owner)?;
        let len = disk.seek(SeekFrom::End(0))?;
        let roots = descriptor::read(&mut disk)?;
        let mut vol = IsoVolume {
            disk,
            len,
            options,
            naming: Naming::Plain,
            nodes: HashMap::new(),
        };
        let primary_dot = vol.first_record(&roots.primary)?;
        let mut root = roots.primary;
        if !options.norock {
            let rr = susp::read(&primary_dot.system_use, 0, |_| Ok(Vec::new()))?;
            if let Some(skip) = rr.sp_skip {
                vol.naming = Naming::Rock(usize::from(skip));
            }
        }
        if vol.naming == Naming::Plain && !options.nojoliet {
            if let Some(j) = roots.joliet {
                vol.naming = Naming::Joliet;
                root = j;
            }
        }
        let dot = vol.first_record(&root)?;
        let (_, mut node) = vol.node(&dot, ROOT, 0)?.ok_or(Errno::EIO)?;
        node.kind = FileType::Directory;
        node.parent = ROOT;
        vol.nodes.insert(ROOT, node);
        Ok(vol)
    }

    /// Bytes `off..off+len` of the image (`EIO` beyond its end).
    fn read_at(&mut self, off: u64, len: u64) -> Result<Vec<u8>, Errno> {
        if off.checked_add(len).map_or(true, |end| end > self.len) {
            return Err(Errno::EIO);
        }
        let mut buf = vec![0u8; len as usize];
        self.disk.seek(SeekFrom::Start(off))?;
        self.disk.read_exact(&mut buf).map_err(|_| Errno::EIO)?;
        Ok(buf)
    }

    /// The first record (`.`) of the directory `dir` points at.
    fn first_record(&mut self, dir: &Record) -> Result<Record, Errno> {
        let off = u64::from(dir.extent) * SECTOR;
        let buf = self.read_at(off, 256.min(SECTOR))?;
        Ok(Record::parse(&buf, off)?.0)
    }

    /// The Rock Ridge entries of `rec`.
    fn rock_ridge(&mut self, rec: &Record, skip: usize) -> Result<RockRidge, Errno> {
        susp::read(&rec.system_use, skip, |ce| {
            let off = u64::from(ce.block) * SECTOR + u64::from(ce.offset);
            self.read_at(off, u64::from(ce.len))
        })
    }

    /// The name and node of `rec`, a child of `parent`; `None` for an
    /// entry Rock Ridge hides (a relocated directory's original place).
    fn node(
        &mut self,
        rec: &Record,
        parent: u64,
        depth: u32,
    ) -> Result<Option<(Vec<u8>, Node)>, Errno> {
        let is_dir = rec.is_dir();
        let mut node = Node {
            kind: if is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            extents: vec![(rec.extent, rec.size)],
            size: u64::from(rec.size),
            perm: if is_dir {
                self.options.dmode
            } else {
                self.options.mode
            },
            nlink: if is_dir { 2 } else { 1 },
            uid: self.options.uid,
            gid: self.options.gid,
            mtime: rec.time,
            atime: rec.time,
            ctime: rec.time,
            symlink: None,
            parent,
            depth,
        };
        let name = match self.naming {
            Naming::Plain => names::plain(&rec.name, self.options.map_normal),
            Naming::Joliet => names::joliet(&rec.name),
            Naming::Rock(skip) => {
                let rr = self.rock_ridge(rec, skip)?;
                if rr.relocated {
                    return Ok(None);
                }
                if let Some(sector) = rr.child_link {
                    let target = self.first_record(&Record {
                        extent: sector,
                        ..rec.clone()
                    })?;
                    node.kind = FileType::Directory;
                    node.extents = vec![(target.extent, target.size)];
                    node.size = u64::from(target.size);
                }
                if let Some((mode, nlink, uid, gid)) = rr.px {
                    node.perm = (mode & 0o7777) as u16;
                    node.nlink = nlink.max(1);
                    node.uid = uid;
                    node.gid = gid;
                    node.kind = match mode & libc::S_IFMT {
                        libc::S_IFDIR => FileType::Directory,
                        libc::S_IFLNK => FileType::Symlink,
                        libc::S_IFIFO => FileType::NamedPipe,
                        libc::S_IFSOCK => FileType::Socket,
                        libc::S_IFCHR => FileType::CharDevice,
                        libc::S_IFBLK => FileType::BlockDevice,
                        _ if rr.child_link.is_some() => FileType::Directory,
                        _ => node.kind,
                    };
                }
                if node.kind == FileType::Symlink {
                    let target = rr.symlink.clone().unwrap_or_default();
                    node.size = target.len() as u64;
                    node.extents.clear();
                    node.symlink = Some(target);
                }
                node.mtime = rr.mtime.unwrap_or(node.mtime);
                node.atime = rr.atime.unwrap_or(node.mtime);
                node.ctime = rr.ctime.unwrap_or(node.mtime);
                match rr.name {
                    Some(n) => n,
                    None => names::plain(&rec.name, self.options.map_normal),
                }
            }
        };
        Ok(Some((name, node)))
    }

    /// The inode number of `node`, found through the record `rec`:
    /// a directory's is the offset of its `.`, a file's that of its record.
    fn number(rec: &Record, node: &Node) -> u64 {
        match (node.kind, node.extents.first()) {
            (FileType::Directory, Some(&(extent, _))) => u64::from(extent) * SECTOR,
            _ => rec.offset,
        }
    }

    /// The children of the directory `ino`, with their numbers.
    fn children(&mut self, ino: u64) -> Result<Vec<(u64, Vec<u8>, Node)>, Errno> {
        let dir = self.nodes.get(&ino).ok_or(Errno::ENOENT)?.clone();
        if dir.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if dir.depth >= MAX_DEPTH {
            return Err(Errno::EIO);
        }
        let &(extent, size) = dir.extents.first().ok_or(Errno::EIO)?;
        if u64::from(size) > MAX_DIR_BYTES {
            return Err(Errno::EIO);
        }
        let base = u64::from(extent) * SECTOR;
        let data = self.read_at(base, u64::from(size))?;
        let mut out: Vec<(u64, Vec<u8>, Node)> = Vec::new();
        let mut continues = false;
        let mut pos = 0usize;
        while pos < data.len() {
            if data[pos] == 0 {
                pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            let sector_end = ((pos / SECTOR as usize + 1) * SECTOR as usize).min(data.len());
            let (rec, len) = Record::parse(&data[pos..sector_end], base + pos as u64)?;
            pos += len;
            let more = rec.flags & FLAG_MORE != 0;
            if continues {
                // The next extent of the file before.
                continues = more;
                let last = out.last_mut().ok_or(Errno::EIO)?;
                if last.2.extents.len() >= MAX_EXTENTS {
                    return Err(Errno::EIO);
                }
                last.2.extents.push((rec.extent, rec.size));
                last.2.size += u64::from(rec.size);
                continue;
            }
            continues = more;
            if rec.is_dot() {
                continue;
            }
            let Some((name, node)) = self.node(&rec, ino, dir.depth + 1)? else {
                continue;
            };
            let child = Self::number(&rec, &node);
            if node.kind == FileType::Directory {
                self.check_not_ancestor(ino, node.extents.first().map(|e| e.0))?;
            }
            out.push((child, name, node));
        }
        Ok(out)
    }

    /// `EIO` if `extent` is that of `ino` or one of its ancestors.
    fn check_not_ancestor(&self, mut ino: u64, extent: Option<u32>) -> Result<(), Errno> {
        for _ in 0..=MAX_DEPTH {
            let node = self.nodes.get(&ino).ok_or(Errno::EIO)?;
            if node.extents.first().map(|e| e.0) == extent {
                return Err(Errno::EIO);
            }
            if ino == ROOT {
                return Ok(());
            }
            ino = node.parent;
        }
        Err(Errno::EIO)
    }

    fn attr(&self, ino: u64, node: &Node) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: node.size,
            blocks: node.size.div_ceil(512),
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
            crtime: node.mtime,
            kind: node.kind,
            perm: node.perm,
            nlink: node.nlink,
            uid: node.uid,
            gid: node.gid,
            rdev: 0,
            blksize: SECTOR as u32,
            flags: 0,
        }
    }

    /// The attributes of `ino` (getattr).
    pub fn getattr(&mut self, ino: u64) -> Result<FileAttr, Errno> {
        let node = self.nodes.get(&ino).ok_or(Errno::ENOENT)?;
        Ok(self.attr(ino, node))
    }

    /// The file called `name` in the directory `parent` (lookup).
    pub fn lookup(&mut self, parent: u64, name: &[u8]) -> Result<FileAttr, Errno> {
        match name {
            b"." => return self.getattr(parent),
            b".." => {
                let up = self.nodes.get(&parent).ok_or(Errno::ENOENT)?.parent;
                return self.getattr(up);
            }
            _ => {}
        }
        let found = self
            .children(parent)?
            .into_iter()
            .find(|(_, n, _)| n == name);
        let (ino, _, node) = found.ok_or(Errno::ENOENT)?;
        let attr = self.attr(ino, &node);
        self.nodes.insert(ino, node);
        Ok(attr)
    }

    /// The entries of the directory `ino`, `.` and `..` first (readdir).
    pub fn readdir(&mut self, ino: u64) -> Result<Vec<IsoEntry>, Errno> {
        let children = self.children(ino)?;
        let up = self.nodes.get(&ino).ok_or(Errno::ENOENT)?.parent;
        let mut out = vec![
            IsoEntry {
                ino,
                kind: FileType::Directory,
                name: b".".to_vec(),
            },
            IsoEntry {
                ino: up,
                kind: FileType::Directory,
                name: b"..".to_vec(),
            },
        ];
        for (child, name, node) in children {
            out.push(IsoEntry {
                ino: child,
                kind: node.kind,
                name,
            });
            self.nodes.insert(child, node);
        }
        Ok(out)
    }

    /// Up to `size` bytes of the file `ino` from `offset` (read).
    pub fn read(&mut self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let node = self.nodes.get(&ino).ok_or(Errno::ENOENT)?.clone();
        match node.kind {
            FileType::Directory => return Err(Errno::EISDIR),
            FileType::RegularFile => {}
            _ => return Err(Errno::EINVAL),
        }
        let end = node.size.min(offset.saturating_add(u64::from(size)));
        let mut out = Vec::new();
        let mut start = 0u64;
        for (extent, len) in node.extents {
            let (lo, hi) = (start, start + u64::from(len));
            start = hi;
            if hi <= offset || lo >= end {
                continue;
            }
            let from = offset.max(lo) - lo;
            let to = end.min(hi) - lo;
            let base = u64::from(extent) * SECTOR;
            out.extend(self.read_at(base + from, to - from)?);
        }
        Ok(out)
    }

    /// The target of the symlink `ino` (readlink).
    pub fn readlink(&mut self, ino: u64) -> Result<Vec<u8>, Errno> {
        let node = self.nodes.get(&ino).ok_or(Errno::ENOENT)?;
        node.symlink.clone().ok_or(Errno::EINVAL)
    }

    /// Sizes (statfs): the image in sectors, none free.
    pub fn statfs(&mut self) -> Result<FsStat, Errno> {
        Ok(FsStat {
            fs_type: ISOFS_SUPER_MAGIC,
            block_size: SECTOR,
            blocks: self.len / SECTOR,
            name_max: 255,
            fragment_size: SECTOR,
            flags: libc::ST_RDONLY,
            ..FsStat::default()
        })
    }
}
