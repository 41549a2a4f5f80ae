//! The host as a library: build a view, run programs in it.
//!
//! `umview` is a thin command-line front end over [`Host`]; another program
//! can embed a view the same way:
//!
//! ```no_run
//! use viewos_core::{View, ViewConfig};
//! use viewos_hyper::{Host, HostConfig, Program, Role};
//!
//! let view = View::new(ViewConfig::default());
//! let host = Host::new(view, HostConfig::default());
//! let exit = host
//!     .run(&[Program { argv: vec!["ls".into(), "/".into()], role: Role::Main }])
//!     .expect("view ran");
//! println!("ls ended with {}", exit.shell_status());
//! ```

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use viewos_core::{Interest, ModuleRegistry, View};

use crate::error::HyperError;
use crate::filter::Filter;
use crate::log::Log;
use crate::spawn::Disposition;
use crate::syscalls::{self, Context};
use crate::tracer::{Exit, Program, Tracer};

/// How the host traces.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Use a seccomp filter so only interesting syscalls stop (default).
    /// `false` is the slow reference path: every syscall stops.
    pub seccomp: bool,
    /// Write a debug log of what the host does to this file (`-o`).
    pub log_file: Option<String>,
    /// Do not print warnings (`-q`).
    pub quiet: bool,
    /// Signal dispositions the started programs get (for example the
    /// dispositions the host itself was started with, when it changes its
    /// own). By default SIGPIPE is reset to its default action, undoing the
    /// Rust runtime's `SIG_IGN`.
    pub child_dispositions: Vec<(i32, libc::sighandler_t)>,
    /// Catch the terminating and stop signals sent to the host's process so
    /// that a program signalling its own process group (which includes the
    /// host) does not end the view; signals from outside the view keep
    /// their default effect. See [`crate::host_signals`]. Default: on.
    pub guard_signals: bool,
    /// Give the view's processes identities of their own (`--root-id`,
    /// `-s`; [`crate::identity`]). `None` (the default): programs have
    /// their real ids and no identity call stops.
    pub identity: Option<crate::identity::IdentityMode>,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            seccomp: true,
            log_file: None,
            quiet: false,
            child_dispositions: vec![(libc::SIGPIPE, libc::SIG_DFL)],
            guard_signals: true,
            identity: None,
        }
    }
}

/// Sets the C allocator's policy for a host process; call it first thing
/// in `main`. Large buffers (FUSE sessions keep 16 MiB ones, every served
/// read has one) are mapped and unmapped each time instead of being kept
/// in the heap: glibc's default raises its mapping threshold after the
/// first such free, and each of the host's many threads' arenas then
/// holds (and zeroes) its own copies. Measured: a view mounting FAT,
/// passthrough and ext4 file systems 200 times in a row stays at 9 MiB
/// resident instead of 72-91 MiB.
///
/// The number of malloc arenas is capped at 2: glibc gives new threads
/// arenas of their own, up to eight per core, and never returns them, so
/// the host's worker threads (which come and go with the load) made its
/// resident memory creep up for an hour in the soak run (BENCHMARKS.md,
/// "Soak"); the soak's thread-pool part alone grew 0.56 MiB from round 30
/// to 80 with `MALLOC_ARENA_MAX=2`, several MiB without.
pub fn tune_allocator() {
    // SAFETY: mallopt only sets glibc's allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Raises this process's soft limit on open files to its hard limit, and
/// has [`crate::spawn::spawn`] give the programs it starts the limit the
/// process had. The host holds fds for the calls in flight (a file a
/// service opened, until it is installed in the caller): with a thousand
/// programs of a view opening files at once (`make -j1000` writing into a
/// cow mount), the usual soft limit of 1024 ran out in the host, and the
/// programs' opens failed with `EMFILE` although each of them had few
/// files open. The programs keep the limit they were given: `ulimit -n`
/// in the view behaves as outside.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `lim`, which we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur >= lim.rlim_max
    {
        return;
    }
    crate::spawn::set_child_fd_limit(lim);
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads `raised`, which we own.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
}

/// A view ready to run programs.
pub struct Host {
    view: View,
    config: HostConfig,
    modules: ModuleRegistry,
}

