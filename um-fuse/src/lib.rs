//! # um-fuse: user-level file systems in a view
//!
//! This crate will speak the FUSE protocol (as the kernel's `fuse_kernel.h`
//! defines it) from the client side, entirely in user space, so that:
//! - any `fuser::Filesystem` serves a view unchanged (registered under a
//!   type name `umfuseNAME`, mounted with `mount -t umfuseNAME`);
//! - unmodified FUSE programs (fuse2fs, squashfuse, fuse-zip) running
//!   inside the view talk to a virtual `/dev/fuse` and serve the view;
//! - built-in submodules (`umfuseext2`, `umfusefat`, `umfuseiso9660`,
//!   `umfusenull`, `umfusereal`) mount disk images without root.
//!
//! It depends only on `viewos-core`: the host that intercepts system calls
//! turns them into core requests, and this crate answers them.
//!
//! Status: the crate is a workspace member with its place in the
//! architecture; the service itself is tracked by its own issue.

#![deny(unsafe_code)]

/// Built-in submodules, each a `fuser::Filesystem` on a disk image:
/// `umfusefat` (FAT12/16/32, read-write) and `umfuseiso9660` (read-only).
pub mod fat;
pub mod iso9660;
