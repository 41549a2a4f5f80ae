//! What a program inherits is the same in a view: descriptors, signal
//! dispositions and mask, limits, environment, identity, cwd, umask, stdio.

use std::ffi::OsString;

use viewos_tests::{python3, transparent, Cmd, Mode, TempDir};

#[test]
fn process_attributes_are_native() {
    // Not compared, on purpose: TracerPid (the view traces), Seccomp and
    // NoNewPrivs (the filter; an unprivileged user needs no_new_privs).
    let script = r#"
        echo "fds: $(ls /proc/self/fd | tr '\n' ' ')"
        grep -E '^(SigBlk|SigIgn|SigCgt|Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|Cpus_allowed_list|Speculation_Store_Bypass)' /proc/self/status
        cat /proc/self/limits
        echo "umask $(umask)"
        echo "cwd $(pwd)"
        echo "nice $(cut -d' ' -f19 /proc/$$/stat)"
        echo "oom $(cat /proc/$$/oom_score_adj)"
        echo "personality $(cat /proc/$$/personality 2>/dev/null || echo n/a)"
        id
        env | grep -v '^_=' | sort
    "#;
    let tmp = TempDir::new("env-attrs");
    let o = transparent(
        &Cmd::sh(script)
            .cwd(tmp.path())
            .env("VIEWOS_TEST_VAR", "a value with spaces")
            .env("EMPTY_VAR", ""),
    );
    assert!(
        o.out().contains("VIEWOS_TEST_VAR=a value with spaces"),
        "{}",
        o.dump()
    );
    // The descriptors are the native ones (0, 1, 2, the one ls reads the
    // directory with, and whatever the test runner inherited): nothing of
    // umview's leaks.
    assert!(o.out().starts_with("fds: 0 1 "), "{}", o.dump());
}

/// The value of a `Sig*:` line of /proc/PID/status.
fn sig_field(status: &str, name: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {status:?}"));
    u64::from_str_radix(line[name.len()..].trim_start_matches(':').trim(), 16).unwrap()
}

#[test]
fn dispositions_set_before_umview_are_inherited() {
    // What umview's parent set reaches the program as natively: ignored
    // SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGHUP (umview itself changes
    // SIGINT and SIGQUIT and must give them back), and a blocked mask.
    let py = python3();
    let ignore = "trap '' INT QUIT TERM PIPE HUP; exec \"$@\"";
    let block = "import os,signal,sys; signal.pthread_sigmask(signal.SIG_BLOCK,[signal.SIGUSR1,signal.SIGTERM]); os.execvp(sys.argv[1], sys.argv[1:])";
    let show = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"];
    let mut native = (String::new(), String::new());
    for mode in Mode::ALL {
        let mut argv: Vec<OsString> = vec!["sh".into(), "-c".into(), ignore.into(), "sh".into()];
        argv.extend(mode.prefix());
        argv.extend(show.iter().map(OsString::from));
        let ign = Cmd::new(argv).run(Mode::Native);
        ign.assert_ok();

        let mut argv: Vec<OsString> = vec![py.clone().into(), "-c".into(), block.into()];
        argv.extend(mode.prefix());
        argv.extend(show.iter().map(OsString::from));
        let blk = Cmd::new(argv).run(Mode::Native);
        blk.assert_ok();

        if mode == Mode::Native {
            // bits: HUP 1, INT 2, QUIT 3, PIPE 13, TERM 15 -> 0x5007
            assert_eq!(
                sig_field(&ign.out(), "SigIgn") & 0x5007,
                0x5007,
                "{}",
                ign.dump()
            );
            // bits: USR1 10, TERM 15 -> 0x4200
            assert_eq!(
                sig_field(&blk.out(), "SigBlk") & 0x4200,
                0x4200,
                "{}",
                blk.dump()
            );
            native = (ign.out(), blk.out());
        } else {
            assert_eq!(
                ign.out(),
                native.0,
                "[{}] ignored signals differ",
                mode.name()
            );
            assert_eq!(
                blk.out(),
                native.1,
                "[{}] blocked signals differ",
                mode.name()
            );
        }
    }
}

#[test]
fn stdio_passes_through() {
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let o = transparent(&Cmd::new(["cat"]).stdin(&data));
    assert_eq!(o.stdout, data);
    let o = transparent(&Cmd::sh("cat; echo to-stderr >&2; exit 7").stdin("in\n"));
    assert_eq!(o.out(), "in\n");
    assert_eq!(o.err(), "to-stderr\n");
    // stdin closed (/dev/null), large stdout
    let o = transparent(&Cmd::new(["seq", "1", "300000"]));
    assert_eq!(o.out().lines().count(), 300000);
    // a program reading its stdin through a pipe chain
    let o =
        transparent(&Cmd::sh("tr a-z A-Z | rev | sha256sum").stdin("hello world\n".repeat(10000)));
    assert_eq!(o.out().len(), 68, "{}", o.dump());
}

#[test]
fn terminal_less_programs_see_no_tty() {
    let o = transparent(&Cmd::sh(
        "tty; echo \"tty $?\"; [ -t 0 ] && echo t0; [ -t 1 ] && echo t1; \
         (exec 3</dev/tty) 2>/dev/null; echo \"dev/tty $?\"",
    ));
    assert!(o.out().contains("not a tty"), "{}", o.dump());
}

/// Documented limit: a process in a view cannot be traced again. It must
/// fail cleanly (EPERM at once), not hang or kill the view.
#[test]
fn ptrace_inside_a_view_fails_cleanly() {
    let py = python3();
    let code = "import ctypes, os\n\
                libc = ctypes.CDLL(None, use_errno=True)\n\
                r = libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME\n\
                print('traceme', r, os.strerror(ctypes.get_errno()) if r else '')\n";
    for mode in Mode::VIEWS {
        let o = Cmd::new([py.as_os_str(), "-c".as_ref(), code.as_ref()]).run(mode);
        o.assert_ok();
        assert_eq!(
            o.out(),
            "traceme -1 Operation not permitted\n",
            "[{}] {}",
            mode.name(),
            o.dump()
        );
    }
}
