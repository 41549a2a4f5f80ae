//! Opens of real files in a view with mounts, made by the host itself.
//!
//! The host decides from the path it read whether an open is the view's
//! or the kernel's. Letting the kernel run the call (seccomp's `CONTINUE`)
//! would have it read the path again from the program's memory, where
//! another thread (or a process sharing the page) can have changed it in
//! between: the kernel would then open a path nobody checked, a hidden
//! file say. So in a view with mounts the host opens the file from the
//! bytes it checked, through the caller's cwd or dirfd
//! ([`super::caller_file`]), and installs it in the program
//! ([`Verdict::InstallFd`], atomic with the answer).
//!
//! The open goes in two steps so special files behave as the program's
//! own open would: an `O_PATH` lookup with the program's flags that
//! decide the lookup (`O_NOFOLLOW`, `O_DIRECTORY`, `O_CREAT|O_EXCL`,
//! openat2's `resolve`), then the open proper of what it found through
//! `/proc/self/fd/N` (the same permission checks, `O_TRUNC` and friends).
//! New files are created with the program's umask. `/dev/tty` is the
//! program's controlling terminal, not the host's. The host adds
//! `O_NOCTTY`: a session leader opening a terminal does not get it as
//! its controlling terminal (programs that want one use `TIOCSCTTY`).
//!
//! Left to the kernel (the path read again, see the README's security
//! model): `O_PATH` opens (the kernel's fd passing refuses `O_PATH`
//! files), programs whose credentials differ from the host's (a root
//! host's program that changed its ids), and `--no-seccomp` views.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use viewos_core::Errno;

use super::caller_file::{last_errno, CallerFile};
use super::{Call, Context, Verdict};

/// `struct open_how` as openat2(2) takes it.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) in the host (`resolve` 0 is openat(2)'s lookup).
fn openat2(
    dirfd: i32,
    path: &CString,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: flags as u32 as u64,
        mode: u64::from(mode),
        resolve,
    };
    // SAFETY: a valid fd (or AT_FDCWD), a NUL-terminated path we own and
    // an open_how of the size we pass.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Threads of a root host whose credentials were compared with the
/// host's, and the answer; forgotten when the thread changes them
/// ([`forget_credentials`]).
static COMPARED: OnceLock<parking_lot::Mutex<std::collections::HashMap<i32, bool>>> =
    OnceLock::new();

/// The calls by which a thread changes its credentials: a root host stops
/// them (and lets them run) to forget what the host found when it compared them with its own.
pub const CREDENTIAL_CALLS: &[libc::c_long] = &[
    libc::SYS_setuid,
    libc::SYS_setgid,
    libc::SYS_setreuid,
    libc::SYS_setregid,
    libc::SYS_setgroups,
    libc::SYS_setresuid,
    libc::SYS_setresgid,
    libc::SYS_setfsuid,
    libc::SYS_setfsgid,
    libc::SYS_capset,
];

/// Forgets thread `tid`'s compared credentials (it changes them, execs,
/// or ended).
pub fn forget_credentials(tid: i32) {
    if let Some(m) = COMPARED.get() {
        m.lock().remove(&tid);
    }
}

/// True if the host may open files for the caller: its credentials are
/// the host's. An unprivileged host's programs cannot change theirs (a
/// set-ID program does not change ids under an unprivileged tracer); a
/// root host's can, and are compared with the host's own once per thread
/// (again after the thread changes them: the credential calls stop, see
/// [`CREDENTIAL_CALLS`], and an exec).
pub(super) fn same_credentials(tid: i32) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    let compared = COMPARED.get_or_init(Default::default);
    if let Some(&same) = compared.lock().get(&tid) {
        return same;
    }
    let same = compare_credentials(tid);
    compared.lock().insert(tid, same);
    same
}

