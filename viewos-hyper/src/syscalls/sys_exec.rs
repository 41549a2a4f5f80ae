//! Program execution: execve(2), execveat(2).
//!
//! The kernel runs the exec; the host follows it with `PTRACE_EVENT_EXEC`
//! (see the tracer). Two things change what runs:
//! - a program on a virtual path runs from the file its mount opens
//!   (through `/proc/HOST/fd/N`);
//! - a service that claims execs ([`viewos_core::binfmt`], `umbinfmt`)
//!   names an interpreter for the file: the exec becomes an execve(2) of
//!   the interpreter with binfmt_misc's arguments
//!   ([`Verdict::ExecRewrite`]). That exec comes back here, so an
//!   interpreter that is itself claimed, or a `#!` script, is handled in
//!   turn. A `#!` script whose interpreter a service claims is run here as
//!   the kernel's script handler would (the kernel does not know the
//!   view's formats). A chain of more than [`MAX_REWRITES`] rewrites fails
//!   with `ELOOP`, as in the kernel.
//!
//! In a view with mounts, a real program whose `#!` interpreter or ELF
//! loader the view serves runs with the view's (as a program from a mount
//! does: a real script in a moved root's `except` path runs the tree's
//! shell). Any other real program is run by the kernel, which reads the
//! path (and the script's `#!` line, and the loader's name) again; so the
//! tracer checks at the exec event that every file the new image maps is
//! one the view shows at its real path ([`check_real_exec`]), and kills
//! the process before it runs an instruction otherwise (a path changed by
//! another thread after the host's check, or an interpreter the view
//! hides).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use viewos_core::binfmt::{ExecRequest, Interpreter, BINPRM_BUF_SIZE};
use viewos_core::{Errno, Opened};

use super::sys_path::{target_of, Target};
use super::{Call, Context, ExecRewrite, Verdict};
use crate::memory;

/// Interpreter rewrites the kernel allows for one exec (`exec_binprm`).
pub const MAX_REWRITES: u32 = 5;

/// Implements execve(2).
pub fn execve(ctx: &Context, call: &Call<'_>) -> Verdict {
    log_path(ctx, call, call.entry.args[0]);
    exec_path(ctx, call, libc::AT_FDCWD, 0, 0)
}

/// Implements execveat(2).
pub fn execveat(ctx: &Context, call: &Call<'_>) -> Verdict {
    log_path(ctx, call, call.entry.args[1]);
    exec_path(
        ctx,
        call,
        call.entry.args[0] as i32,
        1,
        call.entry.args[4] as i32,
    )
}

/// The file an exec names, as far as the claim needs it.
struct Probe {
    /// Its first bytes.
    head: Vec<u8>,
    /// A virtual program's file, kept for its `/proc/HOST/fd/N` name.
    virtual_file: Option<OwnedFd>,
}

