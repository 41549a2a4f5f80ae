//! `umfusefat`: FAT12, FAT16 and FAT32 volumes (with VFAT long names),
//! read-write, on a disk image, built on the `fatfs` crate.
//!
//! - [`FatVolume`] is the file system itself: ordinary methods by inode
//!   number (`lookup`, `getattr`, `readdir`, `read`, `write`, `create`,
//!   `mkdir`, `unlink`, `rmdir`, `rename`, `setattr`, `statfs`), which the
//!   tests call directly.
//! - [`FatFs`] is the same volume as a `fuser::Filesystem`, a thin layer
//!   that the FUSE client of this crate serves a view from.
//!
//! FAT has no inode numbers, owners or modes: numbers are handed out per
//! mount and kept across renames (`inodes.rs`); owner and permission bits
//! come from the mount options, as with Linux's vfat (`options.rs`); times
//! are FAT's, read and written as UTC (`time.rs`). Before `fatfs` sees an
//! image, `check.rs` checks its geometry and allocation table, so that a
//! corrupt image answers `EINVAL`/`EIO` instead of crashing or hanging.

mod check;
mod entries;
mod fuse;
mod inodes;
mod modify;
pub(crate) mod options;
mod raw;
pub(crate) mod time;
mod volume;

#[cfg(test)]
pub(crate) mod tests;

pub use fuse::FatFs;
pub use modify::SetAttr;
pub use options::FatOptions;
pub use volume::{DirEntryInfo, FatVolume};
