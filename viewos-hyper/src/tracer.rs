//! The event loop: waits for traced threads to stop and decides how each
//! one goes on.
//!
//! One thread of the host is the tracer of every traced thread. It waits
//! with `waitpid(-1, __WALL)` and classifies each report:
//! - syscall stops (seccomp traps, or every entry/exit with `--no-seccomp`)
//!   go to [`crate::syscalls::dispatch`];
//! - fork/vfork/clone events register the new thread (its own first stop may
//!   arrive before or after the parent's event);
//! - exec events retire the thread id that vanished when a non-leader thread
//!   exec'd;
//! - group-stops (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU) are left stopped with
//!   `PTRACE_LISTEN`, so job control behaves as outside;
//! - other signals are delivered unchanged;
//! - exits and deaths end threads; the end of a started program's leader
//!   gives its exit status.
//!
//! The view ends when no traced process is left (`ECHILD`).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use viewos_core::launch::Helper;
use viewos_core::Errno;

use crate::error::HyperError;
use crate::filter::Filter;
use crate::host_signals;
use crate::inject;
use crate::memory;
use crate::notify;
use crate::ptrace::{self, SyscallStop};
use crate::spawn::{self, Disposition};
use crate::syscalls::{self, Call, Context, Escalated, TracerWork, Verdict};
use crate::tracee_calls::Sequence;

/// How a program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl Exit {
    /// The status a shell reports: the code, or 128 + the signal number.
    pub fn shell_status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// A program to run in the view, in order.
#[derive(Clone, Debug)]
pub struct Program {
    /// argv; `argv[0]` is searched on PATH.
    pub argv: Vec<OsString>,
    /// What the program is for: rc files warn on failure, the main program
    /// gives umview its exit status.
    pub role: Role,
}

/// Why a program runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// An rc file run before the main program.
    Rc(String),
    /// The program the user asked for.
    Main,
}

/// Per-thread state the loop keeps.
#[derive(Default)]
struct ThreadState {
    /// With `--no-seccomp`: the value to return at the exit stop of a call
    /// skipped at entry.
    pending_return: Option<i64>,
    /// A host fd the thread is reopening (see [`reopen_in_tracee`]), kept
    /// open until the call's exit stop.
    held_fd: Option<OwnedFd>,
    /// A host fd a rewritten call names (a program exec'd from a virtual
    /// path), kept open while the thread lives.
    held_for_life: Option<OwnedFd>,
    /// A call handed over by the supervisor, to rewrite at the stop that
    /// interrupts it.
    escalation: Option<crate::syscalls::Escalation>,
    /// The fd filter being added by the thread itself ([`crate::inject`]).
    injection: Option<inject::Injection>,
    /// Calls the thread makes for the host ([`crate::tracee_calls`]).
    calls: Option<Sequence>,
    /// A worker is deciding the call the thread is stopped at; its answer
    /// is applied only if this is still set (not a new thread that got
    /// the same id).
    answer_pending: bool,
}

/// The tracer of one view.
pub struct Tracer {
    ctx: Arc<Context>,
    filter: Option<Filter>,
    dispositions: Vec<Disposition>,
    quiet: bool,
    guard_signals: bool,
    /// The umask programs start with (the host's own is 0 so that services
    /// create files with exactly the mode the caller's umask gives).
    umask: u32,
    threads: HashMap<i32, ThreadState>,
    /// The threads that answer calls that may wait ([`crate::workers`]).
    workers: crate::workers::Workers,
    /// Helpers services started ([`viewos_core::launch`]), by process id.
    helpers: HashMap<i32, Arc<Helper>>,
    /// The threads of helpers and of their children: they do not keep the
    /// view alive.
    helper_threads: HashSet<i32>,
    /// The thread closing the view while helpers still run (their mounts
    /// must close for them to end).
    ending: Option<std::thread::JoinHandle<()>>,
    /// Threads whose file became ready before they began to wait (a
    /// worker decided the wait, and its answer was still on the way):
    /// their wait ends as soon as it begins.
    early_wakes: HashSet<i32>,
}

const PTRACE_EVENT_STOP: i32 = 128;

/// The signal that wakes the tracer from `waitpid` when the supervisor
/// hands it a call (a real-time signal no program of the view can send
/// to the host's thread by accident: it goes to that thread only).
pub fn wake_signal() -> i32 {
    libc::SIGRTMIN() + 7
}

extern "C" fn on_wake(_: libc::c_int) {}

/// Wakes the tracer thread of `ctx`.
pub fn wake(ctx: &Context) {
    wake_thread(ctx.tracer_tid.load(Ordering::Acquire));
}

/// Wakes tracer thread `tid` (0: not started yet, nothing to wake).
pub fn wake_thread(tid: i32) {
    if tid > 0 {
        // SAFETY: tgkill to a thread of our own process.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, wake_signal()) };
    }
}

