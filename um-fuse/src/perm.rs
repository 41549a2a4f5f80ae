//! Permission checks from a node's attributes, for `human` mounts (and
//! for `access` when the server has no ACCESS).
//!
//! The checks are for the program making the call, as the host tells it
//! ([`Creds::caller`]: the ids a view with identities gave the process,
//! or its real ones), or for the mount's `uid=`/`gid=`. As the kernel
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

pub use viewos_core::creds::Creds;

/// `Ok` if `creds` may access a node with `attr` for `mask` (a
/// combination of [`R`], [`W`], [`X`]), else `EACCES`.
pub fn check(creds: &Creds, attr: &Attr, mask: u32) -> Result<(), Errno> {
    creds.may(attr.mode, attr.uid, attr.gid, mask)
}

/// `Ok` if `creds` own the node (or are root), else `EPERM`: what chmod,
/// utimens with explicit times and setxattr need.
pub fn owns(creds: &Creds, attr: &Attr) -> Result<(), Errno> {
    if creds.owns(attr.uid) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// `Ok` if `creds` may give the node owner `uid` and group `gid` (`None`:
/// unchanged): root may; an owner may only change the group to one of its
/// own.
pub fn may_chown(
    creds: &Creds,
    attr: &Attr,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), Errno> {
    if creds.is_root() {
        return Ok(());
    }
    let uid_ok = uid.map_or(true, |u| u == attr.uid);
    let gid_ok = gid.map_or(true, |g| g == attr.gid || creds.in_group(g));
    if attr.uid == creds.uid && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
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
        assert_eq!(check(&me, &f, R | W), Ok(()));
        assert_eq!(check(&me, &f, X), Err(Errno::EACCES));
        let g = attr(libc::S_IFREG | 0o640, 1, 7);
        assert_eq!(check(&me, &g, R), Ok(()));
        assert_eq!(check(&me, &g, W), Err(Errno::EACCES));
        let o = attr(libc::S_IFDIR | 0o751, 1, 1);
        assert_eq!(check(&me, &o, X), Ok(()));
        assert_eq!(check(&me, &o, R), Err(Errno::EACCES));
        let root = Creds::default();
        assert_eq!(check(&root, &attr(libc::S_IFREG, 5, 5), R | W), Ok(()));
        assert_eq!(
            check(&root, &attr(libc::S_IFREG, 5, 5), X),
            Err(Errno::EACCES)
        );
        assert_eq!(check(&root, &attr(libc::S_IFDIR, 5, 5), X), Ok(()));
        assert_eq!(owns(&me, &g), Err(Errno::EPERM));
        assert_eq!(may_chown(&me, &f, None, Some(100)), Ok(()));
        assert_eq!(may_chown(&me, &f, Some(0), None), Err(Errno::EPERM));
    }
}
