//! rc files: shell scripts run inside the view before the program.
//!
//! As in UMview: `/etc/viewosrc` if it exists, then the file given with
//! `-f`, or else `~/.viewosrc` if it exists. Each runs with `/bin/sh` in the
//! view, so what it loads or mounts is there for the program.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::tracer::{Program, Role};

/// The system-wide rc file.
pub const SYSTEM_RC: &str = "/etc/viewosrc";

/// The rc files to run, in order. `explicit` is `-f FILE`; it must exist
/// (the error names it), the others are optional.
pub fn rc_files(explicit: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    if Path::new(SYSTEM_RC).is_file() {
        files.push(PathBuf::from(SYSTEM_RC));
    }
    match explicit {
        Some(f) => {
            if !f.is_file() {
                return Err(format!("rc file {}: No such file", f.display()));
            }
            files.push(f.to_path_buf());
        }
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                let user_rc = Path::new(&home).join(".viewosrc");
                if user_rc.is_file() {
                    files.push(user_rc);
                }
            }
        }
    }
    Ok(files)
}

/// The program that runs one rc file.
pub fn rc_program(file: &Path) -> Program {
    Program {
        argv: vec![OsString::from("/bin/sh"), file.as_os_str().to_owned()],
        role: Role::Rc(file.display().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_explicit_rc_is_an_error() {
        let err = rc_files(Some(Path::new("/nonexistent/rc"))).unwrap_err();
        assert!(err.contains("/nonexistent/rc"));
    }

    #[test]
    fn rc_runs_with_sh() {
        let p = rc_program(Path::new("/tmp/x"));
        assert_eq!(p.argv[0], "/bin/sh");
        assert_eq!(p.role, Role::Rc("/tmp/x".into()));
    }
}
