//! # um-net: per-view network stacks (msockets)
//!
//! Network stacks are mounted as files, as in UMview's umnet:
//! `mount -t umnetTYPE none /dev/net/NAME`, with types `umnetnull` (no
//! networking), `umnetcurrent` (the stack the process had), `umnetnative`
//! (the kernel stack, through the view) and `umnetsmoltcp` (a user-level
//! TCP/IP stack on smoltcp). A stack on `/dev/net/default` is the view's
//! default; `msocket` and `mstack` choose a stack per socket or per command.
//! Virtual stacks are configured with the real `ip` command over netlink and
//! reach the outside through VDE links.
//!
//! It depends only on `viewos-core`.
//!
//! Status: the crate is a workspace member with its place in the
//! architecture; the service itself is tracked by its own issue.

#![deny(unsafe_code)]
