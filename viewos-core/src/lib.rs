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
//! - [`FileHandle`]: a file a service serves itself
//!   ([`real_file::RealFile`] serves a real one).
//! - [`image`]: a mount's SOURCE as an image read and written at
//!   positions, real or served.
//! - [`hook`]: system calls a service hooks by number.
//! - [`binfmt`]: executable formats: an exec of a file a service claims
//!   runs an interpreter (`umbinfmt`).
//! - [`launch`]: programs a service starts in the view (a FUSE server).
//! - [`device`]: device numbers a service claims, wherever their nodes
//!   are.
//! - [`SocketHandle`]: a socket a service serves, for the socket families
//!   it claims ([`real_socket::RealSocket`] serves a kernel socket).
//! - [`stack`]: network stacks mounted as files (`/dev/net/NAME`), the
//!   per-process stack choice of `mstack`, and `msocket`.
//! - [`module`]: services built as shared libraries (`-p ./libx.so`).
//! - [`control`]: the channel programs in a view use to talk to their host
//!   (`um_add_service`, `viewname`, ...).
//!
//! ## Writing a service
//!
//! A file-system service claims a mount type and returns a [`FileSystem`]
//! for each mount. Paths it receives are relative to the mount point,
//! absolute (`/` is the mount's root) and already resolved: the host has
//! followed `..`, symlinks, the caller's cwd and dirfd. Every method has a
//! default answer (`ENOSYS`); implement what you virtualize. Files are
//! opened by handing the host a real file that stands for the virtual one
//! ([`Opened::Backed`]): the program then reads, writes, maps and lists it
//! natively. A file with no real counterpart (inside a disk image, a
//! merged directory) is served instead ([`Opened::Served`]): the service
//! answers the program's reads, writes and listings through a
//! [`FileHandle`].
//!
//! This service mounts a read-only file system with one file, `motd`:
//!
//! ```
//! use std::path::Path;
//! use std::sync::Arc;
//! use viewos_core::{Errno, FileStat, FileSystem, MountRequest, Service, View, ViewConfig};
//!
//! struct Motd;
//! struct MotdFs;
//!
//! impl Service for Motd {
//!     fn name(&self) -> &str { "motd" }
//!     fn description(&self) -> &str { "message of the day" }
//!     fn mounts_file_systems(&self) -> bool { true }
//!     fn mount(&self, _: &MountRequest, _io: Arc<dyn FileSystem>)
//!         -> Result<Arc<dyn FileSystem>, Errno> {
//!         Ok(Arc::new(MotdFs))
//!     }
//! }
//!
//! impl FileSystem for MotdFs {
//!     fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
//!         let (mode, size) = match path.to_str() {
//!             Some("/") => (libc::S_IFDIR | 0o555, 0),
//!             Some("/motd") => (libc::S_IFREG | 0o444, 6),
//!             _ => return Err(Errno::ENOENT),
//!         };
//!         Ok(FileStat { mode, size, nlink: 1, ..FileStat::default() })
//!     }
//! }
//!
//! // What `umview -p motd` and then `mount -t motd none /etc/motd.d` do:
//! let mut view = View::new(ViewConfig::default());
//! view.add_service(Box::new(Motd))?;
//! view.mount(MountRequest {
//!     source: "none".into(),
//!     target: "/etc/motd.d".into(),
//!     fstype: "motd".into(),
//!     ..MountRequest::default()
//! })?;
//! // The host looks paths up like this (longest mount prefix).
//! let (mount, rel) = view.mounts().lookup(Path::new("/etc/motd.d/motd")).unwrap();
//! assert_eq!(rel, Path::new("/motd"));
//! assert_eq!(mount.fs.lstat(&rel)?.size, 6);
//! assert_eq!(mount.fs.lstat(Path::new("/other")), Err(Errno::ENOENT));
//! # Ok::<(), Errno>(())
//! ```
//!
//! To ship it as a library that `umview -p ./libmotd.so` loads, build the
//! crate as a `cdylib` and add `viewos_core::declare_module!(factory)`
//! (see [`module`] and `examples/hello-service`).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod binfmt;
pub mod control;
pub mod creds;
pub mod device;
mod errno;
pub mod fs;
pub mod handle;
pub mod hook;
pub mod image;
mod interest;
pub mod launch;
pub mod module;
pub mod mounts;
pub mod nesting;
pub mod path;
pub mod real;
pub mod real_file;
pub mod real_socket;
mod registry;
mod service;
pub mod socket;
pub mod stack;
pub mod testing;
pub mod vde;
mod view;

pub use errno::Errno;
pub use fs::{FileStat, FileSystem, FsStat, MountRequest, Opened, SetTime, SharedFd, Timespec};
pub use handle::{DirEntry, FileHandle, IoctlArg, Notifier};
pub use interest::Interest;
pub use registry::{ModuleFactory, ModuleRegistry};
pub use service::Service;
pub use socket::SocketHandle;
pub use view::{PreparedMount, View, ViewConfig};

/// Version of this API. A module built against another version is refused.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");
