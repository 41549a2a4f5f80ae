//! Who a permission check is for, and the kernel's permission check.
//!
//! Services that decide permissions themselves (viewfs's redefined modes
//! and copy-on-write files, umfuse's `human` mounts) check them with
//! [`Creds::may`], for the program whose call they are answering:
//! [`Creds::caller`]. The host tells who that is around each call it
//! dispatches ([`with_caller`], [`with_caller_process`]): in a view with
//! identities (`umview --root-id`, `-s`) the ids the view gave the
//! process, otherwise the process's real ids. Outside a dispatch (a
//! service's own threads, tests) the caller is the host process itself.
//!
//! ```
//! use viewos_core::creds::{with_caller, Creds};
//!
//! let nobody = Creds { uid: 65534, gid: 65534, groups: vec![] };
//! let seen = with_caller(nobody.clone(), Creds::caller);
//! assert_eq!(seen, nobody);
//! assert_eq!(Creds::caller(), Creds::of_process());
//! ```

use std::cell::{OnceCell, RefCell};
use std::sync::OnceLock;

use crate::Errno;

/// Who the call being answered on this thread is for.
enum Caller {
    /// Credentials the host knows (the view's identity of the process).
    Known(Creds),
    /// A process of the view whose real credentials are read from
    /// `/proc/PID/status` when first asked.
    Process(i32, OnceCell<Creds>),
}

thread_local! {
    static CALLER: RefCell<Option<Caller>> = const { RefCell::new(None) };
}

/// Puts the previous caller back when a dispatch ends (also on a panic).
struct Restore(Option<Caller>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CALLER.with(|c| *c.borrow_mut() = previous);
    }
}

fn with<R>(caller: Caller, f: impl FnOnce() -> R) -> R {
    let previous = CALLER.with(|c| c.borrow_mut().replace(caller));
    let _restore = Restore(previous);
    f()
}

