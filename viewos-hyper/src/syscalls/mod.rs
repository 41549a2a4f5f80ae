//! The syscall table: from a syscall number to the handler that decodes it
//! and asks the view.
//!
//! One table, ordered by number, gives for each syscall the host handles its
//! name, its family ([`Interest`]) and its handler. The seccomp filter traps
//! exactly the numbers whose family the view is interested in; numbers not in
//! the table always run natively. Handlers live in one file per family, all
//! with the same signature: `sys_path` (looking at files by path, and the
//! path resolution all path calls share), `sys_tree` (names in
//! directories), `sys_open`, `sys_attr` (modes, owners, times, xattrs),
//! `sys_cwd`, `sys_exec`, `sys_mount`, `sys_control`, `sys_fd` (calls
//! on the fds of served files), `sys_socket` (sockets of families a
//! service claims), `sys_identity` (ids and capabilities) and
//! `sys_owners` (file calls as a view with identities answers them).
//!
//! The fd family ([`Interest::FD`]) is never in the view's filter: it is
//! trapped by a second filter only in processes that hold a served file's
//! placeholder ([`fd_filter_rules`], [`crate::served`]).

use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicBool;

use parking_lot::RwLock;
use viewos_core::{Errno, Interest, ModuleRegistry, View};

use crate::filter::Action;
use crate::log::Log;
use crate::ptrace::SyscallEntry;
use crate::virtual_dirs::VirtualDirs;
use crate::walk_cache::WalkCache;

mod caller_file;
mod hooks;
mod host_call;
mod host_open;
pub use host_open::{forget_credentials, CREDENTIAL_CALLS};
mod sys_attr;
mod sys_control;
mod sys_cwd;
mod sys_exec;
pub use sys_exec::check_real_exec;
mod sys_fd;
mod sys_guard;
mod sys_identity;
mod sys_mount;
mod sys_open;
mod sys_owners;
mod sys_path;
mod sys_socket;
mod sys_tree;

/// The host's answer to a syscall entry.
#[derive(Debug)]
pub enum Verdict {
    /// Let the kernel run the call as the program made it.
    Native,
    /// Do not run the call; the program sees this return value.
    Return(i64),
    /// Do not run the call; the program sees this error.
    Error(Errno),
    /// Run the call with its path argument number `arg` replaced by `path`.
    /// Where the tracer stops the call ([`Entry::rewrites`]) it changes the
    /// register at once; a call waiting at the supervisor is handed to the
    /// tracer ([`Escalation`]), which interrupts it and changes the
    /// register before the kernel restarts it.
    RewritePath {
        /// Which argument (0-based).
        arg: usize,
        /// The new path, without its NUL.
        path: Vec<u8>,
        /// A host fd the new path names (`/proc/HOST/fd/N`), kept open as
        /// long as the calling thread lives.
        hold: Option<OwnedFd>,
    },
    /// Run an exec of another program with other arguments (an
    /// interpreter a service names for the file, [`viewos_core::binfmt`]):
    /// the call becomes execve(2) of `path` with `argv`, the environment
    /// as the program gave it. Applied like [`Verdict::RewritePath`].
    ExecRewrite(ExecRewrite),
    /// The call opened a file: install this host fd in the program (at the
    /// lowest free number, as open(2) would) and return its number.
    InstallFd {
        /// The host's fd, dropped once the program has its copy.
        fd: OwnedFd,
        /// The program's copy is close-on-exec.
        cloexec: bool,
    },
    /// Run syscall `nr` instead, with the path `path` as argument `arg`
    /// and the other arguments as they are (fchdir into a served directory
    /// becomes chdir into its placeholder). Only for calls stopped at the
    /// tracer.
    RewriteCall {
        /// The syscall to make.
        nr: u64,
        /// Which argument gets the path.
        arg: usize,
        /// The path, without its NUL.
        path: Vec<u8>,
    },
    /// Have the thread make these calls instead (only at the tracer).
    Calls(crate::tracee_calls::Plan),
    /// The call must wait until the caller's process has the fd filter
    /// (it is about to get a served file's placeholder): the tracer adds
    /// the filter, and the kernel makes the call again.
    InjectFdFilter,
    /// An exec that must pass its program to the new image as an open fd
    /// (binfmt's `O` flag, `AT_EXECFD`): the tracer has the thread open
    /// this host fd without close-on-exec (through `/proc/HOST/fd/N`),
    /// and the kernel makes the exec again, which then finds the fd in
    /// [`Context::exec_fds`].
    OpenForExec(OwnedFd),
}

