//! Served directories whose listing viewfs makes itself (the union of
//! layers in `merge` and `cow`, the ancestors of `except` paths).
//!
//! A [`ListedDir`] takes a snapshot of the entries when it is opened and
//! when the program rewinds it (a listing from cookie 0), so cookies are
//! positions in that snapshot: stable while files are created and removed
//! in between, as POSIX asks of `telldir`/`seekdir`.

use std::collections::HashSet;
use std::sync::Mutex;

use viewos_core::{DirEntry, Errno, FileHandle, FileStat};

use crate::layer::Entry;

/// Lists a directory again (at open and at each rewind).
pub type Relist = Box<dyn Fn() -> Result<Vec<Entry>, Errno> + Send + Sync>;
/// The directory's status now.
pub type Restat = Box<dyn Fn() -> Result<FileStat, Errno> + Send + Sync>;

struct Snapshot {
    entries: Vec<Entry>,
    /// Taken at open and not yet read from the start: the first listing
    /// from cookie 0 uses it instead of listing twice.
    fresh: bool,
}

/// A served directory listing entries it is given (see the module docs).
pub struct ListedDir {
    snapshot: Mutex<Snapshot>,
    relist: Relist,
    restat: Restat,
}

impl ListedDir {
    /// A directory listed by `relist` (called now and at each rewind),
    /// whose status is `restat`.
    pub fn new(relist: Relist, restat: Restat) -> Result<ListedDir, Errno> {
        let entries = relist()?;
        Ok(ListedDir {
            snapshot: Mutex::new(Snapshot {
                entries,
                fresh: true,
            }),
            relist,
            restat,
        })
    }
}

impl FileHandle for ListedDir {
    fn read(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _offset: u64, _data: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        (self.restat)()
    }

    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if cookie == 0 {
            if !snap.fresh {
                snap.entries = (self.relist)()?;
            }
            snap.fresh = false;
        }
        for (i, e) in snap.entries.iter().enumerate().skip(cookie as usize) {
            let entry = DirEntry {
                ino: e.ino,
                kind: e.kind,
                name: &e.name,
                next: i as u64 + 1,
            };
            if !fill(entry) {
                break;
            }
        }
        Ok(())
    }
}

/// The union of listings, first ones winning: every name once, `.` and
/// `..` first (from the first listing that has them).
pub fn union(layers: Vec<Vec<Entry>>) -> Vec<Entry> {
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut dots = Vec::new();
    let mut out = Vec::new();
    for e in layers.into_iter().flatten() {
        if seen.contains(&e.name) {
            continue;
        }
        seen.insert(e.name.clone());
        if e.is_dot() {
            dots.push(e);
        } else {
            out.push(e);
        }
    }
    dots.sort_by_key(|a| a.name.len());
    dots.extend(out);
    dots
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn e(name: &str, ino: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            ino,
            kind: libc::DT_REG,
        }
    }

    fn names(d: &ListedDir, from: u64) -> Vec<String> {
        let mut out = Vec::new();
        d.read_dir(from, &mut |e| {
            out.push(String::from_utf8_lossy(e.name).into_owned());
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn union_keeps_first_of_each_name_dots_first() {
        let u = union(vec![
            vec![e("b", 1), e(".", 2), e("..", 3)],
            vec![e("..", 9), e("b", 9), e("a", 4), e(".", 9)],
        ]);
        let got: Vec<_> = u.iter().map(|x| (x.name.clone(), x.ino)).collect();
        assert_eq!(
            got,
            [
                (b".".to_vec(), 2),
                (b"..".to_vec(), 3),
                (b"b".to_vec(), 1),
                (b"a".to_vec(), 4)
            ]
        );
    }

    #[test]
    fn cookies_are_positions_of_a_snapshot_renewed_at_rewind() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let d = ListedDir::new(
            Box::new(move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let mut v = vec![e(".", 1), e("..", 1), e("x", 2)];
                if n > 0 {
                    v.push(e("new", 3));
                }
                Ok(v)
            }),
            Box::new(|| Ok(FileStat::default())),
        )
        .unwrap();
        // Opening listed once; the first read uses that listing.
        assert_eq!(names(&d, 0), [".", "..", "x"]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A cookie continues in the same snapshot.
        assert_eq!(names(&d, 2), ["x"]);
        // A rewind lists again.
        assert_eq!(names(&d, 0), [".", "..", "x", "new"]);
        assert_eq!(names(&d, 9), Vec::<String>::new());
        assert_eq!(d.read(0, &mut [0; 4]), Err(Errno::EISDIR));
    }
}
