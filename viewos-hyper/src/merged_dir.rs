//! Real directories listed with the mount points they hold.
//!
//! A mount point need not exist on the real file system (`-p unreal`
//! mounts on `/unreal`). The kernel's listing of its parent would then
//! miss it, so `ls /` would not show what `cd /unreal` enters. When a
//! program opens such a parent as a directory, the host serves the listing
//! itself ([`MergedDir`]): the mount points' names first, then the
//! directory's own entries (a real directory, or a directory of a mount
//! that holds further mounts). The other way round, a mount whose root
//! does not exist (viewfs `hide`) takes its name out of the listing.
//!
//! Cookies (`d_off`, `telldir`) are positions in that merged order; the
//! inner cookie each position continues from is remembered as the listing
//! goes, since file systems use cookies of their own (hashes on ext4).

use std::path::Path;
use std::sync::Mutex;

use viewos_core::mounts::MountTable;
use viewos_core::{DirEntry, Errno, FileHandle, FileStat};

/// A mount point to add to a listing.
#[derive(Clone, Debug)]
pub struct Extra {
    /// Its name in the directory.
    pub name: Vec<u8>,
    /// The inode number its root reports.
    pub ino: u64,
    /// Its `d_type`.
    pub kind: u8,
    /// True for a name to take out of the listing (a mount whose root
    /// does not exist), not to add.
    pub hidden: bool,
}

/// The mount points directly below `dir` (canonical, absolute) whose names
/// the directory below them does not hold (the real directory, or the
/// directory of the mount serving `dir`).
pub fn extras_of(mounts: &MountTable, dir: &Path) -> Vec<Extra> {
    use std::os::unix::ffi::OsStrExt;
    let mut out: Vec<Extra> = Vec::new();
    for m in mounts.iter() {
        let target = &m.request.target;
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            continue;
        };
        if parent != dir {
            continue;
        }
        let root = m.fs.lstat(Path::new("/"));
        let hidden = matches!(root, Err(e) if e == Errno::ENOENT);
        if exists_below(mounts, parent, name) != hidden {
            // Listed below and shown, or neither.
            continue;
        }
        let name = name.as_bytes().to_vec();
        // The latest mount on a name decides.
        out.retain(|e| e.name != name);
        let (ino, kind) = match root {
            Ok(st) => (st.ino, DirEntry::kind_of_mode(st.mode)),
            Err(_) => (0, libc::DT_DIR),
        };
        out.push(Extra {
            name,
            ino,
            kind,
            hidden,
        });
    }
    // The numbered siblings of device mounts (`hda1` beside `hda`).
    for m in mounts.with_numbered_siblings() {
        let target = &m.request.target;
        let (Some(parent), Some(base)) = (target.parent(), target.file_name()) else {
            continue;
        };
        if parent != dir {
            continue;
        }
        for n in m.fs.numbered_siblings().unwrap_or_default() {
            let mut name = base.as_bytes().to_vec();
            name.extend_from_slice(n.to_string().as_bytes());
            if out.iter().any(|e| e.name == name)
                || exists_below(mounts, parent, std::ffi::OsStr::from_bytes(&name))
            {
                continue;
            }
            let (ino, kind) = match m.fs.lstat(Path::new(&format!("/{n}"))) {
                Ok(st) => (st.ino, DirEntry::kind_of_mode(st.mode)),
                Err(_) => continue,
            };
            out.push(Extra {
                name,
                ino,
                kind,
                hidden: false,
            });
        }
    }
    out
}

/// True if `dir` (canonical) holds `name` in the file system below the
/// mounts on `dir/name`: the real one, or the mount serving `dir`.
fn exists_below(mounts: &MountTable, dir: &Path, name: &std::ffi::OsStr) -> bool {
    match mounts.lookup(dir) {
        Some((below, rel)) => below.fs.lstat(&rel.join(name)).is_ok(),
        None => std::fs::symlink_metadata(dir.join(name)).is_ok(),
    }
}

/// True if a name could be the last component of a directory with mount
/// points to add: empty, `.`, `..` or such a directory's own name.
pub fn may_hold_extras(mounts: &MountTable, raw: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let trimmed = {
        let mut r = raw;
        while r.len() > 1 && r.ends_with(b"/") {
            r = &r[..r.len() - 1];
        }
        r
    };
    let last = trimmed.rsplit(|&b| b == b'/').next().unwrap_or_default();
    if last.is_empty() || last == b"." || last == b".." {
        return true;
    }
    mounts.iter().any(|m| {
        m.request
            .target
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n.as_bytes() == last)
    })
}

