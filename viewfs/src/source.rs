//! The SOURCE of a mount: found through the view below the mount, its
//! symlinks followed as the kernel would, and checked against TARGET.
//!
//! The host resolves a mount's TARGET but hands SOURCE over as the program
//! wrote it; the layers' paths must be canonical (the view below a mount
//! expects resolved paths), so viewfs resolves it itself.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use viewos_core::path::strip_mount_prefix;
use viewos_core::{Errno, FileSystem};

/// The kernel's limit on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

/// `path` (absolute) with every symlink on the way followed in `io`, and
/// `.`/`..` removed; errors as a lookup of it would give (`ENOENT`,
/// `ENOTDIR`, `ELOOP`). A relative path is `EINVAL`: the caller's
/// directory is not known here.
pub fn canonical(io: &dyn FileSystem, path: &Path) -> Result<PathBuf, Errno> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(Errno::EINVAL);
    }
    let mut pending: VecDeque<Vec<u8>> = components(bytes).collect();
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        match c.as_slice() {
            b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => done.push(c),
        }
        let here = join(&done);
        let st = io.lstat(&here)?;
        if st.is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::ELOOP);
            }
            let target = io.readlink(&here)?;
            let t = target.as_os_str().as_bytes();
            done.pop();
            if t.first() == Some(&b'/') {
                done.clear();
            }
            for (i, c) in components(t).enumerate() {
                pending.insert(i, c);
            }
        } else if !pending.is_empty() && !st.is_dir() {
            return Err(Errno::ENOTDIR);
        }
    }
    Ok(join(&done))
}

fn components(p: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| c.to_vec())
}

fn join(parts: &[Vec<u8>]) -> PathBuf {
    let mut out = Vec::new();
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// True if `inner` is `outer` or below it.
pub fn is_within(inner: &Path, outer: &Path) -> bool {
    strip_mount_prefix(inner, outer).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use viewos_core::real::RealFs;

    #[test]
    fn follows_symlinks_like_the_kernel() {
        let t = TestDir::new("source");
        t.mkdir("real/sub");
        t.write("file", "x");
        std::os::unix::fs::symlink("real", t.join("rel")).unwrap();
        std::os::unix::fs::symlink(t.join("real/sub"), t.join("abs")).unwrap();
        std::os::unix::fs::symlink("loop", t.join("loop")).unwrap();
        let canon = |p: &str| canonical(&RealFs, &t.join(p));
        assert_eq!(canon("rel/sub").unwrap(), t.join("real/sub"));
        assert_eq!(canon("abs/../sub/.").unwrap(), t.join("real/sub"));
        assert_eq!(canon("rel").unwrap(), t.join("real"));
        assert_eq!(canon("none"), Err(Errno::ENOENT));
        assert_eq!(canon("file/x"), Err(Errno::ENOTDIR));
        assert_eq!(canon("loop"), Err(Errno::ELOOP));
        assert_eq!(canonical(&RealFs, Path::new("rel")), Err(Errno::EINVAL));
        assert_eq!(canonical(&RealFs, Path::new("/")).unwrap(), Path::new("/"));
    }

    #[test]
    fn within() {
        assert!(is_within(Path::new("/a/b"), Path::new("/a")));
        assert!(is_within(Path::new("/a"), Path::new("/a")));
        assert!(is_within(Path::new("/a"), Path::new("/")));
        assert!(!is_within(Path::new("/ab"), Path::new("/a")));
        assert!(!is_within(Path::new("/a"), Path::new("/a/b")));
    }
}
