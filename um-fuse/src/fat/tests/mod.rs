//! Tests against images made and checked by the real tools: `mkfs.vfat`
//! and `fsck.fat` (dosfstools), `mcopy`/`mmd`/`mtype`/`mdir` (mtools).

pub(crate) mod support;

mod corrupt;
mod read;
mod write;
