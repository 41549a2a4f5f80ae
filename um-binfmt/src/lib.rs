//! # um-binfmt: binfmt_misc at user level
//!
//! `mount -t umbinfmt none /proc/sys/fs/binfmt_misc` shows a virtual
//! `register` and `status` and one file per registered format, with the
//! kernel's binfmt_misc syntax and rules
//! (`:name:type:offset:magic:mask:interpreter:flags`, see [`mod@format`]). An
//! exec inside the view of a matching file runs the registered
//! interpreter with the arguments binfmt_misc gives, for example
//! `qemu-aarch64` for foreign binaries or `python3` for `.py` files,
//! without any entry on the host and without privileges.
//!
//! ```text
//! $ umview -p umbinfmt bash
//! $ viewmount -t umbinfmt none /proc/sys/fs/binfmt_misc
//! $ echo ':foo:E::foo::/usr/bin/python3:' > /proc/sys/fs/binfmt_misc/register
//! $ ./hello.foo            # runs /usr/bin/python3 ./hello.foo
//! $ cat /proc/sys/fs/binfmt_misc/foo
//! enabled
//! interpreter /usr/bin/python3
//! flags:
//! extension .foo
//! $ echo -1 > /proc/sys/fs/binfmt_misc/foo     # 0 disables, 1 enables
//! ```
//!
//! As with the kernel: entries are tried newest first; writing `0`, `1`
//! or `-1` to `status` disables, enables or removes them all; every mount
//! shows the same entries, and the last umount removes them. The mount
//! type `binfmt_misc` is taken too. The files belong to the view's user
//! (`register` is `0200`, the others `0644`), who may register formats.
//!
//! Flags: `P` keeps `argv[0]`; `F` opens the interpreter at registration
//! (a missing one is refused then, `ENOENT`); `C` takes the new program's
//! set-ID bits from the file, not the interpreter, in a view with
//! identities (`--root-id`, `-s`: the view's ids change, never the real
//! ones); `O` passes the file to the interpreter as an open fd named by
//! `AT_EXECFD` in its auxiliary vector (as the kernel does; the name stays
//! in `argv[1]`).
//!
//! It depends only on `viewos-core`: the host asks
//! [`viewos_core::Service::exec_interpreter`] at every exec of the view.

#![deny(unsafe_code)]

pub mod format;
mod service;

pub use service::UmBinfmt;