impl Verdict {
    /// The value written to the return register when the call is skipped
    /// (`None`: the call runs, natively or rewritten).
    pub fn skip_value(&self) -> Option<i64> {
        match self {
            Verdict::Native
            | Verdict::InstallFd { .. }
            | Verdict::RewritePath { .. }
            | Verdict::RewriteCall { .. }
            | Verdict::ExecRewrite(_)
            | Verdict::Calls(_)
            | Verdict::InjectFdFilter
            | Verdict::OpenForExec(_) => None,
            Verdict::Return(v) => Some(*v),
            Verdict::Error(e) => Some(-(e.raw() as i64)),
        }
    }

    /// True for [`Verdict::Native`].
    pub fn is_native(&self) -> bool {
        matches!(self, Verdict::Native)
    }
}

/// A new exec for an exec call ([`Verdict::ExecRewrite`]).
#[derive(Debug)]
pub struct ExecRewrite {
    /// The program to run, without its NUL.
    pub path: Vec<u8>,
    /// Its arguments.
    pub argv: Vec<Vec<u8>>,
    /// A host fd `path` names (`/proc/HOST/fd/N`), kept open as long as
    /// the calling thread lives.
    pub hold: Option<OwnedFd>,
}

/// What other host threads hand to the tracer thread.
#[derive(Debug)]
pub enum TracerWork {
    /// A call waiting at the supervisor, to rewrite.
    Escalation(Escalation),
    /// The answer a worker found for a call stopped at the tracer
    /// ([`crate::workers`]): apply it and let the thread go on.
    Answered {
        /// The stopped thread.
        tid: i32,
        /// The handler's verdict.
        verdict: Verdict,
    },
    /// A service asks to start a helper program in the view.
    Launch(crate::launcher::LaunchRequest),
}

/// True if the call stopped at the tracer may wait on a service (which may
/// wait on a program of the view): mount, chdir, and fd calls on served
/// files. A worker answers those ([`crate::workers`]).
pub fn may_wait(ctx: &Context, call: &Call<'_>) -> bool {
    match lookup(call.entry.nr) {
        Some(e) => {
            e.family == Interest::MOUNT
                || e.rewrites
                || (e.family == Interest::FD && !ctx.served.is_empty())
        }
        None => false,
    }
}

/// The tracer's own answer to an fd call it can decide at once, without
/// a worker ([`crate::workers`]): `Native` for a call on an fd that is no
/// served file (in a process with the fd filter every read and write of
/// real fds stops too), and reads and writes of served files whose bytes
/// lie in a real file (see `sys_fd`'s direct transfers), which never
/// wait. `None` for every other call.
pub fn at_tracer(ctx: &Context, call: &Call<'_>) -> Option<Verdict> {
    if ctx.served.is_empty()
        || ctx.identity.is_some()
        || ctx.hooks_loaded.load(std::sync::atomic::Ordering::Acquire)
    {
        return None;
    }
    let entry = lookup(call.entry.nr)?;
    if entry.family != Interest::FD || !fd_in_arg0(call.entry.nr) {
        return None;
    }
    // A service that panics in `extent` leaves the call to its handler.
    let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sys_fd::at_tracer(ctx, call)
    }))
    .ok()??;
    log_verdict(ctx, call, entry, &verdict);
    Some(verdict)
}

/// The debug log's line for a decided call: its name, first arguments
/// and verdict.
fn log_verdict(ctx: &Context, call: &Call<'_>, entry: &Entry, verdict: &Verdict) {
    if ctx.log.enabled() {
        let a = &call.entry.args;
        ctx.log.line(format_args!(
            "{} {}({:#x}, {:#x}, {:#x}, ...) -> {:?}",
            call.tid,
            entry.name.trim_start_matches("SYS_"),
            a[0],
            a[1],
            a[2],
            verdict
        ));
    }
}

/// True for the fd calls whose only fd is argument 0 and whose handler
/// runs a call on a real fd natively (not mmap, whose fd is argument 4;
/// not munmap and msync, which write mappings back; not the splice family,
/// with two fds).
fn fd_in_arg0(nr: u64) -> bool {
    !matches!(
        nr as i64,
        libc::SYS_mmap
            | libc::SYS_munmap
            | libc::SYS_msync
            | libc::SYS_sendfile
            | libc::SYS_splice
            | libc::SYS_tee
            | libc::SYS_vmsplice
            | libc::SYS_copy_file_range
    )
}

