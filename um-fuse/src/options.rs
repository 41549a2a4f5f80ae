//! The option strings of umfuse: `mount -t umfuseNAME -o OPTIONS` and
//! `umview -p umfuse,SPEC[;SPEC...]`.
//!
//! Mount options, comma separated:
//!
//! | option | meaning |
//! |---|---|
//! | `ro` | read-only: every change is `EROFS` |
//! | `rw`, `rw+` | read-write (the default; `rw+` is the seeds' spelling) |
//! | `human` | permission checks from the files' attributes, for the program making each call (see [`crate::perm`]); otherwise the mount is *omnipotent*: the file system alone decides |
//! | `uid=N`, `gid=N` | who `human` checks are for, and the ids of every request (without them: the calling program's, where a view with identities knows them) |
//! | `fsname=NAME` | a name for the mount (logs) |
//! | `debug` | every FUSE request and its answer on stderr |
//! | `nosuid`, `nodev`, `noexec`, `allow_other`, `default_permissions`, ... | generic options, accepted (the last one is `human`) |
//!
//! Anything else is `EINVAL`, with a line on stderr naming it.
//!
//! A `-p` spec is `type=umfuseNAME,source=SOURCE,target=TARGET` plus mount
//! options: a mount made when the module is loaded. Specs are separated
//! by `;`; `-p umfuse` alone mounts nothing.

use viewos_core::fs::GENERIC_MOUNT_OPTIONS;
use viewos_core::{Errno, MountRequest};

/// The parsed options of one mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `ro`.
    pub read_only: bool,
    /// `human` (or `default_permissions`).
    pub human: bool,
    /// `debug`.
    pub debug: bool,
    /// `fsname=`.
    pub fsname: Option<String>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
}

/// FUSE's own options besides mount(8)'s generic ones, accepted and left
/// to the host.
const FUSE_GENERIC: [&str; 3] = ["allow_other", "allow_root", "auto_unmount"];

fn bad(option: &str) -> Errno {
    eprintln!("umfuse: unknown or malformed mount option `{option}`");
    Errno::EINVAL
}

fn id(option: &str, v: &str) -> Result<u32, Errno> {
    v.parse().map_err(|_| bad(option))
}

/// Parses `-o` options (see the module docs); `flags` are mount(2)'s
/// (`MS_RDONLY` is `ro`); `own` names the options of the submodule (bare
/// words, or keys of `key=value`), accepted and left to it.
pub fn parse(options: &str, flags: u64, own: &[&str]) -> Result<MountOptions, Errno> {
    let mut out = MountOptions {
        read_only: flags & libc::MS_RDONLY != 0,
        ..MountOptions::default()
    };
    for o in options.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            None => match o {
                "ro" => out.read_only = true,
                "rw" | "rw+" => {}
                "human" | "default_permissions" => out.human = true,
                "debug" => out.debug = true,
                g if GENERIC_MOUNT_OPTIONS.contains(&g)
                    || FUSE_GENERIC.contains(&g)
                    || own.contains(&g) => {}
                _ => return Err(bad(o)),
            },
            Some(("uid", v)) => out.uid = Some(id(o, v)?),
            Some(("gid", v)) => out.gid = Some(id(o, v)?),
            Some(("fsname", v)) if !v.is_empty() => out.fsname = Some(v.to_string()),
            Some((k, _)) if own.contains(&k) => {}
            Some(_) => return Err(bad(o)),
        }
    }
    Ok(out)
}

/// Parses the `-p umfuse,SPEC;SPEC` specs into the mounts to make at
/// load; each must name a type, a source and a target (its options are
/// checked when it is mounted, by umfuse and by its submodule).
pub fn parse_preload(specs: &str) -> Result<Vec<MountRequest>, Errno> {
    viewos_core::fs::parse_preload_specs(specs, "umfuse").map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_unknown_ones_are_refused() {
        let o = parse("ro,human,uid=5,gid=6,fsname=x,debug,nosuid", 0, &[]).unwrap();
        assert!(o.read_only && o.human && o.debug);
        assert_eq!(
            (o.uid, o.gid, o.fsname.as_deref()),
            (Some(5), Some(6), Some("x"))
        );
        assert_eq!(parse("rw+", 0, &[]).unwrap(), MountOptions::default());
        assert!(parse("", libc::MS_RDONLY, &[]).unwrap().read_only);
        assert_eq!(parse("bogus", 0, &[]), Err(Errno::EINVAL));
        assert_eq!(parse("uid=x", 0, &[]), Err(Errno::EINVAL));
        assert!(parse("umask=022,norock", 0, &["umask", "norock"]).is_ok());
        assert_eq!(parse("umask=022", 0, &["norock"]), Err(Errno::EINVAL));
    }

    #[test]
    fn preload_specs() {
        let m = parse_preload(
            "type=umfusereal,source=/a,target=/b,ro;type=umfusenull,source=none,target=/c",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].fstype.as_str(), m[0].options.as_str()),
            ("umfusereal", "ro")
        );
        assert_eq!(m[0].flags, libc::MS_RDONLY);
        assert_eq!(m[1].target, std::path::Path::new("/c"));
        assert!(parse_preload("").unwrap().is_empty());
        assert!(parse_preload("type=umfusereal,source=/a").is_err());
        assert!(parse_preload("type=ext2,source=/a,target=/b").is_err());
    }
}