/// A program on a virtual path runs from the file its mount opens: the
/// call is rewritten to exec that file through `/proc/HOST/fd/N` (the host
/// keeps it open while the thread lives, so an interpreter can still open
/// a script by that name). A file a service claims runs its interpreter.
fn exec_path(ctx: &Context, call: &Call<'_>, dirfd: i32, arg: usize, flags: i32) -> Verdict {
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    let path = match memory::read_path(call.tid, call.entry.args[arg]) {
        Ok(path) => path,
        Err(e) => return super::sys_path::unreadable(ctx, call.entry.args[arg], e),
    };
    if is_host_fd_path(&path) {
        // The host's own rewrite coming back (a program a mount gave).
        // The kernel reads the name again: the new image must be the file
        // the host handed out.
        if !ctx.view.read().mounts().is_empty() {
            let name = std::ffi::OsStr::from_bytes(&path);
            let mut head = [0u8; 2];
            let script = std::fs::File::open(name)
                .and_then(|mut f| f.read_exact(&mut head))
                .is_ok()
                && &head == b"#!";
            let check = match std::fs::metadata(name) {
                // A script runs its interpreter: what it maps is checked.
                _ if script => Some(ExecCheck::Visible),
                Ok(st) => {
                    use std::os::unix::fs::MetadataExt;
                    Some(ExecCheck::File(st.dev(), st.ino()))
                }
                Err(_) => None,
            };
            if let Some(check) = check {
                ctx.real_execs.lock().insert(call.tid, check);
            }
        }
        return Verdict::Native;
    }
    let claims = ctx.view.read().claims_execs();
    if !claims {
        return match target_of(ctx, call, dirfd, (call.entry.args[arg], &path), follow) {
            Ok(Target::Real) => real_exec(ctx, call, (arg, dirfd, flags), &path),
            Ok(Target::Virtual(m, p)) => match open_virtual(&m, &p) {
                Ok(fd) => run_virtual(ctx, call, arg, exec_filename(dirfd, &path, flags), fd),
                Err(e) => Verdict::Error(e),
            },
            Err(v) => v,
        };
    }
    let filename = exec_filename(dirfd, &path, flags);
    let probe = match probe(ctx, call, dirfd, (call.entry.args[arg], &path), flags) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let Some(probe) = probe else {
        end_chain(ctx, call.tid);
        return Verdict::Native;
    };
    let claimed = ctx.view.read().exec_interpreter(&ExecRequest {
        filename: &filename,
        head: &probe.head,
    });
    // A new exec (not the interpreter of a rewrite under way) forgets the
    // file a failed one would have taken its set-ID bits from.
    let continuing = ctx
        .exec_chains
        .lock()
        .get(&call.tid)
        .is_some_and(|(_, program)| program.as_slice() == path.as_slice());
    if !continuing {
        ctx.exec_credentials.lock().remove(&call.tid);
        ctx.exec_auxv_fds.lock().remove(&call.tid);
    }
    let Probe { head, virtual_file } = probe;
    match claimed {
        Some(Ok(interp)) => {
            if interp.open_binary {
                // O: the program goes to the new image as an open fd
                // (AT_EXECFD), opened by the thread itself first.
                let opened = ctx.exec_fds.lock().remove(&call.tid);
                match opened {
                    Some(fd) if fd >= 0 => {
                        ctx.exec_auxv_fds.lock().insert(call.tid, fd);
                    }
                    Some(e) => return Verdict::Error(Errno::new((-e) as i32)),
                    None => {
                        let file = match virtual_file {
                            Some(fd) => Ok(fd),
                            None => real_program(ctx, call.tid, dirfd, &path),
                        };
                        match file {
                            Ok(fd) => return Verdict::OpenForExec(fd),
                            Err(e) => return Verdict::Error(e),
                        }
                    }
                }
            }
            let argv = match memory::read_string_array(call.tid, call.entry.args[arg + 1]) {
                Ok(a) => a,
                Err(e) => return Verdict::Error(e),
            };
            if interp.credentials && ctx.identity.is_some() {
                if let Some(status) = file_status(ctx, call.tid, dirfd, &path) {
                    ctx.exec_credentials.lock().insert(call.tid, status);
                }
            }
            rewrite(
                ctx,
                call.tid,
                &path,
                run_interpreter(&interp, &filename, &argv),
            )
        }
        Some(Err(e)) => {
            end_chain(ctx, call.tid);
            Verdict::Error(e)
        }
        None => {
            if let Some(v) = script_of_claimed(ctx, call, arg, &filename, &head) {
                return rewrite(ctx, call.tid, &path, v);
            }
            end_chain(ctx, call.tid);
            match virtual_file {
                Some(fd) => run_virtual(ctx, call, arg, filename, fd),
                None => real_exec(ctx, call, (arg, dirfd, flags), &path),
            }
        }
    }
}

/// A real program (the resolver checked `path`) in a view with mounts:
/// run with the view's interpreter if the view serves its `#!`
/// interpreter or ELF loader; otherwise left to the kernel and checked at
/// the exec event ([`check_real_exec`]).
fn real_exec(
    ctx: &Context,
    call: &Call<'_>,
    (arg, dirfd, flags): (usize, i32, i32),
    path: &[u8],
) -> Verdict {
    if ctx.view.read().mounts().is_empty() {
        return Verdict::Native;
    }
    ctx.real_execs.lock().insert(call.tid, ExecCheck::Visible);
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    let Ok(f) = super::caller_file::CallerFile::new(call.tid, dirfd, path, follow) else {
        return Verdict::Native;
    };
    // SAFETY: a valid fd (or AT_FDCWD) and our NUL-terminated path.
    let fd = unsafe {
        libc::openat(
            f.dirfd(),
            f.path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY,
        )
    };
    if fd < 0 {
        // Not readable by the host (a --x program): checked at the event.
        return Verdict::Native;
    }
    // SAFETY: a new fd we own.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let head = crate::elf::read_at(&fd, 0, BINPRM_BUF_SIZE).unwrap_or_default();
    let interpreter = match parse_shebang(&head) {
        Some((name, _)) => Some(name),
        None => crate::elf::interpreter(&fd, &head),
    };
    let Some(name) = interpreter else {
        return Verdict::Native;
    };
    let (mount, rel) = match super::sys_path::resolve_absolute(ctx, call.tid, &name, true) {
        Ok(crate::resolve::Resolved::Virtual { mount, path }) => (mount, path),
        Ok(crate::resolve::Resolved::Real) => return Verdict::Native,
        // An interpreter the view does not have (hidden, say): the
        // kernel's answer for a missing one.
        Err(e) => return Verdict::Error(e),
    };
    if let Err(e) = open_virtual(&mount, &rel) {
        // What the kernel answers for an interpreter that is not there.
        return Verdict::Error(e);
    }
    ctx.real_execs.lock().remove(&call.tid);
    run_virtual(ctx, call, arg, exec_filename(dirfd, path, flags), fd)
}

