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
//! 2. [`notify`] (user notification, for calls answered without changing
//!    registers) or [`tracer`] (ptrace stops, for exec and mount) receives
//!    the call;
//! 3. [`syscalls`] finds the handler by number (one file per family) and
//!    reads arguments through [`memory`];
//! 4. the handler's [`syscalls::Verdict`] is applied: run natively, or skip
//!    with a value or an errno.
//!
//! [`spawn`] starts programs in the view, [`host`] is the library entry
//! point and `src/bin/umview.rs` the command line.

pub mod arch;
pub mod cli;
pub mod error;
pub mod filter;
pub mod host;
pub mod host_signals;
pub mod log;
pub mod memory;
pub mod modules;
pub mod notify;
pub mod proc_mounts;
pub mod ptrace;
pub mod rc;
pub mod resolve;
pub mod spawn;
pub mod stat_abi;
pub mod syscalls;
pub mod tracer;
pub mod virtual_dirs;
pub mod walk_cache;

pub use error::HyperError;
pub use host::{Host, HostConfig};
pub use tracer::{Exit, Program, Role};