/// A call the supervisor hands to the tracer.
#[derive(Debug)]
pub struct Escalation {
    /// The waiting thread.
    pub tid: i32,
    /// Its system call number.
    pub nr: u64,
    /// What the tracer does before the call is made again.
    pub what: Escalated,
}

/// What the tracer does to an escalated call.
#[derive(Debug)]
pub enum Escalated {
    /// Replace a path argument.
    Rewrite {
        /// The argument to replace.
        arg: usize,
        /// The new path.
        path: Vec<u8>,
        /// A host fd to keep open while the thread lives.
        hold: Option<OwnedFd>,
    },
    /// Make the exec another one ([`Verdict::ExecRewrite`]).
    Exec(ExecRewrite),
    /// Add the fd filter to the caller's process.
    InjectFdFilter,
    /// Open this host fd in the thread for its exec
    /// ([`Verdict::OpenForExec`]).
    OpenForExec(OwnedFd),
    /// Have the call open this host fd through `/proc/HOST/fd/N` (an
    /// `O_PATH` file, which the supervisor cannot install).
    Reopen {
        /// The file, kept open while the thread lives.
        fd: OwnedFd,
        /// The program's copy is close-on-exec.
        cloexec: bool,
    },
}

/// What a handler sees besides the call itself.
pub struct Context {
    /// The view the calling process belongs to. Calls read it (the
    /// supervisor threads at the same time); mount and service changes
    /// write it.
    pub view: RwLock<View>,
    /// What the host knows of symlinks on real paths.
    pub walks: WalkCache,
    /// Placeholder directories standing for virtual cwds.
    pub dirs: VirtualDirs,
    /// Work for the tracer thread: calls handed over by the supervisor,
    /// answers of calls the workers decided.
    pub inbox: std::sync::Arc<crate::inbox::Inbox<TracerWork>>,
    /// The tracer thread (woken with [`crate::tracer::wake_signal`]).
    pub tracer_tid: std::sync::atomic::AtomicI32,
    /// Modules `um_add_service` can load by name.
    pub modules: ModuleRegistry,
    /// The families the view's filter stops (fixed at start).
    pub trapped: Interest,
    /// The numbers the filter stops for services' hooks (fixed at start;
    /// `None` with `--no-seccomp`, where every call stops).
    pub hooked: Option<Vec<i64>>,
    /// Some loaded service hooks system calls ([`viewos_core::hook`]).
    pub hooks_loaded: AtomicBool,
    /// Set once the view has given a process a virtual fd or cwd; until
    /// then every fd and cwd in the view is real, which saves reading them
    /// for most relative paths.
    pub virtual_given: AtomicBool,
    /// Served files and the processes that have the fd filter.
    pub served: crate::served::ServedFiles,
    /// The fd family must be added to a process with a served file (false
    /// with `--no-seccomp`, where every call stops anyway).
    pub fd_filter_needed: bool,
    /// Execs being rewritten, by thread: how many rewrites so far and the
    /// program the last one runs (the exec handlers bound chains of
    /// interpreters as the kernel does).
    pub exec_chains: parking_lot::Mutex<std::collections::HashMap<i32, (u32, Vec<u8>)>>,
    /// Execs through a binfmt entry with the `C` flag, by thread: the
    /// status of the file run (its set-ID bits make the new ids, not the
    /// interpreter's) and whether its file system is `nosuid`.
    pub exec_credentials: parking_lot::Mutex<std::collections::HashMap<i32, (libc::stat, bool)>>,
    /// Threads whose exec the host left to the kernel in a view with
    /// mounts, and what the new image must be: checked at the exec event
    /// ([`check_real_exec`]).
    pub real_execs: parking_lot::Mutex<std::collections::HashMap<i32, sys_exec::ExecCheck>>,
    /// Per thread: the program file opened for its exec
    /// ([`Verdict::OpenForExec`]): the fd number in the thread, or the
    /// open's negative errno.
    pub exec_fds: parking_lot::Mutex<std::collections::HashMap<i32, i64>>,
    /// Per thread: the fd its coming exec passes as `AT_EXECFD`, put in the
    /// new image's auxiliary vector at the exec event.
    pub exec_auxv_fds: parking_lot::Mutex<std::collections::HashMap<i32, i64>>,
    /// The identities of the view's processes (`--root-id`, `-s`);
    /// `None`: processes have their real ids and none of the identity
    /// calls stops.
    pub identity: Option<crate::identity::Identities>,
    /// The network stack each process chose (`mstack`).
    pub stacks: crate::stacks::ProcessStacks,
    /// The debug log.
    pub log: Log,
}

