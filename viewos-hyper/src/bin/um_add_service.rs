//! `um_add_service NAME[,OPTIONS]`: loads a module into the running view,
//! at the end of the search order.

use viewos_core::control::{command_explained, Op};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = match args.as_slice() {
        [name] => name.clone(),
        [name, options] => format!("{name},{options}"),
        _ => {
            eprintln!("usage: um_add_service NAME[,OPTIONS] | NAME OPTIONS");
            return std::process::ExitCode::from(1);
        }
    };
    let name = spec.split(',').next().unwrap_or_default().to_string();
    command_explained(
        "um_add_service",
        Op::AddService,
        spec.as_bytes(),
        false,
        |e| {
            Some(match e.raw() {
            libc::ENOENT => format!("no module named {name}"),
            libc::EEXIST => format!("{name} is already loaded"),
            libc::EOPNOTSUPP => format!(
                "{name} needs system calls this view does not stop (it was started without such a module): start umview with -p {name}"
            ),
            libc::EINVAL => format!("{name}: bad options"),
            _ => return None,
        })
        },
    )
}