/// Installs the (empty) handler of [`wake_signal`], without `SA_RESTART`
/// so that `waitpid` returns.
fn install_wake_handler() {
    // SAFETY: a zeroed sigaction with an empty mask and a handler that
    // does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_wake as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(wake_signal(), &sa, std::ptr::null_mut());
    }
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

impl Tracer {
    /// A tracer for the view in `ctx`. With `filter` the seccomp path is
    /// used; without, every syscall stops (`--no-seccomp`).
    pub fn new(
        ctx: Context,
        filter: Option<Filter>,
        dispositions: Vec<Disposition>,
        quiet: bool,
        guard_signals: bool,
    ) -> Tracer {
        if guard_signals {
            host_signals::install();
        }
        install_wake_handler();
        // SAFETY: umask has no preconditions.
        let umask = unsafe { libc::umask(0) } as u32;
        let ctx = Arc::new(ctx);
        start_release_thread(&ctx);
        Tracer {
            umask,
            ctx,
            filter,
            dispositions,
            quiet,
            guard_signals,
            threads: HashMap::new(),
            workers: crate::workers::Workers::new(),
            helpers: HashMap::new(),
            helper_threads: HashSet::new(),
            ending: None,
            early_wakes: HashSet::new(),
        }
    }

    /// Signals that reached the host: those sent by a process of the view
    /// (to its process group) are for the programs and are ignored here;
    /// the others have their default effect on the host.
    fn host_signals(&mut self) {
        for (sig, sender) in host_signals::take_pending() {
            let from_view = sender > 0 && self.threads.contains_key(&sender);
            let ctx = &self.ctx;
            if ctx.log.enabled() {
                let what = if from_view {
                    "in the view: ignored"
                } else {
                    "outside"
                };
                ctx.log.line(format_args!(
                    "host got signal {sig} from pid {sender} ({what})"
                ));
                ctx.log.flush();
            }
            if !from_view {
                host_signals::apply_default(sig);
            }
        }
    }

    fn trace_syscalls(&self) -> bool {
        self.filter.is_none()
    }

    /// Whether thread `tid` must stop at every syscall when resumed: always
    /// with `--no-seccomp`, and while it adds the fd filter.
    fn trace_thread(&self, tid: i32) -> bool {
        self.trace_syscalls()
            || self
                .threads
                .get(&tid)
                .is_some_and(|t| t.injection.is_some() || t.calls.is_some())
    }

    fn start(&mut self, program: &Program) -> Result<i32, HyperError> {
        let (pid, listener) = spawn::spawn(
            &program.argv,
            self.filter.as_ref(),
            &self.dispositions,
            self.umask,
            None,
        )?;
        self.threads.insert(pid, ThreadState::default());
        if let Some(l) = listener {
            notify::start(l, self.ctx.clone()).map_err(|source| HyperError::Spawn {
                program: "the supervisor thread".into(),
                source,
            })?;
        }
        let ctx = &self.ctx;
        if ctx.log.enabled() {
            ctx.log.line(format_args!(
                "{pid} start {:?} ({:?})",
                program.argv, program.role
            ));
        }
        Ok(pid)
    }

    /// Starts a helper for a service ([`crate::launcher`]).
    fn start_helper(&mut self, req: crate::launcher::LaunchRequest) {
        let io = spawn::HelperIo { output: req.output };
        let started = spawn::spawn(
            &req.argv,
            self.filter.as_ref(),
            &self.dispositions,
            self.umask,
            Some(&io),
        );
        let answer = match started {
            Ok((pid, listener)) => {
                self.threads.insert(pid, ThreadState::default());
                self.helper_threads.insert(pid);
                let helper = Arc::new(Helper::new(pid));
                self.helpers.insert(pid, helper.clone());
                if let Some(l) = listener {
                    if let Err(e) = notify::start(l, self.ctx.clone()) {
                        // SAFETY: killing our own child.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                        let _ = req.reply.send(Err(Errno::from(e)));
                        return;
                    }
                }
                if self.ctx.log.enabled() {
                    self.ctx
                        .log
                        .line(format_args!("{pid} helper started: {:?}", req.argv));
                }
                Ok(helper)
            }
            Err(e) => Err(e.errno().unwrap_or(Errno::new(libc::EAGAIN))),
        };
        let _ = req.reply.send(answer);
    }

    /// True when every traced thread left is a helper's (and there is
    /// one): the view is over for the user.
    fn only_helpers_left(&self) -> bool {
        !self.threads.is_empty() && self.threads.keys().all(|t| self.helper_threads.contains(t))
    }