/// A decoded syscall as handlers receive it.
pub struct Call<'a> {
    /// The calling thread.
    pub tid: i32,
    /// Number, arguments and ABI.
    pub entry: &'a SyscallEntry,
}

/// Every handler has this signature.
pub type Handler = fn(&Context, &Call<'_>) -> Verdict;

/// One row of the table.
pub struct Entry {
    /// Syscall number (x86_64).
    pub nr: i64,
    /// Its libc constant's name (`SYS_openat`), for the log.
    pub name: &'static str,
    /// The family it belongs to: trapped when the view is interested.
    pub family: Interest,
    /// The handler.
    pub handler: Handler,
    /// The handler may answer [`Verdict::RewritePath`]: the call stops at
    /// the tracer (which can change registers), not the supervisor.
    pub rewrites: bool,
    /// The handler in a view with identities ([`crate::identity`]): the
    /// call is then trapped even if its family is not, and goes to the
    /// supervisor.
    pub with_ids: Option<Handler>,
    /// A change of a file's metadata through an fd (fchmod, fchown,
    /// fsetxattr, fremovexattr): trapped with the path family too, since
    /// a real fd a mount handed out (a cow mount's unchanged file) must
    /// not change the real file (`sys_fd::on_fd_file`).
    pub fd_meta: bool,
}

/// One table row: the syscall's libc constant, its family, its handler,
/// and optionally `rewrites`, `meta` and/or `ids HANDLER`.
macro_rules! row {
    (@entry $nr:ident, $family:ident, $handler:path, $rewrites:expr, $ids:expr, $meta:expr) => {
        Entry {
            nr: libc::$nr,
            name: stringify!($nr),
            family: Interest::$family,
            handler: $handler,
            rewrites: $rewrites,
            with_ids: $ids,
            fd_meta: $meta,
        }
    };
    ($nr:ident, $family:ident, $handler:path) => {
        row!(@entry $nr, $family, $handler, false, None, false)
    };
    ($nr:ident, $family:ident, $handler:path, rewrites) => {
        row!(@entry $nr, $family, $handler, true, None, false)
    };
    ($nr:ident, $family:ident, $handler:path, ids $ids:path) => {
        row!(@entry $nr, $family, $handler, false, Some($ids), false)
    };
    ($nr:ident, $family:ident, $handler:path, meta) => {
        row!(@entry $nr, $family, $handler, false, None, true)
    };
    ($nr:ident, $family:ident, $handler:path, meta, ids $ids:path) => {
        row!(@entry $nr, $family, $handler, false, Some($ids), true)
    };
}

/// The table, sorted by number (a unit test checks the order).
static TABLE: &[Entry] = &[
    row!(SYS_read, FD, sys_fd::read),
    row!(SYS_write, FD, sys_fd::write),
    row!(SYS_open, PATH, sys_open::open, ids sys_owners::open),
    row!(SYS_stat, PATH, sys_path::stat, ids sys_owners::stat),
    row!(SYS_fstat, FD, sys_fd::fstat, ids sys_owners::fstat),
    row!(SYS_lstat, PATH, sys_path::lstat, ids sys_owners::lstat),
    row!(SYS_lseek, FD, sys_fd::lseek),
    row!(SYS_mmap, FD, sys_fd::mmap),
    row!(SYS_munmap, FD, sys_fd::sync_mappings),
    row!(SYS_ioctl, FD, sys_fd::ioctl),
    row!(SYS_pread64, FD, sys_fd::pread64),
    row!(SYS_pwrite64, FD, sys_fd::pwrite64),
    row!(SYS_readv, FD, sys_fd::readv),
    row!(SYS_writev, FD, sys_fd::writev),
    row!(SYS_access, PATH, sys_path::access, ids sys_owners::access),
    row!(SYS_msync, FD, sys_fd::sync_mappings),
    row!(SYS_sendfile, FD, sys_fd::splice_family),
    row!(SYS_socket, SOCKET, sys_socket::socket),
    row!(SYS_connect, FD, sys_socket::connect),
    row!(SYS_accept, FD, sys_socket::accept),
    row!(SYS_sendto, FD, sys_socket::sendto),
    row!(SYS_recvfrom, FD, sys_socket::recvfrom),
    row!(SYS_sendmsg, FD, sys_socket::sendmsg),
    row!(SYS_recvmsg, FD, sys_socket::recvmsg),
    row!(SYS_shutdown, FD, sys_socket::shutdown),
    row!(SYS_bind, FD, sys_socket::bind),
    row!(SYS_listen, FD, sys_socket::listen),
    row!(SYS_getsockname, FD, sys_socket::getsockname),
    row!(SYS_getpeername, FD, sys_socket::getpeername),
    row!(SYS_socketpair, SOCKET, sys_socket::socketpair),
    row!(SYS_setsockopt, FD, sys_socket::setsockopt),
    row!(SYS_getsockopt, FD, sys_socket::getsockopt),
    row!(SYS_execve, EXEC, sys_exec::execve),
    row!(SYS_kill, GUARD, sys_guard::kill),
    row!(SYS_fcntl, FD, sys_fd::fcntl),
    row!(SYS_flock, FD, sys_fd::accepted),
    row!(SYS_fsync, FD, sys_fd::fsync),
    row!(SYS_fdatasync, FD, sys_fd::fsync),
    row!(SYS_truncate, PATH, sys_attr::truncate),
    row!(SYS_ftruncate, FD, sys_fd::ftruncate),
    row!(SYS_getdents, FD, sys_fd::getdents),
    row!(SYS_getcwd, PATH, sys_cwd::getcwd),
    row!(SYS_chdir, PATH, sys_cwd::chdir, rewrites),
    row!(SYS_fchdir, FD, sys_fd::fchdir, rewrites),
    row!(SYS_rename, PATH, sys_tree::rename, ids sys_owners::rename),
    row!(SYS_mkdir, PATH, sys_tree::mkdir, ids sys_owners::mkdir),
    row!(SYS_rmdir, PATH, sys_tree::rmdir, ids sys_owners::rmdir),
    row!(SYS_creat, PATH, sys_open::creat, ids sys_owners::creat),
    row!(SYS_link, PATH, sys_tree::link),
    row!(SYS_unlink, PATH, sys_tree::unlink, ids sys_owners::unlink),
    row!(SYS_symlink, PATH, sys_tree::symlink, ids sys_owners::symlink),
    row!(SYS_readlink, PATH, sys_path::readlink),
    row!(SYS_chmod, PATH, sys_attr::chmod),
    row!(SYS_fchmod, FD, sys_fd::fchmod, meta),
    row!(SYS_chown, PATH, sys_attr::chown, ids sys_owners::chown),
    row!(SYS_fchown, FD, sys_fd::fchown, meta, ids sys_owners::fchown),
    row!(SYS_lchown, PATH, sys_attr::chown, ids sys_owners::chown),
    row!(SYS_ptrace, GUARD, sys_guard::ptrace),
    row!(SYS_getuid, IDENTITY, sys_identity::get_id),
    row!(SYS_getgid, IDENTITY, sys_identity::get_id),
    row!(SYS_setuid, IDENTITY, sys_identity::set_id),
    row!(SYS_setgid, IDENTITY, sys_identity::set_id),
    row!(SYS_geteuid, IDENTITY, sys_identity::get_id),
    row!(SYS_getegid, IDENTITY, sys_identity::get_id),
    row!(SYS_setreuid, IDENTITY, sys_identity::set_id),
    row!(SYS_setregid, IDENTITY, sys_identity::set_id),
    row!(SYS_getgroups, IDENTITY, sys_identity::getgroups),
    row!(SYS_setgroups, IDENTITY, sys_identity::setgroups),
    row!(SYS_setresuid, IDENTITY, sys_identity::set_id),
    row!(SYS_getresuid, IDENTITY, sys_identity::getres),
    row!(SYS_setresgid, IDENTITY, sys_identity::set_id),
    row!(SYS_getresgid, IDENTITY, sys_identity::getres),
    row!(SYS_setfsuid, IDENTITY, sys_identity::set_id),
    row!(SYS_setfsgid, IDENTITY, sys_identity::set_id),
    row!(SYS_capget, IDENTITY, sys_identity::capget),
    row!(SYS_capset, IDENTITY, sys_identity::capset),
    row!(SYS_rt_sigqueueinfo, GUARD, sys_guard::first_is_process),
    row!(SYS_utime, PATH, sys_attr::utime),
    row!(SYS_mknod, PATH, sys_tree::mknod, ids sys_owners::mknod),
    row!(SYS_statfs, PATH, sys_path::statfs),
    row!(SYS_fstatfs, FD, sys_fd::fstatfs),
    row!(SYS_prctl, GUARD, sys_guard::prctl),
    row!(SYS_chroot, PATH, sys_tree::chroot),
    row!(SYS_mount, MOUNT, sys_mount::mount),
    row!(SYS_umount2, MOUNT, sys_mount::umount2),
    row!(SYS_readahead, FD, sys_fd::accepted),
    row!(SYS_setxattr, PATH, sys_attr::setxattr),
    row!(SYS_lsetxattr, PATH, sys_attr::setxattr),
    row!(SYS_fsetxattr, FD, sys_fd::fsetxattr, meta),
    row!(SYS_getxattr, PATH, sys_attr::getxattr),
    row!(SYS_lgetxattr, PATH, sys_attr::getxattr),
    row!(SYS_fgetxattr, FD, sys_fd::fgetxattr),
    row!(SYS_listxattr, PATH, sys_attr::listxattr),
    row!(SYS_llistxattr, PATH, sys_attr::listxattr),
    row!(SYS_flistxattr, FD, sys_fd::flistxattr),
    row!(SYS_removexattr, PATH, sys_attr::removexattr),
    row!(SYS_lremovexattr, PATH, sys_attr::removexattr),
    row!(SYS_fremovexattr, FD, sys_fd::fremovexattr, meta),
    row!(SYS_tkill, GUARD, sys_guard::first_is_process),
    row!(SYS_getdents64, FD, sys_fd::getdents64),
    row!(SYS_fadvise64, FD, sys_fd::accepted),
    row!(SYS_tgkill, GUARD, sys_guard::tgkill),
    row!(SYS_utimes, PATH, sys_attr::utimes),
    row!(SYS_openat, PATH, sys_open::openat, ids sys_owners::openat),
    row!(SYS_mkdirat, PATH, sys_tree::mkdirat, ids sys_owners::mkdirat),
    row!(SYS_mknodat, PATH, sys_tree::mknodat, ids sys_owners::mknodat),
    row!(SYS_fchownat, PATH, sys_attr::fchownat, ids sys_owners::fchownat),
    row!(SYS_futimesat, PATH, sys_attr::futimesat),
    row!(SYS_newfstatat, PATH, sys_path::newfstatat, ids sys_owners::newfstatat),
    row!(SYS_unlinkat, PATH, sys_tree::unlinkat, ids sys_owners::unlinkat),
    row!(SYS_renameat, PATH, sys_tree::renameat, ids sys_owners::renameat),
    row!(SYS_linkat, PATH, sys_tree::linkat),
    row!(SYS_symlinkat, PATH, sys_tree::symlinkat, ids sys_owners::symlinkat),
    row!(SYS_readlinkat, PATH, sys_path::readlinkat),
    row!(SYS_fchmodat, PATH, sys_attr::fchmodat),
    row!(SYS_faccessat, PATH, sys_path::faccessat, ids sys_owners::faccessat),
    row!(SYS_splice, FD, sys_fd::splice_family),
    row!(SYS_tee, FD, sys_fd::splice_family),
    row!(SYS_sync_file_range, FD, sys_fd::accepted),
    row!(SYS_vmsplice, FD, sys_fd::splice_family),
    row!(SYS_utimensat, PATH, sys_attr::utimensat),
    row!(SYS_fallocate, FD, sys_fd::fallocate),
    row!(SYS_accept4, FD, sys_socket::accept),
    row!(SYS_preadv, FD, sys_fd::readv),
    row!(SYS_pwritev, FD, sys_fd::writev),
    row!(SYS_rt_tgsigqueueinfo, GUARD, sys_guard::tgkill),
    row!(SYS_recvmmsg, FD, sys_socket::recvmmsg),
    row!(SYS_name_to_handle_at, PATH, sys_attr::name_to_handle_at),
    row!(SYS_open_by_handle_at, PATH, sys_attr::open_by_handle_at),
    row!(SYS_sendmmsg, FD, sys_socket::sendmmsg),
    row!(SYS_process_vm_readv, GUARD, sys_guard::first_is_process),
    row!(SYS_process_vm_writev, GUARD, sys_guard::first_is_process),
    row!(SYS_renameat2, PATH, sys_tree::renameat, ids sys_owners::renameat),
    row!(SYS_execveat, EXEC, sys_exec::execveat),
    row!(SYS_copy_file_range, FD, sys_fd::splice_family),
    row!(SYS_preadv2, FD, sys_fd::readv),
    row!(SYS_pwritev2, FD, sys_fd::writev),
    row!(SYS_statx, PATH, sys_path::statx, ids sys_owners::statx),
    row!(SYS_pidfd_send_signal, GUARD, sys_guard::pidfd_send_signal),
    row!(SYS_pidfd_open, GUARD, sys_guard::first_is_process),
    row!(SYS_openat2, PATH, sys_open::openat2),
    row!(SYS_faccessat2, PATH, sys_path::faccessat, ids sys_owners::faccessat),
    row!(SYS_fchmodat2, PATH, sys_attr::fchmodat),
    Entry {
        nr: viewos_core::control::CONTROL_SYSCALL,
        name: "SYS_viewos_control",
        family: Interest::CONTROL,
        handler: sys_control::control,
        rewrites: false,
        with_ids: None,
        fd_meta: false,
    },
];

/// The table row for syscall `nr`.
pub fn lookup(nr: u64) -> Option<&'static Entry> {
    TABLE
        .binary_search_by_key(&(nr as i64), |e| e.nr)
        .ok()
        .map(|i| &TABLE[i])
}

