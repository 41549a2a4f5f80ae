//! # um-net: per-view network stacks (msockets)
//!
//! Network stacks are mounted as files, as in UMview's umnet:
//! `mount -t umnetTYPE [-o perm] none /dev/net/NAME` (or `viewmount`, or
//! at start `umview -p umnet,type=umnetTYPE,source=none,target=/dev/net/NAME`).
//! The mount point shows as a character device node (mode `0666`, device
//! number 0; opening it answers `ENXIO`), so `ls /dev/net` and `stat` see
//! the stack.
//!
//! | type | stack |
//! |---|---|
//! | `umnetnull` | no networking: every socket it is asked for fails with `EAFNOSUPPORT` |
//! | `umnetnative` | the kernel's stack, through the view: each socket is a kernel socket handed to the program as its own fd ([`viewos_core::Opened::Backed`]), so every call after socket(2) runs natively, at native speed |
//! | `umnetcurrent` | the stack the host runs in, which is the one the view's processes had when the view started: the same kernel sockets as `umnetnative`. UMview's `current` was the stack of the *calling* process, which could itself be a virtual one; here a mount does not know its caller's stack, so `current` is always the kernel's |
//! | `umnetsmoltcp`, `umnetlwip` | a user-level TCP/IP stack of the view's own ([`smol`], on smoltcp) with a loopback interface (`127.0.0.1/8`, `::1`): TCP and UDP over IPv4 and IPv6 between the view's programs, invisible to the kernel's stack; its sockets are served; `NETLINK_ROUTE` sockets let `ip` show and change its links, addresses and routes ([`netlink`], [`netconf`]), and the interface ioctls answer from the same ([`ifreq`]) |
//!
//! A stack on `/dev/net/default` ([`viewos_core::stack::DEFAULT_STACK`]) is
//! the view's default for socket(2) of `AF_INET`, `AF_INET6`, `AF_PACKET`
//! and `AF_NETLINK`; `AF_UNIX` stays the kernel's. Until a default is
//! mounted the view's sockets are the kernel's (the view is transparent).
//! `mstack [-f FAMILIES] STACK cmd` runs a command tree with another
//! default, and programs choose a stack per socket with
//! `viewos_core::control::msocket(path, domain, type, protocol)`; both are
//! the host's ([`viewos_core::stack`]), which finds stacks by their
//! mount point, so this crate only makes them.
//!
//! A smoltcp stack mounted with `-o vd0=vde:///path/to/switch` (or any
//! `vdN=`: one link per stack) also has an Ethernet link `vdN` plugged
//! into that VDE switch ([`ether`], over [`viewos_core::vde`]): down and
//! without addresses until `ip link set vd0 up` and `ip addr add`, as a
//! new interface of the kernel's; ARP, IPv4 and IPv6 over Ethernet are
//! smoltcp's, and the loopback's addresses stay on the same interface.
//!
//! `-o perm` makes a mount permanent: umount fails with `EBUSY`
//! (`mount -t umnetnull -o perm none /dev/net/default` disables networking
//! for good).
//!
//! ## Layout
//!
//! - [`service`]: the `umnet` service: mount types and options;
//! - [`node`]: the file system of a mount, one node that is the stack;
//! - [`stacks`]: the stacks themselves ([`stacks::Null`],
//!   [`stacks::Kernel`]);
//! - [`smol`]: the smoltcp stack;
//! - [`netconf`]: a virtual stack's links, addresses and routes, and the
//!   changes `ip` makes to them, with the kernel's errnos;
//! - [`netlink`]: `NETLINK_ROUTE` for a virtual stack (what `ip` and
//!   `getifaddrs` ask and change), with its wire format in
//!   [`netlink::wire`];
//! - [`ether`]: the Ethernet device of a stack with a VDE link;
//! - [`ifreq`]: the classic interface ioctls (`SIOCGIFCONF`,
//!   `SIOCGIFADDR`, ...) on its sockets.
//!
//! It depends only on `viewos-core`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod ether;
pub mod ifreq;
pub mod netconf;
pub mod netlink;
pub mod node;
pub mod service;
pub mod smol;
pub mod stacks;

pub use service::UmNet;

/// Entry points for the fuzz targets of `fuzz/` into private code. Not
/// an API.
#[doc(hidden)]
pub mod fuzzing {
    /// A stack mount's `-o` options (`perm`, `vd0=URL`, ...).
    pub fn mount_options(options: &str) -> Result<(), viewos_core::Errno> {
        crate::service::parse_options(options).map(drop)
    }
}
