//! The mount table of a view: which file system serves which path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::{FileSystem, MountRequest};
use crate::path::{join_under, strip_mount_prefix};

/// One mounted file system.
#[derive(Clone)]
pub struct Mount {
    /// How it was mounted (target is canonical).
    pub request: MountRequest,
    /// The service that made it.
    pub service: String,
    /// The file system answering for paths below `request.target`.
    pub fs: Arc<dyn FileSystem>,
}

impl Mount {
    /// The view's path of `rel`, a path inside this mount.
    pub fn view_path(&self, rel: &Path) -> PathBuf {
        join_under(&self.request.target, rel)
    }

    /// `EROFS` if the mount is read-only (`MS_RDONLY`, `-o ro`): what
    /// every call that would change it gets.
    pub fn writable(&self) -> Result<(), crate::Errno> {
        if self.request.flags & libc::MS_RDONLY != 0 {
            Err(crate::Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

/// The mounts of a view, in mount order. Lookups pick the longest matching
/// mount point; of equal ones the latest mount shadows the earlier.
#[derive(Clone, Default)]
pub struct MountTable {
    mounts: Vec<Mount>,
}

impl MountTable {
    /// An empty table.
    pub fn new() -> MountTable {
        MountTable::default()
    }

    /// Adds a mount on top.
    pub fn push(&mut self, mount: Mount) {
        self.mounts.push(mount);
    }

    /// Removes the latest mount at exactly `target`.
    pub fn remove(&mut self, target: &Path) -> Option<Mount> {
        let i = self
            .mounts
            .iter()
            .rposition(|m| m.request.target == target)?;
        Some(self.mounts.remove(i))
    }

    /// Removes the latest mount.
    pub fn pop(&mut self) -> Option<Mount> {
        self.mounts.pop()
    }

    /// True if nothing is mounted.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The mounts, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Mount> {
        self.mounts.iter()
    }

    /// True if some mount point's last component is `name`: only such a
    /// name, looked up in the mount point's parent, can enter a mount.
    pub fn is_mount_name(&self, name: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        self.mounts.iter().any(|m| {
            m.request
                .target
                .file_name()
                .map_or(true, |n| n.as_bytes() == name)
        })
    }

    /// The mount serving the canonical absolute `path`, with the path
    /// relative to that mount's root.
    pub fn lookup(&self, path: &Path) -> Option<(&Mount, PathBuf)> {
        let mut best: Option<(&Mount, PathBuf, usize)> = None;
        for m in self.mounts.iter().rev() {
            let len = m.request.target.as_os_str().len();
            if best.as_ref().is_some_and(|b| b.2 >= len) {
                continue;
            }
            if let Some(rest) = strip_mount_prefix(path, &m.request.target) {
                best = Some((m, rest, len));
            }
        }
        best.map(|(m, rest, _)| (m, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named;
    impl FileSystem for Named {}

    fn mount(target: &str, service: &str) -> Mount {
        Mount {
            request: MountRequest {
                target: PathBuf::from(target),
                ..MountRequest::default()
            },
            service: service.to_string(),
            fs: Arc::new(Named),
        }
    }

    #[test]
    fn mount_names() {
        let mut t = MountTable::new();
        t.push(mount("/a/unreal", "x"));
        assert!(t.is_mount_name(b"unreal"));
        assert!(!t.is_mount_name(b"a"));
        t.push(mount("/", "root"));
        assert!(t.is_mount_name(b"anything"));
    }

    #[test]
    fn longest_prefix_wins_and_later_shadows() {
        let mut t = MountTable::new();
        t.push(mount("/a", "first"));
        t.push(mount("/a/b", "deep"));
        t.push(mount("/a", "second"));
        let (m, rest) = t.lookup(Path::new("/a/b/c")).unwrap();
        assert_eq!((m.service.as_str(), rest), ("deep", PathBuf::from("/c")));
        let (m, rest) = t.lookup(Path::new("/a/x")).unwrap();
        assert_eq!((m.service.as_str(), rest), ("second", PathBuf::from("/x")));
        assert!(t.lookup(Path::new("/ab")).is_none());
        t.remove(Path::new("/a"));
        assert_eq!(t.lookup(Path::new("/a/x")).unwrap().0.service, "first");
    }
}