/// How the calls of a family reach the host: path, exec and control calls
/// go to the supervisor (user notification, the cheaper stop; the rare
/// exec that must be rewritten is handed to the tracer); mount goes to the
/// tracer.
fn action_for(family: Interest) -> Action {
    if family == Interest::PATH
        || family == Interest::CONTROL
        || family == Interest::EXEC
        || family == Interest::SOCKET
        || family == Interest::IDENTITY
        || family == Interest::GUARD
    {
        Action::Notify
    } else {
        Action::Trace
    }
}

/// The seccomp rules for a view with `interest`: stop every handled syscall
/// of an interesting family, refuse what must never run.
pub fn filter_rules(interest: Interest, hooked: &[i64]) -> Vec<(u32, Action)> {
    let refused = crate::filter::refused_syscalls();
    let mut rules: Vec<(u32, Action)> = TABLE
        .iter()
        .filter(|e| {
            (interest.intersects(e.family) && e.family != Interest::FD)
                || (interest.contains(Interest::IDENTITY) && e.with_ids.is_some())
                || (interest.contains(Interest::PATH) && e.fd_meta)
        })
        .map(|e| {
            let ids = interest.contains(Interest::IDENTITY) && e.with_ids.is_some();
            let action = if ids || e.fd_meta {
                // Answered by the supervisor (the fd ones too: a
                // notification wins over the fd filter's trace).
                Action::Notify
            } else if e.rewrites {
                Action::Trace
            } else {
                action_for(e.family)
            };
            (e.nr as u32, action)
        })
        .collect();
    // Numbers services hook go to the supervisor, unless the host already
    // stops them (then the handler asks the hooks first) or refuses them.
    for &nr in hooked {
        let nr = nr as u32;
        if !rules.iter().chain(&refused).any(|&(n, _)| n == nr) {
            rules.push((nr, Action::Notify));
        }
    }
    rules.extend(refused);
    rules
}