    /// Closes the view while its helpers run: every served file, then
    /// every mount, latest first (so the helpers' file systems end and the
    /// helpers write back and exit), then waits for them, killing those
    /// still there after 30 s. Runs on a thread of its own: the helpers'
    /// calls need the tracer meanwhile.
    fn begin_ending(&mut self) {
        let ctx = self.ctx.clone();
        let helpers: Vec<Arc<Helper>> = self.helpers.values().cloned().collect();
        let spawned = std::thread::Builder::new()
            .name("view-end".into())
            .spawn(move || {
                close_view(&ctx);
                for h in helpers {
                    if h.wait(std::time::Duration::from_secs(30)).is_none() {
                        // SAFETY: killing a traced helper of ours.
                        unsafe { libc::kill(h.pid(), libc::SIGKILL) };
                    }
                }
            });
        match spawned {
            Ok(handle) => self.ending = Some(handle),
            Err(_) => {
                // No thread: the helpers cannot be waited for.
                for h in self.helpers.values() {
                    // SAFETY: killing a traced helper of ours.
                    unsafe { libc::kill(h.pid(), libc::SIGKILL) };
                }
            }
        }
    }

    /// Runs `programs` one after the other in the view (each starts when the
    /// previous one's main process has ended), then waits until no traced
    /// process is left. Returns how the last `Role::Main` program ended.
    pub fn run(&mut self, programs: &[Program]) -> Result<Exit, HyperError> {
        let mut next = 0usize;
        let mut main_exit = Exit::Code(0);
        let start_next =
            |tracer: &mut Tracer, next: &mut usize| -> Result<Option<(i32, usize)>, HyperError> {
                while *next < programs.len() {
                    let i = *next;
                    *next += 1;
                    match tracer.start(&programs[i]) {
                        Ok(pid) => return Ok(Some((pid, i))),
                        Err(e) if programs[i].role != Role::Main => {
                            if !tracer.quiet {
                                eprintln!("umview: warning: {e}");
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(None)
            };
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        self.ctx.tracer_tid.store(me, Ordering::Release);
        self.ctx.served.set_tracer(me);
        self.ctx.inbox.set_tracer(me);
        let mut current = start_next(self, &mut next)?;
        loop {
            if self.guard_signals {
                self.host_signals();
            }
            self.take_work();
            self.wake_waiters();
            let mut status = 0;
            // SAFETY: waitpid writes the status into our local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
            if pid < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // No traced process left: the view ends.
                    _ => break,
                }
            }
            let Some(exit) = self.handle(pid, status) else {
                continue;
            };
            if let Some(helper) = self.helpers.remove(&pid) {
                helper.set_ended(exit.shell_status());
            }
            if let Some((root, i)) = current {
                if root == pid {
                    match &programs[i].role {
                        Role::Main => main_exit = exit,
                        Role::Rc(file) if exit != Exit::Code(0) && !self.quiet => {
                            eprintln!(
                                "umview: warning: rc file {file} ended with status {}",
                                exit.shell_status()
                            )
                        }
                        Role::Rc(_) => {}
                    }
                    current = start_next(self, &mut next)?;
                }
            }
            if current.is_none() && self.ending.is_none() && self.only_helpers_left() {
                self.begin_ending();
            }
        }
        // No process is left: close every served file, then every mount,
        // latest first (a file system writes back what it holds, e.g. an
        // image's pending blocks, before the host exits).
        match self.ending.take() {
            Some(ending) => {
                let _ = ending.join();
            }
            None => close_view(&self.ctx),
        }
        self.ctx.log.flush();
        // No process is left to use a placeholder cwd.
        self.ctx.dirs.clean_up();
        Ok(main_exit)
    }

    /// Does what other threads handed over: interrupts the threads whose
    /// calls the supervisor escalated (each is rewritten at its interrupt
    /// stop), and applies the answers workers found.
    fn take_work(&mut self) {
        for work in self.ctx.inbox.take() {
            match work {
                TracerWork::Escalation(esc) => {
                    let tid = esc.tid;
                    let Some(t) = self.threads.get_mut(&tid) else {
                        continue;
                    };
                    if ptrace::interrupt(tid).is_ok() {
                        t.escalation = Some(esc);
                    }
                }
                TracerWork::Launch(req) => self.start_helper(req),
                TracerWork::Answered { tid, verdict } => {
                    let ours = self
                        .threads
                        .get_mut(&tid)
                        .is_some_and(|t| std::mem::take(&mut t.answer_pending));
                    if ours {
                        self.apply_entry(tid, verdict);
                    }
                }
            }
        }
    }

    /// Interrupts the threads sleeping in a blocking call whose served file
    /// became ready: their call is made again ([`Plan::wait`]).
    ///
    /// [`Plan::wait`]: crate::tracee_calls::Plan::wait
    fn wake_waiters(&mut self) {
        for tid in self.ctx.served.take_woken() {
            // Only a thread still in its wait: an interrupt elsewhere could
            // end a call that is not restarted with EINTR.
            let waiting = self
                .threads
                .get(&tid)
                .and_then(|t| t.calls.as_ref())
                .is_some_and(|seq| seq.is_wait());
            if waiting {
                let _ = ptrace::interrupt(tid);
            } else if self.threads.get(&tid).is_some_and(|t| t.answer_pending) {
                // Its wait is still being decided: end it when it begins.
                self.early_wakes.insert(tid);
            }
        }
    }

    /// At the stop of a thread interrupted while its call waited at the
    /// supervisor: the kernel is about to make the call again
    /// (`-ERESTARTSYS`); point its path argument at the new path first.
    fn rewrite_interrupted(&mut self, tid: i32, esc: crate::syscalls::Escalation) {
        // A rewrite is for a call waiting to be made again; one that is not
        // (a signal came first) will be made again by itself, and handed
        // over again.
        let restarting = || ptrace::get_regs(tid).is_ok_and(|r| ptrace::restarting(&r, esc.nr));
        match esc.what {
            Escalated::Rewrite { arg, path, hold } => {
                if restarting() && rewrite_path_arg(tid, arg, &path).is_ok() {
                    if let (Some(t), Some(h)) = (self.threads.get_mut(&tid), hold) {
                        t.held_for_life = Some(h);
                    }
                }
            }
            Escalated::Exec(exec) => {
                if restarting() && rewrite_exec(tid, &exec.path, &exec.argv).is_ok() {
                    if let (Some(t), Some(h)) = (self.threads.get_mut(&tid), exec.hold) {
                        t.held_for_life = Some(h);
                    }
                }
            }
            Escalated::Reopen { fd, cloexec } => {
                // The restarted call becomes the open of the host's fd.
                if restarting() && reopen_in_tracee(tid, &fd, cloexec).is_ok() {
                    if let Some(t) = self.threads.get_mut(&tid) {
                        t.held_for_life = Some(fd);
                    }
                }
            }
            Escalated::OpenForExec(fd) => {
                let path = crate::host_threads::host_fd_path(&fd);
                match inject::begin_open(tid, esc.nr, path.as_bytes(), false) {
                    Ok(Some(inj)) => {
                        if let Some(t) = self.threads.get_mut(&tid) {
                            t.injection = Some(inj);
                            t.held_for_life = Some(fd);
                        }
                    }
                    // Not waiting to be restarted: it comes back by itself.
                    Ok(None) => {}
                    Err(e) => {
                        self.ctx.exec_fds.lock().insert(tid, -(e.raw() as i64));
                    }
                }
            }
            Escalated::InjectFdFilter => match inject::begin(tid, esc.nr) {
                Ok(Some(inj)) => {
                    if let Some(t) = self.threads.get_mut(&tid) {
                        t.injection = Some(inj);
                    }
                }
                // Not waiting to be restarted: it comes back by itself.
                Ok(None) => {}
                Err(e) => self.ctx.served.fail_parked(tid, e),
            },
        }
    }

    /// Forgets an ended thread.
    fn thread_gone(&mut self, tid: i32) {
        crate::syscalls::forget_credentials(tid);
        if let Some(state) = self.threads.remove(&tid) {
            for fd in [state.held_fd, state.held_for_life].into_iter().flatten() {
                crate::fd_holder::release(fd);
            }
        }
        self.ctx.exec_credentials.lock().remove(&tid);
        self.ctx.real_execs.lock().remove(&tid);
        self.ctx.exec_fds.lock().remove(&tid);
        self.ctx.exec_auxv_fds.lock().remove(&tid);
        self.early_wakes.remove(&tid);
        if let Some(ids) = &self.ctx.identity {
            ids.gone(tid);
        }
        self.ctx.exec_chains.lock().remove(&tid);
        self.helper_threads.remove(&tid);
        self.ctx.served.thread_gone(tid);
        self.ctx.stacks.thread_gone(tid);
    }

    /// A syscall stop of a thread adding the fd filter: the injected
    /// `seccomp` call's entry, then its exit, where the thread is put back
    /// on its own call. Any other stop abandons the injection (the call
    /// comes back and is handed over again).
    fn injection_stop(&mut self, tid: i32, mut inj: inject::Injection, stop: &SyscallStop) {
        let keep = match stop {
            SyscallStop::Entry(e) if !inj.entered && inj.is_ours(e.nr, &e.args) => {
                inj.entered = true;
                Some(inj)
            }
            SyscallStop::Exit { rval } if inj.entered && inj.purpose == inject::Purpose::ExecFd => {
                // The exec is made again and finds the fd (or the error).
                let r = match inject::restore(tid, &inj) {
                    Ok(()) => *rval,
                    Err(e) => -(e.raw() as i64),
                };
                self.ctx.exec_fds.lock().insert(tid, r);
                None
            }
            SyscallStop::Exit { rval } if inj.entered => {
                match inject::finish(tid, &inj, *rval) {
                    Ok(()) => {
                        let tgid = crate::resolve::tgid_of(tid);
                        self.ctx.served.set_fd_filter(tgid);
                        if self.ctx.log.enabled() {
                            self.ctx
                                .log
                                .line(format_args!("{tid} fd filter added to process {tgid}"));
                        }
                    }
                    Err(e) => self.ctx.served.fail_parked(tid, e),
                }
                None
            }
            _ => None,
        };
        if let Some(t) = self.threads.get_mut(&tid) {
            t.injection = keep;
        }
        let _ = ptrace::resume(tid, 0, self.trace_thread(tid));
    }

    /// Handles one waitpid report. Returns how the thread ended if it did.
    fn handle(&mut self, pid: i32, status: i32) -> Option<Exit> {
        if libc::WIFEXITED(status) {
            self.thread_gone(pid);
            return Some(Exit::Code(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            self.thread_gone(pid);
            return Some(Exit::Signal(libc::WTERMSIG(status)));
        }
        if !libc::WIFSTOPPED(status) {
            return None;
        }
        // A new child's first stop can come before its parent's event.
        self.threads.entry(pid).or_default();
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;
        let trace = self.trace_thread(pid);
        if sig == libc::SIGTRAP | 0x80 {
            self.syscall_stop(pid);
            return None;
        }
        match (sig, event) {
            (libc::SIGTRAP, libc::PTRACE_EVENT_SECCOMP) => self.syscall_stop(pid),
            (libc::SIGTRAP, libc::PTRACE_EVENT_FORK)
            | (libc::SIGTRAP, libc::PTRACE_EVENT_VFORK)
            | (libc::SIGTRAP, libc::PTRACE_EVENT_CLONE) => {
                if let Ok(child) = ptrace::event_msg(pid) {
                    self.threads.entry(child as i32).or_default();
                    if let Some(ids) = &self.ctx.identity {
                        ids.forked(pid, child as i32);
                    }
                    if self.helper_threads.contains(&pid) {
                        self.helper_threads.insert(child as i32);
                    }
                    if self.ctx.served.any_filtered() {
                        // A new process keeps its parent's filters.
                        let (parent, child) = (
                            crate::resolve::tgid_of(pid),
                            crate::resolve::tgid_of(child as i32),
                        );
                        self.ctx.served.inherit(parent, child);
                    }
                    if self.ctx.stacks.in_use() {
                        // A new process keeps its parent's network stacks.
                        self.ctx.stacks.inherit(
                            crate::resolve::tgid_of(pid),
                            crate::resolve::tgid_of(child as i32),
                        );
                    }
                    let ctx = &self.ctx;
                    if ctx.log.enabled() {
                        ctx.log.line(format_args!("{pid} new thread {child}"));
                    }
                }
                let _ = ptrace::resume(pid, 0, trace);
            }
            (libc::SIGTRAP, libc::PTRACE_EVENT_EXEC) => {
                self.ctx.exec_chains.lock().remove(&pid);
                let former = ptrace::event_msg(pid).map_or(pid, |f| f as i32);
                // A set-ID program may change the credentials.
                crate::syscalls::forget_credentials(pid);
                crate::syscalls::forget_credentials(former);
                if let Err(file) = crate::syscalls::check_real_exec(&self.ctx, former, pid) {
                    // The kernel ran a file the view does not show there:
                    // the process ends before its first instruction.
                    self.ctx.log.line(format_args!(
                        "{pid} exec ran {file}, which the view does not show: killed"
                    ));
                    // SAFETY: kill(2) of a thread we trace, no memory.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    let _ = ptrace::resume(pid, 0, false);
                    return None;
                }
                if let Some(ids) = &self.ctx.identity {
                    // binfmt's C flag: the file's set-ID bits, not the
                    // interpreter's (the exec may come from another thread).
                    let by_file = {
                        let mut creds = self.ctx.exec_credentials.lock();
                        let former = ptrace::event_msg(pid).map_or(pid, |f| f as i32);
                        creds.remove(&former).or_else(|| creds.remove(&pid))
                    };
                    match by_file {
                        Some((st, nosuid)) => ids.exec(pid, &st, nosuid, None),
                        None => exec_ids(ids, pid),
                    }
                }
                // binfmt's O flag: the program's fd in the auxiliary vector.
                let execfd = {
                    let mut fds = self.ctx.exec_auxv_fds.lock();
                    let former = ptrace::event_msg(pid).map_or(pid, |f| f as i32);
                    fds.remove(&former).or_else(|| fds.remove(&pid))
                };
                if let Some(fd) = execfd {
                    if let Err(e) = crate::elf::set_auxv_execfd(pid, fd) {
                        self.ctx
                            .log
                            .line(format_args!("{pid} AT_EXECFD not set: {e:?}"));
                    }
                }
                if let Ok(former) = ptrace::event_msg(pid) {
                    let former = former as i32;
                    if former != pid {
                        // A non-leader thread exec'd and took the leader's id.
                        if let Some(ids) = &self.ctx.identity {
                            ids.gone(former);
                        }
                        let state = self.threads.remove(&former).unwrap_or_default();
                        self.threads.insert(pid, state);
                    }
                }
                let ctx = &self.ctx;
                if ctx.log.enabled() {
                    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                    ctx.log
                        .line(format_args!("{pid} running {}", exe.display()));
                }
                let _ = ptrace::resume(pid, 0, trace);
            }
            (_, PTRACE_EVENT_STOP) => {
                let escalation = self.threads.get_mut(&pid).and_then(|t| t.escalation.take());
                if let Some(esc) = escalation {
                    self.rewrite_interrupted(pid, esc);
                }
                let trace = self.trace_thread(pid);
                if is_stop_signal(sig) {
                    // Group-stop: stay stopped until SIGCONT, as outside.
                    if ptrace::listen(pid).is_err() {
                        let _ = ptrace::resume(pid, 0, trace);
                    }
                } else {
                    // First stop of a new thread, or an interrupt.
                    let _ = ptrace::resume(pid, 0, trace);
                }
            }
            (libc::SIGTRAP, e) if e != 0 => {
                // Other events (vfork done): nothing to do.
                let _ = ptrace::resume(pid, 0, trace);
            }
            _ => {
                // Signal-delivery-stop: deliver the signal unchanged.
                let _ = ptrace::resume(pid, sig, trace);
            }
        }
        None
    }

    /// A thread is stopped at a syscall (seccomp trap, or entry/exit with
    /// `--no-seccomp`): decide and let it go on.
    fn syscall_stop(&mut self, tid: i32) {
        let trace = self.trace_syscalls();
        let info = match ptrace::syscall_info(tid) {
            Ok(i) => i,
            // The thread is gone (killed); its exit will be reported.
            Err(_) => return,
        };
        if let Some(inj) = self.threads.get(&tid).and_then(|t| t.injection) {
            self.injection_stop(tid, inj, &info);
            return;
        }
        if let Some(mut seq) = self.threads.get_mut(&tid).and_then(|t| t.calls.take()) {
            // A step's entry (and seccomp) stop: let it run to its exit.
            let goes_on = match info {
                SyscallStop::Exit { rval } => seq.exit_stop(tid, rval),
                _ => true,
            };
            if !goes_on && seq.is_wait() {
                self.ctx.served.end_wait(tid);
            }
            if goes_on {
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.calls = Some(seq);
                }
            }
            let _ = ptrace::resume(tid, 0, self.trace_thread(tid));
            return;
        }
        match info {
            SyscallStop::Entry(entry) => {
                if !entry.is_native_abi() || syscalls::is_refused(entry.nr) {
                    // Only reachable with --no-seccomp: the filter refuses
                    // these in the kernel.
                    self.apply_entry(tid, Verdict::Error(Errno::ENOSYS));
                } else if let Some(v) = syscalls::at_tracer(&self.ctx, &Call { tid, entry: &entry })
                {
                    self.apply_entry(tid, v);
                } else if syscalls::may_wait(&self.ctx, &Call { tid, entry: &entry }) {
                    // The thread waits in its stop; the tracer goes on.
                    if let Some(t) = self.threads.get_mut(&tid) {
                        t.answer_pending = true;
                    }
                    let ctx = self.ctx.clone();
                    self.workers.submit(move || {
                        let verdict = syscalls::dispatch(&ctx, &Call { tid, entry: &entry });
                        ctx.inbox.push(TracerWork::Answered { tid, verdict });
                    });
                } else {
                    let verdict = syscalls::dispatch(&self.ctx, &Call { tid, entry: &entry });
                    self.apply_entry(tid, verdict);
                }
                return;
            }
            SyscallStop::Exit { .. } => {
                if let Some(fd) = self.threads.get_mut(&tid).and_then(|t| t.held_fd.take()) {
                    // The program has its own open of it now.
                    crate::fd_holder::release(fd);
                }
                let pending = self
                    .threads
                    .get_mut(&tid)
                    .and_then(|t| t.pending_return.take());
                if let Some(value) = pending {
                    if ptrace::set_return(tid, value).is_err() {
                        return;
                    }
                }
            }
            SyscallStop::None => {}
        }
        let _ = ptrace::resume(tid, 0, trace);
    }

    /// Applies the verdict on the call thread `tid` is stopped at the
    /// entry of, and lets it go on.
    fn apply_entry(&mut self, tid: i32, verdict: Verdict) {
        let trace = self.trace_syscalls();
        let mut verdict = verdict;
        if let Verdict::RewritePath { arg, path, hold } = verdict {
            verdict = match rewrite_path_arg(tid, arg, &path) {
                Ok(()) => {
                    if let (Some(t), Some(h)) = (self.threads.get_mut(&tid), hold) {
                        t.held_for_life = Some(h);
                    }
                    Verdict::Native
                }
                Err(e) => Verdict::Error(e),
            };
        }
        if let Verdict::ExecRewrite(exec) = verdict {
            verdict = match rewrite_exec(tid, &exec.path, &exec.argv) {
                Ok(()) => {
                    if let (Some(t), Some(h)) = (self.threads.get_mut(&tid), exec.hold) {
                        t.held_for_life = Some(h);
                    }
                    if trace {
                        // Without seccomp nothing stops the new exec
                        // again: look at it now, as the supervisor would
                        // (its interpreter may be claimed in turn).
                        if let Ok(SyscallStop::Entry(entry)) = ptrace::syscall_info(tid) {
                            let again = syscalls::dispatch(&self.ctx, &Call { tid, entry: &entry });
                            return self.apply_entry(tid, again);
                        }
                    }
                    Verdict::Native
                }
                Err(e) => Verdict::Error(e),
            };
        }
        if let Verdict::RewriteCall { nr, arg, path } = verdict {
            verdict = match rewrite_call(tid, nr, arg, &path) {
                Ok(()) => Verdict::Native,
                Err(e) => Verdict::Error(e),
            };
        }
        if let Verdict::Calls(plan) = verdict {
            match Sequence::begin(tid, plan) {
                Ok(seq) => {
                    let wait = seq.is_wait();
                    if let Some(t) = self.threads.get_mut(&tid) {
                        t.calls = Some(seq);
                    }
                    let _ = ptrace::resume(tid, 0, true);
                    if wait && self.early_wakes.remove(&tid) {
                        // Ready already: the wait ends at once and the
                        // call is made again.
                        let _ = ptrace::interrupt(tid);
                    }
                    return;
                }
                Err(e) => verdict = Verdict::Error(e),
            }
        }
        if let Verdict::InjectFdFilter = verdict {
            // Only the supervisor's calls wait for the filter.
            verdict = Verdict::Error(Errno::ENOSYS);
        }
        if let Verdict::OpenForExec(fd) = verdict {
            // The exec's entry stop (--no-seccomp): it becomes the open,
            // and is made again at the open's exit.
            let path = crate::host_threads::host_fd_path(&fd);
            let nr = libc::SYS_execve as u64;
            match inject::begin_open(tid, nr, path.as_bytes(), true) {
                Ok(Some(inj)) => {
                    if let Some(t) = self.threads.get_mut(&tid) {
                        t.injection = Some(inj);
                        t.held_for_life = Some(fd);
                    }
                    let _ = ptrace::resume(tid, 0, true);
                    return;
                }
                Ok(None) => verdict = Verdict::Native,
                Err(e) => verdict = Verdict::Error(e),
            }
        }
        if let Verdict::InstallFd { fd, cloexec } = verdict {
            match reopen_in_tracee(tid, &fd, cloexec) {
                Ok(()) => {
                    if let Some(t) = self.threads.get_mut(&tid) {
                        t.held_fd = Some(fd);
                    }
                    // Stop again at the exit to drop the host's fd.
                    let _ = ptrace::resume(tid, 0, true);
                    return;
                }
                Err(e) => verdict = Verdict::Error(e),
            }
        }
        if let Some(value) = verdict.skip_value() {
            if ptrace::skip_syscall(tid, value).is_err() {
                return;
            }
            if trace {
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.pending_return = Some(value);
                }
            }
        }
        let _ = ptrace::resume(tid, 0, trace);
    }
}

/// A process of a view with identities exec'd: its ids change as the
/// kernel would change them (set-ID programs, capabilities).
fn exec_ids(ids: &crate::identity::Identities, pid: i32) {
    let exe = std::path::PathBuf::from(format!("/proc/{pid}/exe"));
    if let Some((st, nosuid)) = crate::identity::program_status(&exe) {
        ids.exec(pid, &st, nosuid, crate::identity::file_caps(&exe));
    }
}

/// Releases every served file, then closes every mount, latest first,
/// each with the view unlocked (a file system writes back what it holds,
/// or its helper does).
fn close_view(ctx: &Context) {
    ctx.served.release_all();
    loop {
        let Some(mount) = ctx.view.write().pop_mount() else {
            break;
        };
        drop(mount);
    }
}

/// Starts the thread that drops served files once every placeholder copy
/// of them is closed.
fn start_release_thread(ctx: &Arc<Context>) {
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("viewos-release".into())
        .spawn(move || {
            ctx.served.release_loop(|link| {
                ctx.dirs.remove_link(link);
                if ctx.log.enabled() {
                    ctx.log
                        .line(format_args!("served file {} released", link.display()));
                }
            })
        });
    if let Err(e) = spawned {
        eprintln!("umview: warning: no release thread ({e}): served files stay open");
    }
}

/// Without a seccomp listener the host cannot put an fd into a traced
/// process directly, so the call is rewritten into an open of the host's
/// fd through `/proc/HOST/fd/N`, which gives the program its own open file
/// on the same object, with the same access mode and status flags.
fn reopen_in_tracee(tid: i32, fd: &OwnedFd, cloexec: bool) -> Result<(), Errno> {
    // SAFETY: F_GETFL on an fd we own.
    let status = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if status < 0 {
        return Err(Errno::EIO);
    }
    let keep = libc::O_ACCMODE
        | libc::O_APPEND
        | libc::O_NONBLOCK
        | libc::O_DIRECT
        | libc::O_NOATIME
        | libc::O_PATH
        | libc::O_SYNC
        | libc::O_DSYNC;
    let flags = (status & keep) | libc::O_NOCTTY | if cloexec { libc::O_CLOEXEC } else { 0 };
    let path = crate::host_threads::host_fd_path(fd);
    let mut regs = ptrace::get_regs(tid).map_err(|_| Errno::new(libc::ESRCH))?;
    let addr = memory::put_on_stack(tid, regs.rsp, path.as_bytes())?;
    regs.orig_rax = libc::SYS_openat as u64;
    regs.rdi = libc::AT_FDCWD as i64 as u64;
    regs.rsi = addr;
    regs.rdx = flags as u64;
    regs.r10 = 0;
    ptrace::set_regs(tid, &regs).map_err(|_| Errno::new(libc::ESRCH))
}

/// Puts `path` in the traced thread's memory (below its stack's red zone)
/// and points syscall argument `arg` at it.
fn rewrite_path_arg(tid: i32, arg: usize, path: &[u8]) -> Result<(), Errno> {
    rewrite_with(tid, None, arg, path)
}

/// Changes the call being entered into syscall `nr` with `path` as its
/// argument `arg`.
fn rewrite_call(tid: i32, nr: u64, arg: usize, path: &[u8]) -> Result<(), Errno> {
    rewrite_with(tid, Some(nr), arg, path)
}

/// Makes the exec (execve or execveat) being entered an execve(2) of
/// `path` with `argv` (written below the stack's red zone) and the
/// environment the program gave.
fn rewrite_exec(tid: i32, path: &[u8], argv: &[Vec<u8>]) -> Result<(), Errno> {
    let mut regs = ptrace::get_regs(tid).map_err(|_| Errno::new(libc::ESRCH))?;
    let envp = if regs.orig_rax == libc::SYS_execveat as u64 {
        regs.r10
    } else {
        regs.rdx
    };
    let rsp = memory::below_earlier_rewrites(regs.rsp, &call_args(&regs));
    let (path_at, argv_at) = memory::put_exec_args(tid, rsp, path, argv)?;
    regs.orig_rax = libc::SYS_execve as u64;
    regs.rdi = path_at;
    regs.rsi = argv_at;
    regs.rdx = envp;
    ptrace::set_regs(tid, &regs).map_err(|_| Errno::new(libc::ESRCH))
}

/// The six argument registers of a call.
fn call_args(regs: &libc::user_regs_struct) -> [u64; 6] {
    [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9]
}

fn rewrite_with(tid: i32, nr: Option<u64>, arg: usize, path: &[u8]) -> Result<(), Errno> {
    let mut regs = ptrace::get_regs(tid).map_err(|_| Errno::new(libc::ESRCH))?;
    if let Some(nr) = nr {
        regs.orig_rax = nr;
    }
    let rsp = memory::below_earlier_rewrites(regs.rsp, &call_args(&regs));
    let addr = memory::put_on_stack(tid, rsp, path)?;
    match arg {
        0 => regs.rdi = addr,
        1 => regs.rsi = addr,
        2 => regs.rdx = addr,
        3 => regs.r10 = addr,
        4 => regs.r8 = addr,
        5 => regs.r9 = addr,
        _ => return Err(Errno::EINVAL),
    }
    ptrace::set_regs(tid, &regs).map_err(|_| Errno::new(libc::ESRCH))
}
