//! Inode numbers for a FAT volume, which has none of its own.
//!
//! Each file gets a number the first time it is looked up, and keeps it
//! while the volume is mounted: across renames (the table follows the
//! file) and until it is removed. The root is always 1, as FUSE expects.
//! Paths are `/`-separated, relative to the root (the root is `""`), with
//! each name spelled as the directory stores it.

use std::collections::HashMap;

/// The root's inode number.
pub(crate) const ROOT: u64 = 1;

/// The table of known files.
#[derive(Debug)]
pub(crate) struct Inodes {
    paths: HashMap<u64, String>,
    numbers: HashMap<String, u64>,
    next: u64,
}

impl Inodes {
    /// A table that knows only the root.
    pub(crate) fn new() -> Inodes {
        let mut t = Inodes {
            paths: HashMap::new(),
            numbers: HashMap::new(),
            next: ROOT + 1,
        };
        t.paths.insert(ROOT, String::new());
        t.numbers.insert(String::new(), ROOT);
        t
    }

    /// The path of `ino`, if known.
    pub(crate) fn path(&self, ino: u64) -> Option<&str> {
        self.paths.get(&ino).map(String::as_str)
    }

    /// The number of `path`, given one if it has none yet.
    pub(crate) fn number(&mut self, path: &str) -> u64 {
        if let Some(&ino) = self.numbers.get(path) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.paths.insert(ino, path.to_owned());
        self.numbers.insert(path.to_owned(), ino);
        ino
    }

    /// Forgets `path` and everything below it.
    pub(crate) fn remove(&mut self, path: &str) {
        for (p, ino) in self.below(path) {
            self.numbers.remove(&p);
            self.paths.remove(&ino);
        }
    }

    /// Moves `from` and everything below it to `to`, keeping their numbers;
    /// whatever was known at `to` is forgotten.
    pub(crate) fn rename(&mut self, from: &str, to: &str) {
        self.remove(to);
        for (p, ino) in self.below(from) {
            let moved = format!("{to}{}", &p[from.len()..]);
            self.numbers.remove(&p);
            self.numbers.insert(moved.clone(), ino);
            self.paths.insert(ino, moved);
        }
    }

    /// `path` and the known paths below it, with their numbers.
    fn below(&self, path: &str) -> Vec<(String, u64)> {
        self.numbers
            .iter()
            .filter(|(p, _)| {
                p.as_str() == path
                    || (p.starts_with(path) && p.as_bytes().get(path.len()) == Some(&b'/'))
            })
            .map(|(p, &ino)| (p.clone(), ino))
            .collect()
    }
}

/// The path of `name` in the directory at `parent`.
pub(crate) fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// The directory part of `path` (`""` for a name in the root).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_follow_renames() {
        let mut t = Inodes::new();
        let a = t.number("a");
        let ab = t.number("a/b");
        let abc = t.number("a/bc");
        let other = t.number("ab");
        assert_eq!(t.number("a"), a);
        t.rename("a", "z");
        assert_eq!(t.path(ab), Some("z/b"));
        assert_eq!(t.path(abc), Some("z/bc"));
        assert_eq!(t.path(other), Some("ab"));
        assert_eq!(t.number("z"), a);
        t.remove("z");
        assert_eq!(t.path(ab), None);
        assert_eq!(t.path(ROOT), Some(""));
        assert_eq!(
            (child("", "x"), child("x", "y")),
            ("x".into(), "x/y".into())
        );
        assert_eq!((parent("x/y/z"), parent("x")), ("x/y", ""));
    }
}