/// The rules of the second filter a process gets with its first served
/// file: the fd family stops at the tracer.
pub fn fd_filter_rules() -> Vec<(u32, Action)> {
    TABLE
        .iter()
        .filter(|e| e.family == Interest::FD)
        .map(|e| (e.nr as u32, Action::Trace))
        .collect()
}

/// True for the syscalls the filter refuses outright; the plain-ptrace path
/// refuses them the same way.
pub fn is_refused(nr: u64) -> bool {
    crate::filter::refused_syscalls()
        .iter()
        .any(|&(n, _)| n as u64 == nr)
}

/// Decides what happens to the syscall `call`, with its caller's
/// credentials where services look for them
/// ([`viewos_core::creds::Creds::caller`]): the ids the view gave the
/// process, or its real ones. An unprivileged host needs to tell nothing:
/// its programs cannot have other ids than its own, which is what
/// services get by default.
pub fn dispatch(ctx: &Context, call: &Call<'_>) -> Verdict {
    static HOST_IS_ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if let Some(ids) = &ctx.identity {
        let creds = ids.ids_of(call.tid).creds();
        viewos_core::creds::with_caller(creds, || dispatch_call(ctx, call))
    // SAFETY: geteuid has no preconditions.
    } else if *HOST_IS_ROOT.get_or_init(|| unsafe { libc::geteuid() } == 0) {
        viewos_core::creds::with_caller_process(call.tid, || dispatch_call(ctx, call))
    } else {
        dispatch_call(ctx, call)
    }
}

