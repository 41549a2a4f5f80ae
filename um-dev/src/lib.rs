//! # um-dev: virtual devices and ioctls
//!
//! `mount -t umdevTYPE [-o opts] SOURCE TARGET` creates device special files
//! that exist only in the view: `umdevmbr` (a disk image as a partitioned
//! block device, MBR and GPT), `umdevramdisk`, `umdevnull`, `umdevtrivhd`
//! (a 64 KiB RAM character device) and `umdevtap` (a virtual
//! `/dev/net/tun` whose other side is a VDE switch). ioctls on these devices
//! reach the service with their arguments copied in and out.
//!
//! It depends only on `viewos-core`.
//!
//! Status: the crate is a workspace member with its place in the
//! architecture; the service itself is tracked by its own issue.

#![deny(unsafe_code)]
