//! Path resolution as the kernel does it, across real and virtual trees.
//!
//! A path argument is made absolute with the caller's cwd or dirfd (read
//! from `/proc/TID/cwd` and `/proc/TID/fd/N`), then:
//! - if no mount exists, nothing virtual can be reached: the call is real;
//! - if the lexical path is not under a mount, the kernel is asked once
//!   (`openat2` with `RESOLVE_NO_SYMLINKS`, remembered in a [`WalkCache`])
//!   whether any symlink lies on the way; with none, the lexical path is
//!   exactly where the kernel would go, and it is real. This avoids an
//!   `lstat` per component on every call;
//! - otherwise the path is walked component by component, following
//!   symlinks of the real tree (`lstat`/`readlink` on the host) and of
//!   mounted trees ([`FileSystem::lstat`]/[`FileSystem::readlink`]), with
//!   the kernel's limit of 40 links. `/proc/self` and `/proc/thread-self`
//!   mean the caller, not the host; other `/proc` links are magic (they
//!   lead to objects, not paths) and are left to the kernel.
//!
//! [`FileSystem::lstat`]: viewos_core::FileSystem::lstat
//! [`FileSystem::readlink`]: viewos_core::FileSystem::readlink

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use viewos_core::mounts::{Mount, MountTable};
use viewos_core::path::normalize;
use viewos_core::Errno;

use crate::virtual_dirs::VirtualDirs;
use crate::walk_cache::{Entry, Walk, WalkCache};

/// The kernel's limit on symlinks followed in one resolution.
const MAX_LINKS: usize = 40;

/// Where a path argument leads.
pub enum Resolved {
    /// To the real file system: the kernel can run the call as it is.
    Real,
    /// Into a mount: the call is the mount's to answer.
    Virtual {
        /// The mount.
        mount: Mount,
        /// The path inside it (absolute, relative to the mount root).
        path: PathBuf,
    },
}

/// The directory a relative path starts from: `dirfd`'s, or the cwd for
/// `AT_FDCWD`. `None` when the kernel will refuse the call anyway (bad fd,
/// not a directory, deleted): the call is left to it.
fn base_dir(dirs: &VirtualDirs, tid: i32, dirfd: i32) -> Option<PathBuf> {
    let link = if dirfd == libc::AT_FDCWD {
        format!("/proc/{tid}/cwd")
    } else if dirfd >= 0 {
        format!("/proc/{tid}/fd/{dirfd}")
    } else {
        return None;
    };
    let target = std::fs::read_link(link).ok()?;
    // A placeholder cwd or served directory stands for a virtual directory.
    if let Some(virt) = dirs.virtual_of(&target) {
        return Some(virt);
    }
    let bytes = target.as_os_str().as_bytes();
    if bytes.first() != Some(&b'/') || bytes.ends_with(b" (deleted)") {
        return None;
    }
    Some(target)
}

/// Entries of a `/proc/HOST` directory (the host's or one of its
/// threads') a program in the view may read: what `ps` and `top` show.
const HOST_PROC_READABLE: &[&[u8]] = &[b"stat", b"status", b"statm", b"cmdline", b"comm"];

/// Names that, looked up in a `/proc/PID` directory, lead to a process's
/// memory, files or tree: a single name in a real directory is resolved
/// in full when it is one of these, in case the directory is the host's.
const PROC_SENSITIVE: &[&[u8]] = &[
    b"mem",
    b"environ",
    b"maps",
    b"smaps",
    b"pagemap",
    b"fd",
    b"fdinfo",
    b"map_files",
    b"root",
    b"cwd",
    b"exe",
    b"task",
    b"auxv",
    b"syscall",
    b"stack",
    b"mountinfo",
    b"mounts",
    b"ns",
    b"attr",
    b"timerslack_ns",
];

