//! `mstack`: runs a command with another network stack as its default
//! (UMview's msocket compatibility tool).
//!
//! ```text
//! mstack [-f FAMILIES] STACK COMMAND [ARGS...]
//! ```
//!
//! STACK is the path a stack is mounted on (`/dev/net/null`); COMMAND and
//! every process it starts make their sockets of FAMILIES with it
//! (default `all`: IPv4, IPv6, packet and netlink; a comma list of
//! `inet4`, `inet6`, `ip`, `packet`, `netlink`, see
//! [`viewos_core::stack::Families::parse`]). `AF_UNIX` stays the kernel's.
//!
//! Exit status: COMMAND's, or 1 for a usage error or when STACK is not a
//! stack of the view, 126/127 when COMMAND cannot be run (as env(1)).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

use viewos_core::control::set_stack;
use viewos_core::stack::Families;
use viewos_core::Errno;

const USAGE: &str = "usage: mstack [-f FAMILIES] STACK COMMAND [ARGS...]";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    let mut families = Families::ALL;
    while let Some(a) = args.peek().and_then(|a| a.to_str()).map(str::to_string) {
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        if a == "--" {
            args.next();
            break;
        }
        let list = if a == "-f" || a == "-o" {
            args.next();
            match args.next().and_then(|l| l.into_string().ok()) {
                Some(l) => l,
                None => return usage("-f needs a list of families"),
            }
        } else if let Some(l) = a.strip_prefix("-f").or_else(|| a.strip_prefix("-o")) {
            args.next();
            l.to_string()
        } else if a.starts_with('-') && a.len() > 1 {
            return usage(&format!("unknown option {a}"));
        } else {
            break;
        };
        families = match Families::parse(&list) {
            Ok(f) => f,
            Err(_) => return usage(&format!("bad family list {list:?}")),
        };
    }
    let Some(stack) = args.next() else {
        return usage("STACK and COMMAND are needed");
    };
    let Some(command) = args.next() else {
        return usage("COMMAND is needed");
    };
    if let Err(e) = set_stack(Path::new(&stack), families) {
        let why = match e {
            e if e == Errno::ENOSYS => "not inside a view".to_string(),
            e if e == Errno::ENOENT => "no such file".to_string(),
            e if e == Errno::EINVAL => "not a network stack".to_string(),
            e => e.to_string(),
        };
        eprintln!("mstack: {}: {why}", Path::new(&stack).display());
        return ExitCode::from(1);
    }
    let err = std::process::Command::new(&command).args(args).exec();
    eprintln!("mstack: {}: {err}", Path::new(&command).display());
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    ExitCode::from(code)
}

fn usage(why: &str) -> ExitCode {
    eprintln!("mstack: {why}\n{USAGE}");
    ExitCode::from(1)
}
