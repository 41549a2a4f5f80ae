//! The mount options of `umfusefat`, parsed from the `-o` string.
//!
//! The options follow Linux's vfat: `uid=`, `gid=` (owner of every file),
//! `umask=` (sets both masks), `fmask=` (files), `dmask=` (directories), in
//! octal, and `ro`/`rw`. Options this module does not know (generic ones
//! such as `human` or `rw+`, meant for the FUSE layer) are ignored; a known
//! option with a malformed value is an error.

use viewos_core::Errno;

/// The options of one FAT mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FatOptions {
    /// Owner reported for every file.
    pub uid: u32,
    /// Group reported for every file.
    pub gid: u32,
    /// Permission bits cleared from regular files (default 0133: 0644).
    pub fmask: u32,
    /// Permission bits cleared from directories (default 0022: 0755).
    pub dmask: u32,
    /// Mounted read-only: every change answers `EROFS`.
    pub read_only: bool,
}

impl FatOptions {
    /// The options of `options` (comma separated), with `uid`/`gid`
    /// defaulting to `default_owner`.
    pub fn parse(options: &str, default_owner: (u32, u32)) -> Result<FatOptions, Errno> {
        let mut o = FatOptions {
            uid: default_owner.0,
            gid: default_owner.1,
            fmask: 0o133,
            dmask: 0o022,
            read_only: false,
        };
        for opt in options.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            match (key, value) {
                ("ro", None) => o.read_only = true,
                ("rw", None) => o.read_only = false,
                ("uid", Some(v)) => o.uid = v.parse().map_err(|_| Errno::EINVAL)?,
                ("gid", Some(v)) => o.gid = v.parse().map_err(|_| Errno::EINVAL)?,
                ("umask", Some(v)) => {
                    let m = octal(v)?;
                    o.fmask = m;
                    o.dmask = m;
                }
                ("fmask", Some(v)) => o.fmask = octal(v)?,
                ("dmask", Some(v)) => o.dmask = octal(v)?,
                ("uid" | "gid" | "umask" | "fmask" | "dmask", None) => return Err(Errno::EINVAL),
                _ => {}
            }
        }
        Ok(o)
    }

    /// Permission bits of a directory.
    pub fn dir_perm(&self) -> u16 {
        (0o777 & !self.dmask) as u16
    }

    /// Permission bits of a regular file; `read_only` is the FAT
    /// read-only attribute, which clears the write bits.
    pub fn file_perm(&self, read_only: bool) -> u16 {
        let perm = 0o777 & !self.fmask;
        let perm = if read_only { perm & !0o222 } else { perm };
        perm as u16
    }
}

/// An octal mask up to 0777.
fn octal(v: &str) -> Result<u32, Errno> {
    match u32::from_str_radix(v, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_vfats() {
        let o = FatOptions::parse("", (5, 6)).unwrap();
        assert_eq!((o.uid, o.gid, o.read_only), (5, 6, false));
        assert_eq!((o.dir_perm(), o.file_perm(false)), (0o755, 0o644));
        assert_eq!(o.file_perm(true), 0o444);
    }

    #[test]
    fn masks_owner_and_ro() {
        let o = FatOptions::parse("uid=1000,gid=100,umask=027,ro,human", (0, 0)).unwrap();
        assert_eq!((o.uid, o.gid, o.read_only), (1000, 100, true));
        assert_eq!((o.dir_perm(), o.file_perm(false)), (0o750, 0o750));
        let o = FatOptions::parse("fmask=0177,dmask=077", (0, 0)).unwrap();
        assert_eq!((o.dir_perm(), o.file_perm(false)), (0o700, 0o600));
    }

    #[test]
    fn malformed_values_are_einval() {
        for bad in ["uid=x", "umask=8", "fmask=1000", "gid", "dmask=-1"] {
            assert_eq!(FatOptions::parse(bad, (0, 0)), Err(Errno::EINVAL), "{bad}");
        }
    }
}