/// The host guards its own `/proc` entries: a canonical `path` below
/// `/proc/ID` where ID is the host or one of its threads is `EACCES`
/// unless it is the directory itself (stat, listing), a
/// readable entry (`stat`, `status`, `statm`, `cmdline`, `comm`) of it or of its `task/TID`, or
/// `fd/N` (the host hands programs some of its files by that name, see
/// `syscalls::sys_exec`). With `whole` false, `path` is a directory on the
/// way to more (`fd`, `task/TID` pass too).
pub fn guard_proc(path: &Path, whole: bool) -> Result<(), Errno> {
    let bytes = path.as_os_str().as_bytes();
    if !bytes.starts_with(b"/proc/") {
        return Ok(());
    }
    let comps: Vec<&[u8]> = bytes
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    if comps.len() < 3 || !crate::host_threads::names_host_thread(comps[1]) {
        return Ok(());
    }
    let digits = |c: &[u8]| !c.is_empty() && c.iter().all(u8::is_ascii_digit);
    let ok = match &comps[2..] {
        [x] if !whole && (*x == b"fd" || *x == b"task") => true,
        [x] => HOST_PROC_READABLE.contains(x) || *x == b"task",
        [f, n] if *f == b"fd" => digits(n),
        [t, tid] if *t == b"task" => digits(tid),
        [t, tid, x] if *t == b"task" => digits(tid) && HOST_PROC_READABLE.contains(x),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// The view's directory that `dirfd` (the cwd for `AT_FDCWD`) of thread
/// `tid` stands for, when the host stands in for it: a placeholder cwd, a
/// served directory, or a directory a mount gave as a real fd whose real
/// path is not the view's. `None` for a plain real directory.
pub fn virtual_base(dirs: &VirtualDirs, tid: i32, dirfd: i32) -> Option<PathBuf> {
    let link = if dirfd == libc::AT_FDCWD {
        format!("/proc/{tid}/cwd")
    } else if dirfd >= 0 {
        format!("/proc/{tid}/fd/{dirfd}")
    } else {
        return None;
    };
    dirs.virtual_of(&std::fs::read_link(link).ok()?)
}

/// `path` made absolute for thread `tid` (relative to `dirfd`, or its cwd
/// for `AT_FDCWD`), without resolving anything; `None` if the base
/// directory cannot be known.
pub fn absolute(dirs: &VirtualDirs, tid: i32, dirfd: i32, path: &[u8]) -> Option<PathBuf> {
    if path.first() == Some(&b'/') {
        return Some(PathBuf::from(OsStr::from_bytes(path)));
    }
    let base = base_dir(dirs, tid, dirfd)?;
    Some(base.join(OsStr::from_bytes(path)))
}

/// The thread group of `tid` (for `/proc/self`).
pub fn tgid_of(tid: i32) -> i32 {
    status_field(tid, "Tgid:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(tid)
}

/// The value of the line starting with `key` in `/proc/TID/status`.
pub fn status_field(tid: i32, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

fn join(stack: &[Vec<u8>]) -> PathBuf {
    let mut out = Vec::new();
    for c in stack {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

fn split(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| c.to_vec())
}

/// Resolves the path argument `path` of thread `tid`, relative to `dirfd`
/// (`AT_FDCWD` for the cwd). `dir_is_real`: the caller knows `dirfd` (or
/// the cwd) is a real directory, because the view never gave out a virtual
/// fd or cwd. `follow`: whether a final symlink is followed.
pub fn resolve(
    mounts: &MountTable,
    (walks, dirs): (&WalkCache, &VirtualDirs),
    tid: i32,
    (dirfd, dir_is_real): (i32, bool),
    path: &[u8],
    follow: bool,
) -> Result<Resolved, Errno> {
    if mounts.is_empty() || path.is_empty() {
        // An empty path names dirfd itself (AT_EMPTY_PATH) or is ENOENT:
        // either way the kernel answers.
        return Ok(Resolved::Real);
    }
    // One name looked up in a real directory without following it (what
    // `find` and `tar` do for every file) stays in that directory: it is
    // virtual only if it is a mount point's name.
    if dir_is_real
        && !follow
        && path != b"."
        && path != b".."
        && !path.contains(&b'/')
        && !mounts.is_mount_name(path)
        && !PROC_SENSITIVE.contains(&path)
        && !crate::host_threads::names_host_thread(path)
    {
        return Ok(Resolved::Real);
    }
    let absolute = path[0] == b'/';
    let base = if absolute {
        PathBuf::from("/")
    } else {
        match base_dir(dirs, tid, dirfd) {
            Some(b) => b,
            None => return Ok(Resolved::Real),
        }
    };
    let lexical = normalize(&base, path);
    guard_proc(&lexical, true)?;
    if mounts.lookup(&lexical).is_none() {
        let full = if absolute {
            path.to_vec()
        } else {
            let mut full = base.as_os_str().as_bytes().to_vec();
            if !full.ends_with(b"/") {
                full.push(b'/');
            }
            full.extend_from_slice(path);
            full
        };
        if walks.walk(&full, follow) == Walk::Plain {
            return Ok(Resolved::Real);
        }
    }
    let trailing_slash = path.ends_with(b"/");
    let resolved = walk(
        mounts,
        (walks, dirs),
        tid,
        &base,
        path,
        follow || trailing_slash,
    )?;
    if trailing_slash {
        // A name with a trailing slash must be a directory (the kernel
        // checks real ones itself).
        if let Resolved::Virtual { mount, path } = &resolved {
            if matches!(mount.fs.lstat(path), Ok(st) if !st.is_dir()) {
                return Err(Errno::ENOTDIR);
            }
        }
    }
    Ok(resolved)
}

/// Where a relative `path` below the *virtual* directory `base` leads on
/// the real file system, as an absolute path the kernel resolves the same
/// way; `None` if it stays virtual. For a path leaving a served directory
/// (`..`, a symlink out of its mount): the program's dirfd is a
/// placeholder the kernel cannot look names up in.
pub fn real_path_below(
    mounts: &MountTable,
    (walks, dirs): (&WalkCache, &VirtualDirs),
    tid: i32,
    base: &Path,
    path: &[u8],
    follow: bool,
) -> Option<PathBuf> {
    match walk_to(mounts, (walks, dirs), tid, base, path, follow) {
        Ok((Resolved::Real, real)) => Some(real),
        _ => None,
    }
}

/// The component-by-component walk.
fn walk(
    mounts: &MountTable,
    walks: (&WalkCache, &VirtualDirs),
    tid: i32,
    base: &Path,
    path: &[u8],
    follow: bool,
) -> Result<Resolved, Errno> {
    walk_to(mounts, walks, tid, base, path, follow).map(|r| r.0)
}

/// [`walk`], also giving for a real result the absolute path the kernel
/// would resolve the same way (the walked components, then what was left
/// when the walk handed over to the kernel).
fn walk_to(
    mounts: &MountTable,
    (walks, dirs): (&WalkCache, &VirtualDirs),
    tid: i32,
    base: &Path,
    path: &[u8],
    follow: bool,
) -> Result<(Resolved, PathBuf), Errno> {
    let mut stack: Vec<Vec<u8>> = if path.first() == Some(&b'/') {
        Vec::new()
    } else {
        split(base.as_os_str().as_bytes()).collect()
    };
    let mut pending: VecDeque<Vec<u8>> = split(path).collect();
    let mut links = 0usize;
    while let Some(comp) = pending.pop_front() {
        match comp.as_slice() {
            b"." => continue,
            b".." => {
                stack.pop();
                continue;
            }
            _ => stack.push(comp),
        }
        // /proc/self and /proc/thread-self are the caller's.
        if stack.len() == 2 && stack[0] == b"proc" {
            if stack[1] == b"self" {
                stack[1] = tgid_of(tid).to_string().into_bytes();
                continue;
            }
            if stack[1] == b"thread-self" {
                stack[1] = tgid_of(tid).to_string().into_bytes();
                stack.push(b"task".to_vec());
                stack.push(tid.to_string().into_bytes());
                continue;
            }
        }
        let last = pending.iter().all(|c| c == b".");
        if last && !follow {
            break;
        }
        let cur = join(&stack);
        let target = match mounts.lookup(&cur) {
            Some((mount, rel)) => match mount.fs.lstat(&rel) {
                Ok(st) if st.is_symlink() => Some(mount.fs.readlink(&rel)?),
                Ok(st) if !last && !st.is_dir() => return Err(Errno::ENOTDIR),
                Ok(_) => None,
                Err(e) if last && e == Errno::ENOENT => None,
                Err(e) => return Err(e),
            },
            None => {
                if stack.first().is_some_and(|c| c == b"proc") {
                    // Links under /proc are magic (they lead to objects,
                    // not paths): only the kernel can follow them, except
                    // an fd link to a served file's placeholder, which
                    // leads to the virtual file (glibc's fchmodat and
                    // friends reach an O_PATH fd through
                    // /proc/self/fd/N).
                    guard_proc(&cur, last)?;
                    match std::fs::symlink_metadata(&cur) {
                        Ok(m) if m.file_type().is_symlink() => {
                            match served_link(dirs, &stack, &cur) {
                                Some(virt) => Some(virt),
                                // A magic link with more path after it
                                // (`/proc/self/root/etc`, `/proc/PID/cwd/x`,
                                // `/proc/self/fd/N/x`): the rest is looked
                                // up from the directory it names, which is
                                // the view's path it shows (the kernel
                                // would go to the real directory, around
                                // the view's mounts).
                                None if !last => match magic_dir(dirs, &cur) {
                                    Some(dir) => Some(dir),
                                    None => return Ok((Resolved::Real, rest_of(&stack, &pending))),
                                },
                                None => {
                                    path_fd_shown(mounts, (walks, dirs), tid, &stack, &cur)?;
                                    return Ok((Resolved::Real, rest_of(&stack, &pending)));
                                }
                            }
                        }
                        Ok(_) => None,
                        Err(_) if !last => return Ok((Resolved::Real, rest_of(&stack, &pending))),
                        Err(_) => None,
                    }
                } else {
                    match walks.entry(cur.as_os_str().as_bytes()) {
                        Some(Entry::Symlink(t)) => Some(PathBuf::from(OsString::from_vec(t))),
                        Some(Entry::Other) => None,
                        // The kernel stops here with the same error.
                        Some(Entry::Missing) | None if !last => {
                            return Ok((Resolved::Real, rest_of(&stack, &pending)))
                        }
                        Some(Entry::Missing) | None => None,
                    }
                }
            }
        };
        if let Some(t) = target {
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::ELOOP);
            }
            stack.pop();
            let t = t.as_os_str().as_bytes();
            if t.first() == Some(&b'/') {
                stack.clear();
            }
            for c in split(t).collect::<Vec<_>>().into_iter().rev() {
                pending.push_front(c);
            }
        }
    }
    let canonical = join(&stack);
    guard_proc(&canonical, true)?;
    let resolved = match mounts.lookup(&canonical) {
        Some((mount, rel)) => Resolved::Virtual {
            mount: mount.clone(),
            path: rel,
        },
        None => Resolved::Real,
    };
    Ok((resolved, rest_of(&stack, &pending)))
}

/// The virtual file a `/proc/PID/fd/N` (or `/proc/PID/task/TID/fd/N`)
/// link `cur` leads to, if it is a served file's placeholder.
fn served_link(dirs: &VirtualDirs, stack: &[Vec<u8>], cur: &Path) -> Option<PathBuf> {
    let fd_link = match stack.len() {
        4 => stack[2] == b"fd",
        6 => stack[2] == b"task" && stack[4] == b"fd",
        _ => false,
    };
    // The host's own fds (`/proc/HOST/fd/N`) are files it hands to
    // programs to open natively (rewritten opens and execs).
    if !fd_link || crate::host_threads::names_host_thread(&stack[1]) {
        return None;
    }
    dirs.virtual_of(&std::fs::read_link(cur).ok()?)
}

/// A path through an `O_PATH` fd of a process (`/proc/PID/fd/N`, the
/// last name of a path) reaches the file itself again (a reopen, a chmod
/// through it), so the file must be one the view shows where its name
/// says: a path it has at its real path, or the same file (device and
/// inode) a mount shows there. Otherwise `EACCES`: such an fd was made
/// by an `O_PATH` open that raced the host's check (the host cannot make
/// those opens itself) and names a file the view hides or protects.
/// Other fds (files opened before a mount was made, say) pass.
fn path_fd_shown(
    mounts: &MountTable,
    (walks, dirs): (&WalkCache, &VirtualDirs),
    tid: i32,
    stack: &[Vec<u8>],
    cur: &Path,
) -> Result<(), Errno> {
    let (pid, n) = match stack {
        [p, pid, f, n] if p == b"proc" && f == b"fd" => (pid, n),
        [p, _, t, tid, f, n] if p == b"proc" && t == b"task" && f == b"fd" => (tid, n),
        _ => return Ok(()),
    };
    let (Ok(pid), Ok(n)) = (std::str::from_utf8(pid), std::str::from_utf8(n)) else {
        return Ok(());
    };
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{n}")).unwrap_or_default();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .unwrap_or(0);
    if flags & libc::O_PATH as u32 == 0 {
        return Ok(());
    }
    let Ok(text) = std::fs::read_link(cur) else {
        return Ok(());
    };
    let bytes = text.as_os_str().as_bytes();
    if bytes.first() != Some(&b'/') || bytes.ends_with(b" (deleted)") {
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    let Ok(file) = std::fs::metadata(cur) else {
        return Ok(());
    };
    match walk_to(mounts, (walks, dirs), tid, Path::new("/"), bytes, false) {
        Ok((Resolved::Real, _)) => Ok(()),
        Ok((Resolved::Virtual { mount, path }, _)) => match mount.fs.lstat(&path) {
            Ok(st) if (st.dev, st.ino) == (file.dev(), file.ino()) => Ok(()),
            _ => Err(Errno::EACCES),
        },
        Err(_) => Err(Errno::EACCES),
    }
}

/// The directory a `/proc` magic link `cur` names, as a path of the view:
/// its link text when that is a path (a placeholder's stands for its
/// virtual directory); `None` for an object without one (`pipe:[N]`,
/// `socket:[N]`, a deleted directory).
fn magic_dir(dirs: &VirtualDirs, cur: &Path) -> Option<PathBuf> {
    let text = std::fs::read_link(cur).ok()?;
    if let Some(virt) = dirs.virtual_of(&text) {
        return Some(virt);
    }
    let bytes = text.as_os_str().as_bytes();
    if bytes.first() != Some(&b'/') || bytes.ends_with(b" (deleted)") {
        return None;
    }
    Some(text)
}

/// The walked components followed by those not walked yet, as one path.
fn rest_of(stack: &[Vec<u8>], pending: &VecDeque<Vec<u8>>) -> PathBuf {
    let mut all: Vec<Vec<u8>> = stack.to_vec();
    all.extend(pending.iter().cloned());
    join(&all)
}
