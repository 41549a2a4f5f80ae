//! Lexical path handling: absolute paths, `.` and `..`, repeated slashes.
//!
//! The host resolves symlinks itself (as the kernel would) and uses these
//! helpers for the purely textual part. Paths are bytes: Linux paths need
//! not be UTF-8.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Joins `base` (absolute) and `path` (absolute or relative) and removes
/// `.`, `..` and repeated slashes without looking at the file system. `..`
/// at the root stays at the root. The result is absolute and has no
/// trailing slash (except `/` itself).
pub fn normalize(base: &Path, path: &[u8]) -> PathBuf {
    let mut parts: Vec<&[u8]> = Vec::new();
    let base_bytes = base.as_os_str().as_bytes();
    let start: &[u8] = if path.first() == Some(&b'/') {
        b""
    } else {
        base_bytes
    };
    for comp in start
        .split(|&b| b == b'/')
        .chain(path.split(|&b| b == b'/'))
    {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(path.len() + base_bytes.len() + 1);
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// The inverse of [`strip_mount_prefix`]: the path `rel` (absolute, `/`
/// being the root) below `root`.
pub fn join_under(root: &Path, rel: &Path) -> PathBuf {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

/// If `path` is `prefix` or below it (on a component boundary), the rest of
/// it as an absolute path (`/` for `prefix` itself).
pub fn strip_mount_prefix(path: &Path, prefix: &Path) -> Option<PathBuf> {
    let p = path.as_os_str().as_bytes();
    let m = prefix.as_os_str().as_bytes();
    if m == b"/" {
        return Some(path.to_path_buf());
    }
    let rest = p.strip_prefix(m)?;
    if rest.is_empty() {
        Some(PathBuf::from("/"))
    } else if rest[0] == b'/' {
        Some(PathBuf::from(OsStr::from_bytes(rest)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(base: &str, p: &str) -> String {
        normalize(Path::new(base), p.as_bytes())
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn normalizes_like_the_kernel_without_symlinks() {
        assert_eq!(n("/home/u", "a/b"), "/home/u/a/b");
        assert_eq!(n("/home/u", "/etc//passwd"), "/etc/passwd");
        assert_eq!(n("/home/u", "../../../x"), "/x");
        assert_eq!(n("/", "."), "/");
        assert_eq!(n("/a", "./b/./c/.."), "/a/b");
        assert_eq!(n("/a", "b/"), "/a/b");
        assert_eq!(n("/a", ""), "/a");
    }

    #[test]
    fn mount_prefix_on_component_boundary() {
        let m = Path::new("/unreal");
        assert_eq!(
            strip_mount_prefix(Path::new("/unreal/etc"), m),
            Some(PathBuf::from("/etc"))
        );
        assert_eq!(
            strip_mount_prefix(Path::new("/unreal"), m),
            Some(PathBuf::from("/"))
        );
        assert_eq!(strip_mount_prefix(Path::new("/unrealx"), m), None);
        assert_eq!(strip_mount_prefix(Path::new("/etc"), m), None);
        assert_eq!(
            strip_mount_prefix(Path::new("/etc"), Path::new("/")),
            Some(PathBuf::from("/etc"))
        );
    }
}
