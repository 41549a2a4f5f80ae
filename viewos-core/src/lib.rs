//! # viewos-core: the View-OS Service API
//!
//! View-OS gives every process below `umview` its own *view* of the system.
//! A view is a stack of **services** (modules): each one virtualizes some
//! system calls (paths below a mount point, file descriptors it handed out,
//! sockets of a family, device numbers) and leaves every other call to the
//! real kernel.
//!
//! This crate is the API between the host that intercepts system calls
//! (`viewos-hyper`, built on ptrace and seccomp) and the services. It knows
//! nothing of ptrace: a service written against it can be driven by any host
//! that decodes system calls into the requests defined here.
//!
//! What is here:
//! - [`Errno`]: every failure inside a view is an errno value, exactly as the
//!   kernel would report it.
//! - [`Interest`]: the families of system calls a service needs to see; the
//!   host traps nothing else, so a view with no module is nearly free.
//! - [`Service`]: the trait every module implements.
//! - [`ModuleRegistry`]: built-in modules by name (`umview -p NAME`).
//! - [`FileSystem`]: one mounted file system, answering path calls;
//!   [`mounts::MountTable`] picks it by longest mount prefix.
//! - [`View`]: one view's configuration, loaded services and mounts.
//! - [`nesting`]: a service's own I/O through the view as it was when it
//!   was mounted ([`real::RealFs`] below everything).
//! - [`module`]: services built as shared libraries (`-p ./libx.so`).
//! - [`control`]: the channel programs in a view use to talk to their host
//!   (`um_add_service`, `viewname`, ...).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod control;
mod errno;
pub mod fs;
mod interest;
pub mod module;
pub mod mounts;
pub mod nesting;
pub mod path;
pub mod real;
mod registry;
mod service;
pub mod testing;
mod view;

pub use errno::Errno;
pub use fs::{FileStat, FileSystem, FsStat, MountRequest, Opened, SetTime, Timespec};
pub use interest::Interest;
pub use registry::{ModuleFactory, ModuleRegistry};
pub use service::Service;
pub use view::{View, ViewConfig};

/// Version of this API. A module built against another version is refused.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");