/// What the image an exec left to the kernel must be
/// ([`Context::real_execs`]).
#[derive(Clone, Copy, Debug)]
pub enum ExecCheck {
    /// A real program: every file it maps is one the view shows.
    Visible,
    /// A file the host handed out by name: the program is that file
    /// (device, inode).
    File(u64, u64),
}

/// At the exec event of thread `tid` (its id before the exec: `former`):
/// if the host left a real program to the kernel, every file the new image
/// maps (the program, its loader, a script's interpreter) must be one the
/// view shows at its real path; a program the host handed out by name must
/// be that file. `Err` names what ran instead; the tracer then kills the
/// process before it runs.
pub fn check_real_exec(ctx: &Context, former: i32, tid: i32) -> Result<(), String> {
    let check = {
        let mut execs = ctx.real_execs.lock();
        let a = execs.remove(&former);
        execs.remove(&tid).or(a)
    };
    let Some(check) = check else {
        return Ok(());
    };
    if let ExecCheck::File(dev, ino) = check {
        use std::os::unix::fs::MetadataExt;
        return match std::fs::metadata(format!("/proc/{tid}/exe")) {
            Ok(st) if (st.dev(), st.ino()) == (dev, ino) => Ok(()),
            _ => Err(std::fs::read_link(format!("/proc/{tid}/exe"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "another program".into())),
        };
    }
    if ctx.view.read().mounts().is_empty() {
        return Ok(());
    }
    let maps = std::fs::read_to_string(format!("/proc/{tid}/maps")).unwrap_or_default();
    let mut seen: Vec<&str> = Vec::new();
    for line in maps.lines() {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        if !path.starts_with('/') || line.ends_with(" (deleted)") || seen.contains(&path) {
            continue;
        }
        seen.push(path);
        // The maps file's own line holds the whole path after the fields.
        let full = line.find(path).map(|i| &line[i..]).unwrap_or(path);
        match super::sys_path::resolve_absolute(ctx, tid, full.as_bytes(), false) {
            Ok(crate::resolve::Resolved::Real) => {}
            _ => return Err(full.to_string()),
        }
    }
    Ok(())
}

/// The real program file an exec of `path` (relative to `dirfd`) names,
/// opened by the host (for binfmt's `O` flag).
fn real_program(ctx: &Context, tid: i32, dirfd: i32, path: &[u8]) -> Result<OwnedFd, Errno> {
    let abs = crate::resolve::absolute(&ctx.dirs, tid, dirfd, path).ok_or(Errno::ENOENT)?;
    std::fs::File::open(abs)
        .map(OwnedFd::from)
        .map_err(Errno::from)
}

/// The status of the real file an exec of `path` (relative to `dirfd`)
/// runs, and whether its file system is `nosuid` (for binfmt's `C` flag);
/// `None` for a file the view serves (its set-ID bits are not applied).
fn file_status(ctx: &Context, tid: i32, dirfd: i32, path: &[u8]) -> Option<(libc::stat, bool)> {
    let abs = crate::resolve::absolute(&ctx.dirs, tid, dirfd, path)?;
    crate::identity::program_status(&abs)
}

/// Counts one more rewrite of thread `tid`'s exec of `from` (the program
/// the previous rewrite of the chain ran, or a new chain): `ELOOP` past
/// [`MAX_REWRITES`].
fn rewrite(ctx: &Context, tid: i32, from: &[u8], exec: ExecRewrite) -> Verdict {
    let mut chains = ctx.exec_chains.lock();
    let depth = match chains.get(&tid) {
        Some((depth, program)) if program.as_slice() == from => *depth,
        _ => 0,
    };
    if depth >= MAX_REWRITES {
        chains.remove(&tid);
        return Verdict::Error(Errno::ELOOP);
    }
    chains.insert(tid, (depth + 1, exec.path.clone()));
    Verdict::ExecRewrite(exec)
}

fn end_chain(ctx: &Context, tid: i32) {
    let mut chains = ctx.exec_chains.lock();
    if !chains.is_empty() {
        chains.remove(&tid);
    }
}

/// The exec of an interpreter for `filename`.
fn run_interpreter(interp: &Interpreter, filename: &[u8], argv: &[Vec<u8>]) -> ExecRewrite {
    let argv = interp.argv(filename, argv);
    let hold = interp.file.as_ref().and_then(|f| {
        use std::os::fd::AsFd;
        f.as_fd().try_clone_to_owned().ok()
    });
    let path = match &hold {
        Some(fd) => host_fd_path(fd),
        None => interp.path.as_os_str().as_bytes().to_vec(),
    };
    ExecRewrite { path, argv, hold }
}

/// The file name the kernel's format handlers see (`bprm->filename`).
fn exec_filename(dirfd: i32, path: &[u8], flags: i32) -> Vec<u8> {
    if path.first() == Some(&b'/') || dirfd == libc::AT_FDCWD {
        return path.to_vec();
    }
    if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        return format!("/dev/fd/{dirfd}").into_bytes();
    }
    let mut name = format!("/dev/fd/{dirfd}/").into_bytes();
    name.extend_from_slice(path);
    name
}

