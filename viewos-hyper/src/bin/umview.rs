//! `umview`: run a program in a view.
//!
//! The binary defines the C `main` itself (`no_main`) so that the Rust
//! runtime does not change signal dispositions (it would ignore SIGPIPE, and
//! that would be inherited by every program in the view).

#![no_main]

use std::ffi::OsString;

use viewos_core::{ModuleRegistry, View, ViewConfig};
use viewos_hyper::cli::{self, Parsed};
use viewos_hyper::identity::IdentityMode;
use viewos_hyper::modules::LoadError;
use viewos_hyper::{rc, Host, HostConfig, HyperError, Program, Role};

/// The modules built into this binary.
fn registry() -> ModuleRegistry {
    let mut r = ModuleRegistry::new();
    r.register("unreal", viewos_core::testing::Unreal::create);
    r.register("faulty", viewos_core::testing::Faulty::create);
    r.register("realnet", viewos_core::testing::RealNet::create);
    r.register("echodev", viewos_core::testing::EchoDev::create);
    r.register("hostname", viewos_core::testing::HostName::create);
    r.register("viewfs", viewfs::ViewFs::create);
    r.register("umfuse", um_fuse::UmFuse::create);
    r.register("umdev", um_dev::UmDev::create);
    r.register("umbinfmt", um_binfmt::UmBinfmt::create);
    r.register("umnet", um_net::UmNet::create);
    r
}

/// Reads a signal's current disposition and sets `SIG_IGN`.
fn ignore(signal: i32) -> libc::sighandler_t {
    // SAFETY: signal(2) with SIG_IGN; the previous handler is returned and
    // restored in the children before exec.
    unsafe { libc::signal(signal, libc::SIG_IGN) }
}

fn run(opts: cli::Options) -> Result<i32, (HyperError, i32)> {
    let registry = registry();
    let mut view = View::new(ViewConfig {
        name: opts.view_name.clone().unwrap_or_default(),
        no_nesting: opts.no_nesting,
    });
    for p in &opts.preload {
        let service =
            viewos_hyper::modules::load(&registry, &p.module, &p.options).map_err(|e| {
                let name = p.module.clone();
                let err = match e {
                    LoadError::Unknown => HyperError::UnknownModule(name),
                    LoadError::Failed(errno) => HyperError::Module { name, errno },
                    other => HyperError::ModuleLoad {
                        name,
                        reason: other.to_string(),
                    },
                };
                (err, 2)
            })?;
        view.add_service(service).map_err(|errno| {
            (
                HyperError::Module {
                    name: p.module.clone(),
                    errno,
                },
                2,
            )
        })?;
    }
    let mut programs: Vec<Program> = match rc::rc_files(opts.rc_file.as_deref()) {
        Ok(files) => files.iter().map(|f| rc::rc_program(f)).collect(),
        Err(msg) => {
            eprintln!("umview: {msg}");
            return Ok(2);
        }
    };
    programs.push(Program {
        argv: opts.command.clone(),
        role: Role::Main,
    });
    // Like a shell waiting for a foreground job, umview ignores the
    // keyboard's SIGINT and SIGQUIT (they reach the programs in the view
    // directly); the programs get the dispositions umview was started with.
    let int = ignore(libc::SIGINT);
    let quit = ignore(libc::SIGQUIT);
    let config = HostConfig {
        seccomp: !opts.no_seccomp,
        log_file: opts.log_file.clone(),
        quiet: opts.quiet,
        child_dispositions: vec![(libc::SIGINT, int), (libc::SIGQUIT, quit)],
        guard_signals: true,
        identity: if opts.secure {
            Some(IdentityMode::Human)
        } else if opts.root_id {
            Some(IdentityMode::RootId)
        } else {
            None
        },
    };
    let exit = Host::new(view, config)
        .with_modules(registry)
        .run(&programs)
        .map_err(|e| (e, 125))?;
    Ok(exit.shell_status())
}

/// The process entry point.
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    viewos_hyper::host::tune_allocator();
    viewos_hyper::host::raise_fd_limit();
    // A panic (in a service, most likely) is one line on stderr; the host
    // answers the call EIO and goes on.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("umview: internal error: {info}; the system call fails with EIO");
    }));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let opts = match cli::parse(args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{}", cli::HELP);
            return 0;
        }
        Ok(Parsed::Version) => {
            println!("{}", cli::version());
            return 0;
        }
        Err(msg) => {
            eprintln!("umview: {msg}");
            return 2;
        }
    };
    match run(opts) {
        Ok(code) => code,
        Err((e, code)) => {
            eprintln!("umview: {e}");
            code
        }
    }
}
