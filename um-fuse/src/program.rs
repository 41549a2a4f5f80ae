//! Submodules served by unmodified FUSE programs the view starts:
//! `mount -t umfuseext2 image /mnt` (also `umfuseext3`, `umfuseext4`) runs
//! `fuse2fs` for the user.
//!
//! How the mount comes together:
//! 1. umfuse asks the host to start the program in the view as a helper
//!    ([`viewos_core::launch`]), in the foreground, on the mount's SOURCE
//!    and TARGET, its stdout and stderr into a pipe of umfuse's;
//! 2. the program opens the view's `/dev/fuse` and calls mount(2) on
//!    TARGET with type `fuse.*` and `fd=N`: the host offers it to the
//!    services first ([`viewos_core::Service::join_mount`]); umfuse sees a
//!    FUSE mount on the target of a mount it is making, takes the
//!    session's client end and answers 0 — no mount is added for it;
//! 3. the waiting mount does the INIT handshake (the program now reads
//!    requests) and returns the session as its file system. If the program
//!    exits first (a bad image), the mount fails with `EINVAL` and what the
//!    program printed goes to stderr.
//!
//! At umount the session is closed (`DESTROY`, then the socket's end);
//! the program writes back and exits, and the unmount waits for it (up to
//! 30 s), so the image is complete when umount returns.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use viewos_core::{Errno, MountRequest};

use crate::dev_fuse::{self, Sessions};
use crate::options::MountOptions;

/// Makes a program's command line from the mount request and its parsed
/// umfuse options; the program must mount on the request's target.
pub type MakeArgv = Arc<dyn Fn(&MountRequest, &MountOptions) -> Vec<OsString> + Send + Sync>;

/// How long a mount waits for its program to mount.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a program's output kept to explain a failed mount.
const OUTPUT_KEPT: usize = 16 * 1024;

/// Mounts waiting for their program's mount(2), by target.
#[derive(Default)]
pub struct Rendezvous {
    waiting: Mutex<HashMap<PathBuf, mpsc::Sender<OwnedFd>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Rendezvous {
    /// Where the session of the program mounting on `target` will
    /// arrive; `EBUSY` while another such mount waits there.
    fn register(&self, target: &Path) -> Result<mpsc::Receiver<OwnedFd>, Errno> {
        let mut waiting = lock(&self.waiting);
        if waiting.contains_key(target) {
            return Err(Errno::EBUSY);
        }
        let (tx, rx) = mpsc::channel();
        waiting.insert(target.to_path_buf(), tx);
        Ok(rx)
    }

    fn forget(&self, target: &Path) {
        lock(&self.waiting).remove(target);
    }

    /// The mount(2) of a program started for a mount (see the module
    /// docs): `Some(Ok(()))` once its session is handed over; `None` for a
    /// mount that is not one.
    pub fn join(&self, request: &MountRequest, sessions: &Sessions) -> Option<Result<(), Errno>> {
        if !dev_fuse::is_kernel_fuse_type(&request.fstype) {
            return None;
        }
        let tx = lock(&self.waiting).remove(&request.target)?;
        let answer = (|| {
            dev_fuse::parse_kernel_options(&request.options)?;
            let fd = request.fd.as_ref().ok_or(Errno::EINVAL)?;
            let client_end = sessions.take(fd)?;
            tx.send(client_end).map_err(|_| Errno::EINVAL)
        })();
        Some(answer)
    }
}

/// What a program printed, collected by a thread of its own until the
/// program closes its output.
struct Output {
    text: Arc<Mutex<Vec<u8>>>,
    /// Set when the program closed its output.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Output {
    fn collect(read_end: OwnedFd) -> Output {
        let text = Arc::new(Mutex::new(Vec::new()));
        let t = text.clone();
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let e = ended.clone();
        let _ = std::thread::Builder::new()
            .name("umfuse-output".into())
            .spawn(move || {
                let mut f = std::fs::File::from(read_end);
                let mut buf = [0u8; 4096];
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut text = lock(&t);
                    let room = OUTPUT_KEPT.saturating_sub(text.len());
                    text.extend_from_slice(&buf[..n.min(room)]);
                }
                e.store(true, std::sync::atomic::Ordering::Release);
            });
        Output { text, ended }
    }

