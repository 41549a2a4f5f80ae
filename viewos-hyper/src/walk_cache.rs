//! A cache of real paths whose walk meets no symlink, kept exact with
//! inotify.
//!
//! Before letting a path call run natively the host must know that the
//! kernel's walk of the path cannot end up in a virtual mount, which only a
//! symlink on the way could do (lexical prefixes are checked separately).
//! Asking the kernel (`openat2` with `RESOLVE_NO_SYMLINKS`) costs a path
//! walk and a file on every call; programs like `gcc` and `find` ask about
//! the same directories thousands of times. So the answer is remembered per
//! path, and every directory on the way of a remembered path is watched
//! with inotify. A name created, deleted or moved in a watched directory
//! forgets the remembered paths through that name; the host reads the
//! pending events (one `FIONREAD` when there are none) before each use, and
//! the kernel queues an event before the changing call returns, so an
//! answer is never older than the last change.
//!
//! A path is remembered the second time it is asked about: most paths of a
//! short program are asked about once, and their watches would cost more
//! than they save.
//!
//! What is remembered for a path `P`: the walk of `P` follows no symlink
//! and either reaches `P` or stops at `P`'s last component because it does
//! not exist. Paths are absolute, without `.`/`..` components.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use parking_lot::Mutex;

/// Paths remembered at most; past it the cache starts again empty.
const MAX_PATHS: usize = 65_536;

const WATCH_MASK: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR
    | libc::IN_DONT_FOLLOW;

/// What the kernel said about a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// No symlink on the way (the path exists, or only its last component
    /// is missing, or the walk failed before any symlink).
    Plain,
    /// A symlink may be on the way: the path must be walked by hand.
    MaySymlink,
}

/// What is at a real path, as `lstat` and `readlink` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A symlink, with its target.
    Symlink(Vec<u8>),
    /// Something that is not a symlink.
    Other,
    /// Nothing (`ENOENT`).
    Missing,
}

#[derive(Default)]
struct Inner {
    /// Remembered entries of paths whose every proper prefix is a real
    /// directory (what the host's own walk asks about).
    entries: BTreeMap<Vec<u8>, Entry>,
    /// Remembered paths (see the module docs), ordered so that everything
    /// under a directory is one range.
    known: BTreeSet<Vec<u8>>,
    /// Paths asked about once: the second question sets up the watches.
    seen: HashSet<Vec<u8>>,
    /// Watched directories by path, and back by watch descriptor.
    watched: BTreeMap<Vec<u8>, i32>,
    by_wd: HashMap<i32, Vec<u8>>,
    /// No more watches can be added (the user's inotify limit).
    full: bool,
    /// The inotify instance, made at the first question; `Err` when the
    /// kernel refused one (then nothing is remembered).
    inotify: Option<Result<OwnedFd, ()>>,
}

/// The cache; one per view, shared by the supervisor threads.
pub struct WalkCache {
    inner: Mutex<Inner>,
}

impl Default for WalkCache {
    fn default() -> Self {
        Self::new()
    }
}

impl WalkCache {
    /// A new, empty cache. Without inotify (limits, old kernels) nothing is
    /// remembered and every question goes to the kernel.
    pub fn new() -> WalkCache {
        WalkCache {
            inner: Mutex::new(Inner::default()),
        }
    }

    /// How the kernel's walk of the absolute path `path` goes with respect
    /// to symlinks; `follow`: whether a symlink as last component would be
    /// followed.
    pub fn walk(&self, path: &[u8], follow: bool) -> Walk {
        if !is_plain(path) {
            return kernel_walk(path, follow);
        }
        // Without following, the last component's kind does not matter:
        // the question is about its directory.
        let target: &[u8] = if follow { path } else { parent(path) };
        if target == b"/" {
            return Walk::Plain;
        }
        let mut inner = self.inner.lock();
        let Some(fd) = inner.inotify_fd() else {
            drop(inner);
            return kernel_walk(target, true);
        };
        inner.apply_events(fd);
        if inner.known.contains(target) {
            return Walk::Plain;
        }
        // A path asked about once is not worth its watches: remember it
        // the second time.
        if !inner.seen_once(target) {
            drop(inner);
            return kernel_walk(target, true);
        }
        // Watch first, then ask: a change after the watch is seen by the
        // next call, whatever the kernel answered here.
        let watching = inner.watch_ancestors(fd, target);
        let answer = kernel_walk(target, true);
        if answer == Walk::Plain && watching {
            if inner.known.len() >= MAX_PATHS {
                inner.known.clear();
            }
            inner.known.insert(target.to_vec());
        }
        answer
    }
}

