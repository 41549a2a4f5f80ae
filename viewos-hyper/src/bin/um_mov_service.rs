//! `um_mov_service NAME POSITION`: moves a service in the view's search
//! order (1 is first).

use viewos_core::control::{command_explained, Op};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, position] = args.as_slice() else {
        eprintln!("usage: um_mov_service NAME POSITION");
        return std::process::ExitCode::from(1);
    };
    let arg = format!("{name}\0{position}");
    command_explained(
        "um_mov_service",
        Op::MovService,
        arg.as_bytes(),
        false,
        |e| {
            Some(match e.raw() {
                libc::ENOENT => format!("no service named {name} is loaded"),
                libc::EINVAL => format!("bad position {position} (1 is first)"),
                _ => return None,
            })
        },
    )
}
