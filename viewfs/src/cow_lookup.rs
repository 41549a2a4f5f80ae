//! Where a path of a copy-on-write mount is: in the layer (SOURCE), in
//! TARGET, or both (a merged directory), with whiteouts and opaque
//! directories applied (see [`crate::whiteout`]).
//!
//! A lookup walks the layer from its root while the layer has the
//! directories on the way, so a path in an untouched part of TARGET costs
//! a few failing lookups in the layer and one in TARGET.

use std::path::{Component, Path, PathBuf};

use viewos_core::{Errno, FileStat};

use crate::layer::Layer;
use crate::whiteout;

/// What a copy-on-write mount has at one path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// The layer's entry (markers are not entries).
    pub upper: Option<FileStat>,
    /// TARGET's entry, unless a whiteout or an opaque directory above
    /// hides it. Shown when the layer has no entry, merged when both are
    /// directories and the layer's is not opaque.
    pub lower: Option<FileStat>,
    /// The layer's directory here is marked opaque.
    pub opaque: bool,
}

impl Node {
    /// What the view shows, if anything. A merged directory reports the
    /// layer's status with TARGET's device and inode (stable whether or
    /// not the layer has the directory yet) and a link count of 1
    /// ("unknown", as btrfs does: its subdirectories are not counted).
    pub fn stat(&self) -> Option<FileStat> {
        match (self.upper, self.lower) {
            (Some(mut u), Some(l)) if self.merged() => {
                u.dev = l.dev;
                u.ino = l.ino;
                u.nlink = 1;
                Some(u)
            }
            (Some(u), _) => Some(u),
            (None, l) => l,
        }
    }

    /// True if the view shows something here.
    pub fn exists(&self) -> bool {
        self.upper.is_some() || self.lower.is_some()
    }

    /// True if both have directories here and TARGET's shows through.
    pub fn merged(&self) -> bool {
        self.upper.is_some_and(|u| u.is_dir())
            && self.lower.is_some_and(|l| l.is_dir())
            && !self.opaque
    }

    /// True if what the view shows is TARGET's alone.
    pub fn lower_only(&self) -> bool {
        self.upper.is_none() && self.lower.is_some()
    }

    /// True if TARGET shows through this directory (its entries are
    /// listed).
    pub fn lower_listed(&self) -> bool {
        self.lower.is_some_and(|l| l.is_dir()) && (self.upper.is_none() || self.merged())
    }
}

/// Looks `p` up in `upper` (the layer) over `lower` (TARGET).
pub fn find(upper: &Layer, lower: &Layer, p: &Path) -> Result<Node, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let names: Vec<&std::ffi::OsStr> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let root = Path::new("/");
    let upper_root = upper.lstat_opt(root)?.filter(|s| s.is_dir());
    // The layer has the directory reached so far.
    let mut upper_here = upper_root.is_some();
    // TARGET is not hidden above.
    let mut lower_ok = !(upper_here && whiteout::is_opaque(upper, root)?);
    if names.is_empty() {
        let lower_st = if lower_ok {
            lower.lstat_opt(root)?
        } else {
            None
        };
        let opaque = upper_here && !lower_ok;
        return Ok(Node {
            upper: upper_root,
            lower: lower_st,
            opaque,
        });
    }
    let mut cur = PathBuf::from("/");
    let last = names.len() - 1;
    for (i, name) in names.iter().enumerate() {
        cur.push(name);
        let reserved = whiteout::is_reserved(name.as_bytes());
        let up = if upper_here && !reserved {
            upper.lstat_opt(&cur)?
        } else {
            None
        };
        if i < last {
            match up {
                Some(st) if st.is_dir() => {
                    if lower_ok && whiteout::is_opaque(upper, &cur)? {
                        lower_ok = false;
                    }
                }
                Some(_) => return Err(Errno::ENOTDIR),
                None => {
                    if upper_here && lower_ok && whiteout::is_whiteout(upper, &cur)? {
                        return Err(Errno::ENOENT);
                    }
                    upper_here = false;
                }
            }
            continue;
        }
        let mut lower_st = if lower_ok {
            lower.lstat_opt(&cur)?
        } else {
            None
        };
        if up.is_none() && upper_here && lower_st.is_some() && whiteout::is_whiteout(upper, &cur)? {
            lower_st = None;
        }
        let opaque = up.is_some_and(|u| u.is_dir())
            && lower_st.is_some_and(|l| l.is_dir())
            && whiteout::is_opaque(upper, &cur)?;
        return Ok(Node {
            upper: up,
            lower: lower_st,
            opaque,
        });
    }
    Err(Errno::ENOENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::sync::Arc;
    use viewos_core::real::RealFs;

    fn layers(t: &TestDir) -> (Layer, Layer) {
        (
            Layer::new(Arc::new(RealFs), t.join("up")),
            Layer::new(Arc::new(RealFs), t.join("low")),
        )
    }

    #[test]
    fn layer_over_target_with_whiteouts_and_opaque_dirs() {
        let t = TestDir::new("cow-lookup");
        t.write("low/a/f", "lower");
        t.write("low/a/gone", "x");
        t.write("low/b/old", "x");
        t.write("low/file", "x");
        t.write("up/a/f", "upper!");
        t.write("up/a/.wh.gone", "");
        t.write("up/b/.wh..wh..opq", "");
        t.write("up/b/new", "n");
        t.write("up/.wh.file", "");
        let (up, low) = layers(&t);
        let f = |p: &str| find(&up, &low, Path::new(p)).unwrap();
        assert!(f("/a").merged());
        assert_eq!(f("/a/f").stat().unwrap().size, 6);
        assert!(!f("/a/gone").exists());
        assert!(!f("/file").exists());
        assert!(f("/b").opaque && !f("/b").merged());
        assert!(!f("/b/old").exists());
        assert!(f("/b/new").exists());
        // A merged directory has TARGET's inode.
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(t.join("low/a")).unwrap().ino();
        assert_eq!(f("/a").stat().unwrap().ino, ino);
        // Untouched parts are TARGET's.
        t.write("low/deep/er/x", "x");
        assert!(f("/deep/er/x").lower_only());
        // Markers are not entries.
        assert!(!f("/a/.wh.gone").exists());
        assert!(f("/").merged());
        assert_eq!(find(&up, &low, Path::new("/a/f/x")), Err(Errno::ENOTDIR));
    }
}
