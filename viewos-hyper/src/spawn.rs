//! Starting a program inside the view.
//!
//! The child stops itself right after fork; the host seizes it with the
//! trace options (so `PTRACE_O_EXITKILL` covers it from then on) and lets it
//! go on. The child then installs the seccomp filter and execs the program,
//! searching `PATH` like a shell. Its exec is the first call the view sees.
//!
//! Between fork and exec the child runs only async-signal-safe code: every
//! string and array it needs is built before the fork.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use crate::error::HyperError;
use crate::filter::Filter;
use crate::ptrace;

/// The shell that runs files the kernel cannot execute, as execvp does.
const SH: &std::ffi::CStr = c"/bin/sh";

/// A signal disposition the child restores before exec.
#[derive(Clone, Copy)]
pub struct Disposition {
    /// The signal.
    pub signal: i32,
    /// What to set it to (as sigaction would take it).
    pub action: libc::sighandler_t,
}

/// How a helper a service starts ([`viewos_core::launch`]) differs from
/// a program the user asked for: stdin is `/dev/null`, stdout and stderr
/// go to `output` when given, and it runs in a session of its own.
pub struct HelperIo {
    /// Where its stdout and stderr go (else: the host's).
    pub output: Option<OwnedFd>,
}

/// Everything the child needs, prepared before fork.
struct Prepared {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    not_found_msg: Vec<u8>,
    denied_msg: Vec<u8>,
    failed_msg: Vec<u8>,
    filter_msg: Vec<u8>,
}

/// The paths `execvp` would try for `prog`.
fn candidates(prog: &OsStr) -> Vec<CString> {
    let bytes = prog.as_bytes();
    if bytes.is_empty() {
        // As in a shell: an empty name is a command that is not found.
        return Vec::new();
    }
    let to_c = |b: &[u8]| CString::new(b).ok();
    if bytes.contains(&b'/') {
        return to_c(bytes).into_iter().collect();
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    path.as_bytes()
        .split(|&b| b == b':')
        .filter_map(|dir| {
            let mut full = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            full.push(b'/');
            full.extend_from_slice(bytes);
            to_c(&full)
        })
        .collect()
}

fn prepare(argv: &[OsString]) -> Result<Prepared, HyperError> {
    let prog = argv.first().map(|s| s.as_os_str()).unwrap_or_default();
    let name = prog.to_string_lossy();
    let bad = |what: &str| HyperError::Spawn {
        program: name.to_string(),
        source: io::Error::new(io::ErrorKind::InvalidInput, what.to_string()),
    };
    let argv = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| bad("argument contains a NUL byte")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Prepared {
        candidates: candidates(prog),
        argv,
        not_found_msg: format!("umview: {name}: command not found\n").into_bytes(),
        denied_msg: format!("umview: {name}: Permission denied\n").into_bytes(),
        failed_msg: format!("umview: {name}: cannot execute\n").into_bytes(),
        filter_msg: b"umview: cannot install the seccomp filter\n".to_vec(),
    })
}

