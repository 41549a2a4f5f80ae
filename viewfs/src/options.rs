//! The option strings of viewfs: `mount -t viewfs -o OPTIONS` and
//! `umview -p viewfs,SPEC[;SPEC...]`.
//!
//! Mount options, comma separated, in any order:
//!
//! | option | meaning |
//! |---|---|
//! | `move` (default), `hide`, `merge`, `cow`, `mincow` | the mode (also `mode=NAME`) |
//! | `mode=OCTAL` | permission bits every file shows (directories also get `x` where `r` is given) |
//! | `uid=N`, `gid=N` | the owner and group every file shows |
//! | `rules=FILE` | per-path `mode=`/`uid=`/`gid=` rules (see [`crate::rules`]); FILE is an absolute path of the view |
//! | `served` | `cow`: TARGET's files opened for reading are served, not handed over as real fds |
//! | `except=PATH[:PATH...]` | sub-paths of TARGET left out of the mount (they show the tree below it); relative to TARGET, a leading `/` allowed |
//! | `ro`, `rw`, `nosuid`, `nodev`, `noexec`, ... | generic mount flags (the host applies `ro`) |
//!
//! Anything else is `EINVAL`, as mount(2) answers unknown options.
//!
//! A `-p` spec is the same list plus `source=PATH` and `target=PATH`: the
//! mount the module makes when it is loaded. Several specs are separated
//! by `;`. `-p viewfs` alone loads the module without mounting anything.

use std::path::{Path, PathBuf};

use viewos_core::fs::GENERIC_MOUNT_OPTIONS;
use viewos_core::{Errno, MountRequest};

/// What a mount shows at its TARGET.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// SOURCE's tree.
    #[default]
    Move,
    /// Nothing: TARGET and below do not exist.
    Hide,
    /// The union of SOURCE over TARGET.
    Merge,
    /// TARGET, with every change kept in SOURCE.
    Cow,
    /// TARGET, changed in place where the user may, in SOURCE otherwise.
    MinCow,
}

impl Mode {
    fn parse(name: &str) -> Option<Mode> {
        Some(match name {
            "move" | "bind" => Mode::Move,
            "hide" => Mode::Hide,
            "merge" => Mode::Merge,
            "cow" => Mode::Cow,
            "mincow" => Mode::MinCow,
            _ => return None,
        })
    }

    /// True for the modes that read SOURCE.
    pub fn uses_source(self) -> bool {
        self != Mode::Hide
    }
}

/// Redefined permissions (`mode=`, `uid=`, `gid=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Perm {
    /// Permission bits shown for every file.
    pub mode: Option<u32>,
    /// Owner shown for every file.
    pub uid: Option<u32>,
    /// Group shown for every file.
    pub gid: Option<u32>,
}

impl Perm {
    /// True if nothing is redefined.
    pub fn is_empty(&self) -> bool {
        *self == Perm::default()
    }
}

/// The parsed options of one mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// The mode.
    pub mode: Mode,
    /// Redefined permissions.
    pub perm: Perm,
    /// Paths left out, absolute below TARGET (`/sub/dir`), normalized.
    pub except: Vec<PathBuf>,
    /// `cow`: TARGET's files opened for reading are served, not handed
    /// over, so no call on them can reach TARGET.
    pub served: bool,
    /// A file of per-path permission rules (`rules=`, absolute).
    pub rules: Option<PathBuf>,
}

fn number(v: &str, radix: u32) -> Result<u32, Errno> {
    u32::from_str_radix(v, radix).map_err(|_| Errno::EINVAL)
}

fn except_paths(list: &str) -> Result<Vec<PathBuf>, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for p in list.split(':') {
        if p.is_empty() {
            return Err(Errno::EINVAL);
        }
        let n = viewos_core::path::normalize(Path::new("/"), p.as_bytes());
        if n.as_os_str().as_bytes() == b"/" {
            return Err(Errno::EINVAL);
        }
        out.push(n);
    }
    Ok(out)
}

