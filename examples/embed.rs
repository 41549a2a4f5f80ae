//! `embed`: another program using the host as a library.
//!
//! Runs its arguments as a command inside a fresh view that has its own
//! service (the `hello` example module, linked in statically: its file
//! system is on `/hello`), and exits with the command's status, the way
//! `umview` does.

use std::ffi::OsString;

use viewos_core::{View, ViewConfig};
use viewos_hyper::{Host, HostConfig, Program, Role};

fn main() {
    viewos_hyper::host::tune_allocator();
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    if argv.is_empty() {
        eprintln!("usage: embed prog [args]");
        std::process::exit(2);
    }
    let mut view = View::new(ViewConfig {
        name: "embedded".into(),
        no_nesting: false,
    });
    let hello = hello_service::Hello::create("").and_then(|s| view.add_service(s));
    if let Err(e) = hello {
        eprintln!("embed: cannot load the hello service: {e}");
        std::process::exit(125);
    }
    let program = Program {
        argv,
        role: Role::Main,
    };
    match Host::new(view, HostConfig::default()).run(&[program]) {
        Ok(exit) => std::process::exit(exit.shell_status()),
        Err(e) => {
            eprintln!("embed: {e}");
            std::process::exit(125);
        }
    }
}
