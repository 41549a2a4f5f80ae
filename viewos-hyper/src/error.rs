//! The host's error type: failures of the host itself, never of a traced
//! program (those are errno values returned to the program).

use std::fmt;
use std::io;

use viewos_core::Errno;

/// Something the host could not do.
#[derive(Debug)]
pub enum HyperError {
    /// Starting a program in the view failed.
    Spawn {
        /// The program's name.
        program: String,
        /// What failed.
        source: io::Error,
    },
    /// A ptrace request on a thread failed in a way that is not its death.
    Ptrace {
        /// The request (`"seize"`, `"getregs"`).
        operation: &'static str,
        /// The thread.
        pid: i32,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The debug log (`-o FILE`) could not be opened.
    Log {
        /// The path given.
        path: String,
        /// Why it failed.
        source: io::Error,
    },
    /// `-p NAME` named no module this host knows.
    UnknownModule(String),
    /// A module library could not be loaded (see [`crate::modules`]).
    ModuleLoad {
        /// What was asked for.
        name: String,
        /// Why not, for the user.
        reason: String,
    },
    /// A module refused its options.
    Module {
        /// The module's name.
        name: String,
        /// Its answer.
        errno: Errno,
    },
}

impl fmt::Display for HyperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HyperError::Spawn { program, source } => write!(f, "cannot start {program}: {source}"),
            HyperError::Ptrace {
                operation,
                pid,
                source,
            } => write!(f, "ptrace {operation} on pid {pid}: {source}"),
            HyperError::Log { path, source } => write!(f, "cannot open log file {path}: {source}"),
            HyperError::UnknownModule(name) => write!(f, "unknown module '{name}'"),
            HyperError::Module { name, errno } => write!(f, "module {name}: {errno}"),
            HyperError::ModuleLoad { reason, .. } => f.write_str(reason),
        }
    }
}

impl std::error::Error for HyperError {}

impl HyperError {
    /// The errno of the system call that failed, if one did.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            HyperError::Spawn { source, .. }
            | HyperError::Ptrace { source, .. }
            | HyperError::Log { source, .. } => source.raw_os_error().map(Errno::new),
            HyperError::Module { errno, .. } => Some(*errno),
            HyperError::UnknownModule(_) | HyperError::ModuleLoad { .. } => None,
        }
    }
}
