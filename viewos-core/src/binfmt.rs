//! Executable formats a service adds to a view: "exec of this file runs
//! that interpreter", as the kernel's binfmt_misc does.
//!
//! A service that claims program files returns [`Interest::EXEC`] from
//! [`Service::interest`] and answers [`Service::exec_interpreter`]. The
//! host then asks it, in search order, at every exec in the view of a file
//! the caller may execute: the [`ExecRequest`] carries the file name as
//! the program gave it and the file's first [`BINPRM_BUF_SIZE`] bytes,
//! what binfmt_misc matches against. The first service that answers with
//! an [`Interpreter`] gets the exec rewritten: the interpreter runs with
//! the arguments [`Interpreter::argv`] builds, exactly those binfmt_misc
//! gives.
//!
//! The rewritten exec is itself an exec in the view: an interpreter that
//! is a `#!` script or another claimed file is handled in turn, up to the
//! kernel's depth (a sixth rewrite of one exec fails with `ELOOP`, as
//! the kernel allows five).
//!
//! [`Interest::EXEC`]: crate::Interest::EXEC
//! [`Service::interest`]: crate::Service::interest
//! [`Service::exec_interpreter`]: crate::Service::exec_interpreter

use std::path::PathBuf;

use crate::SharedFd;

/// How many bytes of a program file the kernel reads to pick its format
/// (`BINPRM_BUF_SIZE`, 256 since Linux 5.1): a binfmt_misc magic must fit
/// in them.
pub const BINPRM_BUF_SIZE: usize = 256;

/// An exec a service may claim.
#[derive(Clone, Copy, Debug)]
pub struct ExecRequest<'a> {
    /// The file name as the kernel's binfmt handlers see it: execve(2)'s
    /// path as the program gave it (`./run.foo`, `/usr/bin/x`), or for
    /// execveat(2) `/dev/fd/N/NAME` (`/dev/fd/N` for `AT_EMPTY_PATH`) when
    /// the name is relative to a directory fd. binfmt_misc matches
    /// extensions against it and passes it to the interpreter.
    pub filename: &'a [u8],
    /// The file's first [`BINPRM_BUF_SIZE`] bytes (fewer for a shorter
    /// file; the kernel reads the missing ones as zeros).
    pub head: &'a [u8],
}

/// The program that runs a claimed file, and how its arguments are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpreter {
    /// The interpreter's path, as registered (`/usr/bin/python3`): the
    /// new `argv[0]`, and the program exec'd unless [`Interpreter::file`]
    /// is set. A relative path is looked up as the caller's exec would.
    pub path: PathBuf,
    /// The interpreter opened beforehand (binfmt_misc's `F` flag, "fix
    /// binary": opened at registration, so it runs even if its path is
    /// gone or different later); it is exec'd instead of looking
    /// [`Interpreter::path`] up.
    pub file: Option<SharedFd>,
    /// Keep the program's own `argv[0]` (binfmt_misc's `P` flag).
    pub preserve_argv0: bool,
    /// binfmt_misc's `O` flag ("open binary"): the kernel passes an fd of
    /// the file in the auxiliary vector (`AT_EXECFD`); umview's host does
    /// the same (the calling thread opens the file before the exec). A
    /// host that cannot passes the file name only, as without the flag.
    pub open_binary: bool,
    /// binfmt_misc's `C` flag ("credentials"): the new program's
    /// set-user-ID and set-group-ID bits are the file's, not the
    /// interpreter's. A host whose view has identities of its own applies
    /// them to the view's ids; otherwise nothing changes (a view gains no
    /// real privilege).
    pub credentials: bool,
}

impl Interpreter {
    /// An interpreter run at `path`, without flags.
    pub fn new(path: impl Into<PathBuf>) -> Interpreter {
        Interpreter {
            path: path.into(),
            file: None,
            preserve_argv0: false,
            open_binary: false,
            credentials: false,
        }
    }

    /// The interpreter's arguments for an exec of `filename` with `argv`,
    /// as binfmt_misc makes them: the interpreter's path, then the file
    /// name, then the program's arguments without its `argv[0]`, or with
    /// it when [`Interpreter::preserve_argv0`] is set.
    ///
    /// ```
    /// use viewos_core::binfmt::Interpreter;
    /// let argv = [b"hello".to_vec(), b"-v".to_vec()];
    /// let mut i = Interpreter::new("/usr/bin/python3");
    /// assert_eq!(
    ///     i.argv(b"./hello.foo", &argv),
    ///     [&b"/usr/bin/python3"[..], b"./hello.foo", b"-v"]
    /// );
    /// i.preserve_argv0 = true;
    /// assert_eq!(
    ///     i.argv(b"./hello.foo", &argv),
    ///     [&b"/usr/bin/python3"[..], b"./hello.foo", b"hello", b"-v"]
    /// );
    /// ```
    pub fn argv(&self, filename: &[u8], argv: &[Vec<u8>]) -> Vec<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::with_capacity(argv.len() + 2);
        out.push(self.path.as_os_str().as_bytes().to_vec());
        out.push(filename.to_vec());
        let skip = if self.preserve_argv0 { 0 } else { 1 };
        out.extend(argv.iter().skip(skip).cloned());
        out
    }
}