/// The first bytes of the file an exec names, when the caller may run it
/// (`None`: a directory, not executable, missing...: the kernel answers).
fn probe(
    ctx: &Context,
    call: &Call<'_>,
    dirfd: i32,
    (addr, path): (u64, &[u8]),
    flags: i32,
) -> Result<Option<Probe>, Verdict> {
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    match target_of(ctx, call, dirfd, (addr, path), follow)? {
        Target::Real => Ok(real_head(call.tid, dirfd, path).map(|head| Probe {
            head,
            virtual_file: None,
        })),
        Target::Virtual(m, p) => {
            let fd = open_virtual(&m, &p).map_err(Verdict::Error)?;
            let head = read_head(std::fs::File::from(
                fd.try_clone().map_err(|_| Verdict::Error(Errno::EIO))?,
            ))
            .map_err(Verdict::Error)?;
            Ok(Some(Probe {
                head,
                virtual_file: Some(fd),
            }))
        }
    }
}

/// The head of a real program file, named as thread `tid` names it,
/// if it is a regular file the host (the view's user) may execute.
fn real_head(tid: i32, dirfd: i32, path: &[u8]) -> Option<Vec<u8>> {
    let mut host = if path.first() == Some(&b'/') {
        Vec::new()
    } else if dirfd == libc::AT_FDCWD {
        format!("/proc/{tid}/cwd/").into_bytes()
    } else if path.is_empty() {
        format!("/proc/{tid}/fd/{dirfd}").into_bytes()
    } else {
        format!("/proc/{tid}/fd/{dirfd}/").into_bytes()
    };
    host.extend_from_slice(path);
    let host = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&host));
    let meta = std::fs::metadata(&host).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return None;
    }
    let c = std::ffi::CString::new(host.as_os_str().as_bytes()).ok()?;
    // SAFETY: faccessat reads the NUL-terminated path we own.
    let ok = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) };
    if ok != 0 {
        return None;
    }
    read_head(std::fs::File::open(&host).ok()?).ok()
}

/// Reads up to [`BINPRM_BUF_SIZE`] bytes from the start of `file`.
fn read_head(file: std::fs::File) -> Result<Vec<u8>, Errno> {
    let mut head = Vec::with_capacity(BINPRM_BUF_SIZE);
    file.take(BINPRM_BUF_SIZE as u64)
        .read_to_end(&mut head)
        .map_err(Errno::from)?;
    Ok(head)
}

