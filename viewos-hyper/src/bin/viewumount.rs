//! `viewumount`: umount2(2) inside a view (see `viewmount`).
//!
//! ```text
//! viewumount [-l] TARGET
//! ```
//!
//! Exit status: 0 when unmounted, 1 for a usage error, 32 when it failed.

use std::ffi::CString;
use std::process::ExitCode;

const USAGE: &str = "usage: viewumount [-l] TARGET";

fn main() -> ExitCode {
    let mut flags = 0;
    let mut targets = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "-l" | "--lazy" => flags |= libc::MNT_DETACH,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if a.starts_with('-') && a.len() > 1 => {
                eprintln!("viewumount: unknown option {a}\n{USAGE}");
                return ExitCode::from(1);
            }
            _ => targets.push(a),
        }
    }
    let [target] = targets.as_slice() else {
        eprintln!("viewumount: one TARGET is needed\n{USAGE}");
        return ExitCode::from(1);
    };
    let Ok(c) = CString::new(target.as_str()) else {
        eprintln!("viewumount: TARGET must not contain NUL bytes");
        return ExitCode::from(1);
    };
    // SAFETY: `c` is a valid NUL-terminated string.
    if unsafe { libc::umount2(c.as_ptr(), flags) } != 0 {
        let e = std::io::Error::last_os_error();
        eprintln!("viewumount: {target}: {e}");
        return ExitCode::from(32);
    }
    ExitCode::SUCCESS
}