impl Host {
    /// A host for `view`.
    pub fn new(view: View, config: HostConfig) -> Host {
        Host {
            view,
            config,
            modules: ModuleRegistry::new(),
        }
    }

    /// The modules `um_add_service` may load by name inside the view.
    pub fn with_modules(mut self, modules: ModuleRegistry) -> Host {
        self.modules = modules;
        self
    }

    /// The system call families the view's filter stops: what the loaded
    /// services need, plus every exec attempt for the debug log.
    fn trapped(&self) -> Interest {
        let mut interest = self.view.interest();
        // Device numbers are found by opening nodes: the path calls.
        if interest.contains(Interest::DEVICE) {
            interest |= Interest::PATH;
        }
        // A program on a virtual path is run by rewriting its exec.
        if self.config.log_file.is_some() || interest.contains(Interest::PATH) {
            interest |= Interest::EXEC;
        }
        if self.config.identity.is_some() {
            interest |= Interest::IDENTITY;
        }
        // The host guards itself in every view.
        interest | Interest::GUARD
    }

    /// The seccomp filter this view needs, or `None` with `seccomp: false`.
    pub fn filter(&self) -> Option<Filter> {
        self.config.seccomp.then(|| {
            let trapped = self.trapped();
            let mut rules = syscalls::filter_rules(trapped, &self.view.hooked_syscalls());
            // A root host compares its programs' credentials with its own
            // once per thread before it makes their opens: it must see them
            // change (`syscalls::host_open`).
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 && trapped.contains(Interest::PATH) {
                for &nr in syscalls::CREDENTIAL_CALLS {
                    if !rules.iter().any(|&(n, _)| n == nr as u32) {
                        rules.push((nr as u32, crate::filter::Action::Notify));
                    }
                }
            }
            Filter::new(&rules)
        })
    }

    /// Runs `programs` in order inside the view and waits until no process
    /// of the view is left. Returns how the last main program ended.
    pub fn run(self, programs: &[Program]) -> Result<Exit, HyperError> {
        // Files handed to programs by name live in the fd holder, and the
        // host is not dumpable: programs cannot reach its memory or fds.
        crate::fd_holder::start();
        let filter = self.filter();
        let log = match &self.config.log_file {
            Some(path) => Log::to_file(path)?,
            None => Log::disabled(),
        };
        let dispositions = self
            .config
            .child_dispositions
            .iter()
            .map(|&(signal, action)| Disposition { signal, action })
            .collect();
        let trapped = if self.config.seccomp {
            self.trapped()
        } else {
            // Every call stops: any service can be added later.
            Interest::all()
        };
        let hooked = self.view.hooked_syscalls();
        let inbox = crate::inbox::Inbox::new().map_err(|source| HyperError::Spawn {
            program: "the tracer's kicker thread".into(),
            source,
        })?;
        let mut view = self.view;
        view.set_launcher(viewos_core::launch::Launcher::new(Arc::new(
            crate::launcher::HostLauncher::new(inbox.clone()),
        )));
        let ctx = Context {
            hooks_loaded: AtomicBool::new(!hooked.is_empty()),
            hooked: self.config.seccomp.then_some(hooked),
            trapped,
            modules: self.modules,
            view: parking_lot::RwLock::new(view),
            walks: crate::walk_cache::WalkCache::new(),
            inbox,
            tracer_tid: Default::default(),
            dirs: crate::virtual_dirs::VirtualDirs::new(),
            virtual_given: Default::default(),
            served: crate::served::ServedFiles::new().map_err(|source| HyperError::Spawn {
                program: "the served-file table".into(),
                source,
            })?,
            fd_filter_needed: self.config.seccomp,
            exec_chains: Default::default(),
            exec_credentials: Default::default(),
            real_execs: Default::default(),
            exec_fds: Default::default(),
            exec_auxv_fds: Default::default(),
            identity: self.config.identity.map(crate::identity::Identities::new),
            stacks: crate::stacks::ProcessStacks::new(),
            log,
        };
        let mut tracer = Tracer::new(
            ctx,
            filter,
            dispositions,
            self.config.quiet,
            self.config.guard_signals,
        );
        tracer.run(programs)
    }
}
