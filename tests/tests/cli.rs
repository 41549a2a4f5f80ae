//! The `umview` command line: options, errors, rc files, the debug log and
//! exit statuses.

use std::ffi::OsString;

use viewos_tests::{transparent, Cmd, Mode, Outcome, TempDir};

/// `umview ARGS...` (no mode option added).
fn umview(args: &[&str]) -> Cmd {
    let mut argv: Vec<OsString> = vec![viewos_tests::umview_bin().into()];
    argv.extend(args.iter().map(OsString::from));
    Cmd::new(argv)
}

/// Asserts a usage error: exit 2, nothing on stdout (the program did not
/// run), exactly one line on stderr, starting with "umview:".
#[track_caller]
fn assert_usage_error(o: &Outcome) {
    o.assert_code(2);
    assert!(
        o.stdout.is_empty(),
        "{}: printed on stdout\n{}",
        o.what,
        o.dump()
    );
    let err = o.err();
    assert_eq!(
        err.lines().count(),
        1,
        "{}: expected exactly one line on stderr\n{}",
        o.what,
        o.dump()
    );
    assert!(
        err.starts_with("umview:") && err.ends_with('\n'),
        "{}\n{}",
        o.what,
        o.dump()
    );
}

#[test]
fn help_and_version_exit_0_with_text() {
    for opt in ["-h", "--help"] {
        let o = umview(&[opt]).run(Mode::Native);
        o.assert_ok();
        assert!(
            o.out().contains("Usage: umview"),
            "{}\n{}",
            o.what,
            o.dump()
        );
        assert!(o.out().contains("--no-seccomp"), "{}\n{}", o.what, o.dump());
        assert!(o.stderr.is_empty(), "{}\n{}", o.what, o.dump());
    }
    for opt in ["-v", "--version"] {
        let o = umview(&[opt]).run(Mode::Native);
        o.assert_ok();
        let out = o.out();
        assert!(
            out.starts_with("umview") && out.lines().count() == 1,
            "{}\n{}",
            o.what,
            o.dump()
        );
        assert!(
            out.chars().any(|c| c.is_ascii_digit()),
            "no version number: {out:?}"
        );
        assert!(o.stderr.is_empty(), "{}\n{}", o.what, o.dump());
    }
    // -h wins even with a program after it, and the program does not run.
    let o = umview(&["-h", "sh", "-c", "echo RAN"]).run(Mode::Native);
    o.assert_ok();
    assert!(!o.out().contains("RAN"), "{}", o.dump());
}

#[test]
fn bad_command_lines_exit_2_with_one_line() {
    let cases: &[&[&str]] = &[
        &[],
        &["-q"],
        &["--no-seccomp"],
        &["--bogus", "sh", "-c", "echo RAN"],
        &["-Z", "sh", "-c", "echo RAN"],
        &["-qZ", "sh", "-c", "echo RAN"],
        &["--quiet=1", "sh", "-c", "echo RAN"],
        &["-p"],
        &["-f"],
        &["-V"],
        &["-o"],
        &["--rc"],
        &["-p", ",opts", "sh", "-c", "echo RAN"],
    ];
    for args in cases {
        assert_usage_error(&umview(args).run(Mode::Native));
    }
    let o = umview(&["--bogus", "true"]).run(Mode::Native);
    assert!(
        o.err().contains("--bogus"),
        "the error names the option\n{}",
        o.dump()
    );
}

#[test]
fn unknown_module_exits_2_naming_it() {
    for args in [
        &["-p", "x", "sh", "-c", "echo RAN"][..],
        &["-px", "sh", "-c", "echo RAN"],
        &["--preload=nosuchmodule,opt=1", "sh", "-c", "echo RAN"],
        &["--no-seccomp", "-p", "x", "sh", "-c", "echo RAN"],
    ] {
        let o = umview(args).run(Mode::Native);
        assert_usage_error(&o);
        let name = if args.iter().any(|a| a.contains("nosuchmodule")) {
            "nosuchmodule"
        } else {
            "'x'"
        };
        assert!(
            o.err().contains(name),
            "the error names the module\n{}",
            o.dump()
        );
    }
}

#[test]
fn missing_or_unexecutable_program() {
    let tmp = TempDir::new("cli-missing");
    let plain = tmp.write("plain-file", "#!/bin/sh\necho RAN\n");
    let dir = tmp.mkdir("a-directory");
    for mode in Mode::VIEWS {
        let o = Cmd::new(["no-such-program-for-umview-tests"]).run(mode);
        o.assert_code(127);
        assert!(
            o.err().contains("no-such-program-for-umview-tests"),
            "the error names the program\n{}",
            o.dump()
        );
        assert_eq!(o.err().lines().count(), 1, "{}", o.dump());
        Cmd::new(["/nonexistent/dir/prog"])
            .run(mode)
            .assert_code(127);
        let o = Cmd::new([&plain]).run(mode);
        o.assert_code(126);
        assert!(o.stdout.is_empty(), "{}", o.dump());
        Cmd::new([&dir]).run(mode).assert_code(126);
        // A relative path with a slash is not searched on PATH.
        Cmd::new(["./plain-file"])
            .cwd(tmp.path())
            .run(mode)
            .assert_code(126);
    }
}

