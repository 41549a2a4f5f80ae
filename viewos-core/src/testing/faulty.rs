//! `faulty`: a file system that fails on purpose, for testing that a
//! failing or panicking service does not take a host down.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

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
        Ok(Arc::new(FaultyFs::default()))
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
/// fails with `EIO`; `/block` waits (up to [`FaultyFs::BLOCK_LIMIT`]) until
/// `/release` is looked at, then does not exist, while `/blocked` exists
/// only as long as some call waits at `/block`: a service that takes long
/// must not stop the rest of the view. Anything else does not exist.
#[derive(Default)]
pub struct FaultyFs {
    gate: Arc<Gate>,
}

/// The state behind `/block` and `/release`.
#[derive(Default)]
struct Gate {
    /// (calls waiting at `/block`, released).
    state: Mutex<(usize, bool)>,
    cond: Condvar,
}

impl FaultyFs {
    /// The longest a call waits at `/block` before failing with
    /// `ETIMEDOUT` (a test that never releases it fails instead of hanging).
    pub const BLOCK_LIMIT: Duration = Duration::from_secs(20);

    fn block(&self) -> Result<FileStat, Errno> {
        let gate = &self.gate;
        let Ok(mut state) = gate.state.lock() else {
            return Err(Errno::EIO);
        };
        state.0 += 1;
        let deadline = std::time::Instant::now() + Self::BLOCK_LIMIT;
        while !state.1 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            state = match gate.cond.wait_timeout(state, left) {
                Ok((s, _)) => s,
                Err(_) => return Err(Errno::EIO),
            };
        }
        state.0 -= 1;
        if state.1 {
            Err(Errno::ENOENT)
        } else {
            Err(Errno::new(libc::ETIMEDOUT))
        }
    }

    fn release(&self) -> Result<FileStat, Errno> {
        if let Ok(mut state) = self.gate.state.lock() {
            state.1 = true;
        }
        self.gate.cond.notify_all();
        Err(Errno::ENOENT)
    }

    fn blocked(&self) -> Result<FileStat, Errno> {
        match self.gate.state.lock() {
            Ok(state) if state.0 > 0 => Ok(FileStat {
                mode: libc::S_IFREG | 0o644,
                nlink: 1,
                ..FileStat::default()
            }),
            _ => Err(Errno::ENOENT),
        }
    }
}

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
            Some("/block") => self.block(),
            Some("/release") => self.release(),
            Some("/blocked") => self.blocked(),
            _ => Err(Errno::ENOENT),
        }
    }
}
