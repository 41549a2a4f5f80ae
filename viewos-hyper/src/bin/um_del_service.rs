//! `um_del_service NAME`: unloads a service from the view (refused while
//! it has mounts).

use viewos_core::control::{command_explained, Op};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name] = args.as_slice() else {
        eprintln!("usage: um_del_service NAME");
        return std::process::ExitCode::from(1);
    };
    command_explained(
        "um_del_service",
        Op::DelService,
        name.as_bytes(),
        false,
        |e| {
            Some(match e.raw() {
                libc::ENOENT => format!("no service named {name} is loaded"),
                libc::EBUSY => format!("{name} has mounts in the view: unmount them first"),
                _ => return None,
            })
        },
    )
}
