//! Permission checks from a node's attributes, for `human` mounts (and
//! for `access` when the server has no ACCESS).
//!
//! The host's requests carry no caller credentials yet, so the caller is
//! the view's user: the host process's real uid and gid (and its
//! supplementary groups), or the mount's `uid=`/`gid=`. As the kernel
//! does, uid 0 may read and write anything and execute anything with an
//! `x` bit somewhere (directories are always searchable for it).

use viewos_core::Errno;

use crate::proto::Attr;

/// Read permission (`R_OK`).
pub const R: u32 = 4;
/// Write permission (`W_OK`).
pub const W: u32 = 2;
/// Execute / search permission (`X_OK`).
pub const X: u32 = 1;

/// Who the checks are for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    /// User id.
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Creds {
    /// The host process's real ids and groups.
    pub fn of_process() -> Creds {
        let groups = nix::unistd::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
        Creds {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            groups,
        }
    }

    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// `Ok` if these credentials may access a node with `attr` for `mask`
    /// (a combination of [`R`], [`W`], [`X`]), else `EACCES`.
    pub fn check(&self, attr: &Attr, mask: u32) -> Result<(), Errno> {
        let mode = attr.mode;
        if self.uid == 0 {
            let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
            if mask & X == 0 || is_dir || mode & 0o111 != 0 {
                return Ok(());
            }
            return Err(Errno::EACCES);
        }
        let bits = if attr.uid == self.uid {
            mode >> 6
        } else if self.in_group(attr.gid) {
            mode >> 3
        } else {
            mode
        } & 7;
        if bits & mask == mask {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// `Ok` if these credentials own the node (or are root), else `EPERM`:
    /// what chmod, utimens with explicit times and setxattr need.
    pub fn owns(&self, attr: &Attr) -> Result<(), Errno> {
        if self.uid == 0 || self.uid == attr.uid {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// `Ok` if these credentials may give the node owner `uid` and group
    /// `gid` (`None`: unchanged): root may; an owner may only change the
    /// group to one of its own.
    pub fn may_chown(&self, attr: &Attr, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        if self.uid == 0 {
            return Ok(());
        }
        let uid_ok = uid.map_or(true, |u| u == attr.uid);
        let gid_ok = gid.map_or(true, |g| g == attr.gid || self.in_group(g));
        if attr.uid == self.uid && uid_ok && gid_ok {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(mode: u32, uid: u32, gid: u32) -> Attr {
        Attr {
            mode,
            uid,
            gid,
            ..Attr::default()
        }
    }

    #[test]
    fn owner_group_other_and_root() {
        let me = Creds {
            uid: 1000,
            gid: 100,
            groups: vec![7],
        };
        let f = attr(libc::S_IFREG | 0o640, 1000, 7);
        assert_eq!(me.check(&f, R | W), Ok(()));
        assert_eq!(me.check(&f, X), Err(Errno::EACCES));
        let g = attr(libc::S_IFREG | 0o640, 1, 7);
        assert_eq!(me.check(&g, R), Ok(()));
        assert_eq!(me.check(&g, W), Err(Errno::EACCES));
        let o = attr(libc::S_IFDIR | 0o751, 1, 1);
        assert_eq!(me.check(&o, X), Ok(()));
        assert_eq!(me.check(&o, R), Err(Errno::EACCES));
        let root = Creds::default();
        assert_eq!(root.check(&attr(libc::S_IFREG, 5, 5), R | W), Ok(()));
        assert_eq!(
            root.check(&attr(libc::S_IFREG, 5, 5), X),
            Err(Errno::EACCES)
        );
        assert_eq!(root.check(&attr(libc::S_IFDIR, 5, 5), X), Ok(()));
        assert_eq!(me.owns(&g), Err(Errno::EPERM));
        assert_eq!(me.may_chown(&f, None, Some(100)), Ok(()));
        assert_eq!(me.may_chown(&f, Some(0), None), Err(Errno::EPERM));
    }
}