impl WalkCache {
    /// What is at the absolute path `path`, all of whose proper prefixes
    /// are directories reached without symlinks (the host's own walk
    /// builds such paths). `None` when the kernel gave another error.
    pub fn entry(&self, path: &[u8]) -> Option<Entry> {
        let mut inner = self.inner.lock();
        let fd = inner.inotify_fd();
        if let Some(fd) = fd {
            inner.apply_events(fd);
            if let Some(e) = inner.entries.get(path) {
                return Some(e.clone());
            }
        }
        let watching = match fd {
            Some(fd) if is_plain(path) && inner.seen_once(path) => inner.watch_ancestors(fd, path),
            _ => false,
        };
        let entry = lstat_entry(path)?;
        if watching {
            if inner.entries.len() >= MAX_PATHS {
                inner.entries.clear();
            }
            inner.entries.insert(path.to_vec(), entry.clone());
        }
        Some(entry)
    }
}

/// `lstat`, and `readlink` for a symlink.
fn lstat_entry(path: &[u8]) -> Option<Entry> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => std::fs::read_link(p)
            .ok()
            .map(|t| Entry::Symlink(t.into_os_string().into_vec())),
        Ok(_) => Some(Entry::Other),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Some(Entry::Missing),
        Err(_) => None,
    }
}

impl Inner {
    /// True if `path` was asked about before (and notes that it was).
    fn seen_once(&mut self, path: &[u8]) -> bool {
        if self.seen.contains(path) {
            return true;
        }
        if self.seen.len() >= MAX_PATHS {
            self.seen.clear();
        }
        self.seen.insert(path.to_vec());
        false
    }

    /// The inotify fd, made on first use.
    fn inotify_fd(&mut self) -> Option<i32> {
        let fd = self.inotify.get_or_insert_with(|| {
            // SAFETY: inotify_init1 has no memory arguments.
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if fd < 0 {
                return Err(());
            }
            // SAFETY: `fd` was just returned by the kernel and is ours.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            keep_alive_after_exit(fd.as_raw_fd());
            Ok(fd)
        });
        fd.as_ref().ok().map(|f| f.as_raw_fd())
    }

