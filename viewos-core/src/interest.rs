//! Which families of system calls a view must see.
//!
//! The host installs a seccomp filter that stops a traced program only on
//! the calls some loaded service can change. Everything else runs at native
//! speed. Services declare their needs as an [`Interest`]; the view's
//! interest is the union over its services plus what the host itself needs.

use bitflags::bitflags;

bitflags! {
    /// A set of system call families.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Interest: u32 {
        /// Calls that name a file by path (open, stat, mkdir, readlink, ...).
        const PATH = 1 << 0;
        /// Calls on file descriptors (read, write, lseek, fstat, ioctl, ...).
        const FD = 1 << 1;
        /// Socket creation and socket calls (socket, bind, connect, ...).
        const SOCKET = 1 << 2;
        /// Program execution (execve, execveat): a service that claims
        /// program files ([`crate::binfmt`]) asks for it.
        const EXEC = 1 << 3;
        /// mount(2) and umount2(2).
        const MOUNT = 1 << 4;
        /// User and group identity (setuid, getuid, capget, ...). The host
        /// adds it for a view with identities of its own (`umview
        /// --root-id`, `-s`), which then also stops the stat family and the
        /// calls that change owners or make files, to answer them with
        /// the view's ids.
        const IDENTITY = 1 << 5;
        /// Host name and uname.
        const UTS = 1 << 6;
        /// The view's control channel ([`crate::control`]); always trapped.
        const CONTROL = 1 << 7;
        /// Opens of device nodes, for the device numbers a service claims
        /// ([`crate::device`]); implies the path calls.
        const DEVICE = 1 << 8;
        /// Calls that could reach the host process itself (ptrace,
        /// process_vm_readv/writev, signals, pidfd_open): the host always
        /// stops them, so a program in a view cannot read, change, stop or
        /// kill the host that keeps the view.
        const GUARD = 1 << 9;
    }
}

impl Interest {
    /// What the host needs with no module loaded: its control channel and
    /// mounts (so that `mount -t TYPE` reaches services). Program execution is followed
    /// through ptrace's exec events, which cost no extra stop; execve is
    /// trapped only for services that change what runs (or for the debug
    /// log).
    pub const HOST_MINIMUM: Interest = Interest::MOUNT.union(Interest::CONTROL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_is_mount() {
        assert!(!Interest::HOST_MINIMUM.contains(Interest::EXEC));
        assert!(Interest::HOST_MINIMUM.contains(Interest::MOUNT));
        assert!(!Interest::HOST_MINIMUM.contains(Interest::PATH));
    }
}
