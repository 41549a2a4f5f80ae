//! Where a path of a copy-on-write mount is: in the layer (SOURCE), in
//! TARGET, or both (a merged directory), with whiteouts and opaque
//! directories applied (see [`crate::whiteout`]).
//!
//! A lookup walks the layer from its root while the layer has the
//! directories on the way, and remembers the walk for each directory, so
//! a path in an untouched part of TARGET costs one lookup in TARGET.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use viewos_core::{Errno, FileStat};

use crate::layer::{name_of, Layer};
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

/// What the walk knows after a directory of the view.
#[derive(Clone, Copy, Debug)]
struct DirState {
    /// The layer has this directory.
    upper_here: bool,
    /// TARGET is not hidden here (no opaque directory on the way).
    lower_ok: bool,
}

/// The most directories remembered before the memory starts again.
const MAX_REMEMBERED: usize = 1 << 16;

/// Lookups in a layer over TARGET, remembering what the walk found for
/// the directories on the way. The memory is dropped at every change the
/// mount makes ([`Lookup::invalidate`]); like overlayfs, a layer must not
/// be changed by anyone else while it is mounted.
pub struct Lookup {
    upper: Layer,
    lower: Layer,
    generation: AtomicU64,
    dirs: Mutex<HashMap<PathBuf, DirState>>,
}

impl Lookup {
    /// Lookups in `upper` (the layer) over `lower` (TARGET).
    pub fn new(upper: Layer, lower: Layer) -> Lookup {
        Lookup {
            upper,
            lower,
            generation: AtomicU64::new(0),
            dirs: Mutex::new(HashMap::new()),
        }
    }

    /// The layer.
    pub fn upper(&self) -> &Layer {
        &self.upper
    }

    /// TARGET.
    pub fn lower(&self) -> &Layer {
        &self.lower
    }

    /// Forgets what was learnt: the layer changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, DirState>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The walk's state after the directory `d`: `ENOENT` if a whiteout
    /// removed it, `ENOTDIR` if the layer has a non-directory there.
    fn dir_state(&self, d: &Path) -> Result<DirState, Errno> {
        if let Some(s) = self.lock().get(d) {
            return Ok(*s);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let state = match d.parent() {
            None => {
                let upper_here = self.upper.lstat_opt(d)?.is_some_and(|s| s.is_dir());
                DirState {
                    upper_here,
                    lower_ok: !(upper_here && whiteout::is_opaque(&self.upper, d)?),
                }
            }
            Some(parent) => {
                let ps = self.dir_state(parent)?;
                let reserved = whiteout::is_reserved(name_of(d));
                let up = if ps.upper_here && !reserved {
                    self.upper.lstat_opt(d)?
                } else {
                    None
                };
                match up {
                    Some(st) if st.is_dir() => DirState {
                        upper_here: true,
                        lower_ok: ps.lower_ok && !whiteout::is_opaque(&self.upper, d)?,
                    },
                    Some(_) => return Err(Errno::ENOTDIR),
                    None => {
                        if ps.upper_here && ps.lower_ok && whiteout::is_whiteout(&self.upper, d)? {
                            return Err(Errno::ENOENT);
                        }
                        DirState {
                            upper_here: false,
                            lower_ok: ps.lower_ok,
                        }
                    }
                }
            }
        };
        let mut dirs = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            if dirs.len() >= MAX_REMEMBERED {
                dirs.clear();
            }
            dirs.insert(d.to_path_buf(), state);
        }
        Ok(state)
    }

    /// Looks `p` up in the layer over TARGET.
    pub fn find(&self, p: &Path) -> Result<Node, Errno> {
        let Some(parent) = p.parent() else {
            let root = self.dir_state(p)?;
            let upper = self.upper.lstat_opt(p)?.filter(|s| s.is_dir());
            let lower = if root.lower_ok {
                self.lower.lstat_opt(p)?
            } else {
                None
            };
            return Ok(Node {
                upper,
                lower,
                opaque: root.upper_here && !root.lower_ok,
            });
        };
        let ps = self.dir_state(parent)?;
        let up = if ps.upper_here && !whiteout::is_reserved(name_of(p)) {
            self.upper.lstat_opt(p)?
        } else {
            None
        };
        let mut lower = if ps.lower_ok {
            self.lower.lstat_opt(p)?
        } else {
            None
        };
        if up.is_none()
            && ps.upper_here
            && lower.is_some()
            && whiteout::is_whiteout(&self.upper, p)?
        {
            lower = None;
        }
        let opaque = up.is_some_and(|u| u.is_dir())
            && lower.is_some_and(|l| l.is_dir())
            && whiteout::is_opaque(&self.upper, p)?;
        Ok(Node {
            upper: up,
            lower,
            opaque,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::sync::Arc;
    use viewos_core::real::RealFs;

    fn lookup(t: &TestDir) -> Lookup {
        Lookup::new(
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
        let look = lookup(&t);
        let f = |p: &str| look.find(Path::new(p)).unwrap();
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
        assert_eq!(look.find(Path::new("/a/f/x")), Err(Errno::ENOTDIR));
        // What is remembered goes with a change.
        assert!(f("/a/gone2").lower.is_none());
        t.write("low/a/gone2", "x");
        assert!(f("/a/gone2").exists());
        std::fs::remove_dir_all(t.join("up/a")).unwrap();
        look.invalidate();
        assert_eq!(f("/a/f").stat().unwrap().size, 5);
    }
}