fn dispatch_call(ctx: &Context, call: &Call<'_>) -> Verdict {
    host_call::clear_checked();
    if CREDENTIAL_CALLS.contains(&(call.entry.nr as libc::c_long)) {
        forget_credentials(call.tid);
    }
    if ctx.hooks_loaded.load(std::sync::atomic::Ordering::Acquire) {
        if let Some(v) = hooks::dispatch(ctx, call) {
            return v;
        }
    }
    let Some(entry) = lookup(call.entry.nr) else {
        return Verdict::Native;
    };
    // A service that panics must not take the view down: the call fails
    // with EIO and everything else goes on.
    let handler = match entry.with_ids {
        Some(h) if ctx.identity.is_some() => h,
        _ => entry.handler,
    };
    let verdict =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(ctx, call))) {
            Ok(v) => v,
            Err(_) => {
                if ctx.log.enabled() {
                    ctx.log.line(format_args!(
                        "{} {}: a service panicked; the call fails with EIO",
                        call.tid,
                        entry.name.trim_start_matches("SYS_")
                    ));
                }
                Verdict::Error(Errno::EIO)
            }
        };
    // A real path call in a view with mounts is made by the host, from
    // the path it checked ([`host_call`]).
    let verdict = if verdict.is_native() && host_call::applies(ctx, call) {
        host_call::make(ctx, call)
    } else {
        verdict
    };
    log_verdict(ctx, call, entry, &verdict);
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(TABLE.windows(2).all(|w| w[0].nr < w[1].nr));
    }

    #[test]
    fn lookup_finds_rows() {
        assert_eq!(
            lookup(libc::SYS_execve as u64).map(|e| e.name),
            Some("SYS_execve")
        );
        assert!(lookup(libc::SYS_mprotect as u64).is_none());
    }

    #[test]
    fn rules_follow_interest() {
        let rules = filter_rules(Interest::EXEC, &[]);
        assert!(rules.contains(&(libc::SYS_execve as u32, Action::Notify)));
        assert!(!rules.iter().any(|r| r.0 == libc::SYS_mount as u32));
        let rules = filter_rules(Interest::PATH | Interest::MOUNT, &[]);
        assert!(rules.contains(&(libc::SYS_mount as u32, Action::Trace)));
        // chdir is rewritten in place, so it stops at the tracer.
        assert!(rules.contains(&(libc::SYS_chdir as u32, Action::Trace)));
        assert!(rules.contains(&(libc::SYS_openat as u32, Action::Notify)));
        assert!(is_refused(libc::SYS_io_uring_setup as u64));
        // The fd family never enters the view's filter.
        let rules = filter_rules(Interest::all(), &[]);
        assert!(!rules.iter().any(|r| r.0 == libc::SYS_read as u32));
        let fd = fd_filter_rules();
        assert!(fd.contains(&(libc::SYS_read as u32, Action::Trace)));
        assert!(fd.contains(&(libc::SYS_getdents64 as u32, Action::Trace)));
        assert!(!fd.iter().any(|r| r.0 == libc::SYS_openat as u32));
    }

    #[test]
    fn identity_calls_stop_only_with_identities() {
        let plain = filter_rules(Interest::HOST_MINIMUM, &[]);
        for nr in [libc::SYS_getuid, libc::SYS_fstat, libc::SYS_newfstatat] {
            assert!(!plain.iter().any(|r| r.0 == nr as u32));
        }
        let ids = filter_rules(Interest::HOST_MINIMUM | Interest::IDENTITY, &[]);
        for nr in [
            libc::SYS_getuid,
            libc::SYS_setresuid,
            libc::SYS_capget,
            libc::SYS_fstat,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_fchown,
            libc::SYS_mknodat,
        ] {
            assert!(ids.contains(&(nr as u32, Action::Notify)), "{nr}");
        }
        // Other path calls still run natively.
        assert!(!ids.iter().any(|r| r.0 == libc::SYS_linkat as u32));
    }

    #[test]
    fn skip_values() {
        assert_eq!(Verdict::Native.skip_value(), None);
        assert_eq!(Verdict::Return(3).skip_value(), Some(3));
        assert_eq!(Verdict::Error(Errno::ENOENT).skip_value(), Some(-2));
    }
}
