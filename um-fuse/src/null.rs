//! `umfusenull`: an empty, unchangeable directory (`mount -t umfusenull
//! none /mnt`). Every creation in it is `EROFS`. The smallest complete
//! `fuser::Filesystem`, and a way to hide a directory's contents.

use std::ffi::OsStr;
use std::time::{Duration, SystemTime};

use fuser::{
    FileAttr, FileType, Filesystem, INodeNo, ReplyAttr, ReplyDirectory, ReplyEntry, Request,
};

const TTL: Duration = Duration::from_secs(3600);

/// The empty tree (see the module docs).
pub struct NullFs {
    root: FileAttr,
}

impl NullFs {
    /// A new empty tree, owned by the view's user, made now.
    pub fn new() -> NullFs {
        let now = SystemTime::now();
        NullFs {
            root: FileAttr {
                ino: INodeNo(1),
                size: 0,
                blocks: 0,
                atime: now,
                mtime: now,
                ctime: now,
                crtime: now,
                kind: FileType::Directory,
                perm: 0o555,
                nlink: 2,
                uid: nix::unistd::getuid().as_raw(),
                gid: nix::unistd::getgid().as_raw(),
                rdev: 0,
                blksize: 4096,
                flags: 0,
            },
        }
    }
}

impl Default for NullFs {
    fn default() -> NullFs {
        NullFs::new()
    }
}

impl Filesystem for NullFs {
    fn lookup(&self, _: &Request, _: INodeNo, _: &OsStr, reply: ReplyEntry) {
        reply.error(fuser::Errno::ENOENT);
    }

    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<fuser::FileHandle>, reply: ReplyAttr) {
        if ino == INodeNo(1) {
            reply.attr(&TTL, &self.root);
        } else {
            reply.error(fuser::Errno::ENOENT);
        }
    }

    fn mkdir(&self, _: &Request, _: INodeNo, _: &OsStr, _: u32, _: u32, reply: ReplyEntry) {
        reply.error(fuser::Errno::EROFS);
    }

    fn mknod(&self, _: &Request, _: INodeNo, _: &OsStr, _: u32, _: u32, _: u32, reply: ReplyEntry) {
        reply.error(fuser::Errno::EROFS);
    }

    fn symlink(&self, _: &Request, _: INodeNo, _: &OsStr, _: &std::path::Path, reply: ReplyEntry) {
        reply.error(fuser::Errno::EROFS);
    }

    fn create(
        &self,
        _: &Request,
        _: INodeNo,
        _: &OsStr,
        _: u32,
        _: u32,
        _: i32,
        reply: fuser::ReplyCreate,
    ) {
        reply.error(fuser::Errno::EROFS);
    }

    fn readdir(
        &self,
        _: &Request,
        ino: INodeNo,
        _: fuser::FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino != INodeNo(1) {
            return reply.error(fuser::Errno::ENOTDIR);
        }
        for (i, name) in [".", ".."].iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(1), i as u64 + 1, FileType::Directory, name) {
                break;
            }
        }
        reply.ok();
    }
}
