//! `unreal`: the real file tree, served again below `/unreal`, and again
//! below `/unreal/unreal` through the first (nesting).

use std::path::PathBuf;
use std::sync::Arc;

use crate::fs::{FileSystem, MountRequest};
use crate::nesting::Subtree;
use crate::testing::ServedFs;
use crate::{Errno, Service};

/// The `unreal` service (`umview -p unreal`): at load it mounts the real
/// tree on `/unreal` and, through that mount, on `/unreal/unreal`. A mount
/// `mount -t unreal DIR TARGET` shows the view's `DIR` at `TARGET`. Every
/// call goes through the Service API: the file system is a [`Subtree`] of
/// the view as it was when it was mounted. With `-o served` its files are
/// not handed to programs but served ([`ServedFs`]): every read, write and
/// listing goes through the service.
pub struct Unreal {
    /// Its own mounts serve their files (`-p unreal,served`).
    served: bool,
}

impl Unreal {
    /// The factory for a module registry: `-p unreal`, or
    /// `-p unreal,served` to have `/unreal` and `/unreal/unreal` serve
    /// their files ([`ServedFs`]).
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        match options {
            "" => Ok(Box::new(Unreal { served: false })),
            "served" => Ok(Box::new(Unreal { served: true })),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl Service for Unreal {
    fn name(&self) -> &str {
        "unreal"
    }

    fn description(&self) -> &str {
        "the real file tree, again below /unreal (test service)"
    }

    fn mounts_file_systems(&self) -> bool {
        true
    }

    fn mount(
        &self,
        request: &MountRequest,
        io: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        let root = if request.source.is_empty() || request.source == "none" {
            PathBuf::from("/")
        } else {
            PathBuf::from(&request.source)
        };
        // Every call goes to the view as it was before this mount.
        let tree = Arc::new(Subtree::new(root, io));
        // Generic mount flags (`ro`, `nosuid`, ...) reach the host as
        // flags; `served` is this service's own option.
        const GENERIC: [&str; 9] = [
            "ro", "rw", "nosuid", "nodev", "noexec", "sync", "async", "defaults", "noatime",
        ];
        let mut served = false;
        for o in request.options.split(',').filter(|o| !o.is_empty()) {
            match o {
                "served" => served = true,
                o if GENERIC.contains(&o) => {}
                _ => return Err(Errno::EINVAL),
            }
        }
        if served {
            Ok(Arc::new(ServedFs::new(tree)))
        } else {
            Ok(tree)
        }
    }

    fn initial_mounts(&self) -> Vec<MountRequest> {
        let at = |source: &str, target: &str| MountRequest {
            source: source.into(),
            target: PathBuf::from(target),
            fstype: "unreal".into(),
            options: if self.served {
                "served".into()
            } else {
                String::new()
            },
            ..MountRequest::default()
        };
        // The second is served through the first.
        vec![at("/", "/unreal"), at("/unreal", "/unreal/unreal")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{View, ViewConfig};
    use std::path::Path;

    #[test]
    fn the_real_tree_twice_the_second_through_the_first() {
        let mut v = View::new(ViewConfig::default());
        v.add_service(Unreal::create("").unwrap()).unwrap();
        assert!(Unreal::create("bad").is_err());
        let real = std::fs::symlink_metadata("/usr/bin").unwrap();
        use std::os::unix::fs::MetadataExt;
        for p in ["/unreal/usr/bin", "/unreal/unreal/usr/bin"] {
            let (m, rel) = v.mounts().lookup(Path::new(p)).unwrap();
            assert_eq!(m.fs.lstat(&rel).unwrap().ino, real.ino(), "{p}");
        }
        let (m, rel) = v
            .mounts()
            .lookup(Path::new("/unreal/unreal/unreal/x"))
            .unwrap();
        assert_eq!(m.fs.lstat(&rel), Err(Errno::ENOENT));
    }
}
