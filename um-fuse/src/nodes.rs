//! The client's memory of the server's nodes: which node id a path led
//! to, for how long the server said that holds, and how many lookups of
//! each node id the server has counted.
//!
//! The FUSE protocol counts references: every reply that hands out a node
//! id (LOOKUP, MKDIR, CREATE, LINK, ...) adds one to the node's lookup
//! count on the server, and the client gives them back with FORGET when
//! it drops the node. [`Nodes`] keeps that count per node id and a
//! reference count of its users (cached paths, open files): when the last
//! user goes, the node's `(nodeid, nlookup)` is returned for the caller
//! to FORGET. The root (node id 1) is never counted nor forgotten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::proto::ROOT_ID;

/// Cached paths beyond this many are all dropped at once (a crude bound
/// on memory for walks of huge trees).
const MAX_PATHS: usize = 50_000;

/// A node id and the lookups to give back for it (a FORGET to send).
pub type Forget = (u64, u64);

#[derive(Clone, Copy, Debug)]
struct Cached {
    nodeid: u64,
    expires: Instant,
}

#[derive(Clone, Copy, Debug, Default)]
struct Node {
    /// Lookups the server counted.
    nlookup: u64,
    /// Cached paths and open files using the node.
    users: usize,
    /// The file type bits (`S_IFMT`), which never change for a node.
    kind: u32,
}

#[derive(Default)]
struct Table {
    paths: HashMap<PathBuf, Cached>,
    nodes: HashMap<u64, Node>,
}

impl Table {
    fn release(&mut self, nodeid: u64) -> Option<Forget> {
        let n = self.nodes.get_mut(&nodeid)?;
        n.users = n.users.saturating_sub(1);
        if n.users > 0 {
            return None;
        }
        let n = self.nodes.remove(&nodeid)?;
        (n.nlookup > 0).then_some((nodeid, n.nlookup))
    }

    fn drop_path(&mut self, path: &Path, forgets: &mut Vec<Forget>) {
        if let Some(c) = self.paths.remove(path) {
            forgets.extend(self.release(c.nodeid));
        }
    }
}

/// Paths to node ids, and the lookup counts to give back (see the module
/// docs). Paths are the file system's own (`/` is its root).
#[derive(Default)]
pub struct Nodes {
    table: Mutex<Table>,
}

