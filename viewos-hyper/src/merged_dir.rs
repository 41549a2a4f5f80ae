//! Real directories listed with the mount points they hold.
//!
//! A mount point need not exist on the real file system (`-p unreal`
//! mounts on `/unreal`). The kernel's listing of its parent would then
//! miss it, so `ls /` would not show what `cd /unreal` enters. When a
//! program opens such a parent as a directory, the host serves the listing
//! itself ([`MergedDir`]): the mount points' names first, then the real
//! entries, read from a real fd of the directory.
//!
//! Cookies (`d_off`, `telldir`) are positions in that merged order; the
//! real cookie each position continues from is remembered as the listing
//! goes, since real file systems use cookies of their own (hashes on ext4).

use std::fs::File;
use std::os::fd::AsRawFd;
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
}

/// The mount points directly below `dir` (canonical, absolute) that do not
/// exist in the real directory.
pub fn extras_of(mounts: &MountTable, dir: &Path) -> Vec<Extra> {
    use std::os::unix::ffi::OsStrExt;
    let mut out: Vec<Extra> = Vec::new();
    for m in mounts.iter() {
        let target = &m.request.target;
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            continue;
        };
        if parent != dir || std::fs::symlink_metadata(target).is_ok() {
            continue;
        }
        let name = name.as_bytes().to_vec();
        if out.iter().any(|e| e.name == name) {
            continue;
        }
        let (ino, kind) = match m.fs.lstat(Path::new("/")) {
            Ok(st) => (st.ino, DirEntry::kind_of_mode(st.mode)),
            Err(_) => (0, libc::DT_DIR),
        };
        out.push(Extra { name, ino, kind });
    }
    out
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

/// A real directory's listing with mount points added (see the module
/// docs).
pub struct MergedDir {
    dir: File,
    extras: Vec<Extra>,
    /// Position (from the first real entry on) -> the real cookie to
    /// continue from there.
    resume: Mutex<Vec<u64>>,
}

impl MergedDir {
    /// Lists the real directory `dir` with `extras`.
    pub fn new(dir: File, extras: Vec<Extra>) -> MergedDir {
        MergedDir {
            dir,
            extras,
            resume: Mutex::new(vec![0]),
        }
    }
}

impl FileHandle for MergedDir {
    fn stat(&self) -> Result<FileStat, Errno> {
        Ok(FileStat::from_metadata(&self.dir.metadata()?))
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
        let Some(&real) = resume.get((pos - first) as usize) else {
            // A position never reached: past the end.
            return Ok(());
        };
        let fd = self.dir.as_raw_fd();
        // SAFETY: lseek on an fd we own; the kernel checks the cookie.
        if unsafe { libc::lseek(fd, real as i64, libc::SEEK_SET) } < 0 {
            return Err(Errno::from(std::io::Error::last_os_error()));
        }
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: getdents64 writes at most `buf.len()` bytes into buf.
            let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                return Err(Errno::from(std::io::Error::last_os_error()));
            }
            if n == 0 {
                return Ok(());
            }
            let mut at = 0usize;
            while at + 19 <= n as usize {
                let rec = &buf[at..n as usize];
                let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
                if reclen < 19 || reclen > rec.len() {
                    return Err(Errno::EIO);
                }
                at += reclen;
                let word =
                    |i: usize| u64::from_ne_bytes(rec[i..i + 8].try_into().unwrap_or_default());
                let raw_name = &rec[19..reclen];
                let name = &raw_name[..raw_name
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(raw_name.len())];
                let idx = (pos - first) as usize;
                if self.extras.iter().any(|e| e.name == name) {
                    // Listed already: continuing here skips it too.
                    resume[idx] = word(8);
                    continue;
                }
                let entry = DirEntry {
                    ino: word(0),
                    kind: rec[18],
                    name,
                    next: pos + 1,
                };
                if !fill(entry) {
                    return Ok(());
                }
                if resume.len() == idx + 1 {
                    resume.push(word(8));
                } else {
                    resume[idx + 1] = word(8);
                }
                pos += 1;
            }
        }
    }
}
