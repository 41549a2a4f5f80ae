//! The mount options of `umfuseiso9660`, as Linux's isofs names them:
//! `uid=`, `gid=` (owner when the image has no Rock Ridge), `mode=`,
//! `dmode=` (octal permission bits of files and directories then),
//! `norock`, `nojoliet`, `map=normal|off`. Unknown options are ignored;
//! malformed values are `EINVAL`.

use viewos_core::Errno;

/// The options of one ISO mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsoOptions {
    /// Owner of files without Rock Ridge.
    pub uid: u32,
    /// Group of files without Rock Ridge.
    pub gid: u32,
    /// Permission bits of files without Rock Ridge (default 0444).
    pub mode: u16,
    /// Permission bits of directories without Rock Ridge (default 0555).
    pub dmode: u16,
    /// Ignore Rock Ridge.
    pub norock: bool,
    /// Ignore Joliet.
    pub nojoliet: bool,
    /// Lowercase plain ISO names and cut their `;1` (`map=normal`, the
    /// default) or show them as stored (`map=off`).
    pub map_normal: bool,
}

impl IsoOptions {
    /// The options of `options` (comma separated), with `uid`/`gid`
    /// defaulting to `owner`.
    pub fn parse(options: &str, owner: (u32, u32)) -> Result<IsoOptions, Errno> {
        let mut o = IsoOptions {
            uid: owner.0,
            gid: owner.1,
            mode: 0o444,
            dmode: 0o555,
            norock: false,
            nojoliet: false,
            map_normal: true,
        };
        let octal = |v: &str| match u16::from_str_radix(v, 8) {
            Ok(m) if m <= 0o7777 => Ok(m),
            _ => Err(Errno::EINVAL),
        };
        for opt in options.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match opt.split_once('=') {
                Some(("uid", v)) => o.uid = v.parse().map_err(|_| Errno::EINVAL)?,
                Some(("gid", v)) => o.gid = v.parse().map_err(|_| Errno::EINVAL)?,
                Some(("mode", v)) => o.mode = octal(v)?,
                Some(("dmode", v)) => o.dmode = octal(v)?,
                Some(("map", "normal" | "n")) => o.map_normal = true,
                Some(("map", "off" | "o")) => o.map_normal = false,
                Some(("map", _)) => return Err(Errno::EINVAL),
                None if opt == "norock" => o.norock = true,
                None if opt == "nojoliet" => o.nojoliet = true,
                _ => {}
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let o =
            IsoOptions::parse("ro,uid=3,gid=4,mode=0640,dmode=750,norock,map=off", (0, 0)).unwrap();
        assert_eq!((o.uid, o.gid, o.mode, o.dmode), (3, 4, 0o640, 0o750));
        assert!(o.norock && !o.nojoliet && !o.map_normal);
        assert_eq!(IsoOptions::parse("mode=9", (0, 0)), Err(Errno::EINVAL));
        assert_eq!(IsoOptions::parse("map=x", (0, 0)), Err(Errno::EINVAL));
    }
}
