//! `viewsudo`: run a command as root (or another user) of the view.
//!
//! ```text
//! viewsudo [-u USER] COMMAND [ARGS...]
//! ```
//!
//! In a view with identities (`umview -s`, `--root-id`) the process asks
//! its host to make it root again (the control operation
//! `BecomeRoot`), then becomes USER if one is given (see `viewsu`), and
//! runs COMMAND. Like a `sudo` that asks no password: human mode keeps
//! programs from doing as root what they did not ask for, it is not a
//! wall against the user who started the view. Outside such a view it
//! fails.
//!
//! Exit status: COMMAND's, or 1 when the switch fails.

use std::ffi::OsString;
use std::process::ExitCode;

use viewos_core::control::{request, Op};
use viewos_core::Errno;
use viewos_hyper::users;

const USAGE: &str = "usage: viewsudo [-u USER] COMMAND [ARGS...]";

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut who = "root".to_string();
    match args.first().and_then(|a| a.to_str()) {
        Some("-u") if args.len() >= 3 => {
            who = args[1].to_string_lossy().into_owned();
            args.drain(..2);
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("-u") | None => {
            eprintln!("{USAGE}");
            return ExitCode::from(1);
        }
        _ => {}
    }
    match request(Op::BecomeRoot, b"") {
        Ok(_) => {}
        Err(e) if e == Errno::ENOSYS => {
            eprintln!("viewsudo: not inside a view");
            return ExitCode::from(1);
        }
        Err(e) if e.raw() == libc::EOPNOTSUPP => {
            eprintln!("viewsudo: this view has no identities of its own (start umview with -s or --root-id)");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("viewsudo: {e}");
            return ExitCode::from(1);
        }
    }
    let (user, groups) = match users::lookup(&who) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("viewsudo: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = users::become_user(&user, &groups) {
        eprintln!("viewsudo: cannot become {who}: {e}");
        return ExitCode::from(1);
    }
    let err = users::exec_as(&user, &args);
    eprintln!("viewsudo: {}: {err}", args[0].to_string_lossy());
    ExitCode::from(1)
}
