//! `viewname [NAME]`: prints the view's name, or sets it.

use viewos_core::control::{command, request, Op};
use viewos_core::Errno;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => match request(Op::GetName, b"") {
            Ok(name) => {
                println!("{}", String::from_utf8_lossy(&name));
                std::process::ExitCode::SUCCESS
            }
            Err(e) if e == Errno::ENOSYS => {
                eprintln!("viewname: not inside a view");
                std::process::ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("viewname: {e}");
                std::process::ExitCode::from(1)
            }
        },
        [name] => command("viewname", Op::SetName, name.as_bytes(), false),
        _ => {
            eprintln!("usage: viewname [NAME]");
            std::process::ExitCode::from(1)
        }
    }
}
