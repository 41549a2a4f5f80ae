//! The `umview` command line.
//!
//! `umview [options] prog [args]`. Options end at the first argument that is
//! not an option (or at `--`); everything after it is the program and its
//! arguments, untouched. Short options may be bundled (`-xq`) and take their
//! value attached or as the next argument (`-pviewfs`, `-p viewfs`); long
//! options take `--name=value` or `--name value`.

use std::ffi::OsString;
use std::path::PathBuf;

/// One `-p module[,options]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preload {
    /// Module name or path of a shared library.
    pub module: String,
    /// Everything after the first comma (empty if none).
    pub options: String,
}

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `-p/--preload`, in order.
    pub preload: Vec<Preload>,
    /// `-V/--viewname`.
    pub view_name: Option<String>,
    /// `-f/--rc`.
    pub rc_file: Option<PathBuf>,
    /// `-x/--nonesting`.
    pub no_nesting: bool,
    /// `-o FILE`: debug log.
    pub log_file: Option<String>,
    /// `-q/--quiet`.
    pub quiet: bool,
    /// `--no-seccomp`: trap every syscall with plain ptrace.
    pub no_seccomp: bool,
    /// `--root-id`: processes see themselves as root (a fake root).
    pub root_id: bool,
    /// `-s/--secure`: human mode (root at start, permissions enforced by
    /// services once a process gives root up).
    pub secure: bool,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

/// What to do after parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run a view.
    Run(Options),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// The help text of `umview -h`.
pub const HELP: &str = "\
Usage: umview [options] prog [args]
Run prog (searched on PATH) and every process it starts in a view of its own.
With no module loaded the view is transparent.

Options:
  -p, --preload MODULE[,OPTS]  load a module at start (repeatable); a name
                               (built in: viewfs, umfuse, unreal, faulty,
                               realnet, echodev, hostname), or the path of a
                               shared library (LD_LIBRARY_PATH is searched
                               as by the dynamic loader)
  -V, --viewname NAME          name of the view (see viewname, vuname)
  -f, --rc FILE                run FILE in the view before prog, instead of
                               ~/.viewosrc (/etc/viewosrc always runs first)
  -x, --nonesting              services' own I/O does not go through the view
  -o FILE                      write a debug log of what the host does to FILE
  -q, --quiet                  do not print warnings
      --root-id                programs see themselves as root: get*id give
                               0, chown and mknod are remembered by the view
                               and shown by stat (like fakeroot)
  -s, --secure                 human mode: root at start; once a process
                               sets an unprivileged uid (setuid, viewsu)
                               services check its permissions
      --no-seccomp             stop on every system call (slow reference path)
  -v, --version                print the version and exit
  -h, --help                   print this help and exit

umview exits with prog's exit status, or 128+N if prog was killed by signal N.
The view ends when no process started in it is left.
";

/// The version line of `umview -v`.
pub fn version() -> String {
    format!("umview (View-OS in Rust) {}", env!("CARGO_PKG_VERSION"))
}

