//! # um-dev: virtual devices and ioctls
//!
//! `mount -t umdevTYPE [-o opts] SOURCE TARGET` makes device special files
//! that exist only in the view; the real file system is untouched.
//!
//! | type | device |
//! |---|---|
//! | `umdevmbr` | SOURCE, a disk image, as a block device (major 3) whose partitions (MBR primary and logical, GPT) appear as `TARGET1`, `TARGET2`, ...; tools change the table from inside the view (`sfdisk`, `fdisk`) and the nodes follow it at `BLKRRPART` and `BLKPG` |
//! | `umdevramdisk` | a RAM disk (block major 1) of `-o size=N`, partitionable as `umdevmbr` with `-o mbr` |
//! | `umdevnull` | a null device (char 1:3, as `/dev/null`) |
//! | `umdevtrivhd` | 64 KiB of memory as a character device (major 60) |
//! | `umdevtap` | a `/dev/net/tun` (char 10:200) whose TAP interfaces are ports of the VDE switch of `-o vde=URL` |
//!
//! Options are in [`options`]; `-o debug` logs every request on stderr.
//!
//! ## Layout
//!
//! - [`service`]: the `umdev` service, which makes a device per mount;
//! - [`node`]: the mount's file system: the device nodes, their
//!   attributes and permission checks, over a [`node::Device`];
//! - [`disk`]: block devices (whole disk and partitions) over a
//!   [`store`] (an image of the view, or memory), and [`blkioctl`], the
//!   block ioctls that partitioning and mkfs tools use;
//! - [`table`]: partition tables (MBR, GPT), read as the kernel reads
//!   them;
//! - [`chardev`]: the null and trivhd character devices;
//! - [`tap`]: the tap device, over [`viewos_core::vde`] ports;
//! - [`numbers`]: device numbers.
//!
//! ioctls on the devices reach their handles with their arguments copied
//! in and out by the size the request encodes or the handle declares
//! (`viewos_core::IoctlArg`); requests a device does not know are
//! `ENOTTY`.
//!
//! It depends only on `viewos-core`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod blkioctl;
pub mod chardev;
pub mod disk;
pub mod node;
pub mod numbers;
pub mod options;
pub mod service;
pub mod store;
pub mod table;
pub mod tap;

pub use service::UmDev;