/// [`same_credentials`] from `/proc/TID/status`.
fn compare_credentials(tid: i32) -> bool {
    static HOST: OnceLock<Option<String>> = OnceLock::new();
    let creds = |pid: &str| -> Option<String> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let keep = ["Uid:", "Gid:", "Groups:", "CapEff:", "CapPrm:"];
        Some(
            status
                .lines()
                .filter(|l| keep.iter().any(|k| l.starts_with(k)))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    let host = HOST.get_or_init(|| creds("self"));
    host.is_some() && *host == creds(&tid.to_string())
}

/// Sets this host thread's umask (its own: the thread left the process's
/// shared fs context the first time) and gives the previous one.
pub(super) fn thread_umask(mask: u32) -> u32 {
    thread_local! {
        static OWN_FS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    OWN_FS.with(|own| {
        if !own.get() {
            // SAFETY: unshare(CLONE_FS) gives this thread its own cwd,
            // root and umask; no memory is involved.
            unsafe { libc::unshare(libc::CLONE_FS) };
            own.set(true);
        }
    });
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// The program's controlling terminal as a device path (`/dev/pts/3`),
/// from `/proc/TID/stat`; `ENXIO` when it has none.
fn controlling_tty(tid: i32) -> Result<CString, Errno> {
    let stat = std::fs::read_to_string(format!("/proc/{tid}/stat"))
        .map_err(|_| Errno::new(libc::ESRCH))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    // state ppid pgrp session tty_nr
    let tty_nr: u32 = after
        .split_whitespace()
        .nth(4)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if tty_nr == 0 {
        return Err(Errno::new(libc::ENXIO));
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    // Pseudo-terminals (majors 136-143) have no entry in /sys.
    if (136..=143).contains(&major) {
        let n = (major - 136) * 256 + minor;
        return CString::new(format!("/dev/pts/{n}")).map_err(|_| Errno::new(libc::ENXIO));
    }
    let uevent = std::fs::read_to_string(format!("/sys/dev/char/{major}:{minor}/uevent"))
        .map_err(|_| Errno::new(libc::ENXIO))?;
    let name = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .ok_or(Errno::new(libc::ENXIO))?;
    CString::new(format!("/dev/{name}")).map_err(|_| Errno::new(libc::ENXIO))
}

/// True for the device number of `/dev/tty` (5, 0).
fn is_dev_tty(rdev: u64) -> bool {
    libc::major(rdev) == 5 && libc::minor(rdev) == 0
}

/// Every flag open(2) knows (`VALID_OPEN_FLAGS`): open and openat drop
/// the others, openat2 refuses them.
const VALID_OPEN_FLAGS: i32 = 0o37777703;

/// The kernel's checks of the flags before any lookup
/// (`build_open_flags`), for the flags as open, openat (unknown bits
/// already dropped) or openat2 (`resolve` given) pass them.
fn kernel_flag_checks(flags: i32, resolve: u64) -> Result<(), Errno> {
    let einval = Err(Errno::EINVAL);
    if resolve != 0 && flags & !VALID_OPEN_FLAGS != 0 {
        return einval;
    }
    const O_TMPFILE_MASK: i32 = libc::O_TMPFILE | libc::O_CREAT;
    if flags & libc::O_TMPFILE & !libc::O_DIRECTORY != 0 {
        if flags & O_TMPFILE_MASK != libc::O_TMPFILE || flags & libc::O_ACCMODE == libc::O_RDONLY {
            return einval;
        }
    } else if flags & libc::O_CREAT != 0 && flags & libc::O_DIRECTORY != 0 {
        return einval;
    }
    Ok(())
}

/// The caller's `path` (relative to `dirfd`, or its cwd) as one absolute
/// name the host can open: `/proc/TID/fd/N/PATH` or `/proc/TID/cwd/PATH`
/// (the kernel goes through the caller's directory itself), an absolute
/// path with the caller's `/proc/self` spelled out. `None` when the name
/// would be too long, or for an empty path (which names nothing).
fn through_caller_dir(tid: i32, dirfd: i32, path: &[u8], follow: bool) -> Option<CString> {
    if path.is_empty() {
        return None;
    }
    let own = super::caller_file::own_proc_path(tid, path, follow);
    let full = if own.first() == Some(&b'/') {
        own
    } else {
        let mut p = if dirfd == libc::AT_FDCWD {
            format!("/proc/{tid}/cwd/").into_bytes()
        } else if dirfd >= 0 {
            format!("/proc/{tid}/fd/{dirfd}/").into_bytes()
        } else {
            return None;
        };
        p.extend_from_slice(&own);
        p
    };
    if full.len() >= 4096 {
        return None;
    }
    CString::new(full).ok()
}

/// False if the relative `path`'s `dirfd` is no open fd of thread `tid`.
fn dir_is_open(tid: i32, dirfd: i32, path: &[u8]) -> bool {
    path.first() == Some(&b'/')
        || dirfd == libc::AT_FDCWD
        || std::fs::symlink_metadata(format!("/proc/{tid}/fd/{dirfd}")).is_ok()
}

/// The common case in one open: a look (`fstatat`) at what the name is
/// now, then for a regular file, a directory, a symlink or nothing yet,
/// the open with the program's flags and `O_NOCTTY`. `None` for a fifo or
/// a device: opened the careful way ([`open_real`]'s lookup and reopen).
fn open_plain(
    tid: i32,
    (dirfd, path): (i32, &CString),
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Option<Result<OwnedFd, Errno>> {
    let creating = flags & libc::O_CREAT != 0;
    // What is there now: a fifo or a device takes the careful way (even
    // a passing open of a fifo would wake a program waiting at its other
    // end).
    let follow = flags & libc::O_NOFOLLOW == 0
        && flags & (libc::O_CREAT | libc::O_EXCL) != (libc::O_CREAT | libc::O_EXCL);
    // SAFETY: an all-integer struct the kernel fills.
    let mut before: libc::stat = unsafe { std::mem::zeroed() };
    let at = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: a valid fd (or AT_FDCWD), our NUL-terminated path and struct.
    if unsafe { libc::fstatat(dirfd, path.as_ptr(), &mut before, at) } == 0 {
        let kind = before.st_mode & libc::S_IFMT;
        if kind != libc::S_IFREG && kind != libc::S_IFDIR && kind != libc::S_IFLNK {
            return None;
        }
    }
    let old = creating.then(|| thread_umask(super::sys_path::umask_of(tid)));
    let opened = openat2(
        dirfd,
        path,
        flags | libc::O_NOCTTY | libc::O_CLOEXEC,
        if creating { mode } else { 0 },
        resolve,
    );
    if let Some(old) = old {
        thread_umask(old);
    }
    let fd = match opened {
        Ok(fd) => fd,
        Err(e) if e.raw() == libc::ENXIO => return None,
        Err(e) => return Some(Err(e)),
    };
    // SAFETY: an all-integer struct the kernel fills, and our fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Some(Err(last_errno()));
    }
    if st.st_mode & libc::S_IFMT == libc::S_IFCHR && is_dev_tty(st.st_rdev) {
        // Swapped for /dev/tty since the look: the program's terminal.
        return None;
    }
    Some(Ok(fd))
}

/// Opens the real file `raw` (relative to `dirfd`) for the caller as the
/// kernel would, from the bytes the host checked; `Native` where the host
/// leaves it to the kernel (see the module's docs).
pub(super) fn open_real(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    raw: &[u8],
    (flags, mode, resolve): (i32, u32, u64),
) -> Verdict {
    if !ctx.fd_filter_needed
        || flags & libc::O_PATH != 0
        || ctx.view.read().mounts().is_empty()
        || !same_credentials(call.tid)
    {
        return Verdict::Native;
    }
    let creating = flags & libc::O_CREAT != 0;
    let exclusive = creating && flags & libc::O_EXCL != 0;
    let tmpfile = flags & libc::O_TMPFILE == libc::O_TMPFILE;
    // open(2) keeps the permission bits of the mode (openat2 refuses more,
    // and was checked before).
    let mode = mode & 0o7777;
    if let Err(e) = kernel_flag_checks(flags, resolve) {
        return Verdict::Error(e);
    }
    let follow = flags & libc::O_NOFOLLOW == 0 && !exclusive;
    let cloexec = flags & libc::O_CLOEXEC != 0;
    let installed = |r: Result<OwnedFd, Errno>| match r {
        Ok(fd) => Verdict::InstallFd { fd, cloexec },
        Err(e) => Verdict::Error(e),
    };
    if !tmpfile && resolve == 0 {
        // One path through the caller's directory: no fd of it needed.
        if let Some(path) = through_caller_dir(call.tid, dirfd, raw, follow) {
            match open_plain(call.tid, (libc::AT_FDCWD, &path), flags, mode, 0) {
                // A dirfd that is not open reads as a missing name there:
                // the kernel's answer is EBADF.
                Some(Err(e)) if e == Errno::ENOENT && !dir_is_open(call.tid, dirfd, raw) => {
                    return Verdict::Error(Errno::EBADF)
                }
                Some(v) => return installed(v),
                None => {}
            }
        }
    }
    let f = match CallerFile::new(call.tid, dirfd, raw, follow) {
        Ok(f) => f,
        Err(e) => return Verdict::Error(e),
    };
    if !tmpfile && resolve != 0 {
        if let Some(v) = open_plain(call.tid, (f.dirfd(), &f.path), flags, mode, resolve) {
            return installed(v);
        }
    }
    let lookup = libc::O_PATH
        | libc::O_CLOEXEC
        | (flags & libc::O_DIRECTORY)
        | if follow { 0 } else { libc::O_NOFOLLOW };
    let found = match openat2(f.dirfd(), &f.path, lookup, 0, resolve) {
        Ok(fd) => fd,
        Err(e) if e == Errno::ENOENT && creating => {
            // A new file, made with the program's umask.
            let old = thread_umask(super::sys_path::umask_of(call.tid));
            let made = openat2(
                f.dirfd(),
                &f.path,
                flags | libc::O_NOCTTY | libc::O_CLOEXEC,
                mode,
                resolve,
            );
            thread_umask(old);
            return installed(made);
        }
        Err(e) => return Verdict::Error(e),
    };
    if exclusive {
        return Verdict::Error(Errno::EEXIST);
    }
    // SAFETY: an all-integer struct the kernel fills, and our fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(found.as_raw_fd(), &mut st) } != 0 {
        return Verdict::Error(last_errno());
    }
    let kind = st.st_mode & libc::S_IFMT;
    if kind == libc::S_IFLNK {
        // Only found without following: O_NOFOLLOW on a symlink.
        return Verdict::Error(Errno::ELOOP);
    }
    if kind == libc::S_IFDIR && creating && !tmpfile {
        return Verdict::Error(Errno::new(libc::EISDIR));
    }
    let again = (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW))
        | libc::O_NOCTTY
        | libc::O_CLOEXEC;
    if kind == libc::S_IFCHR && is_dev_tty(st.st_rdev) {
        return match controlling_tty(call.tid) {
            Ok(tty) => installed(openat2(libc::AT_FDCWD, &tty, again, 0, 0)),
            Err(e) => Verdict::Error(e),
        };
    }
    let Ok(by_fd) = CString::new(format!("/proc/self/fd/{}", found.as_raw_fd())) else {
        return Verdict::Error(Errno::EINVAL);
    };
    if tmpfile {
        let old = thread_umask(super::sys_path::umask_of(call.tid));
        let made = openat2(libc::AT_FDCWD, &by_fd, again, mode, 0);
        thread_umask(old);
        return installed(made);
    }
    installed(openat2(libc::AT_FDCWD, &by_fd, again, 0, 0))
}