/// A user, its primary group and its supplementary groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    /// User id (the one permissions are checked for).
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Creds {
    /// The host process's own credentials, from `/proc/self/status`: the
    /// file-system ids, the ones the kernel checks (the effective ids where
    /// those are missing), and the supplementary groups.
    pub fn of_process() -> Creds {
        Creds::from_status(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
    }

    /// The credentials in the text of a `/proc/PID/status` file.
    fn from_status(status: &str) -> Creds {
        let field = |key: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        // "Uid: real effective saved fs".
        let pick = |v: Vec<u32>| v.get(3).or(v.get(1)).copied().unwrap_or(0);
        Creds {
            uid: pick(field("Uid:")),
            gid: pick(field("Gid:")),
            groups: field("Groups:"),
        }
    }

    /// The credentials of the program whose system call this thread is
    /// answering, as the host gave them ([`with_caller`],
    /// [`with_caller_process`]); the host process's own
    /// ([`Creds::of_process`], read once) outside any call.
    pub fn caller() -> Creds {
        let known = CALLER.with(|c| match &*c.borrow() {
            Some(Caller::Known(creds)) => Some(creds.clone()),
            Some(Caller::Process(pid, cell)) => {
                Some(cell.get_or_init(|| Creds::of_pid(*pid)).clone())
            }
            None => None,
        });
        known.unwrap_or_else(|| {
            static HOST: OnceLock<Creds> = OnceLock::new();
            HOST.get_or_init(Creds::of_process).clone()
        })
    }

    /// The caller's credentials if the host gave them itself (a view with
    /// identities), without reading anything; `None` otherwise. For
    /// places that need ids on every request (FUSE headers) and use their
    /// own otherwise.
    pub fn caller_if_known() -> Option<Creds> {
        CALLER.with(|c| match &*c.borrow() {
            Some(Caller::Known(creds)) => Some(creds.clone()),
            _ => None,
        })
    }

    /// The credentials of process (or thread) `pid`, from
    /// `/proc/PID/status`, as [`Creds::of_process`] reads its own; the
    /// host's if the process is gone.
    pub fn of_pid(pid: i32) -> Creds {
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(status) => Creds::from_status(&status),
            Err(_) => Creds::of_process(),
        }
    }

    /// True for root, whom read and write permissions do not stop.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// True if the user is in group `gid`.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// True if the user owns a file of owner `uid` (or is root).
    pub fn owns(&self, uid: u32) -> bool {
        self.is_root() || self.uid == uid
    }

    /// Checks access `want` (a combination of `R_OK`, `W_OK`, `X_OK`; 0
    /// is `F_OK`) to a file of `mode`, owner `uid` and group `gid`, as the
    /// kernel does: the owner's, the group's or the others' bits; root may
    /// read and write anything, and execute what some `x` bit allows (and
    /// search any directory). `EACCES` if it is not granted.
    pub fn may(&self, mode: u32, uid: u32, gid: u32, want: u32) -> Result<(), Errno> {
        let want = want & 7;
        if want == 0 {
            return Ok(());
        }
        if self.is_root() {
            let exec_ok = mode & libc::S_IFMT == libc::S_IFDIR || mode & 0o111 != 0;
            return if want & 1 == 0 || exec_ok {
                Ok(())
            } else {
                Err(Errno::EACCES)
            };
        }
        let bits = if self.uid == uid {
            mode >> 6
        } else if self.in_group(gid) {
            mode >> 3
        } else {
            mode
        } & 7;
        if want & !bits == 0 {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }
}

/// Runs `f` (the answer to one system call) with `creds` as the caller
/// [`Creds::caller`] gives; the previous caller is back afterwards.
pub fn with_caller<R>(creds: Creds, f: impl FnOnce() -> R) -> R {
    with(Caller::Known(creds), f)
}

/// Runs `f` with process `pid` as the caller: [`Creds::caller`] reads its
/// real credentials if a service asks (once per call).
pub fn with_caller_process<R>(pid: i32, f: impl FnOnce() -> R) -> R {
    with(Caller::Process(pid, OnceCell::new()), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: u32 = libc::R_OK as u32;
    const W: u32 = libc::W_OK as u32;
    const X: u32 = libc::X_OK as u32;

    #[test]
    fn owner_group_other_and_root() {
        let user = Creds {
            uid: 1000,
            gid: 100,
            groups: vec![20],
        };
        let f = libc::S_IFREG | 0o640;
        assert_eq!(user.may(f, 1000, 20, R | W), Ok(()));
        assert_eq!(user.may(f, 1000, 20, X), Err(Errno::EACCES));
        assert_eq!(user.may(f, 0, 20, R), Ok(()));
        assert_eq!(user.may(f, 0, 20, W), Err(Errno::EACCES));
        assert_eq!(user.may(libc::S_IFREG | 0o604, 0, 0, R), Ok(()));
        assert_eq!(user.may(libc::S_IFREG | 0o600, 0, 0, 0), Ok(()));
        let root = Creds::default();
        assert_eq!(root.may(libc::S_IFREG, 5, 5, R | W), Ok(()));
        assert_eq!(root.may(libc::S_IFREG, 5, 5, X), Err(Errno::EACCES));
        assert_eq!(root.may(libc::S_IFDIR, 5, 5, X), Ok(()));
        assert!(user.owns(1000) && !user.owns(0) && root.owns(5));
    }

    #[test]
    fn caller_is_set_per_call_and_restored() {
        let host = Creds::caller();
        assert_eq!(host, Creds::of_process());
        let a = Creds {
            uid: 5,
            gid: 6,
            groups: vec![7],
        };
        let inner = with_caller(a.clone(), || {
            assert_eq!(Creds::caller_if_known(), Some(a.clone()));
            let mine = std::process::id() as i32;
            let nested = with_caller_process(mine, || {
                assert_eq!(Creds::caller_if_known(), None);
                Creds::caller()
            });
            assert_eq!(nested, host);
            Creds::caller()
        });
        assert_eq!(inner, a);
        assert_eq!(Creds::caller(), host);
        assert_eq!(Creds::caller_if_known(), None);
    }

    #[test]
    fn own_credentials() {
        let me = Creds::of_process();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.contains(&format!("\t{}\t", me.uid)));
    }
}