/// Opens a program on a virtual path as its mount gives it (a served one
/// as a copy in memory).
fn open_virtual(
    mount: &viewos_core::mounts::Mount,
    path: &std::path::Path,
) -> Result<OwnedFd, Errno> {
    let opened = mount.fs.lstat(path).and_then(|st| {
        if st.is_dir() {
            return Err(Errno::EACCES);
        }
        mount.fs.access(path, libc::X_OK)?;
        mount.fs.open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0)
    })?;
    match opened {
        Opened::Backed(fd) => Ok(fd),
        Opened::Served(h) => crate::served::copy_of(h.as_ref()),
        _ => Err(Errno::ENOEXEC),
    }
}

fn host_fd_path(fd: &OwnedFd) -> Vec<u8> {
    crate::host_threads::host_fd_path(fd).into_bytes()
}

/// True for a name of a file the host hands out
/// ([`crate::host_threads::host_fd_path`]).
fn is_host_fd_path(path: &[u8]) -> bool {
    crate::host_threads::is_host_fd_path(path)
}

/// Runs a program a mount gave (`fd`, named `filename` by the exec) from
/// its file. The kernel would look up two names of its own on the real
/// root, so where the view has them elsewhere the host makes that exec
/// itself: a `#!` script's interpreter is exec'd with the script's name
/// (as the kernel's script handler does), and a dynamic ELF program whose
/// loader (`PT_INTERP`) the view serves runs as an argument of that
/// loader (`LOADER --argv0 ARGV0 PROGRAM ARGS`, which then loads the
/// program and its libraries through the view). Both execs come back
/// here, counted as rewrites.
fn run_virtual(
    ctx: &Context,
    call: &Call<'_>,
    arg: usize,
    filename: Vec<u8>,
    fd: OwnedFd,
) -> Verdict {
    let plain = |fd: OwnedFd| Verdict::RewritePath {
        arg,
        path: host_fd_path(&fd),
        hold: Some(fd),
    };
    // A name through a descriptor (execveat) may not outlive the exec.
    if filename.starts_with(b"/dev/fd/") {
        return plain(fd);
    }
    let head = crate::elf::read_at(&fd, 0, BINPRM_BUF_SIZE).unwrap_or_default();
    let exec = if let Some((name, optional)) = parse_shebang(&head) {
        let Ok(argv) = memory::read_string_array(call.tid, call.entry.args[arg + 1]) else {
            return plain(fd);
        };
        let mut new = vec![name.clone()];
        new.extend(optional);
        new.push(filename.clone());
        new.extend(argv.into_iter().skip(1));
        ExecRewrite {
            path: name,
            argv: new,
            hold: None,
        }
    } else if let Some(loader) = crate::elf::interpreter(&fd, &head) {
        let Some((mount, rel)) = virtual_target(ctx, call.tid, &loader) else {
            return plain(fd);
        };
        let Ok(loader_fd) = open_virtual(&mount, &rel) else {
            // The kernel's answer for a loader it cannot run.
            return plain(fd);
        };
        let Ok(argv) = memory::read_string_array(call.tid, call.entry.args[arg + 1]) else {
            return plain(fd);
        };
        let argv0 = crate::elf::loader_takes_argv0(&loader_fd);
        ExecRewrite {
            argv: crate::elf::loader_argv(&loader, argv0, &filename, &argv),
            path: loader,
            hold: None,
        }
    } else {
        return plain(fd);
    };
    let from = memory::read_path(call.tid, call.entry.args[arg]).unwrap_or_default();
    rewrite(ctx, call.tid, &from, exec)
}

/// The mount and path an absolute `path` leads to in the view, if it is
/// virtual.
fn virtual_target(
    ctx: &Context,
    tid: i32,
    path: &[u8],
) -> Option<(viewos_core::mounts::Mount, std::path::PathBuf)> {
    match super::sys_path::resolve_absolute(ctx, tid, path, true) {
        Ok(crate::resolve::Resolved::Virtual { mount, path }) => Some((mount, path)),
        _ => None,
    }
}