    /// Watches every directory above `path`; false if one cannot be
    /// watched (then `path` is not remembered).
    fn watch_ancestors(&mut self, fd: i32, path: &[u8]) -> bool {
        let mut end = 1;
        loop {
            let dir: &[u8] = if end == 1 { b"/" } else { &path[..end - 1] };
            if !self.watched.contains_key(dir) {
                if self.full {
                    return false;
                }
                let Ok(c) = CString::new(dir) else {
                    return false;
                };
                if !local_fs(&c) {
                    return false;
                }
                // SAFETY: `c` is a NUL-terminated path; the fd is ours.
                let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), WATCH_MASK) };
                if wd < 0 {
                    if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSPC) {
                        self.full = true;
                    }
                    return false;
                }
                // Two paths can name one directory only through a symlink,
                // which remembered paths do not cross; a directory already
                // watched under another name keeps its first name.
                if let Some(old) = self.by_wd.get(&wd) {
                    if old.as_slice() != dir {
                        return false;
                    }
                }
                self.watched.insert(dir.to_vec(), wd);
                self.by_wd.insert(wd, dir.to_vec());
            }
            match path[end..].iter().position(|&b| b == b'/') {
                Some(i) => end += i + 1,
                None => return true,
            }
        }
    }

    /// Reads the pending events and forgets what they change.
    fn apply_events(&mut self, fd: i32) {
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int we own.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut pending as *mut libc::c_int) } != 0
            || pending == 0
        {
            return;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a buffer we own, of its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + 16 <= n {
                let wd = i32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or_default());
                let mask = u32::from_ne_bytes(buf[off + 4..off + 8].try_into().unwrap_or_default());
                let len = u32::from_ne_bytes(buf[off + 12..off + 16].try_into().unwrap_or_default())
                    as usize;
                let name_end = (off + 16 + len).min(n);
                let name = &buf[off + 16..name_end];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                self.event(fd, wd, mask, name);
                off = name_end;
            }
        }
    }

    fn event(&mut self, fd: i32, wd: i32, mask: u32, name: &[u8]) {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            self.known.clear();
            self.entries.clear();
            return;
        }
        let Some(dir) = self.by_wd.get(&wd).cloned() else {
            return;
        };
        if mask & libc::IN_IGNORED != 0 {
            self.by_wd.remove(&wd);
            if self.watched.get(&dir) == Some(&wd) {
                self.watched.remove(&dir);
            }
        }
        let changed = if name.is_empty() {
            // The directory itself went away or moved.
            dir
        } else {
            let mut child = dir;
            if child != b"/" {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            child
        };
        self.forget_under(fd, &changed);
    }

    /// Forgets `path` and everything below it, remembered paths and
    /// watches alike (a watch follows its directory, not its old name).
    fn forget_under(&mut self, fd: i32, path: &[u8]) {
        if path == b"/" {
            self.known.clear();
            self.entries.clear();
        } else {
            self.known.remove(path);
            self.entries.remove(path);
            let (lo, hi) = subtree(path);
            let doomed: Vec<Vec<u8>> = self.known.range(lo.clone()..hi.clone()).cloned().collect();
            for p in doomed {
                self.known.remove(&p);
            }
            let doomed: Vec<Vec<u8>> = self.entries.range(lo..hi).map(|(k, _)| k.clone()).collect();
            for p in doomed {
                self.entries.remove(&p);
            }
        }
        let mut gone: Vec<(Vec<u8>, i32)> = Vec::new();
        if let Some(&wd) = self.watched.get(path) {
            gone.push((path.to_vec(), wd));
        }
        if path != b"/" {
            let (lo, hi) = subtree(path);
            gone.extend(self.watched.range(lo..hi).map(|(p, &w)| (p.clone(), w)));
        }
        for (p, wd) in gone {
            self.watched.remove(&p);
            self.by_wd.remove(&wd);
            // SAFETY: removing a watch of our own inotify fd.
            unsafe { libc::inotify_rm_watch(fd, wd) };
        }
    }
}

/// The key range of everything strictly below `path`.
fn subtree(path: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut lo = path.to_vec();
    lo.push(b'/');
    let mut hi = path.to_vec();
    hi.push(b'/' + 1);
    (lo, hi)
}

/// True for file systems whose every change inotify reports: local disk
/// and memory file systems. Network file systems (changes made by other
/// machines), FUSE, and synthetic ones (`/proc`, `/sys`) are asked every
/// time instead.
fn local_fs(dir: &CString) -> bool {
    const LOCAL: &[i64] = &[
        0xEF53,      // ext2/3/4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0xF2F2_0010, // f2fs
        0x794C_7630, // overlayfs
        0x2FC1_2FC1, // zfs
        0x4d44,      // vfat
    ];
    // SAFETY: statfs fills a zeroed struct we own from a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(dir.as_ptr(), &mut st) } != 0 {
        return false;
    }
    LOCAL.contains(&(st.f_type as i64))
}

/// Closing an inotify instance that has watches waits for an RCU grace
/// period in the kernel (up to tens of milliseconds), and the last close
/// happens when umview exits, which would make every view that long to
/// end. So a small helper process keeps a copy of the fd until umview has
/// gone, and takes that wait on itself; nobody waits for the helper.
fn keep_alive_after_exit(fd: i32) {
    // SAFETY: getpid and pidfd_open take no memory arguments.
    let host = unsafe { libc::getpid() };
    // SAFETY: as above.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, host, 0) } as i32;
    if pidfd < 0 {
        return;
    }
    // The helper is made a sibling of umview (CLONE_PARENT), not a child:
    // the tracer waits for every child of its own, and the view ends when
    // none is left.
    // SAFETY: a fork-like clone (no shared memory, no new stack); the
    // child runs only async-signal-safe system calls (the host may have
    // other threads) and leaves with _exit.
    unsafe {
        let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
        match libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) {
            0 => {
                // Keep only the inotify fd and the pidfd: the helper must
                // not hold the view's pipes or terminals open.
                let (lo, hi) = if fd < pidfd { (fd, pidfd) } else { (pidfd, fd) };
                if lo > 0 {
                    libc::syscall(libc::SYS_close_range, 0u32, (lo - 1) as u32, 0u32);
                }
                if hi > lo + 1 {
                    libc::syscall(
                        libc::SYS_close_range,
                        (lo + 1) as u32,
                        (hi - 1) as u32,
                        0u32,
                    );
                }
                libc::syscall(libc::SYS_close_range, (hi + 1) as u32, u32::MAX, 0u32);
                // Signals meant for the view's process group (Ctrl-C) must
                // not end the helper early.
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGQUIT, libc::SIG_IGN);
                libc::signal(libc::SIGTSTP, libc::SIG_IGN);
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                let mut pfd = libc::pollfd {
                    fd: pidfd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // The pidfd becomes readable when every thread of the host
                // is gone, and with them the host's copy of the fd.
                while libc::poll(&mut pfd, 1, -1) < 0 {}
                libc::_exit(0);
            }
            _ => {
                libc::close(pidfd);
            }
        }
    }
}

