//! `umfuseiso9660`: ISO 9660 images (CD/DVD), read-only.
//!
//! - [`IsoVolume`] is the file system itself:
//!   ordinary methods by inode number, which the tests call directly.
//! - [`IsoFs`] is the same volume as a
//!   `fuser::Filesystem`; every change answers `EROFS`.
//!
//! Names, modes, owners, links and times come from Rock Ridge (IEEE P1282,
//! on SUSP P1281: `NM`, `PX`, `SL`, `TF`, `CE`, `CL`/`RE`) when the image
//! has it; else names come from the Joliet tree (UCS-2); else from the
//! plain ISO names, with the `;1` version cut and lowercased as Linux's
//! `map=normal` does. Files of several extents are joined. Every offset
//! read from the image is checked and every loop bounded, so a corrupt
//! image answers `EIO`/`EINVAL`.
//!
//! The layout follows ECMA-119: `descriptor.rs` (volume descriptors),
//! `record.rs` (directory records), `susp.rs` (system use entries),
//! `names.rs` (plain and Joliet names), `volume.rs` (the tree and inode
//! numbers: the byte offset of a file's record, or of a directory's `.`).

mod descriptor;
mod fuse;
mod names;
pub(crate) mod options;
mod record;
mod susp;
mod volume;

#[cfg(test)]
mod tests;

pub use fuse::IsoFs;
pub use options::IsoOptions;
pub use volume::{IsoEntry, IsoVolume};
