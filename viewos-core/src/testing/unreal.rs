//! `unreal`: the real file tree, served again below `/unreal`, and again
//! below `/unreal/unreal` through the first (nesting).

use std::path::PathBuf;
use std::sync::Arc;

use crate::fs::{FileSystem, MountRequest};
use crate::nesting::Subtree;
use crate::{Errno, Service};

/// The `unreal` service (`umview -p unreal`): at load it mounts the real
/// tree on `/unreal` and, through that mount, on `/unreal/unreal`. A mount
/// `mount -t unreal DIR TARGET` shows the view's `DIR` at `TARGET`. Every
/// call goes through the Service API: the file system is a [`Subtree`] of
/// the view as it was when it was mounted.
pub struct Unreal;

impl Unreal {
    /// The factory for a module registry (`-p unreal`; no options).
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        if options.is_empty() {
            Ok(Box::new(Unreal))
        } else {
            Err(Errno::EINVAL)
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
        Ok(Arc::new(Subtree::new(root, io)))
    }

    fn initial_mounts(&self) -> Vec<MountRequest> {
        let at = |source: &str, target: &str| MountRequest {
            source: source.into(),
            target: PathBuf::from(target),
            fstype: "unreal".into(),
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