/// Absolute, and no `.`, `..` or empty components other than repeated
/// slashes being absent.
fn is_plain(path: &[u8]) -> bool {
    path.first() == Some(&b'/')
        && (path.len() == 1 || !path.ends_with(b"/"))
        && !path.windows(2).any(|w| w == b"//")
        && path[1..]
            .split(|&b| b == b'/')
            .all(|c| c != b"." && c != b"..")
}

/// The directory part of a plain absolute path.
fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => &path[..i],
    }
}

/// Asks the kernel: `openat2` with `RESOLVE_NO_SYMLINKS` (a final symlink
/// counts only when `follow`).
fn kernel_walk(path: &[u8], follow: bool) -> Walk {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let Ok(c) = CString::new(path) else {
        return Walk::MaySymlink;
    };
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW }) as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: `c` is NUL-terminated, `how` is a properly laid out open_how
    // and its size is passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: closing the descriptor we just opened.
        unsafe { libc::close(fd as i32) };
        return Walk::Plain;
    }
    // The walk stopped before any symlink: the kernel stops there too.
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::ENAMETOOLONG) => Walk::Plain,
        _ => Walk::MaySymlink,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("walkcache-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn plain_paths() {
        assert!(is_plain(b"/usr/share"));
        assert!(is_plain(b"/"));
        assert!(!is_plain(b"/usr/../etc"));
        assert!(!is_plain(b"/usr/./x"));
        assert!(!is_plain(b"usr"));
        assert!(!is_plain(b"/usr//x"));
        assert!(!is_plain(b"/usr/"));
        assert_eq!(parent(b"/usr/share"), b"/usr");
        assert_eq!(parent(b"/usr"), b"/");
    }

    #[test]
    fn remembers_and_forgets_on_change() {
        let d = tmpdir("change");
        std::fs::create_dir(d.join("a")).unwrap();
        let p = d.join("a/f");
        let pb = p.as_os_str().as_bytes().to_vec();
        let cache = WalkCache::new();
        assert_eq!(cache.walk(&pb, true), Walk::Plain);
        // Remembered from the second question on.
        assert!(!cache.inner.lock().known.contains(&pb));
        assert_eq!(cache.walk(&pb, true), Walk::Plain);
        assert!(cache.inner.lock().known.contains(&pb));
        // Replace the directory on the way with a symlink: the cache must
        // notice at once.
        std::fs::remove_dir(d.join("a")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("a")).unwrap();
        assert_eq!(cache.walk(&pb, true), Walk::MaySymlink);
        // A final symlink matters only when followed.
        std::fs::remove_file(d.join("a")).unwrap();
        std::fs::create_dir(d.join("a")).unwrap();
        std::os::unix::fs::symlink("/etc", &p).unwrap();
        assert_eq!(cache.walk(&pb, true), Walk::MaySymlink);
        assert_eq!(cache.walk(&pb, false), Walk::Plain);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_last_component_is_plain_until_created_as_symlink() {
        let d = tmpdir("missing");
        let p = d.join("nothing");
        let pb = p.as_os_str().as_bytes().to_vec();
        let cache = WalkCache::new();
        assert_eq!(cache.walk(&pb, true), Walk::Plain);
        assert_eq!(cache.walk(&pb, true), Walk::Plain);
        std::os::unix::fs::symlink("/etc", &p).unwrap();
        assert_eq!(cache.walk(&pb, true), Walk::MaySymlink);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
