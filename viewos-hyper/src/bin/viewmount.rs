//! `viewmount`: mount(2) inside a view, without the checks of the system
//! `mount` command (which refuses users without root before it calls
//! mount(2)).
//!
//! ```text
//! viewmount [-t TYPE] [-o OPTIONS] [-r] SOURCE TARGET
//! ```
//!
//! Exit status: 0 when mounted, 1 for a usage error, 32 when the mount
//! failed (as mount(8)).

use std::ffi::CString;
use std::process::ExitCode;

const USAGE: &str = "usage: viewmount [-t TYPE] [-o OPTIONS] [-r] SOURCE TARGET";

fn main() -> ExitCode {
    let mut fstype = String::new();
    let mut options = String::new();
    let mut flags: libc::c_ulong = 0;
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-t" | "--types" => match args.next() {
                Some(t) => fstype = t,
                None => return usage("-t needs a type"),
            },
            "-o" | "--options" => match args.next() {
                Some(o) => options = o,
                None => return usage("-o needs options"),
            },
            "-r" | "--read-only" => flags |= libc::MS_RDONLY,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if a.starts_with("-t") && a.len() > 2 => fstype = a[2..].to_string(),
            _ if a.starts_with("-o") && a.len() > 2 => options = a[2..].to_string(),
            _ if a.starts_with('-') && a.len() > 1 => return usage(&format!("unknown option {a}")),
            _ => positional.push(a),
        }
    }
    let [source, target] = positional.as_slice() else {
        return usage("SOURCE and TARGET are needed");
    };
    if options.split(',').any(|o| o == "ro") {
        flags |= libc::MS_RDONLY;
    }
    let c = |s: &str| CString::new(s).ok();
    let (Some(src), Some(tgt), Some(ty), Some(opt)) =
        (c(source), c(target), c(&fstype), c(&options))
    else {
        return usage("arguments must not contain NUL bytes");
    };
    // SAFETY: all four are valid NUL-terminated strings for the call.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            if fstype.is_empty() {
                std::ptr::null()
            } else {
                ty.as_ptr()
            },
            flags,
            if options.is_empty() {
                std::ptr::null()
            } else {
                opt.as_ptr().cast()
            },
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::ENODEV) => " (no service of the view handles this type)",
            Some(libc::EPERM) => " (not inside a view, or no service handles this type)",
            _ => "",
        };
        eprintln!("viewmount: mounting {source} on {target} failed: {e}{hint}");
        return ExitCode::from(32);
    }
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    eprintln!("viewmount: {why}\n{USAGE}");
    ExitCode::from(1)
}
