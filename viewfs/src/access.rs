//! Permission checks as the kernel makes them, for files whose status
//! viewfs redefines (`mode=`, `uid=`, `gid=`) or whose real permissions
//! are not the view's (a copy-on-write file the user will own once copied).
//!
//! The checks are for the program making the call
//! ([`Creds::caller`]).

use viewos_core::{Errno, FileStat};

pub use viewos_core::creds::Creds;

/// Checks `mode` (`R_OK | W_OK | X_OK`, or `F_OK`) against a file of
/// status `st`: `EACCES` if it is not granted.
pub fn check(st: &FileStat, creds: &Creds, mode: i32) -> Result<(), Errno> {
    creds.may(st.mode, st.uid, st.gid, (mode & 7) as u32)
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
    }
}
