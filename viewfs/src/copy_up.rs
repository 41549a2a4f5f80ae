//! Copy-up: bringing a TARGET file or directory into the copy-on-write
//! layer before it changes.
//!
//! A copy keeps the type, the data (holes stay holes), the permission
//! bits, the owner when the user may give it (root), the extended
//! attributes the layer accepts, and the times. A file is written under a
//! hidden temporary name and renamed into place, so the view never shows
//! half a copy. Directories on the way are made as needed, with TARGET's
//! times restored after their children are made; while one is in use it
//! stays writable for the user, and gets its own mode back when the
//! operation is done ([`ModeGuard`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use viewos_core::{Errno, FileHandle, FileStat, SetTime};

use crate::cow_lookup::Lookup;
use crate::layer::{parent_of, Layer};

/// Directories of the layer made writable for an operation, given their
/// own mode back on drop.
pub struct ModeGuard<'a> {
    upper: &'a Layer,
    restore: Vec<(PathBuf, u32)>,
}

impl Drop for ModeGuard<'_> {
    fn drop(&mut self) {
        for (p, mode) in self.restore.iter().rev() {
            let _ = self.upper.fs().chmod(&self.upper.at(p), *mode);
        }
    }
}

/// A fresh hidden name (it has the reserved prefix) in the directory `dir`.
pub fn temp_in(dir: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".wh..wh.tmp.{}.{n}", std::process::id()))
}

/// Makes sure the layer has the directory `dir` and every directory above
/// it, copying them from TARGET.
pub fn ensure_dir<'a>(look: &'a Lookup, dir: &Path) -> Result<ModeGuard<'a>, Errno> {
    let (upper, lower) = (look.upper(), look.lower());
    let mut guard = ModeGuard {
        upper,
        restore: Vec::new(),
    };
    let mut chain: Vec<&Path> = dir.ancestors().collect();
    chain.reverse();
    let mut made: Vec<(&Path, FileStat)> = Vec::new();
    for d in chain.into_iter().skip(1) {
        let node = look.find(d)?;
        match node.upper {
            Some(st) if st.is_dir() => continue,
            Some(_) => return Err(Errno::ENOTDIR),
            None => {}
        }
        let st = node.lower.ok_or(Errno::ENOENT)?;
        if !st.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let bits = st.mode & 0o7777;
        match upper.fs().mkdir(&upper.at(d), bits | 0o700) {
            Err(e) if e == Errno::EEXIST => continue,
            r => r?,
        }
        copy_meta(upper, d, lower, d, &st, Some(bits | 0o700));
        if bits & 0o700 != 0o700 {
            guard.restore.push((d.to_path_buf(), bits));
        }
        made.push((d, st));
        look.invalidate();
    }
    // Making each directory's child changed its times: TARGET's again.
    for (d, st) in made {
        set_times(upper, d, &st);
    }
    Ok(guard)
}

/// Copies what TARGET has at `p` (status `st`) into the layer; without
/// `with_data` a regular file is copied empty (it is about to be
/// truncated).
pub fn copy(look: &Lookup, p: &Path, st: &FileStat, with_data: bool) -> Result<(), Errno> {
    if st.is_dir() {
        return ensure_dir(look, p).map(drop);
    }
    let (upper, lower) = (look.upper(), look.lower());
    let parent = parent_of(p);
    let _guard = ensure_dir(look, parent)?;
    let parent_st = upper.lstat(parent)?;
    let tmp = temp_in(parent);
    let made = (|| {
        match st.file_type() {
            libc::S_IFREG => {
                // An empty file (a lock file only its owner may read) has
                // no bytes to copy: TARGET's is not opened.
                let data = with_data && st.size > 0;
                let src = if data {
                    Some(lower.handle(p, libc::O_RDONLY, 0)?)
                } else {
                    None
                };
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
                let dst = upper.handle(&tmp, flags, 0o600)?;
                if let Some(src) = src {
                    copy_data(&*src, &*dst)?;
                }
            }
            libc::S_IFLNK => {
                let target = lower.fs().readlink(&lower.at(p))?;
                upper.fs().symlink(&target, &upper.at(&tmp))?;
            }
            _ => upper.fs().mknod(&upper.at(&tmp), st.mode, st.rdev)?,
        }
        let mode = (!st.is_symlink()).then_some(st.mode & 0o7777);
        copy_meta(upper, &tmp, lower, p, st, mode);
        upper.fs().rename(&upper.at(&tmp), &upper.at(p), 0)
    })();
    if made.is_err() {
        let _ = upper.fs().unlink(&upper.at(&tmp));
    }
    // A copy is no change of the directory holding it.
    set_times(upper, parent, &parent_st);
    made
}

/// Copies the bytes of `src` into `dst`, leaving holes where `src` reads
/// as zeros, and sets `dst`'s length to what was read.
pub fn copy_data(src: &dyn FileHandle, dst: &dyn FileHandle) -> Result<(), Errno> {
    const CHUNK: usize = 1 << 20;
    const BLOCK: usize = 64 * 1024;
    let mut buf = vec![0u8; CHUNK];
    let zeros = vec![0u8; BLOCK];
    let mut off = 0u64;
    loop {
        // A served file that claims more than was asked gets no trust.
        let n = src.read(off, &mut buf)?.min(buf.len());
        if n == 0 {
            break;
        }
        for (i, block) in buf[..n].chunks(BLOCK).enumerate() {
            // Blocks of zeros are left as holes.
            if block != &zeros[..block.len()] {
                write_all(dst, off + (i * BLOCK) as u64, block)?;
            }
        }
        off += n as u64;
    }
    dst.truncate(off)
}

