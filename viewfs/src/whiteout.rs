//! The on-disk format of a copy-on-write layer's whiteouts and opaque
//! directories.
//!
//! A `cow` or `mincow` layer (the mount's SOURCE) holds the changed files
//! at their paths, and two kinds of markers, both empty regular files:
//!
//! - `DIR/.wh.NAME`, a *whiteout*: `NAME` was removed from `DIR` in the
//!   view, so the TARGET's `DIR/NAME` is not shown. A whiteout counts only
//!   while the layer has no `DIR/NAME` of its own.
//! - `DIR/.wh..wh..opq`, an *opaque* mark: the layer's `DIR` replaced the
//!   TARGET's (it was removed and made again), so nothing of the TARGET's
//!   `DIR` shows through.
//!
//! These are the names of the OCI image layer format (and aufs), so a
//! layer can be read by tools that know it, and plain files, so it
//! survives any file system, `cp -a`, `tar`, and being mounted again
//! later. Names starting with `.wh.` are therefore reserved in a layer: a
//! program in the view cannot make one (`EINVAL`), and a whiteout of a
//! name longer than 251 bytes cannot be written (`ENAMETOOLONG`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use viewos_core::Errno;

use crate::layer::{name_of, parent_of, Layer};

/// The prefix of every marker name.
pub const PREFIX: &[u8] = b".wh.";
/// The opaque mark of a directory.
pub const OPAQUE: &[u8] = b".wh..wh..opq";
/// The longest name a file system takes.
const NAME_MAX: usize = 255;

/// True for names a layer keeps for its markers.
pub fn is_reserved(name: &[u8]) -> bool {
    name.starts_with(PREFIX)
}

/// The name a whiteout marker in a listing hides (`None` for other names
/// and for the opaque mark).
pub fn hidden_by(marker: &[u8]) -> Option<&[u8]> {
    if marker == OPAQUE {
        return None;
    }
    marker.strip_prefix(PREFIX)
}

/// The whiteout marker of `p` (`/a/b` gives `/a/.wh.b`).
pub fn marker_of(p: &Path) -> Result<PathBuf, Errno> {
    let name = name_of(p);
    if name.is_empty() {
        return Err(Errno::EBUSY);
    }
    if name.len() + PREFIX.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut m = PREFIX.to_vec();
    m.extend_from_slice(name);
    Ok(parent_of(p).join(OsStr::from_bytes(&m)))
}

/// The opaque mark inside the directory `dir`.
pub fn opaque_of(dir: &Path) -> PathBuf {
    dir.join(OsStr::from_bytes(OPAQUE))
}

/// True if `upper` holds a whiteout of `p`.
pub fn is_whiteout(upper: &Layer, p: &Path) -> Result<bool, Errno> {
    match marker_of(p) {
        Ok(m) => Ok(upper.lstat_opt(&m)?.is_some()),
        Err(_) => Ok(false),
    }
}

/// True if `upper`'s directory `dir` is marked opaque.
pub fn is_opaque(upper: &Layer, dir: &Path) -> Result<bool, Errno> {
    Ok(upper.lstat_opt(&opaque_of(dir))?.is_some())
}

/// Writes a whiteout of `p` (its parent must be in `upper`).
pub fn add(upper: &Layer, p: &Path) -> Result<(), Errno> {
    upper.touch(&marker_of(p)?)
}

/// Removes the whiteout of `p`, if any.
pub fn remove(upper: &Layer, p: &Path) -> Result<(), Errno> {
    match marker_of(p) {
        Ok(m) => upper.remove_if_there(&m),
        Err(_) => Ok(()),
    }
}

/// Marks `upper`'s directory `dir` opaque.
pub fn make_opaque(upper: &Layer, dir: &Path) -> Result<(), Errno> {
    upper.touch(&opaque_of(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::sync::Arc;
    use viewos_core::real::RealFs;

    #[test]
    fn marker_names() {
        assert_eq!(marker_of(Path::new("/a/b")).unwrap(), Path::new("/a/.wh.b"));
        assert_eq!(marker_of(Path::new("/b")).unwrap(), Path::new("/.wh.b"));
        assert_eq!(marker_of(Path::new("/")), Err(Errno::EBUSY));
        let long = format!("/{}", "x".repeat(252));
        assert_eq!(marker_of(Path::new(&long)), Err(Errno::ENAMETOOLONG));
        assert_eq!(hidden_by(b".wh.b"), Some(&b"b"[..]));
        assert_eq!(hidden_by(OPAQUE), None);
        assert_eq!(hidden_by(b"b"), None);
        assert!(is_reserved(b".wh.x") && !is_reserved(b".whx"));
        assert_eq!(opaque_of(Path::new("/d")), Path::new("/d/.wh..wh..opq"));
    }

    #[test]
    fn markers_are_plain_files_in_the_layer() {
        let t = TestDir::new("whiteout");
        t.mkdir("d");
        let up = Layer::new(Arc::new(RealFs), t.path());
        assert!(!is_whiteout(&up, Path::new("/d/f")).unwrap());
        add(&up, Path::new("/d/f")).unwrap();
        assert!(t.join("d/.wh.f").is_file());
        assert!(is_whiteout(&up, Path::new("/d/f")).unwrap());
        remove(&up, Path::new("/d/f")).unwrap();
        remove(&up, Path::new("/d/f")).unwrap();
        assert!(!is_whiteout(&up, Path::new("/d/f")).unwrap());
        make_opaque(&up, Path::new("/d")).unwrap();
        assert!(is_opaque(&up, Path::new("/d")).unwrap());
        assert!(!is_opaque(&up, Path::new("/")).unwrap());
    }
}
