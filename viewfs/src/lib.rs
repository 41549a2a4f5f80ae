//! # viewfs: reshaping the file tree of a view
//!
//! `mount -t viewfs -o MODE[,OPTIONS] SOURCE TARGET` (or `viewmount` in a
//! view, or `umview -p viewfs,MODE,source=SOURCE,target=TARGET`) changes
//! what the view shows at TARGET, and nothing outside the view:
//!
//! | mode | TARGET shows | changes go to |
//! |---|---|---|
//! | `move` (default) | SOURCE's tree | SOURCE |
//! | `hide` | nothing (`ENOENT`) | - |
//! | `merge` | SOURCE over TARGET, directories merged | the layer holding the name |
//! | `cow` | TARGET as it is, then as changed | SOURCE, a layer with whiteouts ([`whiteout`]) |
//! | `mincow` | the same | TARGET where the user may write, SOURCE otherwise |
//!
//! `mode=OCTAL`, `uid=N`, `gid=N` and `rules=FILE` redefine permissions
//! over any mode ([`perm`], [`rules`]); `except=PATH[:PATH]` leaves
//! sub-paths of TARGET out ([`except`]). The options are listed in
//! [`options`].
//!
//! Every mode does its I/O through the view below its mount (the `io`
//! handed to [`viewos_core::Service::mount`], see [`layer`]), so viewfs
//! mounts stack on each other and on other modules' mounts.
//!
//! ## Pieces
//! - [`service`]: the [`ViewFs`] service and the checks of a mount request;
//! - [`options`]: option strings; [`source`]: SOURCE resolved and checked;
//! - [`layer`]: a tree of the view below; [`listing`]: served listings;
//! - one file per mode: [`move_fs`], [`hide`], [`merge`], [`cow`] (with
//!   [`cow_lookup`], [`copy_up`], [`cow_file`] and [`whiteout`]);
//! - [`perm`] and [`access`]: redefined permissions and the checks they
//!   need; [`except`]: paths left out; [`path_fds`]: `O_PATH` opens as
//!   fds the host can install.
//!
//! ## Limits of the host API
//! - Access checks ([`perm`], `mincow`) are for the program making the
//!   call as the host tells it (`viewos_core::creds::Creds::caller`: its
//!   identity in a view with `--root-id` or `-s`, else its real ids).
//! - Files and untouched TARGET directories a mode hands over as real fds
//!   are the kernel's from then on: `fchmod`, `fchown`, `futimens` or
//!   `fsetxattr` on a read-only fd of a cow mount's TARGET file would
//!   reach TARGET. `-o served` makes cow serve them ([`cow_file`]).
//! - A mount cannot take a name out of its real parent's listing: a
//!   hidden TARGET is `ENOENT` but still listed in its parent.
//! - Programs cannot yet be run from a tree mounted on `/` (the host
//!   resolves its own exec rewrite through the mount, and the kernel loads
//!   the ELF interpreter from the real root).
//! - A layer must not be changed by others while it is mounted (lookups
//!   remember what they found, as overlayfs does).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod copy_up;
pub mod cow;
pub mod cow_file;
pub mod cow_lookup;
pub mod except;
pub mod hide;
pub mod layer;
pub mod listing;
pub mod merge;
pub mod move_fs;
pub mod options;
pub mod path_fds;
pub mod perm;
pub mod rules;
pub mod service;
pub mod source;
pub mod whiteout;

#[cfg(test)]
mod testdir;

pub use service::ViewFs;
