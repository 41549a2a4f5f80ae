//! The network stacks a mount can be.

use std::os::fd::{FromRawFd, OwnedFd};

use viewos_core::stack::NetStack;
use viewos_core::{Errno, Opened};

/// `umnetnull`: no networking.
pub struct Null;

impl NetStack for Null {
    fn socket(&self, _domain: i32, _kind: i32, _protocol: i32) -> Result<Opened, Errno> {
        Err(Errno::new(libc::EAFNOSUPPORT))
    }
}

/// `umnetnative` and `umnetcurrent`: the kernel's stack, in the host's
/// network namespace. Sockets are handed to programs as kernel sockets.
pub struct Kernel;

impl NetStack for Kernel {
    fn socket(&self, domain: i32, kind: i32, protocol: i32) -> Result<Opened, Errno> {
        Ok(Opened::Backed(kernel_socket(domain, kind, protocol)?))
    }
}

/// A kernel socket, close-on-exec in the host.
#[allow(unsafe_code)]
fn kernel_socket(domain: i32, kind: i32, protocol: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: socket(2) has no memory arguments.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(Errno::from(std::io::Error::last_os_error()));
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_refuses_every_family() {
        for domain in [libc::AF_INET, libc::AF_INET6, libc::AF_UNIX, 999] {
            assert_eq!(
                Null.socket(domain, libc::SOCK_STREAM, 0).err(),
                Some(Errno::new(libc::EAFNOSUPPORT))
            );
        }
    }

    #[test]
    fn kernel_sockets_are_backed() {
        let Ok(Opened::Backed(fd)) = Kernel.socket(libc::AF_INET, libc::SOCK_DGRAM, 0) else {
            panic!("a kernel UDP socket");
        };
        let link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .unwrap();
        assert!(link.to_string_lossy().starts_with("socket:"));
        assert_eq!(
            Kernel.socket(999, libc::SOCK_STREAM, 0).err(),
            Some(Errno::new(libc::EAFNOSUPPORT))
        );
        assert_eq!(
            Kernel.socket(libc::AF_INET, 77, 0).err(),
            Some(Errno::EINVAL)
        );
    }
}
