//! Helpers services start in the view ([`viewos_core::launch`]).
//!
//! A service asks from whatever host thread runs it (a worker answering a
//! mount); only the tracer thread can start a traced program (it forks it
//! and seizes it), so the request goes through the tracer's inbox and the
//! service waits for the answer. The tracer keeps the helpers apart from
//! the user's programs: they do not keep the view alive, and at the view's
//! end they are given time to write back after their mounts are closed.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use viewos_core::launch::{Helper, Launch};
use viewos_core::Errno;

use crate::inbox::Inbox;
use crate::syscalls::TracerWork;

/// A request to start a helper, answered by the tracer.
pub struct LaunchRequest {
    /// Its arguments.
    pub argv: Vec<OsString>,
    /// Where its stdout and stderr go.
    pub output: Option<OwnedFd>,
    /// Where the tracer sends the answer.
    pub reply: mpsc::Sender<Result<Arc<Helper>, Errno>>,
}

impl std::fmt::Debug for LaunchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchRequest")
            .field("argv", &self.argv)
            .finish()
    }
}

/// The host's [`Launch`]: hands requests to the tracer.
pub struct HostLauncher {
    inbox: Arc<Inbox<TracerWork>>,
}

impl HostLauncher {
    /// A launcher queueing into the tracer's `inbox`.
    pub fn new(inbox: Arc<Inbox<TracerWork>>) -> HostLauncher {
        HostLauncher { inbox }
    }
}

/// How long a service waits for the tracer to start a helper.
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl Launch for HostLauncher {
    fn launch(&self, argv: &[OsString], output: Option<OwnedFd>) -> Result<Arc<Helper>, Errno> {
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        let tracer = self.inbox.tracer();
        if tracer == 0 || tracer == me {
            // Not running yet, or asked by the tracer itself (which would
            // wait for itself).
            return Err(Errno::new(libc::EAGAIN));
        }
        if argv.is_empty() {
            return Err(Errno::ENOENT);
        }
        let (reply, answer) = mpsc::channel();
        self.inbox.push(TracerWork::Launch(LaunchRequest {
            argv: argv.to_vec(),
            output,
            reply,
        }));
        answer
            .recv_timeout(START_TIMEOUT)
            .unwrap_or(Err(Errno::new(libc::EAGAIN)))
    }
}