/// A `#!` script whose interpreter a service claims: the exec the
/// kernel's script handler would make (the interpreter, its optional
/// argument, the script's name, the program's arguments but `argv[0]`),
/// which then comes back here to be claimed. `None` for anything else,
/// left to the kernel.
fn script_of_claimed(
    ctx: &Context,
    call: &Call<'_>,
    arg: usize,
    filename: &[u8],
    head: &[u8],
) -> Option<ExecRewrite> {
    let (name, optional) = parse_shebang(head)?;
    let probe = probe(ctx, call, libc::AT_FDCWD, (0, &name), 0).ok()??;
    let claimed = ctx.view.read().exec_interpreter(&ExecRequest {
        filename: &name,
        head: &probe.head,
    });
    if !matches!(claimed, Some(Ok(_))) {
        return None;
    }
    let argv = memory::read_string_array(call.tid, call.entry.args[arg + 1]).ok()?;
    let mut new = vec![name.clone()];
    new.extend(optional);
    new.push(filename.to_vec());
    new.extend(argv.into_iter().skip(1));
    Some(ExecRewrite {
        path: name,
        argv: new,
        hold: None,
    })
}

/// The interpreter and optional argument of a `#!` line, by the kernel's
/// rules (`binfmt_script`): blanks around them are dropped, the argument
/// is the rest of the line; a name cut by the end of the buffer is no
/// script. `None` when the head is not a usable `#!` line.
fn parse_shebang(head: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let rest = head.strip_prefix(b"#!")?;
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let line = match rest.iter().position(|&c| c == b'\n') {
        Some(end) => &rest[..end],
        None => {
            if head.len() < BINPRM_BUF_SIZE {
                rest
            } else {
                // No newline in the buffer: the name must end before it.
                let start = rest.iter().position(|c| !blank(c))?;
                let ends = rest[start..].iter().any(|&c| blank(&c) || c == 0);
                if !ends {
                    return None;
                }
                &rest[..rest.len() - 1]
            }
        }
    };
    // A NUL ends the line as the kernel's strings do.
    let line = match line.iter().position(|&c| c == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let start = line.iter().position(|c| !blank(c))?;
    let line = &line[start..];
    let end = line.iter().rposition(|c| !blank(c))? + 1;
    let line = &line[..end];
    let name_end = line.iter().position(blank).unwrap_or(line.len());
    let name = line[..name_end].to_vec();
    let arg = line[name_end..]
        .iter()
        .position(|c| !blank(c))
        .map(|a| line[name_end + a..].to_vec());
    Some((name, arg))
}

fn log_path(ctx: &Context, call: &Call<'_>, addr: u64) {
    if ctx.log.enabled() {
        match memory::read_path(call.tid, addr) {
            Ok(p) => ctx.log.line(format_args!(
                "{} exec attempt {:?}",
                call.tid,
                String::from_utf8_lossy(&p)
            )),
            Err(e) => ctx.log.line(format_args!(
                "{} exec attempt <bad path: {:?}>",
                call.tid, e
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(head: &[u8]) -> Option<(String, Option<String>)> {
        parse_shebang(head).map(|(n, a)| {
            (
                String::from_utf8(n).unwrap(),
                a.map(|a| String::from_utf8(a).unwrap()),
            )
        })
    }

    #[test]
    fn shebang_lines() {
        assert_eq!(sb(b"#!/bin/sh\necho"), Some(("/bin/sh".into(), None)));
        assert_eq!(
            sb(b"#! /usr/bin/env  python3 -u \t\nx"),
            Some(("/usr/bin/env".into(), Some("python3 -u".into())))
        );
        assert_eq!(sb(b"#!/a.foo"), Some(("/a.foo".into(), None)));
        assert_eq!(sb(b"#!   \n"), None);
        assert_eq!(sb(b"#\n"), None);
        assert_eq!(sb(b"\x7fELF"), None);
        // A name the buffer cuts is not a script line.
        let mut long = b"#!/".to_vec();
        long.resize(BINPRM_BUF_SIZE, b'x');
        assert_eq!(sb(&long), None);
        let mut long = b"#!/bin/sh ".to_vec();
        long.resize(BINPRM_BUF_SIZE, b'x');
        assert_eq!(
            sb(&long).map(|(n, a)| (n, a.map(|a| a.len()))),
            Some(("/bin/sh".into(), Some(BINPRM_BUF_SIZE - 10 - 1)))
        );
    }

    #[test]
    fn file_names_as_the_kernel_sees_them() {
        assert_eq!(exec_filename(libc::AT_FDCWD, b"./a.foo", 0), b"./a.foo");
        assert_eq!(exec_filename(3, b"/x/a.foo", 0), b"/x/a.foo");
        assert_eq!(exec_filename(3, b"a.foo", 0), b"/dev/fd/3/a.foo");
        assert_eq!(exec_filename(3, b"", libc::AT_EMPTY_PATH), b"/dev/fd/3");
    }
}
