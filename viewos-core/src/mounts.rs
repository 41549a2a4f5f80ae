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
    /// Per mount: it also serves its numbered siblings
    /// ([`FileSystem::numbered_siblings`]).
    numbered: Vec<bool>,
    /// Per mount: the view's paths it leaves to what lies below it
    /// ([`FileSystem::exceptions`]).
    holes: Vec<Vec<PathBuf>>,
}

/// If `path` is `TARGETN` for the mount point `target` (same parent, the
/// name followed by a decimal number without leading zeros), the path
/// `/N` a file system with numbered siblings serves it as.
fn numbered_sibling(path: &Path, target: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if path.parent()? != target.parent()? {
        return None;
    }
    let rest = path
        .file_name()?
        .as_bytes()
        .strip_prefix(target.file_name()?.as_bytes())?;
    let number_like = !rest.is_empty()
        && rest[0] != b'0'
        && rest.len() <= 9
        && rest.iter().all(u8::is_ascii_digit);
    number_like.then(|| {
        let mut p = b"/".to_vec();
        p.extend_from_slice(rest);
        PathBuf::from(std::ffi::OsStr::from_bytes(&p))
    })
}

impl MountTable {
    /// An empty table.
    pub fn new() -> MountTable {
        MountTable::default()
    }

    /// Adds a mount on top.
    pub fn push(&mut self, mount: Mount) {
        self.numbered.push(mount.fs.numbered_siblings().is_some());
        let holes = mount
            .fs
            .exceptions()
            .iter()
            .map(|e| join_under(&mount.request.target, e))
            .collect();
        self.holes.push(holes);
        self.mounts.push(mount);
    }

    /// Removes the latest mount at exactly `target`.
    pub fn remove(&mut self, target: &Path) -> Option<Mount> {
        let i = self
            .mounts
            .iter()
            .rposition(|m| m.request.target == target)?;
        self.numbered.remove(i);
        self.holes.remove(i);
        Some(self.mounts.remove(i))
    }

    /// Removes the latest mount.
    pub fn pop(&mut self) -> Option<Mount> {
        self.numbered.pop();
        self.holes.pop();
        self.mounts.pop()
    }

    /// The mounts that also serve numbered siblings of their mount point
    /// ([`FileSystem::numbered_siblings`]).
    pub fn with_numbered_siblings(&self) -> impl Iterator<Item = &Mount> {
        self.mounts
            .iter()
            .zip(&self.numbered)
            .filter(|(_, &n)| n)
            .map(|(m, _)| m)
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
        self.mounts
            .iter()
            .zip(&self.numbered)
            .any(|(m, &numbered)| {
                m.request.target.file_name().map_or(true, |n| {
                    let n = n.as_bytes();
                    n == name
                        || numbered
                            && name
                                .strip_prefix(n)
                                .is_some_and(|r| !r.is_empty() && r.iter().all(u8::is_ascii_digit))
                })
            })
    }

    /// The mount serving the canonical absolute `path`, with the path
    /// relative to that mount's root. A path in one of a mount's
    /// exceptions ([`FileSystem::exceptions`]) goes to the mount below it,
    /// or to the real file system.
    pub fn lookup(&self, path: &Path) -> Option<(&Mount, PathBuf)> {
        let mut best: Option<(&Mount, PathBuf, usize)> = None;
        let all = self.mounts.iter().zip(&self.numbered).zip(&self.holes);
        for ((m, &numbered), holes) in all.rev() {
            let len = m.request.target.as_os_str().len();
            if best.as_ref().is_some_and(|b| b.2 >= len) {
                continue;
            }
            if holes.iter().any(|h| strip_mount_prefix(path, h).is_some()) {
                continue;
            }
            if let Some(rest) = strip_mount_prefix(path, &m.request.target) {
                best = Some((m, rest, len));
            } else if numbered {
                if let Some(rest) = numbered_sibling(path, &m.request.target) {
                    // As specific as a mount on the sibling itself.
                    best = Some((m, rest, path.as_os_str().len()));
                }
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

    struct Disk;
    impl FileSystem for Disk {
        fn numbered_siblings(&self) -> Option<Vec<u32>> {
            Some(vec![1, 2])
        }
    }

    struct Holes;
    impl FileSystem for Holes {
        fn exceptions(&self) -> Vec<PathBuf> {
            vec![PathBuf::from("/proc"), PathBuf::from("/a/b")]
        }
    }

    #[test]
    fn exceptions_go_to_what_is_below_the_mount() {
        let mut t = MountTable::new();
        t.push(mount("/a", "under"));
        t.push(Mount {
            request: MountRequest {
                target: PathBuf::from("/"),
                ..MountRequest::default()
            },
            service: "root".into(),
            fs: Arc::new(Holes),
        });
        fn at(t: &MountTable, p: &str) -> Option<(String, PathBuf)> {
            t.lookup(Path::new(p)).map(|(m, r)| (m.service.clone(), r))
        }
        assert_eq!(at(&t, "/proc"), None);
        assert_eq!(at(&t, "/proc/self/fd/3"), None);
        assert_eq!(
            at(&t, "/procs"),
            Some(("root".into(), PathBuf::from("/procs")))
        );
        assert_eq!(at(&t, "/"), Some(("root".into(), PathBuf::from("/"))));
        // The mount below an exception serves it.
        assert_eq!(
            at(&t, "/a/b/c"),
            Some(("under".into(), PathBuf::from("/b/c")))
        );
        assert_eq!(
            at(&t, "/a/bc"),
            Some(("under".into(), PathBuf::from("/bc")))
        );
        t.pop();
        assert_eq!(at(&t, "/proc/1"), None);
    }

    #[test]
    fn numbered_siblings_are_routed_to_their_disk() {
        let mut t = MountTable::new();
        t.push(mount("/dev", "devs"));
        t.push(Mount {
            request: MountRequest {
                target: PathBuf::from("/dev/hda"),
                ..MountRequest::default()
            },
            service: "disk".into(),
            fs: Arc::new(Disk),
        });
        let (m, rest) = t.lookup(Path::new("/dev/hda12")).unwrap();
        assert_eq!((m.service.as_str(), rest), ("disk", PathBuf::from("/12")));
        let (m, rest) = t.lookup(Path::new("/dev/hda")).unwrap();
        assert_eq!((m.service.as_str(), rest), ("disk", PathBuf::from("/")));
        // Not a number, a leading zero, another directory: not a sibling.
        for p in ["/dev/hdab", "/dev/hda01", "/dev/hd", "/dev/x/hda1"] {
            assert_eq!(t.lookup(Path::new(p)).unwrap().0.service, "devs", "{p}");
        }
        assert!(t.is_mount_name(b"hda3"));
        assert!(!t.is_mount_name(b"hdax"));
        assert_eq!(t.with_numbered_siblings().count(), 1);
        t.pop();
        assert_eq!(t.lookup(Path::new("/dev/hda1")).unwrap().0.service, "devs");
        assert_eq!(t.with_numbered_siblings().count(), 0);
    }

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
