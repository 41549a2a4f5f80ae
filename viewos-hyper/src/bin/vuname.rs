//! `vuname`: `uname -a` followed by the view's name.

use std::ffi::CStr;

use viewos_core::control::{request, Op};
use viewos_core::Errno;

fn field(raw: &[libc::c_char]) -> String {
    // SAFETY: uname fills each field with a NUL-terminated string.
    unsafe { CStr::from_ptr(raw.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn main() -> std::process::ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("usage: vuname");
        return std::process::ExitCode::from(1);
    }
    let name = match request(Op::GetName, b"") {
        Ok(n) => String::from_utf8_lossy(&n).into_owned(),
        Err(e) if e == Errno::ENOSYS => {
            eprintln!("vuname: not inside a view");
            return std::process::ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("vuname: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut u) } != 0 {
        eprintln!("vuname: {}", std::io::Error::last_os_error());
        return std::process::ExitCode::from(1);
    }
    println!(
        "{} {} {} {} {} GNU/Linux {}",
        field(&u.sysname),
        field(&u.nodename),
        field(&u.release),
        field(&u.version),
        field(&u.machine),
        name
    );
    std::process::ExitCode::SUCCESS
}
