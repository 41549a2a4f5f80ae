//! Programs a service starts in the view.
//!
//! Some file systems are served by an unmodified program rather than by
//! code in the service: `mount -t umfuseext2 image /mnt` runs `fuse2fs`.
//! Such a *helper* runs inside the view like any program (its own I/O goes
//! through the view, so its image may be a file of another virtual mount,
//! or a device of the view), but it is the service's: it does not keep the
//! view alive, its stdin is `/dev/null`, it has a session of its own (the
//! terminal's signals are not for it), and when the view ends the host
//! closes the mounts first, so the helper can write back and exit, before
//! it stops waiting for it.
//!
//! A service finds the host's [`Launcher`] in [`MountRequest::launcher`]
//! (`None` from a host that cannot start programs).
//!
//! [`MountRequest::launcher`]: crate::MountRequest::launcher

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::Errno;

/// What a host implements to start helpers.
pub trait Launch: Send + Sync {
    /// Starts `argv` (`argv[0]` searched on `PATH` as a shell would) in the
    /// view as a helper, and returns once it runs. Its stdout and stderr go
    /// to `output` when given (else to the host's own), its stdin is
    /// `/dev/null`. Errors: `ENOENT` if the program is not found, `EAGAIN`
    /// if the host cannot start it now.
    fn launch(&self, argv: &[OsString], output: Option<OwnedFd>) -> Result<Arc<Helper>, Errno>;
}

/// A host's [`Launch`], as a mount request carries it. Two launchers are
/// equal when they are the same host's.
#[derive(Clone)]
pub struct Launcher(Arc<dyn Launch>);

impl Launcher {
    /// Wraps a host's implementation.
    pub fn new(launch: Arc<dyn Launch>) -> Launcher {
        Launcher(launch)
    }

    /// See [`Launch::launch`].
    pub fn launch(&self, argv: &[OsString], output: Option<OwnedFd>) -> Result<Arc<Helper>, Errno> {
        self.0.launch(argv, output)
    }
}

impl PartialEq for Launcher {
    fn eq(&self, other: &Launcher) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Launcher {}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Launcher")
    }
}

/// A helper program started by [`Launch::launch`]: its process id and,
/// once it has ended, how (the host records it).
#[derive(Debug)]
pub struct Helper {
    pid: i32,
    status: Mutex<Option<i32>>,
    ended: Condvar,
}

impl Helper {
    /// A running helper with process id `pid` (for hosts).
    pub fn new(pid: i32) -> Helper {
        Helper {
            pid,
            status: Mutex::new(None),
            ended: Condvar::new(),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Records that it ended with `status` as a shell reports it (the exit
    /// code, or 128 + the signal number). For hosts.
    pub fn set_ended(&self, status: i32) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        *s = Some(status);
        self.ended.notify_all();
    }

    /// How it ended, or `None` while it runs.
    pub fn status(&self) -> Option<i32> {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout` for it to end; returns how it ended, or `None`
    /// if it still runs.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        while s.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .ended
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_reports_its_end_to_waiters() {
        let h = Arc::new(Helper::new(42));
        assert_eq!(h.pid(), 42);
        assert_eq!(h.status(), None);
        assert_eq!(h.wait(Duration::from_millis(10)), None);
        let h2 = h.clone();
        let t = std::thread::spawn(move || h2.wait(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        h.set_ended(3);
        assert_eq!(t.join().unwrap(), Some(3));
        assert_eq!(h.status(), Some(3));
    }

    struct Nothing;
    impl Launch for Nothing {
        fn launch(&self, _: &[OsString], _: Option<OwnedFd>) -> Result<Arc<Helper>, Errno> {
            Err(Errno::new(libc::EAGAIN))
        }
    }

    #[test]
    fn launchers_compare_by_host() {
        let a = Launcher::new(Arc::new(Nothing));
        let b = Launcher::new(Arc::new(Nothing));
        assert_eq!(a, a.clone());
        assert_ne!(a, b);
        assert_eq!(a.launch(&[], None).err(), Some(Errno::new(libc::EAGAIN)));
    }
}