fn write_all(dst: &dyn FileHandle, at: u64, data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < data.len() {
        let w = dst.write(at + done as u64, &data[done..])?;
        if w == 0 {
            return Err(Errno::EIO);
        }
        done += w;
    }
    Ok(())
}

/// Owner (when allowed), `mode` (if given), extended attributes and times
/// of the TARGET file `from` (status `st`) onto the layer's `to`.
/// Failures are ignored: a user cannot give files away, and a layer may
/// refuse some attribute namespaces.
fn copy_meta(
    upper: &Layer,
    to: &Path,
    lower: &Layer,
    from: &Path,
    st: &FileStat,
    mode: Option<u32>,
) {
    let dst = upper.at(to);
    let _ = upper.fs().chown(&dst, Some(st.uid), Some(st.gid));
    if let Some(m) = mode {
        let _ = upper.fs().chmod(&dst, m);
    }
    let src = lower.at(from);
    if let Ok(names) = lower.fs().listxattr(&src) {
        for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            if let Ok(v) = lower.fs().getxattr(&src, name) {
                let _ = upper.fs().setxattr(&dst, name, &v, 0);
            }
        }
    }
    set_times(upper, to, st);
}

fn set_times(upper: &Layer, p: &Path, st: &FileStat) {
    let _ = upper
        .fs()
        .utimens(&upper.at(p), SetTime::At(st.atime), SetTime::At(st.mtime));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::sync::Arc;
    use viewos_core::real::RealFs;

    fn lookup(t: &TestDir) -> Lookup {
        t.mkdir("up");
        Lookup::new(
            Layer::new(Arc::new(RealFs), t.join("up")),
            Layer::new(Arc::new(RealFs), t.join("low")),
        )
    }

    #[test]
    fn copies_data_mode_times_and_the_directories_on_the_way() {
        let t = TestDir::new("copy-up");
        let f = t.write("low/a/b/f", "hello");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("f", t.join("low/a/b/l")).unwrap();
        let look = lookup(&t);
        let low = look.lower().clone();
        let st = low.lstat(Path::new("/a/b/f")).unwrap();
        copy(&look, Path::new("/a/b/f"), &st, true).unwrap();
        assert_eq!(t.read("up/a/b/f").as_deref(), Some("hello"));
        let m = std::fs::metadata(t.join("up/a/b/f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(m.mtime(), st.mtime.sec);
        let dir = std::fs::metadata(t.join("low/a")).unwrap();
        let copied = std::fs::metadata(t.join("up/a")).unwrap();
        assert_eq!(copied.mtime(), dir.mtime());
        assert_eq!(copied.mode(), dir.mode());
        let lst = low.lstat(Path::new("/a/b/l")).unwrap();
        copy(&look, Path::new("/a/b/l"), &lst, true).unwrap();
        assert_eq!(
            std::fs::read_link(t.join("up/a/b/l")).unwrap(),
            Path::new("f")
        );
        // Without data: an empty copy.
        copy(&look, Path::new("/a/b/f"), &st, false).unwrap();
        assert_eq!(t.read("up/a/b/f").as_deref(), Some(""));
        // No temporary names are left.
        let names: Vec<_> = std::fs::read_dir(t.join("up/a/b")).unwrap().collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn holes_stay_holes() {
        let t = TestDir::new("copy-sparse");
        let p = t.join("low/sparse");
        std::fs::create_dir_all(t.join("low")).unwrap();
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(64 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_at(b"end", (64 << 20) - 3).unwrap();
        f.write_at(b"start", 0).unwrap();
        let look = lookup(&t);
        let st = look.lower().lstat(Path::new("/sparse")).unwrap();
        copy(&look, Path::new("/sparse"), &st, true).unwrap();
        let m = std::fs::metadata(t.join("up/sparse")).unwrap();
        assert_eq!(m.len(), 64 << 20);
        assert!(m.blocks() * 512 < 1 << 20, "{} blocks", m.blocks());
        let data = std::fs::read(t.join("up/sparse")).unwrap();
        assert_eq!(&data[..5], b"start");
        assert_eq!(&data[data.len() - 3..], b"end");
    }

    #[test]
    fn directories_without_owner_write_are_writable_while_used() {
        let t = TestDir::new("copy-ro-dir");
        t.write("low/ro/sub/f", "x");
        std::fs::set_permissions(t.join("low/ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let look = lookup(&t);
        {
            let _g = ensure_dir(&look, Path::new("/ro/sub")).unwrap();
            let m = std::fs::metadata(t.join("up/ro")).unwrap();
            assert_eq!(m.mode() & 0o777, 0o755);
        }
        let m = std::fs::metadata(t.join("up/ro")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o555);
        std::fs::set_permissions(t.join("low/ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(t.join("up/ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