#[test]
fn exit_statuses_are_the_programs() {
    // 128+N for a death by signal N, as a shell reports it.
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("exit 255", 255),
        ("kill -SEGV $$", 139),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
        ("kill -INT $$", 130),
        ("kill -QUIT $$", 131),
        ("kill -PIPE $$", 141),
        ("kill -ABRT $$", 134),
    ] {
        let native = transparent(&Cmd::sh(script));
        assert_eq!(native.status.shell(), want, "native: {script}");
    }
}

#[test]
fn program_and_its_arguments_are_untouched() {
    let o = transparent(&Cmd::new([
        "printf",
        "[%s]",
        "-p",
        "x",
        "-V",
        "--no-seccomp",
        "--",
        "-h",
        "",
        "two words",
        "é",
    ]));
    assert_eq!(o.out(), "[-p][x][-V][--no-seccomp][--][-h][][two words][é]");
    // `--` ends umview's options: a program whose name starts with '-'.
    let tmp = TempDir::new("cli-dash");
    let prog = tmp.write("-dash-prog", "#!/bin/sh\necho \"dash prog $1\"\n");
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        tmp.path().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    for mode in Mode::VIEWS {
        let mut argv = mode.prefix();
        argv.extend(["--".into(), "-dash-prog".into(), "-v".into()]);
        let o = Cmd::new(argv).env("PATH", &path).run(Mode::Native);
        o.assert_ok();
        assert_eq!(o.out(), "dash prog -v\n", "{}", o.dump());
    }
}

#[test]
fn view_name_and_flags_are_accepted() {
    for opts in [
        &["-V", "myview"][..],
        &["-Vmyview"],
        &["--viewname=myview"],
        &["--viewname", "myview"],
        &["-x"],
        &["--nonesting"],
        &["-q"],
        &["--quiet"],
        &["-xqVmyview"],
    ] {
        for mode in Mode::VIEWS {
            let o = Cmd::sh("echo ok; exit 3").umview_opts(opts).run(mode);
            o.assert_code(3);
            assert_eq!(o.out(), "ok\n", "{}", o.dump());
            assert!(o.stderr.is_empty(), "{}", o.dump());
        }
    }
}

#[test]
fn rc_file_runs_first_inside_the_view() {
    let tmp = TempDir::new("cli-rc");
    let marker = tmp.join("rc-ran");
    // The rc script records that it ran in the view: it is traced.
    let rc = tmp.write(
        "rc.sh",
        format!(
            "echo \"rc output\"\nif grep -q '^TracerPid:[[:space:]]*0$' /proc/$$/status; then echo untraced; else echo traced; fi > '{}'\n",
            marker.display()
        ),
    );
    for mode in Mode::VIEWS {
        let _ = std::fs::remove_file(&marker);
        for opts in [
            vec!["-f".to_string(), rc.display().to_string()],
            vec![format!("--rc={}", rc.display())],
        ] {
            let o = Cmd::sh("cat rc-ran; exit 5")
                .cwd(tmp.path())
                .env("HOME", tmp.path())
                .umview_opts(&opts)
                .run(mode);
            o.assert_code(5);
            assert_eq!(o.out(), "rc output\ntraced\n", "{}", o.dump());
        }
    }
}

#[test]
fn failing_rc_file_warns_and_program_still_runs() {
    let tmp = TempDir::new("cli-rc-fail");
    let rc = tmp.write("rc.sh", "exit 9\n");
    for mode in Mode::VIEWS {
        let o = Cmd::sh("echo prog")
            .env("HOME", tmp.path())
            .umview_opts(["-f", rc.to_str().unwrap()])
            .run(mode);
        o.assert_ok();
        assert_eq!(o.out(), "prog\n");
        assert!(
            o.err().contains("rc.sh"),
            "a warning names the rc file\n{}",
            o.dump()
        );
        let o = Cmd::sh("echo prog")
            .env("HOME", tmp.path())
            .umview_opts(["-q", "-f", rc.to_str().unwrap()])
            .run(mode);
        o.assert_ok();
        assert!(o.stderr.is_empty(), "-q silences the warning\n{}", o.dump());
    }
}

#[test]
fn missing_rc_file_is_an_error() {
    let tmp = TempDir::new("cli-rc-missing");
    let missing = tmp.join("no-such-rc");
    for mode in Mode::VIEWS {
        let o = Cmd::sh("echo RAN")
            .umview_opts(["-f", missing.to_str().unwrap()])
            .run(mode);
        assert_usage_error(&o);
        assert!(
            o.err().contains("no-such-rc"),
            "the error names the file\n{}",
            o.dump()
        );
    }
}

