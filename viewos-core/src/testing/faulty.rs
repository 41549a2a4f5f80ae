//! `faulty`: a file system that fails on purpose, for testing that a
//! failing or panicking service does not take a host down.

use std::path::Path;
use std::sync::Arc;

use crate::fs::{FileStat, FileSystem, MountRequest};
use crate::{Errno, Service};

/// The `faulty` service (`umview -p faulty`): mounts [`FaultyFs`] on
/// `/faulty` at load.
pub struct Faulty;

impl Faulty {
    /// The factory for a module registry (no options).
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        if options.is_empty() {
            Ok(Box::new(Faulty))
        } else {
            Err(Errno::EINVAL)
        }
    }
}

impl Service for Faulty {
    fn name(&self) -> &str {
        "faulty"
    }
    fn description(&self) -> &str {
        "a file system that fails on purpose (test service)"
    }
    fn mounts_file_systems(&self) -> bool {
        true
    }
    fn mount(
        &self,
        request: &MountRequest,
        _io: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        if request.options.contains("panic") {
            panic!("faulty: asked to panic at mount");
        }
        Ok(Arc::new(FaultyFs))
    }
    fn initial_mounts(&self) -> Vec<MountRequest> {
        vec![MountRequest {
            source: "none".into(),
            target: "/faulty".into(),
            fstype: "faulty".into(),
            ..MountRequest::default()
        }]
    }
}

/// `/` is an empty directory; `/panic` panics on every call; `/eio`
/// fails with `EIO`; anything else does not exist.
pub struct FaultyFs;

impl FileSystem for FaultyFs {
    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        match path.to_str() {
            Some("/") => Ok(FileStat {
                mode: libc::S_IFDIR | 0o755,
                nlink: 2,
                ..FileStat::default()
            }),
            Some("/panic") => panic!("faulty: lstat of /panic"),
            Some("/eio") => Err(Errno::EIO),
            _ => Err(Errno::ENOENT),
        }
    }
}
