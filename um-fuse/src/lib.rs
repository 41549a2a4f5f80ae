//! # um-fuse: user-level file systems in a view
//!
//! `umview -p umfuse` (or `um_add_service umfuse`) lets programs in a view
//! `mount -t umfuseNAME SOURCE TARGET`: the file system NAME, a FUSE
//! server, then serves TARGET for the view, and nothing changes outside
//! it. No kernel FUSE, no `/dev/fuse`, no root.
//!
//! The pieces, client side first:
//! - [`proto`] and [`wire`]: the kernel's FUSE protocol (7.31), encoded
//!   and decoded field by field;
//! - [`connection`]: a [`Connection`](connection::Connection) to a FUSE
//!   server over an `AF_UNIX` `SOCK_SEQPACKET` pair (one message = one
//!   request or reply, as on `/dev/fuse`): the INIT handshake, many
//!   requests in flight (the waiting threads receive the replies
//!   themselves), `ENOTCONN` when the server is gone;
//! - [`fuse_fs`], [`file`](mod@file), [`nodes`], [`client`], [`perm`]: the
//!   server's tree as a `viewos_core::FileSystem` (path to node id by
//!   LOOKUP, open files served by READ/WRITE/READDIR);
//! - [`cache`]: the page cache, a memfd per file whose valid prefix the
//!   program reads directly (`viewos_core::handle::Extent`), kept
//!   coherent as the kernel's FUSE keeps its own;
//! - [`serve`]: an in-process [`fuser::Filesystem`] as the server of a
//!   mount, unchanged;
//! - [`service`]: the [`UmFuse`] service and its submodules; [`options`]:
//!   mount options (`ro`, `human`, `uid=`, `gid=`, `debug`, ...);
//! - built-in submodules: [`null`] (`umfusenull`, an empty directory),
//!   [`real`] (`umfusereal`, a directory of the view served through FUSE),
//!   [`fat`] (`umfusefat`) and [`iso9660`] (`umfuseiso9660`) on images
//!   opened through the view ([`image`]);
//! - [`dev_fuse`]: the view's `/dev/fuse` and the mounts of unmodified FUSE
//!   programs (`fuse2fs`);
//! - [`program`]: submodules served by such a program that the view starts
//!   for the user (`umfuseext2`, `umfuseext3`, `umfuseext4`: `fuse2fs`).
//!
//! ## A file system of your own
//!
//! Any `fuser::Filesystem` (fuser 0.18) serves a view unchanged. Register
//! it under a name and `mount -t umfuseNAME` makes a new one for each
//! mount, from the mount request and the view below the mount (`io`, for
//! its own file I/O). This one shows a single file, `hello`:
//!
//! ```
//! use std::ffi::OsStr;
//! use std::path::Path;
//! use std::sync::Arc;
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! use fuser::{FileAttr, FileType, Filesystem, INodeNo, ReplyAttr, ReplyData, ReplyEntry, Request};
//! use um_fuse::UmFuse;
//! use viewos_core::{Errno, FileSystem, MountRequest, Opened, View, ViewConfig};
//!
//! struct Hello;
//!
//! fn attr(ino: u64) -> FileAttr {
//!     let (kind, perm, size) = match ino {
//!         1 => (FileType::Directory, 0o555, 0),
//!         _ => (FileType::RegularFile, 0o444, 6),
//!     };
//!     FileAttr {
//!         ino: INodeNo(ino), size, blocks: 0, atime: UNIX_EPOCH, mtime: UNIX_EPOCH,
//!         ctime: UNIX_EPOCH, crtime: UNIX_EPOCH, kind, perm, nlink: 1, uid: 0, gid: 0,
//!         rdev: 0, blksize: 4096, flags: 0,
//!     }
//! }
//!
//! impl Filesystem for Hello {
//!     fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
//!         if parent == INodeNo(1) && name == "hello" {
//!             reply.entry(&Duration::from_secs(1), &attr(2), fuser::Generation(0));
//!         } else {
//!             reply.error(fuser::Errno::ENOENT);
//!         }
//!     }
//!     fn getattr(&self, _: &Request, ino: INodeNo, _: Option<fuser::FileHandle>, reply: ReplyAttr) {
//!         reply.attr(&Duration::from_secs(1), &attr(ino.0));
//!     }
//!     fn read(&self, _: &Request, _: INodeNo, _: fuser::FileHandle, offset: u64, _: u32,
//!             _: fuser::OpenFlags, _: Option<fuser::LockOwner>, reply: ReplyData) {
//!         reply.data(&b"hello\n"[(offset as usize).min(6)..]);
//!     }
//! }
//!
//! // The service a host registers (`umview -p umfuse`), with `umfusehello`
//! // next to the built-in submodules.
//! let service = UmFuse::builder()
//!     .filesystem("hello", |_req: &MountRequest, _io: Arc<dyn FileSystem>| Ok(Hello))
//!     .build();
//!
//! // What `mount -t umfusehello none /mnt` does in a view:
//! let mut view = View::new(ViewConfig::default());
//! view.add_service(Box::new(service))?;
//! view.mount(MountRequest {
//!     source: "none".into(),
//!     target: "/mnt".into(),
//!     fstype: "umfusehello".into(),
//!     ..MountRequest::default()
//! })?;
//! let (mount, rel) = view.mounts().lookup(Path::new("/mnt/hello")).unwrap();
//! assert_eq!(mount.fs.lstat(&rel)?.size, 6);
//! let Opened::Served(file) = mount.fs.open(&rel, libc::O_RDONLY, 0)? else { unreachable!() };
//! let mut buf = [0u8; 16];
//! assert_eq!(file.read(0, &mut buf)?, 6);
//! assert_eq!(&buf[..6], b"hello\n");
//! # Ok::<(), Errno>(())
//! ```
//!
//! To ship such a service as a library that `umview -p ./libx.so` loads,
//! see `viewos_core::module`.
//!
//! ## Limits
//! - The host's requests carry no caller credentials: `human` mounts
//!   check permissions for the view's user (the host process's real ids,
//!   or the mount's `uid=`/`gid=`), and every request carries those ids.
//! - Every call on an open file of a mount stops at the host (files are
//!   served, never real fds; cached bytes are then read by the program
//!   itself from the cache's memfd); `mmap` of such a file is a copy made
//!   by the host.
//! - Unmodified FUSE programs ([`dev_fuse`]): the program's first FUSE
//!   request is answered when the mount is first used; a call on the mount
//!   made by the host's tracer thread (chdir into it as the very first
//!   call) waits there for the program, which may itself need that thread.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod attr;
pub mod cache;
pub mod client;
pub mod connection;
pub mod dev_fuse;
pub mod fat;
pub mod file;
pub mod fuse_fs;
pub mod image;
pub mod iso9660;
pub mod nodes;
pub mod null;
pub mod options;
pub mod perm;
pub mod program;
pub mod proto;
pub mod real;
pub mod serve;
pub mod service;
pub mod wire;

#[cfg(test)]
mod testing;

pub use service::UmFuse;

/// Entry points for the fuzz targets of `fuzz/` into private modules: the
/// option parsers of the built-in submodules. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use viewos_core::Errno;

    /// `umfusefat`'s `-o` options (`uid=`, `gid=`, `umask=`, ...).
    pub fn fat_options(options: &str) -> Result<(), Errno> {
        crate::fat::options::FatOptions::parse(options, (0, 0)).map(drop)
    }

    /// `umfuseiso9660`'s `-o` options (`mode=`, `map=`, `norock`, ...).
    pub fn iso9660_options(options: &str) -> Result<(), Errno> {
        crate::iso9660::options::IsoOptions::parse(options, (0, 0)).map(drop)
    }
}
