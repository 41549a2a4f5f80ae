//! `viewsu`: run a shell as another user of the view.
//!
//! ```text
//! viewsu [-s SHELL] [USER] [-c COMMAND]
//! ```
//!
//! USER (default root) is a name or a number, looked up in the view's
//! `/etc/passwd` and `/etc/group`. The switch is made with setgroups(2),
//! setgid(2) and setuid(2), which the view answers with the kernel's
//! rules for its identities (`umview -s` or `--root-id`): root may become
//! anyone; anyone else gets "permission denied" (no passwords: use
//! `viewsudo` to become root again). The shell is USER's login shell, or
//! `/bin/sh` for accounts whose shell refuses logins (nologin, false), or
//! SHELL; with `-c` it runs COMMAND.
//!
//! Exit status: the shell's, or 1 when the switch fails.

use std::ffi::OsString;
use std::process::ExitCode;

use viewos_core::control::{request, Op};
use viewos_core::Errno;
use viewos_hyper::users;

const USAGE: &str = "usage: viewsu [-s SHELL] [USER] [-c COMMAND]";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut who: Option<String> = None;
    let mut shell: Option<OsString> = None;
    let mut command: Option<OsString> = None;
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("-c") => match args.next() {
                Some(c) => command = Some(c),
                None => return usage(),
            },
            Some("-s") => match args.next() {
                Some(s) => shell = Some(s),
                None => return usage(),
            },
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some(name) if who.is_none() && !name.starts_with('-') => who = Some(name.to_string()),
            _ => return usage(),
        }
    }
    if request(Op::GetName, b"") == Err(Errno::ENOSYS) {
        eprintln!("viewsu: not inside a view");
        return ExitCode::from(1);
    }
    let who = who.unwrap_or_else(|| "root".into());
    let (user, groups) = match users::lookup(&who) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("viewsu: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = users::become_user(&user, &groups) {
        if e == Errno::EPERM {
            eprintln!("viewsu: permission denied: only root may become {who} in this view");
        } else {
            eprintln!("viewsu: cannot become {who}: {e}");
        }
        return ExitCode::from(1);
    }
    let refuses = user.shell.ends_with("/nologin") || user.shell.ends_with("/false");
    let shell = shell.unwrap_or_else(|| {
        if refuses {
            "/bin/sh".into()
        } else {
            user.shell.clone().into()
        }
    });
    let mut argv = vec![shell];
    if let Some(c) = command {
        argv.push("-c".into());
        argv.push(c);
    }
    let err = users::exec_as(&user, &argv);
    eprintln!("viewsu: {}: {err}", argv[0].to_string_lossy());
    ExitCode::from(1)
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(1)
}
