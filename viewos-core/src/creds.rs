//! Who a permission check is for, and the kernel's permission check.
//!
//! Services that decide permissions themselves (viewfs's redefined modes
//! and copy-on-write files, umfuse's `human` mounts) check them with
//! [`Creds::may`]. The requests of the Service API carry no caller
//! credentials yet, so the caller is the view's user: the host process's
//! own ids ([`Creds::of_process`]) or ids a mount option gives.

use crate::Errno;

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
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
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
    fn own_credentials() {
        let me = Creds::of_process();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.contains(&format!("\t{}\t", me.uid)));
    }
}
