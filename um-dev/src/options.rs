//! The option strings of umdev: `mount -t umdevTYPE -o OPTIONS` and
//! `umview -p umdev,SPEC[;SPEC...]`.
//!
//! Mount options, comma separated:
//!
//! | option | types | meaning |
//! |---|---|---|
//! | `ro` | all | a read-only device: writes are `EPERM` (the image is opened for reading) |
//! | `rw` | all | read-write; for `umdevmbr` the image must open for writing (else the mount fails with that error); without `ro` or `rw` a read-only image gives a read-only disk |
//! | `debug` | all | every request (open, read, write, ioctl, release) on stderr |
//! | `mode=OCTAL`, `uid=N`, `gid=N` | all | the nodes' permissions and owner |
//! | `size=N[K,M,G,T]` | `umdevramdisk` | the size (required; a whole number of 512-byte sectors) |
//! | `mbr` | `umdevramdisk` | partitionable, as an `umdevmbr` disk |
//! | `vde=URL` | `umdevtap` | the VDE switch the tap interface plugs into |
//! | `nosuid`, `nodev`, `noatime`, ... | all | mount(8)'s generic options, accepted |
//!
//! Anything else is `EINVAL`, with a line on stderr naming it.
//!
//! A `-p` spec is `type=umdevTYPE,source=SOURCE,target=TARGET` plus mount
//! options: a mount made when the module is loaded. Specs are separated by
//! `;`; `-p umdev` alone mounts nothing.

use viewos_core::fs::GENERIC_MOUNT_OPTIONS;
use viewos_core::{Errno, MountRequest};

/// How the device's backing is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Read-write if the image allows, read-only otherwise.
    #[default]
    Default,
    /// `ro` (or `MS_RDONLY`).
    ReadOnly,
    /// `rw`: read-write or fail.
    ReadWrite,
}

/// The parsed options of one mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevOptions {
    /// `ro`, `rw`.
    pub access: Access,
    /// `debug`.
    pub debug: bool,
    /// `mode=`.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `size=`, in bytes.
    pub size: Option<u64>,
    /// `mbr`.
    pub mbr: bool,
    /// `vde=`.
    pub vde: Option<String>,
}

fn bad(option: &str) -> Errno {
    eprintln!("umdev: unknown or malformed mount option `{option}`");
    Errno::EINVAL
}

/// A size: a number of bytes with an optional binary suffix (`K`, `M`,
/// `G`, `T`, also spelled `KiB`, `k`, ...).
pub fn parse_size(v: &str) -> Option<u64> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let (n, suffix) = v.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// Parses `-o` options (see the module docs); `flags` are mount(2)'s
/// (`MS_RDONLY` is `ro`); `own` names the options of the device type
/// (`size`, `mbr`, `vde`) this mount accepts.
pub fn parse(options: &str, flags: u64, own: &[&str]) -> Result<DevOptions, Errno> {
    let mut out = DevOptions::default();
    if flags & libc::MS_RDONLY != 0 {
        out.access = Access::ReadOnly;
    }
    let id = |o: &str, v: &str| v.parse::<u32>().map_err(|_| bad(o));
    for o in options.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o, None),
        };
        if ["size", "mbr", "vde"].contains(&key) && !own.contains(&key) {
            return Err(bad(o));
        }
        match (key, value) {
            ("ro", None) => out.access = Access::ReadOnly,
            ("rw", None) if out.access != Access::ReadOnly => out.access = Access::ReadWrite,
            ("rw", None) => {}
            ("debug", None) => out.debug = true,
            ("mbr", None) => out.mbr = true,
            ("mode", Some(v)) => {
                let m = u32::from_str_radix(v, 8).map_err(|_| bad(o))?;
                if m > 0o7777 {
                    return Err(bad(o));
                }
                out.mode = Some(m);
            }
            ("uid", Some(v)) => out.uid = Some(id(o, v)?),
            ("gid", Some(v)) => out.gid = Some(id(o, v)?),
            ("size", Some(v)) => out.size = Some(parse_size(v).ok_or_else(|| bad(o))?),
            ("vde", Some(v)) if !v.is_empty() => out.vde = Some(v.to_string()),
            (g, None) if GENERIC_MOUNT_OPTIONS.contains(&g) => {}
            _ => return Err(bad(o)),
        }
    }
    Ok(out)
}

/// Parses the `-p umdev,SPEC;SPEC` specs into the mounts to make at load;
/// each must name a type, a source and an absolute target (its options are
/// checked when it is mounted).
pub fn parse_preload(specs: &str) -> Result<Vec<MountRequest>, Errno> {
    viewos_core::fs::parse_preload_specs(specs, "umdev").map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100M"), Some(100 << 20));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("5X"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn options_parse_and_unknown_ones_are_refused() {
        let o = parse(
            "size=1M,mbr,debug,mode=0640,uid=5,gid=6,nosuid",
            0,
            &["size", "mbr"],
        )
        .unwrap();
        assert_eq!(o.size, Some(1 << 20));
        assert!(o.mbr && o.debug);
        assert_eq!((o.mode, o.uid, o.gid), (Some(0o640), Some(5), Some(6)));
        assert_eq!(parse("", 0, &[]).unwrap().access, Access::Default);
        assert_eq!(parse("rw", 0, &[]).unwrap().access, Access::ReadWrite);
        assert_eq!(parse("ro,rw", 0, &[]).unwrap().access, Access::ReadOnly);
        assert_eq!(
            parse("rw", libc::MS_RDONLY, &[]).unwrap().access,
            Access::ReadOnly
        );
        // Options of another type, or none at all.
        assert_eq!(parse("size=1M", 0, &[]), Err(Errno::EINVAL));
        assert_eq!(parse("vde=/tmp/s", 0, &["size"]), Err(Errno::EINVAL));
        assert_eq!(parse("bogus", 0, &[]), Err(Errno::EINVAL));
        assert_eq!(parse("mode=999", 0, &[]), Err(Errno::EINVAL));
        assert_eq!(parse("size=lots", 0, &["size"]), Err(Errno::EINVAL));
        assert_eq!(
            parse("vde=vde:///tmp/sw", 0, &["vde"])
                .unwrap()
                .vde
                .as_deref(),
            Some("vde:///tmp/sw")
        );
    }

    #[test]
    fn preload_specs() {
        let m = parse_preload(
            "type=umdevmbr,source=/a.img,target=/dev/hda,ro;type=umdevnull,source=none,target=/n",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].fstype.as_str(), m[0].options.as_str()),
            ("umdevmbr", "ro")
        );
        assert_eq!(m[0].flags, libc::MS_RDONLY);
        assert_eq!(m[1].target, std::path::Path::new("/n"));
        assert!(parse_preload("").unwrap().is_empty());
        assert!(parse_preload("type=umdevmbr,source=/a").is_err());
        assert!(parse_preload("type=ext2,source=/a,target=/b").is_err());
    }
}