/// Forks, lets the host seize the child, and execs `argv` in it under
/// `filter` (none: plain ptrace), with the signal `dispositions` and the
/// `umask` the program should start with. Returns the child's pid; it is traced and
/// running when this returns.
pub fn spawn(
    argv: &[OsString],
    filter: Option<&Filter>,
    dispositions: &[Disposition],
    umask: u32,
    helper: Option<&HelperIo>,
) -> Result<(i32, Option<OwnedFd>), HyperError> {
    let prep = prepare(argv)?;
    let mut argv_ptrs: Vec<*const libc::c_char> = prep.argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    // For a file the kernel cannot execute (no `#!`, not ELF), execvp runs
    // it with /bin/sh: `/bin/sh FILE args...`; slot 1 is filled in the child.
    let mut sh_argv: Vec<*const libc::c_char> = vec![SH.as_ptr(), std::ptr::null()];
    sh_argv.extend(prep.argv.iter().skip(1).map(|a| a.as_ptr()));
    sh_argv.push(std::ptr::null());
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // The child reports the number of its notification listener here.
    let mut report = [0i32; 2];
    // SAFETY: pipe2 writes two fds into our array.
    if unsafe { libc::pipe2(report.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(HyperError::Spawn {
            program: String::from_utf8_lossy(prep.argv[0].as_bytes()).into_owned(),
            source: io::Error::last_os_error(),
        });
    }
    let (report_r, report_w) = (report[0], report[1]);
    let spawn_err = |source: io::Error| HyperError::Spawn {
        program: String::from_utf8_lossy(prep.argv[0].as_bytes()).into_owned(),
        source,
    };

    let fd_limit = CHILD_FD_LIMIT.get();
    // SAFETY: the child only calls async-signal-safe functions on data
    // prepared above and ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        // SAFETY: closing our own pipe.
        unsafe {
            libc::close(report_r);
            libc::close(report_w);
        }
        return Err(spawn_err(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: we are the child of fork; see child_after_fork.
        unsafe {
            child_after_fork(ChildPlan {
                parent,
                prep: &prep,
                argv: &argv_ptrs,
                sh_argv: &mut sh_argv,
                filter,
                dispositions,
                umask,
                fd_limit,
                report_w,
                helper: helper.map(|h| h.output.as_ref().map_or(-1, |o| o.as_raw_fd())),
            })
        }
    }
    // SAFETY: the parent keeps only the read end.
    unsafe { libc::close(report_w) };

    // Parent: take the listener, let the child's self-stop through it,
    // wait for the stop, seize the child, let it go on.
    let listener = take_listener(pid, report_r);
    if let Some(l) = &listener {
        crate::notify::let_one_through(l, pid);
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status into our local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED | libc::__WALL) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(spawn_err(e));
        }
    }
    // SAFETY: closing our read end.
    unsafe { libc::close(report_r) };
    if !libc::WIFSTOPPED(status) {
        return Err(spawn_err(io::Error::other(
            "the child died before it could be traced",
        )));
    }
    if let Err(source) = ptrace::seize(pid, ptrace::TRACE_OPTIONS) {
        // SAFETY: killing our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(HyperError::Ptrace {
            operation: "seize",
            pid,
            source,
        });
    }
    // SAFETY: sending SIGCONT to our own (now traced) child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    Ok((pid, listener))
}

/// Copies the child's notification listener (whose number it wrote to the
/// report pipe before stopping) into the host.
fn take_listener(pid: i32, report_r: i32) -> Option<OwnedFd> {
    let mut num = [0u8; 4];
    // The tracer's thread gets signals (wake-ups): an interrupted read or
    // copy is made again, or the child would wait for a supervisor forever.
    let n = loop {
        // SAFETY: reading at most 4 bytes into our buffer.
        let n = unsafe { libc::read(report_r, num.as_mut_ptr().cast(), 4) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break n;
    };
    if n != 4 {
        return None;
    }
    let target = i32::from_ne_bytes(num);
    loop {
        match crate::pidfd::copy_fd(pid, target) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r.ok(),
        }
    }
}

/// The limit on open files the programs start with, when the host raised
/// its own ([`crate::host::raise_fd_limit`]).
static CHILD_FD_LIMIT: OnceLock<libc::rlimit> = OnceLock::new();

/// Sets the limit on open files [`spawn`]'s programs get (the first call
/// wins).
pub(crate) fn set_child_fd_limit(lim: libc::rlimit) {
    let _ = CHILD_FD_LIMIT.set(lim);
}

/// What the child needs between fork and exec, all prepared before the fork.
struct ChildPlan<'a> {
    parent: i32,
    prep: &'a Prepared,
    argv: &'a [*const libc::c_char],
    sh_argv: &'a mut [*const libc::c_char],
    filter: Option<&'a Filter>,
    dispositions: &'a [Disposition],
    umask: u32,
    fd_limit: Option<&'a libc::rlimit>,
    report_w: i32,
    /// A helper's output fd (-1: the host's own); `None` for a program.
    helper: Option<i32>,
}

