//! Permission checks as the kernel makes them, for files whose status
//! viewfs redefines (`mode=`, `uid=`, `gid=`) or whose real permissions
//! are not the view's (a copy-on-write file the user will own once copied).
//!
//! The checks use the credentials of the host process, which are the
//! user's: the Service API does not pass the calling program's (see the
//! crate docs).

use viewos_core::{Errno, FileStat};

/// Who is asking: user, group and supplementary groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Creds {
    /// The host process's own credentials (from `/proc/self/status`).
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
        // "Uid: real effective saved fs": the fs id is the one checked.
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

    /// True if the user owns a file of `st` (or is root).
    pub fn owns(&self, st: &FileStat) -> bool {
        self.is_root() || self.uid == st.uid
    }
}

/// Checks `mode` (`R_OK | W_OK | X_OK`, or `F_OK`) against a file of
/// status `st`: `EACCES` if it is not granted.
pub fn check(st: &FileStat, creds: &Creds, mode: i32) -> Result<(), Errno> {
    let want = (mode & 7) as u32;
    if want == 0 {
        return Ok(());
    }
    if creds.is_root() {
        // Root may read and write anything, and execute what some x bit
        // allows (search any directory).
        let exec_ok = st.is_dir() || st.mode & 0o111 != 0;
        return if want & 1 == 0 || exec_ok {
            Ok(())
        } else {
            Err(Errno::EACCES)
        };
    }
    let bits = if creds.uid == st.uid {
        (st.mode >> 6) & 7
    } else if creds.in_group(st.gid) {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    };
    if want & !bits == 0 {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(mode: u32, uid: u32, gid: u32) -> FileStat {
        FileStat {
            mode,
            uid,
            gid,
            ..FileStat::default()
        }
    }

    #[test]
    fn owner_group_other_and_root() {
        let user = Creds {
            uid: 1000,
            gid: 100,
            groups: vec![20],
        };
        let f = st(libc::S_IFREG | 0o640, 1000, 20);
        assert_eq!(check(&f, &user, libc::R_OK | libc::W_OK), Ok(()));
        assert_eq!(check(&f, &user, libc::X_OK), Err(Errno::EACCES));
        let g = st(libc::S_IFREG | 0o640, 0, 20);
        assert_eq!(check(&g, &user, libc::R_OK), Ok(()));
        assert_eq!(check(&g, &user, libc::W_OK), Err(Errno::EACCES));
        let o = st(libc::S_IFREG | 0o604, 0, 0);
        assert_eq!(check(&o, &user, libc::R_OK), Ok(()));
        assert_eq!(check(&o, &user, libc::F_OK), Ok(()));
        let root = Creds::default();
        assert_eq!(check(&o, &root, libc::W_OK), Ok(()));
        assert_eq!(check(&o, &root, libc::X_OK), Err(Errno::EACCES));
        assert_eq!(check(&st(libc::S_IFDIR, 5, 5), &root, libc::X_OK), Ok(()));
        assert!(user.owns(&f) && !user.owns(&g) && root.owns(&g));
    }

    #[test]
    fn own_credentials() {
        let me = Creds::of_process();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.contains(&format!("\t{}\t", me.uid)));
    }
}