    /// Waits (at most `limit`) until the program closed its output: its
    /// last words are in.
    fn wait_end(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.ended.load(std::sync::atomic::Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Shows what the program said, each line prefixed with `label`.
    fn show(&self, label: &str) {
        let text = lock(&self.text);
        for line in String::from_utf8_lossy(&text).lines() {
            eprintln!("{label}: {line}");
        }
    }
}

/// Starts the program of submodule `fstype` for `request` and waits until
/// it has mounted; returns the client end of its session and the program.
pub fn start(
    fstype: &str,
    make_argv: &MakeArgv,
    request: &MountRequest,
    opts: &MountOptions,
    rendezvous: &Rendezvous,
) -> Result<(OwnedFd, Arc<viewos_core::launch::Helper>), Errno> {
    let launcher = request.launcher.as_ref().ok_or(Errno::ENOSYS)?;
    let arrived = rendezvous.register(&request.target)?;
    let result = (|| {
        let (read_end, write_end) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Errno::new(e as i32))?;
        let argv = make_argv(request, opts);
        let helper = launcher.launch(&argv, Some(write_end))?;
        let output = Output::collect(read_end);
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            match arrived.recv_timeout(Duration::from_millis(20)) {
                Ok(client_end) => return Ok((client_end, helper)),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if helper.status().is_some() {
                        // It ended without mounting: let its last words in.
                        output.wait_end(Duration::from_secs(2));
                        output.show(&format!("umview: {fstype}"));
                        return Err(Errno::EINVAL);
                    }
                }
                Err(_) => {
                    output.show(&format!("umview: {fstype}"));
                    eprintln!("umview: {fstype}: {:?} did not mount in time", argv[0]);
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(helper.pid()),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    return Err(Errno::new(libc::ETIMEDOUT));
                }
            }
        }
    })();
    rendezvous.forget(&request.target);
    result
}

/// The command line of `fuse2fs` for a mount: foreground, the image and
/// the mount point, `fakeroot` unless the mount is `human` (then the
/// view's checks and fuse2fs's own apply), `ro` when read-only.
pub fn fuse2fs_argv(request: &MountRequest, opts: &MountOptions) -> Vec<OsString> {
    let mut o: Vec<&str> = Vec::new();
    if !opts.human {
        o.push("fakeroot");
    }
    if opts.read_only {
        o.push("ro");
    }
    let mut argv: Vec<OsString> = vec![
        "fuse2fs".into(),
        "-f".into(),
        request.source.clone().into(),
        request.target.clone().into_os_string(),
    ];
    if !o.is_empty() {
        argv.push("-o".into());
        argv.push(o.join(",").into());
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuse2fs_gets_the_mount_and_the_token() {
        let req = MountRequest {
            source: "/img".into(),
            target: "/mnt".into(),
            fstype: "umfuseext2".into(),
            ..MountRequest::default()
        };
        let argv = fuse2fs_argv(&req, &MountOptions::default());
        assert_eq!(argv, ["fuse2fs", "-f", "/img", "/mnt", "-o", "fakeroot"]);
        let ro = MountOptions {
            read_only: true,
            human: true,
            ..MountOptions::default()
        };
        assert_eq!(fuse2fs_argv(&req, &ro)[5], "ro");
        let human = MountOptions {
            human: true,
            ..MountOptions::default()
        };
        assert_eq!(fuse2fs_argv(&req, &human).len(), 4);
    }

    #[test]
    fn only_a_fuse_mount_on_a_waiting_target_joins() {
        let r = Rendezvous::default();
        let sessions = Sessions::default();
        let _rx = r.register(Path::new("/mnt")).unwrap();
        assert_eq!(r.register(Path::new("/mnt")).err(), Some(Errno::EBUSY));
        let other = MountRequest {
            target: "/elsewhere".into(),
            fstype: "fuse.ext4".into(),
            ..MountRequest::default()
        };
        assert_eq!(r.join(&other, &sessions), None);
        let not_fuse = MountRequest {
            target: "/mnt".into(),
            fstype: "umfuseext2".into(),
            ..MountRequest::default()
        };
        assert_eq!(r.join(&not_fuse, &sessions), None);
        // The target, but no session fd: refused as the kernel would.
        let no_fd = MountRequest {
            target: "/mnt".into(),
            fstype: "fuse.ext4".into(),
            options: "rootmode=40000,user_id=0,group_id=0".into(),
            ..MountRequest::default()
        };
        assert_eq!(r.join(&no_fd, &sessions), Some(Err(Errno::EINVAL)));
        // A waiting mount is joined once.
        assert_eq!(r.join(&no_fd, &sessions), None);
    }
}
