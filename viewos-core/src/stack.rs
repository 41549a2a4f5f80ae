//! Network stacks mounted as files (msockets).
//!
//! A service that provides network stacks (`um-net`) mounts each one on a
//! path, by convention under `/dev/net` (`mount -t umnetnative none
//! /dev/net/native`): the mount's [`FileSystem`](crate::FileSystem)
//! answers [`FileSystem::net_stack`](crate::FileSystem::net_stack) with
//! the stack. The host then makes sockets with it:
//!
//! - socket(2) of a family in [`Families::ALL`] (IPv4, IPv6, packet,
//!   netlink) uses the calling process's stack for that family: the one
//!   `mstack` chose for its process tree ([`StackChoice`], set with
//!   [`crate::control::set_stack`] and inherited by children), else the
//!   stack mounted on [`DEFAULT_STACK`], else the kernel's own (the view
//!   is transparent until a default is mounted). Other families (`AF_UNIX`)
//!   never go to a stack.
//! - `msocket(path, domain, type, protocol)` ([`crate::control::msocket`])
//!   uses the stack mounted on `path` for one socket.
//!
//! A stack returns [`Opened::Backed`] for a kernel socket (every later
//! call on the program's fd runs natively, at the kernel's speed) or
//! [`Opened::Served`] for a socket it serves itself
//! ([`crate::socket::SocketHandle`]).

use std::path::{Path, PathBuf};

use bitflags::bitflags;

use crate::fs::Opened;
use crate::Errno;

/// Where the view's default stack is mounted.
pub const DEFAULT_STACK: &str = "/dev/net/default";

/// A network stack: it makes sockets.
pub trait NetStack: Send + Sync {
    /// Makes a socket for socket(2)'s `domain`, `kind` (`SOCK_STREAM`,
    /// `SOCK_DGRAM`, ...; without `SOCK_NONBLOCK` and `SOCK_CLOEXEC`, which
    /// the host applies to the program's fd) and `protocol`. A stack that
    /// does not support the family answers `EAFNOSUPPORT`, as the kernel
    /// does.
    fn socket(&self, domain: i32, kind: i32, protocol: i32) -> Result<Opened, Errno>;
}

bitflags! {
    /// Socket families that follow a process's stack choice.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Families: u32 {
        /// `AF_INET`.
        const INET4 = 1 << 0;
        /// `AF_INET6`.
        const INET6 = 1 << 1;
        /// `AF_PACKET`.
        const PACKET = 1 << 2;
        /// `AF_NETLINK`.
        const NETLINK = 1 << 3;
        /// Every family a stack can take.
        const ALL = Self::INET4.bits() | Self::INET6.bits()
            | Self::PACKET.bits() | Self::NETLINK.bits();
    }
}

impl Families {
    /// The family of socket(2)'s `domain`; `None` for a domain no stack
    /// takes (`AF_UNIX`, unknown numbers).
    pub fn of_domain(domain: i32) -> Option<Families> {
        Some(match domain {
            libc::AF_INET => Families::INET4,
            libc::AF_INET6 => Families::INET6,
            libc::AF_PACKET => Families::PACKET,
            libc::AF_NETLINK => Families::NETLINK,
            _ => return None,
        })
    }

    /// Parses a list as `mstack -f` takes it: names separated by commas
    /// (`inet4,inet6`), each `all`, `ip` (IPv4 and IPv6), `inet4` (also
    /// `inet`, `ipv4`), `inet6` (`ipv6`), `packet` or `netlink`. `EINVAL`
    /// for an unknown name or an empty list.
    pub fn parse(list: &str) -> Result<Families, Errno> {
        let mut out = Families::empty();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            out |= match name {
                "all" => Families::ALL,
                "ip" => Families::INET4 | Families::INET6,
                "inet" | "inet4" | "ipv4" => Families::INET4,
                "inet6" | "ipv6" => Families::INET6,
                "packet" => Families::PACKET,
                "netlink" => Families::NETLINK,
                _ => return Err(Errno::EINVAL),
            };
        }
        if out.is_empty() {
            return Err(Errno::EINVAL);
        }
        Ok(out)
    }
}

/// The stacks a process chose with `mstack`: for some families, the path
/// of a stack. Families it did not choose use [`DEFAULT_STACK`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackChoice {
    /// Latest choice last.
    chosen: Vec<(Families, PathBuf)>,
}

impl StackChoice {
    /// Uses the stack at `path` for `families` from now on.
    pub fn choose(&mut self, families: Families, path: PathBuf) {
        for (f, _) in &mut self.chosen {
            f.remove(families);
        }
        self.chosen.retain(|(f, _)| !f.is_empty());
        self.chosen.push((families, path));
    }

    /// The path of the stack chosen for `family`, if one was.
    pub fn path_for(&self, family: Families) -> Option<&Path> {
        self.chosen
            .iter()
            .rev()
            .find(|(f, _)| f.contains(family))
            .map(|(_, p)| p.as_path())
    }

    /// True when no family has a chosen stack.
    pub fn is_empty(&self) -> bool {
        self.chosen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_lists_parse() {
        assert_eq!(Families::parse("all"), Ok(Families::ALL));
        assert_eq!(
            Families::parse("inet4,ipv6"),
            Ok(Families::INET4 | Families::INET6)
        );
        assert_eq!(Families::parse("netlink"), Ok(Families::NETLINK));
        assert_eq!(Families::parse(""), Err(Errno::EINVAL));
        assert_eq!(Families::parse("inet4,unix"), Err(Errno::EINVAL));
        assert_eq!(Families::of_domain(libc::AF_UNIX), None);
        assert_eq!(Families::of_domain(libc::AF_INET6), Some(Families::INET6));
    }

    #[test]
    fn later_choices_win_per_family() {
        let mut c = StackChoice::default();
        assert!(c.is_empty());
        c.choose(Families::ALL, "/dev/net/a".into());
        c.choose(Families::INET6, "/dev/net/b".into());
        assert_eq!(c.path_for(Families::INET4), Some(Path::new("/dev/net/a")));
        assert_eq!(c.path_for(Families::INET6), Some(Path::new("/dev/net/b")));
        c.choose(Families::ALL, "/dev/net/c".into());
        assert_eq!(c.chosen.len(), 1);
        assert_eq!(c.path_for(Families::PACKET), Some(Path::new("/dev/net/c")));
    }
}
