//! # viewfs: reshaping the file tree of a view
//!
//! `mount -t viewfs -o MODE SOURCE TARGET` with modes `move` (TARGET shows
//! SOURCE, including an unprivileged chroot when TARGET is `/`), `hide`,
//! `merge`, `cow` and `mincow` (copy-on-write layers with whiteouts), and
//! permission redefinition (`mode=`, `uid=`, `gid=`). The real file system
//! is never modified outside a cow layer.
//!
//! It depends only on `viewos-core`.
//!
//! Status: the crate is a workspace member with its place in the
//! architecture; the service itself is tracked by its own issue.

#![deny(unsafe_code)]
