//! `um_ls_service`: lists the services loaded in the view, one
//! `name: description` line each, in search order.

use viewos_core::control::{command, Op};

fn main() -> std::process::ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("usage: um_ls_service");
        return std::process::ExitCode::from(1);
    }
    command("um_ls_service", Op::ListServices, b"", true)
}