fn preload(spec: &str) -> Result<Preload, String> {
    let (module, options) = match spec.split_once(',') {
        Some((m, o)) => (m, o),
        None => (spec, ""),
    };
    if module.is_empty() {
        return Err(format!("-p '{spec}': no module name"));
    }
    Ok(Preload {
        module: module.to_string(),
        options: options.to_string(),
    })
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Parsed, String> {
    let mut opts = Options::default();
    let mut args = args.into_iter();
    let value = |args: &mut dyn Iterator<Item = OsString>, name: &str| -> Result<String, String> {
        let v = args
            .next()
            .ok_or_else(|| format!("option '{name}' needs a value"))?;
        v.into_string()
            .map_err(|_| format!("option '{name}': value is not valid UTF-8"))
    };
    while let Some(arg) = args.next() {
        let Some(s) = arg.to_str() else {
            // Not UTF-8: cannot be an option; it is the program.
            opts.command.push(arg);
            break;
        };
        if s == "--" {
            break;
        }
        if let Some(long) = s.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let takes_value = matches!(name, "preload" | "viewname" | "rc");
            if !takes_value && inline.is_some() {
                return Err(format!("option '--{name}' takes no value"));
            }
            let get = |args: &mut dyn Iterator<Item = OsString>| match inline.clone() {
                Some(v) => Ok(v),
                None => value(args, &format!("--{name}")),
            };
            match name {
                "preload" => opts.preload.push(preload(&get(&mut args)?)?),
                "viewname" => opts.view_name = Some(get(&mut args)?),
                "rc" => opts.rc_file = Some(PathBuf::from(get(&mut args)?)),
                "nonesting" => opts.no_nesting = true,
                "quiet" => opts.quiet = true,
                "no-seccomp" => opts.no_seccomp = true,
                "root-id" => opts.root_id = true,
                "secure" => opts.secure = true,
                "version" => return Ok(Parsed::Version),
                "help" => return Ok(Parsed::Help),
                _ => return Err(format!("unknown option '--{name}'")),
            }
            continue;
        }
        if s.len() > 1 && s.starts_with('-') {
            let chars: Vec<char> = s[1..].chars().collect();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                i += 1;
                match c {
                    'x' => opts.no_nesting = true,
                    'q' => opts.quiet = true,
                    's' => opts.secure = true,
                    'v' => return Ok(Parsed::Version),
                    'h' => return Ok(Parsed::Help),
                    'p' | 'V' | 'f' | 'o' => {
                        let rest: String = chars[i..].iter().collect();
                        let v = if rest.is_empty() {
                            value(&mut args, &format!("-{c}"))?
                        } else {
                            rest
                        };
                        i = chars.len();
                        match c {
                            'p' => opts.preload.push(preload(&v)?),
                            'V' => opts.view_name = Some(v),
                            'f' => opts.rc_file = Some(PathBuf::from(v)),
                            _ => opts.log_file = Some(v),
                        }
                    }
                    _ => return Err(format!("unknown option '-{c}'")),
                }
            }
            continue;
        }
        opts.command.push(arg);
        break;
    }
    opts.command.extend(args);
    if opts.command.is_empty() {
        return Err("no program given (usage: umview [options] prog [args])".into());
    }
    Ok(Parsed::Run(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Options {
        match p(args) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn program_and_its_options_are_untouched() {
        let o = run(&["-q", "ls", "-l", "--color", "-p"]);
        assert!(o.quiet);
        assert_eq!(o.command, vec!["ls", "-l", "--color", "-p"]);
    }

    #[test]
    fn preload_forms() {
        let o = run(&["-p", "viewfs,mode=cow", "-pumfuse", "--preload=umnet", "x"]);
        assert_eq!(o.preload.len(), 3);
        assert_eq!(o.preload[0].module, "viewfs");
        assert_eq!(o.preload[0].options, "mode=cow");
        assert_eq!(o.preload[1].module, "umfuse");
        assert_eq!(o.preload[2].module, "umnet");
        assert!(p(&["-p", ",x", "ls"]).is_err());
    }

    #[test]
    fn bundles_and_values() {
        let o = run(&["-xqVmyview", "-o", "/tmp/log", "--rc", "/tmp/rc", "sh"]);
        assert!(o.no_nesting && o.quiet);
        assert_eq!(o.view_name.as_deref(), Some("myview"));
        assert_eq!(o.log_file.as_deref(), Some("/tmp/log"));
        assert_eq!(o.rc_file, Some(PathBuf::from("/tmp/rc")));
    }

    #[test]
    fn errors() {
        assert!(p(&[]).unwrap_err().contains("no program"));
        assert!(p(&["-q"]).unwrap_err().contains("no program"));
        assert!(p(&["--bogus", "ls"]).unwrap_err().contains("--bogus"));
        assert!(p(&["-Z", "ls"]).unwrap_err().contains("-Z"));
        assert!(p(&["-p"]).unwrap_err().contains("needs a value"));
        assert!(p(&["--quiet=1", "ls"]).is_err());
    }

    #[test]
    fn help_version_and_double_dash() {
        assert_eq!(p(&["-h"]), Ok(Parsed::Help));
        assert_eq!(p(&["--version"]), Ok(Parsed::Version));
        let o = run(&["--no-seccomp", "--", "-weird-prog"]);
        assert!(o.no_seccomp && !o.root_id && !o.secure);
        assert_eq!(o.command, vec!["-weird-prog"]);
        let o = run(&["--root-id", "-sq", "id"]);
        assert!(o.root_id && o.secure && o.quiet);
        assert_eq!(o.command, vec!["id"]);
    }
}