impl Nodes {
    /// An empty cache.
    pub fn new() -> Nodes {
        Nodes::default()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node id `path` led to, if the server said it still holds.
    pub fn get(&self, path: &Path) -> Option<u64> {
        if path == Path::new("/") {
            return Some(ROOT_ID);
        }
        let t = self.lock();
        let c = t.paths.get(path)?;
        (c.expires > Instant::now()).then_some(c.nodeid)
    }

    /// The file type bits of `nodeid`, if known (the root is a directory).
    pub fn kind(&self, nodeid: u64) -> Option<u32> {
        if nodeid == ROOT_ID {
            return Some(libc::S_IFDIR);
        }
        self.lock().nodes.get(&nodeid).map(|n| n.kind)
    }

    /// The server handed out `nodeid` (of type `kind`) for `path`, valid
    /// for `valid`: counts the lookup and caches the path. Returns the
    /// nodes to forget (a path that led elsewhere before, or the cache
    /// overflowing).
    pub fn learned(&self, path: &Path, nodeid: u64, kind: u32, valid: Duration) -> Vec<Forget> {
        let mut forgets = Vec::new();
        if nodeid == ROOT_ID {
            return forgets;
        }
        let mut t = self.lock();
        if t.paths.len() >= MAX_PATHS {
            let all: Vec<PathBuf> = t.paths.keys().cloned().collect();
            for p in all {
                t.drop_path(&p, &mut forgets);
            }
        }
        let n = t.nodes.entry(nodeid).or_default();
        n.nlookup += 1;
        n.users += 1;
        n.kind = kind & libc::S_IFMT;
        let expires = Instant::now() + valid;
        if let Some(old) = t
            .paths
            .insert(path.to_path_buf(), Cached { nodeid, expires })
        {
            forgets.extend(t.release(old.nodeid));
        }
        forgets
    }

    /// An open file starts using `nodeid` (so it is not forgotten while the
    /// file is open).
    pub fn acquire(&self, nodeid: u64) {
        if nodeid != ROOT_ID {
            if let Some(n) = self.lock().nodes.get_mut(&nodeid) {
                n.users += 1;
            }
        }
    }

    /// An open file stops using `nodeid`; returns it to forget if it was
    /// the last user.
    pub fn release(&self, nodeid: u64) -> Option<Forget> {
        self.lock().release(nodeid)
    }

    /// Forgets what `path` (and, with `subtree`, every path below it) led
    /// to: after an unlink, rmdir or rename, or a stale node.
    pub fn invalidate(&self, path: &Path, subtree: bool) -> Vec<Forget> {
        let mut forgets = Vec::new();
        let mut t = self.lock();
        t.drop_path(path, &mut forgets);
        if subtree {
            let below: Vec<PathBuf> = t
                .paths
                .keys()
                .filter(|p| p.starts_with(path))
                .cloned()
                .collect();
            for p in below {
                t.drop_path(&p, &mut forgets);
            }
        }
        forgets
    }

    /// Everything still counted, for the FORGETs at unmount; the cache is
    /// left empty.
    pub fn drain(&self) -> Vec<Forget> {
        let mut t = self.lock();
        t.paths.clear();
        t.nodes
            .drain()
            .filter(|(_, n)| n.nlookup > 0)
            .map(|(id, n)| (id, n.nlookup))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);
    const REG: u32 = libc::S_IFREG;

    #[test]
    fn lookups_are_counted_and_given_back() {
        let n = Nodes::new();
        assert_eq!(n.get(Path::new("/")), Some(ROOT_ID));
        assert!(n.learned(Path::new("/a"), 5, REG, LONG).is_empty());
        assert_eq!(n.get(Path::new("/a")), Some(5));
        assert_eq!(n.kind(5), Some(REG));
        // A second name for the same node (a hard link).
        assert!(n.learned(Path::new("/b"), 5, REG, LONG).is_empty());
        assert!(n.invalidate(Path::new("/a"), false).is_empty());
        assert_eq!(n.get(Path::new("/a")), None);
        // The last user gone: both lookups are given back.
        assert_eq!(n.invalidate(Path::new("/b"), false), vec![(5, 2)]);
        assert_eq!(n.kind(5), None);
    }

    #[test]
    fn open_files_keep_their_node() {
        let n = Nodes::new();
        n.learned(Path::new("/f"), 7, REG, LONG);
        n.acquire(7);
        assert!(n.invalidate(Path::new("/f"), false).is_empty());
        assert_eq!(n.release(7), Some((7, 1)));
    }

    #[test]
    fn expired_entries_are_looked_up_again_and_subtrees_go_together() {
        let n = Nodes::new();
        n.learned(Path::new("/d"), 2, libc::S_IFDIR, LONG);
        n.learned(Path::new("/d/x"), 3, REG, Duration::ZERO);
        assert_eq!(n.get(Path::new("/d/x")), None);
        // Looked up again: the same node, one more lookup, no forget.
        assert!(n.learned(Path::new("/d/x"), 3, REG, LONG).is_empty());
        // A path that now leads elsewhere gives the old node back.
        assert_eq!(n.learned(Path::new("/d/x"), 4, REG, LONG), vec![(3, 2)]);
        n.learned(Path::new("/dd"), 6, REG, LONG);
        let mut f = n.invalidate(Path::new("/d"), true);
        f.sort();
        assert_eq!(f, vec![(2, 1), (4, 1)]);
        assert_eq!(n.get(Path::new("/dd")), Some(6));
        assert_eq!(n.drain(), vec![(6, 1)]);
    }
}
