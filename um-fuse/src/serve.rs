//! Running an in-process `fuser::Filesystem` as the server of a mount.
//!
//! The file system gets a `fuser` session on the server end of the
//! mount's socket pair ([`crate::connection::pair`]), exactly as it would
//! on `/dev/fuse`, in a thread of its own. `SIGPIPE` is blocked in that
//! thread (and so in the session's threads, which inherit the mask): a
//! reply written after the client went away fails with `EPIPE` instead of
//! killing the host.

use std::os::fd::OwnedFd;

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use viewos_core::Errno;

/// Serves `fs` on `server` in a new thread named after `name`; the
/// session ends when the client closes its end (or sends DESTROY). The
/// thread ends once the file system is dropped (an image's pending writes
/// are on it then): the returned handle waits for that.
pub fn spawn<FS: fuser::Filesystem>(
    fs: FS,
    server: OwnedFd,
    name: &str,
) -> Result<std::thread::JoinHandle<()>, Errno> {
    std::thread::Builder::new()
        .name(format!("umfuse-{name}"))
        .spawn(move || {
            let mut pipe = SigSet::empty();
            pipe.add(Signal::SIGPIPE);
            let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&pipe), None);
            let config = fuser::Config::default();
            if let Ok(session) = fuser::Session::from_fd(fs, server, fuser::SessionACL::All, config)
            {
                let _ = session.run();
            }
        })
        .map_err(Errno::from)
}
