//! The trait every View-OS module implements.

use std::sync::Arc;

use crate::binfmt::{ExecRequest, Interpreter};
use crate::device::DeviceKind;
use crate::fs::{FileSystem, MountRequest, Opened};
use crate::hook::{Hooked, SyscallRequest};
use crate::{Errno, Interest};

/// A module loaded into a view.
///
/// A service names itself, says which system call families it needs to see
/// ([`Service::interest`]), and answers the requests of those families. A
/// file-system service claims mount types ([`Service::handles_fstype`]) and
/// returns a [`FileSystem`] for each mount. A service is shared by every
/// process of the view and may be called from several host threads, hence
/// `Send + Sync`. Every method but the two names has a default.
pub trait Service: Send + Sync {
    /// Short name, as used by `um_add_service` and `um_ls_service`
    /// (`"umfuse"`, `"viewfs"`).
    fn name(&self) -> &str;

    /// One-line description shown by `um_ls_service`
    /// (`"virtual file systems (user level FUSE)"`).
    fn description(&self) -> &str;

    /// The system call families this service needs to see. The host traps
    /// nothing a loaded service does not ask for. The default is
    /// [`Interest::PATH`] for a service that mounts file systems, nothing
    /// otherwise.
    fn interest(&self) -> Interest {
        if self.mounts_file_systems() {
            Interest::PATH
        } else {
            Interest::empty()
        }
    }

    /// True if this service provides file systems (answers
    /// [`Service::mount`]). Default: false.
    fn mounts_file_systems(&self) -> bool {
        false
    }

    /// True if `mount -t FSTYPE` is for this service. Default, the
    /// seeds' convention: the type is the service name, or starts with it
    /// (`umfuseext2` and `umfusefat` are for `umfuse`, which picks the
    /// submodule from the rest).
    fn handles_fstype(&self, fstype: &str) -> bool {
        self.mounts_file_systems() && fstype.starts_with(self.name())
    }

    /// True if a mount of type `fstype` may sit on a path that is not a
    /// directory, or does not exist yet (the parent must): a device node
    /// the mount makes (`mount -t umdevmbr disk.img /dev/hda`). Default:
    /// false, the kernel's rule (the target is an existing directory).
    fn mounts_on_files(&self, fstype: &str) -> bool {
        let _ = fstype;
        false
    }

    /// A mount(2) made by a program this service started to serve a mount
    /// it is making (a FUSE server's own mount, see [`crate::launch`]):
    /// return `Some(answer)` to take it (the caller gets `answer`, no
    /// mount is added), `None` (the default) for a mount of its own.
    /// Every service is asked, in search order, before any mounts.
    fn join_mount(&self, request: &MountRequest) -> Option<Result<(), Errno>> {
        let _ = request;
        None
    }

    /// Mounts a file system for `request`. `io` is the view as it was
    /// before this mount (see [`crate::nesting`]): the file system should
    /// do its own file I/O (its image, its source directory) through it,
    /// so that files existing only in the view can be used. Default:
    /// `ENODEV` (no such file system type).
    fn mount(
        &self,
        request: &MountRequest,
        io: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        let _ = (request, io);
        Err(Errno::ENODEV)
    }

    /// Mounts the service makes by itself when it is loaded (the `unreal`
    /// test service mounts `/unreal`). Default: none.
    fn initial_mounts(&self) -> Vec<MountRequest> {
        Vec::new()
    }

    /// True if this service makes the sockets of address family `domain`
    /// (`AF_INET`, `AF_INET6`, `AF_PACKET`, `AF_NETLINK`, ...). The first
    /// service in search order that claims a family gets its socket(2)
    /// calls; families no service claims stay the kernel's. A socket
    /// service returns [`Interest::SOCKET`] from [`Service::interest`].
    /// Default: none.
    fn handles_socket(&self, domain: i32) -> bool {
        let _ = domain;
        false
    }

    /// Makes a socket for socket(2)'s `domain`, `kind` (`SOCK_STREAM`,
    /// `SOCK_DGRAM`, ...; `SOCK_NONBLOCK` and `SOCK_CLOEXEC` are the host's
    /// and taken out: it applies them to the program's fd) and `protocol`.
    ///
    /// [`Opened::Backed`] hands the program a kernel socket: every later
    /// call on it runs natively, as fast as outside a view.
    /// [`Opened::Served`] is a socket the service serves: its handle
    /// answers the socket calls through
    /// [`FileHandle::as_socket`](crate::FileHandle::as_socket) (see
    /// [`crate::socket`]). Default: `EAFNOSUPPORT`.
    ///
    /// Network stacks chosen per process or per socket (`mstack`,
    /// `msocket`) are mounts instead, see [`crate::stack`].
    fn socket(&self, domain: i32, kind: i32, protocol: i32) -> Result<Opened, Errno> {
        let _ = (domain, kind, protocol);
        Err(Errno::new(libc::EAFNOSUPPORT))
    }

    /// True if this service answers for device number `rdev` of `kind`
    /// (see [`crate::device`]). The first service in search order that
    /// claims a number gets the opens of every node with it. A device
    /// service returns [`Interest::DEVICE`] from [`Service::interest`].
    /// Default: none.
    fn handles_device(&self, kind: DeviceKind, rdev: u64) -> bool {
        let _ = (kind, rdev);
        false
    }

    /// Opens device `rdev` of `kind` with open(2)'s `flags` (the host has
    /// checked the node's permissions). Default: `ENXIO`, the kernel's
    /// answer for a device without a driver.
    fn open_device(&self, kind: DeviceKind, rdev: u64, flags: i32) -> Result<Opened, Errno> {
        let _ = (kind, rdev, flags);
        Err(Errno::new(libc::ENXIO))
    }

    /// The system call numbers this service hooks (see [`crate::hook`]):
    /// the host stops them and gives them to [`Service::syscall`].
    /// Default: none.
    fn hooked_syscalls(&self) -> Vec<i64> {
        Vec::new()
    }

    /// Answers a hooked system call, or lets it go on
    /// ([`Hooked::Native`], the default).
    fn syscall(&self, request: &SyscallRequest<'_>) -> Result<Hooked, Errno> {
        let _ = request;
        Ok(Hooked::Native)
    }

    /// Claims an exec (see [`crate::binfmt`]): `Some(Ok(interpreter))`
    /// runs the interpreter instead of the file, `Some(Err(e))` fails the
    /// exec with `e`, `None` (the default) leaves the file to the next
    /// service and then to the kernel. Asked only of services whose
    /// [`Service::interest`] has [`Interest::EXEC`], for files the caller
    /// may execute.
    fn exec_interpreter(&self, request: &ExecRequest<'_>) -> Option<Result<Interpreter, Errno>> {
        let _ = request;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fuse;
    impl Service for Fuse {
        fn name(&self) -> &str {
            "umfuse"
        }
        fn description(&self) -> &str {
            "test"
        }
        fn mounts_file_systems(&self) -> bool {
            true
        }
    }

    #[test]
    fn fstype_prefixes_pick_the_service() {
        assert!(Fuse.handles_fstype("umfuse"));
        assert!(Fuse.handles_fstype("umfuseext2"));
        assert!(!Fuse.handles_fstype("umdevmbr"));
        assert!(!Fuse.handles_fstype("umfus"));
    }
}