/// Parses `mount -o` options (see the module docs).
pub fn parse(options: &str) -> Result<MountOptions, Errno> {
    let mut out = MountOptions::default();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o, None),
        };
        match (key, value) {
            (name, None) if Mode::parse(name).is_some() => {
                out.mode = Mode::parse(name).ok_or(Errno::EINVAL)?;
            }
            ("mode", Some(v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                let bits = number(v, 8)?;
                if bits > 0o7777 {
                    return Err(Errno::EINVAL);
                }
                out.perm.mode = Some(bits);
            }
            ("mode", Some(v)) => out.mode = Mode::parse(v).ok_or(Errno::EINVAL)?,
            ("uid", Some(v)) => out.perm.uid = Some(number(v, 10)?),
            ("gid", Some(v)) => out.perm.gid = Some(number(v, 10)?),
            ("except", Some(v)) => out.except.extend(except_paths(v)?),
            ("served", None) => out.served = true,
            ("rules", Some(v)) if v.starts_with('/') => out.rules = Some(PathBuf::from(v)),
            (g, None) if g == "ro" || g == "rw" || GENERIC_MOUNT_OPTIONS.contains(&g) => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    Ok(out)
}

/// The mounts of a `-p viewfs,SPEC[;SPEC...]` option string (see the
/// module docs), checked as far as can be without the file system.
pub fn parse_preload(spec: &str) -> Result<Vec<MountRequest>, Errno> {
    let mut out = Vec::new();
    for one in spec.split(';').filter(|s| !s.is_empty()) {
        let (mut source, mut target) = (None, None);
        let mut rest = Vec::new();
        for o in one.split(',') {
            if let Some(v) = o.strip_prefix("source=") {
                source = Some(v.to_string());
            } else if let Some(v) = o.strip_prefix("target=") {
                target = Some(v.to_string());
            } else {
                rest.push(o);
            }
        }
        let options = rest.join(",");
        let parsed = parse(&options)?;
        let target = target.ok_or(Errno::EINVAL)?;
        if !target.starts_with('/') {
            return Err(Errno::EINVAL);
        }
        let source = match source {
            Some(s) => s,
            None if !parsed.mode.uses_source() => "none".to_string(),
            None => return Err(Errno::EINVAL),
        };
        let ro = options.split(',').any(|o| o == "ro");
        out.push(MountRequest {
            source,
            target: viewos_core::path::normalize(Path::new("/"), target.as_bytes()),
            fstype: "viewfs".into(),
            flags: if ro { libc::MS_RDONLY } else { 0 },
            options,
            fd: None,
            launcher: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_permissions_and_exceptions() {
        assert_eq!(parse("").unwrap(), MountOptions::default());
        let o = parse("cow,mode=0444,uid=1000,gid=7,except=proc:/dev//x:tmp/").unwrap();
        assert_eq!(o.mode, Mode::Cow);
        assert_eq!(
            o.perm,
            Perm {
                mode: Some(0o444),
                uid: Some(1000),
                gid: Some(7)
            }
        );
        assert_eq!(o.except, ["/proc", "/dev/x", "/tmp"].map(PathBuf::from));
        assert_eq!(parse("mode=mincow,ro,nosuid").unwrap().mode, Mode::MinCow);
        assert_eq!(parse("hide").unwrap().mode, Mode::Hide);
        assert_eq!(parse("merge").unwrap().mode, Mode::Merge);
        assert!(parse("move").unwrap().perm.is_empty());
        assert!(parse("cow,served").unwrap().served);
        assert_eq!(
            parse("rules=/etc/r").unwrap().rules,
            Some(PathBuf::from("/etc/r"))
        );
    }

    #[test]
    fn bad_options_are_einval() {
        for bad in [
            "cowx",
            "mode=",
            "mode=0999",
            "mode=17777",
            "mode=fast",
            "uid=-1",
            "uid=",
            "gid=x",
            "except=",
            "except=a::b",
            "except=/",
            "source=/x",
            "hide=1",
            "rules=relative",
            "rules",
        ] {
            assert_eq!(parse(bad), Err(Errno::EINVAL), "{bad}");
        }
    }

    #[test]
    fn preload_specs() {
        let m = parse_preload("cow,source=/l,target=/t/;hide,target=/h,ro").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].source, "/l");
        assert_eq!(m[0].target, Path::new("/t"));
        assert_eq!(m[0].options, "cow");
        assert_eq!(m[0].fstype, "viewfs");
        assert_eq!(m[1].source, "none");
        assert_eq!(m[1].flags, libc::MS_RDONLY);
        assert!(parse_preload("").unwrap().is_empty());
        assert_eq!(parse_preload("cow,target=/t"), Err(Errno::EINVAL));
        assert_eq!(parse_preload("source=/s"), Err(Errno::EINVAL));
        assert_eq!(parse_preload("source=/s,target=rel"), Err(Errno::EINVAL));
        assert_eq!(
            parse_preload("bogus,source=/s,target=/t"),
            Err(Errno::EINVAL)
        );
    }
}
