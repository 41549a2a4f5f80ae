//! Per-path permission rules (`-o rules=FILE`).
//!
//! The rules file, read through the view below the mount when it is
//! mounted, has one rule per line:
//!
//! ```text
//! # comments and empty lines are ignored
//! /              mode=0755 uid=0 gid=0
//! /secret        mode=0700
//! /bin/tool      mode=0755 uid=1000
//! ```
//!
//! A rule's path is relative to the mount root (a leading `/` optional)
//! and covers that path and everything below it; its fields are
//! `mode=OCTAL`, `uid=N` and `gid=N`, each optional. For a file, every
//! covering rule applies from the shortest path to the longest, so a
//! deeper rule overrides what it sets and inherits the rest; the mount's
//! own `mode=`/`uid=`/`gid=` options are the rule for `/` that comes
//! first. A line that does not parse makes the mount fail (`EINVAL`).

use std::path::{Path, PathBuf};

use viewos_core::{Errno, FileSystem};

use crate::layer::into_handle;
use crate::options::Perm;
use crate::source::is_within;

/// Rules by path, shortest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<(PathBuf, Perm)>,
}

/// Sets in `to` what `from` sets.
fn overlay(to: &mut Perm, from: &Perm) {
    to.mode = from.mode.or(to.mode);
    to.uid = from.uid.or(to.uid);
    to.gid = from.gid.or(to.gid);
}

impl Rules {
    /// `base` for the whole tree, then the rules of `text`.
    pub fn parse(base: Perm, text: &str) -> Result<Rules, Errno> {
        let mut rules = vec![(PathBuf::from("/"), base)];
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let path = words.next().ok_or(Errno::EINVAL)?;
            let path = viewos_core::path::normalize(Path::new("/"), path.as_bytes());
            let mut perm = Perm::default();
            for w in words {
                let (k, v) = w.split_once('=').ok_or(Errno::EINVAL)?;
                let num = |radix| u32::from_str_radix(v, radix).map_err(|_| Errno::EINVAL);
                match k {
                    "mode" => {
                        let m = num(8)?;
                        if m > 0o7777 {
                            return Err(Errno::EINVAL);
                        }
                        perm.mode = Some(m);
                    }
                    "uid" => perm.uid = Some(num(10)?),
                    "gid" => perm.gid = Some(num(10)?),
                    _ => return Err(Errno::EINVAL),
                }
            }
            rules.push((path, perm));
        }
        // Stable: of equal paths, the later line wins.
        rules.sort_by_key(|(p, _)| p.as_os_str().len());
        Ok(Rules { rules })
    }

    /// Reads the rules file `file` (a path of the view below the mount)
    /// through `io`.
    pub fn read(base: Perm, io: &dyn FileSystem, file: &Path) -> Result<Rules, Errno> {
        let h = into_handle(io.open(file, libc::O_RDONLY, 0)?)?;
        let mut data = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = h.read(data.len() as u64, &mut buf)?.min(buf.len());
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            if data.len() > 1 << 20 {
                return Err(Errno::EINVAL);
            }
        }
        let text = String::from_utf8(data).map_err(|_| Errno::EINVAL)?;
        Rules::parse(base, &text)
    }

    /// What applies to `p`.
    pub fn at(&self, p: &Path) -> Perm {
        let mut out = Perm::default();
        for (path, perm) in &self.rules {
            if is_within(p, path) {
                overlay(&mut out, perm);
            }
        }
        out
    }

    /// True if no rule redefines anything.
    pub fn is_empty(&self) -> bool {
        self.rules.iter().all(|(_, p)| p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeper_rules_override_what_they_set() {
        let base = Perm {
            mode: Some(0o444),
            uid: None,
            gid: Some(5),
        };
        let r = Rules::parse(
            base,
            "# rules\n\nsecret mode=0700 uid=7\n/secret/open mode=0755\n/a/b uid=9\n",
        )
        .unwrap();
        let at = |p: &str| r.at(Path::new(p));
        assert_eq!(at("/x"), base);
        assert_eq!(
            at("/secret/f"),
            Perm {
                mode: Some(0o700),
                uid: Some(7),
                gid: Some(5)
            }
        );
        assert_eq!(at("/secret/open/f").mode, Some(0o755));
        assert_eq!(at("/secret/open/f").uid, Some(7));
        assert_eq!(at("/secretary").mode, Some(0o444));
        assert_eq!(at("/a/b").uid, Some(9));
        assert!(!r.is_empty());
        assert!(Rules::parse(Perm::default(), "").unwrap().is_empty());
    }

    #[test]
    fn bad_lines_are_einval() {
        for bad in [
            "/x mode=9",
            "/x uid",
            "/x size=3",
            "/x mode=77777",
            "/x gid=-1",
        ] {
            assert_eq!(
                Rules::parse(Perm::default(), bad),
                Err(Errno::EINVAL),
                "{bad}"
            );
        }
    }

    #[test]
    fn read_through_a_file_system() {
        let t = crate::testdir::TestDir::new("rules");
        let f = t.write("rules", "/d uid=3\n");
        let r = Rules::read(Perm::default(), &viewos_core::real::RealFs, &f).unwrap();
        assert_eq!(r.at(Path::new("/d/x")).uid, Some(3));
        assert_eq!(
            Rules::read(Perm::default(), &viewos_core::real::RealFs, &t.join("none")),
            Err(Errno::ENOENT)
        );
    }
}