#[test]
fn user_rc_file_comes_from_home_and_f_replaces_it() {
    let tmp = TempDir::new("cli-home-rc");
    let home = tmp.mkdir("home");
    std::fs::write(home.join(".viewosrc"), "echo from-home-rc\n").unwrap();
    let rc = tmp.write("explicit.rc", "echo from-explicit-rc\n");
    for mode in Mode::VIEWS {
        let o = Cmd::sh("echo prog").env("HOME", &home).run(mode);
        o.assert_ok();
        assert_eq!(o.out(), "from-home-rc\nprog\n", "{}", o.dump());
        let o = Cmd::sh("echo prog")
            .env("HOME", &home)
            .umview_opts(["-f", rc.to_str().unwrap()])
            .run(mode);
        assert_eq!(o.out(), "from-explicit-rc\nprog\n", "{}", o.dump());
        // No HOME at all: nothing to run, no complaint.
        let o = Cmd::sh("echo prog").env_remove("HOME").run(mode);
        o.assert_ok();
        assert_eq!(o.out(), "prog\n", "{}", o.dump());
        assert!(o.stderr.is_empty(), "{}", o.dump());
    }
}

#[test]
fn log_file_mentions_exec() {
    let tmp = TempDir::new("cli-log");
    for mode in Mode::VIEWS {
        let log = tmp.join(format!("{}.log", mode.tag()));
        let o = Cmd::sh("/bin/echo hello")
            .umview_opts(["-o", log.to_str().unwrap()])
            .run(mode);
        o.assert_ok();
        assert_eq!(o.out(), "hello\n", "{}", o.dump());
        let text = std::fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("{}: no log file {}: {e}", o.what, log.display()));
        assert!(
            text.to_lowercase().contains("exec"),
            "{}: the log does not mention exec:\n{text}",
            o.what
        );
        assert!(
            text.contains("/bin/echo"),
            "{}: the log does not name the exec'd program /bin/echo:\n{text}",
            o.what
        );
        // The log's descriptor does not leak into the programs.
        let o = Cmd::sh("ls /proc/$$/fd")
            .umview_opts(["-o", log.to_str().unwrap()])
            .run(mode);
        let native = Cmd::sh("ls /proc/$$/fd").run(Mode::Native);
        assert_eq!(
            o.out(),
            native.out(),
            "{}: descriptors differ from native",
            o.what
        );
    }
}

#[test]
fn unwritable_log_file_is_an_error() {
    let tmp = TempDir::new("cli-log-bad");
    let bad = tmp.join("no-such-dir/log");
    for mode in Mode::VIEWS {
        let o = Cmd::sh("echo RAN")
            .umview_opts(["-o", bad.to_str().unwrap()])
            .run(mode);
        assert_ne!(o.status.shell(), 0, "{}", o.dump());
        assert!(
            o.stdout.is_empty(),
            "the program must not run\n{}",
            o.dump()
        );
        assert!(
            o.err().contains("no-such-dir"),
            "the error names the file\n{}",
            o.dump()
        );
    }
}

/// umview searches and runs the program "as a shell would": a shell (and
/// execvp, env, nice, timeout...) runs an executable file without `#!`
/// with /bin/sh when the kernel answers ENOEXEC. umview reports "cannot
/// execute" (126) instead.
#[test]
fn executable_script_without_shebang_runs_with_sh() {
    let tmp = TempDir::new("cli-noshebang");
    let script = tmp.write("noshebang", "echo \"no-shebang script $*\"\nexit 3\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = transparent(&Cmd::new(["./noshebang", "a", "b"]).cwd(tmp.path()));
    assert_eq!(o.out(), "no-shebang script a b\n");
    assert_eq!(o.status.shell(), 3);
}

/// An empty program name is a program that is not found: 127 with one
/// line on stderr, as bash reports `'': command not found`. umview exits
/// 125 ("cannot start : empty program name").
#[test]
fn empty_program_name_is_not_found() {
    for mode in Mode::VIEWS {
        let o = Cmd::new([""]).run(mode);
        o.assert_code(127);
        assert_eq!(o.err().lines().count(), 1, "{}", o.dump());
    }
}

#[test]
fn exec_chains_keep_the_status() {
    // The started program replaces itself a few times; umview follows.
    let native = transparent(&Cmd::sh(
        "exec sh -c 'exec env sh -c \"exec printf chain; exit 1\"'",
    ));
    assert_eq!(native.out(), "chain");
    let native = transparent(&Cmd::sh("exec sh -c 'kill -USR1 $$'"));
    assert_eq!(native.status.shell(), 138);
}