/// The child's side, from fork to exec. Never returns.
///
/// # Safety
/// Must only be called in the child of `fork`; uses only async-signal-safe
/// calls and memory prepared before the fork.
unsafe fn child_after_fork(plan: ChildPlan<'_>) -> ! {
    let ChildPlan {
        parent,
        prep,
        argv,
        sh_argv,
        filter,
        dispositions,
        umask,
        fd_limit,
        report_w,
        helper,
    } = plan;
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    let die = |msg: &[u8], code: i32| -> ! {
        // SAFETY: write(2) and _exit(2) are async-signal-safe.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(code)
        }
    };
    // If the host dies before it seizes us, die with it. The host is not
    // dumpable (`crate::fd_holder`) and a fork keeps that: the host must
    // be able to read and trace this process before it execs.
    // SAFETY: plain integer prctls and getppid.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(127);
        }
        for d in dispositions {
            libc::signal(d.signal, d.action);
        }
        libc::umask(umask as libc::mode_t);
        if let Some(lim) = fd_limit {
            libc::setrlimit(libc::RLIMIT_NOFILE, lim);
        }
        if let Some(output) = helper {
            libc::setsid();
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                libc::dup2(null, 0);
                if null > 2 {
                    libc::close(null);
                }
            }
            if output >= 0 {
                libc::dup2(output, 1);
                libc::dup2(output, 2);
                libc::close(output);
            }
        }
    }
    // The filter goes in before the host seizes us: nothing we call until
    // the exec is in it, and the host must copy the listener while we wait.
    let mut listener = None;
    if let Some(f) = filter {
        match f.install() {
            Ok(l) => listener = l,
            Err(_) => die(&prep.filter_msg, 126),
        }
    }
    // SAFETY: write, close, kill and prctl are async-signal-safe.
    unsafe {
        if let Some(l) = listener {
            let num = l.to_ne_bytes();
            libc::write(report_w, num.as_ptr().cast(), 4);
        }
        libc::close(report_w);
        libc::kill(libc::getpid(), libc::SIGSTOP);
        // Seized and continued: from now on EXITKILL covers us.
        libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
        if let Some(l) = listener {
            libc::close(l);
        }
    }
    let mut denied = false;
    let mut other = false;
    for cand in &prep.candidates {
        // SAFETY: `cand` and `argv` are NUL-terminated and live; environ is
        // the process environment.
        unsafe { libc::execve(cand.as_ptr(), argv.as_ptr(), environ) };
        // SAFETY: reading errno right after the failed call.
        match unsafe { *libc::__errno_location() } {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::ENOEXEC => {
                sh_argv[1] = cand.as_ptr();
                // SAFETY: as above; SH is a static NUL-terminated path.
                unsafe { libc::execve(SH.as_ptr(), sh_argv.as_ptr(), environ) };
                other = true;
            }
            libc::EACCES => denied = true,
            _ => other = true,
        }
    }
    if denied {
        die(&prep.denied_msg, 126)
    } else if other {
        die(&prep.failed_msg, 126)
    } else {
        die(&prep.not_found_msg, 127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_means_no_path_search() {
        let c = candidates(OsStr::new("./x"));
        assert_eq!(c, vec![CString::new("./x").unwrap()]);
    }

    #[test]
    fn path_search_order() {
        let c = candidates(OsStr::new("true"));
        assert!(!c.is_empty());
        assert!(c.iter().all(|p| p.as_bytes().ends_with(b"/true")));
    }

    #[test]
    fn nul_in_argument_is_refused() {
        let argv = vec![OsString::from("echo"), OsString::from("a\0b")];
        assert!(prepare(&argv).is_err());
    }
}
