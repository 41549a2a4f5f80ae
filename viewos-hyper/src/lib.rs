//! # viewos-hyper: the View-OS host
//!
//! This crate runs programs inside a view. It traces the whole process tree
//! with ptrace, lets a seccomp-bpf filter stop only the system calls the
//! view's services can change, decodes those calls, asks the view
//! ([`viewos_core::View`]) and writes the answers back. It knows nothing of
//! any particular module.
//!
//! Follow one system call through the crate:
//! 1. [`filter`] decides in the kernel whether the call stops at all;
//! 2. [`notify`] (user notification: path, exec and control calls) or
//!    [`tracer`] (ptrace stops: mount, chdir) receives the call;
//! 3. [`syscalls`] finds the handler by number (one file per family) and
//!    reads arguments through [`memory`]; path arguments are resolved by
//!    [`resolve`] (with [`walk_cache`] for real paths and
//!    [`virtual_dirs`] for virtual cwds);
//! 4. the handler's [`syscalls::Verdict`] is applied: run natively, skip
//!    with a value or an errno, install an fd in the caller, or rewrite a
//!    path argument (a call waiting at the supervisor is handed to the
//!    tracer, which interrupts it and rewrites it before the kernel
//!    restarts it).
//!
//! Files a service serves itself are held by programs as placeholder fds
//! ([`served`]); a process gets a second filter for the fd family with its
//! first one ([`inject`]), and those calls go to the tracer.
//!
//! [`spawn`] starts programs in the view, [`host`] is the library entry
//! point, [`modules`] loads built-in and library modules, [`proc_mounts`]
//! shows the view's mounts in `/proc`, [`stacks`] keeps each process's
//! network stack choice (`mstack`), and `src/bin/` holds `umview` and
//! the commands used inside a view.

pub mod arch;
pub mod cli;
pub mod direct;
pub mod elf;
pub mod error;
pub mod fd_holder;
pub mod filter;
pub mod host;
pub mod host_signals;
pub mod host_threads;
pub mod identity;
pub mod inbox;
pub mod inject;
pub mod launcher;
pub mod log;
pub mod memfd;
pub mod memory;
pub mod merged_dir;
pub mod modules;
pub mod notify;
pub mod pidfd;
pub mod proc_mounts;
pub mod ptrace;
pub mod rc;
pub mod resolve;
pub mod served;
pub mod spawn;
pub mod stacks;
pub mod stat_abi;
pub mod syscalls;
pub mod tracee_calls;
pub mod tracer;
pub mod users;
pub mod virtual_dirs;
pub mod walk_cache;
pub mod workers;

pub use error::HyperError;
pub use host::{Host, HostConfig};
pub use tracer::{Exit, Program, Role};