/// A directory's listing with mount points added (see the module docs):
/// the names, then the listing of `inner` (a real directory, or a mount's
/// served one).
pub struct MergedDir {
    inner: Box<dyn FileHandle>,
    /// Names listed first.
    extras: Vec<Extra>,
    /// Names taken out of `inner`'s listing.
    hidden: Vec<Vec<u8>>,
    /// Position (from the first entry of `inner` on) -> the cookie of
    /// `inner` to continue from there.
    resume: Mutex<Vec<u64>>,
}

impl MergedDir {
    /// Lists `inner` with `extras` first (and without the hidden ones).
    pub fn new(inner: Box<dyn FileHandle>, extras: Vec<Extra>) -> MergedDir {
        let (hidden, extras): (Vec<Extra>, Vec<Extra>) = extras.into_iter().partition(|e| e.hidden);
        MergedDir {
            inner,
            extras,
            hidden: hidden.into_iter().map(|e| e.name).collect(),
            resume: Mutex::new(vec![0]),
        }
    }
}

impl FileHandle for MergedDir {
    fn stat(&self) -> Result<FileStat, Errno> {
        self.inner.stat()
    }

    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let mut pos = cookie;
        while let Some(e) = self.extras.get(pos as usize) {
            let entry = DirEntry {
                ino: e.ino,
                kind: e.kind,
                name: &e.name,
                next: pos + 1,
            };
            if !fill(entry) {
                return Ok(());
            }
            pos += 1;
        }
        let first = self.extras.len() as u64;
        let mut resume = self.resume.lock().unwrap_or_else(|e| e.into_inner());
        let Some(&start) = resume.get((pos - first) as usize) else {
            // A position never reached: past the end.
            return Ok(());
        };
        self.inner.read_dir(start, &mut |e| {
            let idx = (pos - first) as usize;
            if self.extras.iter().any(|x| x.name == e.name)
                || self.hidden.iter().any(|h| h.as_slice() == e.name)
            {
                // Listed already, or hidden: continuing here skips it too.
                resume[idx] = e.next;
                return true;
            }
            let merged = DirEntry { next: pos + 1, ..e };
            if !fill(merged) {
                return false;
            }
            if resume.len() == idx + 1 {
                resume.push(e.next);
            } else {
                resume[idx + 1] = e.next;
            }
            pos += 1;
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing of fixed names with index cookies.
    struct Fixed(Vec<&'static str>);

    impl FileHandle for Fixed {
        fn read_dir(
            &self,
            cookie: u64,
            fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
        ) -> Result<(), Errno> {
            for (i, n) in self.0.iter().enumerate().skip(cookie as usize) {
                let e = DirEntry {
                    ino: i as u64 + 10,
                    kind: libc::DT_REG,
                    name: n.as_bytes(),
                    // Cookies unlike positions, as ext4's hashes are.
                    next: (i as u64 + 1) * 1000,
                };
                if !fill(e) {
                    return Ok(());
                }
            }
            Ok(())
        }
    }

    impl Fixed {
        fn at(&self, cookie: u64) -> u64 {
            cookie / 1000
        }
    }

    struct Cookies(Fixed);
    impl FileHandle for Cookies {
        fn read_dir(
            &self,
            cookie: u64,
            fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
        ) -> Result<(), Errno> {
            self.0.read_dir(self.0.at(cookie), fill)
        }
    }

    fn names(d: &MergedDir, from: u64, max: usize) -> (Vec<String>, u64) {
        let mut out = Vec::new();
        let mut next = from;
        d.read_dir(from, &mut |e| {
            if out.len() == max {
                return false;
            }
            out.push(String::from_utf8_lossy(e.name).into_owned());
            next = e.next;
            true
        })
        .unwrap();
        (out, next)
    }

    #[test]
    fn extras_first_then_the_listing_without_duplicates_resumable() {
        let inner = Cookies(Fixed(vec![".", "..", "etc", "mnt", "usr"]));
        let extra = |n: &str| Extra {
            hidden: false,
            name: n.as_bytes().to_vec(),
            ino: 1,
            kind: libc::DT_DIR,
        };
        let d = MergedDir::new(Box::new(inner), vec![extra("unreal"), extra("mnt")]);
        let (all, _) = names(&d, 0, 100);
        assert_eq!(all, ["unreal", "mnt", ".", "..", "etc", "usr"]);
        // Two at a time, each call from the last cookie.
        let mut got = Vec::new();
        let mut at = 0;
        loop {
            let (part, next) = names(&d, at, 2);
            if part.is_empty() {
                break;
            }
            got.extend(part);
            at = next;
        }
        assert_eq!(got, all);
        // A cookie given out earlier still works (seekdir).
        let (_, third) = names(&d, 0, 3);
        assert_eq!(names(&d, third, 100).0, ["..", "etc", "usr"]);
    }
}
