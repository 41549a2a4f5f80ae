//! # um-binfmt: binfmt_misc at user level
//!
//! `mount -t umbinfmt none /proc/sys/fs/binfmt_misc` shows a virtual
//! `register` and `status` and one file per entry, with the kernel's
//! binfmt_misc syntax (`:name:type:offset:magic:mask:interpreter:flags`).
//! An exec inside the view of a matching file runs the registered
//! interpreter, for example `qemu-aarch64` for foreign binaries, without any
//! entry on the host.
//!
//! It depends only on `viewos-core`.
//!
//! Status: the crate is a workspace member with its place in the
//! architecture; the service itself is tracked by its own issue.

#![deny(unsafe_code)]
